"""Painting pieces for image canvases: a pyramid of scaled copies, pills, a message card, a divider.

Plain functions over a `QPainter`, so any widget showing photos can use them;
each saves and restores the painter state it changes.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

ALERT = QColor(217, 48, 37)
_checker: QPixmap | None = None  # made on first use: a QPixmap needs the QApplication


class Pyramid:
    """An image and its successively halved copies, made on first use.

    Downscaling a big photo by a large factor on every paint is slow and aliases;
    drawing from the level just above the screen resolution is fast and smooth.
    """

    def __init__(self, image: QImage):
        fmt = (QImage.Format.Format_ARGB32_Premultiplied if image.hasAlphaChannel()
               else QImage.Format.Format_RGB32)
        # The raster engine draws these formats directly; others are converted on every paint.
        self.levels = [image if image.format() == fmt else image.convertToFormat(fmt)]

    @property
    def base(self) -> QImage:
        return self.levels[0]

    def level_for(self, zoom: float) -> tuple[QImage, float]:
        """The coarsest level still at least as detailed as ``zoom``, and its downscale factor."""
        level = 0
        while zoom * 2 ** (level + 1) <= 1.0 and min(self.levels[level].width(), self.levels[level].height()) >= 64:
            level += 1
            if level == len(self.levels):
                prev = self.levels[-1]
                self.levels.append(prev.scaled(max(1, prev.width() // 2), max(1, prev.height() // 2),
                                               Qt.AspectRatioMode.IgnoreAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))
        image = self.levels[level]
        # Halving rounds down; the true ratio keeps source rects exact.
        return image, self.base.width() / image.width()


def paint_checkerboard(p: QPainter, rect: QRectF) -> None:
    """The usual "transparent here" pattern, under pictures with an alpha channel."""
    global _checker
    if _checker is None:
        _checker = QPixmap(16, 16)
        _checker.fill(QColor(204, 204, 204))
        tile = QPainter(_checker)
        tile.fillRect(0, 0, 8, 8, QColor(240, 240, 240))
        tile.fillRect(8, 8, 8, 8, QColor(240, 240, 240))
        tile.end()
    p.fillRect(rect, QBrush(_checker))


def paint_divider(p: QPainter, x: float, area: QRectF, radius: float) -> None:
    """A white line with a soft shadow and a round handle with two arrowheads ("drag sideways")."""
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    top, bottom = QPointF(x, area.top()), QPointF(x, area.bottom())
    p.setPen(QPen(QColor(0, 0, 0, 90), 4))
    p.drawLine(top, bottom)
    p.setPen(QPen(QColor(255, 255, 255), 2))
    p.drawLine(top, bottom)
    c = QPointF(x, area.center().y())
    p.setPen(QPen(QColor(0, 0, 0, 60), 1))
    p.setBrush(QColor(255, 255, 255))
    p.drawEllipse(c, radius, radius)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(60, 64, 67))
    for sign in (-1, 1):
        tip = c + QPointF(sign * radius * 0.6, 0)
        p.drawPolygon(QPolygonF([tip, tip + QPointF(-sign * 6, -6), tip + QPointF(-sign * 6, 6)]))
    p.restore()


def paint_focus_ring(p: QPainter, area: QRectF, color: QColor) -> None:
    """A 2 px ring just inside ``area``: a custom-painted widget's sign that the keyboard is on it."""
    p.save()
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QPen(color, 2))
    p.drawRect(area.adjusted(1, 1, -1, -1))
    p.restore()


def paint_label(p: QPainter, text: str, area: QRectF, align: Qt.AlignmentFlag) -> None:
    """A small dark pill in the top corner of ``area`` ("Original", the style's name)."""
    if not text or area.width() < 80:
        return
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    metrics = p.fontMetrics()
    w, h = min(metrics.horizontalAdvance(text) + 20, area.width() - 24), metrics.height() + 8
    x = area.left() + 12 if align == Qt.AlignmentFlag.AlignLeft else area.right() - 12 - w
    pill = QRectF(x, area.top() + 12, w, h)
    path = QPainterPath()
    path.addRoundedRect(pill, h / 2, h / 2)
    p.fillPath(path, QColor(0, 0, 0, 150))
    p.setPen(QColor(255, 255, 255))
    p.drawText(pill, Qt.AlignmentFlag.AlignCenter, metrics.elidedText(text, Qt.TextElideMode.ElideRight, int(w - 16)))
    p.restore()


def paint_note(p: QPainter, text: str, area: QRectF, error: bool = False) -> None:
    """A dark rounded note near the bottom of ``area`` ("Stylizing…"), red-edged for a failure."""
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    metrics = p.fontMetrics()
    # 4 px of slack: drawn text measures a fraction wider than the integer metrics, which wrapped its last word.
    width = max(40.0, min(area.width() - 48, metrics.horizontalAdvance(text) + 36))
    box = metrics.boundingRect(0, 0, int(width - 32), 10_000, Qt.TextFlag.TextWordWrap, text)
    rect = QRectF(0, 0, width, box.height() + 20)
    rect.moveCenter(QPointF(area.center().x(), area.bottom() - 24 - rect.height() / 2))
    p.setPen(QPen(ALERT, 2) if error else Qt.PenStyle.NoPen)
    p.setBrush(QColor(0, 0, 0, 170))
    p.drawRoundedRect(rect, 10, 10)
    p.setPen(QColor(255, 255, 255))
    p.drawText(rect.adjusted(16, 10, -16, -10), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
    p.restore()


def paint_alert_disc(p: QPainter, center: QPointF, radius: float) -> None:
    """A red disc with a white "!": reads as "this one failed" at a glance."""
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(ALERT)
    p.drawEllipse(center, radius, radius)
    p.setPen(QPen(QColor(255, 255, 255), max(2.0, radius / 6), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    p.drawLine(center + QPointF(0, -radius * 0.45), center + QPointF(0, radius * 0.1))
    p.drawPoint(center + QPointF(0, radius * 0.5))
    p.restore()


def paint_message(p: QPainter, area: QRectF, text: str, font: QFont, error: bool = False) -> None:
    """A centred card for when there is no picture: a bold first line, then the details."""
    p.save()
    title, _, detail = text.partition("\n")
    width = min(480.0, area.width() - 48)
    top = area.center().y() - 60
    if error:
        paint_alert_disc(p, QPointF(area.center().x(), top), 22)
    bold = QFont(font)
    bold.setPointSizeF(font.pointSizeF() * 1.3)
    bold.setWeight(QFont.Weight.DemiBold)
    p.setFont(bold)
    p.setPen(QColor(232, 234, 237))
    box = QRectF(area.center().x() - width / 2, top + 36, width, 32)
    p.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, title)
    p.setFont(font)
    p.setPen(QColor(189, 193, 198))
    p.drawText(QRectF(box.left(), box.bottom() + 4, width, 200),
               Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, detail)
    p.restore()
