"""The main window's sidebar: a styled list with line-art icons drawn in code, one row per view."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QListWidget


def sidebar_icon(kind: str, color: QColor) -> QIcon:
    """Simple line-art icons drawn here, so the sidebar needs no image files."""
    pixmap = QPixmap(48, 48)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(color, 3.2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
    if kind == "train":      # a falling loss curve over an axis
        p.drawLine(QPointF(8, 40), QPointF(42, 40))
        path = QPainterPath(QPointF(9, 9))
        path.cubicTo(QPointF(14, 30), QPointF(22, 32), QPointF(41, 33))
        p.drawPath(path)
    elif kind == "library":  # a grid of cards
        for x in (7, 26):
            for y in (7, 26):
                p.drawRoundedRect(QRectF(x, y, 15, 15), 3, 3)
    else:                    # a brush stroke with a handle
        p.drawLine(QPointF(40, 8), QPointF(22, 26))
        path = QPainterPath(QPointF(22, 24))
        path.cubicTo(QPointF(10, 22), QPointF(12, 38), QPointF(6, 42))
        path.cubicTo(QPointF(20, 44), QPointF(28, 36), QPointF(24, 28))
        p.drawPath(path)
    p.end()
    return QIcon(pixmap)


def make_sidebar() -> QListWidget:
    """The empty sidebar list, styled like a navigation pane; the window adds one row per view."""
    sidebar = QListWidget()
    sidebar.setObjectName("sidebar")
    sidebar.setFixedWidth(168)
    sidebar.setIconSize(QSize(22, 22))
    sidebar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    sidebar.setStyleSheet(
        "#sidebar { border: none; border-right: 1px solid palette(mid); background: palette(window);"
        " padding-top: 12px; font-size: 11pt; }"
        "#sidebar::item { padding: 10px 12px; margin: 2px 8px; border-radius: 6px; }"
        "#sidebar::item:selected { background: palette(highlight); color: palette(highlighted-text); }")
    return sidebar
