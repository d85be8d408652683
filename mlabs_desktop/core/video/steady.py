"""Steady video: each frame's look held still by its neighbours, so the style does not breathe.

Run frame by frame, a transform network flickers for two reasons. It normalises
every layer by that frame's own statistics, which shift with noise, lighting and
motion, so the whole look pulses; and its stride-2 layers see a scene moved by
one pixel on a different grid, so fine strokes shimmer as the camera moves.
Steady mode runs each frame with statistics averaged over time (exponentially,
measured under the same averaged statistics), and blends each output pixel with
the previous output moved by the camera's motion (one translation for the frame,
by phase correlation) where the input there matches the moved previous input;
where it does not (something moved on its own) the new result stands alone.
A scene cut, seen as a jump in a thumbnail of the input, starts afresh: the
first frame after it is exactly what per-frame mode gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from mlabs_desktop.core.networks.inference import run_network

THUMB_STEP = 8      # thumbnail pixels are every 8th source pixel
MOTION_WINDOW = 512  # the camera's motion is measured on the frame's central square of at most this side


@dataclass(frozen=True)
class SteadySettings:
    smoothing: float = 0.8      # weight of the past in the averaged statistics (about 5 frames)
    blend: float = 0.6          # the most of the previous (moved) output a matching pixel keeps
    motion_level: float = 16.0  # input change (0..255) at which a pixel counts as moving: no blending
    cut_level: float = 25.0     # mean thumbnail change (0..255) that counts as a scene cut


def camera_shift(before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """The whole-pixel (rows, columns) by which ``after`` shows ``before``'s scene moved, by phase correlation."""
    h, w = before.shape[:2]
    side_h, side_w = min(h, MOTION_WINDOW), min(w, MOTION_WINDOW)
    top, left = (h - side_h) // 2, (w - side_w) // 2
    window = np.outer(np.hanning(side_h), np.hanning(side_w))

    def spectrum(rgb: np.ndarray) -> np.ndarray:
        luma = rgb[top:top + side_h, left:left + side_w].astype(np.float32).mean(axis=2)
        return np.fft.rfft2((luma - luma.mean()) * window)

    cross = spectrum(after) * np.conj(spectrum(before))
    peak = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), s=(side_h, side_w))
    dy, dx = np.unravel_index(int(np.argmax(peak)), peak.shape)
    return (int(dy - side_h) if dy > side_h // 2 else int(dy)), (int(dx - side_w) if dx > side_w // 2 else int(dx))


def moved(image: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """``image`` moved by (dy, dx) and a mask of the pixels that have a source (H x W x 1)."""
    h, w = image.shape[:2]
    out = np.zeros_like(image)
    valid = np.zeros((h, w, 1), np.float32)
    rows_to, rows_from = slice(max(0, dy), h + min(0, dy)), slice(max(0, -dy), h + min(0, -dy))
    cols_to, cols_from = slice(max(0, dx), w + min(0, dx)), slice(max(0, -dx), w + min(0, -dx))
    out[rows_to, cols_to] = image[rows_from, cols_from]
    valid[rows_to, cols_to] = 1.0
    return out, valid


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    return rgb[::THUMB_STEP, ::THUMB_STEP].astype(np.float32).mean(axis=2)


def flicker(frames: Iterable[np.ndarray], step: int = 0) -> float:
    """Mean absolute change between consecutive frames (0..255), after undoing a known pan.

    ``step``: the pixels the scene moves left each frame (a clip from `samples.pan_frames`);
    each pair is compared where the two frames show the same place, so the figure is
    what changed there (flicker), not the motion itself.
    """
    total, count, previous = 0.0, 0, None
    for frame in frames:
        frame = np.clip(np.asarray(frame, np.float32), 0, 255)
        if previous is not None:
            now, before = (frame[:, :-step], previous[:, step:]) if step else (frame, previous)
            total += float(np.mean(np.abs(now - before)))
            count += 1
        previous = frame
    return total / count if count else 0.0


class SteadyFrames:
    """Stylizes the frames of one clip in order with averaged statistics; call it once per frame.

    ``tiled`` is the model's `tiling.network.TiledNetwork`. Each frame costs two
    passes: one measuring the frame's own statistics (the per-frame result comes
    with it, and is the answer at a cut), one with the averaged statistics. The
    average is of each frame's own statistics, never of statistics measured under
    the average: fed back, those drift further each frame (the network amplifies
    small statistics errors).
    """

    def __init__(self, tiled, settings: SteadySettings = SteadySettings(),
                 whole: Callable[[int, int], bool] = lambda height, width: True):
        self.tiled, self.settings, self.whole = tiled, settings, whole
        self.stats: np.ndarray | None = None
        self._thumb = self._input = self._output = None
        self.cuts = 0

    def is_cut(self, thumb: np.ndarray) -> bool:
        if self._thumb is None or self._thumb.shape != thumb.shape:
            return True
        return float(np.mean(np.abs(thumb - self._thumb))) > self.settings.cut_level

    def own(self, rgb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """The frame's own statistics, with its per-frame result when it runs whole (None when tiled)."""
        if not self.whole(*rgb.shape[:2]):
            return None, self.tiled.statistics(rgb, "exact")
        measuring, found = self.tiled.measuring(), {}

        def forward(x: np.ndarray) -> np.ndarray:
            out, stats = measuring(x)
            found["stats"] = stats[0]
            return out
        return run_network(forward, rgb), found["stats"]

    def run(self, rgb: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """The frame normalised by ``stats``: whole when it fits, else tile by tile."""
        if not self.whole(*rgb.shape[:2]):
            return self.tiled.run(rgb, stats=stats)
        given = self.tiled.given()
        return run_network(lambda x: given(x, stats[None]), rgb)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The network's float result for the next frame (H x W x 3, unclipped)."""
        thumb = thumbnail(rgb)
        cut = self.is_cut(thumb)
        own_result, own_stats = self.own(rgb)
        if cut:
            self.cuts += 1
            self.stats = own_stats
            raw = own_result if own_result is not None else self.run(rgb, own_stats)
        else:
            a = self.settings.smoothing
            self.stats = a * self.stats + (1 - a) * own_stats
            raw = self._blend(rgb, self.run(rgb, self.stats.astype(np.float32)))
        self._thumb, self._input, self._output = thumb, rgb, raw
        return raw

    def _blend(self, rgb: np.ndarray, raw: np.ndarray) -> np.ndarray:
        s = self.settings
        dy, dx = camera_shift(self._input, rgb)
        before, valid = moved(self._input.astype(np.float32), dy, dx)
        output, _ = moved(self._output, dy, dx)
        change = np.abs(rgb.astype(np.float32) - before).mean(axis=2, keepdims=True)
        keep = valid * (s.blend * np.clip(1.0 - change / s.motion_level, 0.0, 1.0))
        return raw + keep * (output - raw)
