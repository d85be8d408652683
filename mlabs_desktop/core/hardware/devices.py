"""Compute devices: what is there, which to use, and how to get a GPU when none is seen.

TensorFlow is imported only when a function here is first called, never at
module import, so the window can show before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
from dataclasses import dataclass

from mlabs_desktop.core.errors import UserError

_configure_lock = threading.Lock()
_configured = False
_import_lock = threading.RLock()  # re-entered: configure_tensorflow imports Keras first
_keras_ready = False
_tf_gpus: list[tuple[str, dict]] = []  # (name, details) of each GPU TensorFlow sees, once configured


@dataclass(frozen=True)
class DeviceInfo:
    kind: str                      # "gpu" or "cpu"
    name: str                      # e.g. "NVIDIA GeForce RTX 4090" or "CPU"
    index: int = 0
    compute_capability: tuple[int, int] | None = None
    memory_bytes: int | None = None  # the device's own memory, where the backend reports it

    @property
    def label(self) -> str:
        return self.name if self.kind == "cpu" else f"GPU {self.index}: {self.name}"

    @property
    def mixed_precision_helps(self) -> bool:
        # Tensor cores arrive with compute capability 7.0 (Volta).
        return self.kind == "gpu" and (self.compute_capability or (0, 0)) >= (7, 0)


def keras_backend() -> str:
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def no_gpu_hint() -> str:
    """Why no GPU is seen and what to do, for this operating system."""
    system = platform.system()
    if system == "Windows":
        return ("TensorFlow has no native GPU support on Windows after 2.10: run MachineLabs Desktop "
                "inside WSL2 with `pip install 'mlabs-desktop[gpu]'`, or use Keras on the PyTorch "
                "backend (KERAS_BACKEND=torch with a CUDA build of PyTorch).")
    if system == "Darwin":
        return ("On macOS TensorFlow runs on the CPU (tensorflow-metal breaks with TensorFlow 2.18+); "
                "training works but is slow. Use the lite architecture, or KERAS_BACKEND=torch for "
                "Apple-silicon GPUs.")
    return ("On Linux install the CUDA build of TensorFlow: `pip install 'tensorflow[and-cuda]'` "
            "(or `pip install 'mlabs-desktop[gpu]'`) with a recent NVIDIA driver.")


@contextlib.contextmanager
def quiet_stderr():
    """Keep the backend's C++ chatter (banners, CUDA probing) off the process's stderr.

    TensorFlow prints from native code before its log level applies; a command
    line promising one ``error:`` line cannot let that through. Redirects file
    descriptor 2 for the duration, so it covers native code too.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (windowed app): nothing to protect
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def import_keras_quietly():
    """Import Keras (and its backend) without start-up chatter on stderr; safe from any thread.

    A thread that finds Keras being imported by another waits until that import and
    TensorFlow's configuration are complete, instead of using a half-imported module.
    """
    import sys

    global _keras_ready
    with _import_lock:
        if not _keras_ready:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            with quiet_stderr():
                import keras  # noqa: F401
            _keras_ready = True  # for this thread's configure_tensorflow; the others wait for the lock
            if keras_backend() == "tensorflow":
                # Initialise TensorFlow's runtime now, quietly and with GPU memory growth on,
                # before the first tensor does it noisily and too late for memory growth.
                configure_tensorflow()
    return sys.modules["keras"]


def configure_tensorflow():
    """Import TensorFlow once, with GPU memory growth on (it must precede GPU initialisation)."""
    global _configured
    import_keras_quietly()
    import tensorflow as tf

    with _configure_lock:
        if not _configured:
            with quiet_stderr():  # CUDA probing logs errors on machines without a GPU
                gpus = tf.config.list_physical_devices("GPU")
            for gpu in gpus:
                try:
                    tf.config.experimental.set_memory_growth(gpu, True)
                except RuntimeError:
                    pass  # already initialised by someone else; growth cannot change now
            with quiet_stderr():  # initialising the runtime probes CUDA, which complains without a GPU
                tf.config.list_logical_devices()
            # Asked here, while no other thread may touch TensorFlow: its lazily loaded modules
            # are not safe to load from two threads, and a network built meanwhile broke.
            _tf_gpus.extend((gpu.name, tf.config.experimental.get_device_details(gpu)) for gpu in gpus)
            _configured = True
    return tf


def detect_devices() -> list[DeviceInfo]:
    """GPUs the active Keras backend can use, then the CPU."""
    found: list[DeviceInfo] = []
    backend = keras_backend()
    if backend == "tensorflow":
        configure_tensorflow()
        for index, (name, details) in enumerate(_tf_gpus):
            found.append(DeviceInfo("gpu", details.get("device_name", name), index, details.get("compute_capability")))
    elif backend == "torch":
        import torch

        for index in range(torch.cuda.device_count()):
            found.append(DeviceInfo("gpu", torch.cuda.get_device_name(index), index,
                                    torch.cuda.get_device_capability(index),
                                    torch.cuda.get_device_properties(index).total_memory))
    elif backend == "jax":
        import jax

        for index, dev in enumerate(d for d in jax.devices() if d.platform == "gpu"):
            found.append(DeviceInfo("gpu", getattr(dev, "device_kind", str(dev)), index,
                                    _capability(getattr(dev, "compute_capability", None)),
                                    (dev.memory_stats() or {}).get("bytes_limit")))
    found.append(DeviceInfo("cpu", "CPU"))
    return found


def _capability(text: str | None) -> tuple[int, int] | None:
    """``"9.0"`` (how JAX reports it) as ``(9, 0)``."""
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras's dtype policy (global, per thread) set to ``name`` for the block, then put back."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def choose_device(wanted: str) -> DeviceInfo:
    """Resolve ``auto|cpu|gpu`` to a device; asking for a missing GPU is a user error."""
    if wanted not in ("auto", "cpu", "gpu"):
        raise UserError.worded("{voice.device} must be auto, cpu or gpu, not {wanted!r}", wanted=wanted)
    devices = detect_devices()
    gpus = [d for d in devices if d.kind == "gpu"]
    if wanted == "gpu" and not gpus:
        raise UserError(f"no GPU is visible to {keras_backend()}. {no_gpu_hint()}")
    if wanted in ("gpu", "auto") and gpus:
        return gpus[0]
    return devices[-1]


def device_scope(device: DeviceInfo):
    """A context placing work on ``device`` for the TensorFlow backend (a no-op elsewhere)."""
    if keras_backend() != "tensorflow":
        return contextlib.nullcontext()
    tf = configure_tensorflow()
    return tf.device("/GPU:%d" % device.index if device.kind == "gpu" else "/CPU:0")
