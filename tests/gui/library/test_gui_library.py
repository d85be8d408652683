"""The Library view: cards, search, details, actions, and the folder on disk as the truth."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QInputDialog, QLabel, QMessageBox

from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.events import format_duration
from mlabs_desktop.gui.library.cards import ThumbnailCache
from mlabs_desktop.gui.library.view import CARD_ROLE, LibraryView
from mlabs_desktop.gui.kit.services import Services

# Autouse fixtures: fail on a leaked QThread, never block on a message box.
from gui_helpers import copy_model, message_boxes, no_thread_leaks  # noqa: F401


@pytest.fixture
def view(qtbot):
    widget = LibraryView(Services())
    qtbot.addWidget(widget)
    widget.resize(1100, 760)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _names(view: LibraryView) -> list[str]:
    return [view.proxy.index(r, 0).data(CARD_ROLE).name for r in range(view.proxy.rowCount())]


def test_format_duration():
    assert [format_duration(s) for s in (0, 59, 60, 3599, 3660, 36_000)] == \
        ["0:00", "0:59", "1:00", "59:59", "1:01:00", "10:00:00"]


def test_format_steps_counts_in_words():
    from mlabs_desktop.core.events import format_steps

    assert [format_steps(n) for n in (0, 1, 2, 40_000)] == ["0 steps", "1 step", "2 steps", "40,000 steps"]


def test_empty_library_message(view, qtbot):
    assert view.is_empty()
    page = view.pages.currentWidget()
    assert any("library is empty" in label.text() for label in page.findChildren(QLabel))
    button = page.findChild(type(view.details.buttons["stylize"]), "train-first")
    with qtbot.waitSignal(view.view_requested) as blocker:
        button.click()
    assert blocker.args == ["train"]


def test_a_library_folder_gone_since_the_start_is_said_on_the_status_line(view, tiny_model, tmp_path):
    from mlabs_desktop.core.settings import load_settings, save_settings

    said = []
    view.services.hub.status.connect(said.append)
    (tmp_path / "drive").write_text("its drive was unplugged; a file stands in its place")
    settings = load_settings()
    settings.library_dir = str(tmp_path / "drive" / "styles")
    save_settings(settings)
    view.refresh()
    assert said and said[-1].startswith(f"Cannot read the library: the library folder {tmp_path / 'drive' / 'styles'}")
    assert "choose another (Library folder in Settings)" in said[-1] and view.is_empty()


def test_card_and_details_of_the_tiny_model(view, tiny_model):
    from mlabs_desktop.core.events import format_steps

    view.refresh()
    assert not view.is_empty()
    assert _names(view) == ["tiny"]
    card = view.proxy.index(0, 0).data(CARD_ROLE)
    assert card.steps == tiny_model.manifest.statistics["steps"] and card.device
    assert card.summary.startswith(format_steps(card.steps) + "  ·  ")
    assert view.select_model("tiny")
    details = view.details
    assert view.selected_name() == "tiny" and details.title.text() == "tiny"
    assert details.forms["parameters"].rowCount() == len(tiny_model.manifest.parameters)
    assert details.forms["statistics"].rowCount() >= 3
    assert details.forms["provenance"].rowCount() >= 3
    assert details.strip.count() >= len(tiny_model.previews())      # previews + a stretch
    assert all(b.isEnabled() for b in details.buttons.values())
    chart = getattr(details.chart, "chart", None)
    if chart is not None:
        assert chart.point_count() == len(tiny_model.loss_history()["step"])
    # The card paints (thumbnails loaded and cached) without errors.
    view.grid.viewport().grab()
    assert view.cache.get(tiny_model.folder / "style.jpg", 124) is not None


def test_details_say_what_precision_the_model_stylizes_in(tiny_model, monkeypatch):
    from mlabs_desktop.core.library.store import WEIGHTS
    from mlabs_desktop.core.hardware import cpu_info
    from mlabs_desktop.core.networks import precision
    from mlabs_desktop.gui.library.details import precision_text

    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: False)
    assert precision_text(tiny_model) == "float32"
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)
    assert precision_text(tiny_model).startswith("float32 or bfloat16: decided when it first stylizes")
    precision.cached_fidelity(tiny_model.folder / WEIGHTS, lambda: precision.Fidelity(45.2, 3))
    assert precision_text(tiny_model) == "bfloat16 (looks the same as float32: 45.2 dB PSNR)"
    from mlabs_desktop.core.hardware import bfloat16_speed

    monkeypatch.setattr(cpu_info, "cpu_has_amx_bfloat16", lambda: False)  # AVX512-BF16 alone, not timed yet
    assert precision_text(tiny_model).startswith("float32 or bfloat16: decided when it first stylizes")
    monkeypatch.setattr(bfloat16_speed, "measure_speedup", lambda: 0.6)
    assert not bfloat16_speed.cpu_bfloat16_pays()
    assert precision_text(tiny_model) == "float32"  # slower here: never bfloat16, whatever the model


def test_search_filters_by_name(view, tiny_model, tmp_path):
    copy_model(tiny_model, Library().root / "other", "Starry night")
    view.refresh()
    assert sorted(_names(view)) == ["Starry night", "tiny"]
    view.search.setText("STARRY")
    assert _names(view) == ["Starry night"]
    assert view.count_label.text() == "1 of 2 styles"
    view.search.setText("nothing like this")
    assert _names(view) == [] and not view.no_match.isHidden()
    view.search.clear()
    assert len(_names(view)) == 2 and view.no_match.isHidden()


def test_rename(view, tiny_model, monkeypatch):
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Renamed style", True)))
    view.refresh()
    view.select_model("tiny")
    view.details.buttons["rename"].click()
    assert Library().find("Renamed style") is not None and Library().find("tiny") is None
    assert _names(view) == ["Renamed style"]
    assert view.selected_name() == "Renamed style" and view.details.title.text() == "Renamed style"


def test_rename_to_a_taken_name_is_explained(view, tiny_model, monkeypatch, message_boxes):
    copy_model(tiny_model, Library().root / "other", "other")
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("other", True)))
    view.refresh()
    view.select_model("tiny")
    view.rename_selected()
    assert message_boxes.kinds() == ["warning"] and "already exists" in message_boxes.calls[0][2]
    assert sorted(_names(view)) == ["other", "tiny"]


@pytest.mark.parametrize("confirm", [False, True])
def test_delete(view, tiny_model, message_boxes, confirm: bool):
    message_boxes.answer = QMessageBox.StandardButton.Yes if confirm else QMessageBox.StandardButton.No
    view.refresh()
    view.select_model("tiny")
    view.details.buttons["delete"].click()
    assert message_boxes.kinds() == ["question"]
    assert (Library().find("tiny") is None) == confirm
    assert view.is_empty() == confirm
    assert tiny_model.folder.exists() != confirm


def test_model_copied_in_from_outside_appears(view, tiny_model, qtbot):
    view.refresh()
    view.hide()
    copy_model(tiny_model, Library().root / "dropped-in", "copied by hand")
    view.show()      # showEvent re-reads the folder
    assert sorted(_names(view)) == ["copied by hand", "tiny"]
    shutil.rmtree(Library().root / "dropped-in")
    view.services.hub.library_changed.emit()
    assert _names(view) == ["tiny"]


def test_selection_survives_refresh_and_updates(view, tiny_model):
    view.refresh()
    view.select_model("tiny")
    model = Library().get("tiny")
    model.manifest.statistics["steps"] = 999
    model.save_manifest()
    view.refresh()
    assert view.selected_name() == "tiny"
    assert "999" in view.proxy.index(0, 0).data(CARD_ROLE).summary


def test_actions_reach_the_hub(view, tiny_model, qtbot):
    hub = view.services.hub
    view.refresh()
    view.select_model("tiny")
    buttons = view.details.buttons
    with qtbot.waitSignal(hub.stylize_with) as blocker:
        buttons["stylize"].click()
    assert blocker.args == ["tiny"]
    with qtbot.waitSignal(hub.train_from) as blocker:
        buttons["resume"].click()
    assert blocker.args == ["tiny", "resume"]
    with qtbot.waitSignal(hub.train_from) as blocker:
        buttons["fine-tune"].click()
    assert blocker.args == ["tiny", "fine-tune"]
    with qtbot.waitSignal(view.export_requested) as blocker:
        buttons["export"].click()
    assert blocker.args == ["tiny"]
    with qtbot.waitSignal(hub.stylize_with):
        view.grid.doubleClicked.emit(view.grid.currentIndex())


def test_resume_needs_a_checkpoint(view, tiny_model):
    (tiny_model.folder / "checkpoint.npz").unlink()
    view.refresh()
    view.select_model("tiny")
    assert not view.details.buttons["resume"].isEnabled()
    assert view.details.buttons["fine-tune"].isEnabled()


def test_thumbnail_cache_follows_mtime(tmp_path, qapp):
    image = tmp_path / "a.jpg"
    shutil.copy(Path(__file__).resolve().parents[3] / "resources" / "samples" / "chelsea.jpg", image)
    cache = ThumbnailCache()
    first = cache.get(image, 64)
    assert first is not None and (first.width(), first.height()) == (64, 64)
    assert cache.get(image, 64) is first
    later = time.time() + 5
    os.utime(image, (later, later))
    assert cache.get(image, 64) is not first
    assert cache.get(tmp_path / "missing.jpg", 64) is None
