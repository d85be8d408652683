"""Atomic writes: a reader sees the old file or the new one, never half of either.

Every temporary is hidden and named after its target and its process,
``.NAME.pidPID-XXXX.part`` (staging folders ``.staging-NAME.pidPID-XXXX.part``),
so a process killed mid-write leaves only names that listings skip and that
`sweep_temporaries` removes once that process is gone: the library when it
is opened, an export before it writes, and `atomic_path` in each folder it
first writes to in a process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from mlabs_desktop.core.errors import DiskFullError, disk_full_error

STAGING_PREFIX = ".staging-"
_TEMPORARY = re.compile(r"^\.(?P<label>.+)\.pid(?P<pid>\d+)-[a-z0-9_]+\.part$")


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename itself durable; not available on Windows.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prefix(label: str) -> str:
    return f".{label}.pid{os.getpid()}-"


def _check_room_after(fd: int) -> None:
    """Raise the write's own error if the file system had no room left at the end of the file.

    Pillow's C encoders ignore a short write(): on a nearly full disk (or past
    RLIMIT_FSIZE) a BMP or JPEG can end cut short with no error at all. A cut
    always stops at a block boundary with no block left, so one more byte
    there fails too (ENOSPC, EFBIG). A complete file that fills the disk to
    the last block is refused as well: the disk is full either way.
    """
    size = os.fstat(fd).st_size
    os.lseek(fd, size, os.SEEK_SET)
    os.write(fd, b"\0")
    os.ftruncate(fd, size)


def _umask() -> int:
    """This process's umask, read without changing it where the system allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it, and put it back at once
    os.umask(mask)
    return mask


def normal_mode(folder: bool = False) -> int:
    """The mode a plain ``open`` or ``mkdir`` gives here: temporaries start private, results must not stay so."""
    return (0o777 if folder else 0o666) & ~_umask()


def temp_dir(parent: Path, label: str) -> Path:
    """A new hidden folder in ``parent`` for building ``label`` before it is renamed into place."""
    path = Path(tempfile.mkdtemp(prefix=_prefix(label), suffix=".part", dir=parent))
    os.chmod(path, normal_mode(folder=True))
    return path


def _raise_disk_full(exc: BaseException, target: Path, shown: Callable[[str], str] = str) -> None:
    full = disk_full_error(exc, target) if isinstance(exc, Exception) else None
    if full is not None:
        raise DiskFullError(shown(str(full))) from None


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    The writer may write the temporary file any way it likes (Pillow, h5py, numpy).
    On an exception the temporary file is removed and ``target`` is untouched; a
    full disk becomes a `DiskFullError` naming ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=_prefix(target.name), suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            _check_room_after(handle.fileno())
            os.fsync(handle.fileno())
        os.chmod(tmp, normal_mode())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        _raise_disk_full(exc, target)
        raise


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path | str, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_with(target: Path | str, writer: Callable[[Path], None]) -> None:
    """Atomically write ``target`` with ``writer(tmp_path)``."""
    with atomic_path(target) as tmp:
        writer(tmp)


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Build a folder under a hidden temporary name, then rename it to ``final``.

    ``final`` must not exist yet. A crash leaves only a dot-folder that listings
    ignore and `sweep_temporaries` removes later. A full disk becomes a
    `DiskFullError` that names the file in ``final``, not in the staging folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(final.parent, f"{STAGING_PREFIX[1:]}{final.name}")
    try:
        yield tmp
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_disk_full(exc, final, lambda text: text.replace(str(tmp), str(final)))
        raise


def owner_gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (POSIX only; elsewhere the age rule alone applies).

    A library shared between machines is not supported: a pid is only
    meaningful on the machine that wrote it.
    """
    if os.name != "posix" or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        return False
    except (OverflowError, ValueError):  # no process could have that number: the name is not one of ours
        return False
    return False


def _stale(entry: Path, old_staging: bool, cutoff: float) -> bool:
    match = _TEMPORARY.match(entry.name)
    if match is None:  # a staging folder named before temporaries carried their pid
        return old_staging and entry.name.startswith(STAGING_PREFIX) and entry.lstat().st_mtime < cutoff
    return owner_gone(int(match.group("pid"))) or entry.lstat().st_mtime < cutoff


def sweep_temporaries(folder: Path, *, old_staging: bool = False, older_than_seconds: float = 3600.0) -> None:
    """Remove the temporaries and staging folders that crashed processes left in ``folder``.

    Ours only (the pid-tagged names above; ``old_staging`` adds ``.staging-*``
    folders without a pid, in the library): those whose process has ended,
    and any older than ``older_than_seconds`` (a young one without a living
    owner may belong to a process on another machine writing there now).
    """
    if not folder.is_dir():
        return
    cutoff = time.time() - older_than_seconds
    for entry in folder.iterdir():
        try:
            if not entry.name.startswith(".") or not _stale(entry, old_staging, cutoff):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except OSError:
            continue


_swept: set[str] = set()


def _sweep_once(folder: Path) -> None:
    # Once per folder and process: a folder that receives thousands of
    # stylized photos is listed once, not once per photo.
    key = os.path.abspath(folder)
    if key not in _swept:
        _swept.add(key)
        sweep_temporaries(folder)
