"""The Stylize view's queue list: one row per photo, with its thumbnail, name and state."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QListWidget, QListWidgetItem, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QWidget)

from mlabs_desktop.gui.kit.canvas import ALERT, paint_alert_disc
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.stylize.queue import QueueItem, short_reason

ID_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1
DETAIL_ROLE = Qt.ItemDataRole.UserRole + 2
THUMB_ROLE = Qt.ItemDataRole.UserRole + 3

STATE_COLORS = {"queued": QColor(154, 160, 166), "running": QColor(26, 115, 232),
                "done": QColor(30, 142, 62), "failed": ALERT}



# Its rows are painted by a delegate, so the frame itself shows where the keyboard is.
FOCUS_RING_STYLE = ("QListWidget { border: 2px solid palette(midlight); border-radius: 4px; } "
                    "QListWidget:focus { border-color: palette(highlight); }")


class _ItemDelegate(QStyledItemDelegate):
    """Thumbnail, name and a coloured state line, so a long queue reads at a glance."""

    ROW = 64
    THUMB = 48

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(200, self.ROW)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text, opt.icon = "", opt.icon.__class__()
        widget = option.widget  # type: ignore[attr-defined]
        style = widget.style() if widget else None
        if style:  # the platform's own selection and hover background
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, p, widget)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(8, 8, -8, -8)  # type: ignore[attr-defined]
        thumb_rect = QRect(rect.left(), rect.top(), self.THUMB, self.THUMB)
        path = QPainterPath()
        path.addRoundedRect(QRectF(thumb_rect), 6, 6)
        p.setClipPath(path)
        thumb = index.data(THUMB_ROLE)
        if isinstance(thumb, QPixmap) and not thumb.isNull():
            # Cover-crop: fill the square, cut what sticks out.
            scaled = thumb.scaled(thumb_rect.size() * p.device().devicePixelRatioF(),
                                  Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                                  Qt.TransformationMode.SmoothTransformation)
            scaled.setDevicePixelRatio(p.device().devicePixelRatioF())
            logical = scaled.deviceIndependentSize()
            p.drawPixmap(int(thumb_rect.center().x() - logical.width() / 2 + 1),
                         int(thumb_rect.center().y() - logical.height() / 2 + 1), scaled)
        else:
            p.fillRect(thumb_rect, QColor(128, 128, 128, 60))
            if index.data(STATE_ROLE) == "failed":  # a red "!" instead of a picture that never came
                paint_alert_disc(p, QRectF(thumb_rect).center(), 11)
        p.setClipping(False)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        palette = option.palette  # type: ignore[attr-defined]
        text_color = palette.highlightedText().color() if selected else palette.text().color()
        text_left = thumb_rect.right() + 12
        name_rect = QRect(text_left, rect.top() + 2, rect.right() - text_left, rect.height() // 2)
        font = QFont(option.font)  # type: ignore[attr-defined]
        font.setWeight(QFont.Weight.DemiBold)
        p.setFont(font)
        p.setPen(text_color)
        name = p.fontMetrics().elidedText(str(index.data(Qt.ItemDataRole.DisplayRole)),
                                          Qt.TextElideMode.ElideMiddle, name_rect.width())
        p.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        state = str(index.data(STATE_ROLE) or "queued")
        detail = str(index.data(DETAIL_ROLE) or "")
        color = STATE_COLORS.get(state, STATE_COLORS["queued"])
        state_rect = QRect(text_left + 14, name_rect.bottom() + 2, name_rect.width() - 14, rect.height() // 2 - 4)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(color)
        p.drawEllipse(QRectF(text_left, state_rect.center().y() - 3.5, 7, 7))
        small = QFont(option.font)  # type: ignore[attr-defined]
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.9))
        p.setFont(small)
        quiet = palette.placeholderText().color()
        p.setPen(text_color if selected else color.darker(115) if state != "queued" else quiet)
        shown = f"Failed: {short_reason(detail)}" if state == "failed" else detail  # all of it: tooltip
        p.drawText(state_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(shown, Qt.TextElideMode.ElideRight, state_rect.width()))
        p.restore()


class PhotoQueueList(QListWidget):
    """The queue: one row per photo; the item id is stored in ``ID_ROLE``.

    Rows are found by id through a dict: every worker event refreshes a row, and a scan of the
    list made adding a 1,000-photo folder take over a second of the GUI thread (quadratic).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows: dict[int, QListWidgetItem] = {}
        self.setItemDelegate(_ItemDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setStyleSheet(FOCUS_RING_STYLE)

    def row_of(self, item_id: int) -> QListWidgetItem | None:
        return self._rows.get(item_id)

    def add(self, item: QueueItem, look: Look) -> QListWidgetItem:
        entry = QListWidgetItem(item.name)
        entry.setData(ID_ROLE, item.id)
        self.addItem(entry)
        self._rows[item.id] = entry
        self.refresh(item, look)
        return entry

    def refresh(self, item: QueueItem, look: Look) -> None:
        entry = self.row_of(item.id)
        if entry is None:
            return
        state, detail = item.state(look)
        entry.setData(STATE_ROLE, state)
        entry.setData(DETAIL_ROLE, detail)
        entry.setData(THUMB_ROLE, item.thumb)
        where = str(item.source)
        entry.setToolTip(f"{where}\n\n{detail}" if state == "failed" else f"{where}\n{detail}")

    def ids(self) -> list[int]:
        return [int(self.item(row).data(ID_ROLE)) for row in range(self.count())]

    def current_id(self) -> int | None:
        entry = self.currentItem()
        return None if entry is None else int(entry.data(ID_ROLE))

    def selected_ids(self) -> list[int]:
        return [int(e.data(ID_ROLE)) for e in self.selectedItems()]

    def select_id(self, item_id: int) -> None:
        entry = self.row_of(item_id)
        if entry is not None:  # and only it: a new photo is shown alone
            self.setCurrentItem(entry, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.scrollToItem(entry)

    def remove_id(self, item_id: int) -> None:
        entry = self._rows.pop(item_id, None)
        if entry is not None:
            self.takeItem(self.row(entry))
