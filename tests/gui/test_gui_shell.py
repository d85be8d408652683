"""The app shell: main window, menus, shortcuts, saved state, drops, close, run_app (dialogs: tests/gui/dialogs)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QSettings, Qt, QUrl

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QMessageBox, QTextBrowser

from mlabs_desktop.core.hardware import devices
from mlabs_desktop.core import paths
from mlabs_desktop.core.hardware.devices import DeviceInfo
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.gui.kit.services import Services

from gui_helpers import copy_model, dispose, drop, drop_events, message_boxes, no_thread_leaks  # noqa: F401 - fixtures

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"


# ------------------------------------------------------------------ fixtures

@pytest.fixture(autouse=True)
def temp_qsettings(tmp_path: Path, qapp):
    """Window geometry and last view go to a per-test INI file, never the user's settings."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    qapp.setOrganizationName("MachineLabs-tests")
    qapp.setApplicationName("shell-tests")


@pytest.fixture(autouse=True)
def fake_devices(monkeypatch: pytest.MonkeyPatch) -> list[DeviceInfo]:
    """Device detection without importing TensorFlow (every view looks it up at call time)."""
    found = [DeviceInfo("cpu", "CPU")]
    monkeypatch.setattr(devices, "detect_devices", lambda: list(found))
    return found


@pytest.fixture
def window(qtbot):
    from mlabs_desktop.gui.main_window import MainWindow

    win = MainWindow(Services())
    win.show()
    qtbot.waitExposed(win)
    yield win
    dispose(win)


# ------------------------------------------------------------ window basics

def test_window_shows_all_three_views(window, qtbot):
    assert [window.sidebar.item(i).text() for i in range(3)] == ["Train", "Library", "Stylize"]
    for name in ("train", "library", "stylize"):
        window.show_view(name)
        assert window.current_view() == name
        assert window.stack.currentWidget() is window.views[name]
        assert window.views[name].isVisible()
    with pytest.raises(ValueError):
        window.show_view("nonsense")


def test_menus(window):
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions()}
    assert list(menus) == ["File", "View", "Help"]
    texts = {name: [a.text().replace("&", "") for a in menu.actions() if a.text()]
             for name, menu in menus.items()}
    assert texts["File"] == ["Open photos or clips…", "Import model…", "Import from web address…", "Export model…",
                             "Settings…", "Quit"]
    assert texts["View"] == ["Train", "Library", "Stylize"]
    assert texts["Help"] == ["Getting started", "Keyboard shortcuts", "GPU status…", "Open log folder",
                             "About MachineLabs Desktop"]
    quit_action = next(a for a in menus["File"].actions() if "Quit" in a.text())
    assert quit_action.shortcut().toString() == "Ctrl+Q"


def menu_action(window, menu: str, text: str):
    """The menu bar's action ``text`` in ``menu``, as a user would choose it."""
    bar = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions()}
    return next(a for a in bar[menu].actions() if a.text().replace("&", "") == text)


def test_open_photos_works_from_every_view(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    photo = shutil.copy(SAMPLES / "chelsea.jpg", tmp_path / "cat.jpg")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(photo)], "")))
    opened = []
    window.views["stylize"].open_paths = lambda sources: opened.append(sources)
    window.show_view("library")
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: opened == [[Path(photo)]], timeout=2000)
    assert window.current_view() == "stylize"


def test_help_has_a_guide_and_the_real_shortcuts(window):
    from mlabs_desktop.gui.dialogs.help import guide_dialog, guide_markdown, shortcut_rows, shortcuts_dialog

    rows = dict(shortcut_rows(window))
    assert rows["Ctrl+O"] == "Open photos or clips" and rows["Ctrl+S"] == "Save" and rows["F1"] == "Getting started"
    assert rows["Ctrl+1"] == "Train" and rows["0"].startswith("Fit")
    assert "quick-look" in guide_markdown() and "VGG19" in guide_markdown()
    for make in (guide_dialog, shortcuts_dialog):
        dialog = make(window)
        assert dialog.findChild(QTextBrowser).toPlainText().strip()
        dialog.deleteLater()


def test_keyboard_shortcuts_switch_views(window, qtbot):
    window.activateWindow()
    for key, name in ((Qt.Key.Key_1, "train"), (Qt.Key.Key_3, "stylize"), (Qt.Key.Key_2, "library")):
        qtbot.keyClick(window, key, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda n=name: window.current_view() == n, timeout=2000)


def test_last_view_and_geometry_are_restored(qtbot):
    from mlabs_desktop.gui.main_window import MainWindow

    first = MainWindow(Services())
    first.show()
    first.resize(1111, 733)
    first.show_view("stylize")
    dispose(first)
    assert first._settings().value("main_window/view") == "stylize"
    # MLABS_DESKTOP_HOME keeps window state under it too.
    assert (paths.config_dir() / "window.ini").is_file()

    second = MainWindow(Services())
    assert second.current_view() == "stylize"
    # The offscreen screen is 800 px wide, so restoreGeometry clamps the width; the height fits.
    assert second.height() == 733
    dispose(second)


def test_window_does_not_import_tensorflow(tmp_path: Path):
    """A fresh interpreter: building and showing the window must not load TensorFlow or Keras."""
    script = textwrap.dedent("""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        app.setOrganizationName("MachineLabs-tests")
        from mlabs_desktop.gui.app import process_events_for
        from mlabs_desktop.gui.main_window import MainWindow
        from mlabs_desktop.gui.kit.services import Services
        window = MainWindow(Services(), persist_state=False)
        window.show()
        process_events_for(300)
        print("TF", "tensorflow" in sys.modules, "keras" in sys.modules)
        window.close()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MLABS_DESKTOP_HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert "TF False False" in result.stdout, result.stdout + result.stderr


# ------------------------------------------------------------- hub wiring

def test_device_detection_labels_the_status_bar(window, qtbot, fake_devices):
    fake_devices.insert(0, DeviceInfo("gpu", "Fake RTX", 0, (8, 6)))
    with qtbot.waitSignal(window.services.hub.device_detected, timeout=5000) as blocker:
        window.start_device_detection()
    assert blocker.args == ["GPU: Fake RTX"]
    assert window.device_label.text() == "GPU: Fake RTX"
    qtbot.waitUntil(lambda: not len(window.workers))


def test_device_detection_cpu_only(window, qtbot):
    with qtbot.waitSignal(window.services.hub.device_detected, timeout=5000) as blocker:
        window.start_device_detection()
    assert blocker.args == ["CPU"]
    assert window.device_label.text() == "CPU"
    qtbot.waitUntil(lambda: not len(window.workers))


def test_hub_status_and_errors(window, message_boxes):
    hub = window.services.hub
    hub.status.emit("Training step 5")
    assert window.status_text.text() == "Training step 5"
    hub.status.emit("")
    assert window.status_text.text() == "Ready"
    hub.error.emit("Stylizing failed", "out of memory")
    assert message_boxes.calls == [("critical", "Stylizing failed", "out of memory")]


def test_stylize_with_and_train_from_switch_views(window):
    calls = []
    stylize, train = window.views["stylize"], window.views["train"]
    stylize.select_style = lambda name: calls.append(("select_style", name))
    train.resume_model = lambda name: calls.append(("resume_model", name))
    train.fine_tune_from = lambda name: calls.append(("fine_tune_from", name))
    hub = window.services.hub
    hub.stylize_with.emit("tiny")
    assert window.current_view() == "stylize"
    hub.train_from.emit("tiny", "resume")
    assert window.current_view() == "train"
    window.show_view("library")
    hub.train_from.emit("tiny", "fine-tune")
    assert window.current_view() == "train"
    assert calls == [("select_style", "tiny"), ("resume_model", "tiny"), ("fine_tune_from", "tiny")]


# ----------------------------------------------------- drops, import, export

def test_drop_model_folder_imports_it(window, tiny_model, tmp_path: Path, message_boxes):
    outside = copy_model(tiny_model, tmp_path / "from-a-friend", "friend's style")
    assert drop(window, [outside])
    imported = Library().find("friend's style")
    assert imported is not None and imported.folder.parent == Library().root
    assert imported.load_weights().keys() == tiny_model.load_weights().keys()
    assert window.current_view() == "library"
    assert window.library_view.selected_name() == "friend's style"
    assert message_boxes.calls == []
    assert not [p for p in Library().root.iterdir() if p.name.startswith(".staging")]


def test_dropped_pytorch_files_are_imported_or_explained(window, tmp_path: Path, message_boxes):
    fixture = Path(__file__).resolve().parents[1] / "core" / "formats" / "fixtures" / "small-zip.pth"
    assert drop(window, [fixture])  # a .pth, but not a fast-neural-style network
    assert message_boxes.kinds() == ["warning"] and "TransformerNet" in message_boxes.calls[0][2]
    torch = pytest.importorskip("torch", reason="torch is not installed: the import itself needs a real file")
    from torch_transformer import trained_like

    torch.save(trained_like().state_dict(), tmp_path / "udnie.pth")
    assert drop(window, [tmp_path / "udnie.pth"])
    assert Library().get("udnie").manifest.architecture == "pytorch"
    assert window.library_view.selected_name() == "udnie"


def test_drop_of_a_name_already_present_is_refused(window, tiny_model, tmp_path: Path, message_boxes):
    outside = shutil.copytree(tiny_model.folder, tmp_path / "copy")
    assert drop(window, [outside])
    assert [m.name for m in Library().models()] == ["tiny"]
    assert message_boxes.kinds() == ["warning"]
    assert "already in the library" in message_boxes.calls[0][2]


def test_drop_images_opens_them_in_stylize(window, tmp_path: Path):
    opened = []
    window.views["stylize"].open_paths = lambda paths_: opened.append(paths_)
    photo = shutil.copy(SAMPLES / "chelsea.jpg", tmp_path / "cat.jpg")
    assert drop(window, [Path(photo)])
    assert window.current_view() == "stylize"
    assert opened == [[Path(photo)]]


def test_drop_of_a_web_address_on_another_view_queues_it_in_stylize(window):
    opened = []
    window.views["stylize"].open_paths = lambda sources: opened.append(sources)
    window.show_view("train")
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.org/cat.jpg")])
    enter, dropped = drop_events(mime)
    QApplication.sendEvent(window, enter)
    QApplication.sendEvent(window, dropped)
    assert window.current_view() == "stylize"
    assert opened == [["https://example.org/cat.jpg"]]


def test_export_without_a_selected_model_points_to_the_library(window, message_boxes):
    window.show_view("train")
    menu_action(window, "File", "Export model…").trigger()
    assert window.current_view() == "library"
    assert message_boxes.calls[-1][1:] == ("Export model", "Select a model in the Library first.")


def test_drop_of_other_files_says_what_the_window_takes(window, tmp_path: Path, message_boxes):
    from mlabs_desktop.gui.kit.common import DROP_ADVICE

    text = tmp_path / "notes.txt"
    text.write_text("hi")
    window.show_view("library")
    assert drop(window, [text])
    assert message_boxes.calls == [("critical", "Cannot open notes.txt", DROP_ADVICE)]
    assert window.current_view() == "library"


def test_export_then_import_round_trip(tiny_model, tmp_path: Path):
    from mlabs_desktop.gui.library.transfer import EXPORT_FORMATS, import_model

    exported = EXPORT_FORMATS["Model folder"](tiny_model, tmp_path)
    assert exported == tmp_path / tiny_model.folder.name and (exported / "manifest.yaml").is_file()
    with pytest.raises(UserError, match="already exists"):
        EXPORT_FORMATS["Model folder"](tiny_model, tmp_path)
    Library().delete("tiny")
    model = import_model(exported, Library())
    assert model.name == "tiny" and Library().find("tiny") is not None
    bundle = EXPORT_FORMATS["Bundle to share (.mlstyle)"](model, tmp_path)
    assert bundle.suffix == ".mlstyle"
    assert import_model(bundle, Library()).name == "tiny (2)"
    with pytest.raises(UserError, match="not a model"):
        import_model(tmp_path / "nothing-here", Library())


def test_export_dialog_copies_selected_model(window, tiny_model, tmp_path: Path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path)))
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: ("Model folder", True)))
    window.library_view.refresh()
    window.library_view.select_model("tiny")
    menu_action(window, "File", "Export model…").trigger()
    assert (tmp_path / tiny_model.folder.name / "weights.npz").is_file()
    assert "Exported 'tiny'" in window.status_text.text()


def test_export_dialog_asks_before_replacing(window, tiny_model, tmp_path: Path, monkeypatch, message_boxes):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path)))
    monkeypatch.setattr(QInputDialog, "getItem",
                        staticmethod(lambda *a, **k: ("Bundle to share (.mlstyle)", True)))
    target = tmp_path / "tiny.mlstyle"
    target.write_bytes(b"someone's bundle")
    window.library_view.refresh()
    window.library_view.select_model("tiny")
    message_boxes.answer = QMessageBox.StandardButton.No
    menu_action(window, "File", "Export model…").trigger()
    assert message_boxes.calls[-1][:2] == ("question", "Replace files?") and str(target) in message_boxes.calls[-1][2]
    assert target.read_bytes() == b"someone's bundle"
    message_boxes.answer = QMessageBox.StandardButton.Yes
    menu_action(window, "File", "Export model…").trigger()
    assert target.read_bytes()[:2] == b"PK" and "Exported 'tiny'" in window.status_text.text()


# ------------------------------------------------------------ run_app, logs

def test_screenshot_writes_png(tmp_path: Path):
    from mlabs_desktop.gui.app import SCREENSHOT_SIZE, run_app

    target = tmp_path / "library.png"
    assert run_app(view="library", screenshot=str(target)) == 0
    image = QImage(str(target))
    assert target.stat().st_size > 1000 and (image.width(), image.height()) == SCREENSHOT_SIZE


def test_screenshot_to_unwritable_path_exits_2(tmp_path: Path, capsys):
    from mlabs_desktop.gui.app import run_app

    assert run_app(view="library", screenshot=str(tmp_path / "missing" / "x.png")) == 2
    assert "cannot write the screenshot" in capsys.readouterr().err


def test_self_test_passes(capsys, isolated_home: Path):
    from mlabs_desktop.gui.app import run_app

    assert run_app(self_test=True) == 0
    assert "self-test passed" in capsys.readouterr().out
    assert os.environ[paths.HOME_ENV] == str(isolated_home)   # restored afterwards
    assert not list(Library().models())                        # the user's library is untouched


def test_logging_to_a_rotating_file(monkeypatch):
    from logging.handlers import RotatingFileHandler

    from mlabs_desktop.gui.kit.logs import setup_logging

    path = setup_logging()
    setup_logging()
    logger = logging.getLogger("mlabs_desktop")
    files = [h for h in logger.handlers if isinstance(h, RotatingFileHandler)]
    assert len(files) == 1 and files[0].maxBytes == 1_000_000 and files[0].backupCount == 3
    logging.getLogger("mlabs_desktop.gui").info("hello log")
    files[0].flush()
    assert path.parent == paths.log_dir() and "hello log" in path.read_text()
    monkeypatch.setattr(sys, "stderr", None)     # a windowed build: no console handler at all
    setup_logging()
    assert all(type(h) is not logging.StreamHandler for h in logger.handlers)


def test_a_view_that_cannot_be_built_leaves_a_placeholder_and_a_working_window(qtbot, monkeypatch):
    import sys

    from mlabs_desktop.gui.main_window import MainWindow

    monkeypatch.setitem(sys.modules, "mlabs_desktop.gui.train.view", None)  # its import fails
    win = MainWindow(Services(), persist_state=False)
    qtbot.addWidget(win)
    assert win.train_view is None and win.stylize_view is not None
    assert win.views["train"].objectName() == "placeholder-train"
    win.services.hub.train_from.emit("anything", "resume")  # reaches no view, raises nothing
    assert win.current_view() == "train"
    win.close()
