"""Image files in: whatever Pillow reads becomes float32 RGB in 0..255.

Images arrive by drag-and-drop and as whole folders of training photos, so every
file is untrusted: each failure becomes a `UserError` naming the file, and the
decode is forced here so damage shows up now rather than mid-training.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.ops import LANCZOS, shrink_image, to_uint8

# GIF is read (its first frame) like the rest: photos arrive as animated GIFs from the web.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
HUGE_IMAGE_PIXELS = 1_000_000_000
PathLike = Union[str, os.PathLike]


def is_image_path(path: PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class LoadedImage:
    rgb: np.ndarray  # float32 HxWx3, 0..255
    alpha: np.ndarray | None  # float32 HxW, 0..255; None when the file has no transparency
    path: Path

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order Pillow and the UI use."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


# Pillow's pixel limit is one process-wide number. `allow_huge` callers raise it
# while they decode, counted so overlapping callers share one raise; the normal
# path also checks `im.size` against the saved value, so a raise made by another
# thread never lets a too-large image through here.
_limit_lock = threading.Lock()
_raised_users = 0
_saved_limit: int | None = None


def _normal_limit() -> int | None:
    with _limit_lock:
        return _saved_limit if _raised_users else Image.MAX_IMAGE_PIXELS


@contextlib.contextmanager
def _huge_limit() -> Iterator[int | None]:
    global _raised_users, _saved_limit
    with _limit_lock:
        if _raised_users == 0:
            _saved_limit = Image.MAX_IMAGE_PIXELS
            if _saved_limit is not None:  # None: someone turned the check off entirely
                Image.MAX_IMAGE_PIXELS = max(_saved_limit, HUGE_IMAGE_PIXELS)
        _raised_users += 1
        limit = Image.MAX_IMAGE_PIXELS
    try:
        yield limit
    finally:
        with _limit_lock:
            _raised_users -= 1
            if _raised_users == 0:
                Image.MAX_IMAGE_PIXELS = _saved_limit


def _open_formats() -> list[str]:
    # EPS decoding shells out to Ghostscript: too much attack surface for files
    # dropped onto the window. Everything else Pillow decodes in-process.
    Image.init()
    return [fmt for fmt in Image.ID if fmt != "EPS"]


def show_path(path: PathLike) -> str:
    # Undecodable bytes in a file name survive as lone surrogates, which would
    # make printing the message fail in turn.
    return "'" + str(path).encode("utf-8", "backslashreplace").decode("utf-8") + "'"


def _cant_open(path: Path, reason: str) -> UserError:
    return UserError(f"cannot open {show_path(path)}: {reason}.")


def _too_large(path: Path, pixels: int | None, limit: int | None) -> UserError:
    def mp(n: int) -> str:
        return f"{n / 1e6:.0f}" if n >= 10e6 else f"{n / 1e6:.2g}"
    size = f"{mp(pixels)} megapixels" if pixels else "too many pixels"
    return _cant_open(path, f"the image is too large ({size}"
                            + (f"; the limit is {mp(limit)} megapixels)" if limit else ")"))


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (FileNotFoundError, "the file does not exist"),
    (PermissionError, "permission denied"),
    (UnidentifiedImageError, "it is not an image, or its format is not supported"),
    (MemoryError, "not enough memory to decode it"),
)


def _open_error(path: Path, exc: BaseException, limit: int | None) -> UserError:
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        found = re.search(r"\((\d+) pixels\)", str(exc))
        return _too_large(path, int(found.group(1)) if found else None, limit)
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return _cant_open(path, reason)
    if isinstance(exc, OSError) and exc.errno is not None:  # Pillow's decode errors have no errno
        return _cant_open(path, str(exc.strerror or exc))
    # Decoders raise OSError, SyntaxError, ValueError, struct.error, ... on bad data.
    return _cant_open(path, "the file is truncated or corrupt")


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except OSError as exc:
        raise _open_error(path, exc, None) from None
    if stat.S_ISDIR(st.st_mode):
        raise _cant_open(path, "it is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise _cant_open(path, "it is not a regular file")
    if st.st_size == 0:
        raise _cant_open(path, "the file is empty")


def _normalize(im: Image.Image) -> Image.Image:
    """``im`` as L, LA, RGB or RGBA (8-bit) or F (float, already scaled to 0..255)."""
    mode = im.mode
    if mode in ("L", "RGB", "LA", "RGBA"):
        return im.convert("RGBA") if "transparency" in im.info else im
    if mode == "I" or mode.startswith("I;16"):
        # 16-bit sources (PNG, TIFF): 65535 is white, and 65535 / 257 == 255.
        arr = np.asarray(im).astype(np.float32) / np.float32(257.0)
        return Image.fromarray(np.clip(arr, 0.0, 255.0).astype(np.float32))
    if mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if arr.size and float(arr.max()) <= 1.0:  # float files usually store 0..1
            arr = arr * np.float32(255.0)
        return Image.fromarray(np.clip(arr, 0.0, 255.0).astype(np.float32))
    if mode == "1":
        return im.convert("L")
    if mode == "LAB" and features.check("littlecms2"):
        from PIL import ImageCms  # Pillow's plain LAB->RGB convert is not colorimetric
        lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
        return ImageCms.applyTransform(im, ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))
    return im.convert("RGBA" if im.has_transparency_data else "RGB")


def decode(path: Path, *, allow_huge: bool = False,
            draft_scale: Callable[[tuple[int, int]], float] | None = None) -> Image.Image:
    """Fully decode the first frame, EXIF-oriented and normalized; UserError on any failure.

    ``draft_scale(size)`` is the final scale the caller wants; JPEGs below 1 may
    then decode at a reduced size (DCT scaling), which is several times faster.
    """
    _check_file(path)
    limit = None
    try:
        with (_huge_limit() if allow_huge else contextlib.nullcontext(_normal_limit())) as limit, \
                warnings.catch_warnings(), open(path, "rb") as fh:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(fh, formats=_open_formats())
            w, h = im.size
            if limit is not None and w * h > limit:
                raise _too_large(path, w * h, limit)
            scale = draft_scale(im.size) if draft_scale else 1.0
            if scale < 1:
                im.draft(None, (math.ceil(w * scale), math.ceil(h * scale)))
            im.load()  # force the full decode so truncation is caught here
            try:
                ImageOps.exif_transpose(im, in_place=True)
            except Exception as exc:  # broken EXIF should not make a good photo unreadable
                if isinstance(exc, MemoryError):
                    raise
    except Exception as exc:
        raise _open_error(path, exc, limit) from exc
    try:
        return _normalize(im)
    except MemoryError as exc:
        raise _open_error(path, exc, limit) from exc
    except Exception as exc:
        raise _cant_open(path, f"its colour mode ({im.mode}) is not supported") from exc


def check_openable(path: PathLike) -> None:
    """The `UserError` `decode` would give for a file it cannot even start on (missing, unreadable, empty, a
    folder, not an image), from the header alone: a command can answer before its network loads."""
    path = Path(path)
    _check_file(path)
    try:
        with _huge_limit(), warnings.catch_warnings(), open(path, "rb") as fh:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is judged when decoding
            Image.open(fh, formats=_open_formats())
    except Exception as exc:
        raise _open_error(path, exc, None) from exc


def longest_draft(max_side: int) -> Callable[[tuple[int, int]], float]:
    # Keep twice the target after DCT scaling (as Image.thumbnail does) so the
    # final Lanczos pass, not the JPEG decoder, decides the quality.
    return lambda size: 2 * max_side / max(size)


def load_image(path: PathLike, max_size: int | None = None, *, allow_huge: bool = False) -> LoadedImage:
    """Read the first frame of any Pillow image as float32 RGB (+ alpha) in 0..255.

    ``max_size`` caps the longest side (never upscales); ``allow_huge`` raises the
    pixel limit from Pillow's default (~89 MP) to `HUGE_IMAGE_PIXELS`.
    """
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    path = Path(path)
    im = decode(path, allow_huge=allow_huge, draft_scale=longest_draft(max_size) if max_size else None)
    arr = np.array(shrink_image(im, max_size) if max_size else im, dtype=np.float32)
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    alpha = np.ascontiguousarray(arr[..., -1]) if arr.shape[2] in (2, 4) else None
    colour = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
    rgb = np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else np.ascontiguousarray(colour)
    return LoadedImage(rgb=rgb, alpha=alpha, path=path)


def read_rgb(path: PathLike, max_size: int | None = None, *, allow_huge: bool = False) -> np.ndarray:
    return load_image(path, max_size, allow_huge=allow_huge).rgb


@dataclass(frozen=True)
class CropVariety:
    """How training crops vary beyond their position: not at all for style training, as the reference."""
    smallest: float = 1.0  # the source square's side: at least this fraction of the photo's shorter side
    mirror: bool = False   # flipped left to right half the time

    def __post_init__(self):
        if not 0 < self.smallest <= 1:
            raise ValueError(f"smallest must be in (0, 1], got {self.smallest}")


def training_crop(path: PathLike, size: int, rng: np.random.Generator,
                  *, allow_huge: bool = False, variety: CropVariety = CropVariety()) -> np.ndarray:
    """A random size x size uint8 RGB crop after scaling the shorter side to ``size`` (or a part of it)."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    im = decode(Path(path), allow_huge=allow_huge, draft_scale=lambda dims: size / (min(dims) * variety.smallest))
    if im.mode in ("LA", "RGBA"):
        im = im.convert(im.mode[:-1])  # style training ignores transparency
    w, h = im.size
    side = min(w, h)  # the source square that becomes size x size
    if variety.smallest < 1:
        side = max(1, round(side * rng.uniform(variety.smallest, 1.0)))
    left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    crop = im.resize((size, size), LANCZOS, box=(left, top, left + side, top + side))
    arr = to_uint8(np.asarray(crop)) if crop.mode == "F" else np.asarray(crop)
    if variety.mirror and rng.random() < 0.5:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr)


def image_info(path: PathLike) -> tuple[int, int] | None:
    """(width, height) as `load_image` would give it, from the header only; None if unreadable."""
    try:
        with _huge_limit(), warnings.catch_warnings(), open(path, "rb") as fh:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(fh, formats=_open_formats())
            w, h = im.size
            # A PNG without an early eXIf chunk would be decoded whole just to look for one.
            if (im.format != "PNG" or "exif" in im.info) and im.getexif().get(0x0112) in (5, 6, 7, 8):
                w, h = h, w  # EXIF orientation turns the picture a quarter
            return w, h
    except Exception:  # a scan must survive any file; None already means "skip it"
        return None
