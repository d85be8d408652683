"""The Library's cards: what a card shows, how it is painted, and the thumbnail cache."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from mlabs_desktop.core.events import format_duration, format_steps
from mlabs_desktop.core.library.store import PREVIEW, STYLE_THUMB, Model
from mlabs_desktop.gui.kit.common import pixmap_from_file

CARD_ROLE = Qt.ItemDataRole.UserRole + 1
THUMB = 124          # side of each square thumbnail on a card
PAD = 10             # inner padding of a card
CARD_SIZE = QSize(2 * THUMB + 3 * PAD, THUMB + 2 * PAD + 62)


# ------------------------------------------------------------------ formats

def format_date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d %b %Y, %H:%M")
    except (TypeError, ValueError):
        return iso or "unknown date"


@dataclass(frozen=True)
class ModelCard:
    """What a card shows: read once from the manifest, compared to skip needless repaints."""

    name: str
    folder: Path
    created: str
    steps: int
    seconds: float
    device: str
    state: str

    @classmethod
    def from_model(cls, model: Model) -> "ModelCard":
        stats = model.manifest.statistics
        return cls(model.name, model.folder, model.manifest.created, int(stats.get("steps", 0) or 0),
                   float(stats.get("training_seconds", 0.0) or 0.0), str(stats.get("device", "") or ""),
                   model.manifest.state)

    @property
    def summary(self) -> str:
        parts = [format_steps(self.steps), format_duration(self.seconds)]
        if self.device:
            parts.append(self.device)
        return "  ·  ".join(parts)


class ThumbnailCache:
    """Square thumbnails keyed by (path, mtime, side): a rewritten preview is picked up at once."""

    def __init__(self, limit: int = 300):
        self._items: OrderedDict[tuple[str, int, int], QPixmap | None] = OrderedDict()
        self._limit = limit

    def get(self, path: Path, side: int, square: bool = True) -> QPixmap | None:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        key = (str(path), mtime, side * (1 if square else -1))
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        pixmap = pixmap_from_file(path, max_side=None)
        if pixmap is not None:
            if square:
                pixmap = _square(pixmap, side)
            else:
                pixmap = pixmap.scaledToHeight(side, Qt.TransformationMode.SmoothTransformation)
        self._items[key] = pixmap
        while len(self._items) > self._limit:
            self._items.popitem(last=False)
        return pixmap


def _square(pixmap: QPixmap, side: int) -> QPixmap:
    scaled = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                           Qt.TransformationMode.SmoothTransformation)
    return scaled.copy((scaled.width() - side) // 2, (scaled.height() - side) // 2, side, side)


# ------------------------------------------------------------------- cards

class CardModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cards: list[ModelCard] = []

    def set_cards(self, cards: list[ModelCard]) -> None:
        self.beginResetModel()
        self.cards = cards
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.cards)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        card = self.cards[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return card.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{card.name}\n{card.folder}"
        if role == CARD_ROLE:
            return card
        return None


class CardDelegate(QStyledItemDelegate):
    """Paints a card: style and preview side by side, then name, date and training summary."""

    def __init__(self, cache: ThumbnailCache, parent: QWidget | None = None):
        super().__init__(parent)
        self.cache = cache

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CARD_SIZE

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        card: ModelCard = index.data(CARD_ROLE)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(2, 2, -2, -2)
        highlight = palette.color(palette.ColorRole.Highlight)
        background = QApplication.palette().color(palette.ColorRole.Base)   # the grid's own Base is grey
        if selected:
            background = QColor(highlight.red(), highlight.green(), highlight.blue(), 40)
        painter.setPen(highlight if selected or hovered else palette.color(palette.ColorRole.Mid))
        painter.setBrush(background)
        painter.drawRoundedRect(rect, 8, 8)

        top = rect.top() + PAD
        for i, (file, caption) in enumerate(((STYLE_THUMB, "style"), (PREVIEW, "preview"))):
            target = QRect(rect.left() + PAD + i * (THUMB + PAD), top, THUMB, THUMB)
            self._thumbnail(painter, card.folder / file, target, caption, palette)

        text_left, width = rect.left() + PAD, rect.width() - 2 * PAD
        y = top + THUMB + 8
        name_font = QFont(option.font)
        name_font.setBold(True)
        name_font.setPointSizeF(option.font.pointSizeF() * 1.1)
        painter.setFont(name_font)
        painter.setPen(palette.color(palette.ColorRole.Text))
        metrics = painter.fontMetrics()
        painter.drawText(QRect(text_left, y, width, metrics.height()), Qt.AlignmentFlag.AlignLeft,
                         metrics.elidedText(card.name, Qt.TextElideMode.ElideRight, width))
        y += metrics.height() + 2
        painter.setFont(option.font)
        painter.setPen(palette.color(palette.ColorRole.PlaceholderText))
        metrics = painter.fontMetrics()
        for line in (format_date(card.created), card.summary):
            painter.drawText(QRect(text_left, y, width, metrics.height()), Qt.AlignmentFlag.AlignLeft,
                             metrics.elidedText(line, Qt.TextElideMode.ElideRight, width))
            y += metrics.height() + 1
        painter.restore()

    def _thumbnail(self, painter: QPainter, path: Path, target: QRect, caption: str, palette) -> None:
        clip = QPainterPath()
        clip.addRoundedRect(target, 5, 5)
        pixmap = self.cache.get(path, THUMB)
        painter.save()
        painter.setClipPath(clip)
        if pixmap is None:
            painter.fillRect(target, palette.color(palette.ColorRole.AlternateBase))
            painter.setPen(palette.color(palette.ColorRole.PlaceholderText))
            painter.drawText(target, Qt.AlignmentFlag.AlignCenter, f"no {caption}")
        else:
            painter.drawPixmap(target, pixmap)
        painter.restore()
