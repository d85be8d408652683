"""The photo queue of the Stylize view: what each photo holds, and the queue running it (the list is `queue_list`).

An item keeps its original (float RGB + alpha) and the network's raw float result
per `Run` (a style at a brush size), so strength, colour and mix changes re-blend
from memory instead of running the network again. Its state (queued / running /
done / failed) is always for the `Look` currently picked, which may need two runs.

Memory stays bounded however long the queue: originals past their budget are
let go (and read from their file again when shown or saved), results past
theirs are spilled to disk by the `ResultStore`. What is on screen is never let go.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union
from urllib.parse import unquote, urlsplit

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from mlabs_desktop.core.images.decode import LoadedImage
from mlabs_desktop.core.hardware.memory import host_memory
from mlabs_desktop.core.stylize.result_store import ResultStore
from mlabs_desktop.gui.stylize.jobs import (ImageLoaded, JobEnded, JobFailed, JobStarted, LoadFailed, Look, Run,
                                            StatusText, Styled, StyleJob)
from mlabs_desktop.gui.stylize.worker import StylizeQueue

if TYPE_CHECKING:
    from mlabs_desktop.core.library.store import Library

GB = 1 << 30


def memory_budgets() -> tuple[int, int]:
    """Bytes of (originals, raw results) the queue keeps in memory: 1 and 2 GB, less on a small computer.

    A 12-megapixel photo's original takes about 190 MB (float pixels and the
    picture drawn on screen), each of its results 144 MB.
    """
    total = (host_memory() or (8 * GB, 0))[0]
    return min(GB, max(GB // 4, total // 16)), min(2 * GB, max(GB // 4, total // 8))

@dataclass(eq=False)
class QueueItem:
    id: int
    source: Union[Path, str]                      # a file, or an http(s) URL
    image: LoadedImage | None = None              # the original, once loaded
    display: QImage | None = None                 # the same, ready to draw (made in the worker)
    thumb: QPixmap | None = None
    done: set[Run] = field(default_factory=set)   # runs with a result in the queue's `ResultStore`
    local: Path | None = None                     # the file the original was read from (a URL's download)
    has_alpha: bool = False                       # known once opened, kept when the original is let go
    seconds: dict[Run, float] = field(default_factory=dict)
    errors: dict[Run, str] = field(default_factory=dict)          # run -> why it failed
    load_error: str | None = None                 # the photo itself is unusable
    running: tuple[Run, ...] | None = None        # what the worker runs on it now (empty: only loading)

    @property
    def name(self) -> str:
        if isinstance(self.source, Path):
            return self.source.name
        tail = unquote(urlsplit(self.source).path.rstrip("/").rsplit("/", 1)[-1])
        return tail or "downloaded image"

    @property
    def stem(self) -> str:
        return Path(self.name).stem or "image"

    def ready(self, look: Look) -> bool:
        """Every run ``look`` needs is done."""
        runs = look.runs()
        return bool(runs) and all(run in self.done for run in runs)

    def state(self, look: Look) -> tuple[str, str]:
        """(state, detail) for ``look``: the words the list and the tooltip show."""
        if self.load_error:
            return "failed", self.load_error
        runs = look.runs()
        if not runs:
            return "queued", "Waiting for a style"
        failed = next((run for run in runs if run in self.errors), None)
        if failed is not None:
            return "failed", self.errors[failed]
        if self.ready(look):
            return "done", f"Done in {sum(self.seconds.get(run, 0) for run in runs):.1f} s"
        if self.running is not None and any(run in self.running for run in runs):
            return "running", "Loading…" if self.image is None else "Stylizing…"
        return "queued", "Queued"


def short_reason(message: str) -> str:
    """The part of "Cannot open '/long/path/x.jpg': it is corrupt." after the path."""
    reason = message.split("': ", 1)[1] if "': " in message else message
    return reason.rstrip(".")


class PhotoQueue(QObject):
    """The photos and their cached results, run through the one serial worker for the current style.

    The view only shows what this holds: ``changed(id, new_pixels)`` says which
    photo to redraw, ``failed`` carries each failure once. ``show(id)`` says which
    photo is on screen: it goes first, and is the one thing never let go of.
    """

    added = Signal()
    changed = Signal(int, bool)       # item id, whether its pictures changed (not only its state)
    failed = Signal(str, str, bool)   # photo name, message, failed while opening (not while styling)
    status = Signal(str)              # download progress and the like
    _result_dropped = Signal(object)  # (item id, run): neither memory nor disk could keep it

    def __init__(self, library: Callable[[], Library], device: Callable[[], str], parent: QObject | None = None):
        super().__init__(parent)
        self.items: dict[int, QueueItem] = {}
        self.look = Look()
        self.shown: int | None = None
        self.worker = StylizeQueue(library, self)
        self.worker.event.connect(self._on_event)
        self._device = device
        self._ids = itertools.count(1)
        self.originals_budget, results_budget = memory_budgets()
        self._originals: OrderedDict[int, int] = OrderedDict()  # loaded item id -> bytes, least recent first
        self._result_dropped.connect(self._on_result_dropped)
        self.results = ResultStore(results_budget, dropped=self._result_dropped.emit)
        self.precisions: dict[Run, str] = {}  # what each run's network last computed in

    @property
    def style(self) -> str | None:
        return self.look.style

    def precision(self) -> str | None:
        """What the current look's networks computed in ("float32 and bfloat16" when they differ); None until run."""
        found = {self.precisions.get(run) for run in self.look.runs()}
        return None if None in found or not found else " and ".join(sorted(found))

    # -- what the view asks

    def originals(self) -> list[Path]:
        """The files the queued photos were read from: a save never writes over one of them."""
        return [path for item in self.items.values() for path in (item.source, item.local)
                if isinstance(path, Path)]

    def result(self, item: QueueItem, run: Run, *, keep: bool = True) -> np.ndarray | None:
        """The raw result of ``run`` on ``item``, read back from disk if it was spilled."""
        return self.results.get((item.id, run), keep=keep) if run in item.done else None

    def look_raws(self, item: QueueItem, look: Look, *, keep: bool = True) -> list[np.ndarray] | None:
        """The raw results of ``look``'s runs on ``item`` (`Look.combine` makes one); None until all are done."""
        raws = [self.result(item, run, keep=keep) for run in look.runs()]
        return None if not raws or any(raw is None for raw in raws) else raws  # type: ignore[return-value]

    def look_result(self, item: QueueItem, look: Look, *, keep: bool = True) -> np.ndarray | None:
        raws = self.look_raws(item, look, keep=keep)
        return None if raws is None else look.combine(raws)

    def originals_bytes(self) -> int:
        return sum(self._originals.values())

    def close(self) -> None:
        """Let go of every result and remove the spill folder (the app is closing)."""
        self.results.close()

    def add(self, sources: Sequence[Union[Path, str]]) -> tuple[int, int | None]:
        """Queue new sources; returns how many were new and the id to show (the first, new or known)."""
        known = {str(item.source): item.id for item in self.items.values()}
        first: int | None = None
        added = 0
        for source in sources:
            if str(source) in known:  # already queued: just show it again
                first = first or known[str(source)]
                continue
            item = QueueItem(next(self._ids), source)
            self.items[item.id] = item
            self._submit(item)
            first, added = first or item.id, added + 1
        if added:
            self.added.emit()
        return added, first

    def set_look(self, look: Look, first: int | None = None) -> None:
        """Queue every photo again for ``look`` (``first`` ahead); cached results come back at once."""
        same_runs = look.runs() == self.look.runs()
        self.look = look
        if same_runs:
            return  # a new amount of a mix of results: only the picture changes
        self.worker.discard(lambda job: isinstance(job, StyleJob))  # they were for the old look
        for item in sorted(self.items.values(), key=lambda it: it.id != first):
            if self._needs_work(item):
                self._submit(item)
        self._pin()

    def show(self, item_id: int | None) -> None:
        """``item_id`` is on screen now: keep it in memory, and load or run it first if it needs that."""
        self.shown = item_id
        item = self.items.get(item_id) if item_id is not None else None
        if item is None:
            self._pin()
            return
        if item_id in self._originals:
            self._originals.move_to_end(item_id)
        self._pin()
        waiting = any(getattr(job, "item_id", None) == item_id for job in self.worker.pending())
        running = item.running is not None
        if waiting:
            self.worker.promote(lambda job: isinstance(job, StyleJob) and job.item_id == item_id)
        elif not running and (item.image is None or self._needs_work(item)) and not item.load_error:
            self.worker.submit(self._job(item), front=True)  # let go of earlier, or its result was dropped

    def remove(self, ids: Sequence[int]) -> None:
        gone = set(ids)
        self.worker.discard(lambda job: getattr(job, "item_id", None) in gone)
        for item_id in gone:  # a job running on one finishes; its result finds no item and is dropped
            item = self.items.pop(item_id, None)
            self._originals.pop(item_id, None)
            for run in item.done if item else ():
                self.results.discard((item_id, run))

    def retry(self, ids: Sequence[int]) -> None:
        for item in (self.items[i] for i in ids if i in self.items):
            if item.load_error or any(run in item.errors for run in self.look.runs()):
                item.load_error = None
                for run in self.look.runs():
                    item.errors.pop(run, None)
                self._submit(item)
                self.changed.emit(item.id, False)

    # -- internals
    def _missing(self, item: QueueItem) -> tuple[Run, ...]:
        """The current look's runs that ``item`` has neither a result nor a failure for."""
        return tuple(run for run in self.look.runs() if run not in item.done and run not in item.errors)

    def _needs_work(self, item: QueueItem) -> bool:
        """Not failed, and never opened yet or missing a result in the current look, and not running it."""
        missing = self._missing(item)
        if item.load_error or (item.running is not None and set(missing) <= set(item.running)):
            return False
        return item.local is None or bool(missing)

    def _never_ran(self, item: QueueItem, ended: StyleJob) -> bool:
        """Runs the look needs that ``ended`` did not cover (the look changed meanwhile, or a run before them failed).

        A result that ran and could not be kept is not among them: it runs again when shown, never in a loop.
        """
        waiting = any(getattr(job, "item_id", None) == item.id for job in self.worker.pending())
        return not waiting and not item.load_error and any(
            run not in ended.runs or run not in item.seconds for run in self._missing(item))

    def _job(self, item: QueueItem) -> StyleJob:
        # Once opened, a photo is read again from its local file: a URL is not downloaded twice.
        # A photo let go of whose results are kept is only read again, never re-run.
        runs = tuple(run for run in self._missing(item) if run not in (item.running or ()))  # never twice at once
        return StyleJob(item.id, item.local or item.source, runs, self._device(), item.image)

    def _submit(self, item: QueueItem) -> None:
        self.worker.submit(self._job(item))

    def _pin(self) -> None:
        self.results.pin({(self.shown, run) for run in self.look.runs()} if self.shown is not None else set())

    def _keep_original(self, item: QueueItem) -> None:
        assert item.image is not None and item.display is not None
        alpha = item.image.alpha.nbytes if item.image.alpha is not None else 0
        self._originals[item.id] = item.image.rgb.nbytes + alpha + item.display.sizeInBytes()
        self._originals.move_to_end(item.id)
        total = self.originals_bytes()
        for item_id in [i for i in self._originals if i != self.shown]:
            if total <= self.originals_budget:
                break
            total -= self._originals.pop(item_id)
            other = self.items[item_id]
            other.image, other.display = None, None  # read from `other.local` again when next needed

    @Slot(object)
    def _on_result_dropped(self, key: object) -> None:
        item_id, run = key  # type: ignore[misc]
        item = self.items.get(item_id)
        if item is None or run not in item.done:
            return
        item.done.discard(run)
        if item_id == self.shown:
            self.show(item_id)  # on screen, so run it again now; others wait until they are shown
        self.changed.emit(item_id, False)

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, StatusText):
            self.status.emit(event.text)
            return
        job = getattr(event, "job", None)
        item = self.items.get(getattr(event, "item_id", getattr(job, "item_id", -1)))
        if item is None or (job is not None and not isinstance(job, StyleJob)):
            return  # removed meanwhile, or an All styles job (its dialog listens itself)
        new_pixels = False
        if isinstance(event, JobStarted):
            item.running = event.job.runs
        elif isinstance(event, ImageLoaded):
            item.image, item.display, item.local, new_pixels = event.image, event.display, event.image.path, True
            item.has_alpha = event.image.alpha is not None
            item.thumb = QPixmap.fromImage(event.thumbnail)
            self._keep_original(item)
        elif isinstance(event, LoadFailed):
            item.load_error = event.message
            self.failed.emit(item.name, event.message, True)
        elif isinstance(event, Styled):
            item.done.add(event.run)
            item.seconds[event.run] = event.seconds
            self.precisions[event.run] = event.precision
            self.results.put((item.id, event.run), event.raw)
            new_pixels = item.ready(self.look) and event.run in self.look.runs()
        elif isinstance(event, JobFailed):
            failed = next((run for run in event.job.runs if run not in item.done), None)
            if failed is not None:  # runs after it in the job stay missing, to run on their own
                item.errors[failed] = event.message
            elif not event.job.runs:
                item.load_error = event.message
            self.failed.emit(item.name, event.message, not event.job.runs)
        elif isinstance(event, JobEnded):
            item.running = None
            if not event.cancelled and self._never_ran(item, event.job):
                self.worker.submit(self._job(item), front=item.id == self.shown)
        self.changed.emit(item.id, new_pixels)
