"""A library folder that cannot be used (its drive unplugged) is said before the window opens, with a way on."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.settings import load_settings, save_settings
from mlabs_desktop.gui.app import library_usable
from mlabs_desktop.gui.kit.services import Services


@pytest.mark.parametrize("choice", ["Use the default folder", "Quit"])
def test_an_unusable_library_folder_asks_before_the_window_opens(qtbot, isolated_home, tmp_path, monkeypatch, choice):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the library folder should be")
    settings = load_settings()
    settings.library_dir = str(blocker / "library")
    save_settings(settings)
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    monkeypatch.setattr(QMessageBox, "clickedButton",
                        lambda box: next(b for b in box.buttons() if b.text() == choice))
    usable = library_usable(Services())
    assert shown and shown[0].startswith(f"The library folder {blocker / 'library'} cannot be used")
    assert "not touched: choose it again in Settings once its drive is back" in shown[0]
    if choice == "Quit":
        assert not usable and load_settings().library_dir == str(blocker / "library")  # nothing changed
    else:
        assert usable and load_settings().library_dir is None and Library().root.is_dir()


def test_a_usable_library_asks_nothing(qtbot, isolated_home, monkeypatch):
    monkeypatch.setattr(QMessageBox, "exec", lambda box: pytest.fail("asked"))
    assert library_usable(Services())
