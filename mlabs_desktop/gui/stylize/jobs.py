"""What goes through the stylize queue: jobs in, small frozen events out.

Events cross from a worker thread to the GUI thread; the arrays they carry are
new and never written to again, so sharing them is safe.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PySide6.QtGui import QImage

from mlabs_desktop.core.images.decode import LoadedImage
from mlabs_desktop.core.stylize.controls import mix_results
from mlabs_desktop.core.stylize.stylizer import BlendOptions

_tokens = itertools.count(1)


@dataclass(frozen=True)
class Run:
    """One network pass whose raw result the queue keeps: a style at a brush size, perhaps with a sibling's weights."""

    style: str
    brush: float = 1.0
    weights_of: str | None = None  # a style fine-tuned from the same parent, whose weights are blended in
    weights_amount: float = 0.0


@dataclass(frozen=True)
class Look:
    """What the Stylize view shows and saves: a style, its brush size, and a second style mixed in.

    A mix of results re-blends two cached runs for any amount; a mix of weights
    (``mix_weights``) is one network, so a new amount is a new run.
    """

    style: str | None = None
    brush: float = 1.0
    mix: str | None = None
    mix_amount: float = 0.0
    mix_weights: bool = False

    def runs(self) -> tuple[Run, ...]:
        if self.style is None:
            return ()
        if self.mix is None or self.mix_amount == 0:
            return (Run(self.style, self.brush),)
        if self.mix_weights:
            return (Run(self.style, self.brush, self.mix, self.mix_amount),)
        return Run(self.style, self.brush), Run(self.mix, self.brush)

    @property
    def mixes_results(self) -> bool:
        """Two networks run and their results are blended (not at 0 %, where only the first is needed)."""
        return len(self.runs()) == 2

    @property
    def as_trained(self) -> bool:
        """One network at its trained brush size: what steady video mode can run."""
        return self.brush == 1.0 and not self.mixes_results

    def combine(self, raws: list[np.ndarray]) -> np.ndarray:
        """One raw result from those of `runs`: a mix of results blends the two."""
        return mix_results(raws[0], raws[1], self.mix_amount) if len(raws) == 2 else raws[0]

    @property
    def title(self) -> str:
        """"Swirls", "Swirls + 30 % Waves, brush 2×": the comparison's label and the saved files' names."""
        text = self.style or ""
        if self.style and self.mix:
            text += f" {'blended with' if self.mix_weights else '+'} {self.mix_amount * 100:.0f} % {self.mix}"
        return text + (f", brush {self.brush:g}×" if self.style and self.brush != 1.0 else "")


@dataclass(frozen=True, eq=False)
class StyleJob:
    """Load a photo (downloading a URL first) and run each of ``runs`` on it."""

    item_id: int
    source: Union[Path, str]             # a file, or an http(s) URL fetched in the worker
    runs: tuple[Run, ...]                # empty: only load the photo (no style yet)
    device: str = "auto"
    image: LoadedImage | None = None  # the cached original; None loads it
    token: int = field(default_factory=lambda: next(_tokens))


@dataclass(frozen=True, eq=False)
class AllStylesJob:
    """One photo, scaled to tile size, in every listed style."""

    item_id: int
    image: LoadedImage
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
    image: LoadedImage
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
    run: Run
    raw: np.ndarray  # the network's float result, unclipped, the photo's size
    seconds: float
    precision: str = "float32"  # what the network computed in ("bfloat16" where the model passes the gate)


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
