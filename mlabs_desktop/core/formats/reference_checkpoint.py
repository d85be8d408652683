"""Reference checkpoints: the TF1 files Engstrom's fast-style-transfer writes and reads.

A reference checkpoint is what the 2017 MachineLabs training lab leaves in ``outputs/`` and
its second lab downloads. `reference_format` says what it holds (files and
variables), `reference_reader` finds and reads one, `reference_writer` writes a
classic model as one. This module brings them into the library: imported as a
model (`import_reference_checkpoint`) or used in place as a cached temporary
model (`checkpoint_as_model`, `open_model_or_checkpoint`).

Input scale. The reference trains on pixels / 255 but evaluates on raw 0..255
pixels. An imported checkpoint therefore becomes a model with
``input_scale=1.0`` and reproduces the reference's evaluate output (writing
folds the scale back into conv1: see `reference_writer`).

TensorFlow is imported only inside functions: this module imports without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from mlabs_desktop.core import atomic, paths
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.formats.converted import add_converted_model, free_name
from mlabs_desktop.core.library.store import WEIGHTS, Library, Manifest, Model, read_manifest
from mlabs_desktop.core.formats.reference_format import STATE_FILE
from mlabs_desktop.core.formats.reference_reader import (glob_escape, is_reference_checkpoint,
                                                         locate_reference_checkpoint, read_reference_checkpoint)
from mlabs_desktop.core.networks.weights import load_weight_arrays, save_weight_arrays

CACHE_FOLDER = "checkpoints"


def _checkpoint_digest(prefix: Path) -> str:
    digest = hashlib.sha256()
    files = [Path(f"{prefix}.index")] + sorted(prefix.parent.glob(f"{glob_escape(prefix.name)}.data-*-of-*"))
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def import_reference_checkpoint(dir_or_prefix: str | os.PathLike, name: str,
                                library: Library | None = None) -> Model:
    """Import a reference checkpoint into the library as a ``classic`` model (input_scale 1.0)."""

    if not (name or "").strip():
        raise UserError.worded("give the imported model a name ({voice.name})")
    library = library or Library()
    prefix = locate_reference_checkpoint(dir_or_prefix)
    name = free_name(library, name)  # answered before the checkpoint is read
    return add_converted_model(library, name, read_reference_checkpoint(prefix), architecture="classic",
                               input_scale=1.0, provenance={"source": "reference-checkpoint",
                                                            "path": str(prefix.resolve()),
                                                            "sha256": _checkpoint_digest(prefix)})


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
    """The cache entry, or None; a damaged one (a file lost, a file in its place) is removed to be rebuilt."""
    if not (folder.exists() or folder.is_symlink()):
        return None
    try:
        model = Model(folder, read_manifest(folder))
        load_weight_arrays(folder / WEIGHTS)
        return model
    except (UserError, OSError):
        pass
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            folder.unlink()
    return None


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
