"""Writing a model being trained into the library: checkpoints, previews, losses, manifest.

The model folder is created at the first checkpoint (a run stopped before its
first step leaves nothing behind); after that each file is replaced atomically
and the manifest is written last.
"""

from __future__ import annotations

import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from mlabs_desktop.core.images.encode import save_image, save_thumbnail
from mlabs_desktop.core.images.ops import to_uint8
from mlabs_desktop import __version__
from mlabs_desktop.core import atomic
from mlabs_desktop.core.training.checkpoints import CheckpointState, load_checkpoint, save_checkpoint
from mlabs_desktop.core.config import TrainingConfig, apply_params
from mlabs_desktop.core.smallfiles import file_sha256
from mlabs_desktop.core.errors import UserError, disk_full_as_user_error
from mlabs_desktop.core.events import CheckpointEvent, EventCallback, PreviewEvent
from mlabs_desktop.core.networks.inference import run_network
from mlabs_desktop.core.library.store import CHECKPOINT, LOSSES, PREVIEW, PREVIEWS, STYLE_THUMB, WEIGHTS, Library, Manifest, Model
from mlabs_desktop.core.filenames import slugify
from mlabs_desktop.core.networks.weights import assign, model_arrays, save_weight_arrays

if TYPE_CHECKING:
    from mlabs_desktop.core.hardware.devices import DeviceInfo
    from mlabs_desktop.core.training.inputs import PreparedInputs

LOSS_KEYS = ("total", "content", "style", "tv")
MAX_KEPT_PREVIEWS = 24


def default_model_name(config: TrainingConfig) -> str:
    stem = Path(config.style).stem or "style"
    return f"{stem} {datetime.now():%Y-%m-%d %H%M}"


def resume_config(model: Model, max_steps: int) -> TrainingConfig:
    """The config a model was trained with, to continue it."""
    prov = model.manifest.provenance
    params = {k: v for k, v in model.manifest.parameters.items() if k not in ("max-steps",)}
    try:
        config = apply_params(TrainingConfig(), params)
    except ValueError as exc:
        raise UserError(f"model '{model.name}' has a broken manifest: {exc}") from None
    return config.replace(style=prov.get("style", ""), train_path=prov.get("train_path", ""),
                          vgg_path=prov.get("vgg_path"), test=prov.get("test"), name=model.name,
                          max_steps=max_steps, seed=prov.get("seed"))


class ModelWriter:
    def __init__(self, library: Library, config: TrainingConfig, resume: Model | None):
        self.library = library
        self.config = config
        self.model = resume
        self.history: dict[str, list[float]] = {"step": [], **{k: [] for k in LOSS_KEYS}}
        self.previous_seconds = 0.0
        self.init_arrays = None
        self.parent_sha256: str | None = None
        if resume:
            # A resumed run may use another batch size (after running out of memory); the
            # manifest records the one the model trains with from here on.
            self.previous_batch_size = resume.manifest.parameters.get("batch-size")
            resume.manifest.parameters["batch-size"] = config.batch_size
            self.seed = int(resume.manifest.provenance.get("seed", 0))
            self.input_scale = resume.manifest.input_scale
            self.previous_seconds = float(resume.manifest.statistics.get("training_seconds", 0.0))
        else:
            self.seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
            self.input_scale = 1.0 / 255.0
            if config.init_from:
                base = library.get(config.init_from)
                if base.manifest.architecture != config.architecture:
                    raise UserError.worded("'{base}' is a {arch} network: to fine-tune it, set {voice.architecture} "
                                           "to {arch}", base=base.name, arch=base.manifest.architecture)
                self.input_scale = base.manifest.input_scale
                self.init_arrays = (base.load_weights(), base.name)
                self.parent_sha256 = file_sha256(base.file(WEIGHTS))  # tells its fine-tuned siblings apart
            # A name made up for the user is made unique; one the user chose is never changed.
            self.name = config.name.strip() if config.name else library.unique_name(default_model_name(config))
            if library.find(self.name):
                raise UserError.worded("a model named '{name}' already exists; pick another name ({voice.name}) "
                                       "or continue it with {voice.resume_model}", name=self.name)

    @property
    def target_folder(self) -> Path:
        """The model's folder (it may not exist yet): what the training lock protects."""
        return self.model.folder if self.model else self.library.root / slugify(self.name)

    def restore(self, net, optimizer, log: Callable[[str], None]) -> int:
        """Load the resume checkpoint or the fine-tune weights; return the step to start from."""
        if self.model:
            state = load_checkpoint(self.model.file(CHECKPOINT), net, optimizer)
            self._load_history(state.step)
            changed = self.previous_batch_size != self.config.batch_size
            log(f"resuming '{self.model.name}' at step {state.step}"
                + (f" with batch size {self.config.batch_size} (it was {self.previous_batch_size}); "
                   "steps go on counting from there, each with the new batch" if changed else ""))
            return state.step
        if self.init_arrays:
            arrays, base = self.init_arrays
            assign(net, arrays, f"model '{base}'")
            log(f"fine-tuning from '{base}'")
        return 0

    def _load_history(self, step: int) -> None:
        saved = self.model.loss_history() if self.model else {}
        if "step" in saved:
            keep = saved["step"] <= step
            for key in self.history:
                if key in saved:
                    self.history[key] = [float(v) for v in saved[key][keep]]

    def begin(self, inputs: "PreparedInputs", device: "DeviceInfo", image_count: int) -> None:
        self.inputs = inputs
        self.device = device
        self.image_count = image_count

    def record(self, step: int, losses: dict[str, float]) -> None:
        self.history["step"].append(step)
        for key in LOSS_KEYS:
            self.history[key].append(losses[key])

    def _manifest(self) -> Manifest:
        config = self.config
        provenance = {
            "source": "trained", "app_version": __version__, "seed": self.seed,
            "style": str(Path(config.style).resolve()), "style_sha256": file_sha256(Path(config.style)),
            "train_path": str(Path(config.train_path).resolve()), "vgg_path": str(self.inputs.vgg_path),
            "test": str(self.inputs.test_path), "init_from": config.init_from,
        }
        if self.parent_sha256:
            provenance["init_from_sha256"] = self.parent_sha256
        return Manifest(name=self.name, architecture=config.architecture, input_scale=self.input_scale,
                        parameters=config.parameters(), provenance=provenance)

    def _write_files(self, folder: Path, step: int, net, optimizer, forward) -> np.ndarray:
        save_checkpoint(folder / CHECKPOINT, net, optimizer, CheckpointState(step, self.seed))
        save_weight_arrays(folder / WEIGHTS, model_arrays(net))
        preview = to_uint8(run_network(forward, self.inputs.test))
        save_image(folder / PREVIEW, preview)
        save_image(folder / PREVIEWS / f"step-{step:08d}.jpg", preview)
        self._thin_previews(folder / PREVIEWS)
        save_weight_arrays(folder / LOSSES, {k: np.asarray(v, np.float64) for k, v in self.history.items()})
        return preview

    @staticmethod
    def _thin_previews(folder: Path) -> None:
        # Keep the first and the latest, and drop whichever middle preview sits
        # closest to its neighbours: the strip stays evenly spread over the run.
        kept = sorted(folder.glob("step-*.jpg"))
        while len(kept) > MAX_KEPT_PREVIEWS:
            steps = [int(p.stem.split("-")[1]) for p in kept]
            gaps = [steps[i + 1] - steps[i - 1] for i in range(1, len(kept) - 1)]
            victim = kept.pop(1 + gaps.index(min(gaps)))
            victim.unlink(missing_ok=True)

    def _update_statistics(self, step: int, seconds: float, state: str | None = None) -> None:
        stats = self.model.manifest.statistics
        stats.update({
            "steps": step, "training_seconds": round(self.previous_seconds + seconds, 1),
            "device": self.device.label, "images": self.image_count,
            "final_losses": {k: self.history[k][-1] for k in LOSS_KEYS} if self.history["step"] else {},
        })
        if state:
            self.model.manifest.state = state

    def checkpoint(self, step: int, net, optimizer, forward, inputs, on_event: EventCallback,
                   seconds: float) -> None:
        if self.model is None:
            manifest = self._manifest()
            holder: dict[str, np.ndarray] = {}

            def fill(folder: Path) -> None:
                holder["preview"] = self._write_files(folder, step, net, optimizer, forward)
                save_thumbnail(Path(self.config.style), folder / STYLE_THUMB)

            self.model = self.library.create(manifest, fill)
            preview = holder["preview"]
        else:
            preview = self._write_files(self.model.folder, step, net, optimizer, forward)
        self._update_statistics(step, seconds)
        self.model.save_manifest()
        on_event(CheckpointEvent(step, str(self.model.folder)))
        on_event(PreviewEvent(step, str(self.model.file(PREVIEW)), preview.copy()))

    def finish(self, state: str, seconds: float, skipped: int) -> Model:
        model = self.model
        self._update_statistics(model.manifest.statistics.get("steps", 0), seconds, state)
        model.manifest.statistics["skipped"] = skipped
        model.save_manifest()
        if self.config.checkpoint_dir:
            target = Path(self.config.checkpoint_dir)
            with disk_full_as_user_error(target):  # TensorFlow's own write errors name no errno
                copy_model_to(model, target)
                if model.manifest.architecture == "classic":
                    # The 2017 MachineLabs lab's second lab reads these files (checkpoint, fns.ckpt.*).
                    from mlabs_desktop.core.formats.reference_writer import write_reference_checkpoint

                    write_reference_checkpoint(model, target)
        return model


def checkpoint_dir_targets(target: Path) -> list[Path]:
    """The files a training run's ``--checkpoint-dir`` would receive (model files, reference checkpoint)."""
    from mlabs_desktop.core.library.store import MANIFEST
    from mlabs_desktop.core.formats.reference_format import REFERENCE_FILES

    names = (MANIFEST, WEIGHTS, CHECKPOINT, STYLE_THUMB, PREVIEW, PREVIEWS, LOSSES, *REFERENCE_FILES)
    return [Path(target).expanduser() / name for name in names]


def copy_model_to(model: Model, target: Path) -> None:
    """Copy a model's files into ``target`` (the 2017 MachineLabs lab's ``--checkpoint-dir``), each atomically."""
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(model.folder.rglob("*")):
        relative = source.relative_to(model.folder)
        if source.is_file() and not any(part.startswith(".") for part in relative.parts):  # no temporaries
            atomic.write_with(target / relative, lambda tmp, source=source: shutil.copyfile(source, tmp))
