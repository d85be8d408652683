"""The GPU status dialog: which devices the Keras backend sees, and how to get a GPU when it sees none.

Listing devices imports TensorFlow, so it runs in a `Worker`; the dialog stops
it before it closes.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from mlabs_desktop.gui.kit.common import Worker, WorkerSet
from mlabs_desktop.gui.dialogs.forms import BAD, note_label, set_note
from mlabs_desktop.gui.library.details import set_font


class GpuStatusDialog(QDialog):
    """Which devices the Keras backend sees, and how to get a GPU when it sees none."""

    def __init__(self, devices: list | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.workers = WorkerSet()
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

        def job(report: Callable[[Any], None], cancelled: Callable[[], bool]) -> tuple[list, str]:
            from mlabs_desktop.core.hardware import devices as core_devices
            found = devices if devices is not None else core_devices.detect_devices()
            return found, _versions(core_devices.keras_backend())

        worker = Worker(job, name="gpu-status")
        worker.succeeded.connect(lambda result: self.show_devices(*result))
        worker.failed.connect(lambda msg: set_note(self.hint, f"Device detection failed: {msg}", BAD))
        self.workers.start(worker)

    def show_devices(self, devices: list, versions: str) -> None:
        from mlabs_desktop.core.hardware.devices import no_gpu_hint
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

    def done(self, result: int) -> None:
        super().done(result)   # hide first: waiting for a worker below may take a moment
        self.workers.stop()


def _versions(backend: str) -> str:
    """Versions of what the devices came from (already imported by detection: no extra cost)."""
    parts = [f"Keras backend: {backend}"]
    for name, label in (("keras", "Keras"), ("tensorflow", "TensorFlow")):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if version:
            parts.append(f"{label} {version}")
    return "  ·  ".join(parts)
