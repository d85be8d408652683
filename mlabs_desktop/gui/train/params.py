"""The parameter half of the training form: preset, friendly sliders, every flag.

The editors are generated from `core.config.PARAMS` in one loop, so a new flag
shows up here with its range and help text as tooltip, and each value is checked
with the same `coerce_param` the command line uses. Two friendly sliders sit on
top of two of them: Style strength (style weight on a log scale) and Brush size
(style scale).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QPushButton,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from mlabs_desktop.core.training import presets
from mlabs_desktop.core.config import PARAMS, TrainingConfig, coerce_param
from mlabs_desktop.core.hardware.devices import no_gpu_hint
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.gui.kit.common import narrow_combo, user_text
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.train.inputs import form_group, note_label, with_error

STRENGTH_STEPS = 100            # slider positions per decade of style weight
STRENGTH_RANGE = (0, 4)         # style weight 1e0 .. 1e4
BRUSH_RANGE = (25, 200)         # style scale 0.25 .. 2.0, in percent
FIELD_LABELS = {"tv-weight": "TV weight", "checkpoint-iterations": "Checkpoint every", "max-steps": "Max steps this run"}
SUFFIXES = {"image-size": " px", "checkpoint-iterations": " steps", "batch-size": " images", "steps": " steps",
            "max-steps": " steps"}
SPECIAL_TEXTS = {"max-steps": "no limit", "steps": "as the epochs give"}  # what 0 means
CHOICE_LABELS = {"auto": "Automatic", "cpu": "CPU", "gpu": "GPU", "classic": "Classic (reference)",
                 "default": "Default (no checkerboard)", "lite": "Lite (2.5-3x faster)",
                 "tiny": "Tiny (fastest, for previews)", "float32": "Full (float32)"}
PRESET_EXCLUDED = ("device", "precision")   # a preset says how to train, not on which machine


def strength_to_weight(position: int) -> float:
    """Style-strength slider position -> style weight, log scale, 3 significant digits."""
    return float(f"{10 ** (position / STRENGTH_STEPS):.3g}")


def weight_to_strength(weight: float) -> int:
    lo, hi = (r * STRENGTH_STEPS for r in STRENGTH_RANGE)
    return int(min(hi, max(lo, round(math.log10(max(weight, 1e-300)) * STRENGTH_STEPS))))


def brush_to_scale(position: int) -> float:
    return position / 100.0


def scale_to_brush(scale: float) -> int:
    return int(min(BRUSH_RANGE[1], max(BRUSH_RANGE[0], round(scale * 100))))


def _number_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _field_message(name: str, message: str) -> str:
    """'content-weight must be a number' -> 'Must be a number' (the field is beside it)."""
    text = message[len(name) + 1:] if message.startswith(name + " ") else message
    return text[:1].upper() + text[1:]


class ParamsPanel(QWidget):
    """The "Look" and "Training parameters" groups; `problems()` lists what is invalid."""

    changed = Signal()

    def __init__(self, services: Services, parent: QWidget | None = None):
        super().__init__(parent)
        self.services = services
        self.fields: dict[str, QWidget] = {}
        self.error_labels: dict[str, QLabel] = {}
        self.gpus: list | None = None          # None until the devices are known
        self._syncing = False
        self._busy, self._mode = False, "new"
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(14)
        self._build_look()
        self._build_params()
        self._load_presets()
        self.apply_preset(services.settings.default_preset)
        self.fields["device"].setCurrentIndex(max(0, self.fields["device"].findData(
            services.settings.default_device)))

    def _group(self, title: str) -> QFormLayout:
        box, form = form_group(title)
        self._layout.addWidget(box)
        return form

    def _cell(self, key: str, *parts: QWidget | QHBoxLayout) -> QWidget:
        cell, self.error_labels[key] = with_error(*parts)
        return cell

    def _slider(self, lo: int, hi: int, tip: str) -> tuple[QSlider, QLabel, QHBoxLayout]:
        slider = QSlider(Qt.Orientation.Horizontal, minimum=lo, maximum=hi, toolTip=tip)
        value = QLabel(minimumWidth=56, alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout()
        row.addWidget(slider, 1)
        row.addWidget(value)
        return slider, value, row

    def _build_look(self) -> None:
        form = self._group("Look")
        row = QHBoxLayout()
        self.preset_combo = narrow_combo(QComboBox(toolTip="Ready-made parameter sets; yours are listed too."))
        self.preset_combo.activated.connect(lambda _: self.apply_preset(self.preset_combo.currentData()))
        self.save_preset_button = QPushButton("Save as preset…")
        self.save_preset_button.setToolTip("Keep the current parameters as a preset of your own.")
        self.save_preset_button.clicked.connect(self._ask_preset_name)
        row.addWidget(self.preset_combo, 1)
        row.addWidget(self.save_preset_button)
        self.preset_note = note_label()
        form.addRow(QLabel("Preset", toolTip=self.preset_combo.toolTip()), self._cell("preset", row, self.preset_note))
        lo, hi = (r * STRENGTH_STEPS for r in STRENGTH_RANGE)
        self.strength, self.strength_value, row = self._slider(
            lo, hi, "How strongly the painting's textures and colours take over (the style weight, "
            "on a log scale from 1 to 10,000).")
        self.strength.valueChanged.connect(self._strength_moved)
        self.strength_caption = QLabel("Style strength", toolTip=self.strength.toolTip())
        form.addRow(self.strength_caption, row)
        self.brush, self.brush_value, row = self._slider(
            *BRUSH_RANGE, "Size of the painted strokes: the style image is scaled by this factor "
            "before its style is learnt (the style scale).")
        self.brush.valueChanged.connect(self._brush_moved)
        self.brush_caption = QLabel("Brush size", toolTip=self.brush.toolTip())
        form.addRow(self.brush_caption, row)

    def _make_field(self, spec) -> QWidget:
        tip = spec.help + (f" ({spec.minimum:g} to {spec.maximum:g})" if spec.minimum is not None else "")
        if spec.choices:
            field = narrow_combo(QComboBox())
            for choice in spec.choices:
                field.addItem(CHOICE_LABELS.get(choice, choice), choice)
            field.currentIndexChanged.connect(self._field_edited)
        elif spec.kind is int:
            field = QSpinBox(minimum=int(spec.minimum), maximum=int(spec.maximum),
                             suffix=SUFFIXES.get(spec.name, ""))
            field.setGroupSeparatorShown(True)
            field.setSpecialValueText(SPECIAL_TEXTS.get(spec.name, ""))
            field.valueChanged.connect(self._field_edited)
        else:
            field = QLineEdit()
            field.textChanged.connect(self._field_edited)
        field.setToolTip(tip)
        return field

    def _build_params(self) -> None:
        form = self._group("Training parameters")
        for spec in PARAMS:
            field = self._make_field(spec)
            self.fields[spec.name] = field
            extra = []
            if spec.name == "device":
                self.device_note = note_label("Looking for GPUs…")
                extra.append(self.device_note)
            text = FIELD_LABELS.get(spec.name, spec.name.replace("-", " ").capitalize())
            label = QLabel(text, toolTip=field.toolTip())
            form.addRow(label, self._cell(spec.name, field, *extra))

    def raw(self, name: str) -> Any:
        field = self.fields[name]
        if isinstance(field, QComboBox):
            return field.currentData()
        if isinstance(field, QSpinBox):
            return field.value()
        return field.text().strip()

    def set_params(self, params: dict[str, Any]) -> None:
        self._syncing = True
        try:
            for name, value in params.items():
                field = self.fields.get(name)
                if isinstance(field, QComboBox):
                    field.setCurrentIndex(max(0, field.findData(value)))
                elif isinstance(field, QSpinBox):
                    field.setValue(int(value))
                elif field is not None:
                    field.setText(_number_text(value))
        finally:
            self._syncing = False
        self._field_edited()

    def params(self) -> dict[str, Any]:
        """Every parameter, coerced (raises ValueError on an invalid one)."""
        return {spec.name: coerce_param(spec.name, self.raw(spec.name)) for spec in PARAMS}

    def _field_edited(self, *_: Any) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self._sync_sliders()
            self._sync_preset()
            self._apply_enabled()
        finally:
            self._syncing = False
        self.changed.emit()

    def _sync_sliders(self) -> None:
        for name, slider, label, to_pos, fmt in (
                ("style-weight", self.strength, self.strength_value, weight_to_strength, "{:g}"),
                ("style-scale", self.brush, self.brush_value, scale_to_brush, "{:.2f}×")):
            try:
                value = coerce_param(name, self.raw(name))
            except ValueError:
                label.setText("—")
                continue
            slider.setValue(to_pos(value))
            label.setText(fmt.format(value))

    def _strength_moved(self, position: int) -> None:
        if not self._syncing:
            self.fields["style-weight"].setText(_number_text(strength_to_weight(position)))

    def _brush_moved(self, position: int) -> None:
        if not self._syncing:
            self.fields["style-scale"].setText(_number_text(brush_to_scale(position)))

    # ------------------------------------------------------------------ presets
    def _load_presets(self, select: str | None = None) -> None:
        self._presets = {p.name: p for p in presets.list_presets()}
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItem("Custom", "")
        for preset in self._presets.values():
            self.preset_combo.addItem(preset.name + ("" if preset.shipped else "  (yours)"), preset.name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, preset.description,
                                          Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(select or "")))
        self.preset_combo.blockSignals(False)

    def _preset_params(self, name: str) -> dict[str, Any]:
        base = {k: v for k, v in TrainingConfig().parameters().items() if k not in PRESET_EXCLUDED}
        return base | {k: v for k, v in self._presets[name].params.items() if k not in PRESET_EXCLUDED}

    def apply_preset(self, name: str | None) -> None:
        if not name or name not in self._presets:
            return
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(name))
        self.set_params(self._preset_params(name))

    def _sync_preset(self) -> None:
        name = self.preset_combo.currentData()
        try:
            current = {k: v for k, v in self.params().items() if k not in PRESET_EXCLUDED}
        except ValueError:
            current = None
        if name and current != self._preset_params(name):
            self.preset_combo.setCurrentIndex(0)
            name = ""
        self.preset_note.setText(self._presets[name].description if name else
                                 "Your own mix of parameters. “Save as preset…” keeps it for next time.")

    def _ask_preset_name(self) -> None:
        name, ok = QInputDialog.getText(self, "Save as preset", "Preset name:")
        if ok and name.strip():
            self.save_preset(name)

    def save_preset(self, name: str) -> Path | None:
        try:
            params = {k: v for k, v in self.params().items() if k not in PRESET_EXCLUDED}
            path = presets.save_user_preset(name, params)
        except (UserError, ValueError) as exc:
            self.services.hub.error.emit("Could not save the preset", user_text(exc))
            return None
        self._load_presets(select=name.strip())
        self._field_edited()
        return path


    # ------------------------------------------------------------------ devices, checks, locking
    def set_devices(self, gpus: list) -> None:
        """Name the device choices after what was found; explain how to get a GPU when there is none."""
        self.gpus = gpus
        combo = self.fields["device"]
        best = gpus[0].label if gpus else "CPU"
        labels = {"auto": f"Automatic ({best})", "cpu": "CPU", "gpu": gpus[0].label if gpus else "GPU (none found)"}
        for i in range(combo.count()):
            combo.setItemText(i, labels.get(combo.itemData(i), combo.itemText(i)))
        combo.model().item(combo.findData("gpu")).setEnabled(bool(gpus))
        if gpus:
            self.device_note.setText(f"Found {len(gpus)} GPU{'s' if len(gpus) > 1 else ''}.")
        else:
            hint = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(no_gpu_hint()))
            self.device_note.setText("No GPU found: training runs on the CPU, which is slow (the lite "
                                     "architecture helps). " + hint)

    def problems(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for spec in PARAMS:
            try:
                coerce_param(spec.name, self.raw(spec.name))
            except ValueError as exc:
                found[spec.name] = _field_message(spec.name, str(exc))
        if self.gpus == [] and self.raw("device") == "gpu":
            found["device"] = "No GPU is visible; choose Automatic or CPU."
        return found

    def warnings(self) -> dict[str, str]:
        """Valid values far outside the range that trains well: shown beside the field, Start still works."""
        found: dict[str, str] = {}
        for spec in PARAMS:
            try:
                warning = spec.unusual(coerce_param(spec.name, self.raw(spec.name)))
            except ValueError:
                continue  # an error, shown as one
            if warning:
                found[spec.name] = _field_message(spec.name, warning)
        return found

    def set_locked(self, busy: bool, mode: str) -> None:
        self._busy, self._mode = busy, mode
        self._apply_enabled()

    def _apply_enabled(self) -> None:
        busy, resume = self._busy, self._mode == "resume"
        # The sliders' captions and values grey out with them: a grey groove alone reads as enabled.
        for w in (self.preset_combo, self.save_preset_button, self.strength, self.brush, self.strength_caption,
                  self.strength_value, self.brush_caption, self.brush_value):
            w.setEnabled(not (busy or resume))
            w.update()
        for name, field in self.fields.items():
            # A resumed run keeps its settings; a fine-tune's weights fit only their own network;
            # epochs count only while Steps is 0.
            fixed = ((resume and name != "max-steps") or (self._mode == "fine-tune" and name == "architecture")
                     or (name == "epochs" and self.raw("steps") != 0))
            field.setEnabled(not busy and not fixed)
