"""The 9x9 output convolution on 2x2 blocks computes exactly what `Conv2D` computes, and trains the same kernel."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.hardware.devices import import_keras_quietly

keras = import_keras_quietly()
from keras import layers  # noqa: E402

from mlabs_desktop.core.networks.block_conv import BlockConv2D, block_kernel_index, worth_blocking  # noqa: E402


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("height, width", [(40, 56), (41, 57), (17, 30), (12, 9), (9, 9)])
@pytest.mark.parametrize("kernel", [9, 7, 5])  # "same" padding in whole blocks (9: two, 5: one), or padded first
def test_same_result_as_conv2d_at_every_size(padding, height, width, kernel):
    x = np.random.default_rng(height * width).normal(0, 1, (2, height, width, 32)).astype(np.float32)
    plain = layers.Conv2D(3, kernel, padding=padding, use_bias=False)
    blocked = BlockConv2D(3, kernel, padding=padding, use_bias=False)
    want = np.asarray(plain(x))
    blocked.build(x.shape)
    blocked.set_weights(plain.get_weights())
    got = np.asarray(blocked(x))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max(), rtol=0)


def test_gradients_reach_the_original_kernel():
    x = np.random.default_rng(1).normal(0, 1, (1, 21, 19, 8)).astype(np.float32)
    plain = layers.Conv2D(3, 9, padding="same", use_bias=False)
    blocked = BlockConv2D(3, 9, padding="same", use_bias=False)
    plain(x)
    blocked(x)
    blocked.set_weights(plain.get_weights())
    import tensorflow as tf

    grads = []
    for layer in (plain, blocked):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x)))
        grads.append(tape.gradient(loss, layer.kernel).numpy())
    assert grads[1].shape == (9, 9, 8, 3)
    np.testing.assert_allclose(grads[1], grads[0], atol=1e-4 * np.abs(grads[0]).max(), rtol=0)


def test_every_tap_is_used_once_per_output_position():
    index = block_kernel_index(9)
    assert index.shape == (5, 5, 2, 2, 2, 2)
    for ar in range(2):
        for ac in range(2):
            taps = index[:, :, :, :, ar, ac].ravel()
            assert sorted(taps[taps < 81].tolist()) == list(range(81))


def test_only_the_few_channel_wide_layers_are_blocked():
    assert worth_blocking(3, 9, 1)
    assert not worth_blocking(32, 9, 1) and not worth_blocking(3, 3, 1) and not worth_blocking(3, 9, 2)
    assert not worth_blocking(3, 8, 1)  # an even kernel's "same" padding is uneven
