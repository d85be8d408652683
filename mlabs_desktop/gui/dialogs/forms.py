"""Small building blocks of the settings dialogs: coloured note lines and form rows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

GOOD, BAD, NEUTRAL = "#15803d", "#b91c1c", "palette(placeholder-text)"


def note_label(text: str = "", color: str = NEUTRAL) -> QLabel:
    """A wrapped, selectable explanation line under a field."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(f"color: {color};")
    return label


def set_note(label: QLabel, text: str, color: str = NEUTRAL) -> None:
    """Change a note's text and colour; an empty note is hidden."""
    label.setText(text)
    label.setStyleSheet(f"color: {color};")
    label.setVisible(bool(text))


def form_layout(box: QGroupBox) -> QFormLayout:
    """The form inside a group box: label column, fields that grow."""
    form = QFormLayout(box)
    form.setContentsMargins(12, 12, 12, 12)
    form.setHorizontalSpacing(12)
    form.setVerticalSpacing(8)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def form_field(main: QWidget, *notes: QLabel) -> QWidget:
    """A form field with its explanation lines right under it."""
    field = QWidget()
    column = QVBoxLayout(field)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(4)
    column.addWidget(main)
    for note in notes:
        column.addWidget(note)
    return field


def form_row(*widgets: QWidget) -> QWidget:
    """Widgets side by side, the first taking the spare width."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if i == 0 else 0)
    return row
