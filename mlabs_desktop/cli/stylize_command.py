"""``mlabs-desktop stylize``: photos, clips and folders of both, with the controls after training."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlabs_desktop.cli.console import ProgressPrinter, err, fetch
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import format_duration


def cmd_stylize(args: argparse.Namespace) -> int:
    from mlabs_desktop.core.formats.reference_checkpoint import open_model_or_checkpoint
    from mlabs_desktop.core.images.decode import check_openable
    from mlabs_desktop.core.stylize.stylizer import PHOTOS, BlendOptions, Stylizer, plan_outputs, require_input
    from mlabs_desktop.core.stylize.controls import check_brush, check_mix
    from mlabs_desktop.core.video.clips import CLIPS, is_clip_job

    if not 0.0 <= args.strength <= 1.0:
        raise UserError(f"--strength must be between 0 and 1, not {args.strength}")
    if args.max_size is not None and args.max_size < 4:
        raise UserError("--max-size must be at least 4")
    if args.first_seconds is not None and not args.first_seconds > 0:
        raise UserError(f"--first-seconds must be more than 0, not {args.first_seconds}")
    in_path = require_input(Path(fetch(args.in_path)))
    model = open_model_or_checkpoint(args.checkpoint)  # a mistyped name is answered at once
    jobs = plan_outputs(in_path, Path(args.out_path), model.name, args.overwrite, kinds=(PHOTOS, CLIPS))
    if len(jobs) == 1 and not is_clip_job(jobs[0][1]):
        check_openable(jobs[0][0])  # one photo it cannot read is answered before the network loads
    mix = _parse_mix(args.mix)
    check_brush(args.brush), mix and check_mix(mix[1])  # answered before any network loads
    if args.mix_weights and not mix:
        raise UserError("--mix-weights blends the weights of the style given with --mix; add --mix=MODEL:AMOUNT")
    if args.mix_weights:
        stylizer = Stylizer.blended(model, open_model_or_checkpoint(mix[0]), mix[1], args.device, args.precision)
        stylizer.set_controls(args.brush)
    else:
        stylizer = Stylizer.open(model.folder, args.device, precision=args.precision)
        stylizer.set_controls(args.brush, mix and (Stylizer.open(mix[0], args.device, precision=args.precision),
                                                   mix[1]))
    if stylizer.precision == "bfloat16":
        err("stylizing in bfloat16" + (" (this model's bfloat16 output is at least 40 dB PSNR against float32)"
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
            err(f"skipped {report.source}: {report.error}")
        else:
            err(f"[{report.done}/{report.total}] {report.output}")
    return failures


def _stylize_clips(stylizer, jobs: list[tuple[Path, Path]], options, args: argparse.Namespace, alone: bool) -> int:
    from mlabs_desktop.core.video.pipeline import ClipOptions, stylize_clip

    if jobs and args.steady and (stylizer.brush != 1.0 or stylizer.mixed is not None):
        err("note: with --brush or --mix, clips are styled frame by frame (steady mode runs one style as trained)")
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
            err(f"skipped {source}: {exc}")
            continue
        bar.end_bar()
        err(f"{result.path}: {result.frames} frames in {format_duration(result.seconds)}"
             + (f", {result.cuts - 1} scene cuts" if result.cuts > 1 else ""))
    return failures
