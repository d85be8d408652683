"""The Settings dialog: library folder, VGG19 weights, training defaults.

Slow work (reading a 500 MB weights file, downloading 80 MB) runs in `Worker`
threads; the dialog waits for or cancels its workers before it closes, so none
outlives its window. The GPU status dialog is in `gpu_status`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QGroupBox, QLineEdit,
                               QProgressDialog, QPushButton, QVBoxLayout, QWidget)

from mlabs_desktop.core import atomic, paths
from mlabs_desktop.core.networks import loss_network as vgg
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.training.presets import list_presets
from mlabs_desktop.gui.kit.common import Throttle, Worker, WorkerSet, user_text
from mlabs_desktop.gui.dialogs.forms import BAD, GOOD, form_field, form_layout, form_row, note_label, set_note
from mlabs_desktop.gui.kit.services import Services

# (url, md5, size): module-level so tests can point the download at a local server.
VGG_DOWNLOAD = (vgg.KERAS_VGG19_URL, vgg.KERAS_VGG19_MD5, vgg.KERAS_VGG19_SIZE)
DEVICE_CHOICES = (("auto", "Automatic (a GPU when one is available)"), ("cpu", "CPU"),
                  ("gpu", "GPU (fails when none is found)"))


class SettingsDialog(QDialog):
    def __init__(self, services: Services, parent: QWidget | None = None):
        super().__init__(parent)
        self.workers = WorkerSet()
        self.services = services
        self._check_generation = 0
        self.vgg_valid: bool | None = None   # None: not checked yet (or checking)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(680)
        settings = services.settings

        # Storage --------------------------------------------------------
        self.library_edit = QLineEdit(settings.library_dir or "")
        self.library_edit.setPlaceholderText(str(paths.default_library_dir()))
        self.library_edit.textChanged.connect(lambda: set_note(self.library_note, ""))
        library_button = QPushButton("Choose…")
        library_button.clicked.connect(self._choose_library)
        self.library_note = note_label()
        self.library_note.hide()

        self.vgg_edit = QLineEdit(settings.vgg_path or "")
        self.vgg_edit.setPlaceholderText("Found automatically when left empty")
        self.vgg_edit.editingFinished.connect(self.check_vgg)
        locate = QPushButton("Locate file…")
        locate.clicked.connect(self._locate_vgg)
        self.download_button = QPushButton("Download (80 MB)")
        self.download_button.setToolTip(f"Download Keras's VGG19 weights from\n{VGG_DOWNLOAD[0]}")
        self.download_button.clicked.connect(self.download_vgg)
        self.vgg_status = note_label()

        storage = QGroupBox("Storage")
        storage_form = form_layout(storage)
        vgg_about = note_label("The loss network training needs (Keras's notop .h5 or MatConvNet's .mat).")
        vgg_about.setToolTip(f"{vgg.KERAS_VGG19_FILENAME}\n{vgg.MATCONVNET_VGG19_FILENAME}")
        storage_form.addRow("Library folder", form_field(form_row(self.library_edit, library_button),
                                                         self.library_note))
        storage_form.addRow("VGG19 weights", form_field(
            form_row(self.vgg_edit, locate, self.download_button), self.vgg_status, vgg_about))

        # Training defaults ---------------------------------------------
        self.device_combo = QComboBox()
        for key, text in DEVICE_CHOICES:
            self.device_combo.addItem(text, key)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(settings.default_device)))
        self.preset_combo = QComboBox()
        self.preset_note = note_label()
        self._fill_presets(settings.default_preset)
        self.preset_combo.currentIndexChanged.connect(self._preset_changed)
        defaults = QGroupBox("Training defaults")
        defaults_form = form_layout(defaults)
        defaults_form.addRow("Device", self.device_combo)
        defaults_form.addRow("Preset", form_field(self.preset_combo, self.preset_note))

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.setSpacing(14)
        layout.addWidget(storage)
        layout.addWidget(defaults)
        layout.addStretch(1)
        layout.addWidget(buttons)
        self.check_vgg()
        self.resize(680, self.sizeHint().height())
        self.fit_height()

    # ---------------------------------------------------------------- presets
    def _fill_presets(self, current: str) -> None:
        try:
            presets = list_presets()
        except UserError as exc:
            presets = []
            set_note(self.preset_note, user_text(exc), BAD)
        for preset in presets:
            self.preset_combo.addItem(preset.name, preset.name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, preset.description,
                                          Qt.ItemDataRole.ToolTipRole)
        index = self.preset_combo.findData(current)
        if index < 0 and current:
            self.preset_combo.addItem(f"{current} (missing)", current)
            index = self.preset_combo.count() - 1
        self.preset_combo.setCurrentIndex(max(index, 0))
        self._preset_changed()

    def _preset_changed(self) -> None:
        text = self.preset_combo.currentText()
        if text.endswith("(missing)"):
            set_note(self.preset_note, "This preset no longer exists; choose another.", BAD)
        else:
            tip = self.preset_combo.currentData(Qt.ItemDataRole.ToolTipRole) or ""
            set_note(self.preset_note, tip)

    # ---------------------------------------------------------------- folders
    def _choose_library(self) -> None:
        start = self.library_edit.text() or str(paths.default_library_dir())
        folder = QFileDialog.getExistingDirectory(self, "Choose the library folder", start)
        if folder:
            self.library_edit.setText(folder)

    def _locate_vgg(self) -> None:
        start = str(Path(self.vgg_edit.text()).parent) if self.vgg_edit.text() else str(Path.home())
        file, _ = QFileDialog.getOpenFileName(self, "Locate VGG19 weights", start,
                                              "VGG19 weights (*.h5 *.mat);;All files (*)")
        if file:
            self.vgg_edit.setText(file)
            self.check_vgg()

    # ------------------------------------------------------------- VGG check
    def check_vgg(self) -> None:
        """Validate the chosen (or automatically found) weights file in a worker."""
        self._check_generation += 1
        generation = self._check_generation
        text = self.vgg_edit.text().strip()
        try:
            path = vgg.find_vgg_weights(text or None)
        except UserError as exc:
            self.vgg_valid = False if text else None
            message = str(exc).split(". Download")[0] + "." if not text else str(exc)
            set_note(self.vgg_status, ("✗ " + message) if text else
                      "No VGG19 weights found yet: locate the file or download it.", BAD)
            return
        self.vgg_valid = None
        set_note(self.vgg_status, f"Checking {path.name}…")

        def job(report: Callable[[Any], None], cancelled: Callable[[], bool]) -> Path:
            vgg.load_vgg19_weights(path)
            return path

        worker = Worker(job, name="vgg-check")
        worker.succeeded.connect(lambda p, g=generation: self._vgg_checked(g, True, p, text))
        worker.failed.connect(lambda msg, g=generation: self._vgg_checked(g, False, msg, text))
        self.workers.start(worker)

    def _vgg_checked(self, generation: int, ok: bool, detail: Any, text: str) -> None:
        if generation != self._check_generation:
            return   # the field changed while this file was being read
        self.vgg_valid = ok
        if ok:
            where = "" if text else f" (found automatically: {detail})"
            set_note(self.vgg_status, f"✓ Valid VGG19 weights{where}", GOOD)
        else:
            set_note(self.vgg_status, f"✗ {detail}", BAD)
        # After the label's layout request is processed: only then does the layout know its new height.
        QTimer.singleShot(0, self.fit_height)

    def fit_height(self) -> None:
        """Grow to fit notes that arrived after the dialog was shown (a window never does by itself)."""
        needed = self.layout().totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    # -------------------------------------------------------------- download
    def download_vgg(self) -> None:
        url, md5, size = VGG_DOWNLOAD
        progress = QProgressDialog("Downloading VGG19 weights…", "Cancel", 0, 100, self)
        progress.setWindowTitle("Download")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(600)   # short downloads (a cached file) never flash a window
        progress.setMinimumWidth(420)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        throttle = Throttle(10)

        def job(report: Callable[[Any], None], cancelled: Callable[[], bool]) -> Path:
            from mlabs_desktop.core.transfer.downloads import download
            source = download(url, md5=md5, expected_size=size, progress=report, cancelled=cancelled)
            target = paths.weights_dir() / vgg.KERAS_VGG19_FILENAME
            atomic.write_with(target, lambda tmp: shutil.copyfile(source, tmp))
            return target

        def on_progress(p: Any) -> None:
            if not throttle.ready(force=bool(p.total and p.received >= p.total)):
                return
            total = p.total or size
            progress.setValue(int(100 * p.received / total) if total else 0)
            progress.setLabelText(f"Downloading VGG19 weights…\n{p.received / 1e6:.1f} of "
                                  f"{total / 1e6:.1f} MB ({p.bytes_per_sec / 1e6:.1f} MB/s)")

        def finish() -> None:
            progress.close()
            self.download_button.setEnabled(True)

        def done(target: Path) -> None:
            finish()
            self.vgg_edit.setText(str(target))
            self.check_vgg()

        def failed(message: str) -> None:
            finish()
            set_note(self.vgg_status, f"✗ Download failed: {message}", BAD)
            self.services.hub.error.emit("Download failed", message)

        def cancelled() -> None:
            finish()
            set_note(self.vgg_status, "Download cancelled; it continues where it stopped next time.")

        self.download_button.setEnabled(False)
        worker = Worker(job, name="vgg-download")
        worker.progress.connect(on_progress)
        worker.succeeded.connect(done)
        worker.failed.connect(failed)
        worker.cancelled_signal.connect(cancelled)
        progress.canceled.connect(worker.cancel)
        progress.setValue(0)
        self.workers.start(worker)

    # ------------------------------------------------------------------ save
    def validate(self) -> bool:
        ok = True
        text = self.library_edit.text().strip()
        if text:
            folder = Path(text).expanduser()
            problem = None
            if folder.exists() and not folder.is_dir():
                problem = "This is a file, not a folder."
            else:
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    if not os.access(folder, os.W_OK):
                        problem = "This folder is not writable; choose another."
                except OSError as exc:
                    problem = f"Cannot create this folder: {exc.strerror or exc}"
            if problem:
                set_note(self.library_note, problem, BAD)
                ok = False
        vgg_text = self.vgg_edit.text().strip()
        if vgg_text and not Path(vgg_text).expanduser().exists():
            set_note(self.vgg_status, "✗ This file does not exist; locate it again or clear the field.", BAD)
            ok = False
        elif vgg_text and self.vgg_valid is False:
            ok = False   # the red line already says why
        if self.preset_combo.currentText().endswith("(missing)"):
            ok = False
        if not ok:
            QTimer.singleShot(0, self.fit_height)
        return ok

    def save(self) -> None:
        if not self.validate():
            return
        settings = self.services.settings
        settings.library_dir = self.library_edit.text().strip() or None
        settings.vgg_path = self.vgg_edit.text().strip() or None
        settings.default_device = self.device_combo.currentData()
        settings.default_preset = self.preset_combo.currentData() or settings.default_preset
        try:
            self.services.save_settings()
        except OSError as exc:
            set_note(self.library_note, f"Cannot save the settings: {exc}", BAD)
            return
        self.accept()

    def done(self, result: int) -> None:
        super().done(result)   # hide first: waiting for a worker below may take a moment
        self.workers.stop()


