"""Huge photos in bounded memory: the network run tile by tile, with no seams.

A tile's output differs from the same pixels of the whole image's output for two
reasons, and both are removed here rather than blended over:

* **Context.** An output pixel depends on the input within the network's
  receptive field (9x9 convolutions, two stride-2 levels, ten 3x3 convolutions at
  quarter resolution: 57 pixels for ``default``). `receptive_radius` computes it
  from the layer list; every tile reads its *core* plus a margin at least that
  wide and keeps only the core. Tiles start on multiples of 4, so the stride-2
  grids coincide with the whole image's, and a tile touching the image's edge
  has no margin on that side, so the network's own padding (reflection or zeros)
  falls exactly where it falls for the whole image. The image is padded to what
  the network needs the way `stylize.run_network` pads it, but virtually (index
  maps), so no padded or float32 copy of the whole image is ever made.
* **Instance-norm statistics.** Every `InstanceNormalization` layer normalises
  by per-channel mean and variance over the whole image. Tiles run through the
  same layers with each norm layer's statistics given as an input (see
  `frozen_norm`), and the statistics come from a layer-by-layer pass over
  windows of the image: the windows are run up to a norm layer's input, the
  float64 moments of their cores are summed, and every window is normalised with
  the result before going on, so each layer's statistics see the earlier layers
  normalised exactly as the whole image would be.

When holding every window's activations fits ``stats_memory`` (1 GB: about
6 megapixels for ``default``, 12 for ``lite``), that pass covers the whole
image and finishes the windows itself: one pass, and the result matches the
untiled network to float rounding. Bigger photos get the same exact statistics
in bounded memory from one pass over the tiles per norm layer, each running only
up to that layer (about 6 forward passes' work), then a final pass through a
compiled network with the statistics fixed. Cheaper estimates exist, from
windows spread evenly over the image (``"sample"``) or from a downscaled copy
(``"downscale"``): also seamless, since every tile shares them, but these
networks amplify small statistics errors (sampling 65% of a photo, about 2%
median error per layer, moved a random-weight network's output by 6 levels on
average), so they are opt-in (`HUGE_STATS`, ``huge_stats``): 3.6x faster on a
50-megapixel photo.

Memory stays bounded: the photo stays uint8 (as decoded), each tile is made
float32 on its own, and the result goes into a caller's array (uint8 for
`stylize_file`) tile by tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

ALIGN = 4                       # the network's total stride: tiles start on multiples of it
MIN_SIDE = 16                   # as `stylize.MIN_SIDE` (kept equal by a test)
TILE_MEMORY = 768 << 20         # bytes one tile's forward pass may use
STATS_MEMORY = 1 << 30          # bytes the statistics pass may hold for all its windows
HUGE_STATS = "exact"            # statistics when one pass cannot hold them: exact, sample or downscale
SAMPLE_CORE = 256               # core side of the windows that sample a huge photo's statistics
TILE_ABOVE_PIXELS = {"cpu": 4_000_000, "gpu": 8_000_000}  # `Stylizer` tiles above these
MIN_TILE_MEMORY = 32 << 20      # out-of-memory retries never go below this
# The forward pass's real peak over the sum of its live float32 tensors: graph
# executors keep an extra input or output alive, oneDNN reorders conv inputs.
_OVERHEAD = 2.0
_MOMENT_CHUNK = 1 << 16         # rows of float64 at a time when summing moments


class TilingUnsupported(ValueError):
    """The network has a layer whose spatial reach this module cannot work out."""


def out_of_memory(exc: BaseException) -> bool:
    """Host or device memory ran out (by class name: the backends each have their own)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ in ("ResourceExhaustedError", "OutOfMemoryError")


def should_tile(height: int, width: int, device_kind: str = "cpu") -> bool:
    return height * width > TILE_ABOVE_PIXELS.get(device_kind, TILE_ABOVE_PIXELS["cpu"])


# ---------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Box:
    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def area(self) -> int:
        return self.height * self.width

    def within(self, outer: "Box", scale: float = 1.0) -> tuple[slice, slice]:
        """Slices selecting this box out of an array covering ``outer``, at ``scale`` of its resolution."""
        s = lambda v: int(round(v * scale))  # noqa: E731 - all edges are multiples of ALIGN
        return (slice(s(self.top - outer.top), s(self.bottom - outer.top)),
                slice(s(self.left - outer.left), s(self.right - outer.left)))


@dataclass(frozen=True)
class Tile:
    core: Box     # the output pixels this tile produces (padded-image coordinates)
    window: Box   # the input pixels it reads: the core plus context, clipped to the image


def _align_up(n: int) -> int:
    return -(-int(n) // ALIGN) * ALIGN


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size `stylize.run_network` runs an image of this size at."""
    return _align_up(max(height, MIN_SIDE)), _align_up(max(width, MIN_SIDE))


def _segments(length: int, parts: int) -> list[tuple[int, int]]:
    """``length`` (a multiple of ALIGN) cut into ``parts`` near-equal aligned pieces."""
    units = length // ALIGN
    parts = max(1, min(parts, units))
    base, extra = divmod(units, parts)
    out, start = [], 0
    for i in range(parts):
        end = start + (base + (i < extra)) * ALIGN
        out.append((start, end))
        start = end
    return out


def _axis(length: int, parts: int, margin: int) -> list[tuple[int, int, int, int]]:
    return [(s, e, max(0, s - margin), min(length, e + margin)) for s, e in _segments(length, parts)]


def _grid(rows: list, cols: list) -> list[Tile]:
    return [Tile(Box(r0, c0, r1, c1), Box(wr0, wc0, wr1, wc1))
            for r0, r1, wr0, wr1 in rows for c0, c1, wc0, wc1 in cols]


def plan_tiles(height: int, width: int, margin: int, *, core: int | None = None,
               max_pixels: int | None = None, min_core: int = 4 * ALIGN) -> list[Tile]:
    """Cut a (padded) ``height`` x ``width`` image into tiles.

    ``core`` fixes the core side; otherwise the cores are as large as
    ``max_pixels`` per window allows, choosing the grid that reads the fewest
    pixels in all (margins counted). Cores partition the image; windows are cores
    plus ``margin``, clipped to the image. Both sides must be multiples of ALIGN.
    """
    if height % ALIGN or width % ALIGN:
        raise ValueError(f"sides must be multiples of {ALIGN}, got {height}x{width}")
    if margin % ALIGN:
        raise ValueError(f"margin must be a multiple of {ALIGN}, got {margin}")
    if core is not None:
        core = max(ALIGN, _align_up(core))
        return _grid(_axis(height, math.ceil(height / core), margin),
                     _axis(width, math.ceil(width / core), margin))
    if max_pixels is None or height * width <= max_pixels:
        return _grid(_axis(height, 1, margin), _axis(width, 1, margin))
    best: tuple[int, int, list[Tile]] | None = None
    max_rows = max(1, height // min_core)
    for ny in range(1, max_rows + 1):
        rows = _axis(height, ny, margin)
        window_h = max(wr1 - wr0 for _, _, wr0, wr1 in rows)
        allowed_w = max_pixels // window_h
        if allowed_w < min(width, min_core + 2 * margin) and ny < max_rows:
            continue
        nx = max(1, math.ceil(width / max(ALIGN, allowed_w - 2 * margin)))
        while True:
            cols = _axis(width, nx, margin)
            if max(wc1 - wc0 for _, _, wc0, wc1 in cols) <= allowed_w or nx >= width // min_core:
                break
            nx += 1
        read = sum(r[3] - r[2] for r in rows) * sum(c[3] - c[2] for c in cols)
        if best is None or (read, ny * nx) < best[:2]:
            best = (read, ny * nx, _grid(rows, cols))
    assert best is not None
    return best[2]


def sample_tiles(height: int, width: int, margin: int, count: int, core: int = SAMPLE_CORE) -> list[Tile]:
    """``count`` windows with ``core``-sided cores, one centred in each cell of an even grid."""
    ny = max(1, min(height // ALIGN, round(math.sqrt(count * height / width))))
    nx = max(1, min(width // ALIGN, count // ny))
    tiles = []
    for r0, r1 in _segments(height, ny):
        for c0, c1 in _segments(width, nx):
            ch, cw = min(_align_up(core), r1 - r0), min(_align_up(core), c1 - c0)
            top = r0 + ((r1 - r0 - ch) // 2) // ALIGN * ALIGN
            left = c0 + ((c1 - c0 - cw) // 2) // ALIGN * ALIGN
            c = Box(top, left, top + ch, left + cw)
            tiles.append(Tile(c, Box(max(0, c.top - margin), max(0, c.left - margin),
                                     min(height, c.bottom + margin), min(width, c.right + margin))))
    return tiles


# ---------------------------------------------------------------- the photo, padded virtually
def _padded_index(n: int) -> np.ndarray:
    """For each row (or column) of the padded image, the source row it copies.

    Mirrors `stylize.run_network`: edge-extend to MIN_SIDE, then reflect to a
    multiple of 4 (edge where reflection lacks pixels, as `images.pad_to_multiple`).
    """
    n1 = max(n, MIN_SIDE)
    index = np.minimum(np.arange(n1), n - 1)
    extra = -n1 % ALIGN
    if extra:
        tail = np.full(extra, n1 - 1) if extra > n1 - 1 else 2 * (n1 - 1) - np.arange(n1, n1 + extra)
        index = np.concatenate([index, index[tail]])
    return index


def _take(array: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    def span(index: np.ndarray):
        if len(index) and index[-1] - index[0] == len(index) - 1 and np.all(np.diff(index) == 1):
            return slice(int(index[0]), int(index[-1]) + 1)
        return index
    r, c = span(rows), span(cols)
    if isinstance(r, slice) and isinstance(c, slice):
        return array[r, c]
    if isinstance(r, slice):
        return array[r][:, c]
    return array[r][:, c] if isinstance(c, slice) else array[np.ix_(r, c)]


class SourceImage:
    """A photo (H x W x 1..4 or H x W, uint8 or float) read tile by tile as float32 RGB."""

    def __init__(self, pixels: np.ndarray):
        arr = np.asarray(pixels)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or 0 in arr.shape:
            raise ValueError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
        self.colour = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
        self.height, self.width = arr.shape[:2]
        self.rows, self.cols = _padded_index(self.height), _padded_index(self.width)

    @property
    def padded(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)

    def region(self, box: Box) -> np.ndarray:
        """Float32 RGB of ``box`` in padded-image coordinates."""
        part = _take(self.colour, self.rows[box.top:box.bottom], self.cols[box.left:box.right])
        part = part.astype(np.float32)
        return np.repeat(part, 3, axis=2) if part.shape[2] == 1 else part

    def downscaled(self, max_pixels: int) -> "SourceImage":
        from PIL import Image

        scale = math.sqrt(max_pixels / (self.height * self.width))
        if scale >= 1:
            return self
        size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
        if self.colour.dtype == np.uint8:
            plane = self.colour[..., 0] if self.colour.shape[2] == 1 else self.colour
            small = Image.fromarray(np.ascontiguousarray(plane)).resize(size, Image.LANCZOS)
            return SourceImage(np.asarray(small))
        from .images import resize_to
        return SourceImage(resize_to(self.colour.astype(np.float32), size))


# ---------------------------------------------------------------- the network as a list of steps
@dataclass(frozen=True)
class _Step:
    layer: object
    inputs: tuple[int, ...]      # value slots read
    output: int                  # value slot written
    norm: int | None             # index into `norms` for an instance-norm layer
    scale: float                 # image pixels per pixel of the output, along each side
    channels: int


def _program(net) -> tuple[list[_Step], int, int, list]:
    """The functional model's layers in order, wired by value slots."""
    import keras

    from .networks import InstanceNormalization

    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise TilingUnsupported("only single-input, single-output networks can be tiled")
    slots: dict[int, int] = {}

    def slot(tensor) -> int:
        return slots.setdefault(id(tensor), len(slots))

    first = slot(net.inputs[0])
    steps: list[_Step] = []
    norms: list = []
    scale_of = {first: 1.0}
    for layer in net.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        tensors = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        inputs = tuple(slot(t) for t in tensors)
        if any(i not in scale_of for i in inputs):
            raise TilingUnsupported(f"layer {layer.name} comes before its inputs")
        norm = None
        if isinstance(layer, InstanceNormalization):
            norm = len(norms)
            norms.append(layer)
        out = slot(layer.output)
        scale_of[out] = _output_scale(layer, scale_of[inputs[0]])
        steps.append(_Step(layer, inputs, out, norm, scale_of[out], int(layer.output.shape[-1])))
    return steps, first, slot(net.outputs[0]), norms


def _output_scale(layer, scale: float) -> float:
    import keras

    if isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.UpSampling2D)):
        factor = layer.strides if isinstance(layer, keras.layers.Conv2DTranspose) else layer.size
        return scale / factor[0]
    if isinstance(layer, keras.layers.Conv2D):
        return scale * layer.strides[0]
    return scale


def receptive_radius(net) -> int:
    """Pixels of input context each side that an output pixel depends on, from the layer list."""
    import keras

    from .networks import InstanceNormalization, ReflectionPadding2D, StyleOutput

    steps, first, last, _ = _program(net)
    # Per value: (image pixels per feature pixel, reach left/up, reach right/down): feature
    # pixel j depends on image pixels [j*f - left, (j+1)*f - 1 + right].
    reach = {first: (1, 0, 0)}
    pointwise = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Rescaling, keras.layers.Add,
                 InstanceNormalization, StyleOutput)
    for step in steps:
        layer = step.layer
        f, lo, hi = reach[step.inputs[0]]
        if isinstance(layer, keras.layers.Add):
            lo = max(reach[i][1] for i in step.inputs)
            hi = max(reach[i][2] for i in step.inputs)
        elif isinstance(layer, pointwise):
            pass
        elif isinstance(layer, (ReflectionPadding2D, keras.layers.ZeroPadding2D)):
            pad = layer.pad if isinstance(layer, ReflectionPadding2D) else max(max(p) for p in layer.padding)
            lo, hi = lo + pad * f, hi - pad * f
        elif isinstance(layer, keras.layers.UpSampling2D):
            u = max(layer.size)
            lo, hi, f = lo + f - f / u, hi + f - f / u, f / u
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            k, s = max(layer.kernel_size), max(layer.strides)
            lo, hi, f = lo + k * f / s + f, hi + k * f / s + f, f / s
        elif isinstance(layer, keras.layers.Conv2D):
            k, s = max(layer.kernel_size), max(layer.strides)
            if max(layer.dilation_rate) != 1:
                raise TilingUnsupported(f"dilated convolution {layer.name}")
            before = max(k - s, 0) // 2 if layer.padding == "same" else 0
            lo, hi, f = lo + before * f, hi + max(k - before - s, 0) * f, f * s
        else:
            raise TilingUnsupported(f"cannot tell how far {type(layer).__name__} {layer.name} reaches")
        reach[step.output] = (f, lo, hi)
    f, lo, hi = reach[last]
    if f != 1:
        raise TilingUnsupported("the network's output is not at the input's resolution")
    return int(math.ceil(max(lo, hi, 0)))


def frozen_norm(layer, x, mean, var):
    """`InstanceNormalization` with given statistics: the same arithmetic, in keras.ops."""
    from keras import ops

    x32 = ops.cast(x, "float32")
    normed = (x32 - mean) / ops.sqrt(var + layer.epsilon)
    out = ops.cast(layer.scale, "float32") * normed + ops.cast(layer.shift, "float32")
    return ops.cast(out, layer.compute_dtype)


class _Moments:
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


def _core_mask(x, core, scale: float):
    """1.0 inside ``core`` (window pixels, (B, 4)) at ``x``'s resolution (``scale`` image pixels each)."""
    from keras import ops

    box = ops.cast(core, "float32") / scale
    rows = ops.cast(ops.arange(ops.shape(x)[1]), "float32")[None, :]
    cols = ops.cast(ops.arange(ops.shape(x)[2]), "float32")[None, :]
    in_rows = ops.cast(ops.logical_and(rows >= box[:, 0:1], rows < box[:, 2:3]), "float32")
    in_cols = ops.cast(ops.logical_and(cols >= box[:, 1:2], cols < box[:, 3:4]), "float32")
    return in_rows[:, :, None, None] * in_cols[:, None, :, None]


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


class _PassMoments:
    """Float64 totals over one pass of the per-tile sums `TiledNetwork.forward` returns."""

    def __init__(self, tiled: "TiledNetwork", stats: np.ndarray):
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
            lo, c = self.tiled._offsets[k], norm.scale.shape[0]
            shift = self.sums[lo:lo + c] / self.count[k]
            out[lo:lo + c] = self.stats[lo:lo + c] + shift
            out[lo + c:lo + 2 * c] = np.maximum(self.sums[lo + c:lo + 2 * c] / self.count[k] - shift ** 2, 0.0)
        return out.astype(np.float32)


def _difference(tiled: "TiledNetwork", a: np.ndarray, b: np.ndarray) -> float:
    worst = 0.0
    for k, norm in enumerate(tiled.norms):
        lo, c = tiled._offsets[k], norm.scale.shape[0]
        var_a = a[lo + c:lo + 2 * c].astype(np.float64) + norm.epsilon
        var_b = b[lo + c:lo + 2 * c].astype(np.float64) + norm.epsilon
        shift = np.abs(a[lo:lo + c].astype(np.float64) - b[lo:lo + c]) / np.sqrt(var_b)
        worst = max(worst, float(shift.max()), float(np.abs(np.log(var_a / var_b)).max()))
    return worst


# ---------------------------------------------------------------- the tiled network
class TiledNetwork:
    """A transform network that runs any size of image in bounded memory, tile by tile.

    Build once per network (it compiles a forward pass); `run` is the whole job.
    """

    def __init__(self, net):
        self.net = net
        self.steps, self._first, self._last, self.norms = _program(net)
        self.margin = _align_up(receptive_radius(net))
        self._offsets = np.cumsum([0] + [2 * n.scale.shape[0] for n in self.norms]).tolist()
        self.stats_size = int(self._offsets[-1])
        last_use: dict[int, int] = {}
        for i, step in enumerate(self.steps):
            for s in step.inputs:
                last_use[s] = i
        self._free_after: list[list[int]] = [[] for _ in self.steps]
        for s, i in last_use.items():
            if s != self._last:
                self._free_after[i].append(s)
        self.bytes_per_pixel, self.held_bytes_per_pixel = self._memory_per_pixel()
        self._compiled: dict[int | None, Callable] = {}
        self.last_run: RunReport | None = None

    # ------------------------------------------------------------ memory model
    def _memory_per_pixel(self) -> tuple[float, float]:
        """(peak bytes per window pixel of one forward pass, bytes held per pixel between norm layers)."""
        size = {s.output: 4.0 * s.channels / s.scale ** 2 for s in self.steps}
        live = {self._first: 12.0}
        stream = held = 0.0
        for i, step in enumerate(self.steps):
            if step.norm is not None:
                held = max(held, sum(live.values()))
            stream = max(stream, sum(live.values()) + size[step.output])
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

        lo, c = self._offsets[index], self.norms[index].scale.shape[0]
        mean = ops.reshape(stats[:, lo:lo + c], (-1, 1, 1, c))
        var = ops.reshape(stats[:, lo + c:lo + 2 * c], (-1, 1, 1, c))
        return mean, var

    def _apply(self, step: _Step, values: dict, stats) -> None:
        args = [values[s] for s in step.inputs]
        if step.norm is not None:
            values[step.output] = frozen_norm(step.layer, args[0], *self._norm_stats(stats, step.norm))
        else:
            values[step.output] = step.layer(args if len(args) > 1 else args[0])

    def _run_steps(self, values: dict, stats, start: int, stop: int) -> None:
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

        values = {self._first: x}
        sums = []
        for i, step in enumerate(self.steps):
            if core is not None and step.norm is not None:
                mean, _ = self._norm_stats(stats, step.norm)
                d = ops.cast(values[step.inputs[0]], "float32") - mean
                mask = _core_mask(d, core, step.scale)
                sums += [ops.sum(d * mask, axis=(1, 2)), ops.sum(d * d * mask, axis=(1, 2))]
                if step.norm == stop:
                    return ops.concatenate(sums[-2:], axis=-1)
            self._run_steps(values, stats, i, i + 1)
        if core is None:
            return values[self._last]
        return values[self._last], ops.concatenate(sums, axis=-1)

    def compiled(self, stop: int | None = None) -> Callable:
        """``forward(x, stats, core, stop)`` compiled for the active Keras backend: NumPy in, NumPy out."""
        if stop not in self._compiled:
            self._compiled[stop] = _compile(self, stop)
        return self._compiled[stop]

    # ------------------------------------------------------------ statistics
    def _layerwise(self, source: SourceImage, tiles: Sequence[Tile],
                   finished: Callable[[Tile, np.ndarray], None] | None = None) -> np.ndarray:
        """Exact statistics over the tiles' cores, running all tiles together layer by layer.

        With ``finished``, each tile is then run to the end and handed over with its output.
        """
        from keras import ops

        stats = np.zeros((1, self.stats_size), np.float32)
        held = [{self._first: source.region(t.window)[None]} for t in tiles]
        done = 0
        for i, step in enumerate(self.steps):
            if step.norm is None:
                continue
            moments = _Moments(step.channels)
            for values, tile in zip(held, tiles):
                self._run_steps(values, stats, done, i)
                x = ops.convert_to_numpy(values[step.inputs[0]])[0]
                moments.add(x[tile.core.within(tile.window, x.shape[0] / tile.window.height)])
            mean, var = moments.result()
            lo, c = self._offsets[step.norm], step.channels
            stats[0, lo:lo + c], stats[0, lo + c:lo + 2 * c] = mean, var
            for values in held:
                self._run_steps(values, stats, i, i + 1)
            done = i + 1
        if finished is not None:
            for tile in tiles:
                values = held.pop(0)
                self._run_steps(values, stats, done, len(self.steps))
                finished(tile, ops.convert_to_numpy(values[self._last])[0])
        return stats[0]

    def _exact_passes(self, source: SourceImage, tiles: Sequence[Tile], shift: np.ndarray,
                      progress: Callable[[], None]) -> np.ndarray:
        """Exact statistics in bounded memory: one pass over every tile per norm layer.

        Pass k runs each tile up to norm layer k's input, with layers before it
        normalised by their (by then exact) statistics; ``shift`` (a rough estimate)
        centres the sums so float32 per-tile sums lose nothing. Costs about
        6 forward passes (the sum of the prefixes).
        """
        stats = shift.astype(np.float32).copy()
        for k, norm in enumerate(self.norms):
            call = self.compiled(stop=k)
            moments = _PassMoments(self, stats)
            for t in tiles:
                moments.add(t.core.area, _pad_sums(self, k, call(source.region(t.window)[None], stats[None],
                                                                 _core_array(t))[0]))
                progress()
            lo, c = self._offsets[k], norm.scale.shape[0]
            stats[lo:lo + 2 * c] = moments.result()[lo:lo + 2 * c]
        return stats

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
                return self._layerwise(source, tiles)
            shift = self.statistics(source, "sample", stats_memory=min(stats_memory, 64 << 20))
            return self._exact_passes(source, tiles, shift, progress)
        if method == "sample":
            window = (_align_up(SAMPLE_CORE) + 2 * self.margin) ** 2
            count = max(1, int(stats_memory / (window * self.held_bytes_per_pixel)))
            return self._layerwise(source, sample_tiles(height, width, self.margin, count))
        if method == "downscale":
            small = source.downscaled(int(stats_memory / (self.held_bytes_per_pixel * 1.3)))
            h, w = small.padded
            return self._layerwise(small, plan_tiles(h, w, self.margin, max_pixels=max_pixels))
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
        margin = self.margin if margin is None else _align_up(margin)
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
            self._layerwise(source, tiles, finished)
            return out
        self.last_run = RunReport(len(tiles), margin, "exact-passes" if method == "exact" else method, passes)
        if isinstance(stats, str):
            stats = self.statistics(source, method, stats_memory=stats_memory, tile_memory=tile_memory,
                                    tiles=tiles, progress=tick)
        stats = np.asarray(stats, np.float32).reshape(self.stats_size)
        call = self.compiled()
        moments = _PassMoments(self, stats)
        for t in tiles:
            result, sums = call(source.region(t.window)[None], stats[None], _core_array(t))
            moments.add(t.core.area, sums[0])
            finished(t, result[0])
        self.last_run.residual = _difference(self, stats, moments.result())
        return out


def _core_array(t: Tile) -> np.ndarray:
    rows, cols = t.core.within(t.window)
    return np.array([[rows.start, cols.start, rows.stop, cols.stop]], np.int32)


def _pad_sums(tiled: TiledNetwork, k: int, sums: np.ndarray) -> np.ndarray:
    """One norm layer's sums placed in a full ``stats_size`` vector."""
    full = np.zeros(tiled.stats_size, np.float64)
    full[tiled._offsets[k]:tiled._offsets[k] + len(sums)] = sums
    return full


def _compile(tiled: TiledNetwork, stop: int | None) -> Callable:
    """``tiled.forward`` with ``core`` for the active backend (as `steps.make_forward` does it)."""
    from keras import ops

    from .devices import keras_backend

    backend = keras_backend()
    forward = lambda x, s, core: tiled.forward(x, s, core, stop)  # noqa: E731
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(forward, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                                   tf.TensorSpec([None, tiled.stats_size], tf.float32),
                                                   tf.TensorSpec([None, 4], tf.int32)])
        call = lambda x, s, core: fn(tf.constant(x, tf.float32), tf.constant(s, tf.float32),  # noqa: E731
                                     tf.constant(core, tf.int32))
    elif backend == "torch":
        import torch

        def call(x, s, core):
            with torch.no_grad():
                return forward(*(ops.convert_to_tensor(a) for a in (x, s, core)))
    elif backend == "jax":
        import jax
        from keras import StatelessScope

        variables = list(tiled.net.variables)

        @jax.jit
        def pure(values, x, s, core):
            with StatelessScope(state_mapping=list(zip(variables, values))):
                return forward(x, s, core)
        values = [v.value for v in variables]
        call = lambda x, s, core: pure(values, x, s, core)  # noqa: E731
    else:
        call = forward

    def numpy_call(x, s, core):
        result = call(x, s, core)
        if stop is not None:
            return ops.convert_to_numpy(result)
        return ops.convert_to_numpy(result[0]), ops.convert_to_numpy(result[1])
    return numpy_call


def stylize_tiled(net, pixels: np.ndarray, **options) -> np.ndarray:
    """One-off `TiledNetwork(net).run(pixels, **options)`; ``net`` may already be a `TiledNetwork`."""
    tiled = net if isinstance(net, TiledNetwork) else TiledNetwork(net)
    return tiled.run(pixels, **options)


def run_with_retries(tiled: TiledNetwork, pixels: np.ndarray, *, tile_memory: int = TILE_MEMORY,
                     stats_memory: int = STATS_MEMORY, **options) -> np.ndarray:
    """`TiledNetwork.run`, halving both memory budgets after each out-of-memory error."""
    while True:
        try:
            return tiled.run(pixels, tile_memory=tile_memory, stats_memory=stats_memory, **options)
        except Exception as exc:  # noqa: BLE001 - memory errors come as several types
            if not out_of_memory(exc) or tile_memory // 2 < MIN_TILE_MEMORY:
                raise
        # Out of the except block, so the failed attempt's tensors are freed first.
        tile_memory, stats_memory = tile_memory // 2, stats_memory // 2


# ---------------------------------------------------------------- files
def load_pixels(path: Path, *, allow_huge: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The photo as decoded (uint8 for 8-bit files; no float32 copy) and its alpha, or None.

    Colour is H x W x 3, or H x W x 1 for grey (`SourceImage` spreads it to RGB);
    the same pixels `images.load_image` gives, in the file's own dtype.
    """
    from . import images

    im = images._decode(Path(path), allow_huge=allow_huge)
    arr = np.asarray(im)
    im.close()
    del im
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    alpha = arr[..., -1] if arr.shape[2] in (2, 4) else None
    colour = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
    return colour, alpha

