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


def test_a_traced_step_of_any_size_matches_too():
    """As training runs it: traced once for any height and width, the norm inside a layer under mixed bfloat16."""
    import tensorflow as tf

    from mlabs_desktop.core.hardware.devices import dtype_policy
    from mlabs_desktop.core.networks.transform import InstanceNormalization

    with dtype_policy("mixed_bfloat16"):
        layer = InstanceNormalization()
        layer.build((None, None, None, 5))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 5], tf.float32)] * 2)
    def gradients(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            trained = layer(tf.cast(x, tf.bfloat16), training=True)
            loss = tf.reduce_sum(tf.cast(trained, tf.float32) * upstream)
        return trained, tape.gradient(loss, [x, layer.scale, layer.shift])

    for shape in ((3, 9, 7, 5), (1, 16, 12, 5)):
        x = np.random.default_rng(2).normal(size=shape).astype(np.float32) * 4 + 1
        upstream = np.random.default_rng(3).normal(size=shape).astype(np.float32)
        trained, (d_x, d_scale, d_shift) = gradients(x, upstream)
        x_bf16 = tf.cast(tf.cast(x, tf.bfloat16), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x_bf16)
            want = formula(x_bf16, tf.convert_to_tensor(layer.scale), tf.convert_to_tensor(layer.shift),
                           INSTANCE_NORM_EPSILON)
            loss = tf.reduce_sum(want * upstream)
        want_x = tape.gradient(loss, x_bf16).numpy()
        assert trained.dtype == tf.bfloat16 and trained.shape == shape
        np.testing.assert_allclose(tf.cast(trained, tf.float32).numpy(), want.numpy(), atol=0.02)
        upstream_bf16 = tf.cast(tf.cast(upstream, tf.bfloat16), tf.float32).numpy()  # as the layer's output is
        np.testing.assert_allclose(d_shift.numpy(), upstream_bf16.sum(axis=(0, 1, 2)), rtol=1e-2, atol=0.02)
        assert d_x.dtype == tf.float32 and np.abs(d_x.numpy() - want_x).max() < 0.02 * np.abs(want_x).max()
        assert np.isfinite(d_scale.numpy()).all()
