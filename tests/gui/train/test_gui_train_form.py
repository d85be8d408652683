"""The Train form as a newcomer meets it: presets that say how long they train, values that stay, a calm wheel."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from mlabs_desktop.core.library.store import Library

from gui_helpers import no_thread_leaks  # noqa: F401 - autouse fixture
from test_gui_train import TINY, fill, run_to_end, services, view  # noqa: F401 - the Train view's fixtures


def test_a_preset_trains_its_steps_and_says_so_when_a_run_is_shorter(view, qtbot, style_image, photos_dir):
    fill(view, qtbot, style_image, photos_dir)
    form = view.form
    form.apply_preset("quick-look")
    assert form.raw("steps") == 3000 and not form.fields["epochs"].isEnabled()  # steps, not epochs, decide
    assert not form.error_labels["epochs"].isVisible() and not form.error_labels["max-steps"].isVisible()
    form.set_params({"steps": 0, "epochs": 1})  # the old way: one pass over 6 photos at batch 4
    assert form.fields["epochs"].isEnabled()
    assert form.error_labels["epochs"].text().startswith("Only 1 step: 1 epoch of 6 photos")
    form.set_params({"steps": 3000, "max-steps": 300})
    assert form.error_labels["max-steps"].text() == ("This run stops after 300 of the model's 3,000 steps; "
                                                     "Resume in the Library continues it.")
    assert view.start_button.isEnabled()  # notes, not errors


def test_max_steps_stays_what_the_user_typed(view, qtbot, style_image, photos_dir):
    fill(view, qtbot, style_image, photos_dir, **(TINY | {"epochs": 2, "max-steps": 2, "checkpoint-iterations": 100}))
    view.form.name_edit.setText("two steps")
    run_to_end(view, qtbot)
    model = Library().get("two steps")
    assert model.manifest.state == "paused" and model.manifest.statistics["steps"] == 2  # 2 of 6: not "stopped"
    assert view.live.stats["Remaining"].text() == "—"  # nothing remains of a run that ended
    assert view.form.mode == "resume" and view.form.raw("max-steps") == 2
    view.form.clear_mode()  # "New model instead"
    assert view.form.raw("max-steps") == 2


def wheel(widget, notches: int = -1) -> None:
    """One turn of the mouse wheel over the middle of ``widget`` (negative: towards the user, scrolling down)."""
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_form_and_changes_only_a_field_with_the_focus(view, qtbot):
    view.resize(960, 560)
    view.show()
    qtbot.waitExposed(view)
    field, bar = view.form.fields["image-size"], view.scroll.verticalScrollBar()
    view.scroll.ensureWidgetVisible(field)
    bar.setValue(bar.minimum() + (bar.maximum() - bar.minimum()) // 2)
    before, position = field.value(), bar.value()
    wheel(field)
    assert field.value() == before and bar.value() > position  # the form scrolled instead
    view.activateWindow()
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    wheel(field, notches=1)
    assert field.value() != before
    assert field.focusPolicy() == Qt.FocusPolicy.StrongFocus  # and a wheel turn does not take the focus
