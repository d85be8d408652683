"""Any library model as ONNX, for the runtimes other apps use (onnxruntime, OpenCV, Windows ML, browsers).

The graph takes ``pixels``: float32 ``[N, 3, H, W]`` RGB in 0..255 (ONNX's channels-first
layout, as the ONNX model zoo's style models take it), H and W any multiples of 4
(16 or more), and returns ``styled`` in the same layout, clipped to 0..255. It is
written node by node from the network's layers (`tiling.program` lists them), each
as the standard operator it is: reflection Pad, Conv (kernels turned to ONNX's
(out, in, h, w)), InstanceNormalization, Relu, Add, nearest Resize for the
upsampling layers, ConvTranspose for ``classic``. The network is built with plain
layers (not the folded ones that run faster here): same weights, standard operators.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlabs_desktop.core import atomic
from mlabs_desktop.core.library.store import Model

OPSET = 17
INPUT, OUTPUT = "pixels", "styled"


class _Graph:
    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def constant(self, name: str, value) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def _pads(layer, kernel: int) -> list[int]:
    """ONNX pads (top, left, bottom, right) for a Keras convolution; 'same' puts any odd pixel at the end
    (sides are multiples of 4, so a stride-2 'same' pads 0 before and 1 after)."""
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    stride = layer.strides[0]
    total = max(kernel - stride, 0)
    return [total // 2, total // 2, total - total // 2, total - total // 2]


def _conv(g: _Graph, x: str, layer, name: str) -> str:
    kernel = np.asarray(layer.kernel.numpy(), np.float32).transpose(3, 2, 0, 1)  # (h, w, in, out) -> (out, in, h, w)
    inputs = [x, g.constant(f"{name}/kernel", kernel)]
    if layer.use_bias:
        inputs.append(g.constant(f"{name}/bias", np.asarray(layer.bias.numpy(), np.float32)))
    return g.node("Conv", inputs, name, kernel_shape=list(kernel.shape[2:]), strides=list(layer.strides),
                  pads=_pads(layer, kernel.shape[2]))


def _reflect(g: _Graph, x: str, pad: int, name: str) -> str:
    return g.node("Pad", [x, g.constant(f"{name}/pads", np.array([0, 0, pad, pad, 0, 0, pad, pad], np.int64))],
                  name, mode="reflect")


def _layer(g: _Graph, layer, inputs: list[str]) -> str:
    from keras import layers

    from mlabs_desktop.core.networks.transform import InstanceNormalization, ReflectionPadding2D, StyleOutput

    name, x = layer.name, inputs[0]
    if isinstance(layer, layers.Rescaling):
        return g.node("Mul", [x, g.constant(f"{name}/scale", np.float32(layer.scale))], name)
    if isinstance(layer, ReflectionPadding2D):
        return _reflect(g, x, layer.pad, name)
    if isinstance(layer, layers.Conv2DTranspose):  # 'same', stride 2: the output cropped by 1 at the end
        kernel = np.asarray(layer.kernel.numpy(), np.float32).transpose(3, 2, 0, 1)  # (h, w, out, in) -> (in, out, h, w)
        return g.node("ConvTranspose", [x, g.constant(f"{name}/kernel", kernel)], name,
                      kernel_shape=list(kernel.shape[2:]), strides=list(layer.strides), pads=[0, 0, 1, 1])
    if isinstance(layer, layers.Conv2D):
        return _conv(g, x, layer, name)
    if isinstance(layer, layers.UpSampling2D):
        return g.node("Resize", [x, "", g.constant(f"{name}/scales", np.array([1, 1, 2, 2], np.float32))],
                      name, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    if isinstance(layer, InstanceNormalization):
        scale = g.constant(f"{name}/scale", np.asarray(layer.scale.numpy(), np.float32))
        shift = g.constant(f"{name}/shift", np.asarray(layer.shift.numpy(), np.float32))
        return g.node("InstanceNormalization", [x, scale, shift], name, epsilon=float(layer.epsilon))
    if isinstance(layer, layers.ReLU):
        return g.node("Relu", [x], name)
    if isinstance(layer, layers.Add):
        return g.node("Add", inputs, name)
    if isinstance(layer, StyleOutput):
        if not layer.squash:
            return x
        squashed = g.node("Tanh", [x], f"{name}/tanh")
        scaled = g.node("Mul", [squashed, g.constant(f"{name}/150", np.float32(150.0))], f"{name}/mul")
        return g.node("Add", [scaled, g.constant(f"{name}/mid", np.float32(127.5))], f"{name}/add")
    raise NotImplementedError(f"no ONNX form for layer {layer.name} ({type(layer).__name__})")


def onnx_model(net):
    """The ONNX ``ModelProto`` of a transform network built with ``plain_layers`` (each layer as defined)."""
    from onnx import TensorProto, checker, helper

    from mlabs_desktop.core.tiling.program import program

    steps, first, last, _ = program(net)
    g = _Graph()
    names = {first: INPUT}
    for step in steps:
        names[step.output] = _layer(g, step.layer, [names[s] for s in step.inputs])
    g.node("Clip", [names[last], g.constant("min", np.float32(0.0)), g.constant("max", np.float32(255.0))], OUTPUT)
    dims = ["batch", 3, "height", "width"]
    graph = helper.make_graph(g.nodes, f"mlabs_desktop_{net.architecture}",
                              [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, dims)], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="MachineLabs Desktop")
    model.doc_string = ("Fast neural style transfer. Input pixels: float32 [N, 3, H, W] RGB 0..255, H and W "
                        "multiples of 4 (16 or more). Output styled: the same, clipped to 0..255.")
    checker.check_model(model)
    return model


def export_onnx(model: Model, out: Path) -> Path:
    """Write ``model`` as one ``.onnx`` file at ``out``, atomically."""
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import assign

    net = build_transform_network(model.manifest.architecture, model.manifest.input_scale, plain_layers=True)
    assign(net, model.load_weights(), f"model '{model.name}'")
    data = onnx_model(net).SerializeToString()
    atomic.write_bytes(out, data)
    return out
