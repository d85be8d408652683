"""Moving models in and out of the library: one function per format.

Folders today; ``.mlstyle`` bundles plug in beside them later (an importer that
recognises the file, an exporter registered in `EXPORT_FORMATS`). No widgets
here: the main window's File menu, its drops and the Library's Export button use these.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from ..core.errors import UserError
from ..core.library import MANIFEST, WEIGHTS, Library, Model, read_manifest
from ..core.model_store import copy_model_to
from .common import MODEL_BUNDLE_SUFFIX


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def import_model_folder(source: Path, library: Library) -> Model:
    """Copy a model folder into the library, built in a hidden staging folder and renamed into place.

    `Library.create` does the staging (`core.atomic.staging_dir`), picks a free
    folder name and holds the library lock, like a model created by training.
    """
    manifest = read_manifest(source)   # validates format version, name, architecture
    if not (source / WEIGHTS).is_file():
        raise UserError(f"{source} has no {WEIGHTS}; it is not a complete model")
    if library.find(manifest.name):
        raise UserError(f"a model named '{manifest.name}' is already in the library; "
                        "rename or delete that one first")

    def fill(staging: Path) -> None:
        # Hidden files (part files, .DS_Store) stay behind; the staging folder exists already.
        shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))

    return library.create(manifest, fill)


def export_model_folder(model: Model, parent: Path) -> Path:
    """Copy a model into ``parent/<model folder name>``; an existing folder is never merged into."""
    target = parent / model.folder.name
    if target.exists():
        raise UserError(f"{target} already exists; choose another folder or remove it first")
    copy_model_to(model, target)
    return target


def import_model(source: Path, library: Library) -> Model:
    if is_model_folder(source):
        return import_model_folder(source, library)
    if source.suffix.lower() == MODEL_BUNDLE_SUFFIX:
        raise UserError(f"{source.name}: {MODEL_BUNDLE_SUFFIX} bundles cannot be imported yet; "
                        "import the model folder instead")
    raise UserError(f"{source} is not a model folder (it has no {MANIFEST})")


EXPORT_FORMATS: dict[str, Callable[[Model, Path], Path]] = {"folder": export_model_folder}
