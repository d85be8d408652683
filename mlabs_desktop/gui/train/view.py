"""The Train view: a scrollable set-up form on the left, the live run on the right.

Training runs in a `TrainWorker` thread; its events arrive here as queued
signals. Per step the GUI thread only appends four numbers to the chart's
arrays and remembers the event; a coalescing timer redraws progress, stats and
the status bar at most ten times a second however fast steps come. Nothing in
this module imports TensorFlow.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QScrollArea, QSplitter,
                               QVBoxLayout, QWidget)

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import CheckpointEvent, DoneEvent, LogEvent, OutOfMemoryEvent, PreviewEvent, StepEvent
from mlabs_desktop.core.library.store import Model
from mlabs_desktop.gui.kit.wheel_guard import guard_wheel
from mlabs_desktop.gui.kit.common import pixmap_from_array, user_text
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.train.form import TrainForm
from mlabs_desktop.gui.train.inputs import NOTE_STYLE
from mlabs_desktop.core.events import format_duration
from mlabs_desktop.gui.train.live import LivePanel
from mlabs_desktop.gui.train.worker import TrainWorker

REFRESH_MS = 100          # progress, stats and status: at most 10 redraws a second

RESUMABLE = ("stopped", "paused")  # states a run ends in that Resume continues


class TrainView(QWidget):
    """Set up, start, watch, stop and resume training runs."""

    def __init__(self, services: Services, parent: QWidget | None = None):
        super().__init__(parent)
        self.services = services
        self.hub = services.hub
        self._worker: TrainWorker | None = None
        self._run_name = ""
        self._epochs = 1
        self._last_step: StepEvent | None = None
        self._done: DoneEvent | None = None
        self._oom: OutOfMemoryEvent | None = None
        self._failed = False
        # Listing GPUs imports TensorFlow (in a worker): started once the view is shown, a moment
        # later so the window paints first. A child timer dies with the view, never firing late.
        self._detect_timer = QTimer(self, singleShot=True, interval=400)
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        self._build()
        self._detect_timer.timeout.connect(self.form.start_device_detection)
        self.hub.library_changed.connect(self._library_changed)
        self.form.changed.connect(self._update_buttons)
        self._update_buttons()

    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(14, 14, 14, 14)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        outer.addWidget(splitter)

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 8, 0)
        column.setSpacing(10)
        heading = QLabel("Train a style", styleSheet="font-size: 17px; font-weight: 600;")
        column.addWidget(heading)
        self.form = TrainForm(self.services)
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.form)
        guard_wheel(self.form)
        column.addWidget(self.scroll, 1)
        self.hint = QLabel(wordWrap=True, styleSheet=NOTE_STYLE)
        column.addWidget(self.hint)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training", toolTip="Start training with the settings above.")
        self.start_button.setDefault(True)
        self.start_button.setMinimumHeight(34)
        # The blue fill hides the style's own focus frame, so focus gets a ring of its own.
        self.start_button.setStyleSheet("QPushButton:enabled { background: #2563eb; color: white; "
                                        "font-weight: 600; border-radius: 5px; padding: 0 18px; "
                                        "border: 2px solid #2563eb; } "
                                        "QPushButton:enabled:focus { border: 3px solid #0b1f4d; }")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", toolTip="Stop after the current step; a checkpoint is saved "
                                       "and the model can be resumed later.")
        self.stop_button.setMinimumHeight(34)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.stop_button)
        column.addLayout(buttons)
        left.setMinimumWidth(350)  # with the live panel, fits the smallest window (960 px wide)
        splitter.addWidget(left)

        self.live = LivePanel()
        self.live.layout().setContentsMargins(8, 0, 0, 0)
        splitter.addWidget(self.live)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([490, 770])

    # ------------------------------------------------------------------ public API
    def shutdown(self, timeout_ms: int) -> bool:
        """Wait for background jobs (folder scans, device detection) before the app exits."""
        self._detect_timer.stop()
        return self.services.workers.wait(timeout_ms)

    def is_training(self) -> bool:
        return self._worker is not None and self._worker.isRunning()

    def request_stop_and_wait(self, timeout_ms: int) -> bool:
        """Ask the run to stop (it saves a checkpoint) and wait for every thread of this view."""
        deadline = time.monotonic() + timeout_ms / 1000
        ok = True
        if self.is_training():
            self._worker.stop()
            ok = self._worker.wait(max(0, timeout_ms))
        left = max(0, int((deadline - time.monotonic()) * 1000))
        return self.form.wait_for_workers(left) and ok

    def resume_model(self, name: str) -> None:
        model = self._model_for(name, "resume")
        if model is None:
            return
        if not model.has_checkpoint:
            self.hub.error.emit("Cannot resume", f"“{model.name}” has no training checkpoint (it was imported "
                                "or trained elsewhere). Fine-tune from it instead.")
            return
        self.form.load_for_resume(model)
        self.live.show_model(model)
        self.live.title.setText(f"“{model.name}”: ready to continue")

    def fine_tune_from(self, name: str) -> None:
        model = self._model_for(name, "fine-tune")
        if model is None:
            return
        self.form.load_for_fine_tune(model)
        self.live.reset()
        self.live.title.setText(f"Fine-tuning from “{model.name}”")

    def _model_for(self, name: str, what: str) -> Model | None:
        if self.is_training():
            self.hub.error.emit("Training is running", f"Stop the current training before you {what} "
                                "another model.")
            return None
        try:
            return self.services.library().get(name)
        except UserError as exc:
            self.hub.error.emit("Model not found", user_text(exc))
            return None

    # ------------------------------------------------------------------ start / stop
    def start(self) -> None:
        if self.is_training() or not self.form.validate():
            return
        library_root = str(self.services.library().root)
        try:
            if self.form.mode == "resume":
                name = self.form.resume_name or ""
                # The batch size is the model's own, unless out of memory made it smaller.
                worker = TrainWorker(resume=name, max_steps=int(self.form.raw("max-steps")),
                                     batch_size=int(self.form.raw("batch-size")), library_root=library_root)
            else:
                config = self.form.config()
                name = config.name or ""
                worker = TrainWorker(config, library_root=library_root)
                self.live.reset()
        except (UserError, ValueError) as exc:
            self.hub.error.emit("Cannot start training", user_text(exc))
            return
        # Epochs are counted against a total only when they set the length (Steps at 0).
        self._run_name = name
        self._epochs = 0 if int(self.form.raw("steps")) else int(self.form.raw("epochs"))
        self._last_step, self._done, self._oom, self._failed = None, None, None, False
        self.live.error_box.hide()
        worker.progress.connect(self._on_event)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.live.title.setText(f"Training “{name}”")
        self.live.append_log(f"starting “{name}” (the first step also prepares the networks and takes longer)")
        self.hub.status.emit(f"Training '{name}': starting…")
        worker.start()
        self._update_buttons()

    def stop(self) -> None:
        if self.is_training():
            self._worker.stop()
            self.live.append_log("stopping after this step (the first, if it has not run yet); "
                                 "saving a checkpoint…")
            self.live.title.setText(f"Stopping “{self._run_name}”…")
            self._update_buttons()

    # ------------------------------------------------------------------ events (GUI thread)
    def _on_event(self, event: object) -> None:
        if isinstance(event, StepEvent):
            self.live.chart.append(event.step, {"total": event.total_loss, "content": event.content_loss,
                                                "style": event.style_loss, "tv": event.tv_loss})
            self._last_step = event
            if not self._refresh_timer.isActive():
                self._refresh_timer.start()
        elif isinstance(event, PreviewEvent):
            self.live.add_preview(event.step, pixmap_from_array(np.asarray(event.image)))
        elif isinstance(event, CheckpointEvent):
            self.live.append_log(f"checkpoint saved at step {event.step:,}")
            self.hub.library_changed.emit()
        elif isinstance(event, LogEvent):
            self.live.append_log(event.message, event.level)
        elif isinstance(event, DoneEvent):
            self._done = event
            self.live.append_log(f"{event.state} at step {event.step:,} after "
                                 f"{format_duration(event.seconds)}; the model is in the library")
            self.hub.library_changed.emit()
        elif isinstance(event, OutOfMemoryEvent):
            self._oom = event  # the question comes once the thread has ended (`_on_finished`)

    def _refresh(self) -> None:
        event = self._last_step
        if event is None:
            return
        self.live.progress.setRange(0, max(1, event.total_steps))
        self.live.progress.setValue(event.step)
        self.live.progress.setFormat(f"{100 * event.step / max(1, event.total_steps):.1f} %")
        stats = self.live.stats
        stats["Step"].setText(f"{event.step:,} / {event.total_steps:,}")
        stats["Epoch"].setText(f"{event.epoch + 1} of {self._epochs}" if self._epochs else f"{event.epoch + 1}")
        stats["Speed"].setText(f"{event.images_per_sec:.1f} img/s")
        stats["Elapsed"].setText(format_duration(event.elapsed_seconds))
        stats["Remaining"].setText(format_duration(event.eta_seconds))
        self.hub.status.emit(f"Training '{self._run_name}': step {event.step}/{event.total_steps}, "
                             f"ETA {format_duration(event.eta_seconds)}")

    def _on_failed(self, message: str) -> None:
        self._failed = True
        if self._oom is not None and self._oom.smaller_batch:
            # Not an error box: `_offer_smaller_batch` asks whether to go on with a smaller batch.
            self.live.append_log(f"out of memory at batch size {self._oom.batch_size} (step {self._oom.step})",
                                 "error")
            self.hub.status.emit(f"Training '{self._run_name}' ran out of memory")
            return
        if "VGG19" in message and "Settings" not in message:
            message += ". Choose another file in Settings, or use Settings > Download."
        self.live.append_log(message, "error")
        self.live.show_error(message)
        self.hub.error.emit("Training failed", message)
        self.hub.status.emit(f"Training '{self._run_name}' failed")

    def _on_finished(self) -> None:
        self._refresh_timer.stop()
        self._refresh()
        self.live.stats["Remaining"].setText("—")  # nothing remains of a run that has ended
        self.live.chart.redraw()
        done = self._done
        self.live.title.setText(f"“{done.model_name}” {done.state}" if done else
                                f"“{self._run_name}” did not finish" if self._failed else "No training running")
        if done:
            self.hub.status.emit(f"Training '{done.model_name}' {done.state} at step {done.step}"
                                 + (" (resumable)" if done.state in RESUMABLE else ""))
        self._worker.wait()  # `finished` comes a moment before the thread has really ended
        self._worker = None
        self._after_run(done)
        self._update_buttons()
        if self._oom is not None:
            self._offer_smaller_batch(self._oom)

    def _offer_smaller_batch(self, oom: OutOfMemoryEvent) -> None:
        """Ask to go on with half the batch; whatever the answer, a saved model is ready to resume."""
        model = self.services.library().find(oom.model_name) if oom.model_name else None
        if model is not None:
            self.form.load_for_resume(model)
        smaller = oom.smaller_batch
        if smaller is None:
            return  # batch 1: `_on_failed` has shown the error
        where = (f"from the last checkpoint (step {oom.checkpoint_step:,})" if model is not None
                 else "from the start (nothing was saved yet)")
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(self, "Out of memory", f"Out of memory at batch size {oom.batch_size}. "
                                      f"Continue {where} with batch size {smaller}?",
                                      buttons.Yes | buttons.No, buttons.Yes)
        if answer != buttons.Yes:
            self.live.append_log("not continued; the model can be resumed later" if model is not None
                                 else "not continued")
            return
        self.form.set_params({"batch-size": smaller, "max-steps": oom.steps_left})
        self.start()

    def _after_run(self, done: DoneEvent | None) -> None:
        """A stopped model is offered for resuming; otherwise a new run gets a fresh name."""
        self.form.invalidate_library()
        model = self.services.library().find(done.model_name) if done else None
        if model is not None and done.state in RESUMABLE and model.has_checkpoint:
            self.form.load_for_resume(model)
        elif done is not None:
            self.form.clear_mode()

    def _library_changed(self) -> None:
        # Our own checkpoints change the library mid-run; the name check would then flag
        # the running model's name, so re-validate only once the run is over.
        if not self.is_training():
            self.form.invalidate_library()

    def _update_buttons(self) -> None:
        training = self.is_training()
        stopping = training and self._worker.stop_requested
        self.start_button.setEnabled(not training and self.form.is_valid())
        self.start_button.setText("Resume training" if self.form.mode == "resume" else "Start training")
        self.stop_button.setEnabled(training and not stopping)
        self.stop_button.setText("Stopping…" if stopping else "Stop")
        self.form.set_busy(training)
        if training:
            self.hint.setText("Training runs in the background: you can use the rest of the app meanwhile.")
        else:
            problem, count = self.form.first_problem(), len(self.form.errors)
            prefix = f"{count} things to fix before starting. First: " if count > 1 else ""
            self.hint.setText(prefix + problem if problem else "Ready to train.")

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if not self._detect_timer.isActive() and not self.form.devices_requested():
            self._detect_timer.start()
