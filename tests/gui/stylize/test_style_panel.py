"""The Stylize view's controls after training: brush size, a second style mixed in, and sibling networks blended."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

from mlabs_desktop.core.images.decode import load_image
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.stylize.controls import mix_results
from mlabs_desktop.core.stylize.stylizer import Stylizer, finish
from mlabs_desktop.gui.stylize.blend_renderer import render_blend
from mlabs_desktop.gui.stylize.jobs import Run
from mlabs_desktop.gui.stylize.style_panel import BRUSH_STEPS
from sibling_styles import fine_tuned
from test_gui_stylize import WAIT_MS, harness, photo, run_calls  # noqa: F401 - fixtures

from gui_helpers import no_thread_leaks  # noqa: F401 - fails a test that leaves a thread running


def shown(view) -> bytes:
    return bytes(view.compare.styled_image().constBits())


def settle(harness) -> None:
    harness.qtbot.waitUntil(lambda: harness.state()[0] == "done" and harness.view.compare.styled_image() is not None,
                            timeout=WAIT_MS)
    harness.wait_idle()


def test_each_brush_size_runs_once_and_going_back_is_instant(tiny_model, harness, photo, run_calls):
    harness.stylized(photo)
    view, brush = harness.view, harness.view.style_panel.brush.slider
    as_trained = shown(view)
    brush.setSliderDown(True)  # dragging: nothing runs until the slider is let go
    brush.setValue(BRUSH_STEPS.index(1.5))
    brush.setValue(BRUSH_STEPS.index(2.0))
    assert view.photos.look.brush == 1.0 and len(run_calls) == 1
    brush.setSliderDown(False)
    settle(harness)
    assert run_calls == [(48, 64), (24, 32)]  # the network saw a copy half the size, once
    assert shown(view) != as_trained and view.style_panel.brush.value.text() == "2×"
    assert "photos in tiny, brush 2×" in view.status.text()
    brush.setValue(BRUSH_STEPS.index(1.0))  # kept: back at once, nothing runs
    assert shown(view) == as_trained and len(run_calls) == 2


def test_a_second_style_mixes_from_cached_results(tiny_model, harness, photo, run_calls, tmp_path, monkeypatch):
    fine_tuned(Library(), "stranger", tiny_model, 0.05, 3, sha="3" * 64)  # not a sibling: its parent was retrained
    harness.view.refresh_styles()
    harness.stylized(photo)
    view, mix = harness.view, harness.view.style_panel.mix
    assert not mix.amount.slider.isVisibleTo(view) and not mix.weights.isVisibleTo(view)
    mix.combo.setCurrentText("stranger")
    settle(harness)
    assert len(run_calls) == 2 and mix.amount.slider.isVisibleTo(view)
    assert not mix.weights.isEnabled()  # "Blend the networks" is for siblings only
    item = view.photos.items[1]
    first, second = view.photos.result(item, Run("tiny")), view.photos.result(item, Run("stranger"))
    for position in (2, 10, 20, 0):  # 10 %, 50 %, 100 %, 0 %
        mix.amount.slider.setValue(position)
        expected = render_blend(item.image.rgb, mix_results(first, second, position / 20), None,
                                view.style_panel.options())
        assert shown(view) == bytes(expected.constBits())
    assert len(run_calls) == 2  # every amount came from the two cached results
    assert view.photos.look.runs() == (Run("tiny"),)  # at 0 % the second style is not needed

    mix.amount.slider.setValue(6)
    target = tmp_path / "mixed.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    view.files.save_current()
    harness.wait_idle()
    saved = np.asarray(load_image(target).rgb, np.float32)
    wanted = np.clip(np.round(finish(item.image.rgb, mix_results(first, second, 0.3), view.style_panel.options())),
                     0, 255)
    assert np.abs(saved - wanted).max() <= 1
    assert view.compare._labels == ("Original", "tiny + 30 % stranger")

    view.select_style("stranger")  # a style is never mixed with itself
    assert mix.second() is None and view.photos.look.runs() == (Run("stranger"),)


def test_sibling_styles_blend_their_networks(tiny_model, harness, photo, run_calls):
    library = Library()
    warm, cold = (fine_tuned(library, name, tiny_model, 0.02, seed) for seed, name in ((1, "warm"), (2, "cold")))
    view, mix = harness.view, harness.view.style_panel.mix
    assert view.select_style("warm")
    harness.stylized(photo)
    mix.combo.setCurrentText("cold")
    settle(harness)
    assert mix.weights.isEnabled()
    mix.weights.setChecked(True)
    settle(harness)
    item = view.photos.items[1]
    blended = view.photos.result(item, Run("warm", 1.0, "cold", 0.5))
    alone = Stylizer.blended(warm, cold, 0.5, "cpu", "float32").run(item.image.rgb)
    assert blended == pytest.approx(alone, abs=1e-3)
    assert "warm blended with 50 % cold" in view.status.text()
    runs = len(run_calls)
    slider = mix.amount.slider
    slider.setSliderDown(True)  # each amount is a new network: it runs once the slider is let go
    for position in (8, 6, 4):
        slider.setValue(position)
    assert view.photos.look.mix_amount == 0.5 and len(run_calls) == runs
    slider.setSliderDown(False)
    settle(harness)
    assert view.photos.look.mix_amount == 0.2 and len(run_calls) == runs + 1
    assert Run("warm", 1.0, "cold", 0.2) in item.done
    fine_tuned(library, "stranger", tiny_model, 0.02, 3, sha="6" * 64)
    view.refresh_styles()
    mix.combo.setCurrentText("stranger")  # cannot blend: the box greys out...
    assert not mix.weights.isEnabled() and not mix.blends_weights()
    mix.combo.setCurrentText("cold")  # ...and the user's choice comes back with a sibling
    assert mix.blends_weights() and view.photos.look.mix_weights


def test_mixing_survives_the_second_style_leaving_the_library(tiny_model, harness, photo, run_calls):
    import shutil

    other = fine_tuned(Library(), "other", tiny_model, 0.05, 4, sha="4" * 64)
    harness.view.refresh_styles()
    harness.stylized(photo)
    harness.view.style_panel.mix.combo.setCurrentText("other")
    settle(harness)
    shutil.rmtree(other.folder)
    harness.view.refresh_styles()
    assert harness.view.style_panel.mix.second() is None
    assert harness.view.photos.look.runs() == (Run("tiny"),) and harness.state()[0] == "done"


def test_a_mix_runs_each_network_once_and_a_failure_stays_with_its_style(tiny_model, harness, photo, run_calls,
                                                                         monkeypatch):
    from mlabs_desktop.core.errors import UserError
    from mlabs_desktop.core.stylize import stylizer as stylize

    fine_tuned(Library(), "other", tiny_model, 0.05, 4, sha="7" * 64)
    view = harness.view
    view.refresh_styles()
    view.open_paths([photo])
    view.style_panel.mix.combo.setCurrentText("other")  # while "tiny" is queued or running
    settle(harness)
    assert len(run_calls) == 2  # each network once, whichever moment the mix came in

    counting = stylize.Stylizer.run

    def failing(self, rgb):
        if self.model.name == "tiny":
            raise UserError("tiny cannot run")
        return counting(self, rgb)

    monkeypatch.setattr(stylize.Stylizer, "run", failing)
    view.style_panel.brush.slider.setValue(BRUSH_STEPS.index(2.0))
    harness.qtbot.waitUntil(lambda: harness.state()[0] == "failed" and not view.is_busy(), timeout=WAIT_MS)
    item = view.photos.items[1]
    assert item.errors == {Run("tiny", 2.0): "tiny cannot run"}
    harness.qtbot.waitUntil(lambda: Run("other", 2.0) in item.done, timeout=WAIT_MS)  # it ran on its own
    assert view.select_style("other")  # the other style alone: its result is already there
    assert harness.state()[0] == "done"
