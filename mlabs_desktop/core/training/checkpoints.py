"""Checkpoints: a model's weights plus Adam's state and the step, in one atomic file.

``checkpoint.npz`` is self-consistent (written in one atomic replace), so a
resume never pairs weights from one step with optimizer moments from another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.networks.weights import assign, load_weight_arrays, model_arrays, save_weight_arrays

_W = "weights/"
_OPT = "optimizer/"


@dataclass(frozen=True)
class CheckpointState:
    step: int
    seed: int


def optimizer_arrays(optimizer) -> dict[str, np.ndarray]:
    # Variables are stored by position: Adam builds them in a fixed order from
    # the model's trainable variables, and paths differ between Keras versions.
    return {f"{_OPT}{i:04d}": np.asarray(v.numpy() if hasattr(v, "numpy") else v)
            for i, v in enumerate(optimizer.variables)}


def save_checkpoint(path: Path, net, optimizer, state: CheckpointState) -> None:
    arrays = {f"{_W}{k}": v for k, v in model_arrays(net).items()}
    arrays.update(optimizer_arrays(optimizer))
    arrays["step"] = np.array(state.step, np.int64)
    arrays["seed"] = np.array(state.seed, np.int64)
    save_weight_arrays(path, arrays)


def load_checkpoint(path: Path, net, optimizer) -> CheckpointState:
    """Restore ``net`` and ``optimizer`` (already built) from ``path``; return step and seed."""
    arrays = load_weight_arrays(path)
    try:
        step, seed = int(arrays["step"]), int(arrays["seed"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path} is not a training checkpoint (no step recorded)") from None
    assign(net, {k[len(_W):]: v for k, v in arrays.items() if k.startswith(_W)}, str(path))
    saved = sorted(k for k in arrays if k.startswith(_OPT))
    variables = optimizer.variables
    if len(saved) != len(variables):
        raise UserError(f"{path}: optimizer state does not match this model "
                        f"({len(saved)} arrays, {len(variables)} expected)")
    for key, variable in zip(saved, variables):
        value = arrays[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise UserError(f"{path}: optimizer array {key} has the wrong shape")
        variable.assign(value.astype(variable.dtype))
    return CheckpointState(step, seed)
