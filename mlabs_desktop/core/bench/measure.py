"""``mlabs-desktop bench``: speed, as a fraction of this machine's own limit measured in the same run.

Timings on shared machines drift from run to run, so every figure is reported
next to the float32 matmul rate measured minutes apart in the same process.
FLOPs are counted from the layer shapes (`transform.multiply_adds_per_pixel`),
two per multiply-add: those of the network as defined, and beside them those
its layers execute (folded upsampling does fewer, blocked convolutions more).
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from mlabs_desktop.core.bench.video import bench_video
from mlabs_desktop.core.config import ARCHITECTURES
from mlabs_desktop.core.hardware import cpu_info
from mlabs_desktop.core.hardware.cpu_info import cpu_model, vector_extensions
from mlabs_desktop.core.hardware.devices import DeviceInfo, choose_device, device_scope, dtype_policy, keras_backend
from mlabs_desktop.core.hardware.rates import LIMIT_CONV, best_time, conv_gflops, matmul_gflops
from mlabs_desktop.core.networks.precision import REDUCED_POLICY, training_precision

REFERENCE = {  # the reference implementation on this project's machine class (design.md)
    "stylize_mp_per_s_1024x680": 0.50,
    "train_step_seconds_b4_256": 4.6,
}
STYLIZE_SIZES = {"256x256": (256, 256), "1024x680": (1024, 680), "4000x3000": (4000, 3000)}
TIMED_ONCE_ABOVE = 4_000_000  # pixels: such sizes are timed in one run, their warm-up included


def reduced_precision_limits(device: DeviceInfo, matmul_side: int, quick: bool) -> dict:
    """bfloat16 against float32 on the operations themselves, where the device computes bfloat16."""
    from mlabs_desktop.core.networks import precision as p

    if not p.bfloat16_supported(device):
        return {"supported": False}
    repeats = 2 if quick else 5
    # float16 too where the hardware has it, to show what the backend makes of it (the networks do not use it)
    dtypes = ("float32", "bfloat16") + (("float16",) if device.kind == "gpu" or cpu_info.cpu_has_float16() else ())
    conv = replace(LIMIT_CONV, in_a_row=2) if quick else LIMIT_CONV  # quick: a machine without bf16 emulates it
    return {"supported": True, "used_by_default": p.bfloat16_pays(device),
            "matmul_gflops": {dtype: round(matmul_gflops(matmul_side, repeats, dtype), 1) for dtype in dtypes},
            "conv_gflops": {dtype: round(conv_gflops(dtype, repeats, conv), 1) for dtype in dtypes},
            "conv": asdict(conv)}


def peak_rss_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 1024 if sys.platform != "darwin" else usage / 1024 / 1024


def random_vgg_weights():
    from mlabs_desktop.core.networks.loss_network import EXPECTED_SHAPES, VGGWeights

    rng = np.random.default_rng(0)
    layers = {}
    for name, shape in EXPECTED_SHAPES.items():
        fan_in = shape[0] * shape[1] * shape[2]
        layers[name] = ((rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32),
                        np.zeros(shape[3], np.float32))
    return VGGWeights(layers, "random", Path("random"))


def bench_stylize(architecture: str, sizes: dict[str, tuple[int, int]], repeats: int, device: DeviceInfo,
                  plain_layers: bool = False) -> dict:
    """Megapixels/s through the path `Stylizer` takes: whole, or tiled for photos too big for that.

    ``plain_layers`` times the network built as defined (the reference's layout).
    """
    from mlabs_desktop.core.tiling import policy as tiling
    from mlabs_desktop.core.networks.transform import build_transform_network, multiply_adds_per_pixel
    from mlabs_desktop.core.networks.inference import make_forward
    from mlabs_desktop.core.stylize.stylizer import run_any_size

    net = build_transform_network(architecture, plain_layers=plain_layers)
    forward = make_forward(net)
    tiled = _once(lambda: tiling.TiledNetwork(net))
    flops_per_pixel = 2 * multiply_adds_per_pixel(architecture)
    executed_per_pixel = 2 * multiply_adds_per_pixel(architecture, executed=not plain_layers)
    results = {}
    for label, (w, h) in sizes.items():
        image = np.random.default_rng(0).uniform(0, 255, (h, w, 3)).astype(np.float32)
        # On a CPU a huge photo's warm-up would double a long measurement; a GPU takes a
        # second, and JAX compiles each new shape, which a single timed run would count.
        once = w * h > TIMED_ONCE_ABOVE and device.kind != "gpu"
        seconds = best_time(lambda: run_any_size(forward, tiled, image, device),
                             1 if once else repeats, warm_up=not once)
        mp_per_s = w * h / seconds / 1e6
        results[label] = {"seconds": round(seconds, 4), "megapixels_per_s": round(mp_per_s, 3),
                          "gflops": round(mp_per_s * 1e6 * flops_per_pixel / 1e9, 1),
                          "executed_gflops": round(mp_per_s * 1e6 * executed_per_pixel / 1e9, 1),
                          "tiled": tiling.should_tile(h, w, device.kind, device.memory_bytes)}
    return results


def bench_convolutions(architecture: str, size: tuple[int, int] = (1024, 680), repeats: int = 3,
                       policy: str = "float32") -> dict:
    """The network's convolutions run one at a time at their real shapes: the kernels' own ceiling.

    If the whole network runs about as fast as the sum of its convolutions, the
    gap to the matmul rate is the convolution kernels' (few channels on one side
    keep a CPU's vector units partly idle; `block_conv` regroups the worst), not glue code.
    ``policy``: the Keras dtype policy the layers compute in (each takes and gives its compute dtype).
    """
    import keras

    from mlabs_desktop.core.networks.transform import build_transform_network, conv_multiply_adds

    w, h = size
    timed: list[_LayerTime] = []
    # one compiled function per layer is intended here, not retracing
    with dtype_policy(policy), _quiet_logger("tensorflow"):
        net = build_transform_network(architecture, input_shape=(h, w))
        for layer in net.layers:
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                shape = layer.input.shape[1:]
                single = keras.Model(inp := keras.Input(shape, dtype=layer.compute_dtype), layer(inp))
                x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)
                timed.append(_LayerTime(layer.name, best_time(_layer_call(single, x), repeats),
                                        2 * conv_multiply_adds(layer), 2 * conv_multiply_adds(layer, executed=True),
                                        str(single.outputs[0].dtype)))
    seconds = sum(t.seconds for t in timed)
    slowest = sorted(timed, key=lambda t: t.executed_flops / t.seconds)[:2]
    return {"size": f"{w}x{h}", "seconds": round(seconds, 4),
            "gflops": round(sum(t.flops for t in timed) / seconds / 1e9, 1),
            "executed_gflops": round(sum(t.executed_flops for t in timed) / seconds / 1e9, 1),
            "computed_in": sorted({t.dtype for t in timed}),
            "slowest_layers": {t.name: round(t.executed_flops / t.seconds / 1e9, 1) for t in slowest}}


class _LayerTime(NamedTuple):
    name: str
    seconds: float
    flops: float            # of the layer as defined
    executed_flops: float   # of the layer as it runs
    dtype: str


def _layer_call(model, x: np.ndarray) -> Callable[[], object]:
    """One compiled call of ``model`` on ``x`` already in its input dtype: on a CPU, the kernel's time without
    the conversions to and from NumPy, which at these sizes cost as much as a narrow layer."""
    if keras_backend() != "tensorflow":
        from mlabs_desktop.core.networks.inference import make_forward

        forward = make_forward(model, channels=x.shape[-1])
        return lambda: forward(x)
    import tensorflow as tf

    tensor = tf.cast(tf.constant(x), model.inputs[0].dtype)
    fn = tf.function(lambda t: model(t, training=False))
    return lambda: fn(tensor)


@contextlib.contextmanager
def _quiet_logger(name: str):
    import logging

    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved)


def bench_reduced_precision(architecture: str, device: DeviceInfo, repeats: int,
                            size: tuple[int, int] = (1024, 680)) -> dict:
    """bfloat16 against float32: speed-up at ``size`` and the worst PSNR on the sample photos.

    The bench's networks are untrained (seeded) weights; `Stylizer` decides per
    trained model with the same check.
    """
    from mlabs_desktop.core.networks import precision as p
    from mlabs_desktop.core.networks.transform import build_transform_network, multiply_adds_per_pixel
    from mlabs_desktop.core.networks.inference import make_forward

    if not p.bfloat16_supported(device):
        return {"supported": False}
    net = build_transform_network(architecture, seed=0)
    full, fast = make_forward(net), p.reduced_forward(architecture, 1.0 / 255.0, net.get_weights())
    image = np.random.default_rng(0).uniform(0, 255, (1, size[1], size[0], 3)).astype(np.float32)
    full_s, fast_s = best_time(lambda: full(image), repeats), best_time(lambda: fast(image), repeats)
    fidelity = p.measure_fidelity(full, fast, p.sample_photos())
    flops = 2 * multiply_adds_per_pixel(architecture) * size[0] * size[1]
    return {"supported": True, "size": f"{size[0]}x{size[1]}", "float32_seconds": round(full_s, 4),
            "bfloat16_seconds": round(fast_s, 4), "speedup": round(full_s / fast_s, 2),
            "bfloat16_gflops": round(flops / fast_s / 1e9, 1),
            "psnr_db": fidelity.psnr_db, "gate_db": p.PSNR_GATE_DB, "passes_gate": fidelity.passes}


def _once(make: Callable[[], object]) -> Callable[[], object]:
    made: list = []
    return lambda: made[0] if made else (made.append(make()) or made[0])


def _write_photo_folder(folder: Path, count: int, size: tuple[int, int]) -> None:
    """Real-size JPEGs made from the shipped sample photos (decode cost like a camera's)."""
    from PIL import Image

    from mlabs_desktop.resources import resource_dir

    samples = sorted((resource_dir("resources") / "samples").glob("*.jpg"))
    for i in range(count):
        with Image.open(samples[i % len(samples)]) as im:
            im.convert("RGB").resize(size).save(folder / f"photo{i:03d}.jpg", quality=92)


def bench_pipeline(step, batch: int, size: int, steps: int, photo_size: tuple[int, int]) -> dict:
    """Step time fed from a folder of JPEGs (decoded in parallel) against in-memory batches."""
    import tempfile

    from mlabs_desktop.core.training.dataset import BatchStream, scan_folder

    data = np.random.default_rng(3).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    step(data)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(data)
    in_memory = (time.perf_counter() - t0) / steps
    with tempfile.TemporaryDirectory() as tmp:
        _write_photo_folder(Path(tmp), batch * (steps + 2), photo_size)
        stream = BatchStream(scan_folder(tmp), batch, size, seed=0)
        batches = stream.batches(0)
        step(next(batches)[2])  # let the decoders get ahead, as in a real run
        t0 = time.perf_counter()
        for _ in range(steps):
            step(next(batches)[2])
        from_folder = (time.perf_counter() - t0) / steps
        batches.close()
    return {"photo_size": f"{photo_size[0]}x{photo_size[1]}", "steps": steps,
            "in_memory_seconds": round(in_memory, 3), "from_folder_seconds": round(from_folder, 3),
            "slowdown": round(from_folder / in_memory - 1, 3)}


def bench_train_step(architecture: str, batch: int = 4, size: int = 256, repeats: int = 3,
                     pipeline_steps: int = 0, precision: str = "float32") -> dict:
    """One training step's time under the dtype ``precision`` policy (the Trainer's choice per device)."""
    with dtype_policy(precision):
        result = _time_train_step(architecture, batch, size, repeats, pipeline_steps)
    return {**result, "precision": precision}


def _time_train_step(architecture: str, batch: int, size: int, repeats: int, pipeline_steps: int) -> dict:
    import keras

    from mlabs_desktop.core.training.losses import LossWeights
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.training.steps import make_optimizer, make_train_step
    from mlabs_desktop.core.networks.loss_network import STYLE_LAYERS, build_loss_network

    loss_net = build_loss_network(random_vgg_weights())
    style = np.random.default_rng(1).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    feats = loss_net(style)
    from mlabs_desktop.core.training.losses import gram_numpy

    targets = {n: gram_numpy(keras.ops.convert_to_numpy(feats[n])[0]) for n in STYLE_LAYERS}
    net = build_transform_network(architecture)
    step = make_train_step(net, loss_net, targets, LossWeights(7.5, 1e2, 2e2), make_optimizer(1e-3, net))
    data = np.random.default_rng(2).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    seconds = best_time(lambda: step(data), repeats)
    result = {"batch": batch, "image_size": size, "seconds": round(seconds, 3),
              "images_per_s": round(batch / seconds, 2)}
    if pipeline_steps:
        result["input_pipeline"] = bench_pipeline(step, batch, size, pipeline_steps, (3000, 2000))
    return result


def bench_plain_layers(architecture: str, stylize: dict, label: str, repeats: int, device: DeviceInfo,
                       limit: float) -> dict:
    """The same network and weights layout built as defined (`Conv2D`, `Conv2DTranspose`,
    upsample then pad): the reference's layout, timed in this run beside ``stylize[label]``."""
    entry = bench_stylize(architecture, {label: STYLIZE_SIZES[label]}, repeats, device, plain_layers=True)[label]
    _add_fractions(entry, limit)
    return {"size": label, **entry, "ours_speedup": round(entry["seconds"] / stylize[label]["seconds"], 3)}


def _add_fractions(entry: dict, limit: float) -> None:
    entry["fraction_of_matmul"] = round(entry["gflops"] / limit, 3)
    entry["executed_fraction_of_matmul"] = round(entry["executed_gflops"] / limit, 3)


def run_benchmark(quick: bool = False, architectures: list[str] | None = None,
                  startup: Callable[[int], dict] | None = None, reference: Callable[[], dict] | None = None) -> dict:
    """Every measurement; ``startup(runs)`` times the app's window (the command line passes the app's probe),
    ``reference()`` the reference implementation with its own code (`bench.reference`)."""
    architectures = architectures or list(ARCHITECTURES)
    device = choose_device("auto")
    report: dict = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu": cpu_model(), "vector_extensions": vector_extensions(),
                    "cpu_count": os.cpu_count(), "keras_backend": keras_backend(), "device": device.label},
        "reference": REFERENCE,
    }
    from mlabs_desktop.core.networks.transform import multiply_adds_per_pixel

    precision = training_precision(device)
    matmul_side = 1024 if quick else (8192 if device.kind == "gpu" else 2048)
    with device_scope(device):
        limit = matmul_gflops(matmul_side)
        report["matmul_gflops"] = round(limit, 1)
        reduced = report["reduced_precision_limits"] = reduced_precision_limits(device, matmul_side, quick)
        report["architectures"] = {}
        for arch in architectures:
            sizes = {"256x256": (256, 256)} if quick else STYLIZE_SIZES
            stylize = bench_stylize(arch, sizes, 2 if quick else 5, device)
            for entry in stylize.values():
                _add_fractions(entry, limit)
            shape = dict(batch=2 if quick else 4, size=64 if quick else 256, repeats=1 if quick else 3)
            data = {"multiply_adds_per_pixel": multiply_adds_per_pixel(arch),
                    "executed_multiply_adds_per_pixel": multiply_adds_per_pixel(arch, executed=True),
                    "stylize": stylize,
                    "train_step": bench_train_step(arch, **shape, precision=precision,
                                                   pipeline_steps=0 if quick or arch != "classic" else 5)}
            data["plain_layers"] = bench_plain_layers(arch, stylize, "256x256" if quick else "1024x680",
                                                      2 if quick else 5, device, limit)
            # On a CPU a call returns when its kernel is done; a GPU's returns before, so its layers are not timed.
            if not quick and device.kind != "gpu":
                conv = data["convolutions_alone"] = bench_convolutions(arch, (1024, 680))
                _add_fractions(conv, limit)
                conv["network_over_convolutions_time"] = round(stylize["1024x680"]["seconds"] / conv["seconds"], 3)
            bf16 = data["stylize_bfloat16"] = bench_reduced_precision(arch, device, 2 if quick else 5,
                                                                      (256, 256) if quick else (1024, 680))
            if bf16["supported"]:
                bf16_conv = reduced["conv_gflops"]["bfloat16"]
                bf16["fraction_of_bfloat16_conv"] = round(bf16["bfloat16_gflops"] / bf16_conv, 3)
                if not quick and device.kind != "gpu" and keras_backend() == "tensorflow":  # where the gap lies
                    alone = bench_convolutions(arch, (1024, 680), policy=REDUCED_POLICY)
                    bf16["convolutions_alone"] = {**alone, "fraction_of_bfloat16_conv": round(
                        alone["gflops"] / bf16_conv, 3), "network_over_convolutions_time": round(
                        bf16["bfloat16_seconds"] / alone["seconds"], 3)}
            if precision != "float32":  # what mixed precision buys, measured rather than assumed
                data["train_step_float32"] = bench_train_step(arch, **shape)
            elif reduced["supported"]:  # a CPU with bfloat16 units: what mixed training would give it
                data["train_step_mixed_bfloat16"] = bench_train_step(arch, **shape, precision="mixed_bfloat16")
            data["video"] = bench_video(arch, device, quick)
            report["architectures"][arch] = data
        if reference is not None:
            try:
                report["reference_measured"] = reference()
            except Exception as error:  # noqa: BLE001 - its code, not ours: the bench's own figures still count
                report["reference_measured"] = {"error": f"{type(error).__name__}: {error}"}
        report["matmul_gflops_after"] = round(matmul_gflops(matmul_side), 1)
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if startup is not None:
        report["startup"] = startup(1 if quick else 3)
    return report
