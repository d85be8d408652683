"""The training norm's written-out gradient equals automatic differentiation of its formula."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.networks.norm_gradient import constant_channels, normalise_for_training
from mlabs_desktop.core.networks.transform import INSTANCE_NORM_EPSILON, TORCH_NORM_EPSILON


def formula(x32, scale, shift, epsilon):
    """The plain formula as it was differentiated before: a constant channel's input gets no gradient."""
    from keras import ops

    mean = ops.mean(x32, axis=(1, 2), keepdims=True)
    var = ops.var(x32, axis=(1, 2), keepdims=True)
    normed = (x32 - mean) / ops.sqrt(var + epsilon)
    normed = ops.where(constant_channels(mean, var), ops.stop_gradient(normed), normed)
    return scale * normed + shift


def activations(seed: int) -> np.ndarray:
    """Three images, five channels: large levels with small spread, wide spread, and one image's channel
    constant (its mean rounds), as a blank photo makes it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 9, 7, 5)).astype(np.float32)
    x[..., 0] = 200 + 0.5 * x[..., 0]
    x[..., 1] *= 40
    x[1, ..., 2] = 0.3
    return x


@pytest.mark.parametrize("epsilon", [INSTANCE_NORM_EPSILON, TORCH_NORM_EPSILON])
def test_values_and_gradients_match_the_formula(epsilon):
    import tensorflow as tf

    x = tf.Variable(activations(0))
    rng = np.random.default_rng(1)
    scale = tf.Variable(rng.uniform(0.5, 1.5, 5).astype(np.float32))
    shift = tf.Variable(rng.normal(size=5).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(3, 9, 7, 5)).astype(np.float32))
    results = []
    for normalise in (normalise_for_training, formula):
        with tf.GradientTape() as tape:
            out = normalise(tf.convert_to_tensor(x), tf.convert_to_tensor(scale), tf.convert_to_tensor(shift),
                            epsilon)
            loss = tf.reduce_sum(out * upstream)
        results.append([out.numpy(), *(g.numpy() for g in tape.gradient(loss, [x, scale, shift]))])
    (out, d_x, d_scale, d_shift), (want, want_x, want_scale, want_shift) = results
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_x, want_x, rtol=1e-3, atol=1e-4 * np.abs(want_x).max())
    np.testing.assert_allclose(d_scale, want_scale, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(d_shift, want_shift, rtol=1e-5, atol=1e-4)
    assert not d_x[1, ..., 2].any() and d_x[0, ..., 2].any()  # only the constant channel of image 1 is cut
