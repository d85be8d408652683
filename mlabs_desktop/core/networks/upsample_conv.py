"""Nearest 2x upsampling, reflection padding and a 3x3 convolution, computed at the input's resolution.

The `default` and `lite` networks grow the image with a "resize convolution":
upsample by repeating each pixel 2x2, reflection-pad by 1, convolve 3x3. Done
that way, the convolution runs on four times the pixels, three quarters of
them copies, and the upsampled and padded tensors are written and read again.

Each output pixel's 3x3 window covers only a 2x2 patch of the original pixels,
so each of the four output phases (even or odd row, even or odd column) is a
2x2 convolution of the input with taps summed from the 3x3 kernel. All four run
as one 2x2 convolution with 4x the output channels (vector units stay full),
on the input edge-padded by 1 (the upsampled image's reflection padding reads
exactly the border pixels again); each phase is then read at its own offset
and the phases are interleaved. It does 16/36 of the multiply-adds and gives
the same numbers up to float rounding (docs/decisions/blocked-convolutions.md).

The layer keeps `Conv2D`'s own (3, 3, C, F) kernel: weights files,
checkpoints and exports are unchanged. Only `keras.ops`, so it runs on every backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

PHASES = 2


def phase_taps() -> np.ndarray:
    """(phase, window tap, kernel tap): which 3x3 kernel rows each 2-row window row sums, per output phase.

    Output row 2i + a reads upsampled rows 2i + a - 1 .. 2i + a + 1, that is original
    rows i + floor((a + r - 1) / 2) for kernel row r; the window starts at row i + a - 1.
    """
    taps = np.zeros((PHASES, 2, 3), np.float32)
    for a in range(PHASES):
        for r in range(3):
            taps[a, (a + r - 1) // 2 - a + 1, r] = 1.0
    return taps


def _edge_pad(x):
    # Edge padding by one, from slices: every backend has them (not every backend pads "edge").
    x = ops.concatenate([x[:, :1], x, x[:, -1:]], axis=1)
    return ops.concatenate([x[:, :, :1], x, x[:, :, -1:]], axis=2)


@keras.saving.register_keras_serializable(package="mlabs_desktop")
class UpsampleConv2D(layers.Conv2D):
    """``Conv2D(3x3, valid)`` of the input upsampled 2x (nearest) and reflection-padded by 1."""

    executed_fraction = 16 / 36  # multiply-adds done, over those of the upsampled convolution
    scratch_copies = (1, 2)  # the padded input; the phases and their interleaving (tiling's memory model)

    def build(self, input_shape):
        super().build(input_shape)
        self._taps = phase_taps()

    def _phase_kernel(self):
        channels, filters = self.kernel.shape[2], self.kernel.shape[3]
        taps = ops.cast(self._taps, self.compute_dtype)
        kernel = ops.einsum("atr,bsc,rcio->tsiabo", taps, taps, self.kernel)
        return ops.reshape(kernel, (2, 2, channels, PHASES * PHASES * filters))

    def call(self, inputs):
        filters = self.kernel.shape[3]
        y = ops.conv(_edge_pad(inputs), self._phase_kernel(), strides=1, padding="valid")
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]

        def phase(a: int, b: int):  # output pixels (2i + a, 2j + b), read at their window's offset
            k = (a * PHASES + b) * filters
            return y[:, a:a + height, b:b + width, k:k + filters]

        # Interleave with 4-D concatenations and reshapes only (TFLite slices at most 5-D).
        rows = [ops.reshape(ops.concatenate([phase(a, 0), phase(a, 1)], axis=-1), (-1, height, 2 * width, filters))
                for a in range(PHASES)]
        out = ops.reshape(ops.concatenate(rows, axis=2), (-1, PHASES * height, PHASES * width, filters))
        return out + ops.cast(self.bias, out.dtype) if self.use_bias else out

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        grow = lambda d: None if d is None else d * PHASES  # noqa: E731
        return (b, grow(h), grow(w), self.filters)
