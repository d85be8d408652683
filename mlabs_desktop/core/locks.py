"""Cross-process locks, so two app windows or command-line runs never corrupt the library.

An advisory OS lock (``flock`` / ``msvcrt.locking``) is released by the kernel
when its process dies, so a crash never leaves a stale lock behind. The lock
file records who holds it, for the message the second process shows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from mlabs_desktop.core.errors import UserError

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process"


@contextlib.contextmanager
def file_lock(path: Path, what: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; wait up to ``wait_seconds``, then explain who holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except IsADirectoryError:
        raise UserError(f"cannot lock {what}: {path} is a folder where its lock file belongs; remove it") from None
    except OSError as exc:  # no permission, a file where its folder belongs, a drive gone
        raise UserError(f"cannot lock {what}: {path} cannot be created ({exc.strerror or exc})") from None
    try:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise UserError(f"{what} is in use by {_holder(path)}; wait for it to finish or close it")
            time.sleep(0.05)
        try:
            with contextlib.suppress(OSError):  # who holds it is a courtesy; a full disk must not stop the work
                os.ftruncate(fd, 0)
                os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            _unlock(fd)
    finally:
        os.close(fd)


def library_lock(root: Path, wait_seconds: float = 10.0):
    """Short critical sections that change the library's folder list (create, rename, delete, import)."""
    return file_lock(root / ".locks" / "library.lock", f"the model library at {root}", wait_seconds)


def training_lock(folder: Path):
    """Held for a whole training run of one model: two runs never write the same model."""
    return file_lock(folder.parent / ".locks" / f"{folder.name}.training.lock", f"model '{folder.name}'", 0.0)
