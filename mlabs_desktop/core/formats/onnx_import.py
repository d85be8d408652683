"""ONNX fast-style models (the ONNX model zoo's are the PyTorch ``TransformerNet`` exported) into the library.

The graph is checked to be that network before anything is taken from it: only
the operators such a graph uses, 16 convolutions and 15 instance norms in the
order and shapes of ``TransformerNet``. Their weights, read with the ``onnx``
package (no code runs from the file), become a ``pytorch`` model, mapped in the
graph's own order rather than by the names exporters happen to give.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.formats.torch_import import add_transformer_model
from mlabs_desktop.core.library.store import Library, Model
from mlabs_desktop.core.networks.transform import LAYER_ORDER, TORCH_NORM_EPSILON

MAX_ONNX_BYTES = 256 << 20
NOT_IT = ("ONNX import reads the PyTorch examples' fast-style network (TransformerNet, as in the ONNX model zoo), "
          "and this is another one")
# What exporters of this network write: the layers, and the small shape arithmetic around upsampling.
ALLOWED_OPS = frozenset({"Conv", "InstanceNormalization", "Relu", "Add", "Pad", "Upsample", "Resize", "Constant",
                         "Shape", "Gather", "Cast", "Mul", "Div", "Floor", "Unsqueeze", "Concat", "Slice",
                         "Identity", "Clip", "ConstantOfShape", "Sub", "Squeeze", "Reshape", "Transpose"})


def is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ".onnx"


def _load(path: Path):
    import onnx

    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise UserError(f"{path.name} is {size:,} bytes, too large to be a style network")
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - any unreadable model is one message
        raise UserError(f"{path.name} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    return model


def onnx_arrays(model, source: str) -> dict[str, np.ndarray]:
    """Our weights (variable path -> array) from a ``TransformerNet`` graph; a `UserError` for any other graph."""
    from onnx import numpy_helper

    graph = model.graph
    if any(n.domain not in ("", "ai.onnx") for n in graph.node) or any(f for f in model.functions):
        raise UserError(f"{source} uses custom operators: {NOT_IT}")
    unknown = sorted({n.op_type for n in graph.node} - ALLOWED_OPS)
    if unknown:
        raise UserError(f"{source} uses {', '.join(unknown[:3])}: {NOT_IT}")
    from onnx import TensorProto

    stored = {t.name: t for t in graph.initializer}
    for node in graph.node:  # weights stored as Constant nodes by some exporters
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            stored[node.output[0]] = node.attribute[0].t
    if any(t.data_location == TensorProto.EXTERNAL for t in stored.values()):
        raise UserError(f"{source} keeps its weights in other files; export it as one file")  # never read others
    weights = {name: numpy_helper.to_array(t) for name, t in stored.items()}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    norms = [n for n in graph.node if n.op_type == "InstanceNormalization"]
    if len(convs) != len(LAYER_ORDER) or len(norms) != len(LAYER_ORDER) - 1:
        raise UserError(f"{source} has {len(convs)} convolutions and {len(norms)} instance norms, where "
                        f"TransformerNet has {len(LAYER_ORDER)} and {len(LAYER_ORDER) - 1}: {NOT_IT}")
    arrays: dict[str, np.ndarray] = {}
    try:
        for layer, conv in zip(LAYER_ORDER, convs):
            kernel, bias = weights[conv.input[1]], weights[conv.input[2]] if len(conv.input) > 2 else None
            arrays[f"{layer}/kernel"] = kernel.astype(np.float32).transpose(2, 3, 1, 0)
            arrays[f"{layer}/bias"] = (np.zeros(kernel.shape[0], np.float32) if bias is None
                                       else bias.astype(np.float32))
        for layer, norm in zip(LAYER_ORDER, norms):
            epsilon = next((a.f for a in norm.attribute if a.name == "epsilon"), 1e-5)
            if abs(epsilon - TORCH_NORM_EPSILON) > 1e-7:
                raise UserError(f"{source}: its instance norms use epsilon {epsilon:g}, the network uses 1e-05")
            arrays[f"{layer}_norm/scale"] = weights[norm.input[1]].astype(np.float32)
            arrays[f"{layer}_norm/shift"] = weights[norm.input[2]].astype(np.float32)
    except KeyError as exc:
        raise UserError(f"{source}: weight {exc} is computed in the graph, not stored: {NOT_IT}") from None
    except (ValueError, IndexError):  # a weight of the wrong rank
        raise UserError(f"{source}: its convolutions do not have TransformerNet's shapes: {NOT_IT}") from None
    return arrays


def import_onnx(path: Path | str, name: str | None = None, library: Library | None = None) -> Model:
    """Add an ONNX ``TransformerNet`` to the library as a ``pytorch`` model (0..255 input)."""
    path = Path(path)
    return add_transformer_model(onnx_arrays(_load(path), path.name), path, "onnx", name, library)
