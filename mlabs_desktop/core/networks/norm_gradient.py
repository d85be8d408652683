"""Instance normalisation for training, with its gradient written out.

Left to automatic differentiation, the formula's backward pass is a dozen passes over
each activation, most of a small network's training step. The closed form below needs a
few (docs/decisions/norm-gradient.md). It runs on every Keras backend.
"""

from __future__ import annotations

from keras import ops

# A channel's variance at or below (CONSTANT_RELATIVE * mean)^2 + CONSTANT_FLOOR is rounding, not content.
CONSTANT_RELATIVE = 1e-5
CONSTANT_FLOOR = 1e-12


def constant_channels(mean, var):
    """Channels whose spread is rounding: a float32 sum of equal values drifts by about 1e-7 of them."""
    return var <= ops.square(CONSTANT_RELATIVE * mean) + CONSTANT_FLOOR


def normalise_for_training(x32, scale, shift, epsilon: float):
    """``scale * (x - mean) / sqrt(var + epsilon) + shift`` per image and channel (float32 in and out).

    A channel that is constant to rounding passes no gradient to ``x``
    (docs/decisions/constant-images.md); ``scale`` and ``shift`` learn from every channel.
    """

    @ops.custom_gradient
    def normalise(x32, scale, shift):
        mean = ops.mean(x32, axis=(1, 2), keepdims=True)
        centred = x32 - mean
        var = ops.mean(ops.square(centred), axis=(1, 2), keepdims=True)
        inv = ops.rsqrt(var + epsilon)
        gain = scale * inv
        live = ops.cast(ops.logical_not(constant_channels(mean, var)), "float32")

        def gradient(*args, upstream=None):  # TensorFlow and JAX pass the upstream gradient alone; PyTorch by name
            dy = args[0] if upstream is None else upstream
            pixels = ops.cast(ops.shape(centred)[1], "float32") * ops.cast(ops.shape(centred)[2], "float32")
            mean_dy = ops.mean(dy, axis=(1, 2), keepdims=True)
            mean_dy_normed = ops.mean(dy * centred, axis=(1, 2), keepdims=True) * inv
            d_shift = ops.sum(mean_dy, axis=(0, 1, 2)) * pixels
            d_scale = ops.sum(mean_dy_normed, axis=(0, 1, 2)) * pixels
            # gain * (dy - mean(dy) - normed * mean(dy * normed)), with normed = centred * inv
            kept = gain * live
            d_x = kept * dy + (centred * (-kept * inv * mean_dy_normed) - kept * mean_dy)
            return d_x, d_scale, d_shift

        return centred * gain + shift, gradient

    return normalise(x32, scale, shift)
