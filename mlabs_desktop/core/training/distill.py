"""A fast copy of any style: a smaller network learns a library model's own outputs.

No VGG19 and no style image are needed: the teacher's outputs on the user's photos
are the targets, and the copy's mean squared difference from them is the loss. A
few photos are kept out of training, and the copy's PSNR against its teacher on
them is what the user is told.
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mlabs_desktop import __version__
from mlabs_desktop.core.config import DISTILL_STEPS, coerce_param
from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.events import DistillStepEvent, EventCallback, LogEvent
from mlabs_desktop.core.hardware.devices import choose_device, device_scope, dtype_policy, import_keras_quietly
from mlabs_desktop.core.images.decode import CropVariety, load_image
from mlabs_desktop.core.images.encode import save_image, save_thumbnail
from mlabs_desktop.core.images.ops import to_uint8
from mlabs_desktop.core.library.store import LOSSES, PREVIEW, STYLE_THUMB, WEIGHTS, Library, Manifest, Model
from mlabs_desktop.core.networks.inference import make_forward, run_network
from mlabs_desktop.core.networks.precision import training_precision
from mlabs_desktop.core.networks.weights import model_arrays, save_weight_arrays
from mlabs_desktop.core.training.dataset import BatchStream, FolderScan, scan_folder
from mlabs_desktop.resources import sample_image

EVALUATION_SIDE = 512   # held-out photos are compared at this longest side
# The original labels any crop exactly, so the copy sees each photo at many framings and scales: with
# whole photos only, it matched the original 2.7 dB better on its own photos than on others
# (docs/decisions/fast-copy-precision.md).
CROP_VARIETY = CropVariety(smallest=0.5, mirror=True)
# Near the gradients' usual size early on (their median was 4,300-9,000 over the first 400 steps, single steps
# 2-4x that): one odd batch no longer throws the copy back hundreds of steps, as one did at step 1,000.
GRADIENT_CLIP = 1e4


@dataclass
class DistillConfig:
    teacher: str                    # a library model's name
    architecture: str = "tiny"
    train_path: str | None = None   # photos to learn on; the teacher's own training folder when None
    name: str | None = None         # the copy's name; "<teacher> (fast copy)" when None
    steps: int = DISTILL_STEPS
    batch_size: int = 4
    image_size: int = 256
    learning_rate: float = 2e-3
    device: str = "auto"
    precision: str = "auto"         # the student's: mixed where training uses it on the device; or float32
    held_out: int = 8               # photos kept out of training to measure the copy on
    seed: int | None = None         # the copy's initial weights and photo order; random when None


@dataclass(frozen=True)
class DistillResult:
    model: Model
    psnr_db: float                  # mean over the held-out photos, the copy against its teacher
    held_out: int                   # photos it was judged on; 0: judged on photos it trained on
    steps: int
    seconds: float
    set_aside: int = 0              # photos kept out of training (held_out counts those that could be read)

    @property
    def judged_on(self) -> str:
        """Which photos the PSNR is over, in words."""
        if self.held_out:
            return f"on {self.held_out} photo{'s' if self.held_out != 1 else ''} it did not train on"
        why = "none of those kept aside could be read" if self.set_aside else "too few to keep some aside"
        return f"on photos it trained on ({why})"


def _photos(config: DistillConfig, teacher: Model) -> tuple[FolderScan, tuple[Path, ...]]:
    """The training photos and those held out (every few photos, so both sample the whole folder)."""
    folder = config.train_path or teacher.manifest.provenance.get("train_path")
    if not folder:
        raise UserError.worded("'{name}' does not say which photos it was trained on: {voice.give_photos}",
                               name=teacher.name)
    scan = scan_folder(folder)
    if not scan.paths:
        raise UserError(f"no images in {scan.root}")
    keep = min(config.held_out, len(scan.paths) // 3)
    step = len(scan.paths) // keep if keep else 0
    held = tuple(scan.paths[i * step] for i in range(keep))
    train = tuple(p for p in scan.paths if p not in held)
    return FolderScan(scan.root, train, scan.total_bytes), held


class Distiller:
    """Runs one distillation; `stop` (from any thread) ends it after the current step, keeping what was learnt."""

    def __init__(self, config: DistillConfig, on_event: EventCallback | None = None,
                 library: Library | None = None):
        self.config = config
        self.on_event = on_event or (lambda event: None)
        self.library = library or Library()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> DistillResult:
        for param, value in (("batch-size", self.config.batch_size), ("image-size", self.config.image_size)):
            try:  # the same bounds as training's, answered before the engine starts
                coerce_param(param, value)
            except ValueError as exc:
                raise UserError(str(exc)) from None
        keras = import_keras_quietly()
        from mlabs_desktop.core.networks.transform import ARCHITECTURES, build_transform_network
        from mlabs_desktop.core.stylize.stylizer import Stylizer

        config = self.config
        if config.architecture not in ARCHITECTURES:
            raise UserError.worded("{voice.architecture} must be one of {choices}, not {arch!r}",
                                   choices=", ".join(ARCHITECTURES), arch=config.architecture)
        teacher_model = self.library.get(config.teacher)
        chosen = (config.name or "").strip()
        name = chosen or self.library.unique_name(f"{teacher_model.name} (fast copy)")
        if chosen and self.library.find(name):
            raise UserError.worded("a model named '{name}' already exists; pick another name ({voice.name})",
                                   name=name)
        train, held = _photos(config, teacher_model)
        device = choose_device(config.device)
        seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
        policy = training_precision(device, config.precision)
        with device_scope(device):
            # Its targets in bfloat16 where the model passes the precision check (40 dB or better, far above
            # what the copy reaches), the copy judged against its float32 results.
            teacher = Stylizer(teacher_model, config.device, precision="float32" if config.precision == "float32"
                               else "auto")
            with dtype_policy(policy):  # the student learns as training does on this device
                student = build_transform_network(config.architecture, seed=seed)
                rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps)  # settles at the end
                student.compile(optimizer=keras.optimizers.Adam(rate, global_clipnorm=GRADIENT_CLIP),
                                loss="mean_squared_error")
                reduced = ([f"learning in {policy.replace('_', ' ')}"] if policy != "float32" else []) + (
                    [f"the original running in {teacher.precision}"] if teacher.precision != "float32" else [])
                how = f" ({', '.join(reduced)})" if reduced else ""
                self._log(f"distilling '{teacher_model.name}' ({teacher_model.manifest.architecture}) into a "
                          f"{config.architecture} network on {device.label}{how}: {len(train.paths)} photos"
                          f"{f', {len(held)} more kept out to measure it' if held else ''}, {config.steps:,} steps")
                reference = make_forward(teacher.net)  # the original in float32: targets, or the copy's judge
                losses, seconds = self._train(student, teacher, reference, train, seed, device)
            copy = build_transform_network(config.architecture)  # judged as it will stylize: in float32
            copy.set_weights(student.get_weights())
            forward = make_forward(copy)
            psnr, judged = self._measure(forward, reference, held, len(held))
            if not judged:  # too few photos to keep some aside, or none of those could be read
                psnr, _ = self._measure(forward, reference, train.paths, config.held_out)
        model = self._save(name, teacher_model, train.root, copy, forward, losses, seconds, psnr, judged,
                           device.label, rename_if_taken=not chosen)
        result = DistillResult(model, psnr, judged, len(losses), seconds, len(held))
        self._log(f"'{model.name}': {psnr:.1f} dB PSNR against '{teacher_model.name}' {result.judged_on}")
        return result

    def _log(self, message: str, level: str = "info") -> None:
        self.on_event(LogEvent(message, level))

    def _train(self, student, teacher, reference, train: FolderScan, seed: int, device) -> tuple[list[float], float]:
        config = self.config
        original = reference if teacher.precision == "float32" else (  # its bfloat16 network runs one photo at a time
            lambda batch: np.stack([teacher.run(photo) for photo in batch]))

        def targets(batch: np.ndarray) -> np.ndarray:
            with device_scope(device):  # a device scope holds only in the thread that enters it
                return original(batch)
        stream = BatchStream(train, config.batch_size, config.image_size, seed, variety=CROP_VARIETY)
        losses: list[float] = []
        started = time.perf_counter()
        first = 0.0  # the first step's seconds: it compiles, so it is kept out of the time left
        batches = stream.batches(0, self._stop)
        labelled = self._labelled(batches, targets)
        try:
            for step, batch, target in labelled:
                losses.append(float(student.train_on_batch(batch, target)))
                elapsed = time.perf_counter() - started
                first = first or elapsed
                left = (elapsed - first) / step * (config.steps - step - 1) if step else None
                self.on_event(DistillStepEvent(step + 1, config.steps, losses[-1], elapsed, left))
        finally:
            labelled.close()
            batches.close()
            for warning in stream.skipped.warnings():
                self._log(warning, "warning")
        if not losses:
            raise Cancelled()
        return losses, time.perf_counter() - started

    def _labelled(self, batches, targets) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(step, batch, the original's results for it) until the last step or a stop. The original works on
        the next batch while the copy learns from this one, each leaving the cores the other's ops leave idle."""
        with ThreadPoolExecutor(1, thread_name_prefix="mlabs-original") as pool:
            for step, batch, future in self._one_ahead(batches, targets, pool):
                target = future.result()
                if self._stop.is_set():  # asked while the original worked: nothing more is learnt
                    return
                yield step, batch, target

    def _one_ahead(self, batches, targets, pool) -> Iterator[tuple[int, np.ndarray, Future]]:
        """(step, batch, its targets to come), each given to the ``pool`` one batch before it is asked for."""
        ahead = None
        for step, _epoch, batch, _paths in batches:
            if step >= self.config.steps or self._stop.is_set():
                break
            job = (step, batch, pool.submit(targets, batch))
            if ahead is not None:
                yield ahead
            ahead = job
        if ahead is not None:
            yield ahead

    @staticmethod
    def _measure(forward, reference, photos: tuple[Path, ...], count: int) -> tuple[float, int]:
        """Mean PSNR of the copy's ``forward`` against the original's float32 ``reference`` on the first
        ``count`` readable ``photos``, and how many that was (unreadable ones are skipped, as training does)."""
        from mlabs_desktop.core.networks.precision import psnr_db

        scores: list[float] = []
        for path in photos:
            if len(scores) == count:
                break
            try:
                rgb = load_image(path, max_size=EVALUATION_SIDE).rgb.astype(np.float32)
            except (UserError, OSError):
                continue
            scores.append(psnr_db(run_network(reference, rgb), run_network(forward, rgb)))
        return (float(np.mean(scores)) if scores else float("nan")), len(scores)

    def _save(self, name: str, teacher: Model, photos: Path, student, forward, losses: list[float],
              seconds: float, psnr: float, held_out: int, device: str, rename_if_taken: bool) -> Model:
        config = self.config
        manifest = Manifest(
            name=name, architecture=config.architecture, state="finished",
            parameters={"architecture": config.architecture, "steps": len(losses), "batch-size": config.batch_size,
                        "image-size": config.image_size, "learning-rate": config.learning_rate},
            provenance={"source": "distilled", "distilled_from": teacher.name, "app_version": __version__,
                        "train_path": str(photos.resolve())},
            statistics={"steps": len(losses), "training_seconds": round(seconds, 1), "device": device,
                        "teacher_psnr_db": round(psnr, 2), "held_out_photos": held_out})

        def fill(folder: Path) -> None:
            save_weight_arrays(folder / WEIGHTS, model_arrays(student))
            preview = run_network(forward, load_image(sample_image(), max_size=EVALUATION_SIDE).rgb)
            save_image(folder / PREVIEW, to_uint8(preview))
            thumb = teacher.file(STYLE_THUMB)
            if thumb.is_file():
                save_thumbnail(thumb, folder / STYLE_THUMB)
            save_weight_arrays(folder / LOSSES, {"step": np.arange(1, len(losses) + 1, dtype=np.float64),
                                                 "total": np.asarray(losses, np.float64)})

        return self.library.create(manifest, fill, rename_if_taken)
