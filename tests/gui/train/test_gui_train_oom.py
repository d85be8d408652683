"""The Train view when a training step runs out of memory: it offers a smaller batch and goes on."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from gui_helpers import message_boxes, no_thread_leaks  # noqa: F401 - autouse fixtures
from mlabs_desktop.core.library.store import Library
from oom_injection import OomInjector
from test_gui_train import TINY, fill, run_to_end, services, view  # noqa: F401 - the Train view's fixtures
from test_out_of_memory import photos8  # noqa: F401 - 8 photos: 2 steps an epoch at batch 4

YES, NO = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


@pytest.mark.heavy
def test_out_of_memory_offers_a_smaller_batch_and_continues_from_the_checkpoint(
        view, qtbot, message_boxes, monkeypatch, style_image, photos8):
    oom = OomInjector(monkeypatch, max_images=2, after_steps=1)  # step 1 fits; then batch 4 never does
    errors: list[str] = []
    view.services.hub.error.connect(lambda title, message: errors.append(title))
    fill(view, qtbot, style_image, photos8, **(TINY | {"batch-size": 4, "epochs": 1}))
    view.form.name_edit.setText("gui oom")
    question = ("question", "Out of memory", "Out of memory at batch size 4. Continue from the last checkpoint "
                "(step 1) with batch size 2?")

    message_boxes.answer = NO
    run_to_end(view, qtbot)
    assert message_boxes.calls == [question] and errors == []
    model = Library().get("gui oom")
    assert model.has_checkpoint and model.manifest.state == "stopped" and model.manifest.statistics["steps"] == 1
    assert view.form.mode == "resume" and view.start_button.text() == "Resume training"
    assert "out of memory at batch size 4 (step 2)" in view.live.log.toPlainText()

    # Resumed later at its own batch size it runs out again; this time the answer is Yes.
    message_boxes.answer = YES
    view.start_button.click()
    qtbot.waitUntil(lambda: view._done is not None and view._worker is None, timeout=120_000)
    assert message_boxes.calls == [question, question] and errors == []
    assert oom.failed == [4, 4] and oom.ran == [4, 2, 2, 2]
    model = Library().get("gui oom")
    # At batch 2 an epoch is 4 steps: steps 2-4 follow the checkpoint at step 1.
    assert model.manifest.state == "finished" and model.manifest.statistics["steps"] == 4
    assert model.manifest.parameters["batch-size"] == 2
    assert view.live.chart.point_count() == 4 and view.live.stats["Step"].text() == "4 / 4"
