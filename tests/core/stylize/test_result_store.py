"""The result store keeps memory under its budget, spills to disk and reads back what it spilled."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mlabs_desktop.core.stylize import result_store
from mlabs_desktop.core.stylize.result_store import ResultStore

MB = 1 << 20


def result(seed: int, side: int = 256) -> np.ndarray:
    # Unclipped like the network's raw output: a little outside 0-255 at both ends.
    return np.random.default_rng(seed).uniform(-20, 280, (side, side, 3)).astype(np.float32)  # 768 KiB


def test_memory_stays_under_budget_and_spilled_results_come_back(tmp_path: Path) -> None:
    store = ResultStore(budget=3 * MB, folder=tmp_path)
    arrays = {i: result(i) for i in range(20)}
    for key, array in arrays.items():
        store.put(key, array)
        assert store.memory_bytes() <= 3 * MB
    assert store.spilled_count() == 20 - 4  # four of 768 KiB fit in 3 MiB; the rest went to disk
    for key, array in arrays.items():
        back = store.get(key, keep=False)
        assert back is not None and back.dtype == np.float32
        # float16 at 0-255: under 1/8 of a level, so an 8-bit blend of it is the same picture
        assert np.abs(back - array).max() <= 0.125
    assert store.memory_bytes() <= 3 * MB


def test_reading_back_keeps_the_budget_and_most_recent_in_memory(tmp_path: Path) -> None:
    store = ResultStore(budget=2 * MB, folder=tmp_path)
    for key in range(6):
        store.put(key, result(key))
    store.get(0)  # the oldest, read back: now the newest in memory
    assert store.memory_bytes() <= 2 * MB
    assert store.spilled_count() == 4
    spill_files = sorted(p.name for p in tmp_path.rglob("*.npy"))
    assert len(spill_files) == 4  # the file read back is gone; nothing half-written stays
    assert not list(tmp_path.rglob("*.part"))


def test_pinned_results_stay_in_memory_beyond_the_budget(tmp_path: Path) -> None:
    store = ResultStore(budget=1 * MB, folder=tmp_path)
    store.put("shown", result(1))
    store.pin({"shown"})
    for key in range(4):
        store.put(key, result(key + 10))
    assert store.get("shown", keep=False) is not None
    assert "shown" in store._memory  # on screen: never paged out under the viewer's feet
    store.pin(set())
    assert store.memory_bytes() <= 1 * MB


def test_no_room_on_disk_drops_the_result_and_says_so(tmp_path: Path) -> None:
    dropped: list[object] = []
    store = ResultStore(budget=1 * MB, folder=tmp_path, disk_reserve=1 << 60, dropped=dropped.append)
    for key in range(3):
        store.put(key, result(key))
    assert dropped == [0, 1]  # the disk "has" no room past the reserve: older ones are gone
    assert 0 not in store and store.get(0) is None
    assert store.memory_bytes() <= 1 * MB


def test_disk_budget_drops_the_oldest_spilled_first(tmp_path: Path) -> None:
    dropped: list[object] = []
    half = result(0).nbytes // 2  # one spilled file
    store = ResultStore(budget=1 * MB, folder=tmp_path, disk_budget=2 * half, dropped=dropped.append)
    for key in range(5):
        store.put(key, result(key))
    assert dropped == [0, 1]  # 3 and 2 on disk, 4 in memory
    assert store.spilled_count() == 2 and sum(1 for _ in tmp_path.rglob("*.npy")) == 2


def test_close_removes_the_session_folder_and_a_dead_process_folder_is_swept(tmp_path: Path) -> None:
    stale = tmp_path / "session-999999999-abc"
    stale.mkdir()
    (stale / "1.npy").write_bytes(b"left by a killed process")
    store = ResultStore(budget=0, folder=tmp_path)
    store.put("a", result(1))
    assert not stale.exists()
    assert sum(1 for _ in tmp_path.rglob("*.npy")) == 1
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_a_spill_file_removed_behind_its_back_is_reported_not_raised(tmp_path: Path) -> None:
    dropped: list[object] = []
    store = ResultStore(budget=0, folder=tmp_path, dropped=dropped.append)
    store.put("a", result(1))
    for path in tmp_path.rglob("*.npy"):
        path.unlink()
    assert store.get("a") is None
    assert dropped == ["a"] and "a" not in store


@pytest.mark.skipif(os.name != "posix", reason="process ids checked with kill(pid, 0)")
def test_a_live_process_folder_is_kept(tmp_path: Path) -> None:
    alive = tmp_path / f"session-{os.getppid()}-xyz"
    alive.mkdir()
    result_store.sweep_sessions(tmp_path)
    assert alive.exists()
