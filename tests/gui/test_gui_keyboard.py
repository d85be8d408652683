"""The window with a keyboard only: where Tab goes, that focus shows, and that it fits the smallest window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

from gui_helpers import no_thread_leaks  # noqa: F401 - autouse fixture
from test_gui_shell import fake_devices, temp_qsettings, window  # noqa: F401 - the shell's fixtures


def tab_stops(window, qtbot, count: int) -> list[QWidget]:
    """The widgets Tab visits from where the focus is now, as a user pressing it would."""
    stops = []
    for _ in range(count):
        qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Tab)
        stops.append(QApplication.focusWidget())
    return stops


def test_stylize_tab_starts_at_the_toolbar_and_reaches_the_blend_controls_last(window, qtbot, tiny_model):
    window.activateWindow()
    window.show_view("stylize")
    view = window.stylize_view
    view.refresh_styles()
    assert view.strength.isEnabled()  # a style exists (without one, strength and colours are greyed out)
    qtbot.waitUntil(lambda: view.isAncestorOf(QApplication.focusWidget()), timeout=2000)
    first = QApplication.focusWidget()
    assert first.defaultAction() is view.open_action  # the first thing a newcomer does: Open…
    panel = view.style_panel
    stops = [first, *tab_stops(window, qtbot, 8)]
    assert stops.index(view.strength) > stops.index(view.split_button)
    blend = [view.strength, view.preserve, panel.brush.slider, panel.mix.combo]
    assert [stops.index(w) for w in blend] == sorted(stops.index(w) for w in blend)
    # Open…, Split, the empty state's Open…, the styles, Strength, colours, Brush size, Mix with, round
    assert stops[-1] is first


def test_library_tab_starts_at_the_search_box_and_skips_scroll_areas(window, qtbot, tiny_model):
    window.library_view.refresh()
    window.activateWindow()
    window.show_view("library")
    window.library_view.select_model("tiny")
    window.library_view.search.setFocus()
    stops = tab_stops(window, qtbot, 4)
    names = [getattr(w, "text", lambda: type(w).__name__)() for w in stops]
    assert names[0] == "Import…" and names[2] == "Stylize with this", names
    assert not any(type(w).__name__ in ("DetailsPane", "QScrollArea", "QChartView") for w in stops)


def test_the_comparison_shows_when_the_keyboard_is_on_it(window, qtbot):
    from PySide6.QtGui import QImage

    window.activateWindow()
    window.show_view("stylize")
    compare = window.stylize_view.compare
    window.stylize_view.center.setCurrentWidget(compare)  # as when a photo is queued
    compare.set_images(QImage(64, 48, QImage.Format.Format_RGB32), None)
    before = compare.grab().toImage()
    compare.setFocus()
    qtbot.waitUntil(compare.hasFocus, timeout=2000)
    after = compare.grab().toImage()
    ring = compare.palette().color(compare.palette().ColorRole.Highlight)
    assert after.pixelColor(1, compare.height() // 2) == ring != before.pixelColor(1, compare.height() // 2)


def test_every_view_fits_the_smallest_window(window, qtbot):
    hint = window.minimumSizeHint()
    assert hint.width() <= 960 and hint.height() <= 620, hint
    window.resize(960, 620)
    window.show_view("train")
    train = window.train_view
    qtbot.waitUntil(lambda: train.scroll.viewport().width() < 500, timeout=2000)
    # The form fits its scroll area's width: nothing cut off at the right, no sideways scrolling.
    assert train.form.minimumSizeHint().width() <= train.scroll.viewport().width()
    assert train.live.width() >= train.live.minimumSizeHint().width()
