"""The Stylize view's right column: which style, and the controls after training.

Strength, colours, brush size, and a second style mixed in.

Strength and a mix of results re-blend cached results at once; a new brush size
or a new blend of weights runs the network, so those speak only when the slider
is let go (each result is kept, so going back is instant).
"""

from __future__ import annotations

from typing import Callable, Sequence

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QSlider, QVBoxLayout, QWidget

from mlabs_desktop.core.stylize.controls import weights_related
from mlabs_desktop.core.stylize.stylizer import BlendOptions
from mlabs_desktop.gui.kit.common import narrow_combo
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.stylize.style_picker import StylePicker

BRUSH_STEPS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
NO_MIX = "Nothing"
BLEND_TIP = ("Blend the two networks' weights into one network, for styles fine-tuned from the same model: "
             "the result is one style in between, not two laid over each other")
NOT_SIBLINGS = "Only for two styles fine-tuned from the same model (Train > Fine-tune from a library model)"


class CaptionedSlider(QObject):
    """A caption, the value in words on the right, and a slider below: two rows of its owner's grid."""

    moved = Signal(int)     # every position, while dragging too
    settled = Signal(int)   # a position the user stopped at: let go, or a key or click

    def __init__(self, caption: str, steps: int, value: int, tip: str, words: Callable[[int], str],
                 grid: QGridLayout, row: int, parent: QObject | None = None):
        super().__init__(parent)
        self.caption = QLabel(caption, toolTip=tip)
        self.value = QLabel(alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=steps, value=value,
                              pageStep=max(1, steps // 10), toolTip=tip)
        self.slider.setAccessibleName(caption)
        self._words = words
        self.value.setText(words(value))
        self.slider.valueChanged.connect(self._on_value)
        self.slider.sliderReleased.connect(lambda: self.settled.emit(self.slider.value()))
        grid.addWidget(self.caption, row, 0)
        grid.addWidget(self.value, row, 1)
        grid.addWidget(self.slider, row + 1, 0, 1, 2)

    def _on_value(self, position: int) -> None:
        self.value.setText(self._words(position))
        self.moved.emit(position)
        if not self.slider.isSliderDown():
            self.settled.emit(position)

    def parts(self) -> tuple[QWidget, ...]:
        return self.caption, self.value, self.slider

    def set_enabled(self, enabled: bool) -> None:
        for widget in self.parts():
            widget.setEnabled(enabled)


class MixControl(QObject):
    """"Mix with" a second style, how much of it, and whether to blend the networks' weights instead of results.

    ``changed`` fires when what must run changes, or the amount of a mix of results
    changes (instant: the view re-blends); a blend of weights waits for the slider to rest.
    """

    changed = Signal()

    def __init__(self, grid: QGridLayout, row: int, parent: QObject | None = None):
        super().__init__(parent)
        self._models: dict = {}
        self._style: str | None = None
        self._enabled = True
        self.caption = QLabel("Mix with")
        self.combo = narrow_combo(QComboBox(toolTip="A second style laid over the first; pick Nothing for one style"))
        self.combo.setAccessibleName("Mix with")
        self.combo.addItem(NO_MIX)
        self.combo.currentIndexChanged.connect(self._on_style)
        grid.addWidget(self.caption, row, 0)
        grid.addWidget(self.combo, row, 1)
        self.amount = CaptionedSlider("Amount", 20, 10, "How much of the second style: 0 % is the first style alone",
                                      lambda v: f"{v * 5} %", grid, row + 1, self)
        self.amount.moved.connect(self._on_moved)
        self.amount.settled.connect(self._on_settled)
        self.weights = QCheckBox("Blend the networks", toolTip=NOT_SIBLINGS)
        self.weights.toggled.connect(self._on_weights)
        self._wants_weights = False  # the user's choice, kept while a second style that cannot blend is picked
        grid.addWidget(self.weights, row + 3, 0, 1, 2)
        self._update()

    def set_models(self, models: Sequence) -> None:
        self._models = {m.name: m for m in models}
        self._refill()

    def set_style(self, style: str | None) -> None:
        """The first style changed: it cannot be mixed with itself, and siblings may differ."""
        self._style = style
        self._refill()

    def second(self) -> str | None:
        return None if self.combo.currentIndex() <= 0 else self.combo.currentText()

    def fraction(self) -> float:
        return self.amount.slider.value() / 20

    def blends_weights(self) -> bool:
        return self.weights.isEnabled() and self.weights.isChecked()

    def _refill(self) -> None:
        keep = self.second()
        names = [name for name in self._models if name != self._style]
        blocked = self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems([NO_MIX, *names])
        self.combo.setCurrentIndex(names.index(keep) + 1 if keep in names else 0)
        self.combo.blockSignals(blocked)
        self._update()

    def _on_weights(self, checked: bool) -> None:
        self._wants_weights = checked
        self.changed.emit()

    def _on_style(self) -> None:
        self._update()
        self.changed.emit()

    def _on_moved(self) -> None:
        if self.second() is not None and not self.blends_weights():
            self.changed.emit()  # a mix of results re-blends while dragging

    def _on_settled(self) -> None:
        if self.second() is not None and self.blends_weights():
            self.changed.emit()  # a blend of weights runs once the slider rests

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        self._update()

    def _update(self) -> None:
        self.caption.setEnabled(self._enabled)
        self.combo.setEnabled(self._enabled)
        second = self.second() if self._enabled else None
        first = self._models.get(self._style or "")
        siblings = bool(second and first and weights_related(first, self._models[second]))
        for widget in (*self.amount.parts(), self.weights):  # shown once there is something to mix
            widget.setVisible(second is not None)
        blocked = self.weights.blockSignals(True)
        self.weights.setEnabled(siblings)
        self.weights.setChecked(siblings and self._wants_weights)
        self.weights.blockSignals(blocked)
        self.weights.setToolTip(BLEND_TIP if siblings else NOT_SIBLINGS)


class StylePanel(QWidget):
    """Which style, how strong, whose colours, what brush size, and what is mixed in.

    ``blendChanged``: strength or colours (re-blend); ``lookChanged``: the brush or the
    mix (`look` says what to show; the view asks the queue for it).
    """

    styleChosen = Signal(str)
    blendChanged = Signal()
    lookChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.picker = StylePicker()
        self.picker.styleChosen.connect(self.styleChosen)
        controls = QGridLayout()
        controls.setContentsMargins(0, 4, 0, 0)
        controls.setVerticalSpacing(6)
        controls.setColumnStretch(1, 1)
        self.strength = CaptionedSlider("Strength", 100, 100, "How much of the style to apply; 0 % is the original "
                                        "photo", lambda v: f"{v} %", controls, 0, self)
        self.strength.moved.connect(self.blendChanged)
        self.preserve = QCheckBox("Preserve colours", toolTip="Keep the photo's own colours and take only the "
                                                              "brushwork (brightness) from the style")
        self.preserve.toggled.connect(self.blendChanged)
        controls.addWidget(self.preserve, 2, 0, 1, 2)
        controls.setRowMinimumHeight(3, 8)
        self.brush = CaptionedSlider("Brush size", len(BRUSH_STEPS) - 1, BRUSH_STEPS.index(1.0),
                                     "The size of the brush strokes: 2× paints strokes twice as large. Each size "
                                     "runs the style once; going back to one is instant",
                                     lambda i: f"{BRUSH_STEPS[i]:g}×", controls, 4, self)
        self.brush.settled.connect(self.lookChanged)
        controls.setRowMinimumHeight(6, 8)
        self.mix = MixControl(controls, 7, self)
        self.mix.changed.connect(self.lookChanged)
        title = QLabel("<b>Style</b>")
        title.setContentsMargins(2, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(title)
        layout.addWidget(self.picker, 1)
        layout.addLayout(controls)
        self.setMinimumWidth(236)

    def set_models(self, models: Sequence) -> None:
        self.picker.set_models(models)
        self.mix.set_models(models)
        self.mix.set_style(self.picker.current())

    def options(self) -> BlendOptions:
        return BlendOptions(self.strength.slider.value() / 100.0, self.preserve.isChecked())

    def look(self) -> Look:
        """The style picked, with the brush size and mix set here."""
        second = self.mix.second()
        return Look(self.picker.current(), BRUSH_STEPS[self.brush.slider.value()], second,
                    self.mix.fraction() if second else 0.0, bool(second) and self.mix.blends_weights())

    def set_blend_enabled(self, enabled: bool) -> None:
        """The controls mean something only once there is a style; they look it, captions too."""
        for control in (self.strength, self.brush):
            control.set_enabled(enabled)
        self.preserve.setEnabled(enabled)
        self.mix.set_enabled(enabled)
