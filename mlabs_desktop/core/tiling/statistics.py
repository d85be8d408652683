"""Instance-norm statistics for a tiled run: measured over every tile's core, as the whole image has them.

Every `InstanceNormalization` layer normalises by per-channel mean and variance
over the whole image, so tiles run with each norm layer's statistics given
(`frozen_norm`). `layerwise_statistics` measures them in one pass holding every
window's activations; `exact_pass_statistics` in bounded memory, one pass over
the tiles per norm layer. Sums are float64 (and centred on a rough mean) so
large photos lose nothing to rounding.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np

from mlabs_desktop.core.tiling.geometry import Tile, core_array
from mlabs_desktop.core.tiling.source import SourceImage



class TiledNetwork(Protocol):
    """What the statistics passes need of the tiled runner (`network.TiledNetwork`, which imports this module)."""

    norms: Sequence[Any]
    offsets: Sequence[int]
    stats_size: int
    steps: Sequence[Any]
    input_slot: int
    output_slot: int
    compiled: Any

    def run_steps(self, *args: Any, **kwargs: Any) -> Any: ...

_MOMENT_CHUNK = 1 << 16         # rows of float64 at a time when summing moments


def frozen_norm(layer, x, mean, var):
    """`InstanceNormalization` with given statistics: the same arithmetic, in keras.ops."""
    from keras import ops

    x32 = ops.cast(x, "float32")
    normed = (x32 - mean) / ops.sqrt(var + layer.epsilon)
    out = ops.cast(layer.scale, "float32") * normed + ops.cast(layer.shift, "float32")
    return ops.cast(out, layer.compute_dtype)


class Moments:
    """Per-channel count, mean and variance accumulated in float64, chunk by chunk."""

    def __init__(self, channels: int):
        self.count = 0
        self.total = np.zeros(channels, np.float64)
        self.squares = np.zeros(channels, np.float64)
        self.shift: np.ndarray | None = None  # a rough mean: sums of squares about it do not cancel

    def add(self, values: np.ndarray) -> None:
        rows = max(1, _MOMENT_CHUNK // max(1, values.shape[1]))
        for start in range(0, values.shape[0], rows):
            chunk = values[start:start + rows].reshape(-1, values.shape[-1]).astype(np.float64)
            if self.shift is None:
                self.shift = chunk.mean(axis=0)
            self.count += len(chunk)
            self.total += chunk.sum(axis=0)
            chunk -= self.shift
            self.squares += np.einsum("ij,ij->j", chunk, chunk)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / self.count
        var = self.squares / self.count - (mean - self.shift) ** 2
        return mean, np.maximum(var, 0.0)


def core_mask(x, core, scale: float):
    """1.0 inside ``core`` (window pixels, (B, 4)) at ``x``'s resolution (``scale`` image pixels each)."""
    from keras import ops

    box = ops.cast(core, "float32") / scale
    rows = ops.cast(ops.arange(ops.shape(x)[1]), "float32")[None, :]
    cols = ops.cast(ops.arange(ops.shape(x)[2]), "float32")[None, :]
    in_rows = ops.cast(ops.logical_and(rows >= box[:, 0:1], rows < box[:, 2:3]), "float32")
    in_cols = ops.cast(ops.logical_and(cols >= box[:, 1:2], cols < box[:, 3:4]), "float32")
    return in_rows[:, :, None, None] * in_cols[:, None, :, None]


class PassMoments:
    """Float64 totals over one pass of the per-tile sums `TiledNetwork.forward` returns."""

    def __init__(self, tiled: TiledNetwork, stats: np.ndarray):
        self.tiled, self.stats = tiled, stats.astype(np.float64)
        self.sums = np.zeros(tiled.stats_size, np.float64)
        self.count = np.zeros(len(tiled.norms), np.float64)
        self.scales = [s.scale for s in tiled.steps if s.norm is not None]

    def add(self, core_pixels: int, sums: np.ndarray) -> None:
        self.sums += sums
        self.count += core_pixels / np.square(self.scales)

    def result(self) -> np.ndarray:
        out = np.empty_like(self.stats)
        for k, norm in enumerate(self.tiled.norms):
            lo, c = self.tiled.offsets[k], norm.scale.shape[0]
            shift = self.sums[lo:lo + c] / self.count[k]
            out[lo:lo + c] = self.stats[lo:lo + c] + shift
            out[lo + c:lo + 2 * c] = np.maximum(self.sums[lo + c:lo + 2 * c] / self.count[k] - shift ** 2, 0.0)
        return out.astype(np.float32)


def statistics_difference(tiled: TiledNetwork, a: np.ndarray, b: np.ndarray) -> float:
    """The largest mean shift (in standard deviations) or |log variance ratio| between two statistics vectors."""
    worst = 0.0
    for k, norm in enumerate(tiled.norms):
        lo, c = tiled.offsets[k], norm.scale.shape[0]
        var_a = a[lo + c:lo + 2 * c].astype(np.float64) + norm.epsilon
        var_b = b[lo + c:lo + 2 * c].astype(np.float64) + norm.epsilon
        shift = np.abs(a[lo:lo + c].astype(np.float64) - b[lo:lo + c]) / np.sqrt(var_b)
        worst = max(worst, float(shift.max()), float(np.abs(np.log(var_a / var_b)).max()))
    return worst


def pad_sums(tiled: TiledNetwork, k: int, sums: np.ndarray) -> np.ndarray:
    """One norm layer's sums placed in a full ``stats_size`` vector."""
    full = np.zeros(tiled.stats_size, np.float64)
    full[tiled.offsets[k]:tiled.offsets[k] + len(sums)] = sums
    return full


def layerwise_statistics(tiled: TiledNetwork, source: SourceImage, tiles: Sequence[Tile],
                         finished: Callable[[Tile, np.ndarray], None] | None = None) -> np.ndarray:
    """Exact statistics over the tiles' cores, running all tiles together layer by layer.

    With ``finished``, each tile is then run to the end and handed over with its output.
    """
    from keras import ops

    stats = np.zeros((1, tiled.stats_size), np.float32)
    held = [{tiled.input_slot: source.region(t.window)[None]} for t in tiles]
    done = 0
    for i, step in enumerate(tiled.steps):
        if step.norm is None:
            continue
        moments = Moments(step.channels)
        for values, tile in zip(held, tiles):
            tiled.run_steps(values, stats, done, i)
            x = ops.convert_to_numpy(values[step.inputs[0]])[0]
            moments.add(x[tile.core.within(tile.window, x.shape[0] / tile.window.height)])
        mean, var = moments.result()
        lo, c = tiled.offsets[step.norm], step.channels
        stats[0, lo:lo + c], stats[0, lo + c:lo + 2 * c] = mean, var
        for values in held:
            tiled.run_steps(values, stats, i, i + 1)
        done = i + 1
    if finished is not None:
        for tile in tiles:
            values = held.pop(0)
            tiled.run_steps(values, stats, done, len(tiled.steps))
            finished(tile, ops.convert_to_numpy(values[tiled.output_slot])[0])
    return stats[0]


def exact_pass_statistics(tiled: TiledNetwork, source: SourceImage, tiles: Sequence[Tile],
                          shift: np.ndarray, progress: Callable[[], None]) -> np.ndarray:
    """Exact statistics in bounded memory: one pass over every tile per norm layer.

    Pass k runs each tile up to norm layer k's input, with layers before it
    normalised by their (by then exact) statistics; ``shift`` (a rough estimate)
    centres the sums so float32 per-tile sums lose nothing. Costs about
    6 forward passes (the sum of the prefixes).
    """
    stats = shift.astype(np.float32).copy()
    for k, norm in enumerate(tiled.norms):
        call = tiled.compiled(stop=k)
        moments = PassMoments(tiled, stats)
        for t in tiles:
            moments.add(t.core.area, pad_sums(tiled, k, call(source.region(t.window)[None], stats[None],
                                                             core_array(t))[0]))
            progress()
        lo, c = tiled.offsets[k], norm.scale.shape[0]
        stats[lo:lo + 2 * c] = moments.result()[lo:lo + 2 * c]
    return stats
