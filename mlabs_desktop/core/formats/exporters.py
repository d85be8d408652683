"""Export a library model for use outside the app.

Formats (`FORMATS`):

``bundle``
    A ``.mlstyle`` zip for sharing with other users of this app (`bundles`).
``savedmodel``
    A TensorFlow SavedModel folder. Its ``serving_default`` signature takes
    ``image``: float32 ``[N, H, W, 3]`` RGB in 0..255, **any** H and W (1 or
    more): the reflection padding to a multiple of 4 (after edge padding small
    images up to 16 pixels), the network, the crop back to H x W and the clip
    to 0..255 all run inside the exported graph, exactly as `Stylizer.run`
    does them. It returns ``{"stylized": float32 [N, H, W, 3] in 0..255}``. The
    model's ``input_scale`` is baked in. Load it with ``tf.saved_model.load``;
    no code from this app is needed.
``tflite``
    The same function as a TensorFlow Lite flatbuffer with only builtin ops.
    By default the input is ``[1, H, W, 3]`` with dynamic H and W: call
    ``interpreter.resize_tensor_input(input, [1, h, w, 3])`` then
    ``allocate_tensors()`` for each size (or use the ``serving_default``
    signature runner, which resizes by itself). ``size=(h, w)`` fixes the
    input shape instead, for runtimes and delegates that need static shapes.
    If the dynamic conversion ever fails, the export falls back to a fixed
    `FALLBACK_SIZE` and says so through ``on_warning``.
``onnx``
    One ``.onnx`` file (`onnx_export`): channels-first ``[N, 3, H, W]`` in 0..255, H and W
    multiples of 4, for onnxruntime and the other runtimes that read ONNX.
``reference-checkpoint``
    ``classic`` models only: the TF1 checkpoint layout Engstrom's evaluate.py
    and the 2017 MachineLabs application lab read (written by `reference_checkpoint`).

Every export appears atomically: files through a temporary file beside the
target, folders (SavedModel, a new reference checkpoint) built under a hidden
temporary name and renamed, so a killed export leaves the previous export or
the new one (or, between the two renames of a replaced folder, none), plus
hidden temporaries that the next export to the same place sweeps away. A full
disk is a `DiskFullError` naming the target.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterator

from mlabs_desktop.core import atomic, outputs
from mlabs_desktop.core.errors import UserError, disk_full_as_user_error
from mlabs_desktop.core.library.store import Model
from mlabs_desktop.core.filenames import slugify

log = logging.getLogger(__name__)

FORMATS = ("bundle", "savedmodel", "tflite", "onnx", "reference-checkpoint")
FALLBACK_SIZE = (1024, 1024)
SIGNATURE = "serving_default"
INPUT_NAME = "image"
OUTPUT_NAME = "stylized"
# What the network needs, as in inference.run_network.
MIN_SIDE = 16
MULTIPLE = 4

WarnFn = Callable[[str], None]
# Formats written as a folder rather than one file.
FOLDER_FORMATS = ("savedmodel", "reference-checkpoint")


def default_output_name(model: Model, fmt: str) -> str:
    """A file or folder name for ``model`` exported as ``fmt``."""
    stem = slugify(model.name)
    return {"bundle": f"{stem}.mlstyle", "savedmodel": f"{stem}-savedmodel", "tflite": f"{stem}.tflite",
            "onnx": f"{stem}.onnx", "reference-checkpoint": f"{stem}-checkpoint"}[fmt]


def check_export(model: Model, fmt: str, out_path: str | os.PathLike, *, size: tuple[int, int] | None = None,
                 overwrite: bool = False) -> Path:
    """What `export_model` would write, or its `UserError` for a wrong format, size or taken output;
    no network is built, so a command can answer before its engine starts."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if size is not None and fmt != "tflite":
        raise UserError.worded("{voice.size} only applies to the tflite format")
    out = export_target(model, fmt, Path(out_path).expanduser())
    if not (fmt in FOLDER_FORMATS and out.is_file()):  # that one gets its own error when writing
        outputs.refuse_replacing(replaced_by_export(fmt, out), overwrite)
    return out


def export_model(model: Model, fmt: str, out_path: str | os.PathLike, *,
                 size: tuple[int, int] | None = None, on_warning: WarnFn | None = None,
                 overwrite: bool = False) -> Path:
    """Export ``model`` as ``fmt`` to ``out_path``; return what was written.

    For ``bundle`` and ``tflite``, an existing folder as ``out_path`` receives a
    file named after the model. ``size`` (height, width) only applies to
    ``tflite``. Files already there are replaced only with ``overwrite``
    (`outputs.WouldReplace` otherwise). Raises `UserError` for anything the user
    can fix, and `NotImplementedError` when a format's module is not available.
    """
    out = check_export(model, fmt, out_path, size=size, overwrite=overwrite)
    if fmt == "bundle":
        from mlabs_desktop.core.formats.bundle_writer import export_bundle

        return export_bundle(model, out)
    if fmt == "savedmodel":
        return export_savedmodel(model, out)
    if fmt == "tflite":
        return export_tflite(model, out, size=size, on_warning=on_warning)
    if fmt == "onnx":
        from mlabs_desktop.core.formats.onnx_export import export_onnx

        return export_onnx(model, out)
    return export_reference_checkpoint(model, out)


def export_target(model: Model, fmt: str, out: Path) -> Path:
    """The file or folder an export to ``out`` writes: single files get the model's name in a folder."""
    if fmt not in ("bundle", "tflite", "onnx"):
        return out
    if out.is_dir():
        return out / default_output_name(model, fmt)
    return out if out.suffix else out.with_name(out.name + Path(default_output_name(model, fmt)).suffix)


def replaced_by_export(fmt: str, out: Path) -> list[Path]:
    """What an export to ``out`` (from `export_target`) would replace."""
    if fmt == "reference-checkpoint" and out.is_dir() and not out.is_symlink():
        from mlabs_desktop.core.formats.reference_format import REFERENCE_FILES

        return [out / name for name in REFERENCE_FILES if outputs.occupied(out / name)]
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        return []  # an empty folder loses nothing
    return [out] if outputs.occupied(out) else []


# ------------------------------------------------------------------ TensorFlow

def _tensorflow():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UserError("SavedModel and TFLite export need the TensorFlow backend; "
                        f"run with KERAS_BACKEND=tensorflow (now {keras.backend.backend()})")
    from mlabs_desktop.core.hardware.devices import configure_tensorflow

    return configure_tensorflow()


def _export_network(model: Model):
    """The model's network with TFLite-friendly but numerically identical upsampling.

    Keras's ``UpSampling2D`` lowers to reshapes that lose the channel count,
    which the TFLite converter cannot take into a convolution; a nearest
    ``tf.image.resize`` by exactly 2 reads the same pixels (floor(i / 2)). All
    other layers are the very same layer objects, holding the same weights.
    """
    tf = _tensorflow()
    import keras

    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import assign

    class NearestUpsample(keras.layers.Layer):
        def call(self, x):
            shape = tf.shape(x)
            return tf.image.resize(x, tf.stack([shape[1] * 2, shape[2] * 2]), method="nearest")

    def swap(layer):
        if (isinstance(layer, keras.layers.UpSampling2D) and tuple(layer.size) == (2, 2)
                and layer.interpolation == "nearest"):
            return NearestUpsample(name=layer.name)
        return layer

    net = build_transform_network(model.manifest.architecture, model.manifest.input_scale)
    assign(net, model.load_weights(), f"model '{model.name}'")
    return keras.models.clone_model(net, clone_function=swap)


def _serving_function(net):
    """Pad (as `Stylizer.run` does), run, crop and clip, all inside the graph."""
    tf = _tensorflow()

    def source_index(n):
        # Edge-pad to MIN_SIDE, then reflect-pad to a multiple of 4, as one gather index.
        padded = tf.maximum(n, MIN_SIDE)
        total = (padded + MULTIPLE - 1) // MULTIPLE * MULTIPLE
        j = tf.range(total)
        reflected = tf.where(j < padded, j, 2 * (padded - 1) - j)
        return tf.minimum(reflected, n - 1)

    def serve(image):
        h, w = tf.shape(image)[1], tf.shape(image)[2]
        x = tf.gather(image, source_index(h), axis=1)
        x = tf.gather(x, source_index(w), axis=2)
        y = net(x, training=False)[:, :h, :w, :]
        return {OUTPUT_NAME: tf.clip_by_value(y, 0.0, 255.0)}

    return serve


def _write_savedmodel(net, folder: Path, shape: list[int | None]) -> None:
    tf = _tensorflow()

    # A plain tf.Module tracking each weight's tf.Variable once. (keras.export's
    # ExportArchive tracks both the Keras and the tf.Variable objects and so
    # writes every weight twice: a SavedModel twice the size.)
    module = tf.Module()
    module.weights = [getattr(v, "value", v) for v in net.weights]
    module.serve = tf.function(_serving_function(net),
                               input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    # No device scope: the graph must not pin the user's runtime to a device.
    tf.saved_model.save(module, str(folder), signatures={SIGNATURE: module.serve})


@contextlib.contextmanager
def _build_dir(out: Path) -> Iterator[Path]:
    """A hidden temporary folder beside ``out`` to build the export in; removed afterwards.

    Temporaries that killed exports left there are swept first. A full
    disk becomes a `DiskFullError` naming ``out``, another failed write a `UserError`.
    """
    atomic.sweep_temporaries(out.parent)
    try:
        with disk_full_as_user_error(out):
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = atomic.temp_dir(out.parent, out.name)
    except OSError as exc:
        raise UserError(f"cannot write into {out.parent}: {exc.strerror or exc}") from None
    try:
        with disk_full_as_user_error(out):
            yield tmp
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace_folder(tmp: Path, out: Path, is_export: Callable[[Path], bool], what: str) -> None:
    """Move the finished folder ``tmp`` to ``out``; an older export there (``is_export``) is replaced."""
    old = None
    if out.exists() or out.is_symlink():
        if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
            out.rmdir()
        elif out.is_dir() and not out.is_symlink() and is_export(out):
            old = atomic.temp_dir(out.parent, out.name)
            os.replace(out, old / out.name)
        else:
            raise UserError.worded("{out} already exists and is not {what}; choose another {voice.out}", out=out, what=what)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _is_savedmodel(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file()


def export_savedmodel(model: Model, out_dir: str | os.PathLike) -> Path:
    """Write a SavedModel folder at ``out_dir`` (replacing an earlier SavedModel there)."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; a SavedModel is a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_savedmodel(out):
        raise UserError.worded("{out} already exists and is not a SavedModel; choose another {voice.out}", out=out)
    with _build_dir(out) as tmp:
        net = _export_network(model)
        _write_savedmodel(net, tmp / "model", [None, None, None, 3])
        _replace_folder(tmp / "model", out, _is_savedmodel, "a SavedModel")
    return out


def _convert(tf, folder: Path) -> bytes:
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder), signature_keys=[SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def export_tflite(model: Model, out_path: str | os.PathLike, *, size: tuple[int, int] | None = None,
                  on_warning: WarnFn | None = None) -> Path:
    """Write a ``.tflite`` file: dynamic [1, H, W, 3] input, or fixed ``size`` = (height, width)."""
    tf = _tensorflow()
    out = Path(out_path).expanduser()
    if not out.suffix:
        out = out.with_name(out.name + ".tflite")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise UserError.worded("{voice.size} must be two positive numbers (height, width), not {size}", size=size)
    with _build_dir(out) as tmp:
        net = _export_network(model)
        shape = [1, None, None, 3] if size is None else [1, int(size[0]), int(size[1]), 3]
        _write_savedmodel(net, tmp / "dynamic", shape)
        try:
            blob = _convert(tf, tmp / "dynamic")
        except Exception as exc:  # converter failures come as many types
            if size is not None:
                raise UserError(f"TFLite conversion failed: {' '.join(str(exc).split())[:300]}") from None
            message = (f"TFLite conversion with a dynamic image size failed ({type(exc).__name__}); "
                       f"exported with a fixed {FALLBACK_SIZE[0]}x{FALLBACK_SIZE[1]} input instead")
            (on_warning or log.warning)(message)
            _write_savedmodel(net, tmp / "fixed", [1, *FALLBACK_SIZE, 3])
            blob = _convert(tf, tmp / "fixed")
        with atomic.atomic_path(out) as part:
            part.write_bytes(blob)
    return out


def tflite_interpreter(path_or_bytes: str | os.PathLike | bytes):
    """A TFLite interpreter for an exported file (TensorFlow's own, deprecation warning hushed)."""
    tf = _tensorflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(path_or_bytes, bytes):
            return tf.lite.Interpreter(model_content=path_or_bytes)
        return tf.lite.Interpreter(model_path=str(path_or_bytes))


def run_tflite(interpreter, rgb) -> "object":
    """Run an exported dynamic-size TFLite model on one float32 (H, W, 3) image in 0..255."""
    import numpy as np

    inp = interpreter.get_input_details()[0]
    batch = np.asarray(rgb, np.float32)[None]
    if tuple(inp["shape"]) != batch.shape:
        interpreter.resize_tensor_input(inp["index"], list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


# ------------------------------------------------------- reference checkpoint

def export_reference_checkpoint(model: Model, out_dir: str | os.PathLike) -> Path:
    """Write the TF1 reference layout (``checkpoint``, ``fns.ckpt.*``) into ``out_dir``; return the folder."""
    try:
        from mlabs_desktop.core.formats.reference_writer import write_reference_checkpoint
    except ImportError as exc:  # the module, or the function, does not exist in this build
        raise NotImplementedError(f"reference-checkpoint export is not available ({exc})") from None
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; a reference checkpoint is written into a folder")
    if out.is_dir() and not _holds_only_reference_files(out):
        # A folder with other files too (the 2017 MachineLabs lab's outputs/): the writer replaces its
        # three files one by one, the `checkpoint` index last.
        with disk_full_as_user_error(out):
            write_reference_checkpoint(model, out)
        return out
    with _build_dir(out) as tmp:
        write_reference_checkpoint(model, tmp / "checkpoint")
        _replace_folder(tmp / "checkpoint", out, _holds_only_reference_files, "a reference checkpoint")
    return out


def _holds_only_reference_files(folder: Path) -> bool:
    """Whether replacing the whole folder loses nothing but an earlier reference checkpoint."""
    from mlabs_desktop.core.formats.reference_format import REFERENCE_FILES

    return all(entry.name in REFERENCE_FILES for entry in folder.iterdir())
