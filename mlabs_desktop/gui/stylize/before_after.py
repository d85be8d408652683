"""The before/after comparison: one widget painting the original and the styled image.

Split mode clips the two images at a vertical divider the mouse drags; side-by-side
mode shows them next to each other. Both modes share one view transform: a zoom
(device pixels per image pixel, so 100 % is one image pixel per screen pixel on
HiDPI screens too) and the image point at the centre of each viewport. Painting
draws only the visible part of the image, from a lazily built half-size pyramid
when zoomed out, so a 4000x3000 photo pans and zooms as smoothly as a small one.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QColor, QCursor, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QResizeEvent,
                           QWheelEvent)
from PySide6.QtWidgets import QSizePolicy, QWidget

from mlabs_desktop.gui.kit.canvas import (Pyramid, paint_checkerboard, paint_divider, paint_focus_ring, paint_label,
                                          paint_message, paint_note)

MODES = ("split", "side-by-side")
BACKGROUND = QColor(32, 33, 36)
HANDLE_RADIUS = 18


class BeforeAfterView(QWidget):
    """Original left, styled right, clipped at a draggable divider or side by side."""

    dividerMoved = Signal(float)
    zoomChanged = Signal(float)  # device pixels per image pixel; 1.0 is 100 %
    modeChanged = Signal(str)

    MIN_ZOOM = 0.01
    MAX_ZOOM = 32.0
    GRAB_PX = 10        # how near the divider a press grabs it
    GAP_PX = 12         # between the two sides in side-by-side mode
    FIT_MARGIN_PX = 16  # free space around a fitted image

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._original: Pyramid | None = None
        self._styled: Pyramid | None = None
        self._labels = ("Original", "Styled")
        self._overlay: str | None = None
        self._overlay_error = False
        self._mode = "split"
        self._divider = 0.5
        self._fit = True
        self._zoom = 1.0
        self._center = QPointF(0, 0)
        self._drag: str | None = None  # "divider" | "pan"
        self._last_pos = QPointF()
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # we fill every pixel
        self.setToolTip("Drag the divider to compare; drag elsewhere to pan; the wheel zooms; "
                        "double-click toggles Fit and 100 %")

    # ------------------------------------------------------------------ content
    def set_images(self, original: QImage | None, styled: QImage | None = None, *,
                   reset_view: bool | None = None) -> None:
        """Show a new pair; the view returns to Fit unless the size stays the same."""
        old = self._original.base.size() if self._original else None
        self._original = Pyramid(original) if original is not None and not original.isNull() else None
        self._styled = None
        if reset_view is None:
            reset_view = self._original is None or old != self._original.base.size()
        if reset_view and self._original is not None:
            self._fit = True
            self._center = QPointF(self._original.base.width() / 2, self._original.base.height() / 2)
        self.set_styled(styled)
        self.zoomChanged.emit(self.zoom)

    def set_styled(self, styled: QImage | None) -> None:
        """Replace only the styled side (a strength change), keeping zoom and pan."""
        if styled is not None and not styled.isNull() and self._original is not None:
            if styled.size() != self._original.base.size():  # e.g. a stale result; never stretch it
                styled = styled.scaled(self._original.base.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
            self._styled = Pyramid(styled)
        else:
            self._styled = None
        self.update()

    def clear(self) -> None:
        self.set_images(None)

    def original_image(self) -> QImage | None:
        return self._original.base if self._original else None

    def styled_image(self) -> QImage | None:
        return self._styled.base if self._styled else None

    def set_labels(self, before: str, after: str) -> None:
        self._labels = (before, after)
        self.update()

    def set_overlay(self, text: str | None, error: bool = False) -> None:
        """A message where the styled image will appear ("Stylizing…"), or in the middle
        when there is no picture at all (loading, a photo that cannot be opened)."""
        self._overlay, self._overlay_error = text, error
        self.update()

    # ------------------------------------------------------------------ mode and divider
    def mode(self) -> str:
        return self._mode

    def setMode(self, mode: str) -> None:  # noqa: N802 - Qt naming, as the brief asks
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode != self._mode:
            self._mode = mode
            self._clamp_center()
            self.update()
            self.modeChanged.emit(mode)
            self.zoomChanged.emit(self.zoom)  # Fit differs between the modes

    @property
    def divider_fraction(self) -> float:
        """Where the divider is, as a fraction of the widget's width."""
        return self._divider

    @divider_fraction.setter
    def divider_fraction(self, value: float) -> None:
        value = min(max(float(value), 0.0), 1.0)
        if value != self._divider:
            self._divider = value
            self.update()
            self.dividerMoved.emit(value)

    # ------------------------------------------------------------------ transform
    def _dpr(self) -> float:
        return self.devicePixelRatioF() or 1.0

    def viewports(self) -> list[QRectF]:
        """One rect in split mode; left and right halves in side-by-side mode."""
        r = QRectF(self.rect())
        if self._mode == "split":
            return [r]
        half = max(1.0, (r.width() - self.GAP_PX) / 2)
        return [QRectF(0, 0, half, r.height()), QRectF(r.width() - half, 0, half, r.height())]

    def _fit_zoom(self) -> float:
        if self._original is None:
            return 1.0
        vp = self.viewports()[0]
        w, h = self._original.base.width(), self._original.base.height()
        room_w = max(1.0, vp.width() - 2 * self.FIT_MARGIN_PX)
        room_h = max(1.0, vp.height() - 2 * self.FIT_MARGIN_PX)
        return min(room_w / w, room_h / h) * self._dpr()

    @property
    def zoom(self) -> float:
        """Device pixels per image pixel (1.0 shows every image pixel on one screen pixel)."""
        return self._fit_zoom() if self._fit else self._zoom

    def is_fit(self) -> bool:
        return self._fit

    @property
    def center(self) -> QPointF:
        """The image point shown at the centre of each viewport."""
        return QPointF(self._center)

    def _scale(self) -> float:
        return self.zoom / self._dpr()  # logical widget pixels per image pixel

    def image_rect(self, index: int = 0) -> QRectF:
        """Where the whole image lies in widget coordinates in viewport ``index``."""
        if self._original is None:
            return QRectF()
        vp, s = self.viewports()[index], self._scale()
        top_left = vp.center() - self._center * s
        return QRectF(top_left, QSize(self._original.base.size()).toSizeF() * s)

    def widget_to_image(self, pos: QPointF) -> QPointF:
        vp = self._viewport_at(pos)
        return self._center + (pos - vp.center()) / self._scale()

    def _viewport_at(self, pos: QPointF) -> QRectF:
        ports = self.viewports()
        return ports[-1] if len(ports) > 1 and pos.x() >= ports[1].left() - self.GAP_PX / 2 else ports[0]

    def zoom_fit(self) -> None:
        self._fit = True
        if self._original is not None:
            self._center = QPointF(self._original.base.width() / 2, self._original.base.height() / 2)
        self.update()
        self.zoomChanged.emit(self.zoom)

    def zoom_actual(self, anchor: QPointF | None = None) -> None:
        """100 %: one image pixel on one device pixel."""
        self.set_zoom(1.0, anchor)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom * factor, anchor)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (widget coords) where it is."""
        if self._original is None:
            return
        zoom = min(max(zoom, min(self.MIN_ZOOM, self._fit_zoom())), self.MAX_ZOOM)
        vp = self._viewport_at(anchor) if anchor is not None else self.viewports()[0]
        anchor = anchor if anchor is not None else vp.center()
        fixed = self._center + (anchor - vp.center()) / self._scale()
        self._fit, self._zoom = False, zoom
        self._center = fixed - (anchor - vp.center()) / self._scale()
        self._clamp_center()
        self.update()
        self.zoomChanged.emit(self.zoom)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the picture by (dx, dy) logical pixels, as a drag does."""
        if self._original is None:
            return
        self._center -= QPointF(dx, dy) / self._scale()
        self._clamp_center()
        self.update()

    def _clamp_center(self) -> None:
        # An image narrower than its viewport stays centred; a wider one cannot be
        # dragged so far that empty space opens at its edge.
        if self._original is None:
            return
        vp, s = self.viewports()[0], self._scale()
        size = (self._original.base.width(), self._original.base.height())
        room = (vp.width() / s, vp.height() / s)
        coords = [self._center.x(), self._center.y()]
        for axis in (0, 1):
            if room[axis] >= size[axis]:
                coords[axis] = size[axis] / 2
            else:
                coords[axis] = min(max(coords[axis], room[axis] / 2), size[axis] - room[axis] / 2)
        self._center = QPointF(*coords)

    # ------------------------------------------------------------------ painting
    def sizeHint(self) -> QSize:
        return QSize(800, 600)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        self._paint_contents(p)
        if self.hasFocus():  # the keys (0, 1, arrows) act here: show that they will
            paint_focus_ring(p, QRectF(self.rect()), self.palette().color(self.palette().ColorRole.Highlight))

    def focusInEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().focusOutEvent(event)
        self.update()

    def _paint_contents(self, p: QPainter) -> None:
        if self._original is None:
            if self._overlay:
                paint_message(p, QRectF(self.rect()), self._overlay, self.font(), self._overlay_error)
            return
        # Nearest-neighbour when magnified by hand, so an artist can inspect pixels.
        smooth = self._fit or self.zoom < 2.0
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        ports = self.viewports()
        if self._mode == "split":
            vp = ports[0]
            x = round(vp.left() + self._divider * vp.width())
            left, right = QRectF(vp.left(), vp.top(), x - vp.left(), vp.height()), \
                QRectF(x, vp.top(), vp.right() - x, vp.height())
            self._draw(p, self._original, 0, left if self._styled else vp)
            if self._styled:
                self._draw(p, self._styled, 0, right)
                paint_divider(p, x, vp, HANDLE_RADIUS)
            paint_label(p, self._labels[0], left, Qt.AlignmentFlag.AlignLeft)
            if self._styled:
                paint_label(p, self._labels[1], right, Qt.AlignmentFlag.AlignRight)
            self._paint_overlay(p, vp)
        else:
            self._draw(p, self._original, 0, ports[0])
            paint_label(p, self._labels[0], ports[0], Qt.AlignmentFlag.AlignLeft)
            if self._styled:
                self._draw(p, self._styled, 1, ports[1])
                paint_label(p, self._labels[1], ports[1], Qt.AlignmentFlag.AlignRight)
            self._paint_overlay(p, ports[1])

    def _draw(self, p: QPainter, pyramid: Pyramid, index: int, clip: QRectF) -> None:
        target = self.image_rect(index).intersected(clip)
        if target.isEmpty():
            return
        s = self._scale()
        full = self.image_rect(index)
        # Snap the target to whole device pixels so the two sides line up at the divider.
        source = QRectF((target.left() - full.left()) / s, (target.top() - full.top()) / s,
                        target.width() / s, target.height() / s)
        image, factor = pyramid.level_for(self.zoom)
        source = QRectF(source.left() / factor, source.top() / factor,
                        source.width() / factor, source.height() / factor)
        if pyramid.base.hasAlphaChannel():
            paint_checkerboard(p, target)
        p.drawImage(target, image, source)

    def _paint_overlay(self, p: QPainter, area: QRectF) -> None:
        if self._overlay and self._styled is None:
            paint_note(p, self._overlay, area, self._overlay_error)

    # ------------------------------------------------------------------ input
    def _near_divider(self, pos: QPointF) -> bool:
        if self._mode != "split" or self._styled is None:
            return False
        dx = abs(pos.x() - round(self._divider * self.width()))
        on_handle = dx <= HANDLE_RADIUS and abs(pos.y() - self.height() / 2) <= HANDLE_RADIUS
        return dx <= self.GRAB_PX or on_handle

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if event.button() == Qt.MouseButton.LeftButton and self._near_divider(pos):
            self._drag = "divider"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        else:
            return super().mousePressEvent(event)
        self._last_pos = pos
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag == "divider":
            self.divider_fraction = pos.x() / max(1, self.width())
        elif self._drag == "pan":
            delta = pos - self._last_pos
            self.pan_by(delta.x(), delta.y())
        else:
            self.setCursor(QCursor(Qt.CursorShape.SplitHCursor if self._near_divider(pos)
                                   else Qt.CursorShape.OpenHandCursor if self._original
                                   else Qt.CursorShape.ArrowCursor))
        self._last_pos = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag:
            self._drag = None
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(event.position())
                           else Qt.CursorShape.OpenHandCursor)
            event.accept()
        else:
            super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and not self._near_divider(event.position()):
            if self._fit:
                self.zoom_actual(event.position())
            else:
                self.zoom_fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120 or event.pixelDelta().y() / 40
        if self._original is None or not steps:
            return super().wheelEvent(event)
        self.zoom_by(math.pow(1.25, steps), event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and self._mode == "split":
            self.divider_fraction += 0.05 if key == Qt.Key.Key_Right else -0.05
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        elif key == Qt.Key.Key_0:
            self.zoom_fit()
        elif key == Qt.Key.Key_1:
            self.zoom_actual()
        else:
            return super().keyPressEvent(event)
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._clamp_center()
        if self._fit:
            self.zoomChanged.emit(self.zoom)
        super().resizeEvent(event)
