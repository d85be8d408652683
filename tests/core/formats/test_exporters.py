"""Export formats: SavedModel and TFLite match `Stylizer.run` at any image size; bundles and
reference checkpoints go through their modules; every export appears atomically."""

from __future__ import annotations

import os
import stat
import zipfile

import numpy as np
import pytest

from mlabs_desktop.core.formats import exporters
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.outputs import WouldReplace

# Measured on this code (CPU, XNNPACK): 0.000 for the SavedModel (the same TF kernels),
# up to ~0.01 of 255 for TFLite on random-weight networks; trained tiny model ~0.003.
SAVEDMODEL_TOLERANCE = 1e-3
TFLITE_TOLERANCE = 0.05


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)


def _reference(stylizer, x: np.ndarray) -> np.ndarray:
    return np.clip(stylizer.run(x), 0.0, 255.0)


@pytest.fixture(scope="module")
def classic_model(tmp_path_factory):
    from test_bundles import make_model

    return make_model(Library(tmp_path_factory.mktemp("classic") / "library"), "Classic", "classic", extras=False)


def test_savedmodel_takes_any_size(tiny_model, tmp_path):
    import tensorflow as tf

    from mlabs_desktop.core.stylize.stylizer import Stylizer

    out = exporters.export_model(tiny_model, "savedmodel", tmp_path / "sm")
    assert out == tmp_path / "sm" and (out / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]  # no temporaries left
    loaded = tf.saved_model.load(str(out))
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]["image"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, None, None, 3]
    stylizer = Stylizer(tiny_model, "cpu")
    for h, w in ((37, 29), (5, 3), (64, 48)):  # not multiples of 4, smaller than the network's minimum
        x = _image(h, w)
        with tf.device("/CPU:0"):  # as the Stylizer: a GPU's TF32 convolutions differ by more than 1e-3
            got = serve(image=tf.constant(x[None]))["stylized"].numpy()[0]
        assert got.shape == (h, w, 3) and got.dtype == np.float32
        assert 0.0 <= got.min() and got.max() <= 255.0
        assert np.abs(got - _reference(stylizer, x)).max() <= SAVEDMODEL_TOLERANCE

    # Exporting again replaces the earlier export as a whole, when asked; other folders are never replaced.
    (out / "stale.txt").write_text("from an earlier export")
    with pytest.raises(WouldReplace):
        exporters.export_model(tiny_model, "savedmodel", out)
    assert (out / "stale.txt").exists()
    exporters.export_model(tiny_model, "savedmodel", out, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "saved_model.pb").is_file()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.jpg").write_bytes(b"precious")
    with pytest.raises(UserError, match="not a SavedModel"):
        exporters.export_model(tiny_model, "savedmodel", other, overwrite=True)
    assert (other / "keep.jpg").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "sm"]


def test_tflite_dynamic_size(tiny_model, tmp_path):
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    out = exporters.export_model(tiny_model, "tflite", tmp_path)
    assert out == tmp_path / "tiny.tflite" and stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.tflite"]
    interpreter = exporters.tflite_interpreter(out)
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [1, -1, -1, 3]
    stylizer = Stylizer(tiny_model, "cpu")
    for h, w in ((37, 29), (64, 64), (7, 50)):  # one interpreter, resized each time
        x = _image(h, w, seed=h)
        got = exporters.run_tflite(interpreter, x)
        assert got.shape == (h, w, 3)
        assert np.abs(got - _reference(stylizer, x)).max() <= TFLITE_TOLERANCE


def test_tflite_fixed_size_and_classic_network(classic_model, tmp_path):
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    out = exporters.export_model(classic_model, "tflite", tmp_path / "fixed", size=(40, 30))
    assert out.name == "fixed.tflite"
    interpreter = exporters.tflite_interpreter(out.read_bytes())
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 40, 30, 3]
    x = _image(40, 30)
    got = exporters.run_tflite(interpreter, x)
    assert np.abs(got - _reference(Stylizer(classic_model, "cpu"), x)).max() <= TFLITE_TOLERANCE


def test_bundle_format(tiny_model, tmp_path):
    from mlabs_desktop.core.formats.bundle_import import import_bundle

    out = exporters.export_model(tiny_model, "bundle", tmp_path)
    assert out == tmp_path / exporters.default_output_name(tiny_model, "bundle")
    with zipfile.ZipFile(out) as archive:
        assert "weights.npz" in archive.namelist()
    assert import_bundle(out).name == "tiny (2)"


def test_reference_checkpoint(classic_model, tiny_model, tmp_path):
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    try:
        out = exporters.export_model(classic_model, "reference-checkpoint", tmp_path / "ckpt")
    except NotImplementedError as exc:
        pytest.skip(str(exc))
    assert {"checkpoint", "fns.ckpt.index", "fns.ckpt.data-00000-of-00001"} <= {p.name for p in out.iterdir()}
    back = Stylizer.open(str(out), "cpu")  # what `stylize --checkpoint=DIR` does
    x = _image(37, 29)
    assert np.abs(_reference(back, x) - _reference(Stylizer(classic_model, "cpu"), x)).max() <= 1e-2
    with pytest.raises(UserError, match="only classic models"):
        exporters.export_model(tiny_model, "reference-checkpoint", tmp_path / "lite")


def test_bad_requests_are_user_errors(tiny_model, tmp_path):
    with pytest.raises(UserError, match="unknown export format 'coreml'"):
        exporters.export_model(tiny_model, "coreml", tmp_path / "x")
    with pytest.raises(UserError, match="only applies to the tflite"):
        exporters.export_model(tiny_model, "savedmodel", tmp_path / "x", size=(8, 8))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        exporters.export_model(tiny_model, "savedmodel", tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_export_leaves_nothing_when_it_fails(tiny_model, tmp_path):
    (tiny_model.file("weights.npz")).write_bytes(b"broken")
    for fmt in ("bundle", "savedmodel", "tflite"):
        with pytest.raises(UserError, match="damaged weights"):
            exporters.export_model(tiny_model, fmt, tmp_path / f"out-{fmt}")
    assert os.listdir(tmp_path) == []
