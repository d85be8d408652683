"""Write fake VGG19 weight files in the exact layouts of the real ones.

The real files are 80 MB (Keras) and 535 MB (MatConvNet) downloads, so tests write
random weights with the full real shapes instead. Every writer returns the weights in
the loader's canonical form (conv name -> (kernel [h, w, in, out], bias [out]) float32,
for RGB-minus-mean input), i.e. exactly what ``load_vgg19_weights(...).layers`` should hold.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

VGGWeightsDict = dict[str, tuple[np.ndarray, np.ndarray]]

_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
_VGG19_CONVS = {1: 2, 2: 2, 3: 4, 4: 4, 5: 4}  # convs per block
_VGG16_CONVS = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}


def _convs(per_block: dict[int, int]) -> list[tuple[int, int, str, int, int]]:
    out = []
    for block, count in per_block.items():
        for i in range(1, count + 1):
            c_out = _CHANNELS[block]
            c_in = c_out if i > 1 else (3 if block == 1 else _CHANNELS[block - 1])
            out.append((block, i, f"conv{block}_{i}", c_in, c_out))
    return out


def random_vgg_weights(seed: int = 0, vgg16: bool = False) -> VGGWeightsDict:
    """Deterministic canonical weights: He-normal kernels (activations keep their scale through
    16 layers, so relu5_1 is neither 0 nor huge) and small non-zero biases (so a lost bias shows)."""
    rng = np.random.default_rng(seed)
    weights: VGGWeightsDict = {}
    for _, _, name, c_in, c_out in _convs(_VGG16_CONVS if vgg16 else _VGG19_CONVS):
        kernel = rng.standard_normal((3, 3, c_in, c_out), dtype=np.float32)
        kernel *= np.float32(np.sqrt(2.0 / (9 * c_in)))
        bias = rng.standard_normal(c_out, dtype=np.float32) * np.float32(0.1)
        weights[name] = (kernel, bias)
    return weights


def write_keras_notop_h5(path: str | Path, seed: int = 0, vgg16: bool = False,
                         weights: VGGWeightsDict | None = None) -> VGGWeightsDict:
    """Keras-1 style notop file, as keras-applications ships it.

    Root attrs ``layer_names`` (input, convs, pools), ``backend``, ``keras_version``; one group per
    layer with attr ``weight_names`` (``block1_conv1_W_1:0``...) and the datasets directly in it.
    conv1_1's input axis is stored in BGR order, as in the Caffe-converted original.
    """
    weights = weights if weights is not None else random_vgg_weights(seed, vgg16)
    per_block = _VGG16_CONVS if vgg16 else _VGG19_CONVS
    with h5py.File(path, "w") as f:
        layer_names = ["input_1"]
        empty = np.array([], dtype="S1")
        f.create_group("input_1").attrs["weight_names"] = empty
        for block, count in per_block.items():
            for i in range(1, count + 1):
                layer = f"block{block}_conv{i}"
                kernel, bias = weights[f"conv{block}_{i}"]
                if (block, i) == (1, 1):
                    kernel = kernel[:, :, ::-1, :]  # canonical RGB -> the file's BGR
                group = f.create_group(layer)
                w_name, b_name = f"{layer}_W_1:0", f"{layer}_b_1:0"
                group.create_dataset(w_name, data=np.ascontiguousarray(kernel))
                group.create_dataset(b_name, data=bias)
                group.attrs["weight_names"] = np.array([w_name.encode(), b_name.encode()])
                layer_names.append(layer)
            pool = f"block{block}_pool"
            f.create_group(pool).attrs["weight_names"] = empty
            layer_names.append(pool)
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.8"
    return weights


def _cell(*items: object) -> np.ndarray:
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def _f64(*values: float) -> np.ndarray:
    return np.array([values], dtype=np.float64)


def write_matconvnet_mat(path: str | Path, seed: int = 0, weights_first: bool = False,
                         weights: VGGWeightsDict | None = None,
                         omit: tuple[str, ...] = ()) -> VGGWeightsDict:
    """MatConvNet simplenn file: a 1xN ``layers`` cell of structs (conv/relu/pool, through pool5;
    the huge fc layers are left out). ``weights_first=True`` mimics the old beta16 file, whose
    conv structs start with ``weights``; newer files put ``name, type`` first. Kernels are stored
    ``[w, h, in, out]``, biases (1, out) in beta16 and (out, 1) in newer files. ``omit`` drops
    conv layers by name (for "different network" tests)."""
    weights = weights if weights is not None else random_vgg_weights(seed)
    layers: list[dict[str, object]] = []
    for block, count in _VGG19_CONVS.items():
        for i in range(1, count + 1):
            name = f"conv{block}_{i}"
            if name in omit:
                continue
            kernel, bias = weights[name]
            kernel_wh = np.ascontiguousarray(np.transpose(kernel, (1, 0, 2, 3)))
            if weights_first:
                layers.append({"weights": _cell(kernel_wh, bias.reshape(1, -1)), "pad": _f64(1, 1, 1, 1),
                               "type": "conv", "name": name, "stride": _f64(1, 1)})
                layers.append({"type": "relu", "name": f"relu{block}_{i}"})
            else:
                layers.append({"name": name, "type": "conv", "weights": _cell(kernel_wh, bias.reshape(-1, 1)),
                               "size": _f64(*kernel_wh.shape), "pad": _f64(1, 1, 1, 1), "stride": _f64(1, 1),
                               "precious": False, "dilate": _f64(1, 1), "opts": np.empty((1, 0), dtype=object)})
                layers.append({"name": f"relu{block}_{i}", "type": "relu", "leak": 0.0, "precious": False})
        pool = {"name": f"pool{block}", "stride": _f64(2, 2), "pad": _f64(0, 0, 0, 0), "type": "pool",
                "method": "max", "pool": _f64(2, 2)}
        if not weights_first:
            pool["precious"] = False
        layers.append(pool)
    mean = np.array([123.68, 116.779, 103.939])
    if weights_first:
        # beta16: top-level layers, classes, normalization (averageImage is a full 224x224x3 image).
        extra = {"normalization": {"averageImage": np.broadcast_to(mean, (224, 224, 3)).astype(np.float32),
                                   "imageSize": _f64(224, 224, 3)},
                 "classes": {"name": _cell("n01440764"), "description": _cell("tench")}}
    else:
        extra = {"meta": {"normalization": {"averageImage": mean.reshape(3, 1), "imageSize": _f64(224, 224, 3)},
                          "classes": {"name": _cell("n01440764"), "description": _cell("tench")}}}
    scipy.io.savemat(str(path), {"layers": _cell(*layers), **extra}, format="5", do_compression=False)
    return weights


def write_same_weights_both(h5_path: str | Path, mat_path: str | Path, seed: int = 0,
                            weights_first: bool = False) -> VGGWeightsDict:
    """The same network in both layouts. Only conv1_1's channel order differs between the files
    (BGR in Keras, RGB in MatConvNet); the Caffe BGR mean is the RGB mean reversed, so after the
    loader's flip both must give identical features."""
    weights = random_vgg_weights(seed)
    write_keras_notop_h5(h5_path, weights=weights)
    write_matconvnet_mat(mat_path, weights=weights, weights_first=weights_first)
    return weights
