"""Results are written with the user's normal permissions: the umask decides, not the private temporary."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from mlabs_desktop.core import atomic
from mlabs_desktop.core.formats.bundle_import import import_bundle
from mlabs_desktop.core.formats.bundle_writer import export_bundle
from mlabs_desktop.core.images.encode import save_image
from mlabs_desktop.core.library.store import Library

from test_cli import cli


@pytest.fixture(params=[0o022, 0o027, 0o002], ids=lambda m: f"umask-{m:03o}")
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_and_folders_follow_the_umask(umask, tmp_path):
    atomic.write_text(tmp_path / "a.txt", "hello")
    with atomic.staging_dir(tmp_path / "folder") as staging:
        (staging / "inside.txt").write_text("x")
    assert mode(tmp_path / "a.txt") == 0o666 & ~umask
    assert mode(tmp_path / "folder") == 0o777 & ~umask
    assert mode(tmp_path / "folder" / "inside.txt") == 0o666 & ~umask


def test_photos_exports_and_the_library_follow_the_umask(umask, tiny_model, tmp_path):
    photo = save_image(tmp_path / "styled.jpg", np.zeros((8, 8, 3), np.uint8))
    bundle = export_bundle(tiny_model, tmp_path / "shared.mlstyle")
    imported = import_bundle(bundle, Library(), name="from a friend")
    assert mode(photo) == 0o666 & ~umask
    assert mode(bundle) == 0o666 & ~umask
    assert mode(imported.folder) == 0o777 & ~umask
    assert {mode(p) for p in imported.folder.rglob("*") if p.is_file()} == {0o666 & ~umask}


def test_the_stylize_command_writes_readable_photos(umask, tiny_model, tmp_path):
    source = save_image(tmp_path / "in.png", np.full((16, 16, 3), 90, np.uint8))
    result = cli("stylize", "--checkpoint", "tiny", f"--in-path={source}", f"--out-path={tmp_path / 'out.jpg'}")
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "out.jpg") == 0o666 & ~umask
