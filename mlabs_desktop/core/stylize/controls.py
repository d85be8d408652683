"""Two controls after training: the size of the brush strokes, and a mix of two styles.

A network paints strokes of the size it learned, in pixels; a photo of another
size gets strokes of that same pixel size. ``brush`` 2 runs the network on a copy
at half the size and brings the result back to full size, so each stroke covers
twice the pixels; the fine detail the small copy lost is the photo's own
(its luminance above the small copy's, added back), so edges stay sharp.
Mixing blends two styles' raw results, so a new amount re-blends from memory.
Two styles fine-tuned from one parent network can also be mixed by their weights
(`blend_weights`): their weights are still close, so the blend is one network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.ops import LUMA, resize_to

if TYPE_CHECKING:
    from mlabs_desktop.core.library.store import Model

BRUSH_RANGE = (0.25, 4.0)


def check_brush(brush: float) -> float:
    low, high = BRUSH_RANGE
    if not low <= brush <= high:
        raise UserError.worded("{voice.brush} must be between {low:g} and {high:g}, not {brush:g}",
                               low=low, high=high, brush=brush)
    return float(brush)


def check_mix(amount: float) -> float:
    if not 0.0 <= amount <= 1.0:
        raise UserError.worded("the amount of {voice.mix} must be between 0 and 1, not {amount:g}", amount=amount)
    return float(amount)


def run_with_brush(run: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, brush: float) -> np.ndarray:
    """``run`` (image -> raw result) with strokes ``brush`` times their trained size, at ``rgb``'s size."""
    if brush == 1.0:
        return run(rgb)
    height, width = rgb.shape[:2]
    scaled = (max(1, round(width / brush)), max(1, round(height / brush)))  # `run` pads what is too small
    copy = resize_to(rgb, scaled)
    result = resize_to(run(copy), (width, height))
    if brush > 1.0:  # the detail the smaller copy could not hold, from the photo itself
        lost = np.asarray(rgb, np.float32) - resize_to(copy, (width, height))
        result = result + (lost @ LUMA)[..., None]
    return result


def mix_results(first: np.ndarray, second: np.ndarray, amount: float) -> np.ndarray:
    """``amount`` of the second style's raw result over the first's (0: only the first)."""
    a = np.float32(amount)
    return np.asarray(first, np.float32) * (np.float32(1) - a) + np.asarray(second, np.float32) * a


def _parent(model: "Model") -> tuple[str, str | None] | None:
    """(name, weights sha256 when recorded) of the model ``model`` was fine-tuned from."""
    provenance = model.manifest.provenance
    name, sha = provenance.get("init_from"), provenance.get("init_from_sha256")
    return (name, sha if isinstance(sha, str) else None) if isinstance(name, str) and name else None


def _same(one: tuple[str, str | None], other: tuple[str, str | None]) -> bool:
    """The same parent: by its weights where both recorded them, else by name."""
    return one[1] == other[1] if one[1] and other[1] else one[0] == other[0]


def weights_related(first: "Model", second: "Model") -> bool:
    """True when the two share a parent network (or one is the other's parent): their weights can be blended."""
    from mlabs_desktop.core.library.store import WEIGHTS
    from mlabs_desktop.core.smallfiles import file_sha256

    if first.folder == second.folder or (first.manifest.architecture, first.manifest.input_scale) != (
            second.manifest.architecture, second.manifest.input_scale):
        return False
    parents = _parent(first), _parent(second)
    if parents[0] and parents[1] and _same(parents[0], parents[1]):
        return True
    for child, parent in ((first, second), (second, first)):
        recorded = _parent(child)
        if recorded and recorded[0] == parent.name:
            try:
                return recorded[1] is None or recorded[1] == file_sha256(parent.file(WEIGHTS))
            except OSError:  # a parent whose weights cannot be read cannot be blended either
                return False
    return False


def blend_weights(first: "Model", second: "Model", amount: float) -> dict[str, np.ndarray]:
    """``amount`` of the second's weights over the first's, array by array."""
    if not weights_related(first, second):
        raise UserError.worded("'{first}' and '{second}' were not fine-tuned from one parent network, so their "
                               "weights cannot be blended; mix their results instead: {voice.mix_results}",
                               first=first.name, second=second.name)
    a, b, amount = first.load_weights(), second.load_weights(), np.float32(check_mix(amount))
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise UserError.worded("'{first}' and '{second}' hold differently shaped weights; mix their results instead: "
                               "{voice.mix_results}", first=first.name, second=second.name)
    return {k: a[k] * (np.float32(1) - amount) + b[k] * amount for k in a}
