"""Clips in the app: a drop opens the clip's window; scrub, preview, render, cancel and save."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from clip_helpers import SIZE, decoded, sample
from mlabs_desktop.core.paths import cache_dir
from mlabs_desktop.core.stylize.stylizer import BlendOptions
from mlabs_desktop.core.video.samples import pan_frames, write_clip
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
    assert window.clips.open([ok], None, BlendOptions()) == 0  # an empty library: nothing picked
    assert errors[-1][0] == "No style to apply" and "Pick a style" in errors[-1][1] and window.clips.windows == []
