"""The Library's details pane: one model's actions, previews, loss chart and manifest."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QFormLayout, QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QVBoxLayout, QWidget)

from mlabs_desktop.core.config import PARAMS_BY_NAME
from mlabs_desktop.core.library.store import PREVIEW, Model
from mlabs_desktop.core.events import format_duration
from mlabs_desktop.gui.library.cards import ThumbnailCache


STRIP_HEIGHT = 84
LABEL_WIDTH = 170
STATE_TEXT = {"training": "in training or interrupted", "stopped": "stopped early", "finished": "finished",
              "paused": "paused at its Max steps"}
STAT_LABELS = {"steps": "Steps trained", "training_seconds": "Training time", "device": "Device",
               "images": "Training photos", "skipped": "Unreadable photos skipped",
               "final_losses": "Final losses", "precision": "Stylizes in",
               "teacher_psnr_db": "PSNR to original (dB)", "held_out_photos": "Held-out photos"}
PROVENANCE_LABELS = {"source": "Source", "style": "Style image", "train_path": "Training photos",
                     "test": "Preview image", "vgg_path": "VGG19 weights", "init_from": "Fine-tuned from",
                     "seed": "Random seed", "app_version": "App version", "style_sha256": "Style SHA-256",
                     "distilled_from": "Copied from"}


def format_value(value: Any) -> str:
    """A manifest value as readable text (a mapping becomes one line per key)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return "\n".join(f"{k}: {format_value(v)}" for k, v in value.items()) or "—"
    return str(value)


class ElidedLabel(QLabel):
    """One line of text shortened in the middle to the width it gets (paths keep both ends)."""

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.full_text = text
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._elide()

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt naming
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideMiddle,
                                              max(self.width(), 40))
        self.setText(shown)
        self.setToolTip(self.full_text if shown != self.full_text else "")


def set_font(widget: QWidget, scale: float = 1.0, bold: bool = False) -> QWidget:
    """Size fonts with QFont, not style sheets: a wrapped label measures its height with this font."""
    font = QFont(widget.font())
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(bold)
    widget.setFont(font)
    return widget


def _section(title: str) -> QLabel:
    label = QLabel(title)
    set_font(label, 1.12, bold=True)
    label.setContentsMargins(0, 8, 0, 0)
    return label


def _muted(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: palette(placeholder-text);")
    label.setWordWrap(True)
    return label


def precision_text(model: Model) -> str:
    """What the model's network computes in when it stylizes here, as far as it is known yet."""
    from mlabs_desktop.core.library.store import WEIGHTS
    from mlabs_desktop.core.hardware.bfloat16_speed import known_cpu_bfloat16_pays
    from mlabs_desktop.core.networks.precision import known_fidelity

    pays = known_cpu_bfloat16_pays()
    if pays is False:
        return "float32"
    verdict = known_fidelity(model.folder / WEIGHTS)
    if verdict is None or pays is None:
        return ("float32 or bfloat16: decided when it first stylizes (bfloat16 only where it is faster and "
                "looks the same)")
    if verdict.passes:
        return f"bfloat16 (looks the same as float32: {verdict.psnr_db:.1f} dB PSNR)"
    return f"float32 (bfloat16 would differ visibly: {verdict.psnr_db:.1f} dB PSNR)"


class DetailsPane(QScrollArea):
    """Shows one model; ``action`` carries the key of the button pressed."""

    action = Signal(str)
    ACTIONS = (("stylize", "Stylize with this"), ("resume", "Resume training"),
               ("fine-tune", "Fine-tune into a new style…"), ("fast-copy", "Make a fast copy…"),
               ("rename", "Rename…"), ("export", "Export…"), ("delete", "Delete…"))
    SHORT = {"fine-tune": "Fine-tune…", "fast-copy": "Fast copy…"}  # where the menu's text is too long

    def __init__(self, cache: ThumbnailCache, parent: QWidget | None = None):
        super().__init__(parent)
        self.cache = cache
        self.model: Model | None = None
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(400)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to its buttons, not to the scroll area
        body = QWidget()
        body.setObjectName("details")
        layout = QVBoxLayout(body)
        layout.setContentsMargins(16, 4, 12, 12)
        layout.setSpacing(10)

        self.title = QLabel()
        self.title.setObjectName("details-title")
        set_font(self.title, 1.5, bold=True)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = _muted()
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)

        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(8)
        for i, (key, text) in enumerate(self.ACTIONS):
            button = QPushButton(self.SHORT.get(key, text))
            button.setToolTip(text.rstrip("…"))
            button.setObjectName(f"action-{key}")
            button.clicked.connect(lambda _c=False, k=key: self.action.emit(k))
            grid.addWidget(button, i // 3, i % 3)
            self.buttons[key] = button
        self.buttons["stylize"].setDefault(True)
        set_font(self.buttons["stylize"], bold=True)
        layout.addLayout(grid)

        layout.addWidget(_section("Previews during training"))
        self.strip = QHBoxLayout()
        self.strip.setSpacing(6)
        self.strip.setContentsMargins(0, 0, 0, 0)
        strip_widget = QWidget()
        strip_widget.setLayout(self.strip)
        self.strip_area = QScrollArea()
        self.strip_area.setWidget(strip_widget)
        self.strip_area.setWidgetResizable(True)
        self.strip_area.setFixedHeight(STRIP_HEIGHT + 30)
        self.strip_area.setFrameShape(QFrame.Shape.NoFrame)
        self.strip_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # nothing in it takes keys: no Tab stop
        layout.addWidget(self.strip_area)

        layout.addWidget(_section("Training loss"))
        self.chart = self._make_chart()
        self.chart.setMinimumHeight(220)
        layout.addWidget(self.chart)

        self.forms: dict[str, QFormLayout] = {}
        for key, title in (("statistics", "Statistics"), ("parameters", "Training parameters"),
                           ("provenance", "Provenance")):
            layout.addWidget(_section(title))
            form = QFormLayout()
            form.setHorizontalSpacing(16)
            form.setVerticalSpacing(6)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            layout.addLayout(form)
            self.forms[key] = form
        layout.addStretch(1)

        self.empty = _muted("Select a style to see its previews, loss curve and training details.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body = body
        self.setWidget(body)
        self.show_model(None)

    @staticmethod
    def _make_chart() -> QWidget:
        # The train view's chart draws a saved history the same way it draws a live run.
        try:
            from mlabs_desktop.gui.kit.loss_chart import COLORS, LABELS, LossChart
        except ImportError:
            return _muted("Loss chart unavailable in this build.")
        chart = LossChart(show_controls=False, placeholder="No loss history was saved for this model.")
        chart.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a picture here: no Tab stop
        # The chart's own controls are too wide for this pane; a static legend is enough here.
        legend = QLabel("&nbsp;&nbsp;&nbsp;".join(
            f"<span style='color:{COLORS[k]}'>&#9632;</span>&nbsp;{LABELS[k]}" for k in LABELS))
        legend.setToolTip("Faint lines: each step's loss; bold lines: the smoothed trend.")
        holder = QWidget()
        column = QVBoxLayout(holder)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(legend)
        column.addWidget(chart, 1)
        holder.set_history = chart.set_history  # type: ignore[attr-defined]
        holder.chart = chart  # type: ignore[attr-defined]
        return holder

    # ---------------------------------------------------------------- content
    def show_model(self, model: Model | None) -> None:
        self.model = model
        for button in self.buttons.values():
            button.setEnabled(model is not None)
        if model is None:
            self.takeWidget()
            self.setWidget(self.empty)
            return
        if self.widget() is not self.body:
            self.takeWidget()
            self.setWidget(self.body)
        manifest = model.manifest
        self.title.setText(model.name)
        created = _date(manifest.created)
        self.subtitle.setText(f"{manifest.architecture} network  ·  created {created}  ·  "
                              f"{STATE_TEXT.get(manifest.state, manifest.state)}")
        resume = self.buttons["resume"]
        resume.setEnabled(model.has_checkpoint)
        resume.setToolTip("Continue training from the last checkpoint." if model.has_checkpoint
                          else "This model has no checkpoint to continue from.")
        self._fill_strip(model)
        if hasattr(self.chart, "set_history"):
            self.chart.set_history(model.loss_history())
        stats = dict(manifest.statistics)
        if "training_seconds" in stats:
            stats["training_seconds"] = format_duration(float(stats["training_seconds"] or 0))
        stats["precision"] = precision_text(model)
        self._fill_form("statistics", stats, STAT_LABELS)
        self._fill_form("parameters", manifest.parameters, {})
        provenance = {k: v for k, v in manifest.provenance.items() if k != "style_sha256"}
        self._fill_form("provenance", provenance, PROVENANCE_LABELS)

    def _fill_strip(self, model: Model) -> None:
        while self.strip.count():
            item = self.strip.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        previews = model.previews() or ([model.file(PREVIEW)] if model.file(PREVIEW).is_file() else [])
        for path in previews:
            pixmap = self.cache.get(path, STRIP_HEIGHT, square=False)
            if pixmap is None:
                continue
            cell = QWidget()
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            image = QLabel()
            image.setPixmap(pixmap)
            image.setToolTip(str(path))
            caption = _muted(_step_caption(path))
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(image)
            column.addWidget(caption)
            self.strip.addWidget(cell)
        if not self.strip.count():
            self.strip.addWidget(_muted("No previews saved."))
        self.strip.addStretch(1)

    def _fill_form(self, key: str, values: dict[str, Any], labels: dict[str, str]) -> None:
        form = self.forms[key]
        while form.rowCount():
            form.removeRow(0)
        if not values:
            form.addRow(_muted("Nothing recorded."))
            return
        for name, value in values.items():
            text = format_value(value)
            field = ElidedLabel(text) if "\n" not in text else QLabel(text)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            pretty = name.replace("-", " ").replace("_", " ").capitalize().replace("Tv ", "TV ")
            label = _muted(labels.get(name, pretty))
            label.setWordWrap(False)
            label.setMinimumWidth(LABEL_WIDTH)   # the three forms line up as one table
            spec = PARAMS_BY_NAME.get(name) if key == "parameters" else None
            if spec:
                label.setToolTip(spec.help)
            form.addRow(label, field)


def _step_caption(path: Path) -> str:
    match = re.search(r"step-0*(\d+)", path.stem)
    return f"step {int(match.group(1)):,}" if match else "latest"


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d %b %Y")
    except (TypeError, ValueError):
        return iso or "unknown"
