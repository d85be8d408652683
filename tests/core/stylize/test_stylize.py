"""Stylize: the output has exactly the input's size, mode handling, options, folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.stylize.stylizer import BlendOptions, Stylizer, finish, plan_outputs


@pytest.fixture
def stylizer(tiny_model):
    return Stylizer(tiny_model, device="cpu")


def write(path, mode, size, **save):
    w, h = size
    rng = np.random.default_rng(0)
    if mode == "I;16":
        Image.fromarray((rng.random((h, w)) * 65535).astype(np.uint16)).save(path, **save)
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
        data = rng.integers(0, 255, (h, w, channels), dtype=np.uint8)
        data = data[..., 0] if channels == 1 else data
        Image.fromarray(data, mode).save(path, **save)
    return path


@pytest.mark.parametrize("mode, size, name", [
    ("RGB", (101, 67), "odd.jpg"), ("RGB", (1, 1), "dot.png"), ("RGB", (3, 250), "thin.png"),
    ("L", (33, 21), "grey.png"), ("RGBA", (40, 30), "alpha.png"), ("I;16", (29, 31), "deep.png"),
])
def test_output_has_the_input_dimensions(stylizer, tmp_path, mode, size, name):
    source = write(tmp_path / name, mode, size)
    target = stylizer.stylize_file(source, tmp_path / "out" / name)
    with Image.open(target) as out:
        assert out.size == size
        if mode == "RGBA":
            assert out.mode == "RGBA"
            np.testing.assert_array_equal(np.asarray(out)[..., 3], np.asarray(Image.open(source))[..., 3])


def test_exif_rotated_jpeg_is_upright(stylizer, tmp_path):
    source = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.new("RGB", (40, 24), (200, 30, 30)).save(source, exif=exif)
    target = stylizer.stylize_file(source, tmp_path / "rotated-out.png")
    assert Image.open(target).size == (24, 40)


def test_padding_is_cropped_not_kept(stylizer):
    rgb = np.random.default_rng(1).uniform(0, 255, (13, 10, 3)).astype(np.float32)
    assert stylizer.run(rgb).shape == (13, 10, 3)


def test_strength_and_colours_reblend_the_cached_result(stylizer):
    original = np.random.default_rng(2).uniform(0, 255, (16, 12, 3)).astype(np.float32)
    styled = stylizer.run(original)
    np.testing.assert_allclose(finish(original, styled, BlendOptions(strength=0.0)), original, atol=1e-4)
    full = finish(original, styled, BlendOptions(strength=1.0))
    half = finish(original, styled, BlendOptions(strength=0.5))
    np.testing.assert_allclose(half, (original + full) / 2, atol=1e-3)
    kept = finish(original, styled, BlendOptions(preserve_colors=True))
    chroma = lambda x: x - x.mean(axis=-1, keepdims=True)  # noqa: E731
    assert np.abs(chroma(kept) - chroma(original)).mean() < np.abs(chroma(full) - chroma(original)).mean()


def test_max_size_downsizes_first(stylizer, tmp_path):
    source = write(tmp_path / "big.png", "RGB", (120, 60))
    target = stylizer.stylize_file(source, tmp_path / "small.png", max_size=40)
    assert Image.open(target).size == (40, 20)


def test_folder_in_folder_out_keeps_names_and_skips_bad_files(stylizer, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write(src / "a.jpg", "RGB", (20, 12))
    write(src / "sub" / "b.png", "RGB", (9, 9))
    (src / "broken.jpg").write_text("not an image")
    reports = list(stylizer.stylize_many(plan_outputs(src, tmp_path / "out", "S")))
    assert [r.done for r in reports] == [1, 2, 3]
    assert sum(r.error is not None for r in reports) == 1
    assert (tmp_path / "out" / "a.jpg").is_file() and (tmp_path / "out" / "sub" / "b.png").is_file()
    assert not (tmp_path / "out" / "broken.jpg").exists()


def test_folder_pipeline_decodes_and_encodes_beside_the_network(stylizer, tmp_path, monkeypatch):
    import threading

    from mlabs_desktop.core.images import decode as image_decode, encode as image_encode
    from mlabs_desktop.core.stylize import stylizer as stylize

    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        write(src / f"p{i}.png", "RGB", (24 + i, 20))
    (src / "p2.png").write_bytes(b"<html>not a photo</html>")
    threads: dict[str, set[str]] = {"decode": set(), "encode": set(), "network": set()}
    real_load, real_save, real_run = image_decode.load_image, image_encode.save_image, Stylizer.run

    def spy(kind, fn):
        def wrapped(*args, **kwargs):
            threads[kind].add(threading.current_thread().name)
            return fn(*args, **kwargs)
        return wrapped
    monkeypatch.setattr(stylize, "load_image", spy("decode", real_load))
    monkeypatch.setattr(stylize, "save_image", spy("encode", real_save))
    monkeypatch.setattr(Stylizer, "run", spy("network", real_run))

    reports = list(stylizer.stylize_many(plan_outputs(src, tmp_path / "out", "S")))
    assert [r.done for r in reports] == [1, 2, 3, 4, 5]
    assert [r.source.name for r in reports] == [f"p{i}.png" for i in range(5)]
    assert [r.error is not None for r in reports] == [False, False, True, False, False]
    assert threads["decode"] and threads["encode"]
    assert all(name.startswith("mlabs-decode") for name in threads["decode"])
    assert all(name.startswith("mlabs-encode") for name in threads["encode"])
    assert threads["network"] == {threading.current_thread().name}
    # The pipeline's files are the ones one photo at a time gives.
    for i in (0, 1, 3, 4):
        one = stylizer.stylize_file(src / f"p{i}.png", tmp_path / "one" / f"p{i}.png")
        assert np.array_equal(np.asarray(Image.open(one)), np.asarray(Image.open(tmp_path / "out" / f"p{i}.png")))


def test_cancelling_a_folder_leaves_only_whole_files(stylizer, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        write(src / f"p{i}.png", "RGB", (20, 20))
    seen = []
    with pytest.raises(Cancelled):
        for report in stylizer.stylize_many(plan_outputs(src, tmp_path / "out", "S"),
                                            cancelled=lambda: len(seen) >= 1):
            seen.append(report)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written and all(not name.startswith(".") for name in written)
    for name in written:
        assert Image.open(tmp_path / "out" / name).size == (20, 20)


def test_plan_outputs_like_the_seed(tmp_path):
    photo = write(tmp_path / "source_image.jpg", "RGB", (8, 8))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    assert plan_outputs(photo, outputs, "S") == [(photo, outputs / "source_image.jpg")]
    assert plan_outputs(photo, tmp_path / "x.png", "S") == [(photo, tmp_path / "x.png")]
    with pytest.raises(UserError, match="output format"):
        plan_outputs(photo, tmp_path / "x.gifx", "S")
    with pytest.raises(UserError, match="not found"):
        plan_outputs(tmp_path / "missing.jpg", outputs, "S")


def test_a_gif_becomes_a_png_unless_named(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write(src / "anim.gif", "RGB", (8, 8))
    assert plan_outputs(src, tmp_path / "out", "S") == [(src / "anim.gif", tmp_path / "out" / "anim.png")]
    assert plan_outputs(src / "anim.gif", tmp_path / "out", "S")[0][1] == tmp_path / "out" / "anim.png"
    assert plan_outputs(src / "anim.gif", tmp_path / "x.gif", "S")[0][1] == tmp_path / "x.gif"


def test_output_format_follows_the_extension(stylizer, tmp_path):
    source = write(tmp_path / "p.jpg", "RGB", (16, 16))
    for ext, fmt in ((".png", "PNG"), (".webp", "WEBP"), (".tif", "TIFF"), (".jpg", "JPEG")):
        with Image.open(stylizer.stylize_file(source, tmp_path / f"o{ext}")) as out:
            assert out.format == fmt


def test_weights_with_wrong_shapes_are_refused(tiny_model):
    from mlabs_desktop.core.networks.weights import load_weight_arrays, save_weight_arrays

    arrays = load_weight_arrays(tiny_model.file("weights.npz"))
    arrays["conv1/kernel"] = arrays["conv1/kernel"][:, :, :, :3]
    save_weight_arrays(tiny_model.file("weights.npz"), arrays)
    with pytest.raises(UserError, match="shape"):
        Stylizer(tiny_model)


def test_pickled_weights_are_never_loaded(tiny_model):
    payload = np.array([{"evil": "object"}], dtype=object)
    with open(tiny_model.file("weights.npz"), "wb") as handle:
        np.savez(handle, **{"conv1/kernel": payload})
    with pytest.raises(UserError):
        Stylizer(tiny_model)
