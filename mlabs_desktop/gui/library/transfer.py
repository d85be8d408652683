"""Moving models in and out of the library: one function per format.

Imports recognise model folders, ``.mlstyle`` bundles (file or URL) and
reference (TF1) checkpoints; exports are registered in `EXPORT_FORMATS`. No
widgets here: the main window's File menu, its drops and the Library's Export
button use these.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import MANIFEST, WEIGHTS, Library, Model, read_manifest
from mlabs_desktop.core.training.model_writer import copy_model_to
from mlabs_desktop.gui.kit.common import MODEL_BUNDLE_SUFFIX


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


def export_model_folder(model: Model, parent: Path, overwrite: bool = False) -> Path:
    """Copy a model into ``parent/<model folder name>``; an existing folder is never merged into."""
    target = parent / model.folder.name
    if target.exists():
        raise UserError(f"{target} already exists; choose another folder or remove it first")
    copy_model_to(model, target)
    return target


def is_importable(path: Path) -> bool:
    from mlabs_desktop.core.formats.reference_reader import is_reference_checkpoint

    from mlabs_desktop.core.formats.onnx_import import is_onnx
    from mlabs_desktop.core.formats.torch_import import is_pth

    return (is_model_folder(path) or path.suffix.lower() == MODEL_BUNDLE_SUFFIX or is_pth(path) or is_onnx(path)
            or is_reference_checkpoint(path))


def import_model(source: Path | str, library: Library) -> Model:
    """Import a model folder, a ``.mlstyle`` bundle (path or URL), a ``.pth`` or ``.onnx`` file or a reference
    checkpoint."""
    from mlabs_desktop.core.formats.bundle_import import import_bundle
    from mlabs_desktop.core.transfer.http import is_url
    from mlabs_desktop.core.formats.reference_checkpoint import import_reference_checkpoint
    from mlabs_desktop.core.formats.reference_reader import is_reference_checkpoint
    from mlabs_desktop.core.formats.onnx_import import import_onnx, is_onnx
    from mlabs_desktop.core.formats.torch_import import import_pth, is_pth

    if is_url(str(source)):
        return import_bundle(str(source), library)
    source = Path(source)
    if is_model_folder(source):
        return import_model_folder(source, library)
    if source.suffix.lower() == MODEL_BUNDLE_SUFFIX:
        return import_bundle(source, library)
    if is_pth(source):
        return import_pth(source, library=library)
    if is_onnx(source):
        return import_onnx(source, library=library)
    if is_reference_checkpoint(source):
        folder = source if source.is_dir() else source.parent
        return import_reference_checkpoint(source, library.unique_name(folder.name or "reference"), library)
    raise UserError(f"{source} is not a model: expected a {MODEL_BUNDLE_SUFFIX} bundle, a model folder "
                    f"(with {MANIFEST}), a PyTorch .pth or ONNX file, or a reference checkpoint folder")


def _exporter(fmt: str) -> Callable[[Model, Path, bool], Path]:
    def export(model: Model, parent: Path, overwrite: bool = False) -> Path:
        from mlabs_desktop.core.formats.exporters import default_output_name, export_model

        try:
            return export_model(model, fmt, parent / default_output_name(model, fmt), overwrite=overwrite)
        except NotImplementedError as exc:
            raise UserError(str(exc)) from None
    return export


# Label shown in the export dialog -> function(model, destination folder, overwrite) -> written path.
# Without overwrite, an export that would replace files raises `outputs.WouldReplace`.
EXPORT_FORMATS: dict[str, Callable[[Model, Path, bool], Path]] = {
    "Bundle to share (.mlstyle)": _exporter("bundle"),
    "Model folder": export_model_folder,
    "TensorFlow SavedModel": _exporter("savedmodel"),
    "TensorFlow Lite (.tflite)": _exporter("tflite"),
    "ONNX (.onnx)": _exporter("onnx"),
    "Reference checkpoint (classic only)": _exporter("reference-checkpoint"),
}
