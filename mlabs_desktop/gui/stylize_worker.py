"""The one serial stylize worker: jobs wait in a queue and run one at a time off the GUI thread.

Two networks never run at once (they would fight over GPU memory), so every job,
a queued photo or an "All styles" grid, goes through one `StylizeQueue`. Each job
runs in a `common.Worker` thread; the `Stylizer` (which imports TensorFlow) is
made there on first use and cached per model, never at import or construction.
Results cross to the GUI thread as small frozen event objects; the arrays they
carry are new and never written to again, so sharing them is safe.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np
from PySide6.QtCore import QDeadlineTimer, QObject, Qt, Signal, Slot
from PySide6.QtGui import QImage

from ..core import images
from ..core.errors import Cancelled, UserError
from ..core.stylize import BlendOptions, finish
from .common import Throttle, Worker, qimage_from_array

if TYPE_CHECKING:
    from ..core.library import Library
    from ..core.stylize import Stylizer

THUMB_SIDE = 128
_tokens = itertools.count(1)


# ---------------------------------------------------------------------- jobs
@dataclass(frozen=True, eq=False)
class StyleJob:
    """Load a photo (downloading a URL first) and, when a style is given, run the network on it."""

    item_id: int
    source: Union[Path, str]             # a file, or an http(s) URL fetched in the worker
    model_name: str | None               # None: only load the photo (no style yet)
    device: str = "auto"
    image: images.LoadedImage | None = None  # the cached original; None loads it
    token: int = field(default_factory=lambda: next(_tokens))


@dataclass(frozen=True, eq=False)
class AllStylesJob:
    """One photo, scaled to tile size, in every listed style."""

    item_id: int
    image: images.LoadedImage
    model_names: tuple[str, ...]
    options: BlendOptions
    device: str = "auto"
    tile_side: int = 512
    token: int = field(default_factory=lambda: next(_tokens))


Job = Union[StyleJob, AllStylesJob]


# ---------------------------------------------------------------------- events
@dataclass(frozen=True)
class JobStarted:
    job: Job


@dataclass(frozen=True)
class StatusText:
    job: Job
    text: str


@dataclass(frozen=True)
class ImageLoaded:
    item_id: int
    image: images.LoadedImage
    display: QImage    # the original as the canvas draws it, made here: slow for big photos
    thumbnail: QImage  # longest side THUMB_SIDE


@dataclass(frozen=True)
class LoadFailed:
    """The photo itself cannot be used (any style would fail the same way)."""

    item_id: int
    message: str


@dataclass(frozen=True)
class Styled:
    item_id: int
    model_name: str
    raw: np.ndarray  # the network's float result, unclipped, the photo's size
    seconds: float


@dataclass(frozen=True)
class Tile:
    token: int
    index: int          # position among the job's model names
    model_name: str
    rgb: np.ndarray | None  # finished uint8 tile; None when this style failed
    error: str | None = None


@dataclass(frozen=True)
class JobFailed:
    job: Job
    message: str


@dataclass(frozen=True)
class JobEnded:
    job: Job
    cancelled: bool = False


# ---------------------------------------------------------------------- work (worker thread)
def out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or type(exc).__name__ in ("ResourceExhaustedError", "OutOfMemoryError")


def memory_message(name: str, size: tuple[int, int]) -> str:
    return (f"Not enough memory to stylize {name} at {size[0]}x{size[1]} pixels. "
            "Close other programs and try again, or scale the photo down first.")


class _StylizerCache:
    """Loaded networks, newest use last; a few are kept so switching back is instant."""

    def __init__(self, library: Callable[[], "Library"], keep: int = 3):
        self._library = library
        self._keep = keep
        self._items: OrderedDict[tuple[str, str, str], "Stylizer"] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_name: str, device: str) -> "Stylizer":
        from ..core import stylize  # looked up at call time: tests count Stylizer.run

        if "keras" not in sys.modules:
            # Importing TensorFlow holds the interpreter lock for up to a second at a time: give
            # the GUI thread a moment to draw the photo just loaded before that starts.
            time.sleep(0.2)
        model = self._library().get(model_name)
        # The update time is in the key: a model retrained since is loaded afresh.
        key = (str(model.folder), model.manifest.updated, device)
        with self._lock:
            found = self._items.pop(key, None)
            if found is None:
                found = stylize.Stylizer(model, device)
            self._items[key] = found
            while len(self._items) > self._keep:
                self._items.popitem(last=False)
            return found


def _load(job: StyleJob, report: Callable[[Any], None], cancelled: Callable[[], bool]) -> images.LoadedImage | None:
    from ..core.downloads import DownloadProgress, fetch_to_path, is_url

    source = job.source
    try:
        if isinstance(source, str) and is_url(source):
            throttle = Throttle(10)

            def on_progress(p: DownloadProgress) -> None:
                if not throttle.ready():
                    return
                done = f"{p.received / p.total:.0%}" if p.total else f"{p.received // 1024} KB"
                report(StatusText(job, f"Downloading {source.rsplit('/', 1)[-1][:60]}… {done}"))
            source = fetch_to_path(source, progress=on_progress, cancelled=cancelled)
        image = images.load_image(Path(source))
    except UserError as exc:
        report(LoadFailed(job.item_id, str(exc)))
        return None
    except MemoryError:
        report(LoadFailed(job.item_id, f"Not enough memory to open {Path(str(source)).name}. "
                                       "Close other programs and try again."))
        return None
    display = display_image(image.rgb, image.alpha)
    thumb = display.scaled(THUMB_SIDE, THUMB_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
    report(ImageLoaded(job.item_id, image, display, thumb))
    return image


def run_style_job(job: StyleJob, cache: _StylizerCache, report: Callable[[Any], None],
                  cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise Cancelled()
    image = job.image or _load(job, report, cancelled)
    if image is None or job.model_name is None:
        return
    if cancelled():
        raise Cancelled()
    stylizer = cache.get(job.model_name, job.device)
    started = time.perf_counter()
    try:
        raw = stylizer.run(image.rgb)
    except Exception as exc:  # noqa: BLE001 - memory errors come as several types
        if out_of_memory(exc):
            raise UserError(memory_message(image.path.name, image.size)) from None
        raise
    report(Styled(job.item_id, job.model_name, np.asarray(raw, np.float32), time.perf_counter() - started))


def run_all_styles_job(job: AllStylesJob, cache: _StylizerCache, report: Callable[[Any], None],
                       cancelled: Callable[[], bool]) -> None:
    rgb = images.resize_max(job.image.rgb, job.tile_side)
    for index, name in enumerate(job.model_names):
        if cancelled():
            raise Cancelled()
        report(StatusText(job, f"All styles: {name} ({index + 1} of {len(job.model_names)})…"))
        try:
            raw = cache.get(name, job.device).run(rgb)
            tile = Tile(job.token, index, name, images.to_uint8(finish(rgb, raw, job.options)))
        except UserError as exc:  # one broken model must not spoil the whole grid
            tile = Tile(job.token, index, name, None, str(exc))
        except Exception as exc:  # noqa: BLE001
            if not out_of_memory(exc):
                raise
            tile = Tile(job.token, index, name, None, memory_message(job.image.path.name, rgb.shape[1::-1]))
        report(tile)


# ---------------------------------------------------------------------- the queue (GUI thread)
class StylizeQueue(QObject):
    """Runs submitted jobs one at a time; every outcome arrives on ``event``."""

    event = Signal(object)       # one of the event dataclasses above
    busy_changed = Signal(bool)

    def __init__(self, library: Callable[[], "Library"], parent: QObject | None = None):
        super().__init__(parent)
        self._cache = _StylizerCache(library)
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


# ---------------------------------------------------------------------- re-blending (GUI thread + one thread)
def display_image(rgb: np.ndarray, alpha: np.ndarray | None) -> QImage:
    """A QImage in the format the canvas draws directly; QImage (unlike QPixmap) is safe off the GUI thread."""
    fmt = QImage.Format.Format_ARGB32_Premultiplied if alpha is not None else QImage.Format.Format_RGB32
    return qimage_from_array(rgb, alpha).convertToFormat(fmt)


def render_blend(rgb: np.ndarray, raw: np.ndarray, alpha: np.ndarray | None, options: BlendOptions) -> QImage:
    """The finished picture, ready to draw."""
    return display_image(finish(rgb, raw, options), alpha)


class BlendRenderer(QObject):
    """Re-blends a cached result for a new strength or colour choice, never running the network.

    A big photo takes a noticeable part of a second in NumPy, so it is blended in
    a thread of its own (not the network queue) and the newest request wins;
    ``ready(token, image)`` brings the picture back to the GUI thread.
    """

    ready = Signal(int, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._worker: Worker | None = None
        self._waiting: tuple[int, Callable[[Callable[[Any], None], Callable[[], bool]], QImage]] | None = None
        self._tokens = itertools.count(1)

    def request(self, rgb: np.ndarray, raw: np.ndarray, alpha: np.ndarray | None, options: BlendOptions) -> int:
        token = next(self._tokens)
        self._waiting = (token, lambda report, cancelled: render_blend(rgb, raw, alpha, options))
        self._start()
        return token

    def is_busy(self) -> bool:
        return self._worker is not None

    def cancel_and_wait(self, deadline: QDeadlineTimer) -> bool:
        self._waiting = None
        if self._worker is not None and not self._worker.wait(deadline):
            return False
        self._worker = None
        return True

    def _start(self) -> None:
        if self._worker is not None or self._waiting is None:
            return  # the running blend finishes first; then only the newest waiting one runs
        token, job = self._waiting
        self._waiting = None
        worker = Worker(job, parent=self, name="blend")
        worker.setProperty("token", token)
        worker.succeeded.connect(self._on_done)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    @Slot(object)
    def _on_done(self, image: object) -> None:
        worker = self.sender()
        if worker is self._worker and self._worker is not None:
            self.ready.emit(int(self._worker.property("token")), image)

    @Slot()
    def _on_finished(self) -> None:
        worker = self.sender()
        if worker is self._worker and self._worker is not None:
            self._worker.wait()
            self._worker.deleteLater()
            self._worker = None
        self._start()
