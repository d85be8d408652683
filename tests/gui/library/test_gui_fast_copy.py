"""Library > Make a fast copy…: progress, Stop, and the copy selected in the Library when it is done."""

from __future__ import annotations

import functools

from PySide6.QtWidgets import QFileDialog, QFormLayout

from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.training.distill import DistillConfig
from mlabs_desktop.gui.library import fast_copy

from conftest import write_photos
from gui_helpers import message_boxes, no_thread_leaks  # noqa: F401 - autouse fixtures
from test_gui_library import view  # noqa: F401 - the Library view fixture

SHORT = functools.partial(DistillConfig, steps=4, batch_size=2, image_size=32, held_out=2)


def test_a_fast_copy_lands_in_the_library_and_is_selected(view, qtbot, tiny_model, tmp_path, monkeypatch):
    photos = write_photos(tmp_path / "photos", count=6, size=(48, 40))
    monkeypatch.setattr(fast_copy, "DistillConfig", SHORT)
    manifest = tiny_model.manifest
    manifest.provenance["train_path"] = str(tmp_path / "gone")  # its photos moved: the user is asked
    tiny_model.save_manifest()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(photos)))
    view.refresh()
    view.select_model("tiny")
    assert view.details.buttons["fast-copy"].text() == "Fast copy…"
    dialog = view.make_fast_copy("tiny")
    qtbot.waitUntil(lambda: not dialog.is_running() and dialog.close_button.isVisible(), timeout=120_000)
    assert "“tiny (fast copy)” is in the Library: 4 steps" in dialog.status.text()
    assert "dB PSNR against the original style on 2 photos" in dialog.status.text()
    assert Library().get("tiny (fast copy)").manifest.architecture == "tiny"
    assert view.selected_name() == "tiny (fast copy)"
    labels = {key: [form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget().text() for row in range(form.rowCount())]
              for key, form in view.details.forms.items() if key in ("statistics", "provenance")}
    assert "PSNR to original (dB)" in labels["statistics"] and "Copied from" in labels["provenance"]
    dialog.close()


def test_stop_ends_the_copy_early_and_keeps_it(view, qtbot, tiny_model, tmp_path, monkeypatch):
    photos = write_photos(tmp_path / "photos", count=6, size=(48, 40))
    monkeypatch.setattr(fast_copy, "DistillConfig", functools.partial(SHORT, steps=10_000))
    monkeypatch.setattr(fast_copy, "photos_for", lambda model, parent: str(photos))
    dialog = view.make_fast_copy("tiny")
    qtbot.waitUntil(lambda: dialog.progress.value() >= 1, timeout=120_000)
    assert view.make_fast_copy("tiny") is dialog  # a second copy of the same style brings this one to the front
    dialog.close()  # while it runs, closing means Stop; the dialog stays until the copy is saved
    assert dialog.isVisible() and not dialog.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=120_000)
    copy = Library().get("tiny (fast copy)")
    assert 1 <= copy.manifest.statistics["steps"] < 10_000
    dialog.close()


def test_no_photos_chosen_makes_nothing(view, tiny_model, monkeypatch):
    monkeypatch.setattr(fast_copy, "photos_for", lambda model, parent: None)
    assert view.make_fast_copy("tiny") is None


def test_quitting_while_a_copy_runs_asks_then_keeps_the_copy(qtbot, message_boxes, tiny_model, tmp_path,
                                                             monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from gui_helpers import dispose
    from mlabs_desktop.gui.kit.services import Services
    from mlabs_desktop.gui.main_window import MainWindow

    photos = write_photos(tmp_path / "photos", count=6, size=(48, 40))
    monkeypatch.setattr(fast_copy, "DistillConfig", functools.partial(SHORT, steps=10_000))
    monkeypatch.setattr(fast_copy, "photos_for", lambda model, parent: str(photos))
    window = MainWindow(Services(), persist_state=False)
    window.show()
    dialog = window.library_view.make_fast_copy("tiny")
    qtbot.waitUntil(lambda: dialog.progress.value() >= 1, timeout=120_000)
    message_boxes.answer = QMessageBox.StandardButton.No
    window.close()
    assert window.isVisible() and dialog.is_running()
    assert message_boxes.calls[0][2].startswith("A fast copy is being made. Stop it")
    message_boxes.answer = QMessageBox.StandardButton.Yes
    window.close()
    assert not window.isVisible() and not dialog.is_running()
    assert 1 <= Library().get("tiny (fast copy)").manifest.statistics["steps"] < 10_000
    dispose(window)

