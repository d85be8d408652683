"""The machine's own arithmetic rates, timed through the Keras backend the networks use.

The bench divides its figures by them; `bfloat16_speed` compares bfloat16's with float32's.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mlabs_desktop.core.hardware.devices import configure_tensorflow, keras_backend


def best_time(fn: Callable[[], object], repeats: int, min_seconds: float = 0.0, warm_up: bool = True) -> float:
    """Best wall time of ``fn`` over ``repeats`` calls (after one warm-up call unless told not to)."""
    if warm_up:
        fn()
    best = float("inf")
    started = time.perf_counter()
    count = 0
    while count < repeats or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        count += 1
    return best


def matmul_gflops(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """Matmul rate through the same backend the networks use: the machine's limit in ``dtype``.

    On a GPU the backends run float32 convolutions on tensor cores (TF32); the
    matmul is measured under the same setting so the two compare like for like.
    """
    from keras import ops

    a = ops.cast(ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n), np.float32)), dtype)
    b = ops.cast(ops.convert_to_tensor(np.random.default_rng(1).standard_normal((n, n), np.float32)), dtype)
    if keras_backend() == "tensorflow":
        tf = configure_tensorflow()
        fn = tf.function(lambda: tf.linalg.matmul(a, b))
        run = lambda: fn().numpy()  # noqa: E731
    else:
        # Summing on the device waits for the product without timing a copy of it to the host.
        run = lambda: ops.convert_to_numpy(ops.sum(ops.matmul(a, b)))  # noqa: E731
    with _torch_matmul_like_convolutions():
        seconds = best_time(run, repeats)
    return 2 * n**3 / seconds / 1e9


@dataclass(frozen=True)
class ConvShape:
    height: int
    width: int
    channels: int   # in and out
    kernel: int
    # Convolutions timed in a row, each on the last one's output, so the one sum that waits for
    # them is a small part of the time (after a single one, it cut bfloat16's rate by a tenth).
    in_a_row: int


# The convolution that dominates the networks: 3x3, 128 channels in and out, at a quarter of 1024x680.
LIMIT_CONV = ConvShape(height=170, width=256, channels=128, kernel=3, in_a_row=8)


def conv_gflops(dtype: str = "float32", repeats: int = 5, shape: ConvShape = LIMIT_CONV,
                min_seconds: float = 0.0) -> float:
    """Rate of ``shape`` in ``dtype`` on tensors already in it: the ceiling a network's convolutions can reach."""
    from keras import ops

    h, w, c, k = shape.height, shape.width, shape.channels, shape.kernel
    rng = np.random.default_rng(2)
    x = ops.cast(ops.convert_to_tensor(rng.standard_normal((1, h, w, c)).astype(np.float32)), dtype)
    gain = 1 / np.sqrt(k * k * c)  # each output as large as the input: no overflow down the chain
    kernel = ops.cast(ops.convert_to_tensor(rng.standard_normal((k, k, c, c)).astype(np.float32) * gain), dtype)

    def chain(y):
        for _ in range(shape.in_a_row):
            y = ops.conv(y, kernel, padding="same")
        return ops.sum(y)

    if keras_backend() == "tensorflow":
        tf = configure_tensorflow()
        fn = tf.function(lambda: chain(x))
        run = lambda: fn().numpy()  # noqa: E731
    else:  # summing on the device waits for the result without timing a copy of it
        run = lambda: ops.convert_to_numpy(chain(x))  # noqa: E731
    seconds = best_time(run, repeats, min_seconds)
    return shape.in_a_row * 2 * h * w * k * k * c * c / seconds / 1e9


@contextlib.contextmanager
def _torch_matmul_like_convolutions():
    if keras_backend() != "torch":
        yield
        return
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
