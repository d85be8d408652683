"""The before/after widget: divider, zoom around the cursor, pan, side-by-side sync, painting."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QThread
from PySide6.QtGui import QColor, QImage, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from mlabs_desktop.gui.stylize.before_after import BeforeAfterView
from mlabs_desktop.gui.kit.canvas import Pyramid


# A test that leaves a QThread running fails (autouse fixture shared with the other GUI tests).
from gui_helpers import no_thread_leaks  # noqa: E402,F401


def solid(w: int, h: int, color: str) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(color))
    return image


@pytest.fixture
def view(qtbot) -> BeforeAfterView:
    widget = BeforeAfterView()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.set_images(solid(200, 150, "red"), solid(200, 150, "blue"))
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def mouse(widget, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.LeftButton) -> None:
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button if kind != QEvent.Type.MouseMove
                        else Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget, start: QPointF, end: QPointF, button=Qt.MouseButton.LeftButton) -> None:
    mouse(widget, QEvent.Type.MouseButtonPress, start, button)
    for t in (0.5, 1.0):
        mouse(widget, QEvent.Type.MouseMove, start + (end - start) * t, button)
    mouse(widget, QEvent.Type.MouseButtonRelease, end, button)


def wheel(widget, pos: QPointF, notches: float) -> None:
    event = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(), QPoint(0, int(120 * notches)),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_divider_follows_the_mouse_and_clips_the_images(view):
    assert view.divider_fraction == 0.5
    moved = []
    view.dividerMoved.connect(moved.append)
    drag(view, QPointF(200, 150), QPointF(300, 150))
    assert view.divider_fraction == pytest.approx(0.75, abs=0.01)
    assert moved and moved[-1] == view.divider_fraction
    shot = view.grab().toImage()
    assert QColor(shot.pixel(100, 150)) == QColor("red")    # original left of the divider
    assert QColor(shot.pixel(340, 150)) == QColor("blue")   # styled right of it
    view.divider_fraction = 2.0
    assert view.divider_fraction == 1.0


def test_drag_away_from_the_divider_pans_instead(view):
    wheel(view, QPointF(200, 150), 4)  # zoom in so there is something to pan
    before = view.center
    drag(view, QPointF(60, 100), QPointF(20, 80))
    assert view.divider_fraction == 0.5
    assert view.center.x() > before.x() and view.center.y() > before.y()  # moved the picture left/up
    drag(view, QPointF(200, 40), QPointF(240, 40), Qt.MouseButton.MiddleButton)  # middle button: always pan
    assert view.divider_fraction == 0.5


def test_wheel_zooms_around_the_cursor(view):
    fit = view.zoom
    assert view.is_fit()
    anchor = QPointF(120, 90)
    under = view.widget_to_image(anchor)
    wheel(view, anchor, 1)
    assert view.zoom == pytest.approx(fit * 1.25)
    assert not view.is_fit()
    after = view.widget_to_image(anchor)
    assert (after.x(), after.y()) == pytest.approx((under.x(), under.y()), abs=1e-6)
    wheel(view, anchor, -3)
    assert view.zoom < fit * 1.25
    view.zoom_actual()
    assert view.zoom == 1.0 and view.image_rect().width() == pytest.approx(200)
    view.zoom_fit()
    assert view.is_fit() and view.zoom == pytest.approx(fit)


def test_side_by_side_shares_one_transform(view):
    view.setMode("side-by-side")
    left, right = view.viewports()
    assert left.right() < right.left()
    wheel(view, QPointF(80, 120), 3)
    drag(view, QPointF(100, 100), QPointF(70, 60))
    a = view.image_rect(0).translated(-left.topLeft())
    b = view.image_rect(1).translated(-right.topLeft())
    assert (a.x(), a.y(), a.width(), a.height()) == pytest.approx((b.x(), b.y(), b.width(), b.height()))
    shot = view.grab().toImage()
    assert QColor(shot.pixel(int(left.center().x()), 150)) == QColor("red")
    assert QColor(shot.pixel(int(right.center().x()), 150)) == QColor("blue")
    with pytest.raises(ValueError):
        view.setMode("sideways")


def test_hidpi_100_percent_is_one_device_pixel(view, monkeypatch):
    monkeypatch.setattr(view, "_dpr", lambda: 2.0)
    view.zoom_actual()
    assert view.image_rect().width() == pytest.approx(100)  # 200 image px on 100 logical (200 device) px


def test_new_styled_image_keeps_zoom_and_pan(view):
    wheel(view, QPointF(50, 50), 2)
    zoom, center = view.zoom, view.center
    view.set_styled(solid(200, 150, "green"))
    assert view.zoom == zoom and view.center == center
    view.set_images(solid(100, 100, "red"), None)  # another photo: back to Fit
    assert view.is_fit()


def test_keyboard_moves_divider_and_zooms(view):
    view.setFocus()
    from PySide6.QtTest import QTest

    QTest.keyClick(view, Qt.Key.Key_Right)
    assert view.divider_fraction == pytest.approx(0.55)
    QTest.keyClick(view, Qt.Key.Key_1)
    assert view.zoom == 1.0


def test_big_photo_paints_only_what_is_visible_and_fast(qtbot):
    widget = BeforeAfterView()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    big = solid(4000, 3000, "red")
    widget.set_images(big, solid(4000, 3000, "blue"))
    widget.show()
    image, factor = Pyramid(big).level_for(widget.zoom)  # ~0.19: draws from a 1000x750 copy
    assert factor == 4 and image.width() == 1000
    started = time.perf_counter()
    for i in range(10):
        widget.pan_by(5, 0) if i % 2 else widget.zoom_by(1.1, QPointF(400, 300))
        widget.repaint()
    assert time.perf_counter() - started < 3.0
    widget.zoom_actual(QPointF(400, 300))
    shot = widget.grab().toImage()
    assert QColor(shot.pixel(100, 300)) == QColor("red") and QColor(shot.pixel(700, 300)) == QColor("blue")


def test_message_without_a_picture(qtbot):
    widget = BeforeAfterView()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.set_overlay("Could not open x.jpg\nIt is not an image.", error=True)
    shot = widget.grab().toImage()  # paints the message, no crash without images
    assert QColor(shot.pixel(200, 300 // 2 - 60)).red() > 150  # the red "!" disc
