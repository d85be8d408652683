"""Out of memory: recognising it whichever backend raised it (the one place that does), and the training error.

Stylizing answers it by tiling (`policy`); training answers it with a smaller
batch, continued from the last checkpoint (`trainer.Trainer.with_smaller_batch`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import OutOfMemoryEvent
from mlabs_desktop.core.messages import CLI, training_out_of_memory

# TensorFlow raises ResourceExhaustedError, PyTorch (torch.cuda.)OutOfMemoryError.
_OOM_CLASSES = ("ResourceExhaustedError", "OutOfMemoryError")
# JAX raises its generic runtime error with the XLA status code in the message.
_XLA_CLASSES = ("XlaRuntimeError", "JaxRuntimeError")


def out_of_memory(exc: BaseException) -> bool:
    """Host or device memory ran out (by class name: each backend has its own, and none is imported here)."""
    name = type(exc).__name__
    return (isinstance(exc, MemoryError) or name in _OOM_CLASSES
            or (name in _XLA_CLASSES and "RESOURCE_EXHAUSTED" in str(exc)))


class TrainingOutOfMemory(UserError):
    """A training step ran out of memory; the steps before it are checkpointed."""

    def __init__(self, event: OutOfMemoryEvent):
        self.event = event
        super().__init__(training_out_of_memory(event, CLI))


def host_memory() -> tuple[int, int] | None:
    """(total, available) bytes of this computer's memory, or None where it cannot be read.

    Available is what the OS could hand out without swapping (Linux's MemAvailable,
    Windows' available physical memory); where only the total is known, half of it.
    """
    try:
        if sys.platform.startswith("linux"):
            fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
            total = int(fields["MemTotal"].split()[0]) * 1024
            return total, int(fields.get("MemAvailable", f"{total // 2048}").split()[0]) * 1024
        if sys.platform == "win32":
            return _windows_memory()
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total // 2
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def _windows_memory() -> tuple[int, int]:
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                    ("available", ctypes.c_ulonglong), ("page_total", ctypes.c_ulonglong),
                    ("page_available", ctypes.c_ulonglong), ("virtual_total", ctypes.c_ulonglong),
                    ("virtual_available", ctypes.c_ulonglong), ("extended", ctypes.c_ulonglong)]

    status = MemoryStatus()
    status.length = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        raise OSError("GlobalMemoryStatusEx failed")
    return int(status.total), int(status.available)
