"""Library > Make a fast copy…: a tiny network learns a style's outputs, with progress and Stop."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from mlabs_desktop.core.events import DistillStepEvent, format_duration, format_steps
from mlabs_desktop.core.library.store import Model
from mlabs_desktop.core.training.distill import DistillConfig, DistillResult, Distiller
from mlabs_desktop.gui.kit.common import Worker
from mlabs_desktop.gui.kit.services import Services

EXPLAIN = ("A fast copy is a new style in the Library with the tiny network: about twice as fast as lite, "
           "for previews, video and slow computers. It learns this style's own results on your photos, so it "
           "needs no VGG19 file. A few photos are kept aside to measure how close it comes.")


def photos_for(model: Model, parent: QWidget) -> str | None:
    """The folder the copy learns on: the style's own training photos, else one the user picks."""
    folder = model.manifest.provenance.get("train_path")
    if folder and Path(folder).is_dir():
        return folder
    chosen = QFileDialog.getExistingDirectory(parent, f"Photos for a fast copy of '{model.name}'")
    return chosen or None


class FastCopyDialog(QDialog):
    """Runs one distillation in a worker thread; ``made`` names the copy once it is in the Library."""

    made = Signal(str)

    def __init__(self, services: Services, model: Model, photos: str, parent: QWidget | None = None):
        super().__init__(parent, windowTitle=f"Fast copy of '{model.name}'")
        self._services = services
        self.model_name = model.name
        self._distiller = Distiller(DistillConfig(model.name, train_path=photos,
                                                  device=services.settings.default_device))
        explain = QLabel(EXPLAIN, wordWrap=True)
        self.progress = QProgressBar(maximum=self._distiller.config.steps, value=0, format="step %v of %m")
        self.status = QLabel("Starting…", wordWrap=True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.stop_button = QPushButton("Stop", toolTip="Stop after this step; the copy keeps what it learnt")
        self.stop_button.clicked.connect(self.stop)
        self.buttons.addButton(self.stop_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.accept)
        self.close_button.hide()
        layout = QVBoxLayout(self)
        for widget in (explain, self.progress, self.status, self.buttons):
            layout.addWidget(widget)
        self.resize(480, 220)
        self.worker = Worker(self._job, name="fast-copy")
        self.worker.progress.connect(self._on_progress)
        self.worker.succeeded.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled_signal.connect(lambda: self._finish("Stopped before the first step: nothing was made."))
        services.workers.start(self.worker)

    def _job(self, report, cancelled) -> DistillResult:  # noqa: ANN001 - the worker's callbacks
        self._distiller.on_event = report  # Stop and quitting reach it through `stop`
        return self._distiller.run()

    def is_running(self) -> bool:
        return self.worker.isRunning()

    def stop(self) -> None:
        """Stop after the current step; the copy is saved with what it learnt."""
        self._distiller.stop()
        self.stop_button.setEnabled(False)
        self.status.setText("Stopping after this step; the copy keeps what it learnt…")

    def _on_progress(self, event: object) -> None:
        if isinstance(event, DistillStepEvent):
            self.progress.setValue(event.step)
            if self.stop_button.isEnabled():  # once stopping, the words say so
                left = "" if event.eta_seconds is None else f" {format_duration(event.eta_seconds)} left"
                self.status.setText(f"Learning…{left}")

    def _on_done(self, result: DistillResult) -> None:
        self._services.hub.library_changed.emit()
        self.made.emit(result.model.name)
        self._finish(f"“{result.model.name}” is in the Library: {format_steps(result.steps)} in "
                     f"{format_duration(result.seconds)}; {result.psnr_db:.1f} dB PSNR against the original "
                     f"style {result.judged_on}. 30 dB and up look alike.")

    def _on_failed(self, message: str) -> None:
        self._finish(f"Could not make the copy: {message}", error=True)

    def _finish(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b91c1c;" if error else "")
        self.stop_button.hide()
        self.close_button.show()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.is_running():  # the copy is saved when the current step ends; the dialog waits for it
            self.stop()
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:  # Escape: the same as closing
        if self.is_running():
            self.stop()
            return
        super().reject()
