"""The style picker: the library's styles as thumbnails; a note when there are none.

The library folder is the truth, so the view hands the picker a fresh model list
whenever it may have changed; rebuilding is skipped when nothing did, so the
selection and scroll position survive a refresh.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QLabel, QListView, QListWidget,
                               QListWidgetItem, QStackedWidget, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QVBoxLayout, QWidget)

from mlabs_desktop.core.library.store import PREVIEW, STYLE_THUMB, Model
from mlabs_desktop.gui.kit.common import pixmap_from_file

ICON = 84
CELL = QSize(ICON + 20, ICON + 36)
ACCENT = QColor(26, 115, 232)
EMPTY_NOTE = "Train a style first (Train tab)"


def _square_icon(path: Path, name: str, side: int, dpr: float) -> QIcon:
    """A rounded, centre-cropped square of the style image (or a lettered tile when missing)."""
    px = int(side * dpr)
    canvas = QPixmap(px, px)
    canvas.fill(Qt.GlobalColor.transparent)
    p = QPainter(canvas)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    clip = QPainterPath()
    clip.addRoundedRect(0, 0, px, px, 8 * dpr, 8 * dpr)
    p.setClipPath(clip)
    source = pixmap_from_file(path, max_side=px * 2) if path.is_file() else None
    if source is not None and not source.isNull():
        scaled = source.scaled(px, px, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                               Qt.TransformationMode.SmoothTransformation)
        p.drawPixmap((px - scaled.width()) // 2, (px - scaled.height()) // 2, scaled)
    else:
        hue = sum(map(ord, name)) * 37 % 360  # a stable colour per name
        p.fillRect(0, 0, px, px, QColor.fromHsv(hue, 90, 200))
        font = QFont()
        font.setPixelSize(int(px * 0.45))
        font.setWeight(QFont.Weight.Bold)
        p.setFont(font)
        p.setPen(QColor(255, 255, 255))
        p.drawText(canvas.rect(), Qt.AlignmentFlag.AlignCenter, (name[:1] or "?").upper())
    p.end()
    canvas.setDevicePixelRatio(dpr)
    return QIcon(canvas)


class _TileDelegate(QStyledItemDelegate):
    """A thumbnail with a ring when chosen and the name below: a gallery, not a table."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CELL

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        rect: QRect = option.rect  # type: ignore[attr-defined]
        state = option.state  # type: ignore[attr-defined]
        selected = bool(state & QStyle.StateFlag.State_Selected)
        hovered = bool(state & QStyle.StateFlag.State_MouseOver)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        icon_rect = QRect(rect.center().x() - ICON // 2, rect.top() + 6, ICON, ICON)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(icon, QIcon):
            icon.paint(p, icon_rect)
        if selected or hovered:
            color = ACCENT if selected else option.palette.mid().color()  # type: ignore[attr-defined]
            p.setPen(QPen(color, 3 if selected else 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(icon_rect).adjusted(-3.5, -3.5, 3.5, 3.5), 10, 10)
        font = QFont(option.font)  # type: ignore[attr-defined]
        if selected:
            font.setWeight(QFont.Weight.DemiBold)
        p.setFont(font)
        p.setPen(ACCENT.darker(120) if selected else option.palette.text().color())  # type: ignore[attr-defined]
        text_top = icon_rect.bottom() + 6
        text_rect = QRect(rect.left() + 2, text_top, rect.width() - 4, rect.bottom() - text_top)
        name = p.fontMetrics().elidedText(str(index.data(Qt.ItemDataRole.DisplayRole)),
                                          Qt.TextElideMode.ElideRight, text_rect.width())
        p.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, name)
        p.restore()


class StylePicker(QWidget):
    """Thumbnails of every style in the library; ``styleChosen`` fires when the user picks one."""

    styleChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._signature: tuple = ()
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setGridSize(CELL)
        self.list.setItemDelegate(_TileDelegate(self.list))
        self.list.setMouseTracking(True)  # hover rings
        # Tiles sit on the panel; a ring shows when the keyboard is on the list.
        # A style sheet reaches the list's scroll bar too: without its own background its groove was not
        # painted (black in screenshots) once the styles outgrew the panel.
        self.list.setStyleSheet("QListWidget { background: transparent; border: 2px solid transparent; "
                                "border-radius: 4px; } QListWidget:focus { border-color: palette(highlight); } "
                                "QScrollBar:vertical { background: palette(window); }")
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWrapping(True)
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setFrameShape(QListWidget.Shape.NoFrame)
        self.list.setAccessibleName("Styles")
        self.list.currentItemChanged.connect(self._on_current)

        self.note = QLabel(EMPTY_NOTE)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.note.setMargin(16)
        self.note.setStyleSheet("color: palette(placeholder-text);")
        self.note.setToolTip("Styles appear here once a model has been trained or imported into the library.")

        self.stack = QStackedWidget()
        self.stack.addWidget(self.list)
        self.stack.addWidget(self.note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.stack.setCurrentWidget(self.note)

    def set_models(self, models: Sequence[Model]) -> bool:
        """Show these models; returns True when the list changed."""
        signature = tuple((m.name, m.manifest.updated, _mtime(m.file(STYLE_THUMB))) for m in models)
        if signature == self._signature:
            return False
        self._signature = signature
        keep = self.current()
        self.list.blockSignals(True)  # a rebuild is not the user choosing a style
        try:
            self.list.clear()
            dpr = self.devicePixelRatioF() or 1.0
            for model in models:
                thumb = model.file(STYLE_THUMB)
                if not thumb.is_file():
                    thumb = model.file(PREVIEW)
                entry = QListWidgetItem(_square_icon(thumb, model.name, ICON, dpr), model.name)
                entry.setData(Qt.ItemDataRole.UserRole, model.name)
                made = str(model.manifest.created)[:10]
                entry.setToolTip(f"<b>{html.escape(model.name)}</b><br>{model.manifest.architecture} network"
                                 f"{', trained ' + made if made else ''}<br>Click to restyle the photos")
                self.list.addItem(entry)
            if keep is not None:
                self.select(keep)
        finally:
            self.list.blockSignals(False)
        self.stack.setCurrentWidget(self.list if models else self.note)
        return True

    def names(self) -> list[str]:
        return [str(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    def current(self) -> str | None:
        entry = self.list.currentItem()
        return None if entry is None else str(entry.data(Qt.ItemDataRole.UserRole))

    def select(self, name: str) -> bool:
        """Select ``name`` without emitting ``styleChosen``; False when it is not listed."""
        for i in range(self.list.count()):
            entry = self.list.item(i)
            if entry.data(Qt.ItemDataRole.UserRole) == name:
                blocked = self.list.blockSignals(True)
                self.list.setCurrentItem(entry)
                self.list.scrollToItem(entry)
                self.list.blockSignals(blocked)
                return True
        return False

    def _on_current(self, entry: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if entry is not None:
            self.styleChosen.emit(str(entry.data(Qt.ItemDataRole.UserRole)))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0

