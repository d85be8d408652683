"""Instance normalisation by TensorFlow's fused batch-norm kernel, for inference of one image.

For a batch of one, batch normalisation's training-mode statistics (over height and
width, per channel) are instance normalisation's. oneDNN computes them and normalises
in one kernel, where the `keras.ops` formula costs a pass over the tensor per op: half
of `default`'s bfloat16 time (docs/decisions/bfloat16-elementwise.md). Only the
reduced-precision inference network uses it; training, batches of several images,
other backends and narrow layers keep `InstanceNormalization`'s own formula.
"""

from __future__ import annotations

import keras

from mlabs_desktop.core.networks.transform import InstanceNormalization

# Below this many channels the fused kernel was slower than the formula (tiny's 8-channel full-size layers).
MIN_CHANNELS = 16


class FusedInstanceNormalization(InstanceNormalization):
    """`InstanceNormalization` with the same weights, computed by one fused kernel where that is faster."""

    def call(self, x, training=None):
        if training or keras.backend.backend() != "tensorflow" or x.shape[-1] < MIN_CHANNELS:
            return super().call(x, training)
        import tensorflow as tf

        def fused():
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, tf.cast(self.scale, tf.float32), tf.cast(self.shift, tf.float32), epsilon=self.epsilon,
                is_training=True, data_format="NHWC")
            return y

        return tf.cond(tf.equal(tf.shape(x)[0], 1), fused, lambda: InstanceNormalization.call(self, x, training))
