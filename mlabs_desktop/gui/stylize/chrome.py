"""Smaller parts of the Stylize view: toolbar helpers, the empty state, drops, failure messages (saving is `export`).

Kept apart from `view` so that module reads as the flow of a photo
through the queue; nothing here touches the network worker.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (QAction, QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QFont,
                           QKeySequence, QPainter, QPainterPath, QPaintEvent, QPen)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from mlabs_desktop.core.images.decode import is_image_path
from mlabs_desktop.core.video.clips import is_clip_path
from mlabs_desktop.gui.kit.common import MODEL_BUNDLE_SUFFIX, dropped_paths, dropped_urls
from mlabs_desktop.gui.stylize.queue import short_reason

ACCENT = QColor(26, 115, 232)
REFUSED = QColor(110, 110, 110)


def view_action(owner: QWidget, text: str, tip: str, slot: Callable[[], object],
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None) -> QAction:
    """An action whose shortcut works anywhere inside ``owner`` (and nowhere else)."""
    action = QAction(text, owner)
    action.setIconText(text)  # keeps the "…" that Qt strips from button texts
    keys = QKeySequence(shortcut) if shortcut is not None else None
    action.setToolTip(tip + (f" ({keys.toString(QKeySequence.SequenceFormat.NativeText)})" if keys else ""))
    if keys:
        action.setShortcut(keys)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    action.triggered.connect(slot)
    owner.addAction(action)
    return action


def text_button(action: QAction | None = None, text: str = "", tip: str = "") -> QToolButton:
    """A toolbar button of one height, showing words (the actions have no icons)."""
    button = QToolButton(text=text, toolTip=tip, minimumHeight=30)
    if action is not None:
        button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


def panel_title(title: QLabel, extra: QWidget | None, body: QWidget) -> QWidget:
    """A side panel: a title row (with an optional small button) over its content."""
    panel = QWidget()
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(8)
    row = QHBoxLayout()
    row.setContentsMargins(2, 0, 0, 0)
    row.addWidget(title)
    row.addStretch(1)
    if extra is not None:
        row.addWidget(extra)
    layout.addLayout(row)
    layout.addWidget(body, 1)
    return panel


class _PhotoGlyph(QWidget):
    """A drawn picture frame with hills, a sun and a drop arrow: the empty state's icon."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFixedSize(120, 104)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        muted = self.palette().placeholderText().color()
        frame = QRectF(10, 26, 100, 72)
        p.setPen(QPen(muted, 3))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(frame, 10, 10)
        hills = QPainterPath(QPointF(frame.left() + 4, frame.bottom() - 6))
        hills.lineTo(frame.left() + 36, frame.top() + 34)
        hills.lineTo(frame.left() + 58, frame.top() + 52)
        hills.lineTo(frame.left() + 72, frame.top() + 40)
        hills.lineTo(frame.right() - 4, frame.bottom() - 6)
        p.drawPath(hills)
        p.drawEllipse(QPointF(frame.right() - 24, frame.top() + 20), 7, 7)
        p.setPen(QPen(ACCENT, 4, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        p.drawLine(QPointF(60, 2), QPointF(60, 34))  # the drop arrow, coming down into the frame
        p.drawPolyline([QPointF(49, 23), QPointF(60, 34), QPointF(71, 23)])


class EmptyState(QWidget):
    """What the centre shows before any photo: an invitation to drop, and Open… for keyboards."""

    def __init__(self, open_action: QAction, parent: QWidget | None = None):
        super().__init__(parent)
        title = QLabel("Drop photos or clips here")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        hint = QLabel("Photos, whole folders, or images dragged from a web browser are restyled\n"
                      "at full size with the style on the right; a clip opens in its own window.")
        hint.setStyleSheet("color: palette(placeholder-text);")
        button = QPushButton("Open…")
        button.setToolTip(open_action.toolTip())
        button.setMinimumSize(120, 34)
        button.setDefault(True)
        button.clicked.connect(open_action.trigger)
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addStretch(1)
        for widget in (_PhotoGlyph(), title, hint, button):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
            if isinstance(widget, QLabel):
                widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.insertSpacing(layout.count() - 1, 4)
        layout.addStretch(1)

    def paintEvent(self, event: QPaintEvent) -> None:
        # The dashed frame says "this area takes drops" without a word.
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = self.palette().placeholderText().color()
        color.setAlpha(140)
        pen = QPen(color, 2, Qt.PenStyle.DashLine)
        pen.setDashPattern([6, 4])
        p.setPen(pen)
        p.drawRoundedRect(QRectF(self.rect()).adjusted(2, 2, -2, -2), 14, 14)


class DropOverlay(QWidget):
    """A translucent highlight over the whole view while photos are dragged over it."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._usable = True
        self.hide()

    def show_over(self, widget: QWidget, usable: bool = True) -> None:
        """Highlight ``widget``; when the dragged files are not photos, say so before they are dropped."""
        self._usable = usable
        self.setGeometry(widget.rect())
        self.raise_()
        self.show()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = ACCENT if self._usable else REFUSED
        fill = QColor(colour)
        fill.setAlpha(40)
        rect = QRectF(self.rect()).adjusted(6, 6, -6, -6)
        p.setBrush(fill)
        p.setPen(QPen(colour, 3, Qt.PenStyle.DashLine))
        p.drawRoundedRect(rect, 14, 14)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setWeight(QFont.Weight.DemiBold)
        p.setFont(font)
        text = "Drop to add photos" if self._usable else "Not a photo or a folder of photos"
        pill = QRectF(0, 0, p.fontMetrics().horizontalAdvance(text) + 48, p.fontMetrics().height() + 24)
        pill.moveCenter(rect.center())
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)  # solid, so the words read over any photo
        p.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
        p.setPen(QColor(255, 255, 255))
        p.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)


class PhotoDrops(QObject):
    """Drag-and-drop of photos onto a widget, as an event filter that emits ``dropped``.

    Takes image files, folders and http(s) URLs; normalises them to paths and
    URLs, which the view hands to the same ``open_paths`` the Open… action uses.
    """

    dropped = Signal(list)

    def __init__(self, target: QWidget, overlay: DropOverlay):
        super().__init__(target)
        self._overlay = overlay
        target.setAcceptDrops(True)
        target.installEventFilter(self)

    @staticmethod
    def _kind(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> str | None:
        """What is dragged: "photos", "other" (files this view cannot use; the drop says why), or None."""
        mime = event.mimeData()
        paths = dropped_paths(mime)
        if dropped_urls(mime) or any(p.is_dir() or is_image_path(p) or is_clip_path(p) for p in paths):
            return "photos"
        if any(p.suffix.lower() == MODEL_BUNDLE_SUFFIX for p in paths):
            return None  # models, for the window to import into the Library
        return "other" if paths else None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if kind == QEvent.Type.DragLeave:
            self._overlay.hide()
        elif kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            what = self._kind(event)  # type: ignore[arg-type]
            if what is None:
                event.ignore()
                return False  # the window may want it (a model to import)
            event.acceptProposedAction()  # type: ignore[attr-defined]
            if kind == QEvent.Type.DragEnter:
                self._overlay.show_over(self._overlay.parentWidget(), usable=what == "photos")
            elif kind == QEvent.Type.Drop:
                self._overlay.hide()
                mime = event.mimeData()  # type: ignore[attr-defined]
                self.dropped.emit([*dropped_paths(mime), *dropped_urls(mime)])  # other files: open_paths says why
            return True
        return False


class FailureReport(QObject):
    """Turns failures into messages for the window, one per burst.

    Fifty broken files dropped at once make one message listing them, not fifty
    message boxes; each failure is reported once (a retry that fails again is new).
    """

    def __init__(self, show: Callable[[str, str], None], parent: QObject | None = None):
        super().__init__(parent)
        self._show = show
        self._pending: list[tuple[str, str, bool]] = []  # name, message, failed while opening
        self._timer = QTimer(self, singleShot=True, interval=250)
        self._timer.timeout.connect(self.flush)

    @Slot(str, str, bool)
    def add(self, name: str, message: str, opening: bool) -> None:
        self._pending.append((name, message, opening))
        self._timer.start()

    @Slot()
    def flush(self) -> None:
        errors, self._pending = self._pending, []
        if not errors:
            return
        opening = all(e[2] for e in errors)
        verb = "open" if opening else "stylize"
        advice = ("Check that the file is a photo (JPEG, PNG, WebP, BMP or TIFF) that opens in other programs, then "
                  "choose" if opening else "Choose") + " Retry in the list's context menu, or Delete to remove it."
        if len(errors) == 1:
            name, message, _ = errors[0]
            self._show(f"Could not {verb} {name}", f"{message[:1].upper()}{message[1:]}\n\n{advice}")
        else:
            lines = "\n".join(f"• {name}: {short_reason(message)}" for name, message, _ in errors[:8])
            more = f"\n…and {len(errors) - 8} more" if len(errors) > 8 else ""
            self._show(f"Could not {verb} {len(errors)} photos", f"{lines}{more}\n\n{advice}")
