"""The model library on disk: listing, names, atomic creation, rename, delete, manifests."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import Library, Manifest, read_manifest
from mlabs_desktop.core.filenames import slugify


def test_library_lives_under_mlabs_desktop_home(isolated_home):
    assert Library().root.is_relative_to(isolated_home)


def test_list_get_rename_delete(tiny_model):
    library = Library()
    assert [m.name for m in library.models()] == ["tiny"]
    assert library.get("TINY").folder == tiny_model.folder          # case-insensitive lookup
    assert library.get(str(tiny_model.folder)).name == "tiny"       # a model folder path works too
    renamed = library.rename("tiny", "Starry Night")
    assert renamed.folder.name == "Starry Night"
    assert read_manifest(renamed.folder).name == "Starry Night"
    library.delete("Starry Night")
    assert library.models() == []
    assert [p.name for p in library.root.iterdir() if not p.name.startswith(".")] == []


def test_unknown_model_lists_known_names(tiny_model):
    with pytest.raises(UserError, match="unknown model 'nope'.*tiny"):
        Library().get("nope")


def test_rename_refuses_a_taken_name(tiny_model):
    library = Library()
    shutil.copytree(tiny_model.folder, library.root / "other")
    manifest = read_manifest(library.root / "other")
    manifest.name = "other"
    (library.root / "other" / "manifest.yaml").write_text(manifest.to_yaml())
    with pytest.raises(UserError, match="already exists"):
        library.rename("other", "tiny")


def test_broken_and_half_written_folders_are_not_listed(tiny_model):
    library = Library()
    (library.root / "no-manifest").mkdir()
    crashed = library.root / ".staging-crashed.abc"
    crashed.mkdir()
    os.utime(crashed, (0, 0))  # left by a crash long ago
    (library.root / ".staging-building-now.abc").mkdir()
    bad = library.root / "bad-yaml"
    bad.mkdir()
    (bad / "manifest.yaml").write_text("name: [unclosed")
    future = library.root / "future"
    shutil.copytree(tiny_model.folder, future)
    data = yaml.safe_load((future / "manifest.yaml").read_text())
    data["format_version"] = 99
    (future / "manifest.yaml").write_text(yaml.safe_dump(data))
    assert [m.name for m in Library().models()] == ["tiny"]
    assert not crashed.exists()                                    # swept on open
    assert (library.root / ".staging-building-now.abc").exists()  # someone may be building it


def test_create_is_atomic(isolated_home):
    library = Library()

    def fill(folder: Path):
        (folder / "weights.npz").write_bytes(b"partial")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        library.create(Manifest(name="half", architecture="lite"), fill)
    assert [p.name for p in library.root.iterdir() if p.name != ".locks"] == []


def test_manifest_yaml_cannot_run_code(tiny_model):
    evil = "!!python/object/apply:os.system ['touch /tmp/mlabs-pwned']\n"
    tiny_model.file("manifest.yaml").write_text(evil)
    with pytest.raises(UserError):
        read_manifest(tiny_model.folder)
    assert not os.path.exists("/tmp/mlabs-pwned")


@pytest.mark.parametrize("name, slug", [("Starry Night", "Starry Night"), ("a/b:c", "a-b-c"),
                                        ("..", "model"), ("  ", "model"), ("x" * 200, "x" * 80)])
def test_slugify(name, slug):
    assert slugify(name) == slug


def test_library_location_from_settings(isolated_home, tmp_path):
    from mlabs_desktop.core.settings import load_settings, save_settings

    settings = load_settings()
    settings.library_dir = str(tmp_path / "elsewhere")
    save_settings(settings)
    assert Library().root == tmp_path / "elsewhere"


def test_a_model_being_trained_cannot_be_deleted_or_trained_twice(tiny_model, vgg_h5, photos_dir, style_image):
    from conftest import tiny_config
    from mlabs_desktop.core.locks import training_lock
    from mlabs_desktop.core.training.trainer import Trainer

    with training_lock(tiny_model.folder):
        with pytest.raises(UserError, match="in use by process"):
            Library().delete("tiny")
        with pytest.raises(UserError, match="in use by process"):
            Trainer.for_resume("tiny", max_steps=1).run()
    Library().delete("tiny")


def test_two_processes_share_the_library_lock(tmp_path):
    import subprocess
    import sys

    from mlabs_desktop.core.locks import library_lock

    code = ("import sys, time; from pathlib import Path; from mlabs_desktop.core.locks import library_lock\n"
            "with library_lock(Path(sys.argv[1]), wait_seconds=0):\n    print('got it', flush=True)\n")
    with library_lock(tmp_path):
        busy = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                              timeout=60)
    assert busy.returncode != 0 and "in use by process" in busy.stderr
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert free.returncode == 0 and "got it" in free.stdout


def test_a_library_folder_that_cannot_be_made_is_a_clear_error(isolated_home, tmp_path):
    from mlabs_desktop.core.settings import load_settings, save_settings

    (tmp_path / "a-file").write_text("not a folder")
    settings = load_settings()
    for folder, reason in ((str(tmp_path / "a-file" / "library"), "cannot be used (Not a directory)"),
                           ("~no-such-user-here/library", "cannot be used (no such user's home)")):
        settings.library_dir = folder
        save_settings(settings)
        with pytest.raises(UserError, match=re.escape(reason)) as caught:
            Library()
        assert "connect its drive, or choose another (library_dir in settings.yaml)" in str(caught.value)


def test_damaged_or_hostile_manifests_are_skipped(isolated_home):
    library = Library()
    for name, text in (("deep", "[" * 60_000), ("long-number", "format_version: " + "9" * 5000)):
        (library.root / name).mkdir()
        (library.root / name / "manifest.yaml").write_text(text)
    assert library.models() == []  # listed as nothing, not a crash
