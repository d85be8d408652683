"""A full disk during a save: one clear `error:` line (exit 2) naming the file, nothing half
written, and the previous checkpoint kept and resumable.

The disk is real: a small tmpfs per case, filled with a ballast file until only
`ROOM` bytes are free. Where mounting is not permitted, the command runs under
an `RLIMIT_FSIZE` of `ROOM` bytes instead (SIGXFSZ ignored, so a write past it
fails with EFBIG, as on a file system that cannot hold the file). The commands
run through the command line's own `main` in this process: no process
boundary matters here, and TensorFlow is loaded once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from crash_helpers import assert_every_model_loads, run_cli_here, temporaries

ROOM = 256 << 10  # every file the commands below write is larger
DISK_BYTES = 24 << 20
REASON = "the disk is full or the file is too large for it"


@dataclass
class SmallDisk:
    """A folder where, while `full`, no file larger than `ROOM` fits."""

    root: Path
    mounted: bool

    @property
    def ballast(self) -> Path:
        return self.root / "ballast"

    @contextlib.contextmanager
    def full(self, room: int = ROOM) -> Iterator[None]:
        if self.mounted:
            stats = os.statvfs(self.root)
            self.ballast.write_bytes(bytes(stats.f_bavail * stats.f_frsize - room))
            try:
                yield
            finally:
                self.ballast.unlink()
            return
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)


@dataclass
class SmallDisks:
    base: Path
    made: list[SmallDisk] = field(default_factory=list)

    def new(self, name: str) -> SmallDisk:
        root = self.base / name
        root.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(root)]
        try:
            mounted = subprocess.run(mount, capture_output=True, timeout=30).returncode == 0
        except OSError:  # no mount command
            mounted = False
        if not mounted:
            try:
                import resource  # noqa: F401 - POSIX only
            except ImportError:
                pytest.skip("cannot mount a small tmpfs here, and RLIMIT_FSIZE is POSIX only")
        disk = SmallDisk(root, mounted)
        self.made.append(disk)
        return disk

    def unmount(self) -> None:
        for disk in self.made:
            if disk.mounted:
                subprocess.run(["umount", "-l", str(disk.root)], capture_output=True, timeout=30)


@pytest.fixture
def small_disks(tmp_path):
    disks = SmallDisks(tmp_path)
    yield disks
    disks.unmount()


def run_on_full_disk(disk: SmallDisk, args: list[str], capsys) -> str:
    """Run ``args`` while ``disk`` is full; it must fail with exit 2 and one `error:` line, returned."""
    capsys.readouterr()
    with disk.full():
        code = run_cli_here(args)
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, (args, code, stderr[-3000:])
    return stderr


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tiny_model, small_disks, monkeypatch, capsys):
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.networks.weights import load_weight_arrays

    disk = small_disks.new("library")  # the whole home, and the library in it, on the small disk
    home = disk.root / "home"
    model = home / "data" / "library" / tiny_model.folder.name
    shutil.copytree(tiny_model.folder, model)
    monkeypatch.setenv("MLABS_DESKTOP_HOME", str(home))
    checkpoint = model / "checkpoint.npz"
    stderr = run_on_full_disk(disk, ["resume", "tiny", "--max-steps=2", "--progress=json"], capsys)
    assert f"error: cannot write {checkpoint}: {REASON} (" in stderr, stderr[-3000:]
    # The previous checkpoint is kept, nothing half written beside it, and it resumes once there is room.
    assert int(load_weight_arrays(checkpoint)["step"]) == 2
    assert temporaries(model) == []
    assert [m.name for m in assert_every_model_loads(Library())] == ["tiny"]
    assert run_cli_here(["resume", "tiny", "--max-steps=1", "--progress=json"]) == 0
    steps = [json.loads(line)["step"] for line in capsys.readouterr().out.splitlines() if '"event": "step"' in line]
    assert steps == [3]


@pytest.mark.parametrize("fmt, name", [("bundle", "tiny.mlstyle"), ("savedmodel", "tiny-savedmodel"),
                                       ("tflite", "tiny.tflite"), ("reference-checkpoint", "ckpt")])
def test_full_disk_during_export(fmt, name, tiny_model, small_disks, capsys):
    from test_bundles import make_model

    from mlabs_desktop.core.library.store import Library

    model = "tiny"
    if fmt == "reference-checkpoint":
        model = make_model(Library(), "classic", "classic", extras=False).name
    disk = small_disks.new(fmt)
    out = disk.root / name
    stderr = run_on_full_disk(disk, ["export", model, f"--format={fmt}", f"--out={out}"], capsys)
    assert f"error: cannot write {out}: {REASON} (" in stderr, stderr[-3000:]
    assert os.listdir(disk.root) == []  # nothing half written, no temporary left


def test_full_disk_during_stylize(tiny_model, small_disks, tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (320, 320, 3), np.uint8)).save(photo)
    disk = small_disks.new("stylize")
    out = disk.root / "out.bmp"  # 300 KiB, written by Pillow in one write() that a full disk cuts short
    stderr = run_on_full_disk(disk, ["stylize", "--checkpoint=tiny", f"--in-path={photo}", f"--out-path={out}",
                                     "--device=cpu"], capsys)
    # A full disk stops the run (every later photo would fail too) and the error line says why.
    assert f"error: cannot write {out}: {REASON} (" in stderr, stderr[-3000:]
    assert os.listdir(disk.root) == []


@pytest.mark.parametrize("name", ["ENOSPC", "EFBIG", "EDQUOT"])
def test_every_no_room_error_gives_the_same_message_and_keeps_the_old_file(name, tmp_path):
    """Quotas cannot be filled here for real: the writer fails with the errno itself."""
    import errno

    from mlabs_desktop.core import atomic
    from mlabs_desktop.core.errors import DiskFullError

    code = getattr(errno, name, None)
    if code is None:
        pytest.skip(f"{name} does not exist on this system")
    target = tmp_path / "weights.npz"
    target.write_bytes(b"previous")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(code, os.strerror(code))

    with pytest.raises(DiskFullError) as info:
        atomic.write_with(target, half_then_fail)
    assert str(info.value) == (f"cannot write {target}: the disk is full or the file is too large for it "
                               f"({os.strerror(code)}); free some space or choose another place")
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["weights.npz"]


def test_no_room_is_found_behind_a_wrapping_error(tmp_path):
    """TensorFlow's errors carry only the C library's text, and may sit behind a `raise ... from None`."""
    from mlabs_desktop.core.errors import UserError, disk_full_as_user_error

    with pytest.raises(UserError, match=r"^cannot write .*: the disk is full .*\(No space left on device\)"):
        with disk_full_as_user_error(tmp_path / "out"):
            try:
                raise RuntimeError("part-00000-of-00001.data; No space left on device [Op:SaveV2]")
            except RuntimeError:
                raise UserError("cannot write the reference checkpoint: Graph execution error:") from None
    with pytest.raises(UserError, match="^unrelated$"):
        with disk_full_as_user_error(tmp_path / "out"):
            raise UserError("unrelated")


@pytest.mark.parametrize("args", [["library", "rename", "tiny", "renamed"], ["library", "delete", "tiny"],
                                  ["import", "BUNDLE"]])
def test_a_completely_full_disk_never_gives_a_traceback(args, tiny_model, small_disks, monkeypatch, capsys, tmp_path):
    from mlabs_desktop.core.library.store import Library

    bundle = tmp_path / "tiny.mlstyle"
    assert run_cli_here(["export", "tiny", "--format=bundle", f"--out={bundle}"]) == 0
    disk = small_disks.new("home")
    home = disk.root / "home"
    shutil.copytree(tiny_model.folder, home / "data" / "library" / tiny_model.folder.name)
    monkeypatch.setenv("MLABS_DESKTOP_HOME", str(home))
    capsys.readouterr()
    with disk.full(room=0):
        code = run_cli_here([str(bundle) if a == "BUNDLE" else a for a in args])
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert (code, errors) == (0, []) or (code == 2 and len(errors) == 1), (code, stderr[-3000:])
    assert_every_model_loads(Library())  # whatever happened, the library is whole
