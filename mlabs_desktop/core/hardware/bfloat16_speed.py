"""Whether bfloat16 is worth using on this CPU: faster than float32, not merely present.

AMX runs bfloat16 convolutions several times as fast as float32. Without AMX it depends
on the CPU: a Zen 4 EPYC runs them about twice as fast, a Xeon with oneDNN held to its
AVX512-BF16 kernels slower (docs/decisions/bfloat16-without-amx.md). So such a CPU is
timed once, on a small convolution in both precisions, and the verdict is kept per CPU
and library version.
"""

from __future__ import annotations

import json
import threading
from importlib import metadata

from mlabs_desktop.core.atomic import write_text
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.hardware import cpu_info
from mlabs_desktop.core.hardware.devices import DeviceInfo, device_scope, keras_backend
from mlabs_desktop.core.paths import cache_dir
from mlabs_desktop.core.smallfiles import read_json_mapping

MIN_SPEEDUP = 1.2  # less is not worth bfloat16's rounding
# About 0.3 GFLOP a convolution: the check takes a fraction of a second, warm-up included.
CHECK_CONV_SIZE = 64
CHECK_SECONDS = 0.2  # each precision timed for at least this long: one busy moment does not decide it
VERDICTS_FILE = "bfloat16-speed.json"
_lock = threading.Lock()


def cpu_bfloat16_pays() -> bool:
    """bfloat16 is worth it on this CPU; timed here the first time a CPU without AMX asks."""
    with _lock:  # two stylizers starting together time it once
        known = known_cpu_bfloat16_pays()
        if known is not None:
            return known
        speedup = measure_speedup()
        verdicts = _verdicts()
        verdicts[_machine_key()] = {"speedup": round(speedup, 3)}
        try:
            write_text(cache_dir() / VERDICTS_FILE, json.dumps(verdicts, indent=1))
        except (OSError, UserError):  # a full or read-only disk: timed again next time, nothing lost
            pass
        return speedup >= MIN_SPEEDUP


def known_cpu_bfloat16_pays() -> bool | None:
    """The verdict without timing anything: None where this CPU is yet to be timed."""
    if not cpu_info.cpu_has_bfloat16():
        return False
    if cpu_info.cpu_has_amx_bfloat16():
        return True
    entry = _verdicts().get(_machine_key())
    speedup = entry.get("speedup") if isinstance(entry, dict) else None
    return None if not isinstance(speedup, (int, float)) else speedup >= MIN_SPEEDUP


def measure_speedup() -> float:
    """bfloat16's convolution rate over float32's on this CPU now (on it even where a GPU is the default)."""
    from mlabs_desktop.core.hardware.rates import ConvShape, conv_gflops

    shape = ConvShape(CHECK_CONV_SIZE, CHECK_CONV_SIZE, CHECK_CONV_SIZE, kernel=3, in_a_row=4)
    with device_scope(DeviceInfo("cpu", "CPU")):
        return conv_gflops("bfloat16", 3, shape, CHECK_SECONDS) / conv_gflops("float32", 3, shape, CHECK_SECONDS)


def _machine_key() -> str:
    backend = keras_backend()
    package = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jaxlib"}.get(backend, backend)
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = "?"
    return f"{cpu_info.cpu_model()} | {' '.join(cpu_info.vector_extensions())} | {backend} {version}"


def _verdicts() -> dict:
    """What earlier checks found; an unreadable file is as good as none (it is only a cache)."""
    return read_json_mapping(cache_dir() / VERDICTS_FILE)
