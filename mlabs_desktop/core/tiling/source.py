"""The photo a tiled run reads: uint8 as decoded, padded virtually, made float32 one tile at a time.

No padded or float32 copy of the whole image is ever made: the padding
`inference.run_network` adds is kept as index maps (`_padded_index`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mlabs_desktop.core.tiling.geometry import ALIGN, MIN_SIDE, Box


def _padded_index(n: int) -> np.ndarray:
    """For each row (or column) of the padded image, the source row it copies.

    Mirrors `inference.run_network`: edge-extend to MIN_SIDE, then reflect to a
    multiple of 4 (edge where reflection lacks pixels, as `ops.pad_to_multiple`).
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
        from mlabs_desktop.core.images.ops import resize_to
        return SourceImage(resize_to(self.colour.astype(np.float32), size))


def load_pixels(path: Path, *, allow_huge: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The photo as decoded (uint8 for 8-bit files; no float32 copy) and its alpha, or None.

    Colour is H x W x 3, or H x W x 1 for grey (`SourceImage` spreads it to RGB);
    the same pixels `images.load_image` gives, in the file's own dtype.
    """
    from mlabs_desktop.core.images.decode import decode

    im = decode(Path(path), allow_huge=allow_huge)
    arr = np.asarray(im)
    im.close()
    del im
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    alpha = arr[..., -1] if arr.shape[2] in (2, 4) else None
    colour = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
    return colour, alpha

