"""The "Images" group of the training form: style image, training photos, preview photo.

The training folder is scanned in a worker (`core.dataset.scan_folder`), which
also decodes a handful of thumbnails; the answer says how many images and how
many megabytes, or, for an empty or unusable folder, what is wrong in words.
Each problem is reported by `problems()` for the form to show.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

from mlabs_desktop.core.images.decode import image_info
from mlabs_desktop.core.training.dataset import FolderScan, scan_folder
from mlabs_desktop.resources import sample_image
from mlabs_desktop.gui.kit.common import Worker, WorkerSet
from mlabs_desktop.gui.train.inputs import (IMAGE_FILTER, DropBox, Thumb, ThumbRow, note_label, read_thumbnails,
                                            styled_form, with_error)


def _scan_job(folder: str, count: int, side: int) -> tuple[FolderScan, list[np.ndarray | None], list[str]]:
    scan = scan_folder(folder)
    n = len(scan.paths)
    shown = min(count, n)  # evenly spread over the folder, each photo at most once
    picks = [scan.paths[round(i * (n - 1) / max(1, shown - 1))] for i in range(shown)]
    return scan, read_thumbnails(picks, side), [p.name for p in picks]


class SourcesGroup(QGroupBox):
    """Style image, training folder (scanned in the background) and preview photo."""

    changed = Signal()
    style_chosen = Signal(str)
    refused = Signal(str, str)      # a drop that cannot be used: title, why

    def __init__(self, jobs: WorkerSet, parent: QWidget | None = None):
        """``jobs`` runs the scans and thumbnails (the app's, so they outlive a closed view)."""
        super().__init__("Images", parent)
        self._jobs = jobs
        self.style_path = ""
        self._style_size: tuple[int, int] | None = None
        self.scan: FolderScan | None = None
        self.scan_error: str | None = None
        self.scanning = False
        self._scan_gen = 0
        self._test_cache: dict[str, tuple[int, int] | None] = {}
        self.workers: set[Worker] = set()
        self.error_labels: dict[str, QLabel] = {}
        form = styled_form(QFormLayout(self))
        # Headings above the boxes: the drop areas and thumbnails need the column's full width.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.prompt_keys: set[str] = set()
        self._build_style(form)
        self._build_folder(form)
        self._build_test(form)

    def _build_style(self, form: QFormLayout) -> None:
        self.style_box = DropBox(files=True, folders=False)
        self.style_box.setToolTip("The painting whose style the model learns. Drop an image file here.")
        self.style_box.dropped.connect(self.set_style)
        self.style_box.refused.connect(lambda why: self.refused.emit("Not a style image", why))
        row = QHBoxLayout(self.style_box)
        row.setContentsMargins(8, 8, 8, 8)
        row.setSpacing(12)
        self.style_thumb = Thumb(88, "Drop a\npainting\nhere")
        info = QVBoxLayout()
        info.setSpacing(4)
        self.style_name = QLabel("No style image yet", styleSheet="font-weight: 600;")
        self.style_info = note_label("JPEG, PNG, WebP, BMP or TIFF")
        self.style_button = QPushButton("Choose image…", toolTip="Pick the painting to learn the style of.")
        self.style_button.clicked.connect(self._choose_style)
        for w in (self.style_name, self.style_info):
            info.addWidget(w)
        info.addStretch(1)
        info.addWidget(self.style_button, 0, Qt.AlignmentFlag.AlignLeft)
        row.addWidget(self.style_thumb)
        row.addLayout(info, 1)
        cell, self.error_labels["style"] = with_error(self.style_box)
        form.addRow("Style image", cell)

    def _build_folder(self, form: QFormLayout) -> None:
        self.folder_box = DropBox(files=False, folders=True)
        self.folder_box.setToolTip("Photos the network practises on (e.g. COCO). Drop a folder here.")
        self.folder_box.dropped.connect(self.set_train_folder)
        self.folder_box.refused.connect(lambda why: self.refused.emit("Not a folder of photos", why))
        column = QVBoxLayout(self.folder_box)
        column.setContentsMargins(8, 8, 8, 8)
        pick = QHBoxLayout()
        self.folder_edit = QLineEdit(placeholderText="Drop a folder of photos here")
        self.folder_edit.setToolTip("Folder of training photos, searched recursively.")
        self.folder_edit.editingFinished.connect(lambda: self.set_train_folder(self.folder_edit.text()))
        self.folder_button = QPushButton("Choose folder…", toolTip="Pick the folder of training photos.")
        self.folder_button.clicked.connect(self._choose_folder)
        pick.addWidget(self.folder_edit, 1)
        pick.addWidget(self.folder_button)
        self.folder_summary = note_label("Thousands of varied photos work best; a few hundred give a quick look.")
        self.folder_thumbs = ThumbRow(6, 56)
        self.folder_thumbs.set_images([], [])
        column.addLayout(pick)
        column.addWidget(self.folder_summary)
        column.addWidget(self.folder_thumbs)
        cell, self.error_labels["train_path"] = with_error(self.folder_box)
        form.addRow("Training photos", cell)

    def _build_test(self, form: QFormLayout) -> None:
        row = QHBoxLayout()
        self.test_edit = QLineEdit(placeholderText=f"Built-in sample ({sample_image().name})")
        self.test_edit.setToolTip("The photo styled at every checkpoint so you can watch the model learn.")
        self.test_edit.textChanged.connect(self.changed)
        self.test_button = QPushButton("Choose…", toolTip="Pick the photo used for previews.")
        self.test_button.clicked.connect(self._choose_test)
        row.addWidget(self.test_edit, 1)
        row.addWidget(self.test_button)
        cell, self.error_labels["test"] = with_error(row)
        form.addRow("Preview photo", cell)

    # ------------------------------------------------------------------ choosing
    def _choose_style(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the style image", str(Path(self.style_path).parent)
                                              if self.style_path else "", IMAGE_FILTER)
        if path:
            self.set_style(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the folder of training photos", self.train_path())
        if path:
            self.set_train_folder(path)

    def _choose_test(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the preview photo", "", IMAGE_FILTER)
        if path:
            self.test_edit.setText(path)

    def set_style(self, path: Path | str) -> None:
        self.style_path = str(path)
        # Header only: cheap enough for the GUI thread; the thumbnail decodes in a worker.
        self._style_size = image_info(path) if Path(path).is_file() else None
        self.style_name.setText(Path(path).name)
        self.style_name.setToolTip(str(path))
        self.style_info.setText(f"{self._style_size[0]} × {self._style_size[1]} px" if self._style_size else "")
        self.style_thumb.clear_image("…")
        if self._style_size:
            self._jobs.run(lambda: read_thumbnails([path], 176)[0],
                           lambda rgb: self.style_thumb.set_array(rgb, str(path)),
                           name="style-thumb", receiver=self, track=self.workers)
            self.style_chosen.emit(str(path))
        else:
            self.style_thumb.clear_image("?")
        self.changed.emit()

    def set_train_folder(self, path: Path | str) -> None:
        text = str(path).strip()
        if self.folder_edit.text() != text:
            self.folder_edit.setText(text)
        if self.scan is not None and text == str(self.scan.root) and not self.scanning:
            return
        self._scan_gen += 1
        self.scan, self.scan_error = None, None
        self.folder_thumbs.set_images([], [])
        self.scanning = bool(text)
        self.folder_summary.setText("Scanning the folder…" if text else "")
        if text:
            gen = self._scan_gen
            self._jobs.run(lambda: _scan_job(text, 6, 100), partial(self._scanned, gen),
                           partial(self._scan_failed, gen), name="folder-scan", receiver=self, track=self.workers)
        self.changed.emit()

    def set_test(self, path: str | None) -> None:
        self.test_edit.setText(path or "")

    def _scanned(self, gen: int, result: tuple) -> None:
        if gen != self._scan_gen:
            return  # an older scan finished after the user picked another folder
        scan, thumbs, names = result
        self.scanning, self.scan = False, scan
        self.folder_summary.setText(f"{len(scan.paths):,} images · {scan.total_bytes / 1e6:,.1f} MB")
        self.folder_thumbs.set_images(thumbs, names)
        if thumbs and all(t is None for t in thumbs):
            self.scan_error = ("None of the sampled images could be read: the files may be damaged, "
                               "or not really images. Choose another folder.")
        self.changed.emit()

    def _scan_failed(self, gen: int, message: str) -> None:
        if gen != self._scan_gen:
            return
        empty = message.startswith("no images in")
        if empty:
            message = ("No photos in this folder or its sub-folders. Choose a folder holding JPEG, PNG, "
                       "WebP, BMP or TIFF images.")
        self.scanning, self.scan_error = False, message[:1].upper() + message[1:]
        self.folder_summary.setText("0 images" if empty else "")
        self.changed.emit()

    # ------------------------------------------------------------------ state
    def train_path(self) -> str:
        return self.folder_edit.text().strip()

    def test_path(self) -> str | None:
        return self.test_edit.text().strip() or None

    def problems(self) -> dict[str, str]:
        """What blocks a start, by field; `prompt_keys` names those that are only "not chosen yet"."""
        found: dict[str, str] = {}
        self.prompt_keys = set()
        if not self.style_path:
            found["style"] = "Choose the painting whose style the model should learn."
            self.prompt_keys.add("style")
        elif not Path(self.style_path).is_file():
            found["style"] = f"{self.style_path} is not there any more. Choose the style image again."
        elif not self._style_size:
            found["style"] = f"{Path(self.style_path).name} cannot be read as an image."
        if not self.train_path():
            found["train_path"] = "Choose a folder of training photos."
            self.prompt_keys.add("train_path")
        elif self.scanning:
            found["train_path"] = "Still scanning the folder…"
            self.prompt_keys.add("train_path")
        elif self.scan_error:
            found["train_path"] = self.scan_error
        test = self.test_path()
        if test:
            if test not in self._test_cache:
                self._test_cache[test] = image_info(test) if Path(test).is_file() else None
            if self._test_cache[test] is None:
                found["test"] = "Not a readable image file; leave empty to use the built-in sample."
        return found

    def set_locked(self, locked: bool) -> None:
        # Editors only: the thumbnails stay in colour while a run uses them.
        for w in (self.style_button, self.folder_edit, self.folder_button, self.test_edit, self.test_button):
            w.setEnabled(not locked)
        for box in (self.style_box, self.folder_box):
            box.setAcceptDrops(not locked)
