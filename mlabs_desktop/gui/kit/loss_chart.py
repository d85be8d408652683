"""A live loss chart: four losses, raw and smoothed, on a log axis, fluent at 100k points.

Raw points live in one growable NumPy array (capacity doubles, so appending is
amortised O(1) and cheap enough to call for every training step). What Qt draws
is a decimated copy: per bucket of steps the minimum and the maximum are kept,
so spikes stay visible while no series exceeds ``max_points`` points. Redraws
are coalesced by a single-shot timer to at most ``redraw_hz`` a second, and
skipped entirely while the chart is hidden. The same widget shows a finished
model's history in the library (`set_history`).
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCharts import QChart, QChartView, QLineSeries, QLogValueAxis, QValueAxis
from PySide6.QtCore import QMargins, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QCheckBox, QLabel, QStackedLayout, QVBoxLayout, QWidget

from mlabs_desktop.gui.kit.flow_layout import FlowLayout

LOSS_KEYS: tuple[str, ...] = ("total", "content", "style", "tv")
LABELS = {"total": "Total", "content": "Content", "style": "Style", "tv": "Smoothness (TV)"}
SHORT_LABELS = {"total": "Total", "content": "Content", "style": "Style", "tv": "TV"}  # the check boxes
TOOLTIPS = {
    "total": "The sum the optimiser minimises: content + style + smoothness.",
    "content": "How far the result's VGG features drift from the photo's (lower keeps more of the photo).",
    "style": "How far the result's textures and colours are from the painting's (lower is more painterly).",
    "tv": "Total-variation penalty: lower means smoother, less noisy output.",
}
COLORS = {"total": "#2563eb", "content": "#16a34a", "style": "#c026d3", "tv": "#d97706"}
FLOOR = 1e-12          # a log axis cannot show zero or negative losses; they are drawn here
EMA_CHUNK = 128        # w ** -128 stays far from overflow for any sensible smoothing weight


def decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of (x, y): per bucket its minimum and maximum, in x order."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    width = math.ceil(n / buckets)
    buckets = math.ceil(n / width)
    pad = buckets * width - n
    # Padding with the last value changes neither the minimum nor the maximum of the last bucket.
    yy = np.concatenate([y, np.full(pad, y[-1])]).reshape(buckets, width) if pad else y.reshape(buckets, width)
    base = np.arange(buckets) * width
    lo = np.minimum(base + yy.argmin(axis=1), n - 1)
    hi = np.minimum(base + yy.argmax(axis=1), n - 1)
    first, second = np.minimum(lo, hi), np.maximum(lo, hi)
    index = np.stack([first, second], axis=1).ravel()
    return x[index], y[index]


def ema(values: np.ndarray, weight: float, state: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Debiased exponential moving average of ``values`` (n, k), continuing from ``state`` after ``count`` points.

    Vectorised per chunk: s_j = w^j (s_0 + (1 - w) * sum_i w^-i x_i); the sum has only positive
    terms for losses, so it loses no precision.
    Returns the smoothed values and the new (biased) state.
    """
    out = np.empty_like(values, dtype=np.float64)
    s = state.astype(np.float64).copy()
    for start in range(0, len(values), EMA_CHUNK):
        chunk = values[start:start + EMA_CHUNK]
        j = np.arange(1, len(chunk) + 1, dtype=np.float64)[:, None]
        powers = weight ** j
        acc = s + (1.0 - weight) * np.cumsum(chunk / powers, axis=0)
        biased = powers * acc
        t = count + start + j
        out[start:start + len(chunk)] = biased / (1.0 - weight ** t)
        s = biased[-1]
    return out, s


def nice_step_range(first: float, last: float, max_ticks: int = 6) -> tuple[float, float, int]:
    """An axis range over whole steps with 1-2-5 tick spacing, so "%d" never repeats a label."""
    span = max(1.0, last - first)
    for magnitude in (10.0 ** k for k in range(0, 12)):
        for unit in (1, 2, 5):
            step = unit * magnitude
            lo, hi = math.floor(first / step) * step, math.ceil(last / step) * step
            hi = max(hi, lo + step)
            if (hi - lo) / step + 1 <= max_ticks and step >= 1:
                return lo, hi, int(round((hi - lo) / step)) + 1
    return first, first + span, 2


def _color_icon(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class LossChart(QWidget):
    """Loss curves: ``append`` live points, ``set_history`` a saved history, ``clear``."""

    def __init__(self, parent: QWidget | None = None, *, smoothing: float = 0.9, max_points: int = 2000,
                 redraw_hz: float = 10.0, show_controls: bool = True,
                 placeholder: str = "Loss curves appear here once training starts."):
        super().__init__(parent)
        self.smoothing = smoothing
        self.max_points = max_points
        self._interval_ms = int(1000 / redraw_hz)
        self._data = np.empty((1024, 1 + len(LOSS_KEYS)), np.float64)  # rows: step, losses...
        self._n = 0
        self._ema = np.empty((1024, len(LOSS_KEYS)), np.float64)
        self._ema_n = 0
        self._ema_state = np.zeros(len(LOSS_KEYS))
        self._dirty = False
        self._last_draw = 0.0
        self.redraw_count = 0
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._on_timer)
        self._build(show_controls, placeholder)

    # ------------------------------------------------------------------ layout
    def _build(self, show_controls: bool, placeholder: str) -> None:
        self.chart = QChart()
        self.chart.legend().hide()
        self.chart.setMargins(QMargins(4, 4, 4, 4))
        self.chart.setBackgroundRoundness(0)
        self.x_axis = QValueAxis()
        self.x_axis.setTitleText("step")
        self.x_axis.setLabelFormat("%d")
        self.x_axis.setTickCount(6)
        self.y_axis = QLogValueAxis()
        self.y_axis.setTitleText("loss (log)")
        self.y_axis.setLabelFormat("%.0e")
        self.y_axis.setBase(10.0)
        self.chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        self.chart.addAxis(self.y_axis, Qt.AlignmentFlag.AlignLeft)
        self.raw: dict[str, QLineSeries] = {}
        self.smooth: dict[str, QLineSeries] = {}
        for key in LOSS_KEYS:
            for store, alpha, width in ((self.raw, 70, 1.0), (self.smooth, 255, 2.2)):
                series = QLineSeries()
                color = QColor(COLORS[key])
                color.setAlpha(alpha)
                series.setPen(QPen(color, width))
                series.setName(LABELS[key])
                self.chart.addSeries(series)
                series.attachAxis(self.x_axis)
                series.attachAxis(self.y_axis)
                store[key] = series
        self.view = QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.view.setMinimumSize(200, 120)
        self.placeholder = QLabel(placeholder, alignment=Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: palette(mid); font-size: 13px;")
        self._stack = QStackedLayout()
        self._stack.addWidget(self.placeholder)
        self._stack.addWidget(self.view)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.checks: dict[str, QCheckBox] = {}
        controls = FlowLayout(spacing=10)  # wraps in a narrow window instead of widening it
        for key in LOSS_KEYS:
            box = QCheckBox(SHORT_LABELS[key], checked=True, icon=_color_icon(COLORS[key]))
            box.setToolTip(TOOLTIPS[key] + " Click to show or hide the curve.")
            box.toggled.connect(self._visibility_changed)
            controls.addWidget(box)
            self.checks[key] = box
        self.raw_check = QCheckBox("Raw", checked=True)
        self.raw_check.setToolTip("Show each step's loss as a faint line behind the smoothed curve.")
        self.raw_check.toggled.connect(self._visibility_changed)
        controls.addWidget(self.raw_check)
        if show_controls:
            layout.addLayout(controls)
        else:
            for box in (*self.checks.values(), self.raw_check):
                box.hide()
        layout.addLayout(self._stack, 1)

    # ------------------------------------------------------------------ data
    def append(self, step: float, losses: dict[str, float]) -> None:
        """Add one step's losses; cheap (no drawing here), safe to call for every step."""
        n = self._n
        if n == len(self._data):
            self._grow(2 * n)
        get = losses.get
        self._data[n] = (step, get("total", math.nan), get("content", math.nan),
                         get("style", math.nan), get("tv", math.nan))
        self._n = n + 1
        if not self._dirty:
            self._dirty = True
            self._schedule()

    def set_history(self, history: dict[str, np.ndarray]) -> None:
        """Replace everything with a saved history (``Model.loss_history()``: 'step' + loss arrays)."""
        lengths = [len(np.asarray(v)) for k, v in history.items() if k in LOSS_KEYS or k == "step"]
        n = min(lengths) if lengths else 0
        self._n = self._ema_n = 0
        self._ema_state = np.zeros(len(LOSS_KEYS))
        self._grow(max(1024, n))
        steps = np.asarray(history["step"], np.float64)[:n] if "step" in history else np.arange(1, n + 1)
        self._data[:n, 0] = steps
        for i, key in enumerate(LOSS_KEYS):
            self._data[:n, i + 1] = np.asarray(history[key], np.float64)[:n] if key in history else math.nan
        self._n = n
        self.redraw()

    def clear(self) -> None:
        self.set_history({})

    def point_count(self) -> int:
        return self._n

    def drawn_count(self, key: str = "total", smoothed: bool = False) -> int:
        return (self.smooth if smoothed else self.raw)[key].count()

    def _grow(self, capacity: int) -> None:
        if capacity <= len(self._data):
            return
        for name in ("_data", "_ema"):
            old = getattr(self, name)
            new = np.empty((capacity, old.shape[1]), np.float64)
            new[:self._n] = old[:self._n]
            setattr(self, name, new)

    # ------------------------------------------------------------------ drawing
    def _schedule(self) -> None:
        if self._timer.isActive():
            return
        since = (time.monotonic() - self._last_draw) * 1000
        self._timer.start(max(0, int(self._interval_ms - since)))

    def _update_ema(self) -> None:
        n, done = self._n, self._ema_n
        if n == done:
            return
        values = self._data[done:n, 1:].copy()
        # Forward-fill gaps (a missing or non-finite loss keeps the average where it was).
        bad = ~np.isfinite(values)
        if bad.any():
            previous = self._data[done - 1, 1:] if done else np.full(len(LOSS_KEYS), FLOOR)
            for col in range(values.shape[1]):
                column = values[:, col]
                idx = np.where(bad[:, col], 0, np.arange(1, len(column) + 1))
                idx = np.maximum.accumulate(idx)
                filled = np.concatenate([[previous[col] if np.isfinite(previous[col]) else FLOOR], column])
                values[:, col] = filled[idx]
        values = np.maximum(values, FLOOR)
        self._ema[done:n], self._ema_state = ema(values, self.smoothing, self._ema_state, done)
        self._ema_n = n

    def _on_timer(self) -> None:
        # A hidden chart (another view is showing) stays dirty and redraws when shown.
        if self.isVisible():
            self.redraw()

    def redraw(self) -> None:
        """Push the decimated data into the series now (the timer calls this; tests may too)."""
        self._timer.stop()
        self._dirty = False
        self._last_draw = time.monotonic()
        self.redraw_count += 1
        n = self._n
        self._stack.setCurrentIndex(1 if n else 0)
        self._update_ema()
        x = self._data[:n, 0]
        lows: list[float] = []
        highs: list[float] = []
        for i, key in enumerate(LOSS_KEYS):
            shown = self.checks[key].isChecked()
            raw_shown = shown and self.raw_check.isChecked()
            column = self._data[:n, i + 1]
            finite = np.isfinite(column)
            xs, raw_y = (x, column) if finite.all() else (x[finite], column[finite])
            raw_y = np.maximum(raw_y, FLOOR)
            self._feed(self.raw[key], *decimate(xs, raw_y, self.max_points) if raw_shown else (xs[:0], raw_y[:0]))
            smooth_y = self._ema[:n, i]
            self._feed(self.smooth[key], *decimate(x, smooth_y, self.max_points) if shown else (x[:0], x[:0]))
            self.raw[key].setVisible(raw_shown)
            self.smooth[key].setVisible(shown)
            self.smooth[key].setPointsVisible(shown and n < 3)  # one point draws no line
            if shown and len(raw_y):
                source = raw_y if raw_shown else smooth_y
                lows.append(float(source.min()))
                highs.append(float(source.max()))
        self._set_ranges(x, lows, highs)

    @staticmethod
    def _feed(series: QLineSeries, x: np.ndarray, y: np.ndarray) -> None:
        # One bulk replace per series. replaceNp (PySide6 >= 6.5) copies straight from
        # NumPy, about 100x faster than building QPointF objects in Python.
        x = np.ascontiguousarray(x, np.float64)
        y = np.ascontiguousarray(y, np.float64)
        if hasattr(series, "replaceNp"):
            series.replaceNp(x, y)
        else:  # pragma: no cover - older PySide6
            series.replace([QPointF(a, b) for a, b in zip(x.tolist(), y.tolist())])

    def _set_ranges(self, x: np.ndarray, lows: list[float], highs: list[float]) -> None:
        first = float(x[0]) if len(x) else 0.0
        last = float(x[-1]) if len(x) else 1.0
        lo, hi, ticks = nice_step_range(first, last)
        self.x_axis.setRange(lo, hi)
        self.x_axis.setTickCount(ticks)
        if lows:
            lo = 10.0 ** math.floor(math.log10(max(min(lows), FLOOR)))
            hi = 10.0 ** math.ceil(math.log10(max(max(highs), FLOOR)))
            self.y_axis.setRange(lo, hi if hi > lo else lo * 10)

    def _visibility_changed(self) -> None:
        self.redraw()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if self._dirty:
            self.redraw()
