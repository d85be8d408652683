"""What each ``mlabs-desktop`` command does, over the core."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mlabs_desktop.cli.console import ProgressPrinter, engine, err, fetch, say, stop_on_interrupt
from mlabs_desktop.cli.parser import parse
from mlabs_desktop.cli.stylize_command import cmd_stylize
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import format_duration, format_steps


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
    config = config.replace(style=fetch(config.style), test=fetch(config.test),
                            vgg_path=fetch(config.vgg_path))
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


def cmd_library(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.library.store import Library

    library = Library()
    if args.action == "list":
        models = library.models()
        if not models:
            say(f"no models yet in {library.root}; train one with `mlabs-desktop train`")
        for m in models:
            stats = m.manifest.statistics
            say(f"{m.name}\t{m.manifest.architecture}\t{format_steps(int(stats.get('steps', 0) or 0))}\t"
                 f"{m.manifest.state}\t{m.manifest.created}")
    elif args.action == "show":
        model = library.get(args.name)
        say(f"folder: {model.folder}")
        say(model.manifest.to_yaml().rstrip())
    elif args.action == "rename":
        model = library.rename(args.old, args.new)
        say(f"renamed to '{model.name}'")
    elif args.action == "delete":
        library.delete(args.name)
        say(f"deleted '{args.name}'")
    return 0


def _reference_timing(checkout: str | None, vgg_mat: str | None):
    """What the bench calls to time the reference (None: not asked for); paths are checked now, not after it."""
    from mlabs_desktop.core.bench.reference import check_checkout, check_requirements, time_reference

    if checkout is None:
        if vgg_mat is not None:
            raise UserError("--reference-vgg needs --reference-checkout: the checkout whose training it times")
        return None
    src = check_checkout(Path(checkout))
    mat = None if vgg_mat is None else _reference_vgg(vgg_mat)
    check_requirements()  # after the paths: what is installed never hides a wrong argument
    return lambda: time_reference(src, mat)


def _reference_vgg(vgg_mat: str) -> Path:
    """The --reference-vgg path, once its first bytes say it is a MATLAB file."""
    from mlabs_desktop.core.networks.loss_network import MAT5_HEADER

    try:  # RuntimeError: "~user" of no such user
        mat = Path(vgg_mat).expanduser()
        with open(mat, "rb") as handle:
            header = handle.read(len(MAT5_HEADER))
    except (OSError, RuntimeError):
        header = b""
    if header != MAT5_HEADER:
        raise UserError(f"{vgg_mat} is not a MATLAB file: --reference-vgg takes MatConvNet's "
                        f"imagenet-vgg-verydeep-19.mat")
    return mat


def cmd_bench(args: argparse.Namespace) -> int:
    reference = _reference_timing(args.reference_checkout, args.reference_vgg)  # wrong paths answered at once
    engine()
    from mlabs_desktop.core.bench.measure import run_benchmark
    from mlabs_desktop.core.bench.report import format_report
    from mlabs_desktop.gui.startup_probe import measure_startup

    report = run_benchmark(quick=args.quick, architectures=args.architecture, startup=measure_startup,
                           reference=reference)
    say(json.dumps(report, indent=2) if args.json else format_report(report))
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
    err("")
    say(f"VGG19 weights ready: {target}")
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
    from mlabs_desktop.core.training.dataset import training_folder
    from mlabs_desktop.core.training.distill import DistillConfig, Distiller

    Library().get(args.teacher)  # an unknown name or folder is answered before the engine starts
    if args.train_path:
        training_folder(args.train_path)
    if args.steps < 1:
        raise UserError("--steps must be at least 1")
    engine()
    config = DistillConfig(args.teacher, args.into, args.train_path, args.name, args.steps, args.batch_size,
                           args.image_size, device=args.device)
    distiller = Distiller(config, ProgressPrinter("text"))
    with stop_on_interrupt(distiller, saving="keeping what the copy learnt"):
        result = distiller.run()
    say(f"'{result.model.name}': a {config.architecture} copy of '{args.teacher}' after {format_steps(result.steps)} "
         f"({format_duration(result.seconds)}), {result.psnr_db:.1f} dB PSNR against it {result.judged_on}")
    return 0


def cmd_import_checkpoint(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.formats.reference_checkpoint import import_reference_checkpoint
    from mlabs_desktop.core.formats.reference_reader import locate_reference_checkpoint

    path = fetch(args.path)
    locate_reference_checkpoint(path)  # a wrong path is answered before the engine starts
    engine()
    model = import_reference_checkpoint(path, args.name)
    say(f"imported '{model.name}' into {model.folder}")
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
    from mlabs_desktop.core.formats.exporters import check_export, default_output_name, export_model
    from mlabs_desktop.core.library.store import Library

    model = Library().get(args.name)
    out = Path(args.out) if args.out else Path.cwd() / default_output_name(model, args.format)
    size = _parse_size(args.size)
    check_export(model, args.format, out, size=size, overwrite=args.overwrite)  # answered before the engine starts
    engine()
    try:
        path = export_model(model, args.format, out, size=size, overwrite=args.overwrite,
                            on_warning=lambda m: err(f"warning: {m}"))
    except NotImplementedError as exc:
        raise UserError(str(exc)) from None
    say(str(path))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.stylize.stylizer import require_input
    from mlabs_desktop.core.transfer.http import is_url

    # A wrong path is answered before Keras starts; a URL is checked when it is downloaded.
    source = args.source if is_url(args.source) else str(require_input(Path(args.source)))
    engine()  # the weights' shapes are checked against the network Keras builds
    from mlabs_desktop.core.formats.bundle_import import import_bundle
    from mlabs_desktop.core.formats.onnx_import import import_onnx, is_onnx
    from mlabs_desktop.core.formats.torch_import import import_pth, is_pth

    if is_pth(Path(source)) or is_onnx(Path(source)):
        local = Path(fetch(source))
        model = (import_pth if is_pth(local) else import_onnx)(local, name=args.name)
    else:
        model = import_bundle(source, name=args.name, on_warning=lambda m: err(f"warning: {m}"))
    say(f"imported '{model.name}' into {model.folder}")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.labs.runner import parse_assignments

    return run_lab_plan(args.file, workdir=args.workdir, mounts=parse_assignments(args.mount, "--mount"),
                        inputs=parse_assignments(args.input, "--input"), extra_args=args.extra_args,
                        on_log=lambda message: err(f"lab: {message}"), progress=_lab_download_printer(),
                        overwrite=args.overwrite, allow_writes_outside=args.allow_writes_outside)


def run_lab_plan(path, **options) -> int:
    """Prepare a lab (`core.labs.runner.prepare_lab`: plan, inputs) and run its ``train`` or ``stylize`` here."""
    from mlabs_desktop.core.labs.runner import prepare_lab

    return execute(parse(prepare_lab(path, **options).argv))


def execute(args: argparse.Namespace) -> int:
    """Run the parsed command. Keras is imported by each command once its cheap checks have passed
    (`engine`): a mistyped flag or model name answers at once, not after seconds of TensorFlow start-up."""
    if args.command is None:
        return open_app(args)
    if args.command == "stylize":
        return cmd_stylize(args)
    return globals()[f"cmd_{args.command.replace('-', '_')}"](args)


def _lab_download_printer():
    last: dict[str, float] = {}

    def show(name: str, p) -> None:  # called from the download threads
        done = p.total is not None and p.received >= p.total
        if sys.stderr is None or (time.monotonic() - last.get(name, 0.0) < 1.0 and not done):
            return
        last[name] = time.monotonic()
        total = f"/{p.total / 1e6:.1f}" if p.total else ""
        err(f"lab: downloading {name}: {p.received / 1e6:.1f}{total} MB ({p.bytes_per_sec / 1e6:.1f} MB/s)")
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


