"""The style gallery: how it looks once the styles outgrow the panel."""

from __future__ import annotations

from PySide6.QtGui import QColor

from mlabs_desktop.gui.stylize.style_picker import StylePicker


def test_the_scroll_bar_is_painted_when_styles_outgrow_the_panel(tiny_model, qtbot):
    """The list's style sheet reaches its scroll bar; once, its groove was left unpainted (black)."""
    picker = StylePicker()
    qtbot.addWidget(picker)
    picker.set_models([tiny_model] * 12)
    picker.resize(260, 300)
    picker.show()
    qtbot.waitExposed(picker)
    bar = picker.list.verticalScrollBar()
    qtbot.waitUntil(bar.isVisible)  # the list lays its tiles out after the resize
    corner = bar.mapTo(picker, bar.rect().topLeft())
    image = picker.grab().toImage().copy(corner.x(), corner.y(), bar.width(), bar.height())  # as a screenshot shows it
    window = picker.palette().window().color()
    dark = [(x, y) for x in range(image.width()) for y in range(image.height())
            if QColor(image.pixel(x, y)).lightness() < window.lightness() // 3]
    assert len(dark) < image.width() * image.height() // 20  # arrows and edges only, not the groove
