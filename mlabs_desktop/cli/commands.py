"""What each ``mlabs-desktop`` command does, over the core."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mlabs_desktop.cli.parser import parse
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import (CheckpointEvent, DistillStepEvent, DoneEvent, Event, LogEvent, PreviewEvent,
                                       StepEvent, event_to_json, format_duration, format_steps)


def _out(line: str = "") -> None:
    if sys.stdout is not None:
        print(line, flush=True)


def _err(line: str) -> None:
    if sys.stderr is not None:
        print(line, file=sys.stderr, flush=True)


class ProgressPrinter:
    """Prints trainer events: one JSON object per line, or a text bar on stderr."""

    def __init__(self, mode: str):
        self.mode = mode
        self._last_draw = 0.0
        self._bar_open = False

    def __call__(self, event: Event) -> None:
        if self.mode == "json":
            _out(json.dumps(event_to_json(event)))
            return
        if isinstance(event, StepEvent):
            self._draw(event)
        elif isinstance(event, DistillStepEvent):
            self._line(event.step == event.total_steps, f"step {event.step}/{event.total_steps} loss {event.loss:.4g} "
                       f"ETA {format_duration(event.eta_seconds)}")
        else:
            self.end_bar()
            if isinstance(event, LogEvent):
                _err(("warning: " if event.level == "warning" else "") + event.message)
            elif isinstance(event, CheckpointEvent):
                _err(f"checkpoint at step {event.step}: {event.path}")
            elif isinstance(event, PreviewEvent):
                _err(f"preview: {event.path}")
            elif isinstance(event, DoneEvent):
                _err(f"{event.state}: model '{event.model_name}' after {format_steps(event.step)} "
                     f"({format_duration(event.seconds)}) in {event.folder}")

    def _draw(self, e: StepEvent) -> None:
        width = 24
        filled = int(width * e.step / max(1, e.total_steps))
        bar = "#" * filled + "-" * (width - filled)
        line = (f"[{bar}] step {e.step}/{e.total_steps} epoch {e.epoch + 1} "
                f"loss {e.total_loss:.4g} (content {e.content_loss:.3g}, style {e.style_loss:.3g}, "
                f"tv {e.tv_loss:.3g}) {e.images_per_sec:.2f} img/s ETA {format_duration(e.eta_seconds)}")
        self._line(e.step == e.total_steps, line + (f" skipped {e.skipped}" if e.skipped else ""))

    def _line(self, last: bool, line: str) -> None:
        """One progress line on stderr, at most five a second (the last always), redrawn in place on a terminal."""
        if sys.stderr is None or (time.monotonic() - self._last_draw < 0.2 and not last):
            return
        self._last_draw = time.monotonic()
        line = "\r" + line
        sys.stderr.write(line + "\033[K" if sys.stderr.isatty() else line + "\n")
        sys.stderr.flush()
        self._bar_open = sys.stderr.isatty()

    def clip(self, p) -> None:
        """A clip's progress (`video.pipeline.ClipProgress`) as a bar with frames per second and time left."""
        width = 24
        filled = int(width * p.frames_done / max(1, p.frames_total))
        self._line(p.frames_done == p.frames_total,
                   f"[{'#' * filled}{'-' * (width - filled)}] {p.source.name}: frame {p.frames_done}/{p.frames_total} "
                   f"{p.frames_per_second:.2f} frames/s ETA {format_duration(p.seconds_left)}")

    def end_bar(self) -> None:
        if self._bar_open and sys.stderr is not None:
            sys.stderr.write("\n")
            self._bar_open = False


@contextmanager
def stop_on_interrupt(trainer) -> Iterator[None]:
    """First Ctrl-C asks the trainer to stop after a checkpoint; a second one aborts."""
    def handler(signum, frame):
        if trainer.stopping:
            raise KeyboardInterrupt
        _err("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)")
        trainer.stop()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def engine() -> None:
    """Start Keras and its backend quietly; every command calls this before its first network."""
    from mlabs_desktop.core.hardware.devices import import_keras_quietly

    import_keras_quietly()


def _fetch(value: str | None) -> str | None:
    """A local path unchanged; an http(s) URL downloaded through the cache."""
    if not value:
        return value
    from mlabs_desktop.core.transfer.downloads import fetch_to_path
    from mlabs_desktop.core.transfer.http import is_url

    return str(fetch_to_path(value)) if is_url(value) else value


def _run_trainer(trainer, progress: str, auto_batch: bool = False) -> int:
    """Train; with ``auto_batch`` a step that runs out of memory halves the batch (down to 1) and goes on."""
    from mlabs_desktop.core.hardware.memory import TrainingOutOfMemory

    trainer.on_event = ProgressPrinter(progress)
    while True:
        try:
            with stop_on_interrupt(trainer):
                trainer.run()
            return 0
        except TrainingOutOfMemory as exc:
            if not auto_batch or exc.event.smaller_batch is None or trainer.stopping:
                raise
            oom = exc.event
        # Out of the except block, so the failed run is released before the next one starts.
        trainer = trainer.with_smaller_batch(oom)


def cmd_train(args: argparse.Namespace) -> int:
    from mlabs_desktop.cli.parser import config_from_args

    config = config_from_args(args)
    config = config.replace(style=_fetch(config.style), test=_fetch(config.test),
                            vgg_path=_fetch(config.vgg_path))
    from mlabs_desktop.core.training.inputs import read_images, validate

    read_images(validate(config))  # a wrong path or value answers before the engine starts
    if config.checkpoint_dir:
        from mlabs_desktop.core.training.model_writer import checkpoint_dir_targets
        from mlabs_desktop.core.outputs import refuse_replacing

        refuse_replacing(checkpoint_dir_targets(Path(config.checkpoint_dir)), args.overwrite)
    engine()
    from mlabs_desktop.core.training.trainer import Trainer

    return _run_trainer(Trainer(config), args.progress, args.auto_batch)


def cmd_resume(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.library.store import Library

    if args.max_steps < 0:
        raise UserError("--max-steps must be 0 (no limit) or more")
    Library().get(args.name)  # an unknown name is answered before the engine starts
    engine()
    from mlabs_desktop.core.training.trainer import Trainer

    trainer = Trainer.for_resume(args.name, args.max_steps, batch_size=args.batch_size)
    return _run_trainer(trainer, args.progress, args.auto_batch)


def cmd_stylize(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.formats.reference_checkpoint import open_model_or_checkpoint
    from mlabs_desktop.core.stylize.stylizer import PHOTOS, BlendOptions, Stylizer, plan_outputs, require_input
    from mlabs_desktop.core.stylize.controls import check_brush, check_mix
    from mlabs_desktop.core.video.clips import CLIPS, is_clip_job

    if not 0.0 <= args.strength <= 1.0:
        raise UserError(f"--strength must be between 0 and 1, not {args.strength}")
    if args.max_size is not None and args.max_size < 4:
        raise UserError("--max-size must be at least 4")
    if args.first_seconds is not None and not args.first_seconds > 0:
        raise UserError(f"--first-seconds must be more than 0, not {args.first_seconds}")
    in_path = require_input(Path(_fetch(args.in_path)))
    model = open_model_or_checkpoint(args.checkpoint)  # a mistyped name is answered at once
    jobs = plan_outputs(in_path, Path(args.out_path), model.name, args.overwrite, kinds=(PHOTOS, CLIPS))
    mix = _parse_mix(args.mix)
    check_brush(args.brush), mix and check_mix(mix[1])  # answered before any network loads
    stylizer = Stylizer.open(model.folder, args.device, precision=args.precision)
    stylizer.set_controls(args.brush, mix and (Stylizer.open(mix[0], args.device, precision=args.precision), mix[1]))
    if stylizer.precision == "bfloat16":
        _err("stylizing in bfloat16" + (" (this model's output matches float32 within the 40 dB gate)"
                                        if args.precision == "auto" else ""))
    options = BlendOptions(args.strength, args.preserve_colors)
    photos = [job for job in jobs if not is_clip_job(job[1])]
    clips = [job for job in jobs if is_clip_job(job[1])]
    failures = _stylize_photos(stylizer, photos, options, args.max_size, alone=len(jobs) == 1)
    failures += _stylize_clips(stylizer, clips, options, args, alone=len(jobs) == 1)
    if failures and failures == len(jobs):
        raise UserError(f"none of the {len(jobs)} files could be stylized")
    return 0


def _parse_mix(text: str | None) -> tuple[str, float] | None:
    """``--mix=NAME:AMOUNT`` as (name, amount); the amount is checked with the other controls."""
    if text is None:
        return None
    name, _, amount = text.rpartition(":")
    try:
        return name.strip() or _bad_mix(text), float(amount)
    except ValueError:
        _bad_mix(text)


def _bad_mix(text: str):
    raise UserError(f"--mix takes a model and an amount, as in --mix='Van Gogh:0.3', not {text!r}")


def _stylize_photos(stylizer, jobs: list[tuple[Path, Path]], options, max_size: int | None, alone: bool) -> int:
    failures = 0
    for report in stylizer.stylize_many(jobs, options, max_size):
        if report.error and alone:
            raise UserError(report.error)  # one photo: its reason is the error, on one line
        if report.error:
            failures += 1
            _err(f"skipped {report.source}: {report.error}")
        else:
            _err(f"[{report.done}/{report.total}] {report.output}")
    return failures


def _stylize_clips(stylizer, jobs: list[tuple[Path, Path]], options, args: argparse.Namespace, alone: bool) -> int:
    from mlabs_desktop.core.video.pipeline import ClipOptions, stylize_clip

    clip_options = ClipOptions(options, steady=args.steady, seconds=args.first_seconds)
    failures = 0
    for source, target in jobs:
        bar = ProgressPrinter("text")
        try:
            result = stylize_clip(stylizer, source, target, clip_options, progress=bar.clip)
        except UserError as exc:
            if alone:
                raise
            bar.end_bar()
            failures += 1
            _err(f"skipped {source}: {exc}")
            continue
        bar.end_bar()
        _err(f"{result.path}: {result.frames} frames in {format_duration(result.seconds)}"
             + (f", {result.cuts - 1} scene cuts" if result.cuts > 1 else ""))
    return failures


def cmd_library(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.library.store import Library

    library = Library()
    if args.action == "list":
        models = library.models()
        if not models:
            _out(f"no models yet in {library.root}; train one with `mlabs-desktop train`")
        for m in models:
            stats = m.manifest.statistics
            _out(f"{m.name}\t{m.manifest.architecture}\t{format_steps(int(stats.get('steps', 0) or 0))}\t"
                 f"{m.manifest.state}\t{m.manifest.created}")
    elif args.action == "show":
        model = library.get(args.name)
        _out(f"folder: {model.folder}")
        _out(model.manifest.to_yaml().rstrip())
    elif args.action == "rename":
        model = library.rename(args.old, args.new)
        _out(f"renamed to '{model.name}'")
    elif args.action == "delete":
        library.delete(args.name)
        _out(f"deleted '{args.name}'")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    engine()
    from mlabs_desktop.core.bench.measure import run_benchmark
    from mlabs_desktop.core.bench.report import format_report
    from mlabs_desktop.gui.startup_probe import measure_startup

    report = run_benchmark(quick=args.quick, architectures=args.architecture, startup=measure_startup)
    _out(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.networks import loss_network as vgg
    from mlabs_desktop.core.transfer.downloads import download
    from mlabs_desktop.core.paths import weights_dir

    printer = _download_printer()
    path = download(vgg.KERAS_VGG19_URL, md5=vgg.KERAS_VGG19_MD5, expected_size=vgg.KERAS_VGG19_SIZE,
                    progress=printer)
    target = weights_dir() / vgg.KERAS_VGG19_FILENAME
    if not target.exists():
        import shutil
        shutil.copyfile(path, target.with_suffix(".part"))
        target.with_suffix(".part").replace(target)
    _err("")
    _out(f"VGG19 weights ready: {target}")
    return 0


def _download_printer():
    last = [0.0]

    def show(p) -> None:
        if sys.stderr is None or time.monotonic() - last[0] < 0.2:
            return
        last[0] = time.monotonic()
        total = f"/{p.total / 1e6:.1f}" if p.total else ""
        sys.stderr.write(f"\rdownloading {p.received / 1e6:.1f}{total} MB ({p.bytes_per_sec / 1e6:.1f} MB/s)")
        sys.stderr.flush()
    return show


def cmd_distill(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.training.distill import DistillConfig, Distiller

    Library().get(args.teacher)  # an unknown name is answered before the engine starts
    if args.steps < 1:
        raise UserError("--steps must be at least 1")
    engine()
    config = DistillConfig(args.teacher, args.into, args.train_path, args.name, args.steps, args.batch_size,
                           args.image_size, device=args.device)
    distiller = Distiller(config, ProgressPrinter("text"))
    with stop_on_interrupt(distiller):
        result = distiller.run()
    _out(f"'{result.model.name}': a {config.architecture} copy of '{args.teacher}' after {format_steps(result.steps)} "
         f"({format_duration(result.seconds)}), {result.psnr_db:.1f} dB PSNR against it on {result.held_out} "
         f"photos it did not train on")
    return 0


def require_file(path: Path) -> Path:
    if not path.expanduser().is_file():
        raise UserError(f"no such file: {path}")
    return path.expanduser()


def cmd_import_checkpoint(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.formats.reference_checkpoint import import_reference_checkpoint

    path = _fetch(args.path)
    engine()
    model = import_reference_checkpoint(path, args.name)
    _out(f"imported '{model.name}' into {model.folder}")
    return 0


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 1024x768 (height x width), not {text!r}") from None
    if h < 4 or w < 4:
        raise UserError("--size must be at least 4x4")
    return h, w


def cmd_export(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.formats.exporters import default_output_name, export_model
    from mlabs_desktop.core.library.store import Library

    model = Library().get(args.name)
    out = Path(args.out) if args.out else Path.cwd() / default_output_name(model, args.format)
    engine()
    try:
        path = export_model(model, args.format, out, size=_parse_size(args.size), overwrite=args.overwrite,
                            on_warning=lambda m: _err(f"warning: {m}"))
    except NotImplementedError as exc:
        raise UserError(str(exc)) from None
    _out(str(path))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.formats.bundle_import import import_bundle
    from mlabs_desktop.core.formats.onnx_import import import_onnx, is_onnx
    from mlabs_desktop.core.formats.torch_import import import_pth, is_pth

    engine()  # the weights' shapes are checked against the network Keras builds
    if is_pth(Path(args.source)):
        model = import_pth(require_file(Path(args.source)), name=args.name)
    elif is_onnx(Path(args.source)):
        model = import_onnx(require_file(Path(args.source)), name=args.name)
    else:
        model = import_bundle(args.source, name=args.name, on_warning=lambda m: _err(f"warning: {m}"))
    _out(f"imported '{model.name}' into {model.folder}")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.labs.runner import parse_assignments

    return run_lab_plan(args.file, workdir=args.workdir, mounts=parse_assignments(args.mount, "--mount"),
                        inputs=parse_assignments(args.input, "--input"), extra_args=args.extra_args,
                        on_log=lambda message: _err(f"lab: {message}"), progress=_lab_download_printer(),
                        overwrite=args.overwrite, allow_writes_outside=args.allow_writes_outside)


def run_lab_plan(path, **options) -> int:
    """Prepare a lab (`core.labs.runner.prepare_lab`: plan, inputs) and run its ``train`` or ``stylizer`` here."""
    from mlabs_desktop.core.labs.runner import prepare_lab

    return execute(parse(prepare_lab(path, **options).argv))


def execute(args: argparse.Namespace) -> int:
    """Run the parsed command. Keras is imported by each command once its cheap checks have passed
    (`engine`): a mistyped flag or model name answers at once, not after seconds of TensorFlow start-up."""
    if args.command is None:
        return open_app(args)
    return globals()[f"cmd_{args.command.replace('-', '_')}"](args)


def _lab_download_printer():
    last: dict[str, float] = {}

    def show(name: str, p) -> None:  # called from the download threads
        done = p.total is not None and p.received >= p.total
        if sys.stderr is None or (time.monotonic() - last.get(name, 0.0) < 1.0 and not done):
            return
        last[name] = time.monotonic()
        total = f"/{p.total / 1e6:.1f}" if p.total else ""
        _err(f"lab: downloading {name}: {p.received / 1e6:.1f}{total} MB ({p.bytes_per_sec / 1e6:.1f} MB/s)")
    return show


def open_app(args: argparse.Namespace) -> int:
    from mlabs_desktop.gui.app import run_app

    code = run_app(view=args.view, screenshot=args.screenshot, self_test=args.self_test)
    if args.self_test:
        # The verdict is printed and logged; end here rather than let a crash in
        # TensorFlow's or Qt's teardown turn a clear answer into a signal.
        import logging
        import os

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(code)
    return code


