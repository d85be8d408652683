"""The live half of the Train view: progress, loss chart, previews and log of a run.

Only cheap updates happen here (a label, a pixmap of a 384-pixel preview, a
line of log); the chart coalesces its own redraws.
"""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QGridLayout, QGroupBox, QLabel, QListView, QListWidget, QListWidgetItem,
                               QPlainTextEdit, QProgressBar, QSizePolicy, QSplitter, QVBoxLayout, QWidget)

from mlabs_desktop.core.library.store import Model
from mlabs_desktop.gui.kit.common import pixmap_from_file
from mlabs_desktop.gui.kit.loss_chart import LossChart
from mlabs_desktop.gui.train.inputs import NOTE_STYLE

MAX_STRIP = 60            # earlier previews kept in the strip
LOG_LINES = 2000
LEVEL_COLORS = {"warning": "#b45309", "error": "#c62828"}


class ImageView(QWidget):
    """Paints one pixmap scaled to fit, centred; a hint text while empty."""

    def __init__(self, placeholder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.placeholder = placeholder
        self._pixmap = QPixmap()
        self.setMinimumSize(140, 110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        self.update()

    def pixmap(self) -> QPixmap:
        return self._pixmap

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().alternateBase())
        if self._pixmap.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect().adjusted(16, 0, -16, 0),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        size = self._pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x, y = (self.width() - size.width()) // 2, (self.height() - size.height()) // 2
        painter.drawPixmap(x, y, size.width(), size.height(), self._pixmap)


class LivePanel(QWidget):
    """Progress, loss chart, previews and log of the run in progress (or the last one)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        layout.addWidget(self._build_progress())
        self.error_box = QLabel(wordWrap=True, objectName="ErrorBox")
        self.error_box.setStyleSheet("QLabel#ErrorBox { background: #fdecea; color: #8a1c1c; border: 1px solid "
                                     "#f5c2c0; border-radius: 6px; padding: 8px 10px; }")
        self.error_box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_box.hide()
        layout.addWidget(self.error_box)
        self.middle = middle = QSplitter(Qt.Orientation.Horizontal)
        middle.setChildrenCollapsible(False)
        chart_box = QGroupBox("Losses")
        chart_layout = QVBoxLayout(chart_box)
        chart_layout.setContentsMargins(10, 12, 10, 10)
        self.chart = LossChart()
        chart_layout.addWidget(self.chart)
        middle.addWidget(chart_box)
        middle.addWidget(self._build_previews())
        middle.setStretchFactor(0, 1)
        middle.setStretchFactor(1, 1)
        self._split_done = False
        self._split_timer = QTimer(self, singleShot=True, interval=0)
        self._split_timer.timeout.connect(
            lambda: self.middle.setSizes([int(self.width() * 0.55), int(self.width() * 0.45)]))
        layout.addWidget(middle, 1)
        log_box = QGroupBox("Log")
        log_layout = QVBoxLayout(log_box)
        log_layout.setContentsMargins(10, 12, 10, 10)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFont(QFont("monospace", 9))
        self.log.setMinimumHeight(56)   # about three lines: a short window keeps room for the chart
        self.log.setMaximumHeight(120)
        self.log.setPlaceholderText("Messages from the trainer appear here.")
        self.log.setToolTip("What the trainer reports: devices, checkpoints, skipped images, problems.")
        log_layout.addWidget(self.log)
        layout.addWidget(log_box)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if not self._split_done:
            # The preview is what people watch: give it nearly half, once the real width is known.
            self._split_done = True
            self._split_timer.start()

    def _build_progress(self) -> QWidget:
        box = QGroupBox("Progress")
        grid = QGridLayout(box)
        grid.setContentsMargins(12, 12, 12, 12)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        self.title = QLabel("No training running", styleSheet="font-size: 15px; font-weight: 600;")
        self.progress = QProgressBar(textVisible=True, toolTip="Steps done of this run's last step.")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        grid.addWidget(self.title, 0, 0, 1, 5)
        grid.addWidget(self.progress, 1, 0, 1, 5)
        self.stats: dict[str, QLabel] = {}
        tips = {"Step": "Steps done / the step this run ends at.", "Epoch": "Pass over the training folder.",
                "Speed": "Training images per second (smoothed).", "Elapsed": "Time this run has trained.",
                "Remaining": "Estimated time to the last step at the current speed."}
        for col, caption in enumerate(tips):
            cap = QLabel(caption.upper(), styleSheet=NOTE_STYLE + " font-size: 10px; letter-spacing: 1px;")
            value = QLabel("—", styleSheet="font-size: 14px; font-weight: 600;", toolTip=tips[caption])
            cap.setToolTip(tips[caption])
            grid.addWidget(cap, 2, col)
            grid.addWidget(value, 3, col)
            self.stats[caption] = value
        return box

    def _build_previews(self) -> QWidget:
        box = QGroupBox("Preview")
        column = QVBoxLayout(box)
        column.setContentsMargins(10, 12, 10, 10)
        column.setSpacing(6)
        self.preview = ImageView("The preview photo, in the style being learnt, appears at every checkpoint.")
        self.preview.setToolTip("The preview photo styled by the model at the latest checkpoint.")
        self.preview_caption = QLabel("", styleSheet=NOTE_STYLE)
        self.strip = QListWidget(viewMode=QListView.ViewMode.IconMode, flow=QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setIconSize(QSize(64, 64))
        self.strip.setFixedHeight(106)
        self.strip.setSpacing(3)
        self.strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.strip.setToolTip("Earlier previews, newest last. Click one to see it large.")
        self.strip.itemClicked.connect(self._strip_clicked)
        column.addWidget(self.preview, 1)
        column.addWidget(self.preview_caption)
        column.addWidget(self.strip)
        self.strip.hide()  # until there is an earlier preview to show
        return box

    def add_preview(self, step: int, pixmap: QPixmap) -> None:
        self.preview.set_pixmap(pixmap)
        self.preview_caption.setText(f"Step {step:,}")
        item = QListWidgetItem(QIcon(pixmap), f"{step:,}")
        item.setData(Qt.ItemDataRole.UserRole, (step, pixmap))
        item.setToolTip(f"Step {step:,}")
        self.strip.addItem(item)
        self.strip.show()
        while self.strip.count() > MAX_STRIP:
            self.strip.takeItem(0)
        self.strip.scrollToItem(self.strip.item(self.strip.count() - 1))

    def _strip_clicked(self, item: QListWidgetItem) -> None:
        step, pixmap = item.data(Qt.ItemDataRole.UserRole)
        self.preview.set_pixmap(pixmap)
        self.preview_caption.setText(f"Step {step:,}")

    def reset(self) -> None:
        self.chart.clear()
        self.strip.clear()
        self.strip.hide()
        self.preview.set_pixmap(QPixmap())
        self.preview_caption.setText("")
        self.error_box.hide()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        for label in self.stats.values():
            label.setText("—")

    def show_model(self, model: Model) -> None:
        """A saved model's history: where a resumed run picks up."""
        self.reset()
        self.chart.set_history(model.loss_history())
        for path in model.previews():
            pixmap = pixmap_from_file(path)
            if pixmap is not None:
                self.add_preview(int(path.stem.split("-")[1]), pixmap)

    def append_log(self, message: str, level: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        color = LEVEL_COLORS.get(level)
        text = html.escape(message)
        body = f'<span style="color:{color}">{text}</span>' if color else text
        self.log.appendHtml(f'<span style="color:#6b7280">{stamp}</span>&nbsp; {body}')

    def show_error(self, message: str) -> None:
        self.error_box.setText(f"<b>Training stopped with a problem.</b><br>{html.escape(message)}")
        self.error_box.show()
