"""The ``mlabs-desktop`` command line: its flags (one table of training parameters) and a `TrainingConfig` from them."""

from __future__ import annotations

import argparse
from typing import Sequence

from mlabs_desktop.core.config import ARCHITECTURES, DISTILL_STEPS, PARAMS, TrainingConfig
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.formats.exporters import FORMATS as EXPORT_FORMATS


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one ``error:`` line, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


OVERWRITE_HELP = "replace output files that already exist (an input is never replaced)"
PROGRESS_HELP = "text: a progress bar; json: one JSON object per line on stdout, for scripts (default: text)"
DEVICE_HELP = "where to run: auto picks a GPU when one is visible (default: auto)"
LAB_ONLY_HELP = "ignored; accepted so the 2017 MachineLabs lab's commands run unchanged"
AUTO_BATCH_HELP = ("when a step runs out of memory, halve the batch size (down to 1) and continue "
                   "from the last checkpoint")


def _add_param_flags(parser: argparse.ArgumentParser) -> None:
    # Defaults are None so a preset's values apply unless a flag is given explicitly.
    for spec in PARAMS:
        kwargs = {"choices": spec.choices} if spec.choices else {}
        default = getattr(TrainingConfig(), spec.field)
        shown = f"{default:g}" if isinstance(default, float) else default
        parser.add_argument(f"--{spec.name}", dest=spec.field, default=None,
                            help=f"{spec.help.rstrip('.')} (default: {shown}, unless --preset sets it)",
                            metavar=spec.name.split("-")[-1].upper() if not spec.choices else None, **kwargs)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="mlabs-desktop", description="Train fast neural style transfer "
                            "models and apply them to photos. With no command, opens the desktop app.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('mlabs_desktop').__version__}")
    parser.add_argument("--screenshot", metavar="FILE.png", help="render a view offscreen to FILE and exit")
    parser.add_argument("--view", choices=("train", "library", "stylize"), help="the view to open or render")
    parser.add_argument("--self-test", action="store_true", help="check the installation and exit")
    sub = parser.add_subparsers(dest="command", parser_class=ArgumentParser)

    train = sub.add_parser("train", help="train a style from a painting and a folder of photos")
    train.add_argument("--style", metavar="FILE_OR_URL", help="the style image (a painting), file or URL (required)")
    train.add_argument("--train-path", metavar="DIR",
                       help="folder of training photos, searched recursively (required)")
    train.add_argument("--vgg-path", metavar="FILE", help="VGG19 weights: Keras notop .h5 or MatConvNet .mat "
                       "(default: the file `mlabs-desktop download vgg19` fetched)")
    train.add_argument("--checkpoint-dir", metavar="DIR", help="also copy the finished model into this folder")
    _add_param_flags(train)
    train.add_argument("--preset", help="a preset name or YAML file; explicit flags override it")
    train.add_argument("--name", help="name of the model in the library")
    train.add_argument("--test", metavar="FILE", help="image to preview the style on at every checkpoint")
    train.add_argument("--init-from", metavar="MODEL", help="fine-tune from this library model")
    train.add_argument("--seed", type=int, metavar="N", help="random seed for the data order")
    train.add_argument("--progress", choices=("text", "json"), default="text", help=PROGRESS_HELP)
    train.add_argument("--auto-batch", action="store_true", help=AUTO_BATCH_HELP)
    train.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    resume = sub.add_parser("resume", help="continue training a model from its last checkpoint")
    resume.add_argument("name", metavar="MODEL", help="the library model to continue")
    resume.add_argument("--max-steps", type=int, default=0, metavar="N",
                        help="stop after this many more steps (default: 0, train to the model's end)")
    resume.add_argument("--batch-size", type=int, help="continue with this batch size instead of the model's "
                        "(the step count goes on; an epoch then counts steps of the new size)")
    resume.add_argument("--progress", choices=("text", "json"), default="text", help=PROGRESS_HELP)
    resume.add_argument("--auto-batch", action="store_true", help=AUTO_BATCH_HELP)

    distill = sub.add_parser("distill", help="make a fast copy of a style: a smaller network learns its outputs "
                             "(no VGG19 file needed)")
    distill.add_argument("teacher", metavar="MODEL", help="the library model to copy")
    distill.add_argument("--into", choices=ARCHITECTURES, default="tiny", help="the copy's network (default: tiny)")
    distill.add_argument("--train-path", metavar="DIR",
                         help="photos to learn on (default: those the model was trained on)")
    distill.add_argument("--name", help="the copy's name (default: 'MODEL (fast copy)')")
    distill.add_argument("--steps", type=int, default=DISTILL_STEPS, metavar="N",
                         help="how long the copy learns; more steps copy the style more closely "
                              f"(default: {DISTILL_STEPS})")
    distill.add_argument("--batch-size", type=int, default=4, metavar="N", help="photos per step (default: 4)")
    distill.add_argument("--image-size", type=int, default=256, metavar="N",
                         help="the copy learns on square crops of this many pixels (default: 256)")
    distill.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=DEVICE_HELP)

    stylize = sub.add_parser("stylize", help="apply a trained style to a photo, a clip or a folder")
    stylize.add_argument("--checkpoint", required=True,
                         help="library model name, model folder, or a fast-style-transfer checkpoint as the "
                              "2017 MachineLabs lab wrote it (its folder, or a .ckpt prefix)")
    stylize.add_argument("--in-path", required=True,
                         help="image or clip (mp4, mov, m4v, mkv, webm, avi), or a folder of them; an animated GIF "
                              "or WebP is read as a clip when --out-path names a clip")
    stylize.add_argument("--out-path", required=True, help="output file or folder (clips: .mp4, .m4v, .mov or .mkv)")
    stylize.add_argument("--allow-different-dimensions", action="store_true",
                         help=f"{LAB_ONLY_HELP}; images of any size always work")
    stylize.add_argument("--batch-size", type=int, default=1, help=LAB_ONLY_HELP)
    stylize.add_argument("--strength", type=float, default=1.0, metavar="X",
                          help="how much of the style to apply: 1 fully styled (default), 0 the original photo")
    stylize.add_argument("--preserve-colors", action="store_true", help="keep the photo's colours")
    stylize.add_argument("--max-size", type=int, metavar="N",
                          help="photos: downsize so the longest side is at most N pixels")
    stylize.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=DEVICE_HELP)
    stylize.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                         help="auto (default): bfloat16 where it is faster here and this model's bfloat16 output "
                              "is at least 40 dB PSNR against float32 on real photos (checked once per model), "
                              "else float32")
    stylize.add_argument("--brush", type=float, default=1.0, metavar="X",
                         help="brush strokes X times the size the style was trained with (0.25-4; 1: as trained)")
    stylize.add_argument("--mix", metavar="MODEL:AMOUNT",
                         help="mix in a second style, e.g. --mix='Van Gogh:0.3' for 30%% of it")
    stylize.add_argument("--mix-weights", action="store_true",
                         help="with --mix: blend the two networks' weights into one network instead of mixing "
                              "their results (for styles fine-tuned from the same model)")
    stylize.add_argument("--steady", action=argparse.BooleanOptionalAction, default=True,
                         help="clips: hold the look steady from frame to frame (default); --no-steady styles each "
                              "frame on its own")
    stylize.add_argument("--first-seconds", type=float, metavar="S",
                         help="clips: stylize only the first S seconds (a quick preview)")
    stylize.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    library = sub.add_parser("library", help="list, show, rename or delete models")
    lib_sub = library.add_subparsers(dest="action", required=True, parser_class=ArgumentParser)
    lib_sub.add_parser("list", help="list the models")
    show = lib_sub.add_parser("show", help="show a model's manifest")
    show.add_argument("name", metavar="MODEL", help="library model name")
    rename = lib_sub.add_parser("rename", help="rename a model")
    rename.add_argument("old", help="the model's name now")
    rename.add_argument("new", help="its new name")
    delete = lib_sub.add_parser("delete", help="delete a model")
    delete.add_argument("name", metavar="MODEL", help="library model name")

    bench = sub.add_parser("bench", help="time stylizing and a training step for each network, beside the "
                           "matmul and convolution rates this machine can reach")
    bench.add_argument("--json", action="store_true", help="print machine-readable JSON")
    bench.add_argument("--quick", action="store_true", help="fewer, smaller measurements")
    bench.add_argument("--architecture", action="append", choices=ARCHITECTURES,
                       help="time only this network; repeat for several (default: all)")
    bench.add_argument("--reference-checkout", metavar="DIR",
                       help="also time the reference implementation with its own code: a checkout of "
                            "lengstrom/fast-style-transfer (runs that checkout's code)")
    bench.add_argument("--reference-vgg", metavar="FILE.mat",
                       help="with --reference-checkout: the MatConvNet VGG19 file its training step needs")

    import_ckpt = sub.add_parser("import-checkpoint", help="add a fast-style-transfer checkpoint, as the 2017 "
                                 "MachineLabs lab wrote it, to the library")
    import_ckpt.add_argument("path", help="folder holding checkpoint + fns.ckpt.*, or a .ckpt prefix")
    import_ckpt.add_argument("--name", required=True, help="name of the model in the library")

    export = sub.add_parser("export", help="export a model to share it or use it elsewhere")
    export.add_argument("name", metavar="MODEL", help="library model name")
    export.add_argument("--format", choices=EXPORT_FORMATS,
                        default="bundle", help="bundle: a .mlstyle file for MachineLabs Desktop; savedmodel/"
                        "tflite: TensorFlow formats; onnx: for onnxruntime and other ONNX runtimes; "
                        "reference-checkpoint: a fast-style-transfer checkpoint, as the 2017 MachineLabs lab reads")
    export.add_argument("--out", help="output file or folder (default: a name in the current folder)")
    export.add_argument("--size", help="tflite only: fix the input size, HxW (default: any size)")
    export.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    import_bundle = sub.add_parser("import", help="add a shared .mlstyle bundle (file or URL), or a PyTorch "
                                   "fast-neural-style .pth or ONNX .onnx file, to the library")
    import_bundle.add_argument("source", help=".mlstyle file or http(s) URL, or a .pth or .onnx file")
    import_bundle.add_argument("--name", help="name in the library (default: the bundle's own, or the file's name)")

    lab = sub.add_parser("lab", help="run a MachineLabs lab file (ml.yaml) here")
    lab_sub = lab.add_subparsers(dest="action", required=True, parser_class=ArgumentParser)
    lab_run = lab_sub.add_parser(
        "run", help="fetch a lab's inputs, map its mounts, then train or stylize as it says",
        description="Run a MachineLabs lab file locally. Arguments after `--` go to train/stylize after "
                    "the lab's own parameters and override them, e.g. `-- --image-size=32 --max-steps=10`.")
    lab_run.add_argument("file", help="the lab's YAML file (often ml.yaml)")
    lab_run.add_argument("--mount", action="append", default=[], metavar="NAME=DIR",
                         help="local folder for the lab's mount NAME (/machinelabs/mounts/NAME); remembered")
    lab_run.add_argument("--input", action="append", default=[], metavar="NAME=FILE",
                         help="use FILE as the lab's input NAME instead of downloading it")
    lab_run.add_argument("--workdir", metavar="DIR",
                         help="folder that gets inputs/ and outputs/ (default: the lab file's folder)")
    lab_run.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    lab_run.add_argument("--allow-writes-outside", action="store_true",
                         help="let the lab write outside its working folder (only for a lab you trust)")

    download = sub.add_parser("download", help="download what training needs")
    download.add_argument("what", choices=("vgg19",), help="vgg19: the 80 MB VGG19 file training needs")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    from mlabs_desktop.core.config import apply_params
    from mlabs_desktop.core.training.presets import find_preset

    config = TrainingConfig()
    if args.preset:
        config = find_preset(args.preset).apply(config).replace(preset=args.preset)
    explicit = {spec.name: getattr(args, spec.field) for spec in PARAMS if getattr(args, spec.field) is not None}
    try:
        config = apply_params(config, explicit)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return config.replace(style=args.style or "", train_path=args.train_path or "", vgg_path=args.vgg_path,
                          checkpoint_dir=args.checkpoint_dir, name=args.name, test=args.test,
                          init_from=args.init_from, seed=args.seed)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed arguments; for ``lab run FILE ... -- ARGS`` the ARGS go on to train/stylize as ``extra_args``."""
    argv, extra = list(argv), []
    if argv[:1] == ["lab"] and "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    args.extra_args = extra
    return args
