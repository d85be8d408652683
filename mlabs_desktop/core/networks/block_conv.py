"""A wide convolution with few output channels, run on 2x2 blocks of pixels so the kernels stay busy.

The transform network ends in a 9x9 convolution from 32 channels to 3. CPU
convolution kernels vectorise over output channels, so 3 of a vector's 8 or 16
lanes do work. Regrouping the image into 2x2 blocks (space to depth) turns it
into the same sum as a 5x5 convolution from 4x32 channels to 4x3 = 12: a
little more arithmetic, much faster (docs/decisions/blocked-convolutions.md).

The layer keeps `Conv2D`'s own kernel (9, 9, C, F): weights files, checkpoints
and exports are unchanged; the 5x5 block kernel is gathered from it at each
call (a few thousand numbers), so gradients flow to the same variable.
Only `keras.ops`, so it runs on every backend.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
from keras import layers, ops

BLOCK = 2


def worth_blocking(filters: int, kernel: int, stride: int) -> bool:
    """Only where output channels are too few to fill a vector and the kernel is wide (and odd: an even
    kernel's "same" padding is uneven, which the blocks do not follow)."""
    return stride == 1 and filters <= 4 and kernel >= 5 and kernel % 2 == 1


def block_kernel_index(kernel: int, block: int = BLOCK) -> np.ndarray:
    """For each block-kernel entry, the flat index (row * kernel + col) of the original tap, or kernel**2 for zero.

    Shape (taps, taps, block, block, block, block): (block row, block col,
    input pixel row and col within the block, output pixel row and col).
    """
    taps = (kernel - 1 + block - 1) // block + 1
    index = np.full((taps, taps, block, block, block, block), kernel * kernel, np.int32)
    for mr, mc, br, bc, ar, ac in itertools.product(range(taps), range(taps), *[range(block)] * 4):
        kr, kc = block * mr + br - ar, block * mc + bc - ac
        if 0 <= kr < kernel and 0 <= kc < kernel:
            index[mr, mc, br, bc, ar, ac] = kr * kernel + kc
    return index


@keras.saving.register_keras_serializable(package="mlabs_desktop")
class BlockConv2D(layers.Conv2D):
    """`Conv2D` (stride 1, valid or same padding) computed on 2x2 blocks."""

    scratch_copies = (1, 1)  # the input regrouped into blocks; the output in blocks (tiling's memory model)

    @property
    def executed_fraction(self) -> float:
        """Multiply-adds done, over those of the plain convolution (zero taps included): 100/81 for 9x9."""
        k = self.kernel_size[0]
        taps = (k - 1 + BLOCK - 1) // BLOCK + 1
        return taps * taps * BLOCK * BLOCK / (k * k)

    def build(self, input_shape):
        super().build(input_shape)
        self._index = block_kernel_index(self.kernel_size[0])

    def _block_kernel(self):
        k, (_, _, channels, filters) = self.kernel_size[0], self.kernel.shape
        taps = self._index.shape[0]
        flat = ops.reshape(self.kernel, (k * k, channels, filters))
        flat = ops.concatenate([flat, ops.zeros((1, channels, filters), flat.dtype)], axis=0)
        gathered = ops.take(flat, self._index.reshape(-1), axis=0)  # (entries, C, F)
        gathered = ops.reshape(gathered, (taps, taps, BLOCK, BLOCK, BLOCK, BLOCK, channels, filters))
        # -> (taps, taps, in row, in col, C, out row, out col, F), then merge to channels.
        gathered = ops.transpose(gathered, (0, 1, 2, 3, 6, 4, 5, 7))
        return ops.reshape(gathered, (taps, taps, BLOCK * BLOCK * channels, BLOCK * BLOCK * filters))

    def call(self, inputs):
        k = self.kernel_size[0]
        channels, filters = self.kernel.shape[2], self.kernel.shape[3]
        # Zero padding of whole blocks is the block convolution's own "same" padding: no copy of the input
        # with the kernel's zero border is made (an odd side still gets its one zero row or column).
        in_blocks = self.padding == "same" and (k // 2) % BLOCK == 0
        pad = k // 2 if self.padding == "same" and not in_blocks else 0
        height, width = ops.shape(inputs)[1] + 2 * pad, ops.shape(inputs)[2] + 2 * pad
        out_h, out_w = (height, width) if in_blocks else (height - (k - 1), width - (k - 1))
        # An even size, with a zero row or column where odd: enough rows for every output block.
        # One pad for both, none at all for an even input with nothing else to pad (the networks' usual case).
        x = ops.pad(inputs, [[0, 0], [pad, pad + height % BLOCK], [pad, pad + width % BLOCK], [0, 0]])
        rows, cols = (height + 1) // BLOCK, (width + 1) // BLOCK
        x = ops.reshape(x, (-1, rows, BLOCK, cols, BLOCK, channels))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, rows, cols, BLOCK * BLOCK * channels))
        y = ops.conv(x, self._block_kernel(), strides=1, padding="same" if in_blocks else "valid")
        out_rows, out_cols = ops.shape(y)[1], ops.shape(y)[2]
        y = ops.reshape(y, (-1, out_rows, out_cols, BLOCK, BLOCK, filters))
        y = ops.reshape(ops.transpose(y, (0, 1, 3, 2, 4, 5)), (-1, out_rows * BLOCK, out_cols * BLOCK, filters))
        y = y[:, :out_h, :out_w, :]
        return y + ops.cast(self.bias, y.dtype) if self.use_bias else y
