"""Raw stylize results kept within a memory budget: the newest in memory, older ones spilled to disk.

The Stylize view keeps each photo's raw float result so that strength and
colour changes re-blend without running the network again. A 12-megapixel
result is 144 MB, so a long queue of real photos cannot all stay in memory:
past the budget, the least recently used results are written to a private
session folder as float16 (half the size; at 0-255 values its step is at most
1/8, well inside one 8-bit level) and read back when asked for. When even the
disk has no room to spare, a result is dropped and the owner is told, so the
photo can be run again when it is next needed.

No Qt here: the view drives it from the GUI thread, the exporter reads it
from its worker thread, so every method takes the lock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Hashable

import numpy as np

from mlabs_desktop.core import atomic, paths
from mlabs_desktop.core.errors import DiskFullError

DISK_RESERVE = 2 << 30  # never spill into the last 2 GB of the disk: the user's own files need it
DISK_BUDGET = 32 << 30  # past this, the oldest spilled results are dropped (about 450 12-megapixel photos)


def sweep_sessions(parent: Path) -> None:
    """Remove spill folders whose process has gone (killed, or crashed before `close`)."""
    with contextlib.suppress(OSError):
        for folder in parent.iterdir():
            pid = folder.name.split("-")[1] if folder.name.startswith("session-") else ""
            if pid.isascii() and pid.isdigit() and atomic.owner_gone(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as stream:  # a handle: given a name, np.save would add ".npy" to it
        np.save(stream, array, allow_pickle=False)


class ResultStore:
    """Arrays by key: ``put`` and ``get`` like a dict, memory bounded by ``budget`` bytes.

    ``dropped(key)`` is called (from whichever thread was storing) for a result
    that could be neither kept nor spilled.
    """

    def __init__(self, budget: int, folder: Path | None = None, *, disk_budget: int = DISK_BUDGET,
                 disk_reserve: int = DISK_RESERVE, dropped: Callable[[Hashable], None] = lambda key: None):
        self.budget = budget
        self.disk_budget = disk_budget
        self._parent = folder or paths.cache_dir() / "stylize-results"
        self._folder: Path | None = None
        self._reserve = disk_reserve
        self._dropped = dropped
        self._memory: OrderedDict[Hashable, np.ndarray] = OrderedDict()  # least recently used first
        self._spilled: dict[Hashable, tuple[Path, int]] = {}  # oldest first; path and size
        self._pinned: set[Hashable] = set()
        self._names = 0
        self._lock = threading.RLock()

    # -- the dict-like part
    def put(self, key: Hashable, array: np.ndarray) -> None:
        with self._lock:
            self._forget(key)
            self._memory[key] = np.asarray(array, np.float32)
            self._enforce()

    def get(self, key: Hashable, *, keep: bool = True) -> np.ndarray | None:
        """The array, or None; a spilled one is read back, and kept in memory again when ``keep``.

        Saving a whole folder reads with ``keep=False``, so it does not push out
        what the user is looking at.
        """
        with self._lock:
            if key in self._memory:
                if keep:
                    self._memory.move_to_end(key)
                return self._memory[key]
            path, _ = self._spilled.get(key, (None, 0))
            if path is None:
                return None
            try:
                array = np.load(path, allow_pickle=False).astype(np.float32)
            except (OSError, ValueError):  # the session folder was cleaned up behind our back
                self._spilled.pop(key, None)
                self._dropped(key)
                return None
            if keep:
                self._forget(key)
                self._memory[key] = array
                self._enforce()
            return array

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._memory or key in self._spilled

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._forget(key)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return [*self._memory, *self._spilled]

    def pin(self, keys: set[Hashable]) -> None:
        """Keep these in memory whatever the budget (what is on screen now)."""
        with self._lock:
            self._pinned = set(keys)
            self._enforce()

    def memory_bytes(self) -> int:
        with self._lock:
            return sum(a.nbytes for a in self._memory.values())

    def spilled_count(self) -> int:
        with self._lock:
            return len(self._spilled)

    def close(self) -> None:
        """Forget everything and remove the session folder."""
        with self._lock:
            self._memory.clear()
            self._spilled.clear()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    # -- spilling
    def _forget(self, key: Hashable) -> None:
        self._memory.pop(key, None)
        path, _ = self._spilled.pop(key, (None, 0))
        if path is not None:
            path.unlink(missing_ok=True)

    def _enforce(self) -> None:
        total = sum(a.nbytes for a in self._memory.values())
        for key in [k for k in self._memory if k not in self._pinned]:
            if total <= self.budget:
                return
            array = self._memory.pop(key)
            total -= array.nbytes
            spilled = self._spill(array)
            if spilled is None:
                self._dropped(key)
            else:
                self._spilled[key] = spilled

    def _make_room_on_disk(self, size: int) -> None:
        while self._spilled and sum(n for _, n in self._spilled.values()) + size > self.disk_budget:
            oldest = next(iter(self._spilled))
            self._forget(oldest)
            self._dropped(oldest)

    def _spill(self, array: np.ndarray) -> tuple[Path, int] | None:
        size = array.nbytes // 2
        if size > self.disk_budget:
            return None
        try:
            folder = self._session_folder()
            if shutil.disk_usage(folder).free - size < self._reserve:
                return None
            self._make_room_on_disk(size)
            self._names += 1
            path = folder / f"{self._names}.npy"
            half = np.clip(array, -65504, 65504).astype(np.float16)
            # Atomic: a file cut short by a full disk is never read back.
            atomic.write_with(path, lambda tmp: _save_npy(tmp, half))
            return path, size
        except (OSError, DiskFullError):
            return None

    def _session_folder(self) -> Path:
        if self._folder is None:
            self._parent.mkdir(parents=True, exist_ok=True)
            sweep_sessions(self._parent)
            self._folder = Path(tempfile.mkdtemp(prefix=f"session-{os.getpid()}-", dir=self._parent))
        return self._folder
