"""The stylize jobs' work, in a worker thread: load (or download) a photo, run a network on it.

The `Stylizer` (which imports TensorFlow) is made here on first use and cached
per model, never at import or construction.
"""

from __future__ import annotations

import copy
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PySide6.QtCore import Qt

from mlabs_desktop.core.images.decode import LoadedImage, load_image
from mlabs_desktop.core.images.ops import resize_max, to_uint8
from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.hardware.memory import out_of_memory
from mlabs_desktop.core.stylize.controls import run_with_brush
from mlabs_desktop.core.stylize.stylizer import finish
from mlabs_desktop.gui.stylize.blend_renderer import display_image
from mlabs_desktop.gui.kit.common import Throttle, user_text
from mlabs_desktop.gui.stylize.jobs import (AllStylesJob, ImageLoaded, LoadFailed, Look, Run, StatusText, Styled,
                                            StyleJob, Tile)

if TYPE_CHECKING:
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.stylize.stylizer import Stylizer

THUMB_SIDE = 128


def memory_message(name: str, size: tuple[int, int]) -> str:
    return (f"Not enough memory to stylize {name} at {size[0]}x{size[1]} pixels. "
            "Close other programs and try again, or scale the photo down first.")


class StylizerCache:
    """Loaded networks, newest use last; a few are kept so switching back is instant."""

    def __init__(self, library: Callable[[], "Library"], keep: int = 3):
        self._library = library
        self._keep = keep
        self._items: OrderedDict[tuple, "Stylizer"] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_name: str, device: str) -> "Stylizer":
        return self.for_run(Run(model_name), device)

    def for_run(self, run: Run, device: str) -> "Stylizer":
        """The network ``run`` needs: a style's own, or a blend of two siblings' weights (its brush is the caller's)."""
        from mlabs_desktop.core.stylize import stylizer as stylize  # looked up at call time: tests count Stylizer.run

        if "keras" not in sys.modules:
            # Importing TensorFlow holds the interpreter lock for up to a second at a time: give
            # the GUI thread a moment to draw the photo just loaded before that starts.
            time.sleep(0.2)
        models = [self._library().get(name) for name in (run.style, run.weights_of) if name is not None]
        # The update times are in the key: a model retrained since is loaded afresh.
        key = (*((str(m.folder), m.manifest.updated) for m in models), run.weights_amount, device)
        with self._lock:
            found = self._items.pop(key, None)
            if found is None and len(models) == 2:
                found = stylize.Stylizer.blended(*models, run.weights_amount, device, precision="auto")
            elif found is None:
                found = stylize.Stylizer(models[0], device, precision="auto")  # bfloat16 only when it looks the same
            self._items[key] = found
            while len(self._items) > self._keep:
                self._items.popitem(last=False)
            return found


    def for_look(self, look: Look, device: str) -> "Stylizer":
        """One stylizer for all of ``look``: brush and mix set on a copy (the cached one stays as trained)."""
        first = look.runs()[0]
        stylizer = self.for_run(Run(first.style, 1.0, first.weights_of, first.weights_amount), device)
        if look.as_trained:
            return stylizer
        controlled = copy.copy(stylizer)  # shares the network; only the controls differ
        controlled.set_controls(look.brush, (self.for_run(look.runs()[1], device), look.mix_amount)
                                if look.mixes_results else None)
        return controlled


def _load(job: StyleJob, report: Callable[[Any], None], cancelled: Callable[[], bool]) -> LoadedImage | None:
    from mlabs_desktop.core.transfer.downloads import fetch_to_path
    from mlabs_desktop.core.transfer.http import DownloadProgress, is_url

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
        image = load_image(Path(source))
    except UserError as exc:
        report(LoadFailed(job.item_id, user_text(exc)))
        return None
    except MemoryError:
        report(LoadFailed(job.item_id, f"Not enough memory to open {Path(str(source)).name}. "
                                       "Close other programs and try again."))
        return None
    display = display_image(image.rgb, image.alpha)
    # Never scaled up: a small photo's thumbnail is the photo (the list draws it smaller still).
    thumb = display if max(display.width(), display.height()) <= THUMB_SIDE else display.scaled(
        THUMB_SIDE, THUMB_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    report(ImageLoaded(job.item_id, image, display, thumb))
    return image


def run_style_job(job: StyleJob, cache: StylizerCache, report: Callable[[Any], None],
                  cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise Cancelled()
    image = job.image or _load(job, report, cancelled)
    if image is None:
        return
    for run in job.runs:
        if cancelled():
            raise Cancelled()
        stylizer = cache.for_run(run, job.device)
        started = time.perf_counter()
        try:
            raw = run_with_brush(stylizer.run, image.rgb, run.brush)
        except Exception as exc:  # noqa: BLE001 - memory errors come as several types
            if out_of_memory(exc):
                raise UserError(memory_message(image.path.name, image.size)) from None
            raise
        report(Styled(job.item_id, run, np.asarray(raw, np.float32), time.perf_counter() - started,
                      stylizer.precision))


def run_all_styles_job(job: AllStylesJob, cache: StylizerCache, report: Callable[[Any], None],
                       cancelled: Callable[[], bool]) -> None:
    rgb = resize_max(job.image.rgb, job.tile_side)
    for index, name in enumerate(job.model_names):
        if cancelled():
            raise Cancelled()
        report(StatusText(job, f"All styles: {name} ({index + 1} of {len(job.model_names)})…"))
        try:
            raw = cache.get(name, job.device).run(rgb)
            tile = Tile(job.token, index, name, to_uint8(finish(rgb, raw, job.options)))
        except UserError as exc:  # one broken model must not spoil the whole grid
            tile = Tile(job.token, index, name, None, user_text(exc))
        except Exception as exc:  # noqa: BLE001
            if not out_of_memory(exc):
                raise
            tile = Tile(job.token, index, name, None, memory_message(job.image.path.name, rgb.shape[1::-1]))
        report(tile)
