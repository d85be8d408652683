"""The training thread: owns one core `Trainer`, sends its events to the GUI thread.

TensorFlow is imported here, inside the thread, the first time a run starts:
the window never waits for it. The trainer's events are small frozen
dataclasses and cross as they are on `Worker.progress` (a queued signal); a
preview is copied so the GUI never shares a buffer with the training thread.
Keras's dtype policy is per thread, and `Trainer.run` sets mixed precision
itself, so calling it here is all that is needed.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject

from mlabs_desktop.core.config import TrainingConfig
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import Event, PreviewEvent, StepEvent
from mlabs_desktop.core import messages
from mlabs_desktop.core.hardware.memory import TrainingOutOfMemory, out_of_memory
from mlabs_desktop.gui.kit.common import Worker

PREVIEW_MAX_SIDE = 512


def friendly_error(exc: BaseException) -> BaseException:
    """Turn the failures people meet into a `UserError` in the app's words, saying what to do next."""
    if isinstance(exc, TrainingOutOfMemory):
        text = messages.training_out_of_memory(exc.event, messages.APP)
        return UserError(text[:1].upper() + text[1:] + ".")
    if out_of_memory(exc):
        return UserError(messages.out_of_memory(messages.APP, "training"))
    return exc


def _small_copy(image: np.ndarray) -> np.ndarray:
    """A private uint8 copy, at most PREVIEW_MAX_SIDE (the trainer already keeps it small)."""
    h, w = image.shape[:2]
    step = max(1, -(-max(h, w) // PREVIEW_MAX_SIDE))
    return np.ascontiguousarray(image[::step, ::step], dtype=np.uint8).copy()


class TrainWorker(Worker):
    """Runs a new training (``config``) or continues a model (``resume``, optionally with another
    ``batch_size``) in a QThread.

    Signals (inherited from `Worker`): ``progress(event)`` for every core event,
    ``succeeded(model_name)``, ``failed(message)``.
    """

    def __init__(self, config: TrainingConfig | None = None, *, resume: str | None = None,
                 max_steps: int = 0, batch_size: int | None = None, library_root: str | None = None,
                 parent: QObject | None = None):
        if (config is None) == (resume is None):
            raise ValueError("give either a config or the name of a model to resume")
        super().__init__(self._job, parent, name="training")
        self.config = config
        self.resume = resume
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.library_root = library_root
        self._lock = threading.Lock()
        self._trainer: Any = None
        self._stop_requested = False
        self.steps_seen = 0

    def stop(self) -> None:
        """Ask the trainer to stop after the current step; it saves a checkpoint. Any thread.

        A stop asked for while the trainer still prepares is passed on at its first step:
        the core's batch stream never returns when it is stopped before it has queued a batch
        (see `core.dataset.BatchStream.batches`), which would leave this thread hanging.
        """
        with self._lock:
            self._stop_requested = True
            trainer = self._trainer if self.steps_seen else None
        self.cancel()
        if trainer is not None:
            trainer.stop()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def _job(self, report: Callable[[Any], None], cancelled: Callable[[], bool]) -> str:
        from mlabs_desktop.core.library.store import Library
        from mlabs_desktop.core.training.trainer import Trainer  # imports TensorFlow: here, in the training thread

        def on_event(event: Event) -> None:
            if isinstance(event, StepEvent):
                with self._lock:
                    self.steps_seen += 1
                    trainer = self._trainer if self._stop_requested else None
                if trainer is not None:
                    trainer.stop()
            elif isinstance(event, PreviewEvent):
                event = PreviewEvent(event.step, event.path, _small_copy(event.image))
            report(event)

        try:
            library = Library(self.library_root) if self.library_root else Library()
            if self.resume is not None:
                trainer = Trainer.for_resume(self.resume, self.max_steps, on_event, library, self.batch_size)
            else:
                trainer = Trainer(self.config, on_event, library)
            with self._lock:
                self._trainer = trainer
            return trainer.run().name
        except UserError as exc:
            if not isinstance(exc, TrainingOutOfMemory):
                raise
            raise friendly_error(exc) from exc
        except Exception as exc:  # noqa: BLE001 - every failure must reach the window
            friendly = friendly_error(exc)
            if friendly is exc:
                raise
            raise friendly from exc
