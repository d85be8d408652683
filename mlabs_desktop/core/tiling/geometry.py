"""Where the tiles go: aligned boxes, the tile plan for a memory budget, sample windows.

Tiles start on multiples of `ALIGN` (the network's total stride), so the
stride-2 grids of a tile coincide with the whole image's; see `policy` for why
the cores partition the image and the windows add context around them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALIGN = 4                       # the network's total stride: tiles start on multiples of it
MIN_SIDE = 16                   # as `inference.MIN_SIDE` (kept equal by a test)
SAMPLE_CORE = 256               # core side of the windows that sample a huge photo's statistics


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


def align_up(n: int) -> int:
    return -(-int(n) // ALIGN) * ALIGN


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size `inference.run_network` runs an image of this size at."""
    return align_up(max(height, MIN_SIDE)), align_up(max(width, MIN_SIDE))


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
        core = max(ALIGN, align_up(core))
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
            ch, cw = min(align_up(core), r1 - r0), min(align_up(core), c1 - c0)
            top = r0 + ((r1 - r0 - ch) // 2) // ALIGN * ALIGN
            left = c0 + ((c1 - c0 - cw) // 2) // ALIGN * ALIGN
            c = Box(top, left, top + ch, left + cw)
            tiles.append(Tile(c, Box(max(0, c.top - margin), max(0, c.left - margin),
                                     min(height, c.bottom + margin), min(width, c.right + margin))))
    return tiles


def core_array(t: Tile) -> np.ndarray:
    """The tile's core in its window's pixels, as the (1, 4) int32 ``core`` input of `TiledNetwork.forward`."""
    rows, cols = t.core.within(t.window)
    return np.array([[rows.start, cols.start, rows.stop, cols.stop]], np.int32)
