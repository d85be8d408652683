"""Atomic writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename itself durable; not available on Windows.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    The writer may write the temporary file any way it likes (Pillow, h5py, numpy).
    On an exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
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
    ignore and `sweep_staging` removes later.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".staging-{final.name}.", dir=final.parent))
    try:
        yield tmp
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sweep_staging(folder: Path, older_than_seconds: float = 3600.0) -> None:
    """Remove staging folders left by a crashed process.

    Only old ones: a young staging folder may belong to another thread or
    process that is building a model right now.
    """
    if not folder.is_dir():
        return
    cutoff = time.time() - older_than_seconds
    for entry in folder.iterdir():
        try:
            stale = entry.name.startswith(".staging-") and entry.stat().st_mtime < cutoff
        except OSError:
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
