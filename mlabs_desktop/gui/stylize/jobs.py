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
from mlabs_desktop.core.stylize.stylizer import BlendOptions

_tokens = itertools.count(1)


@dataclass(frozen=True, eq=False)
class StyleJob:
    """Load a photo (downloading a URL first) and, when a style is given, run the network on it."""

    item_id: int
    source: Union[Path, str]             # a file, or an http(s) URL fetched in the worker
    model_name: str | None               # None: only load the photo (no style yet)
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
    model_name: str
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
