"""Small building blocks of the training form: drop boxes, thumbnails, form cells, background jobs.

Decoding even a thumbnail of a 20-megapixel photo takes a noticeable moment, so
every file read goes through a `Worker`; the GUI thread only turns the small
arrays it gets back into pixmaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QLayout, QSizePolicy, QVBoxLayout,
                               QWidget)

from mlabs_desktop.core.images.decode import IMAGE_EXTENSIONS, is_image_path, load_image
from mlabs_desktop.core.images.ops import to_uint8
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.gui.kit.common import dropped_paths, pixmap_from_array

NOTE_STYLE = "color: #6b7280;"
ERROR_STYLE = "color: #c62828;"
WARNING_STYLE = "color: #a15c00;"
OK_STYLE = "color: #2e7d32;"
IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS)) + ")"


def read_thumbnails(paths: Iterable[Path | str], side: int) -> list[np.ndarray | None]:
    """Small uint8 copies of images (None for a file that cannot be read). Worker thread."""
    out: list[np.ndarray | None] = []
    for path in paths:
        try:
            out.append(to_uint8(load_image(path, max_size=side).rgb))
        except (UserError, OSError, ValueError):
            out.append(None)
    return out


class Thumb(QLabel):
    """A fixed-size image tile with a placeholder text while empty."""

    def __init__(self, side: int, placeholder: str = "", parent: QWidget | None = None):
        super().__init__(placeholder, parent)
        self.side = side
        self.placeholder = placeholder
        self.setFixedSize(QSize(side, side))
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { background: palette(alternate-base); border: 1px solid palette(mid);"
                           " border-radius: 4px; color: #6b7280; font-size: 11px; }")

    def set_array(self, rgb: np.ndarray | None, tooltip: str = "") -> None:
        if rgb is None:
            self.clear_image("unreadable")
            return
        pixmap = pixmap_from_array(rgb).scaled(self.side - 4, self.side - 4, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(pixmap)
        self.setToolTip(tooltip)

    def clear_image(self, text: str | None = None) -> None:
        self.setPixmap(QPixmap())
        self.setText(self.placeholder if text is None else text)
        self.setToolTip("")

    def has_image(self) -> bool:
        pixmap = self.pixmap()
        return pixmap is not None and not pixmap.isNull()


class ThumbRow(QWidget):
    """A row of ``count`` small thumbnails (a glimpse of a training folder)."""

    def __init__(self, count: int = 6, side: int = 52, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.thumbs = [Thumb(side) for _ in range(count)]
        for thumb in self.thumbs:
            layout.addWidget(thumb)
        layout.addStretch(1)

    def set_images(self, arrays: list[np.ndarray | None], names: list[str]) -> None:
        for i, thumb in enumerate(self.thumbs):
            if i < len(arrays):
                thumb.set_array(arrays[i], names[i])
                thumb.show()
            else:
                thumb.clear_image()
                thumb.hide()

    def shown_count(self) -> int:
        return sum(1 for t in self.thumbs if t.has_image())


class DropBox(QFrame):
    """A framed area that takes dropped image files and/or folders and emits the first path.

    Any other drop is taken too, and answered with ``refused`` (why, in a sentence), so it
    never falls through to the window, which would open the files somewhere else.
    """

    dropped = Signal(Path)
    refused = Signal(str)

    def __init__(self, files: bool, folders: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.files, self.folders = files, folders
        self.setAcceptDrops(True)
        self.setObjectName("DropBox")
        self._highlight(None)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    def _highlight(self, usable: bool | None) -> None:
        border = {None: "1px dashed palette(mid)", True: "2px dashed #2563eb", False: "2px dashed #9ca3af"}[usable]
        self.setStyleSheet(f"QFrame#DropBox {{ border: {border}; border-radius: 6px; }}")

    def _wanted(self, paths: list[Path]) -> Path | None:
        for path in paths:
            if self.folders and path.is_dir():
                return path
            if self.files and path.is_file() and is_image_path(path):
                return path
        return None

    def _reason(self) -> str:
        return ("Drop one picture file here (JPEG, PNG, WebP, BMP or TIFF), not a folder or another kind of file."
                if self.files else "Drop a folder of photos here, not single files.")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt naming
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self._highlight(self._wanted(paths) is not None)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self._highlight(None)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self._highlight(None)
        paths = dropped_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        path = self._wanted(paths)
        if path is None:
            self.refused.emit(self._reason())
        else:
            self.dropped.emit(path)


def note_label(text: str = "", style: str = NOTE_STYLE) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    set_note_style(label, style)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def set_note_style(label: QLabel, style: str) -> None:
    """A note's colour (`NOTE_STYLE`, `WARNING_STYLE`, `ERROR_STYLE`) at the notes' small size."""
    label.setStyleSheet(style + " font-size: 11px;")


def with_error(*parts: QWidget | QLayout) -> tuple[QWidget, QLabel]:
    """A form cell: the editor(s), then a red message line that shows only when there is a problem."""
    cell = QWidget()
    column = QVBoxLayout(cell)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(3)
    for part in parts:
        column.addLayout(part) if isinstance(part, QLayout) else column.addWidget(part)
    error = note_label(style=ERROR_STYLE)
    error.hide()
    column.addWidget(error)
    return cell, error


def form_group(title: str) -> tuple[QGroupBox, QFormLayout]:
    box = QGroupBox(title)
    return box, styled_form(QFormLayout(box))


def styled_form(form: QFormLayout) -> QFormLayout:
    """The spacing every group of the training form shares."""
    form.setContentsMargins(12, 14, 12, 12)
    form.setHorizontalSpacing(12)
    form.setVerticalSpacing(10)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # labels go above fields in a narrow window
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return form
