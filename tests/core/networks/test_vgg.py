"""VGG19 loss network and weight-file readers, against fake files in the real layouts."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from mlabs_desktop.core import paths
from mlabs_desktop.core.networks import loss_network as vgg
from mlabs_desktop.core.errors import UserError
from tests.vgg_fixtures import random_vgg_weights, write_keras_notop_h5, write_matconvnet_mat, write_same_weights_both

ALL_OUTPUTS = ("conv1_1", "relu1_1", "pool1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "pool4", "relu5_1")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Written once per module: the ~80 MB files take a fraction of a second each."""
    root = tmp_path_factory.mktemp("vgg")
    h5, mat = root / vgg.KERAS_VGG19_FILENAME, root / vgg.MATCONVNET_VGG19_FILENAME
    weights = write_same_weights_both(h5, mat, seed=0, weights_first=False)
    beta16 = root / "beta16.mat"
    beta16_weights = write_matconvnet_mat(beta16, seed=1, weights_first=True)
    return {"root": root, "h5": h5, "mat": mat, "weights": weights, "beta16": beta16, "beta16_weights": beta16_weights}


@pytest.fixture(autouse=True)
def fresh_cache():
    vgg.clear_cache()
    yield
    vgg.clear_cache()


@pytest.fixture(scope="module")
def image32() -> np.ndarray:
    return np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)


def _features(weights: vgg.VGGWeights, image: np.ndarray, outputs=ALL_OUTPUTS) -> dict[str, np.ndarray]:
    model = vgg.build_loss_network(weights, outputs)
    return {k: np.asarray(v) for k, v in model(image).items()}


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Plain NumPy 3x3 SAME cross-correlation, float64: x (H, W, Cin), kernel (3, 3, Cin, Cout)."""
    h, w, _ = x.shape
    padded = np.pad(x.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3])) + bias.astype(np.float64)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + h, dx : dx + w, :] @ kernel[dy, dx].astype(np.float64)
    return out


# --- loading ---------------------------------------------------------------------------------


def _check_loaded(loaded: vgg.VGGWeights, expected) -> None:
    assert set(loaded.layers) == set(vgg.CONV_LAYERS) and len(vgg.CONV_LAYERS) == 13
    for name, (kernel, bias) in loaded.layers.items():
        assert kernel.shape == vgg.EXPECTED_SHAPES[name] and bias.shape == (kernel.shape[3],)
        assert kernel.dtype == np.float32 and bias.dtype == np.float32
        assert not kernel.flags.writeable and not bias.flags.writeable
        np.testing.assert_array_equal(kernel, expected[name][0])
        np.testing.assert_array_equal(bias, expected[name][1])


def test_expected_shapes_are_vgg19() -> None:
    assert vgg.EXPECTED_SHAPES["conv1_1"] == (3, 3, 3, 64)
    assert vgg.EXPECTED_SHAPES["conv1_2"] == (3, 3, 64, 64)
    assert vgg.EXPECTED_SHAPES["conv2_1"] == (3, 3, 64, 128)
    assert vgg.EXPECTED_SHAPES["conv3_4"] == (3, 3, 256, 256)
    assert vgg.EXPECTED_SHAPES["conv4_1"] == (3, 3, 256, 512)
    assert vgg.EXPECTED_SHAPES["conv5_1"] == (3, 3, 512, 512)
    assert vgg.VGG_LAYERS[-1] == "relu5_1" and vgg.CONTENT_LAYER == "relu4_2"
    assert vgg.STYLE_LAYERS == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def test_keras_h5_loads(files) -> None:
    loaded = vgg.load_vgg19_weights(files["h5"])
    assert loaded.layout == "keras-h5" and loaded.bgr and loaded.source == files["h5"]
    assert loaded.mean_rgb == (123.68, 116.779, 103.939)
    _check_loaded(loaded, files["weights"])  # canonical = conv1_1 flipped back to RGB


@pytest.mark.parametrize("which", ["mat", "beta16"])
def test_matconvnet_loads_weights_field_anywhere(files, which: str) -> None:
    loaded = vgg.load_vgg19_weights(files[which])
    assert loaded.layout == "matconvnet" and not loaded.bgr
    _check_loaded(loaded, files["weights" if which == "mat" else "beta16_weights"])


@pytest.mark.parametrize("which", ["mat", "beta16"])
def test_matconvnet_other_loadmat_convention(files, which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # squeeze_me/struct_as_record=False gives 1-D arrays and mat_struct objects instead of (1, 1) records.
    loadmat = functools.partial(scipy.io.loadmat, squeeze_me=True, struct_as_record=False)
    monkeypatch.setattr(scipy.io, "loadmat", loadmat)
    _check_loaded(vgg.load_vgg19_weights(files[which]), files["weights" if which == "mat" else "beta16_weights"])


def test_layout_detected_by_content_not_extension(files, tmp_path: Path) -> None:
    disguised = tmp_path / "weights.mat"
    try:
        os.link(files["h5"], disguised)
    except OSError:
        shutil.copyfile(files["h5"], disguised)
    assert vgg.load_vgg19_weights(disguised).layout == "keras-h5"


def test_cache_reuses_and_notices_changes(files, tmp_path: Path) -> None:
    path = tmp_path / "copy.h5"
    shutil.copyfile(files["h5"], path)
    first = vgg.load_vgg19_weights(path)
    assert vgg.load_vgg19_weights(path).layers is first.layers
    link = tmp_path / "link.h5"
    link.symlink_to(path)
    again = vgg.load_vgg19_weights(link)
    assert again.layers is first.layers and again.source == link
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert vgg.load_vgg19_weights(path).layers is not first.layers


def test_nested_keras2_layout_loads(tmp_path: Path) -> None:
    # Keras 2 save_weights nests the datasets: group/<layer>/kernel:0 with weight_names relative to the group.
    weights = random_vgg_weights(seed=5)
    path = tmp_path / "nested.h5"
    with h5py.File(path, "w") as f:
        names = []
        for conv in vgg.CONV_LAYERS:
            block, index = conv[4:].split("_")
            layer = f"block{block}_conv{index}"
            kernel, bias = weights[conv]
            if conv == "conv1_1":
                kernel = kernel[:, :, ::-1, :]
            group = f.create_group(layer)
            group.create_dataset(f"{layer}/kernel:0", data=np.ascontiguousarray(kernel))
            group.create_dataset(f"{layer}/bias:0", data=bias)
            group.attrs["weight_names"] = [f"{layer}/kernel:0".encode(), f"{layer}/bias:0".encode()]
            names.append(layer)
        f.attrs["layer_names"] = [n.encode() for n in names]
    _check_loaded(vgg.load_vgg19_weights(path), weights)


# --- the network -----------------------------------------------------------------------------


def test_both_layouts_give_the_same_features(files, image32: np.ndarray) -> None:
    from_h5 = _features(vgg.load_vgg19_weights(files["h5"]), image32)
    from_mat = _features(vgg.load_vgg19_weights(files["mat"]), image32)
    assert set(from_h5) == set(ALL_OUTPUTS)
    for name in ALL_OUTPUTS:
        scale = np.abs(from_mat[name]).max()
        assert scale > 1e-3, f"{name} is all zeros: the test would prove nothing"
        assert np.abs(from_h5[name] - from_mat[name]).max() <= 1e-3 * scale, name


@pytest.mark.parametrize("which", ["h5", "mat"])
def test_relu1_1_matches_numpy_on_the_files_own_terms(files, which: str) -> None:
    """Computed from the raw file with the file's own preprocessing (Caffe BGR for Keras)."""
    image = np.random.default_rng(7).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    if which == "h5":
        with h5py.File(files["h5"], "r") as f:
            kernel, bias = f["block1_conv1/block1_conv1_W_1:0"][()], f["block1_conv1/block1_conv1_b_1:0"][()]
        x = image[:, :, ::-1] - np.array([103.939, 116.779, 123.68])  # RGB -> BGR, BGR mean
    else:
        conv1 = scipy.io.loadmat(str(files["mat"]))["layers"][0][0][0][0]
        kernel_wh, bias = conv1["weights"][0]
        kernel, bias = np.transpose(kernel_wh, (1, 0, 2, 3)), bias.ravel()
        x = image - np.array([123.68, 116.779, 103.939])
    expected = np.maximum(_conv_same(x, kernel, bias), 0)
    got = _features(vgg.load_vgg19_weights(files[which]), image[None], ("relu1_1",))["relu1_1"][0]
    assert got.shape == (8, 8, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())


def test_max_pool_halves_sizes(files, image32: np.ndarray) -> None:
    weights = vgg.load_vgg19_weights(files["h5"])
    outputs = ("relu1_2", "pool1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    feats = _features(weights, image32, outputs)
    assert [feats[n].shape[1:3] for n in outputs] == [(32, 32), (16, 16), (16, 16), (8, 8), (4, 4), (2, 2)]
    relu = feats["relu1_2"]
    np.testing.assert_array_equal(feats["pool1"], relu.reshape(2, 16, 2, 16, 2, 64).max(axis=(2, 4)))
    # Odd sizes round up (SAME pooling, as Engstrom's tf.nn.max_pool).
    odd = _features(weights, np.full((1, 33, 35, 3), 128, np.float32), ("relu2_1", "relu5_1"))
    assert odd["relu2_1"].shape[1:3] == (17, 18) and odd["relu5_1"].shape[1:3] == (3, 3)


def test_model_is_frozen_and_stops_at_the_deepest_output(files) -> None:
    import keras

    model = vgg.build_loss_network(vgg.load_vgg19_weights(files["h5"]), ("relu2_1",))
    assert model.trainable_weights == []
    assert not any(isinstance(layer, keras.layers.Conv2D) and layer.name == "conv2_2" for layer in model.layers)
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [
        "conv1_1", "conv1_2", "conv2_1"
    ]
    default = vgg.build_loss_network(vgg.load_vgg19_weights(files["h5"]))
    assert set(default(np.zeros((1, 16, 16, 3), np.float32))) == set(vgg.STYLE_LAYERS) | {vgg.CONTENT_LAYER}
    with pytest.raises(ValueError, match="fc7"):
        vgg.build_loss_network(vgg.load_vgg19_weights(files["h5"]), ("fc7",))


def test_mixed_float16_policy(files, image32: np.ndarray) -> None:
    import keras

    weights = vgg.load_vgg19_weights(files["h5"])
    reference = _features(weights, image32, vgg.STYLE_LAYERS + (vgg.CONTENT_LAYER,))
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = vgg.build_loss_network(weights)
        assert model.get_layer("conv1_1").compute_dtype == "float16"
        out = model(image32)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for name, value in out.items():
        assert str(value.dtype) in ("float32", "<dtype: 'float32'>"), name
        value = np.asarray(value)
        assert np.isfinite(value).all()
        assert np.abs(value - reference[name]).max() <= 1e-2 * np.abs(reference[name]).max(), name


# --- errors ------------------------------------------------------------------------------------


def _error(path: Path | str) -> str:
    with pytest.raises(UserError) as info:
        vgg.load_vgg19_weights(path)
    return str(info.value)


def test_missing_file_says_where_to_get_it(tmp_path: Path) -> None:
    message = _error(tmp_path / "nope.h5")
    assert str(tmp_path / "nope.h5") in message
    assert vgg.KERAS_VGG19_URL in message and "mlabs-desktop download vgg19" in message and "--vgg-path" in message


def test_folder(tmp_path: Path) -> None:
    assert "is a folder" in _error(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello", np.random.default_rng(0).bytes(4096)])
def test_not_a_weights_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "weights.h5"
    path.write_bytes(content)
    message = _error(path)
    assert "not a VGG19 weights file" in message
    assert vgg.KERAS_VGG19_FILENAME in message and "imagenet-vgg-verydeep-19.mat" in message


@pytest.mark.parametrize("which, size", [("h5", "80,134,624"), ("mat", "534,904,783")])
def test_truncated_file(files, tmp_path: Path, which: str, size: str) -> None:
    source = files[which]
    path = tmp_path / source.name
    with open(source, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(source.stat().st_size // 2))
    message = _error(path)
    assert "damaged or truncated" in message and size in message and "download it again" in message


def test_vgg16_h5_is_a_different_network(tmp_path: Path) -> None:
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras_notop_h5(path, seed=2, vgg16=True)
    message = _error(path)
    assert "conv3_4" in message and "conv4_4" in message and "different network" in message


def test_wrong_shape_is_a_different_network(tmp_path: Path) -> None:
    weights = random_vgg_weights(seed=4)
    weights["conv2_1"] = (weights["conv2_1"][0][:, :, :, :96], weights["conv2_1"][1][:96])
    path = tmp_path / "odd.h5"
    write_keras_notop_h5(path, weights=weights)
    message = _error(path)
    assert "conv2_1" in message and "(3, 3, 64, 128)" in message and "different network" in message


def test_mat_missing_a_layer(tmp_path: Path) -> None:
    path = tmp_path / "partial.mat"
    write_matconvnet_mat(path, seed=2, omit=("conv3_4", "conv4_4"))
    message = _error(path)
    assert "conv3_4" in message and "different network" in message


def test_other_hdf5_and_mat_files(tmp_path: Path) -> None:
    h5 = tmp_path / "other.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.zeros(3)
    assert "not Keras weights" in _error(h5)
    mat = tmp_path / "other.mat"
    scipy.io.savemat(str(mat), {"x": np.zeros(3)})
    assert "no 'layers'" in _error(mat)
    v73 = tmp_path / "v73.mat"
    v73.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" ") + b"\x89HDF\r\n\x1a\n")
    assert "v7.3" in _error(v73)


# --- finding the file --------------------------------------------------------------------------


@pytest.fixture
def no_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    return keras_home


def test_find_explicit(tmp_path: Path, no_keras_cache: Path) -> None:
    path = tmp_path / "mine.h5"
    path.write_bytes(b"x")
    assert vgg.find_vgg_weights(path) == path
    assert vgg.find_vgg_weights(str(path)) == path
    with pytest.raises(UserError, match="missing at"):
        vgg.find_vgg_weights(tmp_path / "missing.h5")
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(UserError, match="missing in the folder"):
        vgg.find_vgg_weights(folder)
    (folder / vgg.MATCONVNET_VGG19_FILENAME).write_bytes(b"x")
    assert vgg.find_vgg_weights(folder) == folder / vgg.MATCONVNET_VGG19_FILENAME


def test_find_nothing_anywhere(no_keras_cache: Path) -> None:
    with pytest.raises(UserError) as info:
        vgg.find_vgg_weights()
    message = str(info.value)
    assert str(paths.weights_dir()) in message and vgg.KERAS_VGG19_URL in message
    assert "mlabs-desktop download vgg19" in message and "--vgg-path" in message


def test_find_falls_back_to_data_dir_then_keras_cache(isolated_home: Path, no_keras_cache: Path) -> None:
    keras_file = no_keras_cache / "models" / vgg.KERAS_VGG19_FILENAME
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"x")
    assert vgg.find_vgg_weights() == keras_file
    mat = paths.weights_dir() / vgg.MATCONVNET_VGG19_FILENAME
    mat.write_bytes(b"x")
    assert vgg.find_vgg_weights() == mat
    assert str(mat).startswith(str(isolated_home))
    h5 = paths.weights_dir() / vgg.KERAS_VGG19_FILENAME
    h5.write_bytes(b"x")
    assert vgg.find_vgg_weights(None) == h5
    assert vgg.find_vgg_weights("") == h5
