"""A photo is never overwritten: outputs never replace their inputs, existing files need --overwrite."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mlabs_desktop.core import outputs
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.stylize.stylizer import plan_outputs
from test_cli import assert_user_error, cli

from conftest import write_photos


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ planning, no network

def test_same_file_gets_the_style_suffix(tmp_path):
    photo = write_photos(tmp_path / "p", count=1) / "photo0.jpg"
    assert plan_outputs(photo, photo, "Van Gogh") == [(photo, photo.with_name("photo0-Van Gogh.jpg"))]


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_a_link_to_the_input_counts_as_the_input(tmp_path, link):
    photo = write_photos(tmp_path / "p", count=1) / "photo0.jpg"
    alias = tmp_path / "alias.jpg"
    (os.link if link == "hard" else os.symlink)(photo, alias)
    [(source, target)] = plan_outputs(photo, alias, "S")
    assert target == tmp_path / "alias-S.jpg"


def test_same_folder_suffixes_every_result_and_skips_earlier_results(tmp_path):
    folder = write_photos(tmp_path / "p", count=3)
    jobs = plan_outputs(folder, folder, "S")
    assert [(s.name, t.name) for s, t in jobs] == [("photo0.jpg", "photo0-S.jpg"), ("photo1.png", "photo1-S.png"),
                                                   ("photo2.jpg", "photo2-S.jpg")]
    (folder / "photo0-S.jpg").write_bytes(b"an earlier result")
    with pytest.raises(outputs.WouldReplace) as caught:
        plan_outputs(folder, folder, "S")
    assert caught.value.paths == [folder / "photo0-S.jpg"]
    # With --overwrite the earlier result is replaced, and it is not stylized again as an input.
    again = plan_outputs(folder, folder, "S", overwrite=True)
    assert [s.name for s, _ in again] == ["photo0.jpg", "photo1.png", "photo2.jpg"]


def test_overwrite_never_reaches_an_input(tmp_path):
    folder = write_photos(tmp_path / "p", count=2)
    inputs = outputs.InputSet([folder / "photo0.jpg"])
    with pytest.raises(UserError, match="one of the files being read"):
        outputs.refuse_inputs([folder / "photo0.jpg"], inputs)
    outputs.refuse_inputs([folder / "photo1.png"], inputs)  # another file is fine


def test_two_inputs_onto_one_output_are_refused(tmp_path):
    folder = tmp_path / "p"
    write_photos(folder, count=1)
    (folder / "photo0.gif").write_bytes((folder / "photo0.jpg").read_bytes())  # becomes photo0.png
    (folder / "photo0.png").write_bytes((folder / "photo0.jpg").read_bytes())
    with pytest.raises(UserError, match="would both be written"):
        plan_outputs(folder, tmp_path / "out", "S")


# ------------------------------------------------------------------ the command line, for real

def test_stylize_onto_itself_keeps_the_original_byte_for_byte(tiny_model, tmp_path):
    photo = write_photos(tmp_path / "p", count=1) / "photo0.jpg"
    before = digest(photo)
    result = cli("stylize", "--checkpoint=tiny", f"--in-path={photo}", f"--out-path={photo}", check=True)
    assert digest(photo) == before
    styled = photo.with_name("photo0-tiny.jpg")
    assert styled.is_file() and str(styled) in result.stderr


def test_stylize_a_folder_into_itself_keeps_every_original(tiny_model, tmp_path):
    folder = write_photos(tmp_path / "p", count=4)
    before = digests(folder)
    cli("stylize", "--checkpoint=tiny", f"--in-path={folder}", f"--out-path={folder}", check=True)
    after = digests(folder)
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == ["photo0-tiny.jpg", "photo1-tiny.png", "photo2-tiny.jpg",
                                                "photo3-tiny.png"]
    # Run again: the earlier results are named, nothing is written without --overwrite.
    result = cli("stylize", "--checkpoint=tiny", f"--in-path={folder}", f"--out-path={folder}")
    assert_user_error(result, "would replace 4 existing files")
    assert digests(folder) == after
    cli("stylize", "--checkpoint=tiny", f"--in-path={folder}", f"--out-path={folder}", "--overwrite", check=True)
    final = digests(folder)
    assert set(final) == set(after) and {k: final[k] for k in before} == before


def test_existing_output_needs_overwrite(tiny_model, tmp_path):
    photo = write_photos(tmp_path / "p", count=1) / "photo0.jpg"
    target = tmp_path / "precious.jpg"
    target.write_bytes(b"someone's photo")
    result = cli("stylize", "--checkpoint=tiny", f"--in-path={photo}", f"--out-path={target}", process=True)
    assert_user_error(result, f"would replace existing file: {target}; add --overwrite")
    assert target.read_bytes() == b"someone's photo"
    cli("stylize", "--checkpoint=tiny", f"--in-path={photo}", f"--out-path={target}", "--overwrite", check=True)
    assert target.read_bytes()[:2] == b"\xff\xd8"  # now the styled JPEG


def test_export_needs_overwrite(tiny_model, tmp_path):
    target = tmp_path / "tiny.mlstyle"
    target.write_bytes(b"not ours")
    assert_user_error(cli("export", "tiny", f"--out={target}"), "would replace existing file")
    assert target.read_bytes() == b"not ours"
    cli("export", "tiny", f"--out={target}", "--overwrite", check=True)
    assert target.read_bytes()[:2] == b"PK"
    # A folder holding another reference checkpoint: its three files are named.
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "checkpoint").write_text("someone else's")
    (ckpt / "notes.txt").write_text("kept")
    with pytest.raises(outputs.WouldReplace) as caught:
        from mlabs_desktop.core.formats.exporters import export_model

        export_model(tiny_model, "reference-checkpoint", ckpt)
    assert caught.value.paths == [ckpt / "checkpoint"]
    assert (ckpt / "checkpoint").read_text() == "someone else's"


def test_train_refuses_a_checkpoint_dir_holding_its_files(vgg_h5, photos_dir, style_image, tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "checkpoint").write_text("a file that is not ours")
    (folder / "holiday.jpg").write_bytes(b"kept")
    result = cli("train", f"--style={style_image}", f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}",
                 "--image-size=32", "--max-steps=1", "--architecture=lite", f"--checkpoint-dir={folder}",
                 process=True)
    assert_user_error(result, f"would replace existing file: {folder / 'checkpoint'}")
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint", "holiday.jpg"]
    assert (folder / "checkpoint").read_text() == "a file that is not ours"
