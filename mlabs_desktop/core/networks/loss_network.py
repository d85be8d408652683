"""The VGG19 loss network (conv1_1 .. relu5_1) and readers for the weight files users have.

Two files are supported, recognised by their content rather than their name:

* Keras's ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (HDF5; Caffe weights whose
  first convolution expects BGR input minus the BGR mean), and
* MatConvNet's ``imagenet-vgg-verydeep-19.mat`` (MATLAB 5; RGB input minus the RGB mean),
  the file the 2017 MachineLabs lab's ``--vgg-path`` pointed at.

Both become one canonical form at load time: kernels ``[h, w, in, out]`` float32 for a
network that takes **RGB** minus ``MEAN_RGB``. For the Keras file the first kernel's input
axis is flipped once (``kernel[:, :, ::-1, :]``), which is the same as feeding it BGR; the
Caffe BGR mean ``[103.939, 116.779, 123.68]`` is ``MEAN_RGB`` reversed, so one mean serves both.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from mlabs_desktop.core import messages
from mlabs_desktop.core import paths
from mlabs_desktop.core.errors import UserError

if TYPE_CHECKING:  # importing Keras pulls in TensorFlow; file checks alone should not pay for it
    import keras

KERAS_VGG19_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_VGG19_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{KERAS_VGG19_FILENAME}"
KERAS_VGG19_MD5 = "253f8cb515780f3b799900260a226db6"
KERAS_VGG19_SIZE = 80_134_624
MATCONVNET_VGG19_FILENAME = "imagenet-vgg-verydeep-19.mat"
MATCONVNET_VGG19_SIZE = 534_904_783

# Engstrom's fast-style-transfer vgg.py, cut after relu5_1: nothing deeper feeds a loss.
VGG_LAYERS: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1",
)  # fmt: skip
CONV_LAYERS: tuple[str, ...] = tuple(n for n in VGG_LAYERS if n.startswith("conv"))
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MEAN_RGB: tuple[float, float, float] = (123.68, 116.779, 103.939)

_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def _expected_shape(conv: str) -> tuple[int, int, int, int]:
    block, index = (int(p) for p in conv[4:].split("_"))
    c_in = _CHANNELS[block] if index > 1 else (3 if block == 1 else _CHANNELS[block - 1])
    return (3, 3, c_in, _CHANNELS[block])


EXPECTED_SHAPES: dict[str, tuple[int, int, int, int]] = {n: _expected_shape(n) for n in CONV_LAYERS}

_Layers = dict[str, tuple[np.ndarray, np.ndarray]]  # conv name -> (kernel, bias)

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAT5_HEADER = b"MATLAB 5.0 MAT-file"
_MAT73_HEADER = b"MATLAB 7.3 MAT-file"


# eq=False: the generated __eq__/__hash__ would compare dicts of arrays and fail; identity is right.
@dataclass(frozen=True, eq=False)
class VGGWeights:
    """VGG19 conv weights in canonical form (RGB input, ``[h, w, in, out]`` kernels)."""

    layers: dict[str, tuple[np.ndarray, np.ndarray]]  # conv name -> (kernel, bias), float32, read-only
    layout: str  # 'keras-h5' or 'matconvnet'
    source: Path

    @property
    def bgr(self) -> bool:
        """Whether the *file* was trained on BGR input (Keras/Caffe).

        Informational only: conv1_1 was flipped at load, so the loss network always takes RGB.
        """
        return self.layout == "keras-h5"

    @property
    def mean_rgb(self) -> tuple[float, float, float]:
        """The per-channel mean subtracted from RGB 0..255 input (identical for both files)."""
        return MEAN_RGB


class VggWeightsMissing(UserError):
    """No VGG19 file where it was looked for; the command line and the app word the advice each their way."""

    def __init__(self, where: str):
        self.where = where
        super().__init__(messages.vgg_missing(messages.CLI, KERAS_VGG19_URL, where))


def _not_found(where: str) -> UserError:
    return VggWeightsMissing(where)


def find_vgg_weights(explicit: str | Path | None = None) -> Path:
    """The weights file to use: ``explicit`` if given, else the first known file found."""
    if explicit is not None and str(explicit) != "":
        path = Path(explicit).expanduser()
        if path.is_dir():
            # People pass the folder they downloaded into; accept it when the file is inside.
            for name in (KERAS_VGG19_FILENAME, MATCONVNET_VGG19_FILENAME):
                if (path / name).is_file():
                    return path / name
            raise _not_found(f"in the folder {path}")
        if not path.exists():
            raise _not_found(f"at {path}")
        return path
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    candidates = [
        paths.weights_dir() / KERAS_VGG19_FILENAME,
        paths.weights_dir() / MATCONVNET_VGG19_FILENAME,
        keras_home / "models" / KERAS_VGG19_FILENAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise _not_found("(looked for " + ", ".join(str(c) for c in candidates) + ")")


# Loading the 500 MB .mat takes seconds; training, previews and tests ask for the same file
# repeatedly. Keyed by (path, mtime, size) so a replaced file is re-read. Two entries bound memory.
_CACHE: OrderedDict[tuple[str, int, int], VGGWeights] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def load_vgg19_weights(path: str | Path) -> VGGWeights:
    """Read and validate a Keras notop ``.h5`` or a MatConvNet ``.mat`` VGG19 file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise _not_found(f"at {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder; pass the VGG19 weights file itself ({KERAS_VGG19_FILENAME})")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            # The key is the resolved path; report the path this caller gave (links, copies).
            return dataclasses.replace(_CACHE[key], source=path)

    with open(path, "rb") as handle:
        head = handle.read(128)
    if head.startswith(_MAT73_HEADER):
        # v7.3 files are HDF5 underneath, but with MATLAB's own encoding; scipy cannot read them.
        raise UserError(
            f"{path} is a MATLAB v7.3 file, which is not supported; use the original "
            f"{MATCONVNET_VGG19_FILENAME} or {KERAS_VGG19_FILENAME}"
        )
    if head.startswith(_HDF5_SIGNATURE):
        layout, reader, expected = "keras-h5", _read_keras_h5, f"{KERAS_VGG19_SIZE:,} bytes"
    elif head.startswith(MAT5_HEADER):
        expected = f"about {MATCONVNET_VGG19_SIZE:,} bytes, 510 MB for the older beta16 one"
        layout, reader = "matconvnet", _read_matconvnet
    else:
        raise UserError(
            f"{path} is not a VGG19 weights file: expected Keras's {KERAS_VGG19_FILENAME} "
            f"or MatConvNet's {MATCONVNET_VGG19_FILENAME}"
        )
    try:
        raw = reader(path)
    except (UserError, MemoryError):  # a 500 MB .mat on a small machine is not a damaged file
        raise
    except Exception as exc:  # h5py/scipy raise many kinds (OSError, ValueError, KeyError...)
        raise UserError(
            f"{path} looks damaged or truncated ({stat.st_size:,} bytes; the full file is {expected}): "
            f"download it again ({type(exc).__name__}: {exc})"
        ) from exc

    layers = _validate(path, raw)
    if layout == "keras-h5":
        # Caffe's conv1_1 reads BGR; flipping its input axis makes it read RGB (see module doc).
        kernel, bias = layers["conv1_1"]
        layers["conv1_1"] = (np.ascontiguousarray(kernel[:, :, ::-1, :]), bias)
    for array in (a for pair in layers.values() for a in pair):
        array.setflags(write=False)  # shared through the cache: one caller's edit would hit all
    weights = VGGWeights(layers=layers, layout=layout, source=path)
    with _CACHE_LOCK:
        _CACHE[key] = weights
        while len(_CACHE) > 2:
            _CACHE.popitem(last=False)
    return weights


def _validate(path: Path, raw: _Layers) -> _Layers:
    missing = [n for n in CONV_LAYERS if n not in raw]
    if missing:
        raise UserError(
            f"{path} has no layer(s) {', '.join(missing)}: it looks like a different network "
            f"(VGG16?), not VGG19; use {KERAS_VGG19_FILENAME}"
        )
    out: _Layers = {}
    for name in CONV_LAYERS:
        kernel, bias = (np.array(a, dtype=np.float32) for a in raw[name])  # copy: detach from file
        bias = bias.reshape(-1)
        want = EXPECTED_SHAPES[name]
        if kernel.shape != want or bias.shape != (want[3],):
            raise UserError(
                f"{path}: layer {name} has kernel {tuple(kernel.shape)} and bias {tuple(bias.shape)}, "
                f"but VGG19's is {want} and ({want[3]},): it looks like a different network, not VGG19"
            )
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            raise UserError(f"{path}: layer {name} holds NaN or infinite values; the file is damaged")
        out[name] = (kernel, bias)
    return out


def _read_keras_h5(path: Path) -> _Layers:
    import h5py

    out: _Layers = {}
    with h5py.File(path, "r") as f:
        # A whole saved model keeps its weights under model_weights; a weights file at the root.
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise UserError(
                f"{path} is an HDF5 file but not Keras weights (no layer_names): expected {KERAS_VGG19_FILENAME}"
            )
        for raw_name in root.attrs["layer_names"]:
            layer = _text(raw_name)
            conv = _keras_to_conv(layer)
            if conv is None or layer not in root:
                continue
            group = root[layer]
            # Names are relative to the group: flat Keras-1 style ("block1_conv1_W_1:0") or
            # nested Keras-2 style ("block1_conv1/kernel:0"); h5py resolves both.
            arrays = [np.asarray(group[_text(n)]) for n in group.attrs.get("weight_names", [])]
            out[conv] = _kernel_and_bias(arrays, f"{path}: layer {layer}")
    return out


def _keras_to_conv(layer: str) -> str | None:
    # block3_conv4 -> conv3_4; anything else (input, pooling, fc) carries no conv weights.
    if layer.startswith("block") and "_conv" in layer:
        block, _, index = layer[len("block"):].partition("_conv")
        if block.isdigit() and index.isdigit():
            return f"conv{block}_{index}"
    return None


def _kernel_and_bias(arrays: list[np.ndarray], where: str) -> tuple[np.ndarray, np.ndarray]:
    # Identify by rank, not by position or name: name conventions differ between Keras versions.
    kernels = [a for a in arrays if a.ndim == 4]
    biases = [a for a in arrays if a.ndim in (1, 2)]
    if len(kernels) != 1 or len(biases) != 1:
        shapes = [tuple(a.shape) for a in arrays]
        raise UserError(f"{where}: expected a kernel and a bias, found arrays of shapes {shapes}; not VGG19")
    return kernels[0], biases[0]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):  # MATLAB char arrays: ['conv1_1'] or ['c','o',...]
        return "".join(str(v) for v in value.ravel())
    return str(value)


def _unwrap(value: Any) -> Any:
    # loadmat wraps every MATLAB value (cell, struct, scalar) in (1, 1) arrays; peel them off.
    while isinstance(value, np.ndarray) and (value.dtype == object or value.dtype.names) and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _field(struct: Any, name: str) -> Any:
    struct = _unwrap(struct)
    names = getattr(getattr(struct, "dtype", None), "names", None)
    if names is not None:  # np.void record (struct_as_record=True)
        return _unwrap(struct[name]) if name in names else None
    if hasattr(struct, "_fieldnames"):  # scipy mat_struct (struct_as_record=False)
        return _unwrap(getattr(struct, name)) if name in struct._fieldnames else None
    return None


def _read_matconvnet(path: Path) -> _Layers:
    import scipy.io

    data = scipy.io.loadmat(str(path), variable_names=["layers"])
    if "layers" not in data:
        raise UserError(f"{path} is a MATLAB file but has no 'layers': expected {MATCONVNET_VGG19_FILENAME}")
    out: _Layers = {}
    for layer in np.asarray(data["layers"], dtype=object).ravel():
        name = _field(layer, "name")
        if name is None:
            continue
        name = _text(name)
        if name not in EXPECTED_SHAPES:
            continue  # relu, pool, deeper convs and fc layers
        # By name, not position: beta16 puts 'weights' first, newer files do not.
        cells = _field(layer, "weights")
        if cells is None:
            raise UserError(f"{path}: conv layer {name} has no 'weights' field; the file is not MatConvNet VGG19")
        arrays = [_unwrap(c) for c in np.asarray(cells, dtype=object).ravel()]
        kernel, bias = _kernel_and_bias([np.asarray(a) for a in arrays], f"{path}: layer {name}")
        out[name] = (np.transpose(kernel, (1, 0, 2, 3)), bias)  # [w, h, in, out] -> [h, w, in, out]
    return out


def build_loss_network(
    weights: VGGWeights, outputs: Iterable[str] = STYLE_LAYERS + (CONTENT_LAYER,)
) -> keras.Model:
    """A frozen ``keras.Model``: RGB 0..255 images ``(N, H, W, 3)`` -> ``{layer name: features}``.

    Only ``keras.layers``/``keras.ops`` are used so the model runs on any Keras backend.
    Layers follow the global dtype policy (mixed_float16 computes in float16); outputs are
    always float32 so losses and Gram matrices are computed at full precision.
    Pooling is 2x2/2 with SAME padding as in Engstrom's code: odd sizes round up.
    """
    import keras

    wanted = tuple(dict.fromkeys(outputs))
    unknown = [n for n in wanted if n not in VGG_LAYERS]
    if not wanted or unknown:
        raise ValueError(f"unknown VGG19 layer(s) {unknown or 'none requested'}; choose from {VGG_LAYERS}")
    deepest = max(VGG_LAYERS.index(n) for n in wanted)

    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="rgb_0_255")
    x = keras.ops.subtract(inputs, np.asarray(MEAN_RGB, dtype=np.float32))
    found: dict[str, Any] = {}
    convs: list[Any] = []
    for name in VGG_LAYERS[: deepest + 1]:
        kind = name[:4]
        if kind == "conv":
            layer = keras.layers.Conv2D(EXPECTED_SHAPES[name][3], 3, padding="same", trainable=False, name=name)
            convs.append(layer)
        elif kind == "relu":
            layer = keras.layers.ReLU(name=name)
        else:
            layer = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=name)
        x = layer(x)
        if name in wanted:
            found[name] = keras.ops.cast(x, "float32")  # losses and Grams at full precision
    for conv in convs:  # the layers were built by the calls above, so weights can be set now
        conv.set_weights(list(weights.layers[conv.name]))
    model = keras.Model(inputs, {n: found[n] for n in wanted}, name="vgg19_loss_network")
    model.trainable = False
    return model
