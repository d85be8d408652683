"""The photo queue of the Stylize view: what each photo holds, the list showing it, the queue running it.

An item keeps its original (float RGB + alpha) and the network's raw float result
per style, so strength and colour changes re-blend from memory instead of running
the network again. Its state (queued / running / done / failed) is always for the
style currently picked.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union
from urllib.parse import unquote, urlsplit

import numpy as np
from PySide6.QtCore import (QItemSelectionModel, QModelIndex, QObject, QPersistentModelIndex, QRect, QRectF, QSize, Qt,
                            Signal, Slot)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QListWidget, QListWidgetItem, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QWidget)

from ..core.images import LoadedImage
from .canvas import ALERT, paint_alert_disc
from .stylize_worker import (ImageLoaded, JobEnded, JobFailed, JobStarted, LoadFailed, StatusText, Styled, StyleJob,
                             StylizeQueue)

if TYPE_CHECKING:
    from ..core.library import Library

CACHE_BUDGET = 2 << 30  # bytes of raw results kept for styles not shown now

ID_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1
DETAIL_ROLE = Qt.ItemDataRole.UserRole + 2
THUMB_ROLE = Qt.ItemDataRole.UserRole + 3

STATE_COLORS = {"queued": QColor(154, 160, 166), "running": QColor(26, 115, 232),
                "done": QColor(30, 142, 62), "failed": ALERT}


@dataclass(eq=False)
class QueueItem:
    id: int
    source: Union[Path, str]                      # a file, or an http(s) URL
    image: LoadedImage | None = None              # the original, once loaded
    display: QImage | None = None                 # the same, ready to draw (made in the worker)
    thumb: QPixmap | None = None
    results: dict[str, np.ndarray] = field(default_factory=dict)  # style -> raw float result
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)          # style -> why it failed
    load_error: str | None = None                 # the photo itself is unusable
    running: str | None = None                    # the style the worker runs on it now ("": loading)

    @property
    def name(self) -> str:
        if isinstance(self.source, Path):
            return self.source.name
        tail = unquote(urlsplit(self.source).path.rstrip("/").rsplit("/", 1)[-1])
        return tail or "downloaded image"

    @property
    def stem(self) -> str:
        return Path(self.name).stem or "image"

    def state(self, style: str | None) -> tuple[str, str]:
        """(state, detail) for ``style``: the words the list and the tooltip show."""
        if self.load_error:
            return "failed", self.load_error
        if style is None:
            return "queued", "Waiting for a style"
        if style in self.errors:
            return "failed", self.errors[style]
        if style in self.results:
            return "done", f"Done in {self.seconds.get(style, 0):.1f} s"
        if self.running is not None and self.running == style:
            return "running", "Loading…" if self.image is None else "Stylizing…"
        return "queued", "Queued"


def short_reason(message: str) -> str:
    """The part of "Cannot open '/long/path/x.jpg': it is corrupt." after the path."""
    reason = message.split("': ", 1)[1] if "': " in message else message
    return reason.rstrip(".")


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

    def row_of(self, item_id: int) -> QListWidgetItem | None:
        return self._rows.get(item_id)

    def add(self, item: QueueItem, style: str | None) -> QListWidgetItem:
        entry = QListWidgetItem(item.name)
        entry.setData(ID_ROLE, item.id)
        self.addItem(entry)
        self._rows[item.id] = entry
        self.refresh(item, style)
        return entry

    def refresh(self, item: QueueItem, style: str | None) -> None:
        entry = self.row_of(item.id)
        if entry is None:
            return
        state, detail = item.state(style)
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


class PhotoQueue(QObject):
    """The photos and their cached results, run through the one serial worker for the current style.

    The view only shows what this holds: ``changed(id, new_pixels)`` says which
    photo to redraw, ``failed`` carries each failure once.
    """

    added = Signal()
    changed = Signal(int, bool)       # item id, whether its pictures changed (not only its state)
    failed = Signal(str, str, bool)   # photo name, message, failed while opening (not while styling)
    status = Signal(str)              # download progress and the like

    def __init__(self, library: Callable[[], Library], device: Callable[[], str], parent: QObject | None = None):
        super().__init__(parent)
        self.items: dict[int, QueueItem] = {}
        self.style: str | None = None
        self.worker = StylizeQueue(library, self)
        self.worker.event.connect(self._on_event)
        self._device = device
        self._ids = itertools.count(1)

    def add(self, sources: Sequence[Union[Path, str]]) -> tuple[int, int | None]:
        """Queue new sources; returns how many were new and the id to show (the first, new or known)."""
        known = {str(item.source): item.id for item in self.items.values()}
        first: int | None = None
        added = 0
        for source in sources:
            if str(source) in known:  # already queued: just show it again
                first = first or known[str(source)]
                continue
            item = QueueItem(next(self._ids), source)
            self.items[item.id] = item
            self._submit(item)
            first, added = first or item.id, added + 1
        if added:
            self.added.emit()
        return added, first

    def set_style(self, name: str | None, first: int | None = None) -> None:
        """Queue every photo again for ``name`` (``first`` ahead); cached results come back at once."""
        self.style = name
        self.worker.discard(lambda job: isinstance(job, StyleJob))  # they were for the old style
        for item in sorted(self.items.values(), key=lambda it: it.id != first):
            needs_style = name is not None and name not in item.results and name not in item.errors
            if not item.load_error and (item.image is None or needs_style) and item.running != (name or ""):
                self._submit(item)
        self._trim_cache()

    def promote(self, item_id: int) -> None:
        """What the user looks at goes first."""
        self.worker.promote(lambda job: isinstance(job, StyleJob) and job.item_id == item_id)

    def remove(self, ids: Sequence[int]) -> None:
        gone = set(ids)
        self.worker.discard(lambda job: getattr(job, "item_id", None) in gone)
        for item_id in gone:  # a job running on one finishes; its result finds no item and is dropped
            self.items.pop(item_id, None)

    def retry(self, ids: Sequence[int]) -> None:
        for item in (self.items[i] for i in ids if i in self.items):
            if item.load_error or self.style in item.errors:
                item.load_error = None
                item.errors.pop(self.style or "", None)
                self._submit(item)
                self.changed.emit(item.id, False)

    def _submit(self, item: QueueItem) -> None:
        self.worker.submit(StyleJob(item.id, item.source, self.style, self._device(), item.image))

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, StatusText):
            self.status.emit(event.text)
            return
        job = getattr(event, "job", None)
        item = self.items.get(getattr(event, "item_id", getattr(job, "item_id", -1)))
        if item is None or (job is not None and not isinstance(job, StyleJob)):
            return  # removed meanwhile, or an All styles job (its dialog listens itself)
        new_pixels = False
        if isinstance(event, JobStarted):
            item.running = event.job.model_name or ""  # "": only loading, no style yet
        elif isinstance(event, ImageLoaded):
            item.image, item.display, new_pixels = event.image, event.display, True
            item.thumb = QPixmap.fromImage(event.thumbnail)
        elif isinstance(event, LoadFailed):
            item.load_error = event.message
            self.failed.emit(item.name, event.message, True)
        elif isinstance(event, Styled):
            item.results[event.model_name], item.seconds[event.model_name] = event.raw, event.seconds
            new_pixels = event.model_name == self.style
            self._trim_cache()
        elif isinstance(event, JobFailed):
            if event.job.model_name:
                item.errors[event.job.model_name] = event.message
            else:
                item.load_error = event.message
            self.failed.emit(item.name, event.message, not event.job.model_name)
        elif isinstance(event, JobEnded):
            item.running = None
        self.changed.emit(item.id, new_pixels)

    def _trim_cache(self) -> None:
        # Results for styles not shown now are kept only to make switching back instant.
        spare = [(it, s) for it in self.items.values() for s in it.results if s != self.style]
        total = sum(it.results[s].nbytes for it, s in spare)
        for it, s in spare:
            if total <= CACHE_BUDGET:
                break
            total -= it.results.pop(s).nbytes
