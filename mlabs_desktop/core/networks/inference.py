"""Running a transform network on photos: compiled inference per Keras backend, any image size.

The network needs sides that are multiples of 4 (two stride-2 levels) and a few
pixels at the deepest level for reflection padding; `run_network` pads by
reflection, runs and crops back, so every caller gets the photo's own size.
Keras is imported only when a forward function is made: a command that fails its
cheap checks answers before the backend starts.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from mlabs_desktop.core.hardware.devices import keras_backend
from mlabs_desktop.core.images.ops import crop_to, pad_to_multiple


# Reflection padding inside the network needs a few pixels at the deepest level.
MIN_SIDE = 16


def _at_least(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h >= side and w >= side:
        return rgb
    return np.pad(rgb, ((0, max(0, side - h)), (0, max(0, side - w)), (0, 0)), mode="edge")


def run_network(forward: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """Pad to what the network needs, run ``forward`` on one image, crop back to its size."""
    hw = rgb.shape[:2]
    padded, _ = pad_to_multiple(_at_least(rgb.astype(np.float32), MIN_SIDE), 4)
    return crop_to(forward(padded[None])[0], hw)


def make_forward(net, channels: int = 3, batch: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Compiled inference for any image size: float32 (B, H, W, ``channels``) in, float32 out.

    ``batch``: a fixed batch size the graph is traced for (TensorFlow), where layers do better knowing it.
    """
    backend = keras_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda x: net(x, training=False),
                         input_signature=[tf.TensorSpec([batch, None, None, channels], tf.float32)])
        return lambda x: fn(tf.constant(x, tf.float32)).numpy()
    from keras import ops

    if backend == "torch":
        import torch

        def forward(x):
            with torch.no_grad():
                return ops.convert_to_numpy(net(ops.convert_to_tensor(x), training=False))
        return forward
    if backend == "jax":
        import jax

        trainable = [v.value for v in net.trainable_variables]
        frozen = [v.value for v in net.non_trainable_variables]

        @jax.jit
        def pure(train_values, frozen_values, x):
            out, _ = net.stateless_call(train_values, frozen_values, x, training=False)
            return out
        return lambda x: np.asarray(pure(trainable, frozen, x))
    return lambda x: ops.convert_to_numpy(net(x, training=False))
