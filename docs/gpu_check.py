"""Issue 18's GPU figures in one run: each network's training step on a Keras backend, float32 and mixed bfloat16.

For a session lent a GPU machine, where TensorFlow is not installed and Keras runs on
JAX or PyTorch. Run once per backend (Keras picks its backend at import):

    KERAS_BACKEND=jax   python docs/gpu_check.py --out $OUT/jax.json
    KERAS_BACKEND=torch python docs/gpu_check.py --out $OUT/torch.json

A device lends 15 minutes in all, and JAX compiles each network, batch size and precision anew:
narrow a run with ``--architectures``, ``--batches`` and ``--loss-steps``; the JSON is rewritten after
every figure, so a run cut short keeps what it measured.

It prints and writes, for each network and batch size: seconds a step and images/s at
256 px in both precisions, and the step's share of the chip's bfloat16 matmul rate
measured in the same run; then the 200-step loss comparison (the same start and
batches in both precisions, each result judged by its float32 loss on held-out
batches). The loss network has random weights (no VGG19 file travels): speed does not
depend on them. ``--quick`` runs the same code at toy sizes, for a CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    import platformdirs  # noqa: F401  (the app's folders; imported by the core, not called here)
except ImportError:
    sys.modules["platformdirs"] = types.ModuleType("platformdirs")

from mlabs_desktop.core.bench.measure import random_vgg_weights  # noqa: E402
from mlabs_desktop.core.hardware.devices import dtype_policy, keras_backend  # noqa: E402
from mlabs_desktop.core.hardware.rates import best_time, matmul_gflops  # noqa: E402
from mlabs_desktop.core.networks.transform import multiply_adds_per_pixel  # noqa: E402

# VGG19 to relu5_1 (the deepest layer the losses use), multiply-adds per input pixel, from its widths.
VGG_MULTIPLY_ADDS_PER_PIXEL = (3 * 64 + 64 * 64) * 9 + (64 * 128 + 128 * 128) * 9 / 4 + \
    (128 * 256 + 3 * 256 * 256) * 9 / 16 + (256 * 512 + 3 * 512 * 512) * 9 / 64 + 512 * 512 * 9 / 256


def step_flops(architecture: str, batch: int, size: int) -> float:
    """FLOPs of one training step: the transform network forward and back (3x), VGG on its output forward and
    back to the input (2x), VGG on the photos forward (1x); two FLOPs a multiply-add."""
    per_pixel = 3 * multiply_adds_per_pixel(architecture, executed=True) + 3 * VGG_MULTIPLY_ADDS_PER_PIXEL
    return 2 * per_pixel * batch * size * size


def loss_parts(size: int):
    """The random loss network and the style's Gram targets (seeded: the same in every call)."""
    import keras

    from mlabs_desktop.core.networks.loss_network import STYLE_LAYERS, build_loss_network
    from mlabs_desktop.core.training.losses import gram_numpy

    loss_net = build_loss_network(random_vgg_weights())
    style = np.random.default_rng(1).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    features = loss_net(style)
    return loss_net, {n: gram_numpy(keras.ops.convert_to_numpy(features[n])[0]) for n in STYLE_LAYERS}


def make_step(architecture: str, size: int, seed: int = 0):
    """A training step as the trainer makes it, under the current dtype policy, and its network."""
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.training.losses import LossWeights
    from mlabs_desktop.core.training.steps import make_optimizer, make_train_step

    loss_net, targets = loss_parts(size)
    net = build_transform_network(architecture, seed=seed)
    return make_train_step(net, loss_net, targets, LossWeights(7.5, 1e2, 2e2), make_optimizer(1e-3, net)), net


def time_steps(architecture: str, batch: int, size: int, precision: str, limit_gflops: float) -> dict:
    with dtype_policy(precision):
        step, _ = make_step(architecture, size)
    data = np.random.default_rng(2).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    seconds = best_time(lambda: step(data), 5)  # its losses come back as floats: it waits for the device
    return {"architecture": architecture, "batch": batch, "size": size, "precision": precision,
            "seconds": round(seconds, 5), "images_per_s": round(batch / seconds, 1),
            "share_of_bf16_matmul": round(step_flops(architecture, batch, size) / seconds / 1e9 / limit_gflops, 3)}


def loss_comparison(architecture: str, batch: int, size: int, steps: int) -> dict:
    """The same start and batches in both precisions; each result judged in float32 on 10 held-out batches."""
    from keras import ops

    from mlabs_desktop.core.networks.loss_network import CONTENT_LAYER
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.training.losses import LossWeights, perceptual_losses

    batches = np.random.default_rng(5).uniform(0, 255, (steps + 10, batch, size, size, 3)).astype(np.float32)
    loss_net, targets = loss_parts(size)
    targets = {k: ops.convert_to_tensor(v) for k, v in targets.items()}
    judged = build_transform_network(architecture)

    def float32_loss(photos) -> float:
        styled = judged(photos, training=True)
        losses = perceptual_losses(styled, loss_net(styled), loss_net(photos)[CONTENT_LAYER], targets,
                                   CONTENT_LAYER, LossWeights(7.5, 1e2, 2e2))
        return float(ops.convert_to_numpy(losses["total"]))

    finals = {}
    for precision in ("float32", "mixed_bfloat16"):
        with dtype_policy(precision):
            step, net = make_step(architecture, size, seed=0)
        for photos in batches[:steps]:
            step(photos)
        judged.set_weights(net.get_weights())
        finals[precision] = float(np.mean([float32_loss(photos) for photos in batches[steps:]]))
    return {"architecture": architecture, "batch": batch, "size": size, "steps": steps, **finals,
            "mixed_over_float32": round(finals["mixed_bfloat16"] / finals["float32"], 4)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, help="JSON file, written again after every figure")
    parser.add_argument("--architectures", default="classic,default,lite,tiny")
    parser.add_argument("--batches", default="4,16,64", help="batch sizes to time at 256 px")
    parser.add_argument("--loss-steps", type=int, default=200, help="the loss comparison's steps (0: none)")
    parser.add_argument("--quick", action="store_true", help="toy sizes, for a CPU")
    args = parser.parse_args()
    size = 32 if args.quick else 256
    started = time.time()
    limit = matmul_gflops(1024 if args.quick else 8192, 3, "bfloat16")
    report = {"backend": keras_backend(), "device": device_name(), "bf16_matmul_gflops": round(limit, 1),
              "steps": [], "loss": []}

    def keep(entries: list, entry: dict) -> None:
        entries.append(entry)
        print(json.dumps(entry), flush=True)
        report["seconds"] = round(time.time() - started, 1)
        if args.out:  # a run cut short by its time limit still leaves what it measured
            args.out.write_text(json.dumps(report, indent=2))

    batches = [int(b) for b in args.batches.split(",")]
    for architecture in args.architectures.split(","):
        for batch in batches:
            for precision in ("float32", "mixed_bfloat16"):
                keep(report["steps"], time_steps(architecture, batch, size, precision, limit))
    if args.loss_steps:
        keep(report["loss"], loss_comparison("default", batches[0], size, args.loss_steps))
    return 0


def device_name() -> str:
    backend = keras_backend()
    if backend == "jax":
        import jax

        return jax.devices()[0].device_kind
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    return "CPU"


if __name__ == "__main__":
    sys.exit(main())
