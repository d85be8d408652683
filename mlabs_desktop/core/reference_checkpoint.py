"""Reference checkpoints: the TF1 files Engstrom's fast-style-transfer writes and reads.

A reference checkpoint is what the seed's first lab leaves in ``outputs/`` and
its second lab downloads (layout in design.md)::

    checkpoint                        text index: model_checkpoint_path: "..."
    fns.ckpt.index                    tensor-bundle index
    fns.ckpt.data-00000-of-00001      the numbers
    fns.ckpt.meta                     the graph (optional; never needed here)

Its 48 variables are unnamed (``Variable``, ``Variable_1``, ... ``Variable_47``),
three per layer of `networks.LAYER_ORDER`: conv kernel, instance-norm shift,
instance-norm scale. Conv kernels are ``[h, w, in, out]``; conv-transpose
kernels ``[h, w, out, in]``, which is also Keras 3's ``Conv2DTranspose`` layout,
so every array maps to our ``classic`` network unchanged. Adam slots
(``Variable/Adam``...) and ``beta1_power``/``beta2_power`` are ignored.

Input scale. The reference trains on pixels / 255 but evaluates on raw 0..255
pixels. An imported checkpoint therefore becomes a model with
``input_scale=1.0`` and reproduces the reference's evaluate output. Writing a
model trained here (``input_scale=1/255``) folds the scale into conv1's kernel
(``conv(x / 255, k) == conv(x, k / 255)``; conv1 has no bias), so the written
checkpoint gives, on raw pixels, the same output as our model does: the two
networks are the same function, equal up to float rounding.

TensorFlow is imported only inside functions: this module imports without it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import atomic, paths
from .errors import UserError
from .library import PREVIEW, WEIGHTS, Library, Manifest, Model, read_manifest
from .weights import check_shapes, load_weight_arrays, save_weight_arrays

STATE_FILE = "checkpoint"
PREFIX_NAME = "fns.ckpt"
DATA_SUFFIX = ".data-00000-of-00001"
VARIABLE_COUNT = 48
CACHE_FOLDER = "checkpoints"
PREVIEW_MAX_SIDE = 512

_IGNORED = re.compile(r"(^|/)(beta[12]_power(_\d+)?|global_step)$|/Adam(_\d+)?$|/(Momentum|RMSProp)(_\d+)?$")
_UNNAMED = re.compile(r"^Variable(_(\d+))?$")


# ------------------------------------------------------------------ layout

def reference_names() -> list[tuple[str, str]]:
    """``(reference variable name, our Keras variable path)`` in the reference's order."""
    from .networks import LAYER_ORDER

    paths_ = []
    for layer in LAYER_ORDER:
        paths_ += [f"{layer}/kernel", f"{layer}_norm/shift", f"{layer}_norm/scale"]
    return [("Variable" if i == 0 else f"Variable_{i}", path) for i, path in enumerate(paths_)]


def reference_shapes() -> dict[str, tuple[int, ...]]:
    """Our variable path -> shape, for the ``classic`` network (same as the reference's)."""
    return dict(_classic_shapes())


@functools.lru_cache(maxsize=1)
def _classic_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    from .networks import weight_shapes

    return tuple(weight_shapes("classic").items())


def _tensorflow():
    try:
        from .devices import configure_tensorflow

        return configure_tensorflow()
    except ImportError:
        raise UserError("reading or writing TensorFlow checkpoints needs the tensorflow package "
                        "(pip install tensorflow)") from None


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(text.strip().splitlines()[:1])[:300]


# ------------------------------------------------------------------ locating

def _parse_state_file(path: Path) -> str | None:
    """``model_checkpoint_path`` from a ``checkpoint`` text index, or None if it has none."""
    try:
        if path.stat().st_size > 1 << 20:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    if not match:
        return None
    value = match.group(1)
    return re.sub(r"\\(.)", r"\1", value) or None


def _has_index(prefix: Path) -> bool:
    return Path(f"{prefix}.index").is_file()


def _strip_suffix(path: Path) -> Path:
    """``x.ckpt.index`` / ``x.ckpt.meta`` / ``x.ckpt.data-00000-of-00001`` -> ``x.ckpt``."""
    name = path.name
    for pattern in (r"\.index$", r"\.meta$", r"\.data-\d{5}-of-\d{5}$"):
        if re.search(pattern, name):
            return path.with_name(re.sub(pattern, "", name))
    return path


def _from_folder(folder: Path) -> Path:
    named = _parse_state_file(folder / STATE_FILE)
    if named:
        # The index often names a path on the training machine; try it, then the
        # same file name here, then whatever single checkpoint the folder holds.
        candidate = Path(named)
        if not candidate.is_absolute():
            candidate = folder / candidate
        for prefix in (candidate, folder / Path(named.replace("\\", "/")).name):
            if _has_index(prefix):
                return prefix
    indexes = sorted(folder.glob("*.index"))
    if len(indexes) == 1:
        return _strip_suffix(indexes[0])
    if not indexes:
        what = "its `checkpoint` file names " + repr(named) + " which is not there, and it" if named else "it"
        raise UserError(f"{folder} is not a TensorFlow checkpoint folder: {what} holds no *.index file "
                        f"(expected {STATE_FILE}, {PREFIX_NAME}.index, {PREFIX_NAME}{DATA_SUFFIX})")
    names = ", ".join(p.name for p in indexes)
    hint = f"its `checkpoint` file names {named!r}, which is not there" if named else \
        f"it has no usable `{STATE_FILE}` file to choose one"
    raise UserError(f"{folder} holds several checkpoints ({names}) and {hint}; "
                    f"pass the one you want as a prefix, e.g. {folder / _strip_suffix(indexes[-1]).name}")


def locate_reference_checkpoint(dir_or_prefix: str | os.PathLike) -> Path:
    """The checkpoint prefix (``.../fns.ckpt``) for a folder, a prefix, or one of its files."""
    path = Path(dir_or_prefix).expanduser()
    if path.is_dir():
        prefix = _from_folder(path)
    elif path.is_file() and path.name == STATE_FILE:
        prefix = _from_folder(path.parent)
    else:
        prefix = _strip_suffix(path)
        if not _has_index(prefix):
            if path.exists():
                raise UserError(f"{path} is not a TensorFlow checkpoint (no {prefix.name}.index beside it)")
            raise UserError(f"checkpoint not found: {path} (give the folder holding `{STATE_FILE}` and "
                            f"{PREFIX_NAME}.index, or the prefix such as .../{PREFIX_NAME})")
    if not list(prefix.parent.glob(f"{glob_escape(prefix.name)}.data-*-of-*")):
        raise UserError(f"checkpoint {prefix} is incomplete: {prefix.name}{DATA_SUFFIX} is missing "
                        f"(a reference checkpoint needs {prefix.name}.index and {prefix.name}{DATA_SUFFIX})")
    return prefix


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def is_reference_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a reference checkpoint (folder or prefix); reads no tensors."""
    path = Path(path).expanduser()
    if path.is_dir():
        return (path / STATE_FILE).is_file() or any(path.glob("*.index"))
    return _has_index(_strip_suffix(path)) or (path.is_file() and path.name == STATE_FILE)


# ------------------------------------------------------------------ reading

def _open_reader(prefix: Path):
    tf = _tensorflow()
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        return reader, reader.get_variable_to_shape_map()
    except UserError:
        raise
    except Exception as exc:  # TF raises many types (DataLossError, NotFoundError, ValueError...)
        raise UserError(f"cannot read checkpoint {prefix}: not a readable TensorFlow checkpoint "
                        f"({_short(exc)})") from None


def read_reference_checkpoint(dir_or_prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Classic-network weights, keyed by our Keras variable paths, from a reference checkpoint."""
    prefix = locate_reference_checkpoint(dir_or_prefix)
    reader, shapes = _open_reader(prefix)
    names = reference_names()
    expected = reference_shapes()
    unnamed = {k for k in shapes if _UNNAMED.match(k)}
    if not unnamed:
        sample = ", ".join(sorted(k for k in shapes if not _IGNORED.search(k))[:4]) or "none"
        raise UserError(f"{prefix} is not a fast-style-transfer checkpoint: it has no Variable, "
                        f"Variable_1, ... tensors (its variables include: {sample})")
    extra = sorted(unnamed - {n for n, _ in names}, key=lambda k: int(_UNNAMED.match(k).group(2) or 0))
    missing = [n for n, _ in names if n not in shapes]
    if missing or extra:
        detail = f"missing {', '.join(missing[:3])}" if missing else f"it also has {', '.join(extra[:3])}"
        raise UserError(f"{prefix} holds a different network: the reference transform network has "
                        f"{VARIABLE_COUNT} variables (Variable ... Variable_{VARIABLE_COUNT - 1}), "
                        f"this checkpoint has {len(unnamed)} ({detail})")
    for tf_name, path in names:
        if tuple(shapes[tf_name]) != tuple(expected[path]):
            raise UserError(f"{prefix} holds a different network: {tf_name} ({path}) has shape "
                            f"{list(shapes[tf_name])}, the reference network needs {list(expected[path])}")
    arrays: dict[str, np.ndarray] = {}
    try:
        for tf_name, path in names:
            arrays[path] = np.asarray(reader.get_tensor(tf_name))
    except Exception as exc:
        raise UserError(f"cannot read checkpoint {prefix}: the data is damaged ({_short(exc)})") from None
    for tf_name, path in names:
        array = arrays[path]
        if array.dtype.kind != "f":
            raise UserError(f"{prefix}: {tf_name} holds {array.dtype} data, not floating point")
        arrays[path] = array.astype(np.float32, copy=False)
    check_shapes(arrays, expected, str(prefix))  # also rejects NaN / infinity
    return arrays


# ------------------------------------------------------------------ importing

def _checkpoint_digest(prefix: Path) -> str:
    digest = hashlib.sha256()
    files = [Path(f"{prefix}.index")] + sorted(prefix.parent.glob(f"{glob_escape(prefix.name)}.data-*-of-*"))
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def render_preview(arrays: Mapping[str, np.ndarray], input_scale: float, image: Path | None = None) -> np.ndarray:
    """The classic network with these weights applied to ``image`` (the app's sample by default), as uint8."""
    from .. import resources
    from . import images
    from .networks import build_transform_network
    from .steps import make_forward
    from .stylize import run_network
    from .weights import assign

    rgb = images.read_rgb(image or resources.sample_image(), max_size=PREVIEW_MAX_SIDE)
    net = build_transform_network("classic", input_scale)
    assign(net, arrays, "reference checkpoint")
    return images.to_uint8(run_network(make_forward(net), rgb))


def import_reference_checkpoint(dir_or_prefix: str | os.PathLike, name: str,
                                library: Library | None = None) -> Model:
    """Import a reference checkpoint into the library as a ``classic`` model (input_scale 1.0)."""
    from . import images

    name = (name or "").strip()
    if not name:
        raise UserError("give the imported model a name (--name NAME)")
    library = library or Library()
    prefix = locate_reference_checkpoint(dir_or_prefix)
    if library.find(name):
        raise UserError(f"a model named '{name}' already exists; choose another --name")
    arrays = read_reference_checkpoint(prefix)
    preview = render_preview(arrays, 1.0)
    manifest = Manifest(
        name=name, architecture="classic", input_scale=1.0, state="finished",
        provenance={"source": "reference-checkpoint", "path": str(prefix.resolve()),
                    "sha256": _checkpoint_digest(prefix)},
    )

    def fill(folder: Path) -> None:
        save_weight_arrays(folder / WEIGHTS, arrays)
        images.save_image(folder / PREVIEW, preview)

    return library.create(manifest, fill)


def checkpoint_as_model(dir_or_prefix: str | os.PathLike) -> Model:
    """A reference checkpoint as a temporary model folder (not in the library), cached by content.

    The folder lives under ``<cache>/checkpoints/<sha256 of the files>``, so the
    second call with the same files returns at once, and a checkpoint that was
    overwritten by further training gets a fresh entry.
    """
    prefix = locate_reference_checkpoint(dir_or_prefix)
    try:
        key = _checkpoint_digest(prefix)[:24]
    except OSError as exc:
        raise UserError(f"cannot read checkpoint {prefix}: {exc.strerror or exc}") from None
    final = paths.cache_dir() / CACHE_FOLDER / key
    cached = _cached_model(final)
    if cached:
        return cached
    arrays = read_reference_checkpoint(prefix)
    label = prefix.parent.name or prefix.name
    manifest = Manifest(
        name=f"{label} (reference checkpoint)", architecture="classic", input_scale=1.0, state="finished",
        provenance={"source": "reference-checkpoint", "path": str(prefix.resolve()), "sha256": key},
    )
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic.staging_dir(final) as staging:
            save_weight_arrays(staging / WEIGHTS, arrays)
            atomic.write_text(staging / "manifest.yaml", manifest.to_yaml())
    except OSError:
        cached = _cached_model(final)  # another process built the same entry first
        if cached:
            return cached
        raise
    return Model(final, manifest)


def _cached_model(folder: Path) -> Model | None:
    if not (folder / WEIGHTS).is_file():
        return None
    try:
        model = Model(folder, read_manifest(folder))
        load_weight_arrays(folder / WEIGHTS)
    except UserError:
        shutil.rmtree(folder, ignore_errors=True)  # a damaged cache entry is rebuilt
        return None
    return model


def open_model_or_checkpoint(name_or_path: str | os.PathLike, library: Library | None = None) -> Model:
    """A library model by name, a model folder, or a reference checkpoint (folder or prefix)."""
    library = library or Library()
    try:
        return library.get(name_or_path)
    except UserError:
        path = Path(name_or_path).expanduser()
        if not (path.exists() or is_reference_checkpoint(path)):
            raise
    if not is_reference_checkpoint(path):
        raise UserError(f"{path} is neither a model folder (no manifest.yaml) nor a reference "
                        f"checkpoint (no `{STATE_FILE}` or *.index file)")
    return checkpoint_as_model(path)


# ------------------------------------------------------------------ writing

def _arrays_for_export(model_or_arrays: Any, input_scale: float | None) -> tuple[dict[str, np.ndarray], float]:
    if isinstance(model_or_arrays, Model):
        manifest = model_or_arrays.manifest
        if manifest.architecture != "classic":
            raise UserError("only classic models can be written as reference checkpoints; "
                            f"this one is {manifest.architecture}")
        scale = manifest.input_scale if input_scale is None else input_scale
        return model_or_arrays.load_weights(), float(scale)
    if hasattr(model_or_arrays, "weights") and hasattr(model_or_arrays, "get_layer"):  # a Keras model
        from .weights import model_arrays

        architecture = getattr(model_or_arrays, "architecture", None)
        if architecture != "classic":
            raise UserError("only classic models can be written as reference checkpoints; "
                            f"this one is {architecture}")
        if input_scale is None:
            input_scale = float(model_or_arrays.get_layer("input_scale").scale)
        return model_arrays(model_or_arrays), float(input_scale)
    if isinstance(model_or_arrays, Mapping):
        scale = 1.0 if input_scale is None else input_scale
        return {k: np.asarray(v) for k, v in model_or_arrays.items()}, float(scale)
    raise TypeError("expected a Model, a Keras model or a mapping of arrays, "
                    f"not {type(model_or_arrays).__name__}")


def reference_arrays(model_or_arrays: Any, input_scale: float | None = None) -> dict[str, np.ndarray]:
    """Reference variable name -> array, as the reference network evaluates them (raw 0..255 input).

    ``input_scale`` (taken from the model when not given; 1.0 for plain arrays)
    is folded into conv1's kernel.
    """
    arrays, scale = _arrays_for_export(model_or_arrays, input_scale)
    try:
        check_shapes(arrays, reference_shapes(), "the model")
    except UserError as exc:
        raise UserError(f"only classic models can be written as reference checkpoints: {exc}") from None
    if not 0 < scale <= 1:
        raise UserError(f"input_scale must be in (0, 1], not {scale}")
    out = {}
    for tf_name, path in reference_names():
        array = np.asarray(arrays[path], np.float32)
        if path == "conv1/kernel" and scale != 1.0:
            array = (array * np.float32(scale)).astype(np.float32)
        out[tf_name] = array
    return out


def write_reference_checkpoint(model_or_arrays: Any, out_dir: str | os.PathLike,
                               input_scale: float | None = None) -> Path:
    """Write ``checkpoint``, ``fns.ckpt.index`` and ``fns.ckpt.data-00000-of-00001`` into ``out_dir``.

    The files are a genuine TF1 ``Saver`` checkpoint of the 48 reference variables
    (no optimizer slots, no ``.meta``), so Engstrom's evaluate.py restores them
    with ``saver.restore(sess, ckpt.model_checkpoint_path)``. Files are built in
    a temporary folder inside ``out_dir`` and moved into place, the ``checkpoint``
    index last, naming the prefix relatively (``fns.ckpt``). Returns the prefix.
    """
    tensors = reference_arrays(model_or_arrays, input_scale)
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    tf = _tensorflow()
    v1 = tf.compat.v1
    tmp = Path(tempfile.mkdtemp(prefix=".staging-fns-ckpt.", dir=out))
    try:
        graph = tf.Graph()
        with graph.as_default(), tf.device("/CPU:0"):
            variables = {}
            for tf_name, array in tensors.items():
                holder = v1.placeholder(tf.float32, array.shape)
                variables[tf_name] = (v1.Variable(holder, name=tf_name, dtype=tf.float32), holder)
            saver = v1.train.Saver({k: v for k, (v, _) in variables.items()}, max_to_keep=None)
            init = v1.global_variables_initializer()
        config = v1.ConfigProto(device_count={"GPU": 0})
        with v1.Session(graph=graph, config=config) as sess:
            sess.run(init, {holder: tensors[k] for k, (_, holder) in variables.items()})
            saver.save(sess, str(tmp / PREFIX_NAME), write_meta_graph=False, write_state=False)
        written = [f"{PREFIX_NAME}{DATA_SUFFIX}", f"{PREFIX_NAME}.index"]
        for name in written:
            if not (tmp / name).is_file():
                raise UserError(f"TensorFlow did not write {name} (found {sorted(p.name for p in tmp.iterdir())})")
        (tmp / STATE_FILE).write_text(f'model_checkpoint_path: "{PREFIX_NAME}"\n'
                                      f'all_model_checkpoint_paths: "{PREFIX_NAME}"\n', encoding="utf-8")
        for name in written + [STATE_FILE]:
            with open(tmp / name, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp / name, out / name)
        stale_meta = out / f"{PREFIX_NAME}.meta"  # a graph from an earlier run would not match these files
        stale_meta.unlink(missing_ok=True)
    except UserError:
        raise
    except OSError as exc:
        raise UserError(f"cannot write the reference checkpoint into {out}: {exc.strerror or exc}") from None
    except Exception as exc:  # TF errors (e.g. a full disk during save)
        raise UserError(f"cannot write the reference checkpoint into {out}: {_short(exc)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / PREFIX_NAME
