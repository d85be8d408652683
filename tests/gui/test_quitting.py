"""Quitting while work runs (`gui.quitting`): every question first, then each thing stopped so it keeps its work.

A real fast copy stopped by quitting is in library/test_gui_fast_copy.py.
"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from gui_helpers import message_boxes, no_thread_leaks  # noqa: F401 - autouse fixtures
from test_gui_shell import fake_devices, temp_qsettings, window  # noqa: F401 - fixtures


@pytest.mark.parametrize("answer", ["no", "yes"])
def test_close_while_training_asks_then_stops(window, message_boxes, answer):
    train = window.views["train"]
    stops = []
    train.is_training = lambda: True
    train.request_stop_and_wait = lambda timeout_ms: stops.append(timeout_ms) or True
    message_boxes.answer = QMessageBox.StandardButton.Yes if answer == "yes" else QMessageBox.StandardButton.No
    window.close()
    assert message_boxes.calls[0][2] == "Training is running. Stop it (a checkpoint is saved) and quit?"
    if answer == "no":
        assert window.isVisible() and stops == []
        train.is_training = lambda: False
    else:
        assert not window.isVisible() and len(stops) == 1


def test_close_keeps_window_when_training_does_not_stop(window, message_boxes):
    train = window.views["train"]
    train.is_training = lambda: True
    train.request_stop_and_wait = lambda timeout_ms: False
    message_boxes.answer = QMessageBox.StandardButton.Yes
    window.close()
    assert window.isVisible()
    assert message_boxes.kinds() == ["question", "warning"]
    train.is_training = lambda: False


def test_close_while_stylizing_cancels(window, message_boxes):
    stylize = window.views["stylize"]
    cancelled = []
    stylize.is_busy = lambda: True
    stylize.cancel_and_wait = lambda timeout_ms: cancelled.append(timeout_ms) or True
    message_boxes.answer = QMessageBox.StandardButton.Yes
    window.close()
    assert not window.isVisible() and len(cancelled) == 1
    assert "Stylizing is running" in message_boxes.calls[0][2]


def test_quitting_asks_about_everything_before_stopping_anything(window, monkeypatch):
    train, library = window.train_view, window.library_view
    stopped, asked = [], []
    train.is_training = lambda: True
    train.request_stop_and_wait = lambda timeout_ms: stopped.append("training") or True
    library.running_fast_copies = lambda: ["a copy"]
    library.stop_fast_copies_and_wait = lambda timeout_ms: stopped.append("copy") or True
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    answers = iter([yes, no, yes, yes])
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda parent, title, text, *a, **k: asked.append(text) or next(answers)))
    window.close()  # yes to training, no to the copy: nothing is stopped
    assert window.isVisible() and stopped == [] and len(asked) == 2
    window.close()
    assert not window.isVisible() and stopped == ["training", "copy"]
    train.is_training, library.running_fast_copies = (lambda: False), (lambda: [])
