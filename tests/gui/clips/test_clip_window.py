"""Clips in the app: a drop opens the clip's window; scrub, preview, render, cancel and save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from clip_helpers import SIZE, decoded, sample
from mlabs_desktop.core.paths import cache_dir
from mlabs_desktop.core.stylize.stylizer import BlendOptions
from mlabs_desktop.core.video.samples import pan_frames, write_clip
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.kit.services import Services

from gui_helpers import drop, message_boxes, no_thread_leaks  # noqa: F401 - autouse fixtures

WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def temp_qsettings(tmp_path: Path, qapp):
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))


@pytest.fixture
def window(qtbot, tiny_model):
    from mlabs_desktop.gui.main_window import MainWindow

    win = MainWindow(Services())
    qtbot.addWidget(win)
    win.show()
    win.stylize_view.select_style("tiny")
    yield win
    win.clips.cancel_and_wait(WAIT_MS)
    win.clips.close_all()


def rendered_files() -> list[Path]:
    folder = cache_dir() / "clips"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_dropped_clip_opens_in_its_own_window_and_saves_with_sound(window, qtbot, tmp_path):
    clip = write_clip(tmp_path / "walk.mp4", pan_frames(sample(), SIZE, 10), fps=25)
    assert drop(window, [clip])
    [clip_window] = window.clips.windows
    qtbot.waitUntil(lambda: clip_window.compare.styled_image() is not None and not clip_window.is_busy(),
                    timeout=WAIT_MS)
    assert clip_window.compare.original_image().size().toTuple() == SIZE
    first = clip_window.compare.styled_image().copy()

    clip_window.scrubber.setValue(7)  # a later moment: its own frame, stylized alone
    qtbot.waitUntil(lambda: clip_window.compare.styled_image() != first and not clip_window.is_busy(),
                    timeout=WAIT_MS)
    assert clip_window.time_label.text() == "0:00.2 / 0:00.4"
    assert "this frame alone" in clip_window.compare._labels[1]

    clip_window.render_button.click()
    assert clip_window.cancel_button.isEnabled() and not clip_window.save_button.isEnabled()
    qtbot.waitUntil(lambda: clip_window.save_button.isEnabled(), timeout=WAIT_MS)
    assert "Save… writes it" in clip_window.status.text()
    qtbot.waitUntil(lambda: "as rendered" in clip_window.compare._labels[1], timeout=WAIT_MS)

    target = tmp_path / "out" / "walk styled"
    clip_window.save_to(target)
    qtbot.waitUntil(lambda: not clip_window.is_busy(), timeout=WAIT_MS)
    frames, _, facts = decoded(target.with_name("walk styled.mp4"))
    assert len(frames) == 10 and facts.audio == "aac" and (facts.width, facts.height) == SIZE
    clip_window.close()
    assert window.clips.windows == [] and rendered_files() == []


def test_a_preview_renders_the_first_seconds_and_cancel_leaves_nothing(window, qtbot, tmp_path):
    clip = write_clip(tmp_path / "long.mp4", pan_frames(sample(), SIZE, 100), fps=25)  # 4 s
    window.stylize_view.open_paths([clip])
    [clip_window] = window.clips.windows
    qtbot.waitUntil(lambda: not clip_window.is_busy(), timeout=WAIT_MS)
    clip_window.preview_button.click()
    qtbot.waitUntil(lambda: not clip_window.is_busy(), timeout=WAIT_MS)
    assert "Preview ready" in clip_window.status.text() and not clip_window.save_button.isEnabled()
    [preview] = rendered_files()
    assert len(decoded(preview)[0]) == 75

    clip_window.render_button.click()
    qtbot.waitUntil(lambda: clip_window.progress.value() >= 2, timeout=WAIT_MS)
    assert "frames/s" in clip_window.status.text() and "left" in clip_window.status.text()
    clip_window.cancel_button.click()
    qtbot.waitUntil(lambda: not clip_window.is_busy(), timeout=WAIT_MS)
    assert clip_window.status.text() == "Cancelled; nothing was written."
    assert rendered_files() == [preview] and not clip_window.save_button.isEnabled()


def test_a_clip_without_a_style_or_that_cannot_be_read_says_what_to_do(window, tmp_path):
    bad = tmp_path / "broken.mov"
    bad.write_bytes(b"no video here" * 100)
    errors = []
    window.services.hub.error.connect(lambda title, text: errors.append((title, text)))
    window.stylize_view.open_paths([bad])
    assert errors[-1][0] == "Cannot open broken.mov" and "try converting it to mp4" in errors[-1][1]
    ok = write_clip(tmp_path / "ok.mp4", pan_frames(sample(), SIZE, 3))
    assert window.clips.open([ok], Look(), BlendOptions()) == 0  # an empty library: nothing picked
    assert errors[-1][0] == "No style to apply" and "Pick a style" in errors[-1][1] and window.clips.windows == []


def test_a_clip_takes_the_brush_size_and_mix_the_photos_show(window, qtbot, tmp_path):
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.stylize.stylizer import Stylizer, finish
    from mlabs_desktop.core.video.reader import frame_at
    from mlabs_desktop.gui.stylize.style_panel import BRUSH_STEPS
    from sibling_styles import fine_tuned

    fine_tuned(Library(), "second", Library().get("tiny"), 0.05, 1, sha="5" * 64)
    view = window.stylize_view
    view.refresh_styles()
    view.style_panel.brush.slider.setValue(BRUSH_STEPS.index(2.0))
    view.style_panel.mix.combo.setCurrentText("second")
    view.style_panel.mix.amount.slider.setValue(8)  # 40 %
    clip = write_clip(tmp_path / "walk.mp4", pan_frames(sample(), SIZE, 4), fps=25)
    view.open_paths([clip])
    [clip_window] = window.clips.windows
    assert clip_window.look.title == "tiny + 40 % second, brush 2×"
    assert not clip_window.steady.isEnabled() and not clip_window.steady.isChecked()  # steady runs one style
    qtbot.waitUntil(lambda: clip_window.compare.styled_image() is not None and not clip_window.is_busy(),
                    timeout=WAIT_MS)
    expected = Stylizer.open("tiny", "cpu")
    expected.set_controls(2.0, (Stylizer.open("second", "cpu"), 0.4))
    original = frame_at(clip_window.info, 0.0)
    wanted = np.clip(np.round(finish(original.astype(np.float32), expected.run(original), clip_window.options)), 0, 255)
    shown = clip_window.compare.styled_image()
    pixels = np.frombuffer(shown.constBits(), np.uint8).reshape(shown.height(), shown.bytesPerLine() // 4, 4)
    assert np.abs(pixels[:, :SIZE[0], 2::-1].astype(float) - wanted).max() <= 1  # BGRA on little-endian
    cached = window.clips._stylizers.get("tiny", window.services.settings.default_device)
    assert cached.brush == 1.0 and cached.mixed is None  # the shared network stays as trained
