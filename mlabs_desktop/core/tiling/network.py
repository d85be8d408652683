"""The tiled runner: a transform network run tile by tile on any size of image, in bounded memory.

`TiledNetwork` turns a functional model into steps (`program`), sizes its
tiles from a memory model of one forward pass, gets every norm layer's
statistics (`statistics`) and writes each tile's core into the result.
See `policy` for why the result matches the whole image's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from mlabs_desktop.core.tiling.statistics import (PassMoments, core_mask, exact_pass_statistics, frozen_norm,
                                                  layerwise_statistics, statistics_difference)
from mlabs_desktop.core.tiling.geometry import SAMPLE_CORE, Box, Tile, align_up, core_array, plan_tiles, sample_tiles
from mlabs_desktop.core.tiling.program import Step, program, receptive_radius
from mlabs_desktop.core.tiling.source import SourceImage

TILE_MEMORY = 768 << 20         # bytes one tile's forward pass may use
STATS_MEMORY = 1 << 30          # bytes the statistics pass may hold for all its windows
HUGE_STATS = "exact"            # statistics when one pass cannot hold them: exact, sample or downscale
# The forward pass's real peak over the sum of its live float32 tensors: graph
# executors keep an extra input or output alive, oneDNN reorders conv inputs.
_OVERHEAD = 2.0


@dataclass
class RunReport:
    """How the last `TiledNetwork.run` went."""

    tiles: int
    margin: int
    stats: str          # exact (one pass), exact-passes, sample, downscale or given
    passes: int         # passes over every tile
    # The largest difference between the statistics the final pass used and those
    # it measured (mean shift in standard deviations, or |log variance ratio|):
    # ~1e-6 when exact; None for the one-pass run, exact by construction.
    residual: float | None = None


class TiledNetwork:
    """A transform network that runs any size of image in bounded memory, tile by tile.

    Build once per network (it compiles a forward pass); `run` is the whole job.
    """

    def __init__(self, net):
        self.net = net
        self.steps, self.input_slot, self.output_slot, self.norms = program(net)
        self.margin = align_up(receptive_radius(net))
        self.offsets = np.cumsum([0] + [2 * n.scale.shape[0] for n in self.norms]).tolist()
        self.stats_size = int(self.offsets[-1])
        last_use: dict[int, int] = {}
        for i, step in enumerate(self.steps):
            for s in step.inputs:
                last_use[s] = i
        self._free_after: list[list[int]] = [[] for _ in self.steps]
        for s, i in last_use.items():
            if s != self.output_slot:
                self._free_after[i].append(s)
        self.bytes_per_pixel, self.held_bytes_per_pixel = self._memory_per_pixel()
        self._compiled: dict[int | None, Callable] = {}
        self._measuring: Callable | None = None
        self._given: Callable | None = None
        self.last_run: RunReport | None = None

    # ------------------------------------------------------------ memory model
    def _memory_per_pixel(self) -> tuple[float, float]:
        """(peak bytes per window pixel of one forward pass, bytes held per pixel between norm layers)."""
        size = {s.output: 4.0 * s.channels / s.scale ** 2 for s in self.steps}
        live = {self.input_slot: 12.0}
        stream = held = 0.0
        for i, step in enumerate(self.steps):
            if step.norm is not None:
                held = max(held, sum(live.values()))
            # Layers that regroup pixels hold copies of their input and output while they run.
            copies_in, copies_out = getattr(step.layer, "scratch_copies", (0, 0))
            scratch = copies_in * sum(live[s] for s in step.inputs) + copies_out * size[step.output]
            stream = max(stream, sum(live.values()) + size[step.output] + scratch)
            live[step.output] = size[step.output]
            for s in self._free_after[i]:
                live.pop(s, None)
        return stream * _OVERHEAD, held

    def tile_pixels(self, memory: int = TILE_MEMORY) -> int:
        """The most window pixels one forward pass may read within ``memory`` bytes."""
        return max(1, int(memory / self.bytes_per_pixel))

    # ------------------------------------------------------------ running steps
    def _norm_stats(self, stats, index: int):
        from keras import ops

        lo, c = self.offsets[index], self.norms[index].scale.shape[0]
        mean = ops.reshape(stats[:, lo:lo + c], (-1, 1, 1, c))
        var = ops.reshape(stats[:, lo + c:lo + 2 * c], (-1, 1, 1, c))
        return mean, var

    def _apply(self, step: Step, values: dict, stats) -> None:
        args = [values[s] for s in step.inputs]
        if step.norm is not None:
            values[step.output] = frozen_norm(step.layer, args[0], *self._norm_stats(stats, step.norm))
        else:
            values[step.output] = step.layer(args if len(args) > 1 else args[0])

    def run_steps(self, values: dict, stats, start: int, stop: int) -> None:
        for i in range(start, stop):
            self._apply(self.steps[i], values, stats)
            for s in self._free_after[i]:
                values.pop(s, None)

    def forward(self, x, stats, core=None, stop: int | None = None):
        """The network on a batch ``x`` with every norm layer's statistics given (B, stats_size).

        With ``core`` (B, 4: top, left, bottom, right in ``x``'s pixels) it also
        returns, laid out like ``stats``, each norm input's per-channel sums of
        ``x - mean`` and ``(x - mean)**2`` over the core. With ``stop`` it returns
        only those sums of norm layer ``stop``, and runs nothing after its input.
        """
        from keras import ops

        values = {self.input_slot: x}
        sums = []
        for i, step in enumerate(self.steps):
            if core is not None and step.norm is not None:
                mean, _ = self._norm_stats(stats, step.norm)
                d = ops.cast(values[step.inputs[0]], "float32") - mean
                mask = core_mask(d, core, step.scale)
                sums += [ops.sum(d * mask, axis=(1, 2)), ops.sum(d * d * mask, axis=(1, 2))]
                if step.norm == stop:
                    return ops.concatenate(sums[-2:], axis=-1)
            self.run_steps(values, stats, i, i + 1)
        if core is None:
            return values[self.output_slot]
        return values[self.output_slot], ops.concatenate(sums, axis=-1)

    def forward_measuring(self, x):
        """The network on a whole batch ``x``, each norm layer using its own input's statistics as the model
        does: (output, those statistics laid out like ``stats``)."""
        from keras import ops

        values = {self.input_slot: x}
        found = []
        for i, step in enumerate(self.steps):
            if step.norm is None:
                self.run_steps(values, None, i, i + 1)
                continue
            x32 = ops.cast(values[step.inputs[0]], "float32")
            mean, var = ops.mean(x32, axis=(1, 2), keepdims=True), ops.var(x32, axis=(1, 2), keepdims=True)
            values[step.output] = frozen_norm(step.layer, values[step.inputs[0]], mean, var)
            found += [ops.reshape(mean, (-1, step.channels)), ops.reshape(var, (-1, step.channels))]
            for s in self._free_after[i]:
                values.pop(s, None)
        return values[self.output_slot], ops.concatenate(found, axis=-1)

    def measuring(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """`forward_measuring` compiled for the active Keras backend: NumPy in, NumPy out."""
        from keras import ops

        if self._measuring is None:
            call = _backend_call(self, self.forward_measuring, [(4, "float32")])
            self._measuring = lambda x: tuple(ops.convert_to_numpy(r) for r in call(x))
        return self._measuring

    def given(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``forward(x, stats)`` on a whole image, compiled, measuring nothing: NumPy in, NumPy out."""
        from keras import ops

        if self._given is None:
            call = _backend_call(self, lambda x, s: self.forward(x, s), [(4, "float32"), (2, "float32")])
            self._given = lambda x, s: ops.convert_to_numpy(call(x, s))
        return self._given

    def compiled(self, stop: int | None = None) -> Callable:
        """``forward(x, stats, core, stop)`` compiled for the active Keras backend: NumPy in, NumPy out."""
        if stop not in self._compiled:
            self._compiled[stop] = _compile(self, stop)
        return self._compiled[stop]

    # ------------------------------------------------------------ statistics
    def statistics(self, pixels: np.ndarray | SourceImage, method: str = "exact", *,
                   stats_memory: int = STATS_MEMORY, tile_memory: int = TILE_MEMORY,
                   tiles: Sequence[Tile] | None = None,
                   progress: Callable[[], None] = lambda: None) -> np.ndarray:
        """Every norm layer's (mean, var), concatenated, as the whole image would have them.

        ``exact``: in one layer-by-layer pass over ``tiles`` (default: those that
        ``tile_memory`` allows) when holding all their activations fits
        ``stats_memory``, else in one pass per norm layer. ``sample``: from as many
        evenly spread windows as ``stats_memory`` holds. ``downscale``: from a
        copy shrunk until it fits ``stats_memory``.
        """
        source = pixels if isinstance(pixels, SourceImage) else SourceImage(pixels)
        height, width = source.padded
        max_pixels = self.tile_pixels(tile_memory)
        if method == "exact":
            tiles = tiles or plan_tiles(height, width, self.margin, max_pixels=max_pixels)
            if self.held_bytes(tiles) <= stats_memory:
                return layerwise_statistics(self, source, tiles)
            shift = self.statistics(source, "sample", stats_memory=min(stats_memory, 64 << 20))
            return exact_pass_statistics(self, source, tiles, shift, progress)
        if method == "sample":
            window = (align_up(SAMPLE_CORE) + 2 * self.margin) ** 2
            count = max(1, int(stats_memory / (window * self.held_bytes_per_pixel)))
            return layerwise_statistics(self, source, sample_tiles(height, width, self.margin, count))
        if method == "downscale":
            small = source.downscaled(int(stats_memory / (self.held_bytes_per_pixel * 1.3)))
            h, w = small.padded
            return layerwise_statistics(self, small, plan_tiles(h, w, self.margin, max_pixels=max_pixels))
        raise ValueError(f"unknown statistics method {method!r}; use exact, sample or downscale")

    def held_bytes(self, tiles: Sequence[Tile]) -> float:
        """Memory the one-pass exact run holds for these tiles."""
        return sum(t.window.area for t in tiles) * self.held_bytes_per_pixel

    # ------------------------------------------------------------ the whole job
    def run(self, pixels: np.ndarray, *, tile: int | None = None, margin: int | None = None,
            tile_memory: int = TILE_MEMORY, stats_memory: int = STATS_MEMORY,
            stats: str | np.ndarray = "auto", huge_stats: str | None = None,
            out: np.ndarray | None = None,
            post: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
            progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Stylize ``pixels`` (H x W x C or H x W, any dtype) tile by tile; the float result, or ``out``.

        ``tile`` fixes the core side (default: the largest whose window fits
        ``tile_memory``); ``margin`` overrides the context (default: the receptive
        radius). ``stats`` is a method name for `statistics`, a vector from it, or
        ``auto``: exact in a single pass when all windows' activations fit
        ``stats_memory``, else ``huge_stats`` (default `HUGE_STATS`).
        ``post(original_rgb, raw)`` maps each tile's float result before it is
        written to ``out`` (an H x W x 3 array, e.g. uint8). ``progress(done,
        total)`` is called after each tile of each pass. `last_run` says how it went.
        """
        source = SourceImage(pixels)
        if out is None:
            out = np.empty((source.height, source.width, 3), np.float32)
        elif out.shape != (source.height, source.width, 3):
            raise ValueError(f"out has shape {out.shape}, expected {(source.height, source.width, 3)}")
        margin = self.margin if margin is None else align_up(margin)
        height, width = source.padded
        tiles = plan_tiles(height, width, margin, core=tile, max_pixels=self.tile_pixels(tile_memory))
        one_pass = self.held_bytes(tiles) <= stats_memory
        method = stats if isinstance(stats, str) else "given"
        if method == "auto":
            method = "exact" if one_pass else (huge_stats or HUGE_STATS)
        passes = 1 + (len(self.norms) if method == "exact" and not one_pass else 0)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, passes * len(tiles))

        def finished(t: Tile, result: np.ndarray) -> None:
            core = Box(t.core.top, t.core.left, min(t.core.bottom, source.height), min(t.core.right, source.width))
            if core.height > 0 and core.width > 0:
                raw = result[core.within(t.window)]
                if post is not None:
                    raw = post(source.region(core), raw)
                out[core.top:core.bottom, core.left:core.right] = raw
            tick()

        if method == "exact" and one_pass:  # statistics and result in the same layer-by-layer pass
            self.last_run = RunReport(len(tiles), margin, "exact", 1)
            layerwise_statistics(self, source, tiles, finished)
            return out
        self.last_run = RunReport(len(tiles), margin, "exact-passes" if method == "exact" else method, passes)
        if isinstance(stats, str):
            stats = self.statistics(source, method, stats_memory=stats_memory, tile_memory=tile_memory,
                                    tiles=tiles, progress=tick)
        stats = np.asarray(stats, np.float32).reshape(self.stats_size)
        call = self.compiled()
        moments = PassMoments(self, stats)
        for t in tiles:
            result, sums = call(source.region(t.window)[None], stats[None], core_array(t))
            moments.add(t.core.area, sums[0])
            finished(t, result[0])
        self.last_run.residual = statistics_difference(self, stats, moments.result())
        return out


def _compile(tiled: TiledNetwork, stop: int | None) -> Callable:
    """``tiled.forward`` with ``core`` for the active backend: NumPy in, NumPy out."""
    from keras import ops

    call = _backend_call(tiled, lambda x, s, core: tiled.forward(x, s, core, stop),
                         [(4, "float32"), (2, "float32"), (2, "int32")])

    def numpy_call(x, s, core):
        result = call(x, s, core)
        if stop is not None:
            return ops.convert_to_numpy(result)
        return ops.convert_to_numpy(result[0]), ops.convert_to_numpy(result[1])
    return numpy_call


def _backend_call(tiled: TiledNetwork, forward: Callable, inputs: list[tuple[int, str]]) -> Callable:
    """``forward`` compiled for the active Keras backend (as `inference.make_forward` does it).

    ``inputs``: each argument's rank and dtype, with every dimension free.
    """
    from keras import ops

    from mlabs_desktop.core.hardware.devices import keras_backend

    backend = keras_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(forward, input_signature=[tf.TensorSpec([None] * rank, dtype) for rank, dtype in inputs])
        return lambda *args: fn(*(tf.constant(a, dtype) for a, (_, dtype) in zip(args, inputs)))
    if backend == "torch":
        import torch

        def call(*args):
            with torch.no_grad():
                return forward(*(ops.convert_to_tensor(a) for a in args))
        return call
    if backend == "jax":
        import jax
        from keras import StatelessScope

        variables = list(tiled.net.variables)

        @jax.jit
        def pure(values, *args):
            with StatelessScope(state_mapping=list(zip(variables, values))):
                return forward(*args)
        values = [v.value for v in variables]
        return lambda *args: pure(values, *args)
    return forward
