"""The Stylize view's ways in and out: Open…, Paste, Save…, Save all… and Copy."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, Union

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from mlabs_desktop.core.transfer.http import is_url
from mlabs_desktop.gui.stylize.before_after import BeforeAfterView
from mlabs_desktop.gui.kit.common import local_path
from mlabs_desktop.gui.stylize.queue import PhotoQueue, QueueItem
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.stylize.style_picker import StylePanel
from mlabs_desktop.gui.stylize.export import Exporter

Source = Union[Path, str]


class PhotoFileActions:
    """Opening, pasting, saving and copying photos, mixed into `StylizeView` (which has these attributes)."""

    photos: PhotoQueue
    compare: BeforeAfterView
    style_panel: StylePanel
    _services: Services
    _exporter: Exporter
    _current: Callable[[], QueueItem | None]
    _say: Callable[[str], None]
    open_paths: Callable[[Sequence[Source]], int]

    def paste_from_clipboard(self) -> int:
        """Ctrl+V: image files, folders or an http(s) address copied elsewhere join the queue."""
        mime = QGuiApplication.clipboard().mimeData()
        sources: list = [local_path(u) if u.isLocalFile() else u.toString() for u in mime.urls()]
        text = mime.text().strip() if mime.hasText() else ""
        if not sources and text:
            sources = [line.strip() for line in text.splitlines() if line.strip()]
            sources = [s if is_url(s) else Path(s) for s in sources]
        if not sources:
            self._services.hub.status.emit("The clipboard holds no photo, folder or web address to add")
            return 0
        return self.open_paths(sources)

    def open_dialog(self) -> None:
        filters = "Images (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"
        files, _ = QFileDialog.getOpenFileNames(self, "Open photos", str(self._start_dir()), filters)
        if files:
            self.open_paths([Path(f) for f in files])

    def _start_dir(self) -> Path:
        item = self._current()
        return item.source.parent if item is not None and isinstance(item.source, Path) else Path.home()

    def save_current(self) -> None:
        item = self._current()
        if item is not None and self.photos.style in item.done:
            self._exporter.save_one(item, self.photos.style or "", self.style_panel.options(), self._start_dir())

    def save_all(self) -> None:
        done = [it for it in self.photos.items.values() if self.photos.style in it.done]
        if done:
            self._exporter.save_all(done, self.photos.style or "", self.style_panel.options(), self._start_dir())

    def copy_current(self) -> None:
        image = self.compare.styled_image()
        if image is not None:
            QGuiApplication.clipboard().setImage(image)
            self._say("Copied the styled photo")
