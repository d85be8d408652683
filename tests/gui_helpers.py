"""Fixtures and helpers shared by the GUI shell and library tests (imported, not a conftest).

``from gui_helpers import message_boxes, no_thread_leaks`` in a test module makes
both autouse fixtures apply there.
"""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QMimeData, QPoint, QPointF, Qt, QThread, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from mlabs_desktop.core.library.store import read_manifest


@pytest.fixture(autouse=True)
def no_thread_leaks(monkeypatch: pytest.MonkeyPatch):
    """Fail a test that leaves a QThread running (it would abort the process later)."""
    started: list[weakref.ref] = []
    original = QThread.start

    def tracking_start(self: QThread, *args) -> None:
        started.append(weakref.ref(self))
        original(self, *args)

    monkeypatch.setattr(QThread, "start", tracking_start)
    yield
    leaked = []
    for ref in started:
        thread = ref()
        try:
            if thread is not None and thread.isRunning():
                leaked.append(thread.objectName() or type(thread).__name__)
                thread.wait(30_000)   # don't let the process abort; the test still fails
        except RuntimeError:          # the C++ object is gone, so it had finished
            continue
    if leaked:
        pytest.fail(f"test left QThread(s) running: {', '.join(leaked)}")


class MessageBoxes:
    """Stands in for QMessageBox's static functions: records them, answers questions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.answer = QMessageBox.StandardButton.No

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for kind in ("critical", "warning", "information", "about"):
            monkeypatch.setattr(QMessageBox, kind, staticmethod(
                lambda parent, title, text, *a, _k=kind, **kw: self._record(_k, title, text)))
        monkeypatch.setattr(QMessageBox, "question", staticmethod(
            lambda parent, title, text, *a, **kw: self._record("question", title, text) or self.answer))

    def _record(self, kind: str, title: str, text: str) -> None:
        self.calls.append((kind, title, text))

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture(autouse=True)
def message_boxes(monkeypatch: pytest.MonkeyPatch) -> MessageBoxes:
    """No test may block on a modal message box; tests set ``answer`` and read ``calls``."""
    boxes = MessageBoxes()
    boxes.install(monkeypatch)
    return boxes


def dispose(widget) -> None:  # noqa: ANN001 - any QWidget
    """Close and really delete a window now: its views' pending timers die with it."""
    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def copy_model(model, destination: Path, name: str) -> Path:  # noqa: ANN001 - core Model
    """A copy of a model folder under another name (a model made elsewhere)."""
    shutil.copytree(model.folder, destination)
    manifest = read_manifest(destination)
    manifest.name = name
    (destination / "manifest.yaml").write_text(manifest.to_yaml(), encoding="utf-8")
    return destination


def drop_events(mime: QMimeData) -> tuple[QDragEnterEvent, QDropEvent]:
    """The drag-enter and drop events of a drop of ``mime`` (Qt takes an integer point for one, a float one for the other)."""
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    return QDragEnterEvent(QPoint(50, 50), *args), QDropEvent(QPointF(50, 50), *args)


def drop(widget, paths: list[Path]) -> bool:  # noqa: ANN001 - any QWidget
    """Synthetic drag-enter and drop of local files; True when the drop was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter, event = drop_events(mime)
    QApplication.sendEvent(widget, enter)  # through any event filter, as a real drop arrives
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, event)
    return event.isAccepted()
