"""Instance normalisation by TensorFlow's fused batch-norm kernel, for inference of one image.

For a batch of one, batch normalisation's training-mode statistics (over height and
width, per channel) are instance normalisation's. oneDNN computes them and normalises
in one kernel, where the `keras.ops` formula costs a pass over the tensor per op: half
of `default`'s bfloat16 time (docs/decisions/bfloat16-elementwise.md). Only the
reduced-precision inference network uses it; training, batches of several images
and other backends keep `InstanceNormalization`'s own formula.
"""

from __future__ import annotations

import math

import keras

from mlabs_desktop.core.networks.transform import InstanceNormalization

# The kernel was fast only for a multiple of this many channels (tiny's 8-channel full-size layers: 57 ms
# against the formula's 11), so other layers are viewed as groups of pixels with a multiple of it.
CHANNEL_MULTIPLE = 16


class FusedInstanceNormalization(InstanceNormalization):
    """`InstanceNormalization` with the same weights, computed by one fused kernel where that is faster."""

    def call(self, x, training=None):
        if training or keras.backend.backend() != "tensorflow":
            return super().call(x, training)
        import tensorflow as tf

        kernel = self._grouped if x.shape[-1] % CHANNEL_MULTIPLE else self._fused
        if x.shape[0] == 1:  # no branch: a ReLU after the kernel then fuses into it (grappler's remapper)
            return kernel(x)
        return _same_shape(tf.cond(tf.equal(tf.shape(x)[0], 1), lambda: kernel(x),
                                   lambda: InstanceNormalization.call(self, x, training)), x)

    def _fused(self, x):
        import tensorflow as tf

        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, tf.cast(self.scale, tf.float32), tf.cast(self.shift, tf.float32), epsilon=self.epsilon,
            is_training=True, data_format="NHWC")
        return y

    def _grouped(self, x):
        """Pixels taken ``groups`` at a time as one pixel of ``groups`` times the channels: the kernel's
        statistics per group, pooled into each channel's, then one normalising pass with them."""
        import tensorflow as tf

        channels = x.shape[-1]
        groups = CHANNEL_MULTIPLE // math.gcd(channels, CHANNEL_MULTIPLE)
        shape = tf.shape(x)
        pixels = shape[1] * shape[2] // groups

        def pooled():
            wide = tf.reshape(x, (1, 1, pixels, groups * channels))
            ones, zeros, empty = tf.ones([groups * channels]), tf.zeros([groups * channels]), tf.zeros([0])
            _, means, variances, *_ = tf.raw_ops.FusedBatchNormV3(
                x=wide, scale=ones, offset=zeros, mean=empty, variance=empty, epsilon=self.epsilon,
                is_training=True)
            means = tf.reshape(means, (groups, channels))
            count = tf.cast(pixels, tf.float32)
            variances = tf.reshape(variances, (groups, channels)) * (count - 1) / count  # it reports n - 1
            mean = tf.reduce_mean(means, 0)
            variance = tf.reduce_mean(variances, 0) + tf.reduce_mean(tf.square(means - mean), 0)
            tiled = lambda v: tf.tile(tf.cast(v, tf.float32), [groups])  # noqa: E731
            y, *_ = tf.raw_ops.FusedBatchNormV3(
                x=wide, scale=tiled(self.scale), offset=tiled(self.shift), mean=tiled(mean),
                variance=tiled(variance), epsilon=self.epsilon, is_training=False)
            return tf.reshape(y, shape)

        return _same_shape(tf.cond(tf.equal(shape[1] * shape[2] % groups, 0), pooled,
                                   lambda: InstanceNormalization.call(self, x)), x)


def _same_shape(y, x):
    """``y`` with ``x``'s static shape: a branch's result has none, and the layers after it need it (a
    convolution whose input has no known channel count went to XLA, and later norms lost their fusion)."""
    y.set_shape(x.shape)
    return y
