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
exactly the border pixels again); one reshape and transpose then interleave
the phases (a pixel shuffle). It does 16/36 of the multiply-adds and gives
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
        self._taps = phase_taps()[::-1].copy()  # odd phase first: the order `call` reads them out in

    def _phase_kernel(self):
        channels, filters = self.kernel.shape[2], self.kernel.shape[3]
        # Summed in float32: a faster einsum than bfloat16's, and one rounding of the sums to bfloat16.
        kernel = ops.einsum("atr,bsc,rcio->tsiabo", self._taps, self._taps, ops.cast(self.kernel, "float32"))
        return ops.cast(ops.reshape(kernel, (2, 2, channels, PHASES * PHASES * filters)), self.compute_dtype)

    def call(self, inputs):
        filters = self.kernel.shape[3]
        y = ops.conv(_edge_pad(inputs), self._phase_kernel(), strides=1, padding="valid")
        batch, rows, cols = ops.shape(y)[:3]  # a batch size known when traced stays known after
        # Window (r, c) holds output rows 2r - 1 (odd phase, first) and 2r (even), and so for columns:
        # pixel-shuffled, the windows give the output offset by one, cropped off. Rank 4 only (TFLite).
        y = ops.reshape(y, (-1, cols, PHASES, PHASES * filters))
        y = ops.transpose(y, (0, 2, 1, 3))
        out = ops.reshape(y, (batch, PHASES * rows, PHASES * cols, filters))[:, 1:-1, 1:-1]
        return out + ops.cast(self.bias, out.dtype) if self.use_bias else out

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        grow = lambda d: None if d is None else d * PHASES  # noqa: E731
        return (b, grow(h), grow(w), self.filters)
