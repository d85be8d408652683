"""Several GPUs, several machines: picking a ``tf.distribute`` strategy for training.

One device trains without a strategy (no overhead). Several visible GPUs use
MirroredStrategy; a ``TF_CONFIG`` naming a cluster uses
MultiWorkerMirroredStrategy. Other Keras backends train on one device.
"""

from __future__ import annotations

import json
import os

from mlabs_desktop.core.hardware.devices import DeviceInfo, configure_tensorflow, keras_backend
from mlabs_desktop.core.errors import UserError


def cluster_from_env() -> dict | None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from None
    workers = config.get("cluster", {}).get("worker", []) if isinstance(config, dict) else []
    return config if len(workers) > 1 else None


def make_strategy(device: DeviceInfo, replica_devices: list[str] | None = None):
    """A strategy for training, or None to train on ``device`` alone.

    ``replica_devices`` forces MirroredStrategy over the named devices (tests
    use two logical CPUs).
    """
    if keras_backend() != "tensorflow":
        return None
    tf = configure_tensorflow()
    if replica_devices:
        return tf.distribute.MirroredStrategy(replica_devices)
    if cluster_from_env():
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if device.kind == "gpu" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return None


def replica_count(strategy) -> int:
    return strategy.num_replicas_in_sync if strategy else 1
