"""The folded resize convolution computes what upsampling, reflection padding and a 3x3 `Conv2D` compute."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.hardware.devices import import_keras_quietly

keras = import_keras_quietly()
from keras import layers  # noqa: E402

from mlabs_desktop.core.networks.transform import ReflectionPadding2D, build_transform_network  # noqa: E402
from mlabs_desktop.core.tiling.program import receptive_radius  # noqa: E402
from mlabs_desktop.core.networks.upsample_conv import UpsampleConv2D, phase_taps  # noqa: E402


def _unfused(conv: layers.Conv2D):
    """The three layers the folded one replaces, sharing ``conv``."""
    return lambda x: conv(ReflectionPadding2D(1)(layers.UpSampling2D(2, interpolation="nearest")(x)))


def _pair(x, filters=5):
    plain = layers.Conv2D(filters, 3, padding="valid", use_bias=False)
    folded = UpsampleConv2D(filters, 3, use_bias=False)
    want = _unfused(plain)(x)
    folded.build(x.shape)
    folded.set_weights(plain.get_weights())
    return plain, folded, want


@pytest.mark.parametrize("height, width", [(6, 8), (7, 5), (1, 1), (2, 9), (13, 11)])
def test_same_result_as_upsample_pad_conv_at_every_size(height, width):
    x = np.random.default_rng(height * 31 + width).normal(0, 1, (2, height, width, 6)).astype(np.float32)
    _, folded, want = _pair(x)
    got = np.asarray(folded(x))
    want = np.asarray(want)
    assert got.shape == want.shape == (2, 2 * height, 2 * width, 5)
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max(), rtol=0)


def test_output_shape_is_known_before_running():
    out = UpsampleConv2D(4, 3, use_bias=False)(keras.Input((None, 7, 3)))
    assert tuple(out.shape) == (None, None, 14, 4)


def test_gradients_reach_the_original_kernel():
    import tensorflow as tf

    x = np.random.default_rng(2).normal(0, 1, (1, 9, 7, 4)).astype(np.float32)
    plain, folded, _ = _pair(x, filters=3)
    grads = []
    for run, kernel in ((_unfused(plain), plain.kernel), (folded, folded.kernel)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(run(x)))
        grads.append(tape.gradient(loss, kernel).numpy())
    assert grads[1].shape == (3, 3, 4, 3)
    np.testing.assert_allclose(grads[1], grads[0], atol=1e-4 * np.abs(grads[0]).max(), rtol=0)


def test_each_phase_sums_every_kernel_row_once():
    taps = phase_taps()
    assert taps.shape == (2, 2, 3)
    np.testing.assert_array_equal(taps.sum(axis=1), np.ones((2, 3)))  # each kernel row in one window row
    # Even output rows read the row above twice as often as the row below; odd rows the reverse.
    np.testing.assert_array_equal(taps.sum(axis=2), [[1, 2], [2, 1]])


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras's saver, TF variables
def test_a_saved_network_loads_with_the_folded_layer(tmp_path):
    net = build_transform_network("lite", seed=3, input_shape=(16, 24))
    path = tmp_path / "lite.keras"
    net.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("up1"), UpsampleConv2D)
    x = np.random.default_rng(4).uniform(0, 255, (1, 16, 24, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(net(x)), atol=1e-4)


def test_tiles_reach_as_far_as_with_the_unfused_layers():
    def tiny(fold: bool):
        x = inp = keras.Input((None, None, 3))
        x = layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(x)
        x = UpsampleConv2D(3, 3, use_bias=False)(x) if fold else _unfused(layers.Conv2D(3, 3, use_bias=False))(x)
        return keras.Model(inp, x)

    assert receptive_radius(tiny(True)) == receptive_radius(tiny(False)) > 0
