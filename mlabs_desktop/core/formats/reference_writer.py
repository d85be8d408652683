"""Writing a classic model as a reference checkpoint that Engstrom's evaluate.py restores.

Input scale. The reference trains on pixels / 255 but evaluates on raw 0..255
pixels. Writing a model trained here (``input_scale=1/255``) folds the scale
into conv1's kernel (``conv(x / 255, k) == conv(x, k / 255)``; conv1 has no
bias), so the written checkpoint gives, on raw pixels, the same output as our
model does: the two networks are the same function, equal up to float rounding.

TensorFlow is imported only inside functions: this module imports without it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import Model
from mlabs_desktop.core.formats.reference_format import (DATA_SUFFIX, PREFIX_NAME, STATE_FILE, load_tensorflow,
                                                         reference_names, reference_shapes, short_error)
from mlabs_desktop.core.networks.weights import check_shapes


def _arrays_for_export(model_or_arrays: Any, input_scale: float | None) -> tuple[dict[str, np.ndarray], float]:
    if isinstance(model_or_arrays, Model):
        manifest = model_or_arrays.manifest
        if manifest.architecture != "classic":
            raise UserError("only classic models can be written as reference checkpoints; "
                            f"this one is {manifest.architecture}")
        scale = manifest.input_scale if input_scale is None else input_scale
        return model_or_arrays.load_weights(), float(scale)
    if hasattr(model_or_arrays, "weights") and hasattr(model_or_arrays, "get_layer"):  # a Keras model
        from mlabs_desktop.core.networks.weights import model_arrays

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
    tf = load_tensorflow()
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
        raise UserError(f"cannot write the reference checkpoint into {out}: {short_error(exc)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / PREFIX_NAME
