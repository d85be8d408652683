"""What this CPU is and which vector instructions it has, for the bench and the bfloat16 check.

Speed figures only compare within one machine class: the same network runs at
76% of the matmul rate on an AVX-512 Xeon and at 62% on an AVX2 EPYC of the
same core count, so the bench names both with its results.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

# Widest first: the first one the CPU has names its class.
VECTOR_EXTENSIONS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "avx", "sse4_2", "asimd", "neon")


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    if platform.system() != "Linux":
        return ""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_flags() -> frozenset[str]:
    """The feature flags Linux reports (empty elsewhere)."""
    for line in _cpuinfo().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bfloat16() -> bool:
    """AVX512-BF16 or AMX-BF16 on this CPU (Linux reports them in /proc/cpuinfo)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_float16() -> bool:
    """float16 arithmetic on this CPU: AVX512-FP16 or AMX-FP16 (x86), half-precision vectors (ARM)."""
    return bool(cpu_flags() & {"avx512_fp16", "amx_fp16", "asimdhp", "fphp"})


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.split(":")[0].strip() == "model name":
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def vector_extensions() -> list[str]:
    """The vector extensions of `VECTOR_EXTENSIONS` this CPU has, widest first."""
    flags = cpu_flags()
    return [name for name in VECTOR_EXTENSIONS if name in flags]


def cpu_has_amx_bfloat16() -> bool:
    """AMX's bfloat16 tiles: the matrix units that make bfloat16 several times float32 (`bfloat16_speed`)."""
    return "amx_bf16" in cpu_flags()
