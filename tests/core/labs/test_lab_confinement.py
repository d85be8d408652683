"""A stranger's lab file writes only inside its own working folder, and never replaces a file unasked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.labs.lab_file import parse_lab
from mlabs_desktop.core.labs.plan import plan_lab
from mlabs_desktop.cli.main import run_lab
from mlabs_desktop.core.labs.runner import describe_plan

from conftest import SAMPLES, write_photos


def write_lab(folder: Path, *params: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lab = folder / "ml.yaml"
    lab.write_text("parameters:\n" + "".join(f"    - pass-as: {p}\n" for p in params))
    return lab


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    """Someone's photo outside the lab's folder."""
    photo = write_photos(tmp_path / "Pictures", count=1) / "photo0.jpg"
    return photo


def assert_nothing_written(lab_dir: Path, precious: Path, before: bytes) -> None:
    assert precious.read_bytes() == before
    assert sorted(p.name for p in lab_dir.iterdir()) == ["ml.yaml"]  # no inputs/ or outputs/ either


@pytest.mark.parametrize("out", ["ABSOLUTE", "../Pictures/photo0.jpg", "~/../../{root}/Pictures/photo0.jpg"])
def test_a_write_outside_the_lab_folder_is_refused_naming_key_and_line(tiny_model, tmp_path, precious, out):
    before = precious.read_bytes()
    out = str(precious) if out == "ABSOLUTE" else out.format(root=str(tmp_path).lstrip("/"))
    lab_dir = tmp_path / "lab"
    lab = write_lab(lab_dir, "--checkpoint=tiny", f"--in-path={SAMPLES / 'chelsea.jpg'}", f"--out-path={out}")
    with pytest.raises(UserError) as caught:
        run_lab(lab)
    message = str(caught.value)
    assert "ml.yaml line 4" in message and "--out-path=" in message and "outside the lab's working folder" in message
    assert_nothing_written(lab_dir, precious, before)


def test_a_symlinked_outputs_folder_is_refused(tiny_model, tmp_path, precious):
    before = precious.read_bytes()
    lab_dir = tmp_path / "lab"
    lab = write_lab(lab_dir, "--checkpoint=tiny", f"--in-path={SAMPLES / 'chelsea.jpg'}", "--out-path=outputs/photo0.jpg")
    (lab_dir / "outputs").symlink_to(precious.parent, target_is_directory=True)
    with pytest.raises(UserError, match="outside the lab's working folder"):
        run_lab(lab)
    assert precious.read_bytes() == before and not (lab_dir / "inputs").exists()


def test_a_checkpoint_dir_outside_is_refused(tmp_path, precious, vgg_h5, photos_dir, style_image):
    lab_dir = tmp_path / "lab"
    lab = write_lab(lab_dir, f"--style={style_image}", f"--train-path={photos_dir}",
                    f"--checkpoint-dir={precious.parent}")
    (precious.parent / "checkpoint").write_text("not the lab's")
    with pytest.raises(UserError, match=r"line 4: --checkpoint-dir=.* writes outside"):
        run_lab(lab)
    assert (precious.parent / "checkpoint").read_text() == "not the lab's"


def test_a_checkpoint_dir_inside_holding_files_is_not_replaced(tmp_path, vgg_h5, photos_dir, style_image, capfd):
    lab_dir = tmp_path / "lab"
    lab = write_lab(lab_dir, f"--style={style_image}", f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}",
                    "--checkpoint-dir=models", "--image-size=32", "--max-steps=1", "--architecture=lite")
    (lab_dir / "models").mkdir()
    (lab_dir / "models" / "checkpoint").write_text("from another run")
    assert run_lab(lab) == 2
    assert "error: would replace existing file" in capfd.readouterr().err
    assert (lab_dir / "models" / "checkpoint").read_text() == "from another run"


def test_only_the_person_running_a_lab_may_say_overwrite(tmp_path):
    lab = write_lab(tmp_path / "lab", "--checkpoint=tiny", "--in-path=inputs/x.jpg", "--out-path=outputs",
                    "--overwrite")
    with pytest.raises(UserError, match="line 5: a lab file may not pass --overwrite"):
        run_lab(lab)


def test_plan_lists_reads_outside_and_writes(tmp_path, precious):
    lab_dir = tmp_path / "lab"
    lab = parse_lab(write_lab(lab_dir, "--checkpoint=tiny", f"--in-path={precious}", "--out-path=outputs").read_text(),
                    lab_dir / "ml.yaml")
    plan = plan_lab(lab)
    assert plan.reads_outside == [str(precious)]
    assert plan.writes == [lab_dir / "outputs"]
    lines = describe_plan(plan)
    assert f"plan: reads {precious}, outside the lab's own folders" in lines
    assert f"plan: writes into {lab_dir / 'outputs'}" in lines
    # The person running it may let it write elsewhere.
    elsewhere = parse_lab(write_lab(lab_dir, "--checkpoint=tiny", "--in-path=inputs/x.jpg",
                                    f"--out-path={precious.parent}").read_text(), lab_dir / "ml.yaml")
    with pytest.raises(UserError):
        plan_lab(elsewhere)
    assert plan_lab(elsewhere, allow_writes_outside=True).writes == [precious.parent]


def test_a_relative_lab_still_runs_and_writes_in_its_folder(tiny_model, tmp_path):
    lab_dir = tmp_path / "lab"
    lab = write_lab(lab_dir, "--checkpoint=tiny", f"--in-path={SAMPLES / 'chelsea.jpg'}", "--out-path=outputs")
    log: list[str] = []
    assert run_lab(lab, on_log=log.append) == 0, log
    assert (lab_dir / "outputs" / "chelsea.jpg").is_file()
    assert any(line.startswith("plan: runs mlabs-desktop stylize") for line in log)
    assert os.listdir(lab_dir / "inputs") == []
