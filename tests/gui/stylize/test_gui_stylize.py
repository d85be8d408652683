"""The Stylize view: drops, the serial worker, cached re-blends, failures, saving, All styles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QThread, QUrl
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from conftest import write_photos
from mlabs_desktop.core.stylize import stylizer as stylize
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.gui.stylize.jobs import Run
from mlabs_desktop.gui.stylize.all_styles import compose_grid
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.stylize.view import StylizeView

WAIT_MS = 60_000


# A test that leaves a QThread running fails (autouse fixture shared with the other GUI tests).
from gui_helpers import MessageBoxes, drop_events, no_thread_leaks  # noqa: E402,F401


class Harness:
    def __init__(self, qtbot):
        self.services = Services()
        self.errors: list[tuple[str, str]] = []
        self.services.hub.error.connect(lambda title, message: self.errors.append((title, message)))
        self.view = StylizeView(self.services)
        qtbot.addWidget(self.view)
        self.view.resize(1280, 800)
        self.view.show()
        self.qtbot = qtbot

    def state(self, row: int = 0) -> tuple[str, str]:
        item = self.view.photos.items[int(self.view.queue_list.item(row).data(Qt.ItemDataRole.UserRole))]
        return item.state(self.view.photos.look)

    def wait_idle(self) -> None:
        self.qtbot.waitUntil(lambda: not self.view.is_busy(), timeout=WAIT_MS)

    def stylized(self, photo: Path) -> None:
        self.view.open_paths([photo])
        self.qtbot.waitUntil(lambda: self.state()[0] in ("done", "failed"), timeout=WAIT_MS)
        assert self.state()[0] == "done", self.state()
        self.qtbot.waitUntil(lambda: self.view.compare.styled_image() is not None)


@pytest.fixture
def harness(qtbot):
    made = Harness(qtbot)
    yield made
    assert made.view.cancel_and_wait(30_000)


@pytest.fixture
def run_calls(monkeypatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    original = stylize.Stylizer.run

    def counting(self, rgb):
        calls.append(rgb.shape[:2])
        return original(self, rgb)

    monkeypatch.setattr(stylize.Stylizer, "run", counting)
    return calls


@pytest.fixture
def photo(tmp_path) -> Path:
    return write_photos(tmp_path / "photos", count=2, size=(64, 48)) / "photo0.jpg"


def drag_events(paths: list[Path]):
    """(drag-enter, drop, mime): the events only point at the mime data, so the caller must keep it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return (*drop_events(mime), mime)


def test_view_builds_with_an_inviting_empty_state(harness):
    view = harness.view
    assert view.center.currentWidget() is view.empty
    assert not view.queue_panel.isVisible()
    assert view.picker.stack.currentWidget() is view.picker.note
    assert "Train a style first" in view.picker.note.text()
    assert view.open_action.shortcut().isEmpty() and "Ctrl+O" in view.open_action.toolTip()  # the window's key
    assert not view.save_action.isEnabled() and not view.is_busy()


def test_drop_of_files_and_a_folder_queues_every_image(harness, tmp_path):
    photos = write_photos(tmp_path / "a", count=2)
    folder = write_photos(tmp_path / "b" / "inner", count=3, seed=2).parent
    (folder / "notes.txt").write_text("not a photo")
    view = harness.view
    enter, drop, _mime = drag_events([photos / "photo0.jpg", photos / "photo1.png", folder])
    QApplication.sendEvent(view, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(view, drop)
    assert view.queue_list.count() == 5
    assert view.center.currentWidget() is view.compare and view.queue_panel.isVisible()
    harness.wait_idle()  # no style yet: the photos are only loaded, shown as originals
    assert view.compare.original_image() is not None and view.compare.styled_image() is None


def test_a_file_that_is_no_photo_is_refused_with_a_reason(harness, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    view = harness.view
    enter, dropped, _mime = drag_events([notes])
    QApplication.sendEvent(view, enter)
    assert enter.isAccepted() and view.overlay.isVisible()  # the overlay says so before the drop
    assert not view.overlay._usable
    QApplication.sendEvent(view, dropped)
    assert not view.overlay.isVisible() and view.queue_list.count() == 0
    assert harness.errors[-1][0] == "No photos to open" and "notes.txt" in harness.errors[-1][1]


def test_dropped_web_image_is_downloaded_in_the_worker(harness, photo, monkeypatch):
    from http_server import LocalHTTPServer

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # a proxy must not swallow requests to 127.0.0.1
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with LocalHTTPServer() as server:
        url = server.route("/pictures/cat.jpg", body=photo.read_bytes(), content_type="image/jpeg")
        mime = QMimeData()
        mime.setUrls([QUrl(url)])
        enter, dropped = drop_events(mime)
        QApplication.sendEvent(harness.view, enter)
        assert enter.isAccepted()
        QApplication.sendEvent(harness.view, dropped)
        harness.wait_idle()
    item = next(iter(harness.view.photos.items.values()))
    assert item.name == "cat.jpg" and item.image is not None and item.image.size == (64, 48)
    assert harness.errors == []


def test_worker_stylizes_and_comparison_shows_it(tiny_model, harness, photo, run_calls):
    harness.stylized(photo)
    shown = harness.view.compare.styled_image()
    assert (shown.width(), shown.height()) == (64, 48)
    assert harness.view.compare.original_image().size() == shown.size()
    assert len(run_calls) == 1 and harness.errors == []


def test_strength_and_colours_reblend_without_running_the_network(tiny_model, harness, photo, run_calls):
    harness.stylized(photo)
    view = harness.view

    def pixels() -> bytes:
        image = view.compare.styled_image()
        return bytes(image.constBits())

    full = pixels()
    view.strength.setValue(30)
    weaker = pixels()
    assert weaker != full
    view.preserve.setChecked(True)
    assert pixels() != weaker
    view.strength.setValue(0)  # 0 %: the original itself
    original = view.compare.original_image()
    assert pixels() == bytes(original.constBits())
    assert len(run_calls) == 1


def test_big_photos_reblend_in_a_thread(tiny_model, harness, photo, run_calls, monkeypatch):
    from mlabs_desktop.gui.stylize import blend_renderer, display as stylize_display

    monkeypatch.setattr(stylize_display, "DEBOUNCE_PIXELS", 0)  # treat the small test photo as a big one
    harness.stylized(photo)
    view = harness.view
    first = bytes(view.compare.styled_image().constBits())
    for value in (80, 60, 40):  # a slider drag: only the last value is blended
        view.strength.setValue(value)
    assert bytes(view.compare.styled_image().constBits()) == first  # nothing blocked the GUI thread
    harness.qtbot.waitUntil(lambda: bytes(view.compare.styled_image().constBits()) != first, timeout=5000)
    harness.wait_idle()
    view.strength.setValue(40)  # no change: nothing to do
    small = blend_renderer.render_blend(view.photos.items[1].image.rgb, view.photos.result(view.photos.items[1], Run("tiny")),
                                        None, view.style_panel.options())
    assert bytes(view.compare.styled_image().constBits()) == bytes(small.constBits())
    assert len(run_calls) == 1


def test_changing_the_style_reruns_and_switching_back_is_cached(tiny_model, harness, photo, run_calls):
    twin = Library().root / "tiny-twin"
    shutil.copytree(tiny_model.folder, twin)
    copy = Library().get(str(twin))
    copy.manifest.name = "twin"
    copy.save_manifest()
    harness.stylized(photo)
    harness.services.hub.library_changed.emit()
    assert set(harness.view.picker.names()) == {"tiny", "twin"}
    assert harness.view.select_style("twin")
    harness.qtbot.waitUntil(lambda: harness.state()[0] == "done", timeout=WAIT_MS)
    assert len(run_calls) == 2
    harness.wait_idle()
    harness.view.select_style("tiny")
    assert harness.state()[0] == "done" and not harness.view.is_busy()  # nothing queued: it was cached
    assert len(run_calls) == 2


def test_corrupt_image_fails_with_a_readable_reason(tiny_model, harness, tmp_path, photo):
    bad = tmp_path / "holiday.jpg"
    bad.write_text("this is text, not a JPEG")
    harness.view.open_paths([bad, photo])
    harness.qtbot.waitUntil(lambda: harness.state(0)[0] == "failed", timeout=WAIT_MS)
    state, reason = harness.state(0)
    assert "not an image" in reason and "Traceback" not in reason
    assert "not an image" in harness.view.queue_list.item(0).toolTip()
    harness.qtbot.waitUntil(lambda: bool(harness.errors), timeout=5000)
    harness.wait_idle()
    harness.qtbot.wait(400)
    assert len(harness.errors) == 1 and "holiday.jpg" in harness.errors[0][0]
    assert harness.state(1)[0] == "done"  # the good photo after it still went through


def test_out_of_memory_fails_the_item_not_the_app(tiny_model, harness, photo, monkeypatch):
    def no_memory(self, rgb):
        raise MemoryError()

    monkeypatch.setattr(stylize.Stylizer, "run", no_memory)
    harness.view.open_paths([photo])
    harness.qtbot.waitUntil(lambda: harness.state()[0] == "failed", timeout=WAIT_MS)
    assert "Not enough memory" in harness.state()[1]
    harness.qtbot.waitUntil(lambda: bool(harness.errors), timeout=5000)
    assert harness.errors[0][0] == "Could not stylize photo0.jpg"
    assert harness.view.compare.original_image() is not None  # the photo itself still shows


def test_save_and_save_all_write_full_size_files(tiny_model, harness, photo, tmp_path, monkeypatch):
    harness.stylized(photo)
    target = tmp_path / "out" / "mine.jpg"
    target.parent.mkdir()
    suggested = []

    def fake_save(parent, caption, name, filters):
        suggested.append(Path(name).name)
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    harness.view.files.save_current()
    harness.wait_idle()
    assert suggested == ["photo0-tiny.jpg"]
    assert Image.open(target).size == (64, 48)
    folder = tmp_path / "all"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    harness.view.files.save_all()
    harness.wait_idle()
    assert [p.name for p in folder.iterdir()] == ["photo0-tiny.jpg"]
    harness.view.files.copy_current()
    assert QApplication.clipboard().image().size() == harness.view.compare.styled_image().size()


def test_saving_never_replaces_an_original(tiny_model, harness, photo, tmp_path, monkeypatch):
    harness.stylized(photo)
    before = photo.read_bytes()
    # Save…, pointed at the original photo itself (the file dialog would have asked "Replace?").
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(photo), "")))
    harness.view.files.save_current()
    harness.wait_idle()
    assert photo.read_bytes() == before
    assert harness.errors[-1][0] == "That is an original photo"
    # Save all into the photo's own folder, where an original is named like a result: it is kept too.
    twin = photo.with_name("photo0-tiny.jpg")
    twin.write_bytes(before)
    harness.view.open_paths([twin])
    harness.qtbot.waitUntil(lambda: all(Run("tiny") in it.done for it in harness.view.photos.items.values()),
                            timeout=WAIT_MS)
    boxes = MessageBoxes()
    boxes.install(monkeypatch)
    boxes.answer = QMessageBox.StandardButton.Yes  # "replace existing files?": yes, but never an original
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(photo.parent)))
    harness.view.files.save_all()
    harness.wait_idle()
    assert photo.read_bytes() == before and twin.read_bytes() == before
    written = sorted(p.name for p in photo.parent.iterdir())
    assert "photo0-tiny (2).jpg" in written and "photo0-tiny-tiny.jpg" in written


def test_all_styles_composes_a_grid(tiny_model, harness, photo, tmp_path):
    harness.stylized(photo)
    harness.view.show_all_styles()
    dialog = harness.view.all_styles_dialog
    harness.qtbot.waitUntil(lambda: not dialog.is_running(), timeout=WAIT_MS)
    grid = dialog.grid()
    assert grid.dtype == np.uint8 and grid.shape[1] > 2 * 64  # original + one style, side by side
    saved = dialog.export_to(tmp_path / "grid.png")
    assert Image.open(saved).size == (grid.shape[1], grid.shape[0])
    dialog.close()


def test_compose_grid_places_tiles_and_placeholders():
    tiles = [np.full((10, 20, 3), v, np.uint8) for v in (50, 100, 150)] + [None]
    grid = compose_grid(tiles, None, gap=2)
    assert grid.shape == (2 + 2 * 12, 2 + 2 * 22, 3)
    assert grid[2, 2, 0] == 50 and grid[2, 24, 0] == 100 and grid[14, 2, 0] == 150
    labelled = compose_grid(tiles, ["a", "b", "c", "d"], gap=2)
    assert labelled.shape[0] > grid.shape[0]


def test_zoom_is_shared_in_side_by_side(tiny_model, harness, photo):
    harness.stylized(photo)
    compare = harness.view.compare
    harness.view.side_button.click()
    assert compare.mode() == "side-by-side"
    compare.zoom_by(3, QPointF(100, 100))
    compare.pan_by(-10, -5)
    left, right = compare.viewports()
    a = compare.image_rect(0).translated(-left.topLeft())
    b = compare.image_rect(1).translated(-right.topLeft())
    assert a == b and "%" in harness.view.zoom_label.text()


def test_tensorflow_is_not_imported_when_the_view_is_built(tiny_model, isolated_home):
    code = textwrap.dedent("""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from mlabs_desktop.gui.kit.services import Services
        from mlabs_desktop.gui.stylize.view import StylizeView
        view = StylizeView(Services())
        view.show()
        app.processEvents()
        assert view.picker.names() == ["tiny"], view.picker.names()
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MLABS_DESKTOP_HOME=str(isolated_home))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_paste_adds_copied_files_and_web_addresses(qtbot, tmp_path, monkeypatch):
    from PIL import Image
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QGuiApplication

    from mlabs_desktop.gui.kit.services import Services
    from mlabs_desktop.gui.stylize.view import StylizeView

    view = StylizeView(Services())
    qtbot.addWidget(view)
    added: list = []
    monkeypatch.setattr(view.photos, "add", lambda sources: (added.extend(sources), (len(sources), None))[1])
    photo = tmp_path / "copied.png"
    Image.new("RGB", (8, 8)).save(photo)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    QGuiApplication.clipboard().setMimeData(mime)
    view.files.paste_from_clipboard()
    QGuiApplication.clipboard().setText("https://example.org/painting.jpg")
    view.files.paste_from_clipboard()
    assert added == [photo, "https://example.org/painting.jpg"]
    view.cancel_and_wait(5000)
