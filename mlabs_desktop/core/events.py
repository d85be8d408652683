"""Small immutable reports that long work sends to whoever watches it.

The command line prints them (text or one JSON object per line); the GUI's
worker turns them into Qt signals. They never carry weights; a preview is a
small copied image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class StepEvent:
    step: int                # global step just completed (1-based)
    epoch: int               # 0-based epoch the step belongs to
    total_steps: int         # the global step this run ends at
    content_loss: float
    style_loss: float
    tv_loss: float
    total_loss: float
    images_per_sec: float
    eta_seconds: float
    skipped: int
    elapsed_seconds: float
    kind = "step"


@dataclass(frozen=True)
class CheckpointEvent:
    step: int
    path: str
    kind = "checkpoint"


@dataclass(frozen=True)
class PreviewEvent:
    step: int
    path: str
    image: np.ndarray = field(repr=False, compare=False)  # uint8 H x W x 3, small
    kind = "preview"


@dataclass(frozen=True)
class DistillStepEvent:
    """One step of making a fast copy of a style (`training.distill`)."""
    step: int                # steps done (1-based)
    total_steps: int
    loss: float              # mean squared difference from the teacher's output, in pixel values squared
    elapsed_seconds: float
    eta_seconds: float | None  # None until the second step: the first one compiles
    kind = "distill_step"


@dataclass(frozen=True)
class LogEvent:
    message: str
    level: str = "info"      # info | warning | error
    kind = "log"


@dataclass(frozen=True)
class DoneEvent:
    model_name: str
    folder: str
    step: int
    state: str               # finished | stopped
    seconds: float
    kind = "done"


@dataclass(frozen=True)
class OutOfMemoryEvent:
    """A training step did not fit in memory; the run ends with its steps so far checkpointed."""
    batch_size: int
    step: int                # the step that did not fit (1-based)
    checkpoint_step: int     # the last checkpoint, which is kept (0 when nothing was saved)
    model_name: str | None   # None when nothing was saved yet (a new model's first step)
    steps_left: int          # what remains of the run's --max-steps from the checkpoint (0: no limit)
    kind = "out_of_memory"

    @property
    def smaller_batch(self) -> int | None:
        """The batch to try next: half, or None when one image per step already did not fit."""
        return self.batch_size // 2 if self.batch_size > 1 else None


Event = StepEvent | CheckpointEvent | PreviewEvent | LogEvent | DoneEvent | OutOfMemoryEvent
EventCallback = Callable[[Event], None]


def event_to_json(event: Event) -> dict[str, Any]:
    """The ``--progress=json`` form: ``{"event": kind, ...fields}`` without pixel data."""
    data = {k: v for k, v in asdict(event).items() if not isinstance(v, np.ndarray)}
    return {"event": event.kind, **data}


def format_steps(steps: int) -> str:
    """``1 step``, ``2,500 steps``: for people, in the app and on the command line."""
    return f"{steps:,} step{'' if steps == 1 else 's'}"


def format_duration(seconds: float) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` above: for elapsed times, ETAs and training times."""
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
