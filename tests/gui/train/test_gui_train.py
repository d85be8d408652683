"""The Train view: form, validation, sliders, presets, real tiny runs, stop/resume, responsiveness."""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytestqt.exceptions import TimeoutError
from PySide6.QtCore import QThread, QTimer

from mlabs_desktop.core.config import PARAMS
from mlabs_desktop.core.events import StepEvent
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.train.params import brush_to_scale, scale_to_brush, strength_to_weight, weight_to_strength
from mlabs_desktop.gui.train.view import TrainView
from mlabs_desktop.core import messages
from mlabs_desktop.gui.train.worker import friendly_error

from gui_helpers import drop

# photos_dir holds 6 photos: 3 steps per epoch at batch 2; checkpoints at steps 2 and 3 (the end).
TINY = {"image-size": 32, "batch-size": 2, "steps": 0, "epochs": 1, "max-steps": 0, "checkpoint-iterations": 2,
        "architecture": "lite"}
# The goal is 100 ms. Measured on 2 cores: 10-50 ms while steps run. Before the first step, TensorFlow
# builds and optimises the training graph in C++ holding the GIL: one stall of about 200 ms (up to
# ~400 ms when other work loads the machine). Importing TensorFlow stalls too (about 300 ms), so the
# check starts once it is in, as in the app: showing the view lists the devices, which imports it.
MAX_GAP_MS = 250          # while training steps run
# The one-off graph build before the first step (not ours to fix: core/TF). Alone it stalls 106-141 ms;
# beside the suite's second worker on a slow day it reached 1,063 ms, so only a multi-second freeze fails.
MAX_BUILD_GAP_MS = 2000
# While steps run on a machine other work loads (see machine_is_shared): 11-12 ms alone, but 1,234 ms once
# beside the suite's second worker at a load average of 3.0 on 2 cores, so only a multi-second freeze fails.
MAX_SHARED_GAP_MS = 2000


def machine_is_shared() -> bool:
    """Whether other work competes for the cores: a high load average, or another test worker beside this one.

    Then the OS scheduler alone delays the GUI thread by hundreds of ms while TensorFlow keeps every
    core busy (434 ms measured in a training run beside the suite's second worker, on 2 cores).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return workers > 1 or os.getloadavg()[0] > (os.cpu_count() or 2) + 3


@pytest.fixture(autouse=True)
def no_thread_left_running(monkeypatch):
    """Fail a test that leaves a QThread running (and wait for it, so the process survives)."""
    started: list[QThread] = []
    original = QThread.start

    def start(self, *args, **kwargs):
        started.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    yield
    import shiboken6

    running = [t for t in started if shiboken6.isValid(t) and t.isRunning()]
    for thread in running:
        thread.wait(60_000)
    assert not running, f"QThreads left running: {[t.objectName() for t in running]}"


@pytest.fixture
def services(vgg_h5: Path) -> Services:
    services = Services()
    services.settings.vgg_path = str(vgg_h5)
    return services


@pytest.fixture
def view(qtbot, services):
    widget = TrainView(services)
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    yield widget
    assert widget.request_stop_and_wait(60_000)
    qtbot.wait(20)  # deliver the last queued signals


def fill(view: TrainView, qtbot, style: Path, photos: Path, **params) -> None:
    view.form.sources.set_style(style)
    view.form.sources.set_train_folder(photos)
    sources = view.form.sources
    try:
        qtbot.waitUntil(lambda: not sources.scanning and not sources.workers, timeout=30_000)
    except TimeoutError:  # say which job hung, with every thread's stack
        print("\nscan still running:", sources.scanning, [(w.objectName(), w.isRunning()) for w in sources.workers])
        faulthandler.dump_traceback(all_threads=True, file=sys.stdout)
        raise
    view.form.set_params(params)


def run_to_end(view: TrainView, qtbot, timeout: int = 120_000) -> None:
    view.start_button.click()
    assert view.is_training()
    qtbot.waitUntil(lambda: not view.is_training() and view._worker is None, timeout=timeout)


# ---------------------------------------------------------------- building and the form
def test_view_builds_every_parameter_with_help(view):
    for spec in PARAMS:
        field = view.form.fields[spec.name]
        assert spec.help in field.toolTip()
    assert not view.start_button.isEnabled()
    assert "style" in view.hint.text().lower()
    assert not view.form.error_labels["style"].isVisible()  # "not chosen yet" is a hint, not an error
    assert view.form.raw("architecture") == "lite"          # the default preset (quick-look)


def test_importing_and_building_the_view_leaves_tensorflow_out():
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from PySide6.QtWidgets import QApplication; app = QApplication([])\n"
            "from mlabs_desktop.gui.kit.services import Services\n"
            "from mlabs_desktop.gui.train.view import TrainView\n"
            "view = TrainView(Services()); app.processEvents()\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_bad_value_blocks_start_and_is_explained(view, qtbot, style_image, photos_dir):
    fill(view, qtbot, style_image, photos_dir, **TINY)
    assert view.start_button.isEnabled(), view.form.errors
    view.form.fields["content-weight"].setText("abc")
    label = view.form.error_labels["content-weight"]
    assert not view.start_button.isEnabled()
    assert not label.isHidden() and "number" in label.text()
    assert "abc" in view.hint.text()
    view.form.fields["learning-rate"].setText("5")
    assert "at most 1" in view.form.error_labels["learning-rate"].text()
    assert view.hint.text().startswith("2 things to fix")
    view.form.fields["content-weight"].setText("7.5")
    view.form.fields["learning-rate"].setText("1e-3")
    assert view.start_button.isEnabled() and label.isHidden()


def test_a_wild_value_is_warned_beside_its_field_but_does_not_block_start(view, qtbot, style_image, photos_dir):
    fill(view, qtbot, style_image, photos_dir, **TINY)
    view.form.fields["style-weight"].setText("1e12")
    label = view.form.error_labels["style-weight"]
    assert not label.isHidden()
    assert label.text() == "1e+12 is far outside the range that trains well (1 to 100000)"
    assert "#a15c00" in label.styleSheet()  # a warning's colour, not an error's
    assert view.start_button.isEnabled()
    view.form.fields["style-weight"].setText("100")
    assert label.isHidden()


def test_style_strength_slider_is_log_scale_style_weight(view):
    form = view.form.params_panel
    assert strength_to_weight(0) == 1.0 and strength_to_weight(200) == 100.0 and strength_to_weight(400) == 1e4
    assert weight_to_strength(1000) == 300 and weight_to_strength(1e9) == 400  # clamped at the end
    form.strength.setValue(300)
    assert form.fields["style-weight"].text() == "1000"
    form.strength.setValue(250)
    assert float(form.fields["style-weight"].text()) == pytest.approx(316, rel=1e-3)
    form.fields["style-weight"].setText("10")
    assert form.strength.value() == 100 and form.strength_value.text() == "10"
    assert brush_to_scale(scale_to_brush(0.5)) == 0.5
    form.brush.setValue(150)
    assert form.fields["style-scale"].text() == "1.5" and form.brush_value.text() == "1.50×"


def test_presets_fill_the_form_and_save(view, isolated_home):
    view.form.apply_preset("reference")
    assert view.form.raw("architecture") == "classic" and view.form.raw("image-size") == 256
    assert view.form.params_panel.preset_combo.currentData() == "reference"
    view.form.fields["tv-weight"].setText("150")
    assert view.form.params_panel.preset_combo.currentData() == ""  # edited: now "Custom"
    path = view.form.params_panel.save_preset("my look")
    assert path is not None and path.is_file()
    assert view.form.params_panel.preset_combo.currentData() == "my look"
    view.form.apply_preset("quick-look")
    view.form.apply_preset("my look")
    assert view.form.raw("tv-weight") == "150" and view.form.raw("architecture") == "classic"


def test_empty_or_missing_folder_is_explained(view, qtbot, tmp_path, style_image):
    empty = tmp_path / "empty"
    empty.mkdir()
    view.form.sources.set_style(style_image)
    view.form.sources.set_train_folder(empty)
    label = view.form.error_labels["train_path"]
    qtbot.waitUntil(lambda: not label.isHidden())
    assert "No photos in this folder" in label.text()
    assert not view.start_button.isEnabled()
    view.form.sources.set_train_folder(tmp_path / "nowhere")
    qtbot.waitUntil(lambda: "not found" in label.text())


def test_missing_vgg_weights_say_what_to_do(view, services, tmp_path):
    services.settings.vgg_path = str(tmp_path / "gone.h5")
    view.form.refresh_vgg()
    assert not view.form.vgg_warning.isHidden()
    assert "Settings > Download" in view.form.vgg_warning.text()
    assert "Settings > Download" in view.hint.text() and not view.start_button.isEnabled()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PySide marks QDragEnterEvent's only constructor
def test_drops_set_style_and_folder(view, qtbot, style_image, photos_dir):
    sources = view.form.sources
    refused = []
    view.services.hub.error.connect(lambda title, why: refused.append((title, why)))
    assert drop(sources.style_box, [photos_dir])           # a folder is no style image: taken, and answered
    assert sources.style_path == "" and refused[0][0] == "Not a style image" and "not a folder" in refused[0][1]
    assert drop(sources.style_box, [style_image])
    assert sources.style_path == str(style_image)
    assert drop(sources.folder_box, [photos_dir])
    qtbot.waitUntil(lambda: sources.scan is not None and sources.folder_thumbs.shown_count() >= 4)
    assert "6 images" in sources.folder_summary.text()
    qtbot.waitUntil(lambda: sources.style_thumb.has_image())
    assert view.form.name_edit.text() == "swirls"         # suggested from the style file


def test_friendly_error_for_gpu_out_of_memory():
    class ResourceExhaustedError(Exception):
        pass

    advice = str(friendly_error(ResourceExhaustedError("OOM when allocating tensor")))
    assert advice == messages.out_of_memory(messages.APP, "training")
    assert "Batch size" in advice and "--" not in advice  # the app's words, not flags
    assert str(friendly_error(MemoryError())) == advice
    other = ValueError("x")
    assert friendly_error(other) is other


# ---------------------------------------------------------------- real tiny runs
class GapRecorder:
    """A QTimer every 20 ms; records how late each tick came (what a user feels as a frozen window)."""

    def __init__(self) -> None:
        self.gaps: list[tuple[str, float]] = []
        self.phase = "idle"
        self._last = time.perf_counter()
        self.timer = QTimer(interval=20)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((self.phase, 1000 * (now - self._last) - 20))
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def worst(self, *phases: str) -> float:
        return max((g for p, g in self.gaps if p in phases), default=0.0)


def test_real_run_feeds_chart_preview_library_and_stays_responsive(view, qtbot, style_image, photos_dir):
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.form.params_panel.gpus is not None, timeout=60_000)  # TensorFlow is in
    assert "tensorflow" in sys.modules
    fill(view, qtbot, style_image, photos_dir, **TINY)
    view.form.name_edit.setText("tiny run")
    changed, statuses = [], []
    view.services.hub.library_changed.connect(lambda: changed.append(1))
    view.services.hub.status.connect(statuses.append)
    gaps = GapRecorder()
    gaps.start()
    qtbot.wait(1000)  # the baseline: what the (shared, loaded) machine does to an idle event loop
    gaps.phase = "build"
    view.start_button.click()
    assert view.is_training()

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            gaps.phase = "steps"

    view._worker.progress.connect(on_event)
    qtbot.waitUntil(lambda: not view.is_training() and view._worker is None, timeout=120_000)
    gaps.timer.stop()

    chart = view.live.chart
    assert chart.point_count() == 3 and chart.drawn_count("total") > 0
    assert not view.live.preview.pixmap().isNull()
    assert view.live.strip.count() == 2  # checkpoints at steps 2 and 3
    model = Library().get("tiny run")
    assert model.manifest.state == "finished" and model.manifest.statistics["steps"] == 3
    assert len(changed) >= 3  # two checkpoints and the end
    assert any("step 3/3" in s for s in statuses)
    assert view.live.stats["Step"].text() == "3 / 3"
    assert view.form.mode == "new" and view.form.name_edit.text() != "tiny run"  # a fresh name next

    idle, build, steps = gaps.worst("idle"), gaps.worst("build"), gaps.worst("steps")
    load = os.getloadavg()[0]
    # On a shared machine only a gross stall fails the test (see machine_is_shared).
    bound = (MAX_SHARED_GAP_MS if machine_is_shared() else MAX_GAP_MS) + idle
    print(f"\nevent-loop lateness (ms): idle baseline {idle:.0f}, network build + first step {build:.0f}, "
          f"training steps {steps:.0f}; load average {load:.1f}, bound for steps {bound:.0f}")
    assert steps < bound
    assert build < MAX_BUILD_GAP_MS + idle


def test_stop_leaves_a_resumable_model_and_resume_continues(view, qtbot, style_image, photos_dir):
    fill(view, qtbot, style_image, photos_dir, **(TINY | {"max-steps": 0, "epochs": 2,
                                                          "checkpoint-iterations": 100}))
    view.form.name_edit.setText("to resume")
    steps: list[int] = []

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            steps.append(event.step)
            view.stop()  # stop after the first step event

    view.start_button.clicked.emit()  # the same slot a click runs
    view._worker.progress.connect(on_event)
    qtbot.waitUntil(lambda: not view.is_training() and view._worker is None, timeout=120_000)
    model = Library().get("to resume")
    stopped_at = model.manifest.statistics["steps"]
    assert model.has_checkpoint and model.manifest.state == "stopped"
    assert 1 <= stopped_at < 6
    assert view.form.mode == "resume" and view.start_button.text() == "Resume training"

    view.form.clear_mode()
    view.resume_model("to resume")
    assert view.form.mode == "resume" and not view.form.fields["image-size"].isEnabled()
    assert view.live.chart.point_count() == stopped_at  # the saved history is shown
    view.form.set_params({"max-steps": 2})
    steps.clear()
    run_to_end(view, qtbot)
    resumed = Library().get("to resume")
    assert resumed.manifest.statistics["steps"] == stopped_at + 2
    assert view.live.chart.point_count() == stopped_at + 2
    assert view.live.stats["Step"].text().startswith(f"{stopped_at + 2} /")


def test_stop_while_preparing_stops_at_the_first_step(view, qtbot, style_image, photos_dir):
    # Passed on at the first step: the core's batch stream hangs when stopped before its first batch.
    fill(view, qtbot, style_image, photos_dir, **(TINY | {"epochs": 3}))
    view.form.name_edit.setText("stopped early")
    errors = []
    view.services.hub.error.connect(lambda title, message: errors.append(message))
    view.start()
    view.stop()
    assert view.stop_button.text() == "Stopping…" and not view.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not view.is_training() and view._worker is None, timeout=120_000)
    assert errors == []
    model = Library().get("stopped early")
    assert model.manifest.state == "stopped" and model.manifest.statistics["steps"] == 1
    assert model.has_checkpoint and view.form.mode == "resume"


def test_training_error_reaches_the_hub(view, qtbot, services, tmp_path, style_image, photos_dir):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file")
    services.settings.vgg_path = str(bad)
    view.form.refresh_vgg()
    fill(view, qtbot, style_image, photos_dir, **TINY)
    with qtbot.waitSignal(services.hub.error, timeout=120_000) as blocker:
        view.start()
    title, message = blocker.args
    assert title == "Training failed" and "VGG19" in message and "Settings" in message
    qtbot.waitUntil(lambda: view._worker is None, timeout=30_000)
    assert not view.live.error_box.isHidden()


def test_the_step_guard_stops_in_the_window_with_the_model_saved(view, qtbot, services, tmp_path, style_image,
                                                                 monkeypatch):
    import numpy as np
    from PIL import Image

    from conftest import write_photos
    from test_training_guard import poison_batches_holding_a_flat_photo

    folder = write_photos(tmp_path / "photos", count=1)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(folder / "blank.png")
    poison_batches_holding_a_flat_photo(monkeypatch, after=2)
    fill(view, qtbot, style_image, folder, **{**TINY, "epochs": 50, "checkpoint-iterations": 1000})
    name = view.form.name_edit.text().strip()
    with qtbot.waitSignal(services.hub.error, timeout=120_000) as blocker:
        view.start()
    title, message = blocker.args
    assert "5 steps in a row (from step 3)" in message and "blank.png" in message
    qtbot.waitUntil(lambda: view._worker is None, timeout=30_000)
    assert not view.live.error_box.isHidden()
    assert "step 3 skipped" in view.live.log.toPlainText()
    assert Library().get(name).manifest.state == "stopped"


def test_resume_and_fine_tune_from_the_library(view, tiny_model):
    errors = []
    view.services.hub.error.connect(lambda title, message: errors.append(title))
    view.fine_tune_from("tiny")
    assert view.form.mode == "fine-tune" and view.form.init_from == "tiny"
    assert view.form.name_edit.text() == "tiny fine-tuned"
    assert view.form.raw("architecture") == "lite" and not view.form.fields["architecture"].isEnabled()
    assert view.form.config().init_from == "tiny"
    view.form.clear_mode()
    assert view.form.fields["architecture"].isEnabled() and view.form.init_from is None
    (tiny_model.folder / "checkpoint.npz").unlink()
    view.resume_model("tiny")
    view.resume_model("no such model")
    assert errors == ["Cannot resume", "Model not found"]
