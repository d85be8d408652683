"""Applying a trained style: any image size or mode in, the same size out.

The network needs sides that are multiples of 4; the image is padded by
reflection, run, and cropped back (the reference leaves its padding in).
Strength and colour preservation are cheap NumPy re-blends of the cached
float result, so the GUI can change them without running the network again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from mlabs_desktop.core.images.decode import IMAGE_EXTENSIONS, LoadedImage, image_info, load_image
from mlabs_desktop.core.images.encode import save_image
from mlabs_desktop.core.images.ops import blend, preserve_colors, to_uint8
from mlabs_desktop.core import outputs
from mlabs_desktop.core.hardware.devices import DeviceInfo, choose_device, device_scope, import_keras_quietly
from mlabs_desktop.core.errors import Cancelled, DiskFullError, UserError
from mlabs_desktop.core.library.store import Library, Model
from mlabs_desktop.core.networks.inference import run_network
from mlabs_desktop.core.tiling.source import load_pixels


@dataclass(frozen=True)
class BlendOptions:
    strength: float = 1.0
    preserve_colors: bool = False


@dataclass(frozen=True)
class StylizeProgress:
    done: int
    total: int
    source: Path
    output: Path | None
    error: str | None = None


def run_any_size(forward: Callable[[np.ndarray], np.ndarray], tiled: Callable[[], object],
                 rgb: np.ndarray, device: DeviceInfo) -> np.ndarray:
    """Whole when it fits, else tile by tile (`policy`); ``tiled`` makes the tiled runner on demand."""
    from mlabs_desktop.core.tiling import policy as tiling

    if not tiling.should_tile(rgb.shape[0], rgb.shape[1], device.kind, device.memory_bytes):
        try:
            return run_network(forward, rgb)
        except Exception as exc:  # noqa: BLE001 - memory errors come as several types
            if not tiling.out_of_memory(exc):
                raise
    return tiling.run_with_retries(tiled(), rgb, device=device)


def finish(original: np.ndarray, styled: np.ndarray, options: BlendOptions) -> np.ndarray:
    """Apply colour preservation and strength to a cached network result."""
    result = np.clip(styled, 0.0, 255.0)
    if options.preserve_colors:
        result = preserve_colors(original, result)
    if options.strength < 1.0:
        result = blend(original, result, options.strength)
    return result


class Stylizer:
    """A loaded transform network, ready to restyle images of any size."""

    def __init__(self, model: Model, device: str = "auto", precision: str = "float32",
                 weights: dict[str, np.ndarray] | None = None):
        """``precision``: float32, bfloat16, or auto (bfloat16 where it is faster and passes `precision`'s check).

        ``weights``: others than the model's own (a blend of two styles' weights); "auto" keeps
        them in float32, since the check is made, and remembered, per weights file.
        """
        import_keras_quietly()  # from any thread: waits while another one is still importing Keras
        from mlabs_desktop.core.networks.transform import build_transform_network
        from mlabs_desktop.core.networks.inference import make_forward
        from mlabs_desktop.core.networks.weights import assign

        self.model = model
        self.device = choose_device(device)
        with device_scope(self.device):
            self.net = build_transform_network(model.manifest.architecture, model.manifest.input_scale)
            assign(self.net, model.load_weights() if weights is None else weights, f"model '{model.name}'")
            self._forward = make_forward(self.net)
            self.precision = self._use_precision("float32" if weights is not None and precision == "auto"
                                                 else precision)
        self._tiled = None  # the tile-by-tile runner, made for the first big image
        self.brush = 1.0
        self.mixed: tuple[Stylizer, float] | None = None   # a second style and how much of it

    def set_controls(self, brush: float = 1.0, mix: tuple["Stylizer", float] | None = None) -> None:
        """Strokes ``brush`` times their trained size; ``mix``: (another style's stylizer, 0..1 of it)."""
        from mlabs_desktop.core.stylize.controls import check_brush, check_mix

        self.brush = check_brush(brush)
        self.mixed = None if mix is None else (mix[0], check_mix(mix[1]))

    def _use_precision(self, wanted: str) -> str:
        from mlabs_desktop.core.networks import precision as p
        from mlabs_desktop.core.library.store import WEIGHTS

        if wanted not in p.PRECISIONS:
            raise UserError.worded("{voice.precision} must be one of {choices}, not {wanted!r}",
                                   choices=", ".join(p.PRECISIONS), wanted=wanted)
        if wanted == "float32" or (wanted == "auto" and not p.bfloat16_pays(self.device)):
            return "float32"
        if not p.bfloat16_supported(self.device):
            raise UserError.worded("{device} has no bfloat16 arithmetic (it needs AVX512-BF16, AMX or an Ampere or "
                                   "newer GPU); set {voice.precision} to float32", device=self.device.label)
        try:
            forward = p.reduced_forward(self.model.manifest.architecture, self.model.manifest.input_scale,
                                        self.net.get_weights())
        except Exception:  # noqa: BLE001 - "auto" promises a result, and float32 always gives one
            if wanted != "auto":
                raise
            # Seen intermittently in the app: the first bfloat16 build in a worker thread failed inside
            # Keras ("Only input tensors may be passed as positional arguments"); cause not found yet.
            logging.getLogger("mlabs_desktop").warning("bfloat16 network not built; stylizing in float32",
                                                       exc_info=True)
            return "float32"
        if wanted == "auto":
            check = lambda: p.measure_fidelity(self._forward, forward, p.sample_photos())  # noqa: E731
            if not p.cached_fidelity(self.model.folder / WEIGHTS, check).passes:
                return "float32"
        self._forward = forward  # tiles keep the float32 network: they are the rare, careful path
        return "bfloat16"

    def tiled(self):
        """The `tiling.network.TiledNetwork` for this network (built on first use)."""
        from mlabs_desktop.core.tiling.policy import TiledNetwork

        if self._tiled is None:
            with device_scope(self.device):
                self._tiled = TiledNetwork(self.net)
        return self._tiled

    @classmethod
    def open(cls, name_or_path: str | Path, device: str = "auto", library: Library | None = None,
             precision: str = "float32") -> "Stylizer":
        """A library model by name, a model folder, or a reference (TF1) checkpoint folder or prefix."""
        from mlabs_desktop.core.formats.reference_checkpoint import open_model_or_checkpoint

        model = open_model_or_checkpoint(name_or_path, library)  # a mistyped name is answered at once,
        import_keras_quietly()                                   # before seconds of backend start-up
        return cls(model, device, precision)

    @classmethod
    def blended(cls, first: Model, second: Model, amount: float, device: str = "auto",
                precision: str = "float32") -> "Stylizer":
        """One network with ``amount`` of ``second``'s weights over ``first``'s (styles fine-tuned from one parent)."""
        from mlabs_desktop.core.stylize.controls import blend_weights

        weights = blend_weights(first, second, amount)
        import_keras_quietly()
        return cls(first, device, precision, weights=weights)

    def run(self, rgb: np.ndarray) -> np.ndarray:
        """The network's float result (H, W, 3), unclipped, exactly the input's size.

        Big images, and any that run out of memory whole, go tile by tile in
        bounded memory (`policy`), with the whole image's result.
        """
        from mlabs_desktop.core.stylize.controls import mix_results, run_with_brush

        raw = run_with_brush(self._network, rgb, self.brush)
        if self.mixed is not None:
            other, amount = self.mixed
            raw = mix_results(raw, run_with_brush(other._network, rgb, self.brush), amount)
        return raw

    def _network(self, rgb: np.ndarray) -> np.ndarray:
        with device_scope(self.device):
            return run_any_size(self._forward, self.tiled, rgb, self.device)

    def stylize_image(self, source: Path, options: BlendOptions = BlendOptions(),
                      max_size: int | None = None) -> tuple[LoadedImage, np.ndarray]:
        """Load and restyle one file; returns the loaded original and the finished float result."""
        loaded = load_image(source, max_size=max_size)
        return loaded, finish(loaded.rgb, self.run(loaded.rgb), options)

    def _goes_tiled(self, source: Path, max_size: int | None) -> bool:
        from mlabs_desktop.core.tiling import policy as tiling

        if self.brush != 1.0 or self.mixed is not None:
            return False  # whole: the controls work on the whole result (its network runs still tile)
        size = image_info(source)
        return bool(size and (max_size is None or max(size) <= max_size) and
                    tiling.should_tile(size[1], size[0], self.device.kind, self.device.memory_bytes))

    def _stylize_tiled_file(self, source: Path, target: Path, options: BlendOptions) -> Path:
        """A big photo stays uint8 from decoding to saving; tiles are finished one by one."""
        from mlabs_desktop.core.tiling import policy as tiling

        pixels, alpha = load_pixels(source)
        out = np.empty((pixels.shape[0], pixels.shape[1], 3), np.uint8)
        with device_scope(self.device):
            tiling.run_with_retries(self.tiled(), pixels, out=out, device=self.device,
                                    post=lambda original, raw: to_uint8(finish(original, raw, options)))
        return save_image(target, out, alpha)

    def stylize_file(self, source: Path, target: Path, options: BlendOptions = BlendOptions(),
                     max_size: int | None = None) -> Path:
        if self._goes_tiled(source, max_size):
            return self._stylize_tiled_file(source, target, options)
        loaded, result = self.stylize_image(source, options, max_size)
        return save_image(target, result, loaded.alpha)

    def stylize_many(self, jobs: Iterable[tuple[Path, Path]], options: BlendOptions = BlendOptions(),
                     max_size: int | None = None, cancelled: Callable[[], bool] | None = None
                     ) -> Iterator[StylizeProgress]:
        """Restyle (source, target) pairs; a bad file is reported and skipped, not fatal.

        A pipeline: while the network works on one photo, a thread decodes the
        next and another finishes and encodes the previous, which hides them
        where cores are spare (docs/performance.md). Progress comes in order, once a
        file is saved.
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        jobs = list(jobs)
        total = len(jobs)

        def decode(source: Path) -> LoadedImage | None:
            return None if self._goes_tiled(source, max_size) else load_image(source, max_size=max_size)

        def encode(loaded: LoadedImage, raw: np.ndarray, target: Path) -> Path:
            return save_image(target, finish(loaded.rgb, raw, options), loaded.alpha)

        def report(done: int, source: Path, future: Future) -> StylizeProgress:
            try:
                return StylizeProgress(done, total, source, future.result())
            except DiskFullError:
                raise  # every later photo would fail the same way: stop, saying why
            except UserError as exc:
                return StylizeProgress(done, total, source, None, str(exc))

        with ThreadPoolExecutor(1, "mlabs-decode") as decoder, ThreadPoolExecutor(1, "mlabs-encode") as encoder:
            decoding = decoder.submit(decode, jobs[0][0]) if jobs else None
            saving: tuple[int, Path, Future] | None = None
            for done, (source, target) in enumerate(jobs, 1):
                if cancelled and cancelled():
                    if saving:
                        saving[2].exception()  # let the last save land whole before stopping
                    raise Cancelled()
                this = decoding
                decoding = decoder.submit(decode, jobs[done][0]) if done < total else None
                saved: Future = Future()
                try:
                    loaded = this.result()
                    if loaded is None:
                        saved.set_result(self._stylize_tiled_file(source, target, options))
                    else:
                        saved = encoder.submit(encode, loaded, self.run(loaded.rgb), target)
                except UserError as exc:
                    saved.set_exception(exc)
                if saving:
                    yield report(*saving)
                saving = (done, source, saved)
            if saving:
                yield report(*saving)


def require_input(in_path: Path) -> Path:
    """``in_path`` with ``~`` expanded, or a `UserError` when there is nothing there."""
    in_path = Path(in_path).expanduser()
    if not in_path.exists():
        raise UserError(f"input not found: {in_path}")
    return in_path


@dataclass(frozen=True)
class MediaKind:
    """One kind of input the stylize command takes: which files it reads and how their results are named."""

    noun: str                           # "images", "clips"
    sources: frozenset[str]             # extensions taken from a folder
    outputs: frozenset[str]             # extensions a result may be written as
    default_output: Callable[[Path], Path]
    alone: frozenset[str] = frozenset()  # more extensions taken when named on their own, for these outputs only

    def reads(self, path: Path, alone: bool = False) -> bool:
        suffix = path.suffix.lower()
        return suffix in self.sources or (alone and suffix in self.alone)


def _output_name(path: Path) -> Path:
    return path.with_suffix(".png") if path.suffix.lower() == ".gif" else path


# A GIF's result becomes a PNG unless asked for by name: 256 colours would band it.
PHOTOS = MediaKind("images", IMAGE_EXTENSIONS, IMAGE_EXTENSIONS, _output_name)


def plan_outputs(in_path: Path, out_path: Path, style: str, overwrite: bool = False,
                 kinds: tuple[MediaKind, ...] = (PHOTOS,)) -> list[tuple[Path, Path]]:
    """Pair inputs with outputs the way the 2017 MachineLabs lab's evaluate script does, never over an input.

    A file into a folder keeps its name; a file onto a file path uses that path
    (its extension picks the format); a folder goes into a folder, names kept
    (each of ``kinds`` names its own results: a GIF's becomes a PNG).
    A target that is one of the inputs (same path, hard or symbolic link) is named
    ``<stem>-<style>`` instead, and results of an earlier such run found among the
    inputs are not stylized again. Existing targets raise `outputs.WouldReplace`
    unless ``overwrite``.
    """
    in_path, out_path = require_input(in_path), Path(out_path).expanduser()
    if in_path.is_dir():
        if out_path.exists() and not out_path.is_dir():
            raise UserError.worded("{voice.in_path} is a folder, so {voice.out_path} must be a folder too, not {out}",
                                   out=out_path)
        sources = sorted(p for p in in_path.rglob("*") if p.is_file() and any(k.reads(p) for k in kinds)
                         and not p.name.startswith("."))
        if not sources:
            raise UserError(f"no {' or '.join(k.noun for k in kinds)} in {in_path}")
        jobs = [(p, _kind_of(p, kinds).default_output(out_path / p.relative_to(in_path))) for p in sources]
    elif out_path.is_dir() or (not out_path.suffix and not out_path.exists()):
        jobs = [(in_path, _kind_of(in_path, kinds).default_output(out_path / in_path.name))]
    else:
        _writable_kind(in_path, out_path, kinds)
        jobs = [(in_path, out_path)]
    jobs = _beside_inputs(jobs, style)
    if not jobs:
        raise UserError(f"the {kinds[0].noun} in {in_path} are all results of an earlier run with this style")
    _refuse_shared_targets(jobs)
    targets = [target for _, target in jobs]
    outputs.refuse_inputs(targets, outputs.InputSet(source for source, _ in jobs))
    outputs.refuse_replacing(targets, overwrite)
    return jobs


def _kind_of(path: Path, kinds: tuple[MediaKind, ...]) -> MediaKind:
    """The kind that reads ``path``; the first kind for a file no kind names (it fails when decoded)."""
    return next((k for k in kinds if k.reads(path)), kinds[0])


def _writable_kind(source: Path, target: Path, kinds: tuple[MediaKind, ...]) -> MediaKind:
    suffix = target.suffix.lower()
    readers = [k for k in kinds if k.reads(source, alone=True)] or [kinds[0]]
    for kind in readers:
        if suffix in kind.outputs:
            return kind
    allowed = sorted(set().union(*(k.outputs for k in readers)))
    raise UserError(f"cannot tell the output format from {target.name}; use one of {', '.join(allowed)}")


def _beside_inputs(jobs: list[tuple[Path, Path]], style: str) -> list[tuple[Path, Path]]:
    """Targets that are inputs renamed ``<stem>-<style>``; inputs that are such renamed targets dropped."""
    inputs = outputs.InputSet(source for source, _ in jobs)
    renamed = [(source, target.with_name(outputs.styled_name(target.stem, style, target.suffix))
                if inputs.holds(target) else target) for source, target in jobs]
    results = outputs.InputSet(new for (_, target), (_, new) in zip(jobs, renamed) if target != new)
    return [(source, target) for source, target in renamed if not results.holds(source)]


def _refuse_shared_targets(jobs: list[tuple[Path, Path]]) -> None:
    seen: dict[str, Path] = {}
    for source, target in jobs:
        key = os.path.normcase(str(target.resolve()))
        if key in seen:
            raise UserError(f"{seen[key]} and {source} would both be written to {target}; "
                            "stylize them into separate folders")
        seen[key] = source

