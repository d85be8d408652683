"""One generated corpus of awkward and broken image files, shared by every entry-point test.

`write_corpus(folder)` writes each case as a real, tiny file (or folder) and
says whether the app should load it ("works", with the size it should load
at, EXIF orientation applied) or refuse it with one clear message ("refused",
with words the message must contain). Sizes stay tiny so a test can run the
whole corpus through the command line, the trainer and the app in seconds.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

WORKS, REFUSED = "works", "refused"


@dataclass(frozen=True)
class CaseInfo:
    path: Path
    expect: str                        # WORKS or REFUSED
    size: tuple[int, int] | None = None  # (width, height) it loads at, for WORKS
    words: tuple[str, ...] = ()        # lower-case words the refusal must contain, for REFUSED
    skip: str | None = None            # why this case cannot be tried here (e.g. root ignores chmod)

    @property
    def works(self) -> bool:
        return self.expect == WORKS


def _pixels(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encoded(im: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` grey pixels, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def _animated(fmt: str, size: tuple[int, int]) -> bytes:
    frames = [Image.fromarray(_pixels(*size, seed=i)).convert("P" if fmt == "GIF" else "RGB") for i in range(3)]
    return _encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored 12x6, shown 6x12
    return _encoded(Image.fromarray(_pixels(12, 6)), "JPEG", exif=exif.tobytes())


def _palette_with_transparency() -> bytes:
    im = Image.new("P", (10, 8), 0)
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    im.paste(1, (0, 0, 5, 8))
    im.paste(2, (5, 0, 10, 4))
    return _encoded(im, "PNG", transparency=0)


def _tiff_16bit() -> bytes:
    ramp = (np.arange(9 * 7, dtype=np.uint16).reshape(7, 9) * 1000).astype(np.uint16)
    return _encoded(Image.fromarray(ramp), "TIFF")


def _tiff_float() -> bytes:
    ramp = np.linspace(0.0, 1.0, 9 * 7, dtype=np.float32).reshape(7, 9)
    return _encoded(Image.fromarray(ramp), "TIFF")


def _truncated(fmt: str) -> bytes:
    data = _encoded(Image.fromarray(_pixels(40, 30)), fmt)
    return data[: len(data) // 2]


def write_corpus(folder: Path) -> dict[str, CaseInfo]:
    """Write every case into ``folder`` (created); returns them by a short id."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, CaseInfo] = {}

    def add(case: str, name: str, data: bytes, expect: str, size: tuple[int, int] | None = None,
            words: tuple[str, ...] = (), skip: str | None = None) -> Path:
        path = folder / name
        path.write_bytes(data)
        cases[case] = CaseInfo(path, expect, size, words, skip)
        return path

    # Refused: each with the words its one message must contain.
    add("empty", "empty.jpg", b"", REFUSED, words=("empty",))
    add("truncated-jpeg", "truncated.jpg", _truncated("JPEG"), REFUSED, words=("truncated",))
    add("truncated-png", "truncated.png", _truncated("PNG"), REFUSED, words=("truncated",))
    add("text-as-jpg", "notes.jpg", b"shopping list: milk, eggs\n" * 20, REFUSED, words=("not an image",))
    add("html-as-jpg", "page.jpg", b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n",
        REFUSED, words=("not an image",))
    # 3.6 gigapixels: past Pillow's limit and past the app's raised limit for huge photos alike.
    add("bomb", "bomb.png", bomb_png(60_000, 60_000), REFUSED, words=("too large",))
    (folder / "folder.jpg").mkdir(exist_ok=True)  # a folder where a file is expected
    cases["folder-as-file"] = CaseInfo(folder / "folder.jpg", REFUSED, words=("folder",))
    locked = add("unreadable", "locked.png", _encoded(Image.fromarray(_pixels(4, 4)), "PNG"), REFUSED,
                 words=("permission",),
                 skip="root reads any file whatever its mode here; test_unreadable_files tries it in a child that "
                      "cannot" if os.name != "posix" or os.geteuid() == 0 else None)
    locked.chmod(0)

    # Works: each with the size it must load at.
    add("1x1", "one-pixel.png", _encoded(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), WORKS, (1, 1))
    add("100000x1", "very-wide.png", _encoded(Image.fromarray(_pixels(100_000, 1)), "PNG"), WORKS, (100_000, 1))
    add("cmyk", "cmyk.jpg", _encoded(Image.fromarray(_pixels(10, 8)).convert("CMYK"), "JPEG"), WORKS, (10, 8))
    add("palette-alpha", "palette.png", _palette_with_transparency(), WORKS, (10, 8))
    add("tiff-16bit", "sixteen.tif", _tiff_16bit(), WORKS, (9, 7))
    add("tiff-float", "float.tif", _tiff_float(), WORKS, (9, 7))
    add("animated-gif", "animated.gif", _animated("GIF", (11, 9)), WORKS, (11, 9))
    add("animated-webp", "animated.webp", _animated("WEBP", (11, 9)), WORKS, (11, 9))
    add("exif-rotated", "rotated.jpg", _exif_rotated(), WORKS, (6, 12))
    plain = _encoded(Image.fromarray(_pixels(8, 6)), "PNG")
    if os.name == "posix":  # bytes that are not UTF-8 survive in str as surrogates
        odd = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9-\xff.png"))
        odd.write_bytes(plain)
        cases["non-utf8-name"] = CaseInfo(odd, WORKS, (8, 6))
    # Long, but leaving room for the hidden temporary a save writes beside it.
    add("long-name", "x" * 200 + ".png", plain, WORKS, (8, 6))
    return cases
