"""What the networks compute in: bfloat16 where it is faster than float32, and for stylizing only
when it looks the same.

bfloat16 keeps float32's range with 8 bits of mantissa. On CPUs with AMX and on
tensor-core GPUs the convolutions run several times as fast; with AVX512-BF16
alone it depends on the CPU, so such a CPU is timed first (`hardware.bfloat16_speed`).
Whether a given model's output survives the rounding is a property of its weights,
so it is measured, not assumed: the model runs both ways on the shipped sample
photos (real photographs) and bfloat16 is used only when every one stays
within `PSNR_GATE_DB` of float32. The verdict is cached per weights file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mlabs_desktop.core.hardware import cpu_info
from mlabs_desktop.core.hardware.devices import DeviceInfo, keras_backend
from mlabs_desktop.core.smallfiles import read_json_mapping

PSNR_GATE_DB = 40.0
FIDELITY_SIZE = (320, 240)   # sample photos are fitted to this for the check (a second or two per model)
PRECISIONS = ("auto", "float32", "bfloat16")
# Verdicts are measured again when the bfloat16 network computes differently (2: fused instance norms;
# 3: norms fused with their ReLUs, grouped narrow norms, phase kernels summed in float32 arithmetic).
REDUCED_NETWORK_VERSION = 3
REDUCED_POLICY = "mixed_bfloat16"  # variables stay float32; instance-norm statistics and the output too

Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Fidelity:
    psnr_db: float           # the worst photo's PSNR of bfloat16 against float32
    photos: int

    @property
    def passes(self) -> bool:
        return bool(self.psnr_db >= PSNR_GATE_DB)


def bfloat16_supported(device: DeviceInfo) -> bool:
    """The device computes bfloat16 in hardware (`bfloat16_pays` says whether it is worth it)."""
    if device.kind == "gpu":
        return (device.compute_capability or (0, 0)) >= (8, 0)  # bfloat16 tensor cores from Ampere on
    return cpu_info.cpu_has_bfloat16()


def bfloat16_pays(device: DeviceInfo) -> bool:
    """bfloat16 is faster than float32 on the device: "auto" uses it only then."""
    from mlabs_desktop.core.hardware.bfloat16_speed import cpu_bfloat16_pays

    return bfloat16_supported(device) if device.kind == "gpu" else cpu_bfloat16_pays()


def training_precision(device: DeviceInfo, wanted: str = "auto") -> str:
    """The Keras dtype policy training uses on ``device``: mixed precision where it was measured to help.

    bfloat16 from Ampere on (float32's range: no loss scaling, so no skipped
    steps), float16 with loss scaling on Volta and Turing, bfloat16 on CPUs where it
    beats float32 (`bfloat16_speed`) under TensorFlow (docs/decisions/mixed-training-cpu.md). PyTorch
    is left in float32: it runs eagerly, and measured slower mixed (docs/decisions/precision-gate.md).
    ``wanted`` "float32" always gives float32.
    """
    from mlabs_desktop.core.hardware.bfloat16_speed import cpu_bfloat16_pays

    if wanted == "float32" or keras_backend() == "torch":
        return "float32"
    if device.kind == "cpu":
        return "mixed_bfloat16" if keras_backend() == "tensorflow" and cpu_bfloat16_pays() else "float32"
    if not device.mixed_precision_helps:
        return "float32"
    return "mixed_bfloat16" if (device.compute_capability or (0, 0)) >= (8, 0) else "mixed_float16"


def build_reduced_network(architecture: str, input_scale: float):
    """The transform network computing in bfloat16, for inference (its weights are set by the caller)."""
    from mlabs_desktop.core.hardware.devices import dtype_policy
    from mlabs_desktop.core.networks.fused_norm import FusedInstanceNormalization
    from mlabs_desktop.core.networks.transform import build_transform_network

    with dtype_policy(REDUCED_POLICY):
        return build_transform_network(architecture, input_scale, norm_layer=FusedInstanceNormalization)


def reduced_forward(architecture: str, input_scale: float, weights: list[np.ndarray]) -> Forward:
    """Compiled bfloat16 inference of one image at a time, with ``weights`` (a float32 network's `get_weights`).

    Traced for a batch of one, so each instance norm is a single fused kernel with the ReLU after it.
    """
    from mlabs_desktop.core.networks.inference import make_forward

    reduced = build_reduced_network(architecture, input_scale)
    reduced.set_weights(weights)
    return make_forward(reduced, batch=1)


def psnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """PSNR of two 0..255 images after the clipping every saved image gets."""
    diff = np.clip(reference, 0, 255).astype(np.float64) - np.clip(candidate, 0, 255)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def sample_photos(size: tuple[int, int] = FIDELITY_SIZE) -> list[np.ndarray]:
    """The shipped sample photographs as float32 RGB, centre-cropped and resized to one ``size``.

    One size for all keeps the check to one compiled shape per network.
    """
    from PIL import Image, ImageOps

    from mlabs_desktop.resources import resource_dir

    photos = []
    for path in sorted((resource_dir("resources") / "samples").glob("*.jpg")):
        with Image.open(path) as im:
            fitted = ImageOps.fit(im.convert("RGB"), size, Image.Resampling.LANCZOS)
            photos.append(np.asarray(fitted, np.float32))
    return photos


def measure_fidelity(reference: Forward, candidate: Forward, photos: list[np.ndarray]) -> Fidelity:
    worst = min(psnr_db(reference(p[None])[0], candidate(p[None])[0]) for p in photos)
    return Fidelity(round(worst, 2), len(photos))


def _verdict_path(weights_file: Path) -> Path | None:
    """Where the verdict for this exact weights file is kept; None when the file has no stable identity."""
    from mlabs_desktop.core.paths import cache_dir

    try:
        stat = weights_file.stat()
    except OSError:  # weights converted on the fly (a reference checkpoint): nothing stable to key on
        return None
    key = hashlib.sha256(f"{weights_file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{PSNR_GATE_DB}|"
                         f"{FIDELITY_SIZE}|{REDUCED_NETWORK_VERSION}".encode()).hexdigest()[:32]
    return cache_dir() / "precision" / f"{key}.json"


def known_fidelity(weights_file: Path) -> Fidelity | None:
    """The verdict already measured for these weights, without measuring (None: not yet)."""
    path = _verdict_path(weights_file)
    data = read_json_mapping(path) if path is not None else {}
    psnr, photos = data.get("psnr_db"), data.get("photos")
    if type(photos) is not int or photos < 1 or type(psnr) not in (int, float) or psnr != psnr:  # NaN
        return None
    return Fidelity(float(psnr), photos)


def cached_fidelity(weights_file: Path, measure: Callable[[], Fidelity]) -> Fidelity:
    """The verdict for this exact weights file, measured once and kept in the cache folder."""
    from mlabs_desktop.core.atomic import write_text

    path = _verdict_path(weights_file)
    known = known_fidelity(weights_file)
    if known is not None:
        return known
    fidelity = measure()
    if path is None:
        return fidelity
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(asdict(fidelity)))
    except OSError:
        pass  # a cache that cannot be written costs a second next time, nothing more
    return fidelity
