"""The transform network as a tiled run sees it: layers in order, wired by value slots, and their reach.

`program` lists a functional model's layers as `Step`s; `receptive_radius`
works out from that list how much input context each output pixel depends on,
which is the margin every tile reads around its core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class TilingUnsupported(ValueError):
    """The network has a layer whose spatial reach this module cannot work out."""


@dataclass(frozen=True)
class Step:
    layer: object
    inputs: tuple[int, ...]      # value slots read
    output: int                  # value slot written
    norm: int | None             # index into `norms` for an instance-norm layer
    scale: float                 # image pixels per pixel of the output, along each side
    channels: int


def program(net) -> tuple[list[Step], int, int, list]:
    """The functional model's layers in order, wired by value slots."""
    import keras

    from mlabs_desktop.core.networks.transform import InstanceNormalization

    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise TilingUnsupported("only single-input, single-output networks can be tiled")
    slots: dict[int, int] = {}

    def slot(tensor) -> int:
        return slots.setdefault(id(tensor), len(slots))

    first = slot(net.inputs[0])
    steps: list[Step] = []
    norms: list = []
    scale_of = {first: 1.0}
    for layer in net.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        tensors = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        inputs = tuple(slot(t) for t in tensors)
        if any(i not in scale_of for i in inputs):
            raise TilingUnsupported(f"layer {layer.name} comes before its inputs")
        norm = None
        if isinstance(layer, InstanceNormalization):
            norm = len(norms)
            norms.append(layer)
        out = slot(layer.output)
        scale_of[out] = _output_scale(layer, scale_of[inputs[0]])
        steps.append(Step(layer, inputs, out, norm, scale_of[out], int(layer.output.shape[-1])))
    return steps, first, slot(net.outputs[0]), norms


def _output_scale(layer, scale: float) -> float:
    import keras

    from mlabs_desktop.core.networks.upsample_conv import PHASES, UpsampleConv2D

    if isinstance(layer, UpsampleConv2D):
        return scale / PHASES
    if isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.UpSampling2D)):
        factor = layer.strides if isinstance(layer, keras.layers.Conv2DTranspose) else layer.size
        return scale / factor[0]
    if isinstance(layer, keras.layers.Conv2D):
        return scale * layer.strides[0]
    return scale


def receptive_radius(net) -> int:
    """Pixels of input context each side that an output pixel depends on, from the layer list."""
    import keras

    from mlabs_desktop.core.networks.transform import InstanceNormalization, ReflectionPadding2D, StyleOutput
    from mlabs_desktop.core.networks.upsample_conv import PHASES, UpsampleConv2D

    steps, first, last, _ = program(net)
    # Per value: (image pixels per feature pixel, reach left/up, reach right/down): feature
    # pixel j depends on image pixels [j*f - left, (j+1)*f - 1 + right].
    reach = {first: (1, 0, 0)}
    pointwise = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Rescaling, keras.layers.Add,
                 InstanceNormalization, StyleOutput)
    for step in steps:
        layer = step.layer
        f, lo, hi = reach[step.inputs[0]]
        if isinstance(layer, keras.layers.Add):
            lo = max(reach[i][1] for i in step.inputs)
            hi = max(reach[i][2] for i in step.inputs)
        elif isinstance(layer, pointwise):
            pass
        elif isinstance(layer, (ReflectionPadding2D, keras.layers.ZeroPadding2D)):
            pad = layer.pad if isinstance(layer, ReflectionPadding2D) else max(max(p) for p in layer.padding)
            lo, hi = lo + pad * f, hi - pad * f
        elif isinstance(layer, UpsampleConv2D):
            # As the unfused layers: upsampling, padding by 1 (+f, -f), a valid 3x3 (+0, +2f).
            lo, hi, f = _upsampled(lo, hi, f, PHASES)
            lo, hi = lo + f, hi + f
        elif isinstance(layer, keras.layers.UpSampling2D):
            lo, hi, f = _upsampled(lo, hi, f, max(layer.size))
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            k, s = max(layer.kernel_size), max(layer.strides)
            lo, hi, f = lo + k * f / s + f, hi + k * f / s + f, f / s
        elif isinstance(layer, keras.layers.Conv2D):
            k, s = max(layer.kernel_size), max(layer.strides)
            if max(layer.dilation_rate) != 1:
                raise TilingUnsupported(f"dilated convolution {layer.name}")
            before = max(k - s, 0) // 2 if layer.padding == "same" else 0
            lo, hi, f = lo + before * f, hi + max(k - before - s, 0) * f, f * s
        else:
            raise TilingUnsupported(f"cannot tell how far {type(layer).__name__} {layer.name} reaches")
        reach[step.output] = (f, lo, hi)
    f, lo, hi = reach[last]
    if f != 1:
        raise TilingUnsupported("the network's output is not at the input's resolution")
    return int(math.ceil(max(lo, hi, 0)))


def _upsampled(lo: float, hi: float, f: float, factor: int) -> tuple[float, float, float]:
    """Reach after upsampling by ``factor``: each new pixel still reads its whole source pixel."""
    return lo + f - f / factor, hi + f - f / factor, f / factor
