"""Long runs keep memory flat and the window responsive (issue 7, item 7).

Always on: short runs that take seconds (150 photos through the Stylize view and through
`Stylizer.stylize_many`; 100 training steps in the Train view, which runs the real Trainer).
With ``MLABS_LONG_RUNS=1`` the full sizes run as well (1,000 photos; 10,000 steps, also in the
Core alone; minutes each) and print their figures: resident memory at the start, after the
warm-up and at the end, the time taken and the GUI event loop's largest gap.

Memory is compared from the end of a warm-up (TensorFlow's graphs traced, the first
checkpoint written, allocator pools grown) to the end: what a leak adds grows with the
work done after it, what warming up costs does not.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from conftest import tiny_config, write_photos
from gui_helpers import message_boxes, no_thread_leaks  # noqa: F401 - autouse fixtures
from test_gui_stylize import WAIT_MS, harness  # noqa: F401 - the Stylize view harness fixture
from test_gui_train import GapRecorder, fill, machine_is_shared

LONG = os.environ.get("MLABS_LONG_RUNS") == "1"
full_size = [pytest.mark.skipif(not LONG, reason="full-size long run (minutes): set MLABS_LONG_RUNS=1"),
             pytest.mark.timeout(3600)]  # the suite's 300 s per test is for the short runs
# (photos, width): tiny photos show what piles up per photo; real-size ones what piles up per pixel.
PHOTOS = [pytest.param((150, 48), id="150-photos"), pytest.param((1000, 48), id="1000-photos", marks=full_size)]
REAL_SIZE = [pytest.param((48, 2000), id="48-photos-of-3MP", marks=full_size)]
STEPS = [pytest.param(100, id="100-steps", marks=pytest.mark.heavy), pytest.param(10_000, id="10000-steps", marks=full_size)]
# The Train view's short run already drives the real Trainer (in its worker thread); the Core-only run,
# which tells the Core's memory apart from the window's, is full size only to keep the suite quick.
CORE_STEPS = [pytest.param(10_000, id="10000-steps", marks=full_size)]

# Resident-memory growth allowed after the warm-up. Measured on 2 loaded cores, after warming up:
# stylize_many +0.0 to +0.2 MB (150 and 1,000 photos); the Stylize view +0.2 and +6.2 MB beyond what
# its queue holds on purpose; the Train view +6.4 MB over 240 steps; the Core's Trainer -30 to -44 MB
# (allocator pools handed back). RSS moves by tens of MB with allocator noise alone in a 1.6-2 GB
# TensorFlow process, so 40 MB leaves room for that. It still catches, in the short runs, a leak of
# 170 KB a step or 330 KB a photo (a batch's tensors, a preview, a traced graph), and in the full
# runs one of 5 KB a step or 50 KB a photo.
MAX_GROWTH_MB = 40.0
# The largest event-loop gap allowed while the work runs, over the idle baseline. The point is that
# the GUI thread is never blocked for the length of the work (30 s to 14 min here). Measured on 2
# cores: 27-610 ms in the short runs; 350-720 ms for 1,000 photos; 1.1 and 2.0 s in two 10,000-step
# runs at load averages of 4.7 and 5.5, where timing every tick showed no link to checkpoints,
# previews or the chart: the largest came from other work starving the process and from Python's
# full garbage collections (0.45 s each at this heap size) holding the interpreter lock.
MAX_GAP_MS = 1500.0
BUSY_MAX_GAP_MS = 3000.0  # when other work shares the cores (test_gui_train.machine_is_shared)


def gap_bound_ms(idle_ms: float) -> float:
    return (BUSY_MAX_GAP_MS if machine_is_shared() else MAX_GAP_MS) + idle_ms


def rss_mb() -> float:
    """Resident memory now: /proc on Linux; elsewhere the peak (never below now, so growth shows)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes there, KiB elsewhere


@dataclass
class MemoryTrace:
    """Resident memory at named points; garbage is collected first, so cycles waiting for it don't count."""

    marks: dict[str, float] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    singletons: dict[str, tuple[int, int]] = field(default_factory=dict)  # references to True and None

    def mark(self, label: str) -> float:
        gc.collect()
        self.marks[label] = rss_mb()
        self.times[label] = time.perf_counter()
        self.singletons[label] = (sys.getrefcount(True), sys.getrefcount(None))
        return self.marks[label]

    def seconds(self, start: str = "start", end: str = "end") -> float:
        return self.times[end] - self.times[start]

    def growth(self, start: str = "warm", end: str = "end") -> float:
        return self.marks[end] - self.marks[start]

    def report(self, what: str, **extra: object) -> None:
        points = ", ".join(f"{label} {mb:.1f} MB" for label, mb in self.marks.items())
        more = "".join(f", {key.replace('_', ' ')} {value}" for key, value in extra.items())
        (true_0, none_0), (true_1, none_1) = self.singletons["start"], self.singletons["end"]
        line = (f"\n[long run] {what}: RSS {points}; growth after warm-up {self.growth():+.1f} MB; "
                f"{self.seconds():.1f} s{more}; references to None {none_1 - none_0:+,}, to True "
                f"{true_1 - true_0:+,}; load average {os.getloadavg()[0]:.1f}")
        print(line)


def paused(gaps: GapRecorder, measure: Callable[[], object]) -> None:
    """Measure in the GUI thread without counting the measuring (a full garbage collection) as a gap."""
    gaps.timer.stop()
    measure()
    gaps.start()


QUEUE_BUDGETS = (1 << 20, 1 << 20)  # 1 MB each of originals and results: about 25 and 37 photos of 48 px
REAL_SIZE_BUDGETS = (256 << 20, 256 << 20)  # about 5 originals and 7 results of 3 megapixels


def held_by_queue(view) -> int:  # noqa: ANN001 - StylizeView
    """Bytes the Stylize queue keeps on purpose: originals and results within their budgets, and thumbnails."""
    thumbs = sum(it.thumb.width() * it.thumb.height() * 4 for it in view.photos.items.values() if it.thumb)
    return view.photos.originals_bytes() + view.photos.results.memory_bytes() + thumbs


def batch_size(batch: list[Path]) -> str:
    from PIL import Image

    with Image.open(batch[0]) as im:
        return f"{im.width}x{im.height}"


@pytest.fixture
def batch(tmp_path: Path, request: pytest.FixtureRequest) -> list[Path]:
    """``request.param`` = (count, width) photos, 4:3."""
    count, width = request.param
    folder = write_photos(tmp_path / "batch", count=count, size=(width, width * 3 // 4 if width > 48 else 48), seed=3)
    return sorted(folder.iterdir())


# ---------------------------------------------------------------- stylize
@pytest.mark.parametrize("batch", PHOTOS, indirect=True)
def test_batch_stylize_in_the_core_keeps_memory_flat(tiny_model, batch, tmp_path):
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    stylizer = Stylizer.open("tiny")
    jobs = [(photo, tmp_path / "out" / photo.name) for photo in batch]
    (tmp_path / "out").mkdir()
    warm = len(jobs) // 5
    trace = MemoryTrace()
    trace.mark("start")
    written = 0
    for progress in stylizer.stylize_many(jobs):
        assert progress.error is None, progress.error
        written += 1
        if written == warm:
            trace.mark("warm")
    trace.mark("end")
    trace.report(f"stylize_many, {len(jobs)} photos of 48 px")
    assert written == len(jobs) == len(list((tmp_path / "out").iterdir()))
    assert trace.growth() < MAX_GROWTH_MB


@pytest.fixture
def budgets(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Budgets the batch outgrows (as a long queue of real photos outgrows the real 1 + 2 GB): it must spill."""
    from mlabs_desktop.gui.stylize import queue as photo_queue

    chosen = QUEUE_BUDGETS if request.node.callspec.params["batch"][1] <= 48 else REAL_SIZE_BUDGETS
    monkeypatch.setattr(photo_queue, "memory_budgets", lambda: chosen)
    return chosen


@pytest.mark.parametrize("batch", PHOTOS + REAL_SIZE, indirect=True)
def test_batch_stylize_in_the_app_keeps_memory_flat_and_the_window_responsive(tiny_model, budgets, harness, batch):
    view, qtbot = harness.view, harness.qtbot
    total, warm = len(batch), len(batch) // 5
    gaps = GapRecorder()
    trace = MemoryTrace()

    def finished() -> int:
        return sum(1 for item in view.photos.items.values() if item.state(view.photos.look)[0] in ("done", "failed"))

    per_photo_ms = 300 if budgets == QUEUE_BUDGETS else 20_000  # a 3-megapixel photo takes seconds on a CPU
    gaps.start()
    qtbot.wait(1000)  # the idle baseline: what the shared machine alone does to the event loop
    trace.mark("start")
    gaps.phase = "work"
    adding = time.perf_counter()
    assert view.open_paths([batch[0].parent]) == total
    adding = time.perf_counter() - adding  # the GUI thread lists every photo at once
    qtbot.waitUntil(lambda: finished() >= warm, timeout=WAIT_MS + per_photo_ms * warm)
    paused(gaps, lambda: trace.mark("warm"))
    held_at_warm, done_at_warm = held_by_queue(view), finished()
    qtbot.waitUntil(lambda: finished() == total and not view.is_busy(), timeout=WAIT_MS + per_photo_ms * total)
    gaps.timer.stop()
    trace.mark("end")
    # What the queue deliberately keeps per photo (to re-blend and save without re-running the
    # network) is counted and set apart: the bound is for growth nothing accounts for.
    held = held_by_queue(view) - held_at_warm
    held_mb = held / 2**20
    idle, work = gaps.worst("idle"), gaps.worst("work")
    trace.report(f"Stylize view, {total} photos of {batch_size(batch)}",
                 held_by_the_queue_since_warm_up=f"{held_mb:.1f} MB ({held / (total - done_at_warm) / 1024:.0f} KB "
                                                 "a photo)",
                 largest_GUI_gap=f"{work:.0f} ms (idle {idle:.0f} ms; adding the folder {1000 * adding:.0f} ms)")
    assert [item.state(view.photos.look)[0] for item in view.photos.items.values()] == ["done"] * total
    assert harness.errors == []
    shown = view.photos.items[view.queue_list.current_id()]
    assert view.photos.results.memory_bytes() <= budgets[1] + shown.image.rgb.nbytes  # and the one on screen
    assert view.photos.originals_bytes() <= budgets[0] + shown.image.rgb.nbytes * 4 // 3
    assert view.photos.results.spilled_count() > total // 2
    assert trace.growth() - held_mb < MAX_GROWTH_MB
    assert work < gap_bound_ms(idle)


# ---------------------------------------------------------------- training
def long_config(style: Path, photos: Path, vgg: Path, steps: int):
    """Batch 1 at 32 px over 6 photos, ``steps`` in all; a checkpoint every tenth of the run."""
    return tiny_config(style, photos, vgg, batch_size=1, steps=steps, checkpoint_iterations=steps // 10,
                       name=f"long {steps}")


@pytest.mark.parametrize("steps", CORE_STEPS)
def test_long_training_in_the_core_keeps_memory_flat(vgg_h5, photos_dir, style_image, steps):
    from mlabs_desktop.core.events import StepEvent
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.training.trainer import Trainer

    trace = MemoryTrace()
    warm = steps // 5  # after two checkpoints and previews

    def on_event(event) -> None:  # noqa: ANN001 - any core event
        if isinstance(event, StepEvent) and event.step == warm:
            trace.mark("warm")

    trace.mark("start")
    model = Trainer(long_config(style_image, photos_dir, vgg_h5, steps), on_event).run()
    trace.mark("end")
    trace.report(f"Trainer, {steps} steps at 32 px, batch 1",
                 steps_a_second_after_warm_up=f"{(steps - warm) / trace.seconds('warm'):.1f}")
    assert model.manifest.statistics["steps"] == steps
    assert Library().get(model.name).has_checkpoint
    assert trace.growth() < MAX_GROWTH_MB


@pytest.mark.parametrize("steps", STEPS)
def test_long_training_in_the_app_keeps_memory_flat_and_the_window_responsive(qtbot, vgg_h5, photos_dir,
                                                                             style_image, steps):
    from mlabs_desktop.core.events import StepEvent
    from mlabs_desktop.gui.kit.services import Services
    from mlabs_desktop.gui.train.view import TrainView

    services = Services()
    services.settings.vgg_path = str(vgg_h5)
    view = TrainView(services)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitUntil(lambda: view.form.params_panel.gpus is not None, timeout=60_000)  # TensorFlow is in
    config = long_config(style_image, photos_dir, vgg_h5, steps)
    fill(view, qtbot, style_image, photos_dir, **{"image-size": 32, "batch-size": 1, "steps": steps,
                                                  "max-steps": 0, "architecture": "lite",
                                                  "checkpoint-iterations": config.checkpoint_iterations})
    view.form.name_edit.setText(config.name)
    warm = steps // 5
    gaps = GapRecorder()
    trace = MemoryTrace()
    gaps.start()
    qtbot.wait(1000)  # the idle baseline
    trace.mark("start")
    gaps.phase = "build"  # the one-off graph build (see test_gui_train) is not what this test is about

    def on_event(event) -> None:  # noqa: ANN001 - any core event
        if isinstance(event, StepEvent):
            gaps.phase = "steps"
            if event.step == warm:
                paused(gaps, lambda: trace.mark("warm"))

    try:
        view.start_button.click()
        assert view.is_training()
        view._worker.progress.connect(on_event)
        qtbot.waitUntil(lambda: not view.is_training() and view._worker is None, timeout=120_000 + 500 * steps)
    finally:
        assert view.request_stop_and_wait(60_000)
    gaps.timer.stop()
    trace.mark("end")
    idle, build, work = gaps.worst("idle"), gaps.worst("build"), gaps.worst("steps")
    trace.report(f"Train view, {steps} steps at 32 px, batch 1",
                 largest_GUI_gap=f"{work:.0f} ms while steps ran ({build:.0f} ms building, idle {idle:.0f} ms)")
    assert view.live.chart.point_count() == steps
    assert view.live.stats["Step"].text() == f"{steps:,} / {steps:,}"
    assert trace.growth() < MAX_GROWTH_MB
    assert work < gap_bound_ms(idle)


# ---------------------------------------------------------------- the references PySide6 drops
APP_MAKING_QT_CALLS = textwrap.dedent("""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    from mlabs_desktop.gui.app import application

    app = application(headless=True)

    class Source(QObject):
        ping = Signal(object)

    label, source = QLabel(), Source()
    for i in range(1_000_000):  # what a window does in about an hour of a batch (see the report)
        label.setText("x")      # returns nothing: PySide6 6.12 on CPython 3.11 drops a reference to None
    for i in range(200_000):
        source.ping.emit(i)     # drops a reference to True
    print("survived")
""")


def test_the_app_survives_qt_calls_that_drop_references(isolated_home):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MLABS_DESKTOP_HOME=str(isolated_home))
    result = subprocess.run([sys.executable, "-c", APP_MAKING_QT_CALLS], capture_output=True, text=True,
                            env=env, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0 and result.stdout.strip().endswith("survived"), result.stderr[-1500:]


def test_the_guard_knows_the_broken_build():
    from mlabs_desktop.gui.kit.pyside_guard import affected

    assert affected("6.12.0", (3, 11))
    assert not affected("6.11.3", (3, 11)) and not affected("6.12.0", (3, 12))
