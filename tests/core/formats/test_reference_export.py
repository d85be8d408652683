"""Reference (TF1) checkpoints written from classic models: only classic models export, and
a trained model written by ``train --checkpoint-dir`` reads back bit for bit, restores in the
reference's own evaluate graph, and imports again unchanged.

The TF1 reference graph and its helpers live in test_reference_checkpoint.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.errors import UserError
from test_reference_checkpoint import ONE_LEVEL, evaluate_like_reference, image, our_output  # noqa: F401 - image is a fixture


def test_only_classic_models_export(tmp_path):
    from mlabs_desktop.core.library.store import Manifest, Model
    from mlabs_desktop.core.formats.reference_writer import write_reference_checkpoint

    model = Model(tmp_path, Manifest(name="x", architecture="default"))
    with pytest.raises(UserError, match="only classic models can be written as reference checkpoints; "
                                        "this one is default"):
        write_reference_checkpoint(model, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_trained_classic_model_round_trip(vgg_h5, photos_dir, style_image, tmp_path, image):
    from conftest import tiny_config

    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.formats.reference_format import reference_names
    from mlabs_desktop.core.formats.reference_reader import read_reference_checkpoint
    from mlabs_desktop.core.formats.reference_writer import reference_arrays, write_reference_checkpoint
    from mlabs_desktop.core.training.trainer import Trainer

    outputs = tmp_path / "outputs"
    config = tiny_config(style_image, photos_dir, vgg_h5, architecture="classic", name="classic tiny",
                         checkpoint_dir=str(outputs))
    model = Trainer(config, library=Library()).run()
    assert model.manifest.architecture == "classic" and model.manifest.input_scale == pytest.approx(1 / 255)

    # train --checkpoint-dir receives the reference files beside the model's own.
    names = sorted(p.name for p in outputs.iterdir())
    for name in ("checkpoint", "fns.ckpt.index", "fns.ckpt.data-00000-of-00001", "weights.npz", "manifest.yaml"):
        assert name in names
    assert not [n for n in names if n.startswith(".")]  # no staging leftovers
    assert (outputs / "checkpoint").read_text().startswith('model_checkpoint_path: "fns.ckpt"')
    sizes = {n: (outputs / n).stat().st_size for n in ("checkpoint", "fns.ckpt.index",
                                                         "fns.ckpt.data-00000-of-00001")}
    print(f"\nwritten reference checkpoint sizes: {sizes}")
    assert sizes["fns.ckpt.data-00000-of-00001"] == 1_677_638 * 4

    # What we wrote reads back bit for bit: conv1 carries the folded 1/255, the rest is unchanged.
    back = read_reference_checkpoint(outputs)
    ours = model.load_weights()
    folded = reference_arrays(model)
    for tf_name, path in reference_names():
        np.testing.assert_array_equal(back[path], folded[tf_name])
        if path == "conv1/kernel":
            np.testing.assert_array_equal(back[path], ours[path] * np.float32(1 / 255))
        else:
            np.testing.assert_array_equal(back[path], ours[path])

    # The reference evaluate (raw 0..255 input) restores it with Saver and matches our 1/255 model.
    expected = our_output(model, image)
    theirs = evaluate_like_reference(outputs, image)
    diff = np.abs(theirs - expected)
    print(f"round trip (our 1/255 model vs TF1 evaluate on the exported checkpoint): "
          f"max |diff| = {diff.max():.6f}, output std {expected.std():.1f}")
    assert diff.max() < ONE_LEVEL

    # Exporting again elsewhere writes the same numbers; an imported copy exports as-is (scale 1.0).
    again = tmp_path / "again"
    prefix = write_reference_checkpoint(model, again)
    assert prefix == again / "fns.ckpt"
    assert sorted(p.name for p in again.iterdir()) == ["checkpoint", "fns.ckpt.data-00000-of-00001",
                                                       "fns.ckpt.index"]
    from mlabs_desktop.core.formats.reference_checkpoint import import_reference_checkpoint

    imported = import_reference_checkpoint(again, "classic tiny (imported)")
    assert imported.manifest.input_scale == 1.0
    np.testing.assert_array_equal(reference_arrays(imported)["Variable"], folded["Variable"])
    assert np.abs(our_output(imported, image) - expected).max() < ONE_LEVEL
