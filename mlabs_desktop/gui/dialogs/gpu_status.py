"""The GPU status dialog: which devices the Keras backend sees, and how to get a GPU when it sees none.

The list comes from the app's one `DeviceService` (detection imports TensorFlow, in
the background); the dialog shows it as soon as it is known.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from mlabs_desktop.gui.kit.device_service import DeviceService
from mlabs_desktop.gui.dialogs.forms import BAD, note_label, set_note
from mlabs_desktop.gui.library.details import set_font


class GpuStatusDialog(QDialog):
    """Which devices the Keras backend sees, and how to get a GPU when it sees none."""

    def __init__(self, devices: DeviceService, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("GPU status")
        self.setMinimumWidth(560)
        self.summary = QLabel("Looking for devices (loading TensorFlow)…")
        set_font(self.summary, 1.2, bold=True)
        self.device_list = note_label()
        self.device_list.setStyleSheet("")
        self.hint = note_label()
        self.hint.setTextFormat(Qt.TextFormat.MarkdownText)   # the hint quotes commands in `backticks`
        self.hint.setOpenExternalLinks(True)
        self.hint.hide()
        self.versions = note_label()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.setSpacing(10)
        for widget in (self.summary, self.device_list, self.hint, self.versions):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(buttons)

        if devices.devices is not None:
            self.show_devices(devices.devices)
        elif devices.error is not None:
            self._failed(devices.error)
        else:
            devices.found.connect(self.show_devices)
            devices.failed.connect(self._failed)
            devices.request()

    def _failed(self, message: str) -> None:
        set_note(self.hint, f"Device detection failed: {message}", BAD)

    def show_devices(self, devices: list) -> None:
        from mlabs_desktop.core.hardware.devices import keras_backend, no_gpu_hint

        versions = _versions(keras_backend())
        gpus = [d for d in devices if d.kind == "gpu"]
        self.summary.setText(f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''} found" if gpus
                             else "No GPU found: training and stylizing run on the CPU")
        lines = []
        for d in devices:
            extra = f" (compute capability {d.compute_capability[0]}.{d.compute_capability[1]})" \
                if d.compute_capability else ""
            lines.append(f"•  {d.label}{extra}")
        self.device_list.setText("\n".join(lines))
        if gpus:
            self.hint.hide()
        else:
            set_note(self.hint, no_gpu_hint(), "palette(window-text)")
        self.versions.setText(versions)
        # A top-level window does not grow by itself for wrapped text set after it was shown.
        self.adjustSize()


def _versions(backend: str) -> str:
    """Versions of what the devices came from (already imported by detection: no extra cost)."""
    parts = [f"Keras backend: {backend}"]
    for name, label in (("keras", "Keras"), ("tensorflow", "TensorFlow")):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if version:
            parts.append(f"{label} {version}")
    return "  ·  ".join(parts)
