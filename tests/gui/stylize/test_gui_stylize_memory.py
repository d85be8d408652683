"""The Stylize queue keeps memory bounded: originals let go of, results spilled to disk, nothing lost.

The budgets are set to one byte, so everything not on screen is let go of at
once: what a queue of a thousand 12-megapixel photos does past its real
budget (1 GB of originals, 2 GB of results), here with tiny photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from mlabs_desktop.core.images.decode import load_image
from mlabs_desktop.core.images.ops import to_uint8
from mlabs_desktop.core.stylize import result_store, stylizer as stylize
from mlabs_desktop.core.stylize.stylizer import finish
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.stylize import queue as photo_queue
from test_gui_stylize import WAIT_MS, Harness

from gui_helpers import no_thread_leaks  # noqa: E402,F401 - autouse: no QThread outlives a test

COUNT = 6


@pytest.fixture
def tight(monkeypatch):
    """Budgets of one byte: only the photo on screen stays in memory."""
    monkeypatch.setattr(photo_queue, "memory_budgets", lambda: (1, 1))


@pytest.fixture
def harness(qtbot, tight):
    made = Harness(qtbot)
    yield made
    assert made.view.cancel_and_wait(30_000)


@pytest.fixture
def pngs(tmp_path) -> list[Path]:
    # PNG in and out: the saved files can be compared with the expected pixels exactly.
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(5)
    paths = []
    for i in range(COUNT):
        path = folder / f"shot{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def run_calls(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = stylize.Stylizer.run
    monkeypatch.setattr(stylize.Stylizer, "run", lambda self, rgb: (calls.append(1), original(self, rgb))[1])
    return calls


def expected(path: Path, options=stylize.BlendOptions()) -> np.ndarray:
    loaded = load_image(path)
    raw = stylize.Stylizer.open("tiny").run(loaded.rgb)
    return to_uint8(finish(loaded.rgb, raw, options))


def all_done(view) -> bool:  # noqa: ANN001 - StylizeView
    return all(item.state(view.photos.look)[0] == "done" for item in view.photos.items.values()) \
        and not view.is_busy()


def test_only_the_shown_photo_stays_in_memory_and_the_others_come_back_from_disk(
        tiny_model, harness, pngs, run_calls, tmp_path, monkeypatch):
    wanted = {path: expected(path) for path in pngs}  # what each photo must look like, worked out directly
    del run_calls[:]
    view, qtbot = harness.view, harness.qtbot
    view.open_paths([pngs[0].parent])
    qtbot.waitUntil(lambda: all_done(view), timeout=WAIT_MS)
    photos = view.photos
    shown = photos.items[view.queue_list.current_id()]
    assert shown.image is not None  # on screen: kept
    assert [it.image for it in photos.items.values() if it is not shown] == [None] * (COUNT - 1)
    assert photos.results.memory_bytes() <= shown.image.rgb.nbytes  # the shown result at most
    assert photos.results.spilled_count() >= COUNT - 1
    assert len(run_calls) == COUNT

    # Show a photo that was let go of: it is read again, its result read back, nothing re-run.
    other = next(it for it in photos.items.values() if it.source == pngs[3])
    view.queue_list.select_id(other.id)
    qtbot.waitUntil(lambda: other.image is not None and view.compare.styled_image() is not None, timeout=WAIT_MS)
    harness.wait_idle()
    assert len(run_calls) == COUNT
    shown_pixels = view.compare.styled_image().convertToFormat(view.compare.styled_image().Format.Format_RGB888)
    got = np.frombuffer(shown_pixels.constBits(), np.uint8).reshape(40, shown_pixels.bytesPerLine())[:, :56 * 3]
    # float16 on disk: within one level of the float32 result, blended the same way
    assert np.abs(got.reshape(40, 56, 3).astype(int) - wanted[pngs[3]].astype(int)).max() <= 1

    # Save all: every photo, each read back from disk in the worker, one at a time.
    folder = tmp_path / "saved"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    view.files.save_all()
    harness.wait_idle()
    assert harness.errors == []
    saved = sorted(folder.iterdir())
    assert [p.name for p in saved] == [f"shot{i}-tiny.png" for i in range(COUNT)]
    for source, path in zip(pngs, saved):
        with Image.open(path) as im:
            assert np.abs(np.asarray(im).astype(int) - wanted[source].astype(int)).max() <= 1, path.name
    assert len(run_calls) == COUNT

    spill = photos.results._folder
    assert spill is not None and any(spill.iterdir())
    assert view.cancel_and_wait(30_000)
    assert not spill.exists()  # the session's spilled results go with it


def test_results_that_cannot_be_kept_run_again_when_shown(tiny_model, harness, pngs, run_calls, tmp_path,
                                                         monkeypatch):
    # A disk with no room to spare: results past the budget are dropped, not spilled.
    monkeypatch.setattr(result_store, "DISK_RESERVE", 1 << 60)
    view, qtbot = harness.view, harness.qtbot
    view.photos.results._reserve = 1 << 60  # the store was made before the patch
    view.open_paths(pngs[:3])
    qtbot.waitUntil(lambda: not view.is_busy() and len(run_calls) == 3, timeout=WAIT_MS)
    states = [it.state(Look("tiny"))[0] for it in view.photos.items.values()]
    assert states.count("done") == 1 and states.count("queued") == 2  # only the shown one kept; no loop
    assert "1 of 3 photos" in view.status.text()

    folder = tmp_path / "saved"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    view.files.save_all()
    harness.wait_idle()
    assert len(list(folder.iterdir())) == 1

    dropped = next(it for it in view.photos.items.values() if it.state(Look("tiny"))[0] == "queued")
    view.queue_list.select_id(dropped.id)  # shown: run again
    qtbot.waitUntil(lambda: dropped.state(Look("tiny"))[0] == "done" and view.compare.styled_image() is not None,
                    timeout=WAIT_MS)
    harness.wait_idle()
    assert len(run_calls) == 4
