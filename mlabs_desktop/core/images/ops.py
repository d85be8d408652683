"""Pixel arithmetic on float32 RGB arrays: rounding to uint8, padding, resizing, blending, colour.

Arrays are H x W x 3 in 0..255 (float32 unless said otherwise); nothing here
reads or writes files.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

LANCZOS = Image.Resampling.LANCZOS
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def shrink_image(im: Image.Image, max_side: int) -> Image.Image:
    longest = max(im.size)
    return im if longest <= max_side else im.resize(scaled_size(im.size, max_side / longest), LANCZOS)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip to 0..255 (NaN becomes 0); uint8 input comes back as is."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        return np.clip(x, 0, 255).astype(np.uint8)
    out = np.clip(np.rint(x), 0, 255)
    return np.nan_to_num(out, copy=False, nan=0.0).astype(np.uint8)


def pad_to_multiple(rgb: np.ndarray, multiple: int = 4,
                    mode: str = "reflect") -> tuple[np.ndarray, tuple[int, int]]:
    """Pad bottom/right so H and W divide by ``multiple``; also return the original (h, w)."""
    if multiple < 1:
        raise ValueError(f"multiple must be at least 1, got {multiple}")
    h, w = rgb.shape[:2]
    out = rgb
    for axis, length in ((0, h), (1, w)):
        extra = -length % multiple
        if extra:
            widths = [(0, 0)] * out.ndim
            widths[axis] = (0, extra)
            # Reflection needs `extra` pixels besides the edge one; tiny images lack them.
            axis_mode = "edge" if mode == "reflect" and extra > length - 1 else mode
            out = np.pad(out, widths, mode=axis_mode)  # type: ignore[call-overload]
    return out, (h, w)


def crop_to(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Undo `pad_to_multiple`: a view of the top-left ``hw`` region."""
    if hw[0] > x.shape[0] or hw[1] > x.shape[1]:
        raise ValueError(f"cannot crop {x.shape[:2]} to a larger {hw}")
    return x[: hw[0], : hw[1]]


def resize_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Lanczos-resize to (width, height) in float32, one Pillow 'F' plane per channel."""
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {size}")
    x = np.asarray(rgb, dtype=np.float32)
    if x.shape[:2] == (height, width):
        return x
    planes = x.reshape(x.shape[0], x.shape[1], -1)
    out = np.empty((height, width, planes.shape[2]), dtype=np.float32)
    for c in range(planes.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(planes[..., c]))
        out[..., c] = np.asarray(plane.resize((width, height), LANCZOS))
    np.clip(out, x.min(), x.max(), out=out)  # Lanczos rings past the input's range
    return out.reshape((height, width) + x.shape[2:])


def resize_max(rgb: np.ndarray, max_size: int) -> np.ndarray:
    """Shrink so the longest side is at most ``max_size``; smaller input comes back as is."""
    h, w = rgb.shape[:2]
    return rgb if max(h, w) <= max_size else resize_to(rgb, scaled_size((w, h), max_size / max(h, w)))


def blend(original: np.ndarray, styled: np.ndarray, strength: float) -> np.ndarray:
    if original.shape != styled.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {styled.shape}")
    s = np.float32(min(max(float(strength), 0.0), 1.0))
    return np.asarray(original, np.float32) * (np.float32(1) - s) + np.asarray(styled, np.float32) * s


def preserve_colors(original: np.ndarray, styled: np.ndarray) -> np.ndarray:
    """Luminance (BT.601 Y) from ``styled``, chroma (Cb, Cr) from ``original``."""
    if original.shape != styled.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {styled.shape}")
    o = np.asarray(original, np.float32)
    # Each channel of the YCbCr->RGB inverse is Y plus a chroma term, so keeping
    # the original's Cb/Cr and swapping in the styled Y is adding the Y difference.
    out = o + (np.asarray(styled, np.float32) @ LUMA - o @ LUMA)[..., None]
    return np.clip(out, 0.0, 255.0, out=out)


# A spread (standard deviation, 0..255 levels) below this in every channel is one colour to the eye.
FLAT_SPREAD = 1.0


def is_flat(rgb: np.ndarray) -> bool:
    """Whether an image is a single colour give or take noise: a blank frame, a placeholder."""
    pixels = np.asarray(rgb, np.float32).reshape(-1, rgb.shape[-1] if rgb.ndim == 3 else 1)
    return bool(pixels.std(axis=0).max() < FLAT_SPREAD)
