"""The command line: exit codes, output, and one error line.

Most commands run in this process through `cli.main`, as the entry point
calls it (a fresh interpreter would only add seconds of TensorFlow start-up to
each); the user errors run as a real subprocess, as a user types them, and
`tests/test_crash.py` drives real training processes end to end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlabs_desktop.cli import main as cli_module

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, check: bool = False, process: bool = False) -> subprocess.CompletedProcess:
    """Run ``mlabs-desktop ARGS``, in this process unless ``process``; stdout and stderr are captured."""
    if process:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-m", "mlabs_desktop", *args], capture_output=True, text=True,
                                env=env, timeout=300, stdin=subprocess.DEVNULL)
    else:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_module.main(list(args))
        result = subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
    if check:
        assert result.returncode == 0, result.stderr
    return result


def assert_user_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_train_json_progress_then_stylize_list_show(vgg_h5, photos_dir, style_image, tmp_path):
    outputs = tmp_path / "outputs"
    result = cli("train", f"--style={style_image}", f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}",
                 "--image-size=32", "--style-scale=0.25", "--batch-size=2", "--epochs=1", "--checkpoint-iterations=2",
                 "--architecture=lite", "--name=cli style", "--progress=json", f"--checkpoint-dir={outputs}",
                 check=True)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 3  # 6 photos, batch 2, one epoch
    assert set(steps[0]) >= {"step", "epoch", "content_loss", "style_loss", "tv_loss", "total_loss",
                             "images_per_sec", "eta_seconds", "skipped"}
    assert {e["event"] for e in events} == {"log", "step", "checkpoint", "preview", "done"}
    assert events[-1]["event"] == "done" and events[-1]["state"] == "finished"

    photo = tmp_path / "photo.png"
    Image.new("RGB", (101, 67), (90, 120, 200)).save(photo)
    cli("stylize", "--checkpoint=cli style", f"--in-path={photo}", f"--out-path={tmp_path / 'styled.jpg'}",
        check=True)
    assert Image.open(tmp_path / "styled.jpg").size == (101, 67)
    # The 2017 MachineLabs lab's second lab: --checkpoint=<outputs folder>, --out-path=<folder>.
    (tmp_path / "lab-out").mkdir()
    cli("stylize", "--allow-different-dimensions", f"--checkpoint={outputs}", f"--in-path={photo}",
        f"--out-path={tmp_path / 'lab-out'}", check=True)
    assert (tmp_path / "lab-out" / "photo.png").is_file()

    listing = cli("library", "list", check=True).stdout
    assert "cli style" in listing and "lite" in listing
    assert "architecture: lite" in cli("library", "show", "cli style", check=True).stdout
    cli("library", "rename", "cli style", "renamed", check=True)
    cli("library", "delete", "renamed", check=True)
    assert "no models yet" in cli("library", "list", check=True).stdout


def test_text_progress_and_resume(vgg_h5, photos_dir, style_image):
    result = cli("train", f"--style={style_image}", f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}",
                 "--image-size=32", "--style-scale=0.25", "--batch-size=2", "--epochs=2", "--checkpoint-iterations=2",
                 "--architecture=lite", "--name=textual", "--max-steps=2", check=True)
    assert "step 2/2" in result.stderr and "paused: model 'textual' after 2 steps" in result.stderr
    result = cli("resume", "textual", "--progress=json", "--max-steps=1", check=True)
    steps = [json.loads(l) for l in result.stdout.splitlines() if '"step"' in l and '"event": "step"' in l]
    assert [s["step"] for s in steps] == [3]


def test_preset_then_explicit_flags(vgg_h5, photos_dir, style_image):
    result = cli("train", "--preset=quick-look", f"--style={style_image}", f"--train-path={photos_dir}",
                 f"--vgg-path={vgg_h5}", "--image-size=32", "--batch-size=2", "--max-steps=5",
                 "--name=preset run", "--progress=json", check=True)
    # 6 photos at batch 2 are 3 steps an epoch: the preset's 3,000 steps, not its epochs, set the length.
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4, 5]
    assert [(e["state"], e["step"]) for e in events if e["event"] == "done"] == [("paused", 5)]
    show = cli("library", "show", "preset run", check=True).stdout
    assert "architecture: lite" in show and "image-size: 32" in show and "learning-rate: 0.002" in show


@pytest.mark.parametrize("args, fragment", [
    (("train", "--style=/missing.jpg", "--train-path=/tmp"), "does not exist"),
    (("train", "--batch-size=abc"), "batch-size must be a whole number"),
    (("train", "--architecture=huge"), "invalid choice"),
    (("train", "--preset=nope"), "unknown preset 'nope'"),
    (("stylize", "--checkpoint=nope", f"--in-path={ROOT / 'pyproject.toml'}", "--out-path=x.png"), "unknown model 'nope'"),
    (("stylize", "--checkpoint=x", "--in-path=/missing.png", "--out-path=x.png"), "input not found"),
    (("stylize", "--checkpoint=x", "--in-path=x", "--out-path=y", "--strength=2"), "--strength"),
    (("resume", "ghost"), "unknown model 'ghost'"),
    (("library", "show", "ghost"), "unknown model"),
    (("library", "frobnicate"), "invalid choice"),
    (("--no-such-flag",), "unrecognized arguments"),
])
def test_user_errors_exit_2_with_one_line(args, fragment):
    assert_user_error(cli(*args, process=True), fragment)


def test_wrong_vgg_file_is_a_user_error(photos_dir, style_image, tmp_path):
    fake = tmp_path / "vgg.h5"
    fake.write_bytes(b"this is not hdf5")
    result = cli("train", f"--style={style_image}", f"--train-path={photos_dir}", f"--vgg-path={fake}",
                 "--name=x")
    assert_user_error(result, "not a VGG19 weights file")


def test_empty_training_folder_is_a_user_error(style_image, vgg_h5, tmp_path):
    result = cli("train", f"--style={style_image}", f"--train-path={tmp_path}", f"--vgg-path={vgg_h5}")
    assert_user_error(result, "no images in")


@pytest.mark.heavy
def test_bench_quick_json_has_every_figure():
    result = cli("bench", "--quick", "--architecture=lite", "--json", check=True)
    report = json.loads(result.stdout)
    assert report["matmul_gflops"] > 0 and report["matmul_gflops_after"] > 0
    lite = report["architectures"]["lite"]
    assert lite["multiply_adds_per_pixel"] == 42336
    stylize = lite["stylize"]["256x256"]
    assert stylize["megapixels_per_s"] > 0 and 0 < stylize["fraction_of_matmul"]
    # GFLOP/s is counted from the layer shapes: 2 FLOPs per multiply-add.
    assert stylize["gflops"] == pytest.approx(stylize["megapixels_per_s"] * 2 * 42336 / 1e3, rel=0.02)
    assert lite["train_step"]["seconds"] > 0 and lite["train_step"]["precision"] == "float32"
    plain = lite["plain_layers"]  # the reference's layer layout, timed beside ours
    assert plain["size"] == "256x256" and plain["fraction_of_matmul"] > 0
    assert plain["ours_speedup"] == pytest.approx(plain["seconds"] / stylize["seconds"], rel=0.01)
    assert report["machine"]["cpu"] and isinstance(report["machine"]["vector_extensions"], list)
    reduced, limits = lite["stylize_bfloat16"], report["reduced_precision_limits"]
    assert reduced["supported"] == limits["supported"]
    if reduced["supported"]:  # on CPUs with bfloat16 units: the limit, measured in the same run
        assert reduced["speedup"] > 0 and reduced["psnr_db"] > 0
        assert reduced["passes_gate"] == (reduced["psnr_db"] >= reduced["gate_db"] == 40)
        assert min(limits["matmul_gflops"].values()) > 0 and min(limits["conv_gflops"].values()) > 0
        assert reduced["fraction_of_bfloat16_conv"] == pytest.approx(
            reduced["bfloat16_gflops"] / limits["conv_gflops"]["bfloat16"], rel=0.01)
    clip = lite["video"]["360p"]  # a pan over a sample photo through the whole clip pipeline
    assert clip["frames"] == 3 and clip["network_frames_per_s"] > 0 and set(lite["video"]) == {"360p"}
    for mode in ("per_frame", "steady"):
        assert clip[f"{mode}_over_network"] == pytest.approx(
            clip[f"{mode}_frames_per_s"] / clip["network_frames_per_s"], rel=0.01)
    from mlabs_desktop.core.bench.report import format_report

    assert "clip 360p (3 frames): per frame" in format_report(report)
    assert report["peak_rss_mb"] > 0
    assert report["startup"]["tensorflow_imported_before_window"] is False


def test_timing_the_reference_needs_a_checkout_of_it(tmp_path):
    """Checked before the bench starts: a wrong path is answered in a second, not after ten minutes."""
    assert_user_error(cli("bench", f"--reference-checkout={tmp_path}"), "is not a checkout of fast-style-transfer")
    assert_user_error(cli("bench", f"--reference-vgg={tmp_path / 'x.mat'}"), "--reference-vgg needs --reference-checkout")
    assert_user_error(cli("bench", f"--reference-checkout={tmp_path / 'nowhere'}"), "nowhere: no such folder")
    assert_user_error(cli("bench", "--reference-checkout=~no-such-user-here/fst"), "no such user's home folder")
    (tmp_path / "src").mkdir()
    for name in ("transform", "vgg", "optimize", "utils"):
        (tmp_path / "src" / f"{name}.py").write_text("")
    assert_user_error(cli("bench", f"--reference-checkout={tmp_path}"), "it has no net() in src/transform.py")
    (tmp_path / "src" / "transform.py").write_text("def net(image):\n    pass\n")
    (tmp_path / "src" / "vgg.py").write_text("def net(path, image):\n    pass\n")
    (tmp_path / "src" / "optimize.py").write_text("def optimize(*args):\n    pass\n")
    assert_user_error(cli("bench", f"--reference-checkout={tmp_path}", f"--reference-vgg={tmp_path / 'x.mat'}"),
                      "--reference-vgg takes MatConvNet's imagenet-vgg-verydeep-19.mat")
    (tmp_path / "vgg.txt").write_text("not MATLAB")
    assert_user_error(cli("bench", f"--reference-checkout={tmp_path}", f"--reference-vgg={tmp_path / 'vgg.txt'}"),
                      "vgg.txt is not a MATLAB file")


def test_timing_the_reference_names_the_packages_its_code_needs(tmp_path, monkeypatch):
    """Its code imports packages of its own; one missing is named with the command that installs it."""
    from mlabs_desktop.core.bench import reference

    (tmp_path / "src").mkdir()
    for module, function in {**dict.fromkeys(reference.MODULES), **reference.ENTRY_POINTS}.items():
        (tmp_path / "src" / f"{module}.py").write_text(f"def {function}(*args):\n    pass\n" if function else "")
    monkeypatch.setattr(reference, "REQUIREMENTS", {"numpy": "numpy", "no_such_module_here": "no-such-package"})
    assert_user_error(cli("bench", f"--reference-checkout={tmp_path}"),
                      "needs no-such-package, not installed here: pip install no-such-package")


def test_asking_for_a_missing_gpu_explains_how_to_get_one(tiny_model, tmp_path):
    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(photo)
    result = cli("stylize", "--checkpoint=tiny", f"--in-path={photo}", f"--out-path={tmp_path / 'o.png'}",
                 "--device=gpu")
    assert_user_error(result, "no GPU is visible")
    assert "tensorflow[and-cuda]" in result.stderr  # the Linux hint


def test_export_import_and_reference_checkpoint_commands(tiny_model, tmp_path):
    bundle = tmp_path / "tiny.mlstyle"
    assert cli("export", "tiny", "--format=bundle", f"--out={bundle}", check=True).stdout.strip() == str(bundle)
    imported = cli("import", str(bundle), "--name=shared", check=True).stdout
    assert "imported 'shared" in imported
    assert "shared" in cli("library", "list", check=True).stdout
    assert_user_error(cli("export", "tiny", "--format=reference-checkpoint", f"--out={tmp_path / 'ref'}"),
                      "only classic models")
    assert_user_error(cli("import", str(tmp_path / "missing.mlstyle")), "")
    assert_user_error(cli("import-checkpoint", str(tmp_path), "--name=x"), "")


def test_brush_and_mix_from_the_command_line(tiny_model, tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    cli("stylize", "--checkpoint=tiny", f"--in-path={photo}", f"--out-path={tmp_path / 'b.png'}", "--brush=2",
        "--mix=tiny:0.5", check=True)
    assert Image.open(tmp_path / "b.png").size == (64, 48)
    for flag, words in (("--brush=9", "--brush must be between 0.25 and 4, not 9"),
                        ("--mix=tiny", "--mix takes a model and an amount"),
                        ("--mix=tiny:3", "the amount of --mix must be between 0 and 1, not 3"),
                        ("--mix=nobody:0.5", "unknown model 'nobody'")):
        result = cli("stylize", "--checkpoint=tiny", f"--in-path={photo}", f"--out-path={tmp_path / 'x.png'}", flag)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_mixing_the_weights_of_two_fine_tuned_styles(tiny_model, tmp_path):
    from mlabs_desktop.core.library.store import Library
    from sibling_styles import fine_tuned

    library = Library()
    fine_tuned(library, "warm", tiny_model, 0.02, 1)
    fine_tuned(library, "cold", tiny_model, 0.02, 2)
    fine_tuned(library, "stranger", tiny_model, 0.02, 3, sha="2" * 64)
    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    outputs = {}
    for amount in ("0", "1", "0.5"):
        outputs[amount] = tmp_path / f"{amount}.png"
        cli("stylize", "--checkpoint=warm", f"--in-path={photo}", f"--out-path={outputs[amount]}",
            f"--mix=cold:{amount}", "--mix-weights", "--precision=float32", check=True)
    for name, amount in (("warm", "0"), ("cold", "1")):  # the ends are the styles themselves
        alone = tmp_path / f"{name}.png"
        cli("stylize", f"--checkpoint={name}", f"--in-path={photo}", f"--out-path={alone}", "--precision=float32",
            check=True)
        difference = np.abs(np.asarray(Image.open(alone), float) - np.asarray(Image.open(outputs[amount]), float))
        assert difference.max() <= 1
    middle = np.asarray(Image.open(outputs["0.5"]), float)
    assert np.abs(middle - np.asarray(Image.open(outputs["0"]), float)).mean() > 0.5
    for flags, words in ((["--mix=stranger:0.5", "--mix-weights"], "'warm' and 'stranger' were not fine-tuned from "
                          "one parent network, so their weights cannot be blended; mix their results instead: "
                          "leave out --mix-weights"),
                         (["--mix-weights"], "--mix-weights blends the weights of the style given with --mix; add "
                          "--mix=MODEL:AMOUNT")):
        result = cli("stylize", "--checkpoint=warm", f"--in-path={photo}", f"--out-path={tmp_path / 'x.png'}", *flags)
        assert result.returncode == 2 and result.stderr == f"error: {words}\n", result.stderr
