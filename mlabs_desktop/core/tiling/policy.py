"""Huge photos in bounded memory: the network run tile by tile, with no seams.

A tile's output differs from the same pixels of the whole image's output for two
reasons, and both are removed here rather than blended over:

* **Context.** An output pixel depends on the input within the network's
  receptive field (9x9 convolutions, two stride-2 levels, ten 3x3 convolutions at
  quarter resolution: 57 pixels for ``default``). `program.receptive_radius` computes it
  from the layer list; every tile reads its *core* plus a margin at least that
  wide and keeps only the core. Tiles start on multiples of 4, so the stride-2
  grids coincide with the whole image's, and a tile touching the image's edge
  has no margin on that side, so the network's own padding (reflection or zeros)
  falls exactly where it falls for the whole image. The image is padded to what
  the network needs the way `inference.run_network` pads it, but virtually (index
  maps), so no padded or float32 copy of the whole image is ever made.
* **Instance-norm statistics.** Every `InstanceNormalization` layer normalises
  by per-channel mean and variance over the whole image. Tiles run through the
  same layers with each norm layer's statistics given as an input (see
  `statistics.frozen_norm`), and the statistics come from a layer-by-layer pass over
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
networks amplify small statistics errors, so they are opt-in
(`network.HUGE_STATS`, ``huge_stats``; docs/decisions/whole-or-tiled.md).

Memory stays bounded: the photo stays uint8 (as decoded), each tile is made
float32 on its own, and the result goes into a caller's array (uint8 for
`stylize_file`) tile by tile.

The pieces: `geometry` (boxes and tile plans), `source` (the photo,
padded virtually), `program` (the layer list and its reach),
`statistics` (measuring the statistics) and `network` (the runner).
This module is the entry point `stylizer` uses: when to tile, and retrying with
smaller budgets when memory runs out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlabs_desktop.core.hardware.memory import host_memory, out_of_memory
from mlabs_desktop.core.tiling.network import STATS_MEMORY, TILE_MEMORY, TiledNetwork

if TYPE_CHECKING:
    from mlabs_desktop.core.hardware.devices import DeviceInfo

TILE_ABOVE_PIXELS = {"cpu": 4_000_000, "gpu": 8_000_000}  # whole at or below these, whatever the memory
MIN_TILE_MEMORY = 32 << 20      # out-of-memory retries never go below this
# The one-pass statistics never hold more than this: enough for a 12-megapixel photo (1.8-2 GB),
# while a 50-megapixel one (3.2-6.4 GB) takes the passes and stays under 3 GB in all.
MAX_STATS_MEMORY = 5 << 29
# GPU memory of the widest network run whole, per pixel: about 1,000 bytes measured on the
# CPU (default architecture, 2.8 MP, before folded upsampling), with headroom for GPU
# convolution workspace.
WHOLE_IMAGE_BYTES_PER_PIXEL = 1500
# Peak memory of a whole-image run on the CPU, per pixel, over the process's own: measured at
# 12 MP (2 cores, TensorFlow 2.21) 504 bytes for classic, 290 for default, 160 for lite.
CPU_WHOLE_BYTES_PER_PIXEL = 640
# The share of the memory available now that a whole-image run on the CPU may take.
CPU_WHOLE_SHARE = 0.5


def whole_image_limit(device_kind: str = "cpu", memory_bytes: int | None = None) -> int:
    """The most pixels a photo may have and still run whole, not tile by tile.

    Tiles cost time (each norm layer's statistics come from a first pass), so a photo
    runs whole when it fits: on a GPU whose memory is known, in half of it; on the
    CPU, in `CPU_WHOLE_SHARE` of the memory available now (figures in
    docs/decisions/whole-or-tiled.md). Photos up to
    `TILE_ABOVE_PIXELS` always run whole; running out of memory falls back to tiles.
    """
    if device_kind == "gpu" and memory_bytes:
        return memory_bytes // 2 // WHOLE_IMAGE_BYTES_PER_PIXEL
    floor = TILE_ABOVE_PIXELS.get(device_kind, TILE_ABOVE_PIXELS["cpu"])
    if device_kind != "cpu":
        return floor
    available = (host_memory() or (0, 0))[1]
    return max(floor, int(available * CPU_WHOLE_SHARE) // CPU_WHOLE_BYTES_PER_PIXEL)


def should_tile(height: int, width: int, device_kind: str = "cpu", memory_bytes: int | None = None) -> bool:
    """Whether a photo goes tile by tile (see `whole_image_limit`)."""
    return height * width > whole_image_limit(device_kind, memory_bytes)


def stats_memory_for(device_kind: str = "cpu", memory_bytes: int | None = None) -> int:
    """How much the one-pass statistics run may hold: a quarter of what is free, between 1 and 2.5 GB.

    Holding every tile's activations measures the statistics in one pass; past this
    budget they take a pass per norm layer, several times slower. A GPU's share
    follows its own memory.
    """
    if device_kind == "gpu":
        free = memory_bytes
    else:
        free = (host_memory() or (0, 0))[1]
    return int(min(MAX_STATS_MEMORY, max(STATS_MEMORY, (free or 0) // 4)))


def stylize_tiled(net, pixels: np.ndarray, **options) -> np.ndarray:
    """One-off `TiledNetwork(net).run(pixels, **options)`; ``net`` may already be a `TiledNetwork`."""
    tiled = net if isinstance(net, TiledNetwork) else TiledNetwork(net)
    return tiled.run(pixels, **options)


def run_with_retries(tiled: TiledNetwork, pixels: np.ndarray, *, tile_memory: int = TILE_MEMORY,
                     stats_memory: int | None = None, device: DeviceInfo | None = None,
                     **options) -> np.ndarray:
    """`TiledNetwork.run`, halving both memory budgets after each out-of-memory error.

    ``stats_memory`` defaults to `stats_memory_for` the ``device`` (default: this computer's free memory).
    """
    if stats_memory is None:
        stats_memory = stats_memory_for(device.kind, device.memory_bytes) if device else stats_memory_for()
    while True:
        try:
            return tiled.run(pixels, tile_memory=tile_memory, stats_memory=stats_memory, **options)
        except Exception as exc:  # noqa: BLE001 - memory errors come as several types
            if not out_of_memory(exc) or tile_memory // 2 < MIN_TILE_MEMORY:
                raise
        # Out of the except block, so the failed attempt's tensors are freed first.
        tile_memory, stats_memory = tile_memory // 2, stats_memory // 2
