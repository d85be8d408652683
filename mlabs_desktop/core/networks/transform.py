"""Transform networks: the feed-forward nets that restyle a photo in one pass.

Only ``keras.layers`` and ``keras.ops`` are used here, so the same code runs on
the TensorFlow, JAX and PyTorch backends.

* ``classic`` is exactly Engstrom's fast-style-transfer network (zero padding,
  transposed convolutions, instance norm on the output), so reference
  checkpoints import with identical output.
* ``default`` keeps the widths but uses reflection padding and nearest-neighbour
  upsampling followed by a convolution (no checkerboard artefacts), with no
  instance norm on the output layer.
* ``lite`` is ``default`` at half the channel widths: about 4x fewer FLOPs.
* ``tiny`` is ``default`` at 8, 16 and 32 channels, for live previews, video and
  slow machines (see docs/decisions/tiny-network.md for why these widths).
* ``pytorch`` is the PyTorch examples' ``TransformerNet`` (``default``'s layout with
  biases, instance-norm epsilon 1e-5 and no output squashing), for imported models.

Every network takes RGB pixels in 0..255 and returns RGB in roughly
-22.5..277.5 (``tanh(x) * 150 + 127.5``; ``pytorch``: unbounded), clipped when saved. Its first layer
multiplies by ``input_scale``: 1/255 for models trained here (as the reference
trains), 1.0 for imported reference checkpoints (as the reference evaluates).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import keras
from keras import layers, ops

from mlabs_desktop.core.networks.block_conv import BlockConv2D, worth_blocking
from mlabs_desktop.core.networks.norm_gradient import normalise_for_training
from mlabs_desktop.core.networks.upsample_conv import UpsampleConv2D

INSTANCE_NORM_EPSILON = 1e-3
TORCH_NORM_EPSILON = 1e-5       # torch.nn.InstanceNorm2d's
RESIDUAL_BLOCKS = 5


@dataclass(frozen=True)
class ArchitectureSpec:
    widths: tuple[int, int, int]
    reflect: bool          # reflection padding instead of zero padding
    resize_conv: bool      # nearest upsample + conv instead of conv-transpose
    norm_output: bool      # instance norm on the output conv (the reference has it)
    bias: bool = False     # convolutions with biases
    epsilon: float = INSTANCE_NORM_EPSILON
    squash: bool = True    # the output through tanh(x) * 150 + 127.5 (else as it comes)


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "classic": ArchitectureSpec((32, 64, 128), reflect=False, resize_conv=False, norm_output=True),
    "default": ArchitectureSpec((32, 64, 128), reflect=True, resize_conv=True, norm_output=False),
    "lite": ArchitectureSpec((16, 32, 64), reflect=True, resize_conv=True, norm_output=False),
    "tiny": ArchitectureSpec((8, 16, 32), reflect=True, resize_conv=True, norm_output=False),
    "pytorch": ArchitectureSpec((32, 64, 128), reflect=True, resize_conv=True, norm_output=False, bias=True,
                                epsilon=TORCH_NORM_EPSILON, squash=False),
}

# Layer names in the reference's variable order (Variable, Variable_1, ... come
# three per layer: conv kernel, IN shift, IN scale).
LAYER_ORDER: tuple[str, ...] = (
    ("conv1", "conv2", "conv3")
    + tuple(f"res{i}_{ab}" for i in range(1, RESIDUAL_BLOCKS + 1) for ab in ("a", "b"))
    + ("up1", "up2", "out")
)


@keras.saving.register_keras_serializable(package="mlabs_desktop")
class InstanceNormalization(layers.Layer):
    """Per-sample, per-channel normalisation over height and width.

    Statistics are computed in float32 even under mixed precision: float16
    variances of large activations overflow or lose all precision.

    In training, a channel that is constant to rounding passes no gradient to its
    input (docs/decisions/constant-images.md): its output does not depend on the
    input's level, and through a stack of such layers each multiplying rounding
    noise by 1/sqrt(epsilon) the gradient of a blank photo overflowed to NaN.
    """

    def __init__(self, epsilon: float = INSTANCE_NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        # The reference creates shift before scale; keep that order for import.
        self.shift = self.add_weight(name="shift", shape=(channels,), initializer="zeros")
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer="ones")

    def call(self, x, training=None):
        x32 = ops.cast(x, "float32")
        scale, shift = ops.cast(self.scale, "float32"), ops.cast(self.shift, "float32")
        if training:  # the same values to rounding, with a gradient that costs a few passes instead of a dozen
            return ops.cast(normalise_for_training(x32, scale, shift, self.epsilon), self.compute_dtype)
        mean = ops.mean(x32, axis=(1, 2), keepdims=True)
        var = ops.var(x32, axis=(1, 2), keepdims=True)
        normed = (x32 - mean) / ops.sqrt(var + self.epsilon)
        return ops.cast(scale * normed + shift, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="mlabs_desktop")
class ReflectionPadding2D(layers.Layer):
    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, x):
        # Mirrored strips joined by concatenation: two plain copies, where TensorFlow's MirrorPad
        # kernel took twice as long in bfloat16 (docs/decisions/bfloat16-elementwise.md). Sides must
        # exceed the pad, as for MirrorPad: `inference.MIN_SIDE` and the tiling see to it.
        p = self.pad
        x = ops.concatenate([ops.flip(x[:, 1:p + 1], 1), x, ops.flip(x[:, -p - 1:-1], 1)], axis=1)
        return ops.concatenate([ops.flip(x[:, :, 1:p + 1], 2), x, ops.flip(x[:, :, -p - 1:-1], 2)], axis=2)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda d: None if d is None else d + 2 * self.pad  # noqa: E731
        return (b, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="mlabs_desktop")
class StyleOutput(layers.Layer):
    """``tanh(x) * 150 + 255/2``, the reference's output mapping (or, without ``squash``, x), always in float32."""

    def __init__(self, squash: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.squash = squash

    def call(self, x):
        x = ops.cast(x, "float32")
        return ops.tanh(x) * 150.0 + 255.0 / 2.0 if self.squash else x

    def get_config(self):
        return {**super().get_config(), "squash": self.squash}


def _init(name: str, seed: int | None):
    # One seed per layer, derived from the run's seed and the layer name, so a
    # seeded run starts from the same weights every time (resume tests rely on it).
    layer_seed = None if seed is None else (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31
    return keras.initializers.TruncatedNormal(stddev=0.1, seed=layer_seed)


def _conv(x, filters: int, kernel: int, stride: int, name: str, spec: ArchitectureSpec, seed: int | None,
          plain: bool = False):
    if spec.reflect:
        x = ReflectionPadding2D(kernel // 2, name=f"{name}_pad")(x)
    init = _init(name, seed)
    blocked = worth_blocking(filters, kernel, stride) and not plain  # the 9x9 output layer
    conv = BlockConv2D if blocked else layers.Conv2D
    return conv(filters, kernel, strides=stride, padding="valid" if spec.reflect else "same",
                use_bias=spec.bias, kernel_initializer=init, name=name)(x)


def _upsample(x, filters: int, name: str, spec: ArchitectureSpec, seed: int | None, plain: bool):
    init = _init(name, seed)
    if spec.resize_conv and spec.reflect and not plain:  # upsampling and padding folded into the convolution
        return UpsampleConv2D(filters, 3, use_bias=spec.bias, kernel_initializer=init, name=name)(x)
    if spec.resize_conv:
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
        return _conv(x, filters, 3, 1, name, spec, seed, plain)
    return layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=spec.bias,
                                  kernel_initializer=init, name=name)(x)


def _norm(x, name: str, spec: ArchitectureSpec, relu: bool = True, layer: type | None = None):
    x = (layer or InstanceNormalization)(spec.epsilon, name=f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def build_transform_network(architecture: str = "default", input_scale: float = 1.0 / 255.0,
                            input_shape: tuple[int | None, int | None] = (None, None),
                            seed: int | None = None, plain_layers: bool = False,
                            norm_layer: type | None = None) -> keras.Model:
    """Build an untrained transform network of the named architecture.

    ``plain_layers`` builds each layer as the architecture defines it (upsample, pad,
    `Conv2D`) instead of the faster folded and blocked layers that compute the same
    sums: the reference's own layout, which the bench times beside ours.
    ``norm_layer``: a subclass of `InstanceNormalization` computing the same (`fused_norm`).
    """
    try:
        spec = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; "
                         f"choose one of {', '.join(ARCHITECTURES)}") from None
    w1, w2, w3 = spec.widths
    pixels = keras.Input(shape=(*input_shape, 3), name="pixels")
    x = layers.Rescaling(input_scale, name="input_scale")(pixels)
    n = norm_layer
    x = _norm(_conv(x, w1, 9, 1, "conv1", spec, seed), "conv1", spec, layer=n)
    x = _norm(_conv(x, w2, 3, 2, "conv2", spec, seed), "conv2", spec, layer=n)
    x = _norm(_conv(x, w3, 3, 2, "conv3", spec, seed), "conv3", spec, layer=n)
    for i in range(1, RESIDUAL_BLOCKS + 1):
        skip = x
        x = _norm(_conv(x, w3, 3, 1, f"res{i}_a", spec, seed), f"res{i}_a", spec, layer=n)
        x = _norm(_conv(x, w3, 3, 1, f"res{i}_b", spec, seed), f"res{i}_b", spec, relu=False, layer=n)
        x = layers.Add(name=f"res{i}_add")([skip, x])
    x = _norm(_upsample(x, w2, "up1", spec, seed, plain_layers), "up1", spec, layer=n)
    x = _norm(_upsample(x, w1, "up2", spec, seed, plain_layers), "up2", spec, layer=n)
    x = _conv(x, 3, 9, 1, "out", spec, seed, plain_layers)
    if spec.norm_output:
        x = _norm(x, "out", spec, relu=False, layer=n)
    styled = StyleOutput(spec.squash, name="styled", dtype="float32")(x)
    model = keras.Model(pixels, styled, name=f"transform_{architecture}")
    model.architecture = architecture
    return model


def multiply_adds_per_pixel(architecture: str, executed: bool = False) -> float:
    """Multiply-adds of the convolutions per output pixel, counted from layer shapes.

    By default those of the network as defined (an upsampling convolution at its
    output's size); with ``executed``, those the layers really do (`UpsampleConv2D`
    folds away 20/36 of them, `BlockConv2D` adds zero taps).
    """
    side = 64  # any multiple of 4; the count per pixel does not depend on it
    model = build_transform_network(architecture, input_shape=(side, side))
    return sum(conv_multiply_adds(layer, executed) for layer in model.layers) / (side * side)


def conv_multiply_adds(layer, executed: bool = False) -> float:
    """Multiply-adds of one (built) convolution layer; 0 for any other layer.

    A conv-transpose is counted on its input side: the work it really does.
    """
    kh, kw = getattr(layer, "kernel_size", (0, 0))
    if isinstance(layer, layers.Conv2DTranspose):
        _, h, w, cin = layer.input.shape
    elif isinstance(layer, layers.Conv2D):
        _, h, w, _ = layer.output.shape
        cin = layer.input.shape[-1]
    else:
        return 0
    share = getattr(layer, "executed_fraction", 1.0) if executed else 1.0
    return h * w * kh * kw * cin * layer.filters * share


def weight_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """The variable paths and shapes a model of this architecture must have."""
    model = build_transform_network(architecture)
    return {v.path: tuple(v.shape) for v in model.weights}
