"""The open clip windows: one per clip, opened from the Stylize view's drops and Open, stopped on quit."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QDeadlineTimer, QObject

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.stylize.stylizer import BlendOptions
from mlabs_desktop.core.video.clips import probe
from mlabs_desktop.gui.clips.clip_window import ClipWindow
from mlabs_desktop.gui.kit.common import user_text
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.stylize.work import StylizerCache

NO_STYLE = ("Pick a style in the Stylize view first (or train one in Train), then open the clip again.")


class ClipWindows(QObject):
    def __init__(self, services: Services, parent: QObject | None = None):
        super().__init__(parent)
        self._services = services
        self.windows: list[ClipWindow] = []
        self._stylizers = StylizerCache(services.library)

    def open(self, paths: Sequence[Path], look: Look, options: BlendOptions) -> int:
        """A window for each clip that can be read; a message for each that cannot. Returns how many opened."""
        error = self._services.hub.error.emit
        if look.style is None:
            error("No style to apply", NO_STYLE)
            return 0
        opened = 0
        for path in paths:
            try:
                info = probe(Path(path))
            except UserError as exc:
                error(f"Cannot open {Path(path).name}", user_text(exc))
                continue
            window = ClipWindow(self._services, info, look, options, self._stylizers)
            window.closed.connect(self._forget)
            self.windows.append(window)
            window.show()
            opened += 1
        return opened

    def _forget(self, window: ClipWindow) -> None:
        if window in self.windows:
            self.windows.remove(window)

    def is_busy(self) -> bool:
        return any(w.is_busy() for w in self.windows)

    def cancel_and_wait(self, timeout_ms: int) -> bool:
        deadline = QDeadlineTimer(max(0, timeout_ms))
        return all([w.cancel_and_wait(int(deadline.remainingTime())) for w in list(self.windows)])

    def close_all(self) -> None:
        for window in list(self.windows):
            window.close()
