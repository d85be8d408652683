"""The model library: one folder per trained style, and the folder is the truth.

A model folder holds::

    manifest.yaml      format version, name, architecture, parameters, provenance, statistics
    weights.npz        transform-network weights only (arrays; never pickles, never code)
    checkpoint.npz     weights + optimizer state + step, for resuming (optional)
    style.jpg          thumbnail of the style image
    preview.jpg        the test image in this style at the latest checkpoint
    previews/          earlier previews, step-NNNNNNNN.jpg
    losses.npz         loss history for charts

New models are built in a hidden staging folder and renamed into place, and
every later write replaces one file atomically, so a crash never leaves a
half-written model listed.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from mlabs_desktop.core import atomic, paths
from mlabs_desktop.core.config import ARCHITECTURES, IMPORTED_ARCHITECTURES
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.filenames import slugify
from mlabs_desktop.core.smallfiles import load_yaml, read_small_text
from mlabs_desktop.core.locks import library_lock, training_lock
from mlabs_desktop.core.networks.weights import load_weight_arrays, require_finite

FORMAT_VERSION = 1
MANIFEST = "manifest.yaml"
WEIGHTS = "weights.npz"
CHECKPOINT = "checkpoint.npz"
STYLE_THUMB = "style.jpg"
PREVIEW = "preview.jpg"
PREVIEWS = "previews"
LOSSES = "losses.npz"
MAX_MANIFEST_BYTES = 1 << 20


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Manifest:
    name: str
    architecture: str
    input_scale: float = 1.0 / 255.0
    format_version: int = FORMAT_VERSION
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    state: str = "training"          # training | stopped | finished
    parameters: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_mapping(cls, data: Any, source: str) -> "Manifest":
        if not isinstance(data, dict):
            raise UserError(f"{source}: the manifest is not a mapping")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise UserError(f"{source}: unsupported model format version {version!r} "
                            f"(this app reads up to {FORMAT_VERSION}); update MachineLabs Desktop")
        name, arch = data.get("name"), data.get("architecture")
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"{source}: the manifest has no name")
        if arch not in ARCHITECTURES + IMPORTED_ARCHITECTURES:
            raise UserError(f"{source}: unknown architecture {arch!r}")
        scale = data.get("input_scale", 1.0 / 255.0)
        if not isinstance(scale, (int, float)) or not 0 < float(scale) <= 1:
            raise UserError(f"{source}: input_scale must be a number in (0, 1]")
        known = {k: data[k] for k in ("created", "updated", "state") if isinstance(data.get(k), str)}
        dicts = {k: data[k] for k in ("parameters", "provenance", "statistics") if isinstance(data.get(k), dict)}
        return cls(name=name.strip(), architecture=arch, input_scale=float(scale),
                   format_version=version, **known, **dicts)


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    text = read_small_text(path, MAX_MANIFEST_BYTES, "a model manifest",
                           missing=f"{folder} is not a model folder (no {MANIFEST})")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: broken manifest ({exc})".replace("\n", " ")) from None
    return Manifest.from_mapping(data, str(path))


@dataclass
class Model:
    """A model on disk: its folder and its manifest."""

    folder: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    def file(self, name: str) -> Path:
        return self.folder / name

    @property
    def has_checkpoint(self) -> bool:
        return (self.folder / CHECKPOINT).is_file()

    def load_weights(self) -> dict[str, np.ndarray]:
        """The model's weights; non-finite ones (a damaged file) are refused, so no export carries them."""
        arrays = load_weight_arrays(self.folder / WEIGHTS)
        require_finite(arrays, f"model '{self.name}'")
        return arrays

    def previews(self) -> list[Path]:
        folder = self.folder / PREVIEWS
        return sorted(folder.glob("step-*.jpg")) if folder.is_dir() else []

    def loss_history(self) -> dict[str, np.ndarray]:
        path = self.folder / LOSSES
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError):
            return {}

    def save_manifest(self) -> None:
        self.manifest.updated = now_iso()
        atomic.write_text(self.folder / MANIFEST, self.manifest.to_yaml())


def _unusable(folder: object, reason: str) -> UserError:
    return UserError.worded("the library folder {folder} cannot be used ({reason}); connect its drive, or choose "
                            "another ({voice.library_dir})", folder=folder, reason=reason)


class Library:
    def __init__(self, root: Path | str | None = None):
        if root is None:
            from mlabs_desktop.core.settings import load_settings

            configured = load_settings().library_dir
            try:
                root = Path(configured).expanduser() if configured else paths.default_library_dir()
            except RuntimeError:  # "~user" of no such user
                raise _unusable(configured, "no such user's home") from None
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._sweep()
        except OSError as exc:  # a drive unplugged, a file in its place, no permission
            raise _unusable(self.root, exc.strerror or str(exc)) from None

    def _sweep(self) -> None:
        """Remove what killed processes left: staging folders here, temporary files in model folders."""
        atomic.sweep_temporaries(self.root, old_staging=True)
        for folder in self.root.iterdir():
            if not folder.name.startswith(".") and folder.is_dir():
                atomic.sweep_temporaries(folder)
                atomic.sweep_temporaries(folder / PREVIEWS)

    def models(self) -> list[Model]:
        """Every valid model, newest first; broken folders are skipped, not fatal."""
        found = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                found.append(Model(folder, read_manifest(folder)))
            except UserError:
                continue
        return sorted(found, key=lambda m: m.manifest.created, reverse=True)

    def find(self, name: str) -> Model | None:
        for model in self.models():
            if model.name == name:
                return model
        folded = name.casefold()
        matches = [m for m in self.models() if m.name.casefold() == folded or m.folder.name.casefold() == folded]
        return matches[0] if len(matches) == 1 else None

    def get(self, name_or_path: str | Path) -> Model:
        """A model by library name, or by the path of a model folder."""
        model = self.find(str(name_or_path))
        if model:
            return model
        path = Path(name_or_path).expanduser()
        if path.is_dir() and (path / MANIFEST).is_file():
            return Model(path, read_manifest(path))
        names = ", ".join(m.name for m in self.models()[:10]) or "the library is empty"
        raise UserError.worded("unknown model '{model}' (known: {names}); {voice.list_models}",
                               model=name_or_path, names=names)

    @staticmethod
    def _ensure_not_training(model: Model) -> None:
        with training_lock(model.folder):
            pass

    def unique_name(self, wanted: str) -> str:
        taken = {m.name.casefold() for m in self.models()}
        taken |= {p.name.casefold() for p in self.root.iterdir()}
        name, n = wanted, 2
        while name.casefold() in taken or slugify(name).casefold() in taken:
            name, n = f"{wanted} ({n})", n + 1
        return name

    def create(self, manifest: Manifest, fill: Callable[[Path], None], rename_if_taken: bool = False) -> Model:
        """Create a model atomically: ``fill(folder)`` writes its files into a staging folder.

        ``rename_if_taken``: a name the app chose, not the user, gets a number if another model took it meanwhile.
        """
        with library_lock(self.root):
            if rename_if_taken:
                manifest.name = self.unique_name(manifest.name)
            if self.find(manifest.name):
                raise UserError(f"a model named '{manifest.name}' already exists; choose another name")
            final = self.root / slugify(manifest.name)
            if final.exists():
                final = self.root / slugify(self.unique_name(manifest.name))
            with atomic.staging_dir(final) as staging:
                fill(staging)
                (staging / MANIFEST).write_text(manifest.to_yaml(), encoding="utf-8")
        return Model(final, manifest)

    def rename(self, old: str, new: str) -> Model:
        with library_lock(self.root):
            return self._rename(old, new)

    def _rename(self, old: str, new: str) -> Model:
        model = self.get(old)
        self._ensure_not_training(model)
        new = new.strip()
        if not new:
            raise UserError("the new name is empty")
        other = self.find(new)
        if other and other.folder != model.folder:
            raise UserError(f"a model named '{new}' already exists")
        model.manifest.name = new
        model.save_manifest()
        target = self.root / slugify(new)
        if model.folder.parent == self.root and target != model.folder and not target.exists():
            model.folder.rename(target)
            model.folder = target
        return model

    def delete(self, name: str) -> None:
        with library_lock(self.root):
            self._delete(name)

    def _delete(self, name: str) -> None:
        model = self.get(name)
        self._ensure_not_training(model)
        if model.folder.parent != self.root:
            raise UserError(f"{model.folder} is not inside the library; delete it yourself")
        # Move it into a hidden temporary first, so a crash mid-delete leaves no broken model
        # (and no fixed name that would block deleting a model of the same name later).
        trash = atomic.temp_dir(self.root, f"{atomic.STAGING_PREFIX[1:]}deleted-{model.folder.name}")
        model.folder.rename(trash / model.folder.name)
        shutil.rmtree(trash, ignore_errors=True)
