"""Tests for mlabs_desktop.core.images on bad input: missing, unreadable, disguised, truncated,
oversized and random files give a `UserError` (or `image_info` None), never anything else."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mlabs_desktop.core.images import decode as image_decode
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.decode import LoadedImage, check_openable, image_info, load_image, training_crop
from test_images import assert_valid, noise, write


# --- errors ------------------------------------------------------------------


def expect_user_error(path: Path, *words: str, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        load_image(path, **kwargs)
    message = str(info.value)
    assert path.name in message
    for word in words:
        assert word in message.lower()
    return message


def test_missing_file(tmp_path):
    expect_user_error(tmp_path / "nope.jpg", "does not exist")


def test_folder(tmp_path):
    (tmp_path / "dir.png").mkdir()
    expect_user_error(tmp_path / "dir.png", "folder")


def test_empty_file(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    expect_user_error(tmp_path / "e.jpg", "empty")


def test_text_and_html_disguised_as_images(tmp_path):
    (tmp_path / "t.jpg").write_text("just some notes\n" * 20)
    expect_user_error(tmp_path / "t.jpg", "not an image")
    (tmp_path / "h.png").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    expect_user_error(tmp_path / "h.png", "not an image")


def test_permission_denied_is_a_user_error(tmp_path, monkeypatch):
    path = write(tmp_path / "p.png", Image.new("RGB", (2, 2)))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(image_decode, "open", denied, raising=False)  # root ignores chmod
    expect_user_error(path, "permission denied")
    assert image_info(path) is None  # a real mode-000 file, also under root: test_unreadable_files


def test_the_header_check_refuses_in_decodings_words_and_leaves_the_rest_to_decoding(tmp_path, monkeypatch):
    """`check_openable` lets a command refuse a photo before its network loads, with the message decoding
    would give; what only decoding can judge (a cut-off file, a size) passes it."""
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "e.jpg").write_bytes(b"")
    (tmp_path / "t.jpg").write_text("just some notes\n" * 20)
    for name in ("nope.jpg", "dir.png", "e.jpg", "t.jpg"):
        with pytest.raises(UserError) as early:
            check_openable(tmp_path / name)
        assert str(early.value) == expect_user_error(tmp_path / name)
    full = write(tmp_path / "full.png", Image.fromarray(noise(64, 64)))
    (tmp_path / "cut.png").write_bytes(full.read_bytes()[:400])
    expect_user_error(tmp_path / "cut.png", "truncated")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    for name in ("full.png", "cut.png"):
        assert check_openable(tmp_path / name) is None
    monkeypatch.setattr(image_decode, "open", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")),
                        raising=False)
    with pytest.raises(UserError, match="permission denied"):
        check_openable(full)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_files(tmp_path, ext):
    path = write(tmp_path / f"full{ext}", Image.fromarray(noise(64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_user_error(path, "truncated")
    assert image_info(path) in (None, (64, 64))  # header may survive; never raises


def test_decompression_bomb(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    warn_size = write(tmp_path / "warn.png", Image.new("RGB", (12, 12)))  # > limit: Pillow warns
    error_size = write(tmp_path / "error.png", Image.new("RGB", (20, 20)))  # > 2x limit: Pillow errors
    for path in (warn_size, error_size):
        message = expect_user_error(path, "too large", "megapixels")
        assert load_image(path, allow_huge=True).rgb.shape[0] in (12, 20)
        with pytest.raises(UserError):
            training_crop(path, 4, np.random.default_rng(0))
    assert Image.MAX_IMAGE_PIXELS == 100  # the huge-mode raise was undone
    assert "0.0004 megapixels" in message
    assert image_info(error_size) == (20, 20)


def test_huge_limit_is_shared_and_restored(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with image_decode._huge_limit() as outer:
        with image_decode._huge_limit() as inner:
            assert outer == inner == image_decode.HUGE_IMAGE_PIXELS
            assert image_decode._normal_limit() == 1000
        assert Image.MAX_IMAGE_PIXELS == image_decode.HUGE_IMAGE_PIXELS
    assert Image.MAX_IMAGE_PIXELS == 1000 and image_decode._normal_limit() == 1000


def test_eps_is_not_opened(tmp_path):
    (tmp_path / "x.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    expect_user_error(tmp_path / "x.png", "not an image")


def test_error_message_for_undecodable_name_is_printable(tmp_path):
    if os.name != "posix":
        pytest.skip("byte file names are a POSIX thing")
    path = Path(os.fsdecode(bytes(tmp_path) + b"/\xff\xfe-missing.jpg"))
    with pytest.raises(UserError) as info:
        load_image(path)
    str(info.value).encode("utf-8")  # would raise on a lone surrogate


# --- fuzzing -----------------------------------------------------------------


def _sample_files() -> list[bytes]:
    out = []
    for fmt, im in [("PNG", Image.fromarray(noise(8, 8))), ("JPEG", Image.fromarray(noise(8, 8))),
                    ("GIF", Image.new("P", (8, 8), 3)), ("BMP", Image.new("RGB", (4, 4))),
                    ("TIFF", Image.new("RGB", (4, 4))), ("WEBP", Image.new("RGB", (4, 4)))]:
        buf = io.BytesIO()
        im.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


_SAMPLES = _sample_files()
_MAGICS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
           b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"P6\n"]


@st.composite
def file_bytes(draw) -> bytes:
    if draw(st.booleans()):
        return draw(st.sampled_from(_MAGICS)) + draw(st.binary(max_size=512))
    data = bytearray(draw(st.sampled_from(_SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):  # corrupt a few bytes of a real file
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(1, len(data)))])


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes about bad metadata
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=file_bytes())
def test_random_bytes_never_escape(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.png"
        path.write_bytes(data)
        try:
            loaded = load_image(path)
        except UserError:
            pass
        else:
            assert isinstance(loaded, LoadedImage)
            assert_valid(loaded)
        info = image_info(path)
        assert info is None or (len(info) == 2 and min(info) >= 0)
