"""Finding and reading a reference checkpoint: a folder, a prefix or one of its files -> classic-network weights.

The checks name what is wrong in words a user can act on: a missing data file,
several checkpoints in one folder, a different network, damaged data.
TensorFlow is imported only inside functions: this module imports without it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.formats.reference_format import (DATA_SUFFIX, IGNORED_VARIABLES, PREFIX_NAME, STATE_FILE,
                                                         UNNAMED_VARIABLE, VARIABLE_COUNT, load_tensorflow,
                                                         reference_names, reference_shapes, short_error)
from mlabs_desktop.core.networks.weights import check_shapes


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


def _open_reader(prefix: Path):
    tf = load_tensorflow()
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        return reader, reader.get_variable_to_shape_map()
    except UserError:
        raise
    except Exception as exc:  # TF raises many types (DataLossError, NotFoundError, ValueError...)
        raise UserError(f"cannot read checkpoint {prefix}: not a readable TensorFlow checkpoint "
                        f"({short_error(exc)})") from None


def read_reference_checkpoint(dir_or_prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Classic-network weights, keyed by our Keras variable paths, from a reference checkpoint."""
    prefix = locate_reference_checkpoint(dir_or_prefix)
    reader, shapes = _open_reader(prefix)
    names = reference_names()
    expected = reference_shapes()
    unnamed = {k for k in shapes if UNNAMED_VARIABLE.match(k)}
    if not unnamed:
        sample = ", ".join(sorted(k for k in shapes if not IGNORED_VARIABLES.search(k))[:4]) or "none"
        raise UserError(f"{prefix} is not a fast-style-transfer checkpoint: it has no Variable, "
                        f"Variable_1, ... tensors (its variables include: {sample})")
    extra = sorted(unnamed - {n for n, _ in names}, key=lambda k: int(UNNAMED_VARIABLE.match(k).group(2) or 0))
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
        raise UserError(f"cannot read checkpoint {prefix}: the data is damaged ({short_error(exc)})") from None
    for tf_name, path in names:
        array = arrays[path]
        if array.dtype.kind != "f":
            raise UserError(f"{prefix}: {tf_name} holds {array.dtype} data, not floating point")
        arrays[path] = array.astype(np.float32, copy=False)
    check_shapes(arrays, expected, str(prefix))  # also rejects NaN / infinity
    return arrays
