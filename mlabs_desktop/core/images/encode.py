"""Image files out: arrays saved atomically in the format the extension names, and thumbnails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, features

from mlabs_desktop.core import atomic
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.decode import PathLike, decode, longest_draft, show_path
from mlabs_desktop.core.images.ops import shrink_image, to_uint8

SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
                ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                # A GIF in keeps its name out (stylize into a folder); Pillow reduces it to 256 colours.
                ".gif": "GIF"}
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})


def _save_format(path: Path) -> str:
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        supported = ", ".join(sorted(SAVE_FORMATS))
        raise UserError(f"Cannot save {show_path(path)}: unknown image type; use one of {supported}.")
    return fmt


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    try:
        with atomic.atomic_path(path) as tmp:
            write(tmp)
    except OSError as exc:
        raise UserError(f"Cannot save {show_path(path)}: {exc.strerror or exc}.") from exc


def save_image(path: PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None, quality: int = 95) -> Path:
    """Write atomically in the format the extension names; JPEG and BMP drop ``alpha``."""
    path = Path(path)
    fmt = _save_format(path)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 array, got shape {rgb.shape}")
    pixels = to_uint8(rgb)
    if alpha is not None and fmt in _ALPHA_FORMATS:
        if alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha shape {alpha.shape} does not match image {rgb.shape[:2]}")
        pixels = np.dstack([pixels, to_uint8(alpha)])
    im = Image.fromarray(np.ascontiguousarray(pixels))
    options: dict[str, object] = {"format": fmt}  # the temp file's .part suffix names no format
    if fmt == "JPEG":  # 4:4:4 chroma at high quality keeps thin coloured strokes crisp
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality >= 100)
    elif fmt == "TIFF" and features.check("libtiff"):
        options.update(compression="tiff_lzw")  # uncompressed TIFFs of big photos are enormous
    _write_atomic(path, lambda tmp: im.save(tmp, **options))
    return path


def thumbnail_bytes(rgb_or_path: np.ndarray | PathLike, max_side: int = 256, format: str = "JPEG",
                    *, allow_huge: bool = False) -> bytes:
    """Encoded thumbnail (longest side <= ``max_side``) of an array or an image file."""
    if isinstance(rgb_or_path, np.ndarray):
        im = Image.fromarray(np.ascontiguousarray(to_uint8(rgb_or_path)))
    else:
        im = decode(Path(rgb_or_path), allow_huge=allow_huge, draft_scale=longest_draft(max_side))
    if im.mode == "F":
        im = Image.fromarray(to_uint8(np.asarray(im)))
    fmt = "JPEG" if format.upper() == "JPG" else format.upper()
    if im.mode in ("LA", "RGBA") and fmt not in _ALPHA_FORMATS:  # show transparency as white
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA")).convert("RGB")
    buf = io.BytesIO()
    shrink_image(im, max_side).save(buf, format=fmt, **({"quality": 85} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def save_thumbnail(src: np.ndarray | PathLike, dest: PathLike, max_side: int = 256,
                   *, allow_huge: bool = False) -> Path:
    dest = Path(dest)
    data = thumbnail_bytes(src, max_side, _save_format(dest), allow_huge=allow_huge)
    _write_atomic(dest, lambda tmp: tmp.write_bytes(data))
    return dest
