"""The Stylize view's ways in and out: Open…, Paste, Save…, Save all… and Copy."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QWidget

from mlabs_desktop.core.transfer.http import is_url
from mlabs_desktop.core.video.clips import CLIP_EXTENSIONS
from mlabs_desktop.gui.kit.common import local_path
from mlabs_desktop.gui.stylize.before_after import BeforeAfterView
from mlabs_desktop.gui.stylize.export import Exporter
from mlabs_desktop.gui.stylize.queue import PhotoQueue, QueueItem
from mlabs_desktop.gui.stylize.style_panel import StylePanel

Source = Union[Path, str]


class PhotoFiles(QObject):
    """Opening, pasting, saving and copying photos for the Stylize view.

    Chosen photos leave through ``sourcesChosen`` (the view queues them);
    ``status`` carries one line for the status bar.
    """

    sourcesChosen = Signal(list)
    status = Signal(str)

    def __init__(self, parent: QWidget, photos: PhotoQueue, exporter: Exporter, compare: BeforeAfterView,
                 style_panel: StylePanel, current: Callable[[], QueueItem | None]):
        super().__init__(parent)
        self._dialog_parent = parent
        self._photos, self._exporter, self._compare, self._style_panel = photos, exporter, compare, style_panel
        self._current = current

    def paste_from_clipboard(self) -> None:
        """Ctrl+V: image files, folders or an http(s) address copied elsewhere join the queue."""
        mime = QGuiApplication.clipboard().mimeData()
        sources: list = [local_path(u) if u.isLocalFile() else u.toString() for u in mime.urls()]
        text = mime.text().strip() if mime.hasText() else ""
        if not sources and text:
            sources = [line.strip() for line in text.splitlines() if line.strip()]
            sources = [s if is_url(s) else Path(s) for s in sources]
        if sources:
            self.sourcesChosen.emit(sources)
        else:
            self.status.emit("The clipboard holds no photo, folder or web address to add")

    def open_dialog(self) -> None:
        clips = " ".join(f"*{e}" for e in sorted(CLIP_EXTENSIONS))
        filters = (f"Photos and clips (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff *.gif {clips});;"
                   "Images (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff *.gif);;"
                   f"Clips ({clips});;All files (*)")
        files, _ = QFileDialog.getOpenFileNames(self._dialog_parent, "Open photos or clips", str(self._start_dir()),
                                                filters)
        if files:
            self.sourcesChosen.emit([Path(f) for f in files])

    def _start_dir(self) -> Path:
        item = self._current()
        return item.source.parent if item is not None and isinstance(item.source, Path) else Path.home()

    def save_current(self) -> None:
        item, look = self._current(), self._photos.look
        if item is not None and item.ready(look):
            self._exporter.save_one(item, look, self._style_panel.options(), self._start_dir())

    def save_all(self) -> None:
        look = self._photos.look
        done = [it for it in self._photos.items.values() if it.ready(look)]
        if done:
            self._exporter.save_all(done, look, self._style_panel.options(), self._start_dir())

    def copy_current(self) -> None:
        image = self._compare.styled_image()
        if image is not None:
            QGuiApplication.clipboard().setImage(image)
            self.status.emit("Copied the styled photo")
