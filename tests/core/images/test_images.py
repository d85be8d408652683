"""Tests for mlabs_desktop.core.images: every image is generated in tmp_path.

Bad input (missing, disguised, truncated, oversized, random files) is in test_image_errors.py."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from mlabs_desktop.core.images import decode as image_decode
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.decode import LoadedImage, image_info, is_image_path, load_image, read_rgb
from mlabs_desktop.core.images.ops import (blend, crop_to, pad_to_multiple, preserve_colors, resize_max, resize_to,
                                           to_uint8)
from mlabs_desktop.core.images.encode import save_image, save_thumbnail, thumbnail_bytes


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write(path: Path, im: Image.Image, **kwargs) -> Path:
    im.save(path, **kwargs)
    return path


def assert_valid(loaded: LoadedImage) -> None:
    assert loaded.rgb.dtype == np.float32 and loaded.rgb.ndim == 3 and loaded.rgb.shape[2] == 3
    assert loaded.rgb.min() >= 0 and loaded.rgb.max() <= 255
    if loaded.alpha is not None:
        assert loaded.alpha.dtype == np.float32 and loaded.alpha.shape == loaded.rgb.shape[:2]


# --- paths -------------------------------------------------------------------


def test_is_image_path():
    assert is_image_path("a/b/Photo.JPG") and is_image_path(Path("x.tiff")) and is_image_path("y.WebP")
    assert not is_image_path("notes.txt") and not is_image_path("jpg") and not is_image_path("a.jpg.part")


# --- modes -------------------------------------------------------------------


def test_rgb_png_exact(tmp_path):
    pixels = noise(5, 7)
    loaded = load_image(write(tmp_path / "a.png", Image.fromarray(pixels)))
    assert_valid(loaded)
    assert loaded.size == (7, 5) and loaded.alpha is None and loaded.path == tmp_path / "a.png"
    np.testing.assert_array_equal(loaded.rgb, pixels.astype(np.float32))
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.png"), loaded.rgb)


def test_16bit_png_scales_to_255(tmp_path):
    arr = np.array([[65535, 32768, 0]], dtype=np.uint16)
    path = write(tmp_path / "g16.png", Image.fromarray(arr))
    assert Image.open(path).mode.startswith("I")
    loaded = load_image(path)
    assert_valid(loaded)
    assert loaded.rgb[0, 0].tolist() == [255.0, 255.0, 255.0]
    assert loaded.rgb[0, 1, 0] == pytest.approx(127.5, abs=0.01)
    assert loaded.rgb[0, 2, 0] == 0.0


@pytest.mark.parametrize("mode", ["I;16B", "I;16L", "I"])
def test_other_16bit_modes(mode):
    if mode == "I":
        im = Image.fromarray(np.array([[65535, 257]], dtype=np.int32))
    else:
        dtype = ">u2" if mode.endswith("B") else "<u2"
        im = Image.frombytes(mode, (2, 1), np.array([65535, 257], dtype=dtype).tobytes())
    assert im.mode == mode
    out = np.asarray(image_decode._normalize(im))
    np.testing.assert_allclose(out, [[255.0, 1.0]], atol=1e-4)


def test_float_tiff_unit_range_is_scaled(tmp_path):
    arr = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    loaded = load_image(write(tmp_path / "f.tif", Image.fromarray(arr)))
    assert_valid(loaded)
    np.testing.assert_allclose(loaded.rgb[0, :, 0], [0, 127.5, 255], atol=1e-4)


def test_float_tiff_wide_range_is_clipped(tmp_path):
    arr = np.array([[-20.0, 100.25, 300.0, np.nan]], dtype=np.float32)
    loaded = load_image(write(tmp_path / "f.tif", Image.fromarray(arr)))
    assert_valid(loaded)
    np.testing.assert_allclose(loaded.rgb[0, :, 1], [0, 100.25, 255, 0], atol=1e-4)


@pytest.mark.parametrize("ext", [".tif", ".jpg"])
def test_cmyk(tmp_path, ext):
    path = write(tmp_path / f"c{ext}", Image.new("CMYK", (8, 8), (0, 255, 255, 0)))
    loaded = load_image(path)
    assert_valid(loaded)
    r, g, b = loaded.rgb.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 50 and b < 50


def test_palette_with_and_without_transparency(tmp_path):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    with_alpha = load_image(write(tmp_path / "t.png", im, transparency=0))
    assert_valid(with_alpha)
    assert with_alpha.alpha is not None
    assert with_alpha.alpha[0, 0] == 0 and with_alpha.alpha[1, 1] == 255
    assert with_alpha.rgb[1, 1].tolist() == [255, 0, 0]
    plain = load_image(write(tmp_path / "p.png", im))
    assert plain.alpha is None and plain.rgb[1, 1].tolist() == [255, 0, 0]


OTHER_MODES = [("L", 77), ("1", 1), ("YCbCr", (120, 90, 200)), ("RGBX", (1, 2, 3, 0)),
               ("LAB", (128, 128, 128)), ("HSV", (10, 200, 200)), ("RGBa", (1, 2, 3, 4))]


@pytest.mark.parametrize("mode,color", OTHER_MODES)
def test_other_modes_normalize(mode, color):
    out = image_decode._normalize(Image.new(mode, (3, 2), color))
    assert out.mode in ("L", "RGB", "RGBA")
    if mode == "LAB":  # mid-grey Lab stays a neutral mid grey, not Pillow's naive mapping
        r, g, b = np.asarray(out)[0, 0].astype(int)
        assert abs(r - g) <= 3 and abs(g - b) <= 3 and 100 < g < 160


def test_ycbcr_jpeg_file(tmp_path):
    ycbcr = Image.new("RGB", (8, 8), (200, 40, 40)).convert("YCbCr")
    loaded = load_image(write(tmp_path / "y.jpg", ycbcr))
    assert_valid(loaded)
    assert loaded.rgb[..., 0].mean() > 180 and loaded.rgb[..., 1].mean() < 70


def test_la_png(tmp_path):
    loaded = load_image(write(tmp_path / "la.png", Image.new("LA", (4, 3), (100, 50))))
    assert_valid(loaded)
    assert loaded.rgb.shape == (3, 4, 3) and np.all(loaded.rgb == 100)
    assert loaded.alpha is not None and np.all(loaded.alpha == 50)


def test_grey_and_bilevel(tmp_path):
    grey = load_image(write(tmp_path / "l.png", Image.new("L", (2, 2), 9)))
    assert grey.rgb.shape == (2, 2, 3) and np.all(grey.rgb == 9)
    bw = load_image(write(tmp_path / "b.bmp", Image.new("1", (3, 3), 1)))
    assert np.all(bw.rgb == 255)


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = write(tmp_path / "rot.jpg", Image.fromarray(arr), exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.size == (20, 40)
    assert loaded.rgb[:20, :, 0].mean() > 200 and loaded.rgb[20:, :, 2].mean() > 200  # left went on top
    assert image_info(path) == (20, 40)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    loaded = load_image(path)
    assert_valid(loaded)
    assert np.all(loaded.rgb == np.array([255, 0, 0], np.float32))


@pytest.mark.skipif(not features.check("webp"), reason="no WebP support")
def test_animated_webp_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    loaded = load_image(path)
    assert loaded.rgb[..., 0].mean() > 240 and loaded.rgb[..., 2].mean() < 15


def test_max_size_downsizes_keeping_aspect_and_never_upsizes(tmp_path):
    path = write(tmp_path / "big.jpg", Image.fromarray(noise(300, 600)))
    small = load_image(path, max_size=100)
    assert small.size == (100, 50)
    assert load_image(path, max_size=5000).size == (600, 300)
    png = write(tmp_path / "t.png", Image.new("RGBA", (40, 10), (10, 20, 30, 128)))
    shrunk = load_image(png, max_size=20)
    assert shrunk.size == (20, 5) and shrunk.alpha is not None
    np.testing.assert_allclose(shrunk.rgb[2, 10], [10, 20, 30], atol=1)
    with pytest.raises(ValueError):
        load_image(path, max_size=0)


# --- names and sizes ---------------------------------------------------------


def test_long_unicode_and_byte_names(tmp_path):
    stem = "ünïcødé 日本語 фото "
    name = (stem + "x" * 200)[:196] + ".png"
    assert len(name) == 200
    path = write(tmp_path / name, Image.new("RGB", (3, 2), (1, 2, 3)))
    assert load_image(path).size == (3, 2) and image_info(path) == (3, 2)
    if os.name == "posix":  # a name that is not valid UTF-8 at all
        raw = Path(os.fsdecode(bytes(tmp_path) + b"/\xff\xfe.png"))
        try:
            write(raw, Image.new("RGB", (2, 2)))
        except OSError:
            pytest.skip("this file system rejects non-UTF-8 names")
        assert load_image(raw).size == (2, 2) and image_info(raw) == (2, 2)


@pytest.mark.parametrize("w,h", [(1, 1), (1000, 1), (1, 1000), (2, 3)])
def test_tiny_and_thin_images_load_and_pad(tmp_path, w, h):
    path = write(tmp_path / "thin.png", Image.fromarray(noise(h, w)))
    rgb = load_image(path).rgb
    assert rgb.shape == (h, w, 3)
    padded, hw = pad_to_multiple(rgb, 4)
    assert padded.shape[0] % 4 == 0 and padded.shape[1] % 4 == 0 and hw == (h, w)
    np.testing.assert_array_equal(crop_to(padded, hw), rgb)


def test_pad_crop_round_trip_odd_size():
    rgb = np.random.default_rng(1).random((101, 67, 3)).astype(np.float32) * 255
    for multiple, mode in ((4, "reflect"), (8, "edge"), (16, "constant"), (1, "reflect")):
        padded, hw = pad_to_multiple(rgb, multiple, mode)
        assert padded.shape[0] % multiple == 0 and padded.shape[1] % multiple == 0
        assert padded.shape[0] - 101 < multiple and padded.shape[1] - 67 < multiple
        np.testing.assert_array_equal(crop_to(padded, hw), rgb)


def test_reflect_padding_mirrors():
    x = np.arange(5, dtype=np.float32).reshape(1, 5)
    padded, _ = pad_to_multiple(x, 4)
    assert padded.shape == (4, 8)
    assert padded[0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    assert np.all(padded == padded[0])  # 1 row: reflect impossible, edge instead


# --- saving ------------------------------------------------------------------


@pytest.mark.parametrize("ext,tolerance", [(".png", 0), (".tif", 0), (".tiff", 0), (".bmp", 0),
                                           (".jpg", 12), (".jpeg", 12), (".webp", 12)])
def test_save_round_trip(tmp_path, ext, tolerance):
    rgb = np.zeros((16, 24, 3), np.float32)
    rgb[:, :12] = (200.4, 30.6, 90.0)
    rgb[:, 12:] = (10.0, 220.0, 128.0)
    target = tmp_path / "nested" / "deeper" / f"out{ext}"
    assert save_image(target, rgb) == target
    back = load_image(target).rgb
    assert back.shape == rgb.shape
    # Lossy codecs subsample chroma, so judge them away from the colour edge.
    inner = np.r_[0:9, 15:24]
    assert np.abs(back - np.rint(rgb))[:, inner].max() <= tolerance


def test_save_alpha(tmp_path):
    rgb = np.full((4, 5, 3), 100.0, np.float32)
    alpha = np.linspace(0, 255, 20, dtype=np.float32).reshape(4, 5)
    back = load_image(save_image(tmp_path / "a.png", rgb, alpha))
    assert back.alpha is not None
    np.testing.assert_array_equal(back.alpha, np.rint(alpha))
    assert load_image(save_image(tmp_path / "a.jpg", rgb, alpha)).alpha is None
    assert load_image(save_image(tmp_path / "a.bmp", rgb, alpha)).alpha is None


def test_save_unknown_extension(tmp_path):
    with pytest.raises(UserError) as info:
        save_image(tmp_path / "out.gifx", np.zeros((2, 2, 3), np.float32))
    assert ".png" in str(info.value) and ".jpg" in str(info.value)
    with pytest.raises(ValueError):
        save_image(tmp_path / "out.png", np.zeros((2, 2), np.float32))


def test_save_is_atomic(tmp_path, monkeypatch):
    target = save_image(tmp_path / "keep.png", np.full((4, 4, 3), 7.0, np.float32))
    before = target.read_bytes()

    def failing_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half written")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(UserError) as info:
        save_image(target, np.zeros((4, 4, 3), np.float32))
    assert "No space left" in str(info.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]


def test_to_uint8():
    x = np.array([-3.0, 0.49, 0.5, 1.5, 254.6, 300.0, np.nan], np.float32)
    assert to_uint8(x).tolist() == [0, 0, 0, 2, 255, 255, 0]
    assert to_uint8(np.array([-1, 256, 7])).tolist() == [0, 255, 7]
    assert to_uint8(x).dtype == np.uint8


# --- array operations --------------------------------------------------------


def test_resize_to_keeps_float_precision():
    flat = np.full((10, 10, 3), 100.25, np.float32)
    out = resize_to(flat, (7, 5))
    assert out.shape == (5, 7, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 100.25, atol=1e-3)
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (8, 1))
    up = resize_to(ramp, (128, 16))
    assert up.shape == (16, 128) and up.min() >= 0 and up.max() <= 255
    assert len(np.unique(up)) > 120  # no 8-bit quantization


def test_resize_max():
    rgb = np.zeros((40, 100, 3), np.float32)
    assert resize_max(rgb, 50).shape == (20, 50, 3)
    assert resize_max(rgb, 100) is rgb


def test_blend_endpoints_and_clipping():
    a = np.full((2, 2, 3), 10.0, np.float32)
    b = np.full((2, 2, 3), 200.0, np.float32)
    np.testing.assert_array_equal(blend(a, b, 0.0), a)
    np.testing.assert_array_equal(blend(a, b, 1.0), b)
    np.testing.assert_allclose(blend(a, b, 0.5), 105.0)
    np.testing.assert_array_equal(blend(a, b, -3), a)
    np.testing.assert_array_equal(blend(a, b, 7), b)
    assert blend(a, b, 0.3).dtype == np.float32


def test_preserve_colors_keeps_chroma_takes_luminance():
    original = np.zeros((4, 4, 3), np.float32)
    original[...] = (200, 60, 60)
    styled = np.full((4, 4, 3), 128.0, np.float32)
    out = preserve_colors(original, styled)
    r, g, b = out[0, 0]
    assert r > g + 100 and g == pytest.approx(b, abs=1e-3)  # still red
    assert out[0, 0] @ np.array([0.299, 0.587, 0.114]) == pytest.approx(128.0, abs=1e-2)
    assert r - g == pytest.approx(140.0, abs=1e-3)  # chroma difference unchanged
    grey = preserve_colors(styled, original)  # a grey original stays grey
    assert np.allclose(grey[..., 0], grey[..., 1]) and np.allclose(grey[..., 1], grey[..., 2])
    saturated = np.full((1, 1, 3), (250, 10, 10), np.float32)
    bright = preserve_colors(saturated, np.full((1, 1, 3), 250.0, np.float32))
    assert bright.max() <= 255 and bright.min() >= 0


# --- thumbnails and headers --------------------------------------------------


def test_thumbnails(tmp_path):
    rgb = noise(300, 100).astype(np.float32)
    data = thumbnail_bytes(rgb, 64)
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG" and thumb.size == (21, 64)
    src = write(tmp_path / "src.png", Image.new("RGBA", (50, 20), (255, 0, 0, 0)))
    png = Image.open(io.BytesIO(thumbnail_bytes(src, 10, "PNG")))
    assert png.size == (10, 4)
    jpg = Image.open(io.BytesIO(thumbnail_bytes(src, 10)))
    assert np.asarray(jpg).mean() > 240  # transparency flattened onto white
    dest = save_thumbnail(src, tmp_path / "thumbs" / "t.webp", max_side=8)
    assert Image.open(dest).size == (8, 3)
    with pytest.raises(UserError):
        save_thumbnail(tmp_path / "missing.png", tmp_path / "t.jpg")
    assert not (tmp_path / "t.jpg").exists()


def test_image_info(tmp_path):
    assert image_info(write(tmp_path / "a.png", Image.new("RGB", (13, 7)))) == (13, 7)
    assert image_info(write(tmp_path / "a.webp", Image.new("RGB", (9, 4)))) == (9, 4)
    (tmp_path / "t.jpg").write_text("hello")
    assert image_info(tmp_path / "t.jpg") is None
    assert image_info(tmp_path / "missing.jpg") is None
    assert image_info(tmp_path) is None
