"""PyTorch fast-neural-style models (the PyTorch examples' ``TransformerNet``) into the library.

The file is read by `torch_pickle` (no PyTorch needed, nothing in it run); its
state dict is mapped onto the ``pytorch`` architecture layer by layer.
Convolution kernels go from PyTorch's (out, in, h, w) to Keras's (h, w, in, out).
The instance norms' running statistics, which the 2017 files still carry, are not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.formats.converted import add_converted_model
from mlabs_desktop.core.formats.torch_pickle import read_pth
from mlabs_desktop.core.library.store import Library, Model
from mlabs_desktop.core.networks.transform import RESIDUAL_BLOCKS
from mlabs_desktop.core.smallfiles import file_sha256

ARCHITECTURE = "pytorch"
PTH_SUFFIXES = (".pth", ".pt")
IGNORED = ("running_mean", "running_var", "num_batches_tracked")


def torch_layers() -> dict[str, tuple[str, str]]:
    """PyTorch module name -> (our layer name, "conv" or "norm")."""
    layers = {"conv1": ("conv1", "conv"), "in1": ("conv1_norm", "norm"), "conv2": ("conv2", "conv"),
              "in2": ("conv2_norm", "norm"), "conv3": ("conv3", "conv"), "in3": ("conv3_norm", "norm")}
    for i in range(1, RESIDUAL_BLOCKS + 1):
        layers.update({f"res{i}.conv1": (f"res{i}_a", "conv"), f"res{i}.in1": (f"res{i}_a_norm", "norm"),
                       f"res{i}.conv2": (f"res{i}_b", "conv"), f"res{i}.in2": (f"res{i}_b_norm", "norm")})
    layers.update({"deconv1": ("up1", "conv"), "in4": ("up1_norm", "norm"), "deconv2": ("up2", "conv"),
                   "in5": ("up2_norm", "norm"), "deconv3": ("out", "conv")})
    return layers


def is_pth(path: Path) -> bool:
    return path.suffix.lower() in PTH_SUFFIXES


def transformer_arrays(state: Any, source: str) -> dict[str, np.ndarray]:
    """Our weights (variable path -> array) from a ``TransformerNet`` state dict."""
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise UserError(f"{source} holds no state dict of named weights")
    if state and all(k.startswith("module.") for k in state):  # saved from a DataParallel wrapper
        state = {k[len("module."):]: v for k, v in state.items()}
    wanted: dict[str, str] = {}
    for module, (layer, kind) in torch_layers().items():
        if kind == "conv":
            wanted.update({f"{module}.conv2d.weight": f"{layer}/kernel", f"{module}.conv2d.bias": f"{layer}/bias"})
        else:
            wanted.update({f"{module}.weight": f"{layer}/scale", f"{module}.bias": f"{layer}/shift"})
    missing = [k for k in wanted if k not in state]
    extra = [k for k in state if k not in wanted and not k.endswith(IGNORED)]
    if missing or extra:
        detail = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"
        raise UserError(f"{source} is not a PyTorch fast-neural-style TransformerNet ({detail})")
    arrays = {}
    for key, path in wanted.items():
        value = state[key]
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise UserError(f"{source}: {key} is not an array of floating-point numbers")
        value = value.astype(np.float32)
        arrays[path] = value.transpose(2, 3, 1, 0) if path.endswith("/kernel") else value
    return arrays


def import_pth(path: Path | str, name: str | None = None, library: Library | None = None) -> Model:
    """Add a ``TransformerNet`` ``.pth`` file to the library as a ``pytorch`` model (0..255 input)."""
    path = Path(path)
    return add_transformer_model(transformer_arrays(read_pth(path), path.name), path, "pytorch", name, library)


def add_transformer_model(arrays: Mapping[str, np.ndarray], path: Path, source: str, name: str | None,
                          library: Library | None) -> Model:
    """A ``pytorch`` model in the library from mapped weights (``source``: the file's kind, for provenance)."""
    from mlabs_desktop.core.networks.transform import weight_shapes
    from mlabs_desktop.core.networks.weights import check_shapes

    library = library or Library()
    check_shapes(arrays, weight_shapes(ARCHITECTURE), path.name)
    return add_converted_model(library, (name or "").strip() or library.unique_name(path.stem), arrays,
                               architecture=ARCHITECTURE, input_scale=1.0,
                               provenance={"source": source, "file": path.name, "sha256": file_sha256(path)})
