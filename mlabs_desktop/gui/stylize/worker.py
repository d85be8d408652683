"""The one serial stylize worker: jobs wait in a queue and run one at a time off the GUI thread.

Two networks never run at once (they would fight over GPU memory), so every job,
a queued photo or an "All styles" grid, goes through one `StylizeQueue`. Each job
runs in a `common.Worker` thread; the `Stylizer` (which imports TensorFlow) is
made there on first use and cached per model, never at import or construction.

What a job is and what it reports are in `jobs`; the work itself, in the
worker thread, in `work`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QDeadlineTimer, QObject, Signal, Slot

from mlabs_desktop.gui.kit.common import Worker
from mlabs_desktop.gui.stylize.jobs import Job, JobEnded, JobFailed, JobStarted, StyleJob
from mlabs_desktop.gui.stylize.work import StylizerCache, run_all_styles_job, run_style_job

if TYPE_CHECKING:
    from mlabs_desktop.core.library.store import Library


class StylizeQueue(QObject):
    """Runs submitted jobs one at a time; every outcome arrives on ``event``."""

    event = Signal(object)       # one of the event dataclasses above
    busy_changed = Signal(bool)

    def __init__(self, library: Callable[[], "Library"], parent: QObject | None = None):
        super().__init__(parent)
        self._cache = StylizerCache(library)
        self._pending: deque[Job] = deque()
        self._worker: Worker | None = None
        self._job: Job | None = None

    # -- what is queued
    def submit(self, job: Job, *, front: bool = False) -> None:
        (self._pending.appendleft if front else self._pending.append)(job)
        self._start_next()

    def pending(self) -> list[Job]:
        return list(self._pending)

    def current(self) -> Job | None:
        return self._job

    def discard(self, drop: Callable[[Job], bool]) -> list[Job]:
        """Remove waiting jobs for which ``drop(job)`` is true; returns them."""
        dropped = [j for j in self._pending if drop(j)]
        self._pending = deque(j for j in self._pending if not drop(j))
        return dropped

    def promote(self, pick: Callable[[Job], bool]) -> None:
        """Move the waiting jobs ``pick`` chooses to the front (what the user looks at first)."""
        chosen = [j for j in self._pending if pick(j)]
        rest = [j for j in self._pending if not pick(j)]
        self._pending = deque(chosen + rest)

    def cancel_current(self, pick: Callable[[Job], bool] = lambda job: True) -> None:
        """Ask the running job to stop at its next check (a network call in flight finishes)."""
        if self._worker is not None and self._job is not None and pick(self._job):
            self._worker.cancel()

    def is_busy(self) -> bool:
        return self._worker is not None or bool(self._pending)

    def cancel_and_wait(self, timeout_ms: int) -> bool:
        """Drop waiting jobs, stop the running one, wait for its thread; True when none runs."""
        self._pending.clear()
        worker = self._worker
        if worker is None:
            return True
        worker.cancel()
        if not worker.wait(QDeadlineTimer(max(0, timeout_ms))):
            return False
        self._finish(worker, cancelled=True)
        return True

    # -- running
    def _start_next(self) -> None:
        if self._worker is not None or not self._pending:
            return
        job = self._pending.popleft()
        runner = run_style_job if isinstance(job, StyleJob) else run_all_styles_job
        worker = Worker(lambda report, cancelled: runner(job, self._cache, report, cancelled),
                        parent=self, name="stylize")
        self._worker, self._job = worker, job
        # Bound methods of this GUI-thread object: Qt queues the calls to this thread.
        worker.progress.connect(self._on_progress)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self.event.emit(JobStarted(job))
        self.busy_changed.emit(True)
        worker.start()

    @Slot(object)
    def _on_progress(self, event: object) -> None:
        if self.sender() is self._worker:
            self.event.emit(event)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.sender() is self._worker and self._job is not None:
            self.event.emit(JobFailed(self._job, message))

    @Slot()
    def _on_finished(self) -> None:
        worker = self.sender()
        if worker is self._worker and isinstance(worker, Worker):
            self._finish(worker, cancelled=worker.is_cancelled())

    def _finish(self, worker: Worker, cancelled: bool) -> None:
        job = self._job
        self._worker, self._job = None, None
        worker.wait()  # `finished` comes a moment before the thread has really ended
        worker.deleteLater()
        if job is not None:
            self.event.emit(JobEnded(job, cancelled))
        if self._pending:
            self._start_next()
        else:
            self.busy_changed.emit(False)
