"""Reference (TF1) checkpoints: import, stylize directly, damaged and foreign checkpoints.
(Writing them, and the round trip, are in test_reference_export.py.)

The reference network is built here as a TF1 graph: a line-by-line port of
Engstrom's ``src/transform.py`` (``tf.Variable`` created in the same order, so
the checkpoint keys are the reference's ``Variable``, ``Variable_1``, ...).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from mlabs_desktop.core.images.decode import read_rgb
from mlabs_desktop.core.images.encode import save_image
from mlabs_desktop.core.images.ops import to_uint8
from mlabs_desktop.core.errors import UserError

tf = pytest.importorskip("tensorflow")
v1 = tf.compat.v1

H, W = 64, 48          # both multiples of 4: no padding, so the outputs compare pixel for pixel
ONE_LEVEL = 1.0 / 255.0
FOREIGN_PATH = "/home/someone/fst/ckpt/fns.ckpt"


# ---------------------------------------------------------------- Engstrom's transform.py, ported

WEIGHTS_INIT_STDEV = .1


def reference_net(image):
    conv1 = _conv_layer(image, 32, 9, 1)
    conv2 = _conv_layer(conv1, 64, 3, 2)
    conv3 = _conv_layer(conv2, 128, 3, 2)
    resid1 = _residual_block(conv3, 3)
    resid2 = _residual_block(resid1, 3)
    resid3 = _residual_block(resid2, 3)
    resid4 = _residual_block(resid3, 3)
    resid5 = _residual_block(resid4, 3)
    conv_t1 = _conv_tranpose_layer(resid5, 64, 3, 2)
    conv_t2 = _conv_tranpose_layer(conv_t1, 32, 3, 2)
    conv_t3 = _conv_layer(conv_t2, 3, 9, 1, relu=False)
    preds = tf.nn.tanh(conv_t3) * 150 + 255. / 2
    return preds


def _conv_layer(net, num_filters, filter_size, strides, relu=True):
    weights_init = _conv_init_vars(net, num_filters, filter_size)
    strides_shape = [1, strides, strides, 1]
    net = tf.nn.conv2d(net, weights_init, strides_shape, padding='SAME')
    net = _instance_norm(net)
    if relu:
        net = tf.nn.relu(net)
    return net


def _conv_tranpose_layer(net, num_filters, filter_size, strides):
    weights_init = _conv_init_vars(net, num_filters, filter_size, transpose=True)
    batch_size, rows, cols, in_channels = net.get_shape().as_list()
    new_rows, new_cols = int(rows * strides), int(cols * strides)
    new_shape = [batch_size, new_rows, new_cols, num_filters]
    tf_shape = tf.stack(new_shape)
    strides_shape = [1, strides, strides, 1]
    net = tf.nn.conv2d_transpose(net, weights_init, tf_shape, strides_shape, padding='SAME')
    net = _instance_norm(net)
    return tf.nn.relu(net)


def _residual_block(net, filter_size=3):
    tmp = _conv_layer(net, 128, filter_size, 1)
    return net + _conv_layer(tmp, 128, filter_size, 1, relu=False)


def _instance_norm(net, train=True):
    batch, rows, cols, channels = net.get_shape().as_list()
    var_shape = [channels]
    mu, sigma_sq = v1.nn.moments(net, [1, 2], keep_dims=True)
    shift = v1.Variable(tf.zeros(var_shape))
    scale = v1.Variable(tf.ones(var_shape))
    epsilon = 1e-3
    normalized = (net - mu) / (sigma_sq + epsilon) ** (.5)
    return scale * normalized + shift


def _conv_init_vars(net, out_channels, filter_size, transpose=False):
    _, rows, cols, in_channels = net.get_shape().as_list()
    if not transpose:
        weights_shape = [filter_size, filter_size, in_channels, out_channels]
    else:
        weights_shape = [filter_size, filter_size, out_channels, in_channels]
    weights_init = v1.Variable(v1.truncated_normal(weights_shape, stddev=WEIGHTS_INIT_STDEV, seed=1),
                               dtype=tf.float32)
    return weights_init


# ---------------------------------------------------------------- helpers

def _randomize(sess, variables, rng):
    """Distinct random weights per layer and non-trivial shift/scale (the port's init repeats itself)."""
    for i, var in enumerate(variables):
        shape = var.get_shape().as_list()
        if i % 3 == 0:
            value = np.clip(rng.normal(0, WEIGHTS_INIT_STDEV, shape), -0.2, 0.2)
        elif i % 3 == 1:
            value = rng.normal(0, 0.3, shape)
        else:
            value = rng.uniform(0.6, 1.4, shape)
        var.load(value.astype(np.float32), sess)


def evaluate_like_reference(checkpoint_dir: Path, image: np.ndarray) -> np.ndarray:
    """What Engstrom's evaluate.py does: build the net, Saver(), restore ckpt.model_checkpoint_path."""
    graph = tf.Graph()
    with graph.as_default(), tf.device("/CPU:0"):
        img_placeholder = v1.placeholder(tf.float32, shape=(1, *image.shape), name="img_placeholder")
        preds = reference_net(img_placeholder)
        saver = v1.train.Saver()
    with v1.Session(graph=graph) as sess:
        ckpt = v1.train.get_checkpoint_state(str(checkpoint_dir))
        assert ckpt and ckpt.model_checkpoint_path
        saver.restore(sess, ckpt.model_checkpoint_path)
        return sess.run(preds, {img_placeholder: image[None]})[0]


def our_output(model, image: np.ndarray) -> np.ndarray:
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    return Stylizer(model, "cpu").run(image)


def copy_checkpoint(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (H, W, 3)).astype(np.float32)  # raw pixels


@pytest.fixture(scope="module")
def reference(tmp_path_factory, image):
    """A checkpoint saved by the TF1 reference graph (with Adam slots, no .meta, a foreign path)."""
    folder = tmp_path_factory.mktemp("reference") / "ckpt"
    folder.mkdir()
    graph = tf.Graph()
    with graph.as_default(), tf.device("/CPU:0"):
        x = v1.placeholder(tf.float32, shape=(1, H, W, 3))
        preds = reference_net(x)
        net_vars = list(v1.global_variables())
        loss = tf.reduce_mean(tf.square(preds - 127.5))
        train_step = v1.train.AdamOptimizer(1e-3).minimize(loss)
        saver = v1.train.Saver()
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        _randomize(sess, net_vars, np.random.default_rng(3))
        sess.run(train_step, {x: image[None]})  # Adam slots now hold real values
        saver.save(sess, str(folder / "fns.ckpt"), write_state=False)
        output = sess.run(preds, {x: image[None]})[0]
        values = {v.op.name: sess.run(v) for v in net_vars}
        all_names = [v.op.name for v in v1.global_variables()]
    (folder / "fns.ckpt.meta").unlink()
    (folder / "checkpoint").write_text(f'model_checkpoint_path: "{FOREIGN_PATH}"\n'
                                       f'all_model_checkpoint_paths: "{FOREIGN_PATH}"\n')
    assert len(net_vars) == 48 and net_vars[0].op.name == "Variable" and net_vars[-1].op.name == "Variable_47"
    assert "Variable/Adam" in all_names and "beta1_power" in all_names
    return {"folder": folder, "output": output, "values": values}


# ---------------------------------------------------------------- layout

def test_layout_is_the_classic_network():
    from mlabs_desktop.core.networks.transform import weight_shapes
    from mlabs_desktop.core.formats.reference_format import reference_names

    names = reference_names()
    assert len(names) == 48
    assert names[0] == ("Variable", "conv1/kernel")
    assert names[1:3] == [("Variable_1", "conv1_norm/shift"), ("Variable_2", "conv1_norm/scale")]
    assert names[39] == ("Variable_39", "up1/kernel") and names[-1] == ("Variable_47", "out_norm/scale")
    shapes = weight_shapes("classic")
    assert {p for _, p in names} == set(shapes)
    # Keras 3 Conv2DTranspose stores [h, w, out, in], exactly as TF1's conv2d_transpose does.
    assert shapes["up1/kernel"] == (3, 3, 64, 128) and shapes["up2/kernel"] == (3, 3, 32, 64)


def test_module_imports_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys; import mlabs_desktop.core.formats.reference_checkpoint, mlabs_desktop.core.formats.reference_format, "
            "mlabs_desktop.core.formats.reference_reader, mlabs_desktop.core.formats.reference_writer; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------- import

def test_read_maps_variables_and_ignores_adam(reference):
    from mlabs_desktop.core.formats.reference_format import reference_names
    from mlabs_desktop.core.formats.reference_reader import read_reference_checkpoint

    arrays = read_reference_checkpoint(reference["folder"])
    assert len(arrays) == 48
    for tf_name, path in reference_names():
        np.testing.assert_array_equal(arrays[path], reference["values"][tf_name])
        assert arrays[path].dtype == np.float32


def test_import_matches_reference_output(reference, image):
    from mlabs_desktop.core.library.store import PREVIEW, STYLE_THUMB, WEIGHTS, Library
    from mlabs_desktop.core.formats.reference_checkpoint import import_reference_checkpoint

    model = import_reference_checkpoint(reference["folder"], "Imported")
    assert model.manifest.architecture == "classic" and model.manifest.input_scale == 1.0
    assert model.manifest.provenance["source"] == "reference-checkpoint"
    assert model.manifest.provenance["path"] == str((reference["folder"] / "fns.ckpt").resolve())
    assert model.file(WEIGHTS).is_file() and model.file(PREVIEW).is_file()
    assert not model.file(STYLE_THUMB).exists()
    assert [m.name for m in Library().models()] == ["Imported"]

    ours = our_output(model, image)
    diff = np.abs(ours - reference["output"])
    print(f"\nimport vs TF1 reference graph: max |diff| = {diff.max():.6f} (0..255 scale), "
          f"output range {reference['output'].min():.1f}..{reference['output'].max():.1f}")
    assert reference["output"].std() > 10  # a non-trivial picture, not a saturated one
    assert diff.max() < ONE_LEVEL
    assert np.abs(np.clip(ours, 0, 255) - np.clip(reference["output"], 0, 255)).max() < ONE_LEVEL

    with pytest.raises(UserError, match="already exists"):
        import_reference_checkpoint(reference["folder"], "imported")
    with pytest.raises(UserError, match="name"):
        import_reference_checkpoint(reference["folder"], "  ")


def test_a_damaged_cache_entry_is_rebuilt(reference):
    import shutil

    from mlabs_desktop.core.formats.reference_checkpoint import checkpoint_as_model
    from mlabs_desktop.core.library.store import WEIGHTS

    entry = checkpoint_as_model(reference["folder"]).folder
    for damage in (lambda: (entry / WEIGHTS).unlink(), lambda: ((entry / WEIGHTS).unlink(), (entry / WEIGHTS).mkdir()),
                   lambda: (shutil.rmtree(entry), entry.write_text("a file in its place"))):
        damage()
        rebuilt = checkpoint_as_model(reference["folder"])
        assert rebuilt.folder == entry and (entry / WEIGHTS).is_file()


def test_stylize_accepts_checkpoint_folder_and_prefix(reference, image, tmp_path):
    from mlabs_desktop.cli import main as cli
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    folder = reference["folder"]
    t0 = time.perf_counter()
    first = Stylizer.open(str(folder), "cpu")
    t1 = time.perf_counter()
    again = Stylizer.open(folder, "cpu")
    t2 = time.perf_counter()
    print(f"\nStylizer.open(checkpoint folder): first {t1 - t0:.2f}s, cached {t2 - t1:.2f}s")
    assert again.model.folder == first.model.folder  # cached under <cache>/checkpoints/<hash>
    assert first.model.manifest.input_scale == 1.0
    assert Library().models() == []  # a temporary model, not a library entry
    assert np.abs(first.run(image) - reference["output"]).max() < ONE_LEVEL

    by_prefix = Stylizer.open(folder / "fns.ckpt", "cpu")
    assert by_prefix.model.folder == first.model.folder
    by_index_file = Stylizer.open(folder / "fns.ckpt.index", "cpu")
    assert by_index_file.model.folder == first.model.folder

    source = tmp_path / "in.png"
    save_image(source, image)
    out = tmp_path / "out"
    assert cli.main(["stylize", f"--checkpoint={folder}", f"--in-path={source}", f"--out-path={out}",
                     "--device=cpu"]) == 0
    written = read_rgb(out / "in.png")
    expected = to_uint8(np.clip(reference["output"], 0, 255))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_folder_fallbacks(reference, tmp_path):
    from mlabs_desktop.core.formats.reference_reader import locate_reference_checkpoint

    # The index names a relative path from another working directory: use the single *.index here.
    moved = copy_checkpoint(reference["folder"], tmp_path / "inputs")
    for name in ("fns.ckpt.index", "fns.ckpt.data-00000-of-00001"):
        (moved / name).rename(moved / name.replace("fns.ckpt", "model.ckpt-2000"))
    (moved / "checkpoint").write_text('model_checkpoint_path: "outputs/fns.ckpt"\n')
    assert locate_reference_checkpoint(moved) == moved / "model.ckpt-2000"
    # No checkpoint text file at all: the single index still works.
    (moved / "checkpoint").unlink()
    assert locate_reference_checkpoint(moved) == moved / "model.ckpt-2000"
    # A relative path that exists is used as written.
    (moved / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-2000"\n')
    assert locate_reference_checkpoint(moved) == moved / "model.ckpt-2000"


def test_two_index_files_and_bogus_path_is_a_clear_error(reference, tmp_path):
    from mlabs_desktop.core.formats.reference_reader import read_reference_checkpoint
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    folder = copy_checkpoint(reference["folder"], tmp_path / "two")
    for name in ("fns.ckpt.index", "fns.ckpt.data-00000-of-00001"):
        shutil.copy(folder / name, folder / name.replace("fns.ckpt", "fns.ckpt-1000"))
    (folder / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/train/model.ckpt-5"\n')
    with pytest.raises(UserError, match=r"several checkpoints \(fns\.ckpt-1000\.index, fns\.ckpt\.index\)"):
        read_reference_checkpoint(folder)
    with pytest.raises(UserError, match="model.ckpt-5"):
        Stylizer.open(folder, "cpu")
    # Naming one of them as a prefix settles it.
    assert len(read_reference_checkpoint(folder / "fns.ckpt-1000")) == 48


def test_damaged_and_wrong_checkpoints_are_user_errors(reference, tmp_path):
    from mlabs_desktop.core.formats.reference_reader import read_reference_checkpoint
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    data = "fns.ckpt.data-00000-of-00001"
    flipped = copy_checkpoint(reference["folder"], tmp_path / "flipped")
    raw = bytearray((flipped / data).read_bytes())
    for offset in range(1000, len(raw), len(raw) // 7):
        raw[offset] ^= 0xFF
    (flipped / data).write_bytes(bytes(raw))
    with pytest.raises(UserError, match="damaged"):
        read_reference_checkpoint(flipped)
    with pytest.raises(UserError, match="damaged"):
        Stylizer.open(flipped, "cpu")

    truncated = copy_checkpoint(reference["folder"], tmp_path / "truncated")
    (truncated / data).write_bytes((reference["folder"] / data).read_bytes()[:100_000])
    with pytest.raises(UserError, match="cannot read checkpoint"):
        read_reference_checkpoint(truncated)

    garbage = copy_checkpoint(reference["folder"], tmp_path / "garbage")
    (garbage / "fns.ckpt.index").write_bytes(b"this is not a tensor bundle" * 40)
    with pytest.raises(UserError, match="not a readable TensorFlow checkpoint"):
        read_reference_checkpoint(garbage)

    no_data = copy_checkpoint(reference["folder"], tmp_path / "no-data")
    (no_data / data).unlink()
    with pytest.raises(UserError, match="incomplete"):
        read_reference_checkpoint(no_data)

    with pytest.raises(UserError, match="not found"):
        read_reference_checkpoint(tmp_path / "nowhere" / "fns.ckpt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no \\*.index"):
        read_reference_checkpoint(empty)
    with pytest.raises(UserError, match="neither a model folder"):
        Stylizer.open(empty, "cpu")


def _save_graph(folder: Path, build) -> Path:
    folder.mkdir()
    graph = tf.Graph()
    with graph.as_default(), tf.device("/CPU:0"):
        build()
        saver = v1.train.Saver()
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        saver.save(sess, str(folder / "fns.ckpt"), write_meta_graph=False)
    return folder


def test_other_networks_are_rejected(tmp_path):
    from mlabs_desktop.core.formats.reference_reader import read_reference_checkpoint

    def named():
        v1.Variable(tf.zeros([3, 3]), name="dense/kernel")

    def too_few():
        for _ in range(6):
            v1.Variable(tf.zeros([3, 3, 3, 3]))

    def wide():  # right count, wrong widths (e.g. a half-width fork)
        x = v1.placeholder(tf.float32, (1, 16, 16, 3))
        reference_net(x)
        v1.Variable(tf.zeros([4]))

    with pytest.raises(UserError, match="not a fast-style-transfer checkpoint.*dense/kernel"):
        read_reference_checkpoint(_save_graph(tmp_path / "a", named))
    with pytest.raises(UserError, match="different network.*has 6"):
        read_reference_checkpoint(_save_graph(tmp_path / "b", too_few))
    with pytest.raises(UserError, match="different network.*Variable_48"):
        read_reference_checkpoint(_save_graph(tmp_path / "c", wide))

