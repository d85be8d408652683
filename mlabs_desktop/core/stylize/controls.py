"""Two controls after training: the size of the brush strokes, and a mix of two styles.

A network paints strokes of the size it learned, in pixels; a photo of another
size gets strokes of that same pixel size. ``brush`` 2 runs the network on a copy
at half the size and brings the result back to full size, so each stroke covers
twice the pixels; the fine detail the small copy lost is the photo's own
(its luminance above the small copy's, added back), so edges stay sharp.
Mixing blends two styles' raw results, so a new amount re-blends from memory.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.ops import LUMA, resize_to

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
