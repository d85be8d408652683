"""Weight files: plain NumPy arrays in ``.npz``, keyed by Keras variable path.

``.npz`` is read with ``allow_pickle=False``, so a weights file from a stranger
can hold numbers and nothing else. Shapes are checked against the declared
architecture before anything is assigned.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from mlabs_desktop.core import atomic
from mlabs_desktop.core.errors import UserError

MAX_WEIGHTS_BYTES = 512 << 20


def require_finite(arrays: Mapping[str, np.ndarray], what: str, writing: bool = False) -> None:
    """Refuse weights holding NaN or infinity: a model that paints nothing must never replace a good one."""
    bad = sorted(name for name, value in arrays.items()
                 if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.isfinite(value).all())
    if bad:
        then = ("nothing was written, so the last good weights are kept" if writing
                else "the file is damaged; train the model again or import it again")
        raise UserError(f"{what}: the weights hold values that are not finite (NaN or infinity, in "
                        f"{', '.join(bad[:3])}{' and more' if len(bad) > 3 else ''}); {then}")


def save_weight_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Atomically write ``arrays`` (name -> array) to ``path``; never arrays that are not finite."""
    require_finite(arrays, str(path), writing=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic.write_with(path, write)


def load_weight_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.stat().st_size > MAX_WEIGHTS_BYTES:
            raise UserError(f"{path} is too large to be a style model ({path.stat().st_size} bytes)")
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        if declared > MAX_WEIGHTS_BYTES:
            raise UserError(f"{path} declares {declared} bytes of weights; refusing to load it")
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise UserError(f"weights file missing: {path}") from None
    except UserError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"damaged weights file {path}: {exc}") from None


def model_arrays(model) -> dict[str, np.ndarray]:
    """A Keras model's weights as name -> array."""
    return {v.path: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in model.weights}


def check_shapes(arrays: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]], source: str) -> None:
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        raise UserError(f"{source} does not match its declared architecture ({detail})")
    for name, shape in expected.items():
        array = arrays[name]
        if tuple(array.shape) != tuple(shape):
            raise UserError(f"{source}: weight {name} has shape {tuple(array.shape)}, "
                            f"the architecture needs {tuple(shape)}")
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise UserError(f"{source}: weight {name} is not finite floating-point data")


def assign(model, arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Check shapes, then set every model weight from ``arrays``."""
    check_shapes(arrays, {v.path: tuple(v.shape) for v in model.weights}, source)
    for variable in model.weights:
        variable.assign(arrays[variable.path].astype(variable.dtype))
