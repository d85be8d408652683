"""The training set-up form: images, parameters, output name, and the checks that gate Start.

It puts together `SourcesGroup` (style, photos, preview photo) and `ParamsPanel`
(preset, sliders, every flag), adds the model name and the VGG19 weights, and
re-validates everything on every edit: problems are shown in red under their
field, "not chosen yet" only in the hint by the Start button, and `is_valid()`
gates Start. It also knows the three kinds of run: new, resume and fine-tune.
Nothing here imports TensorFlow; slow reads run in workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from mlabs_desktop.core.networks import loss_network as vgg
from mlabs_desktop.core.config import PARAMS_BY_NAME, TrainingConfig, apply_params, model_steps, run_end
from mlabs_desktop.core import messages
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import format_steps
from mlabs_desktop.core.library.store import Model
from mlabs_desktop.core.training.model_writer import resume_config
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.train.inputs import (ERROR_STYLE, WARNING_STYLE, form_group, note_label, set_note_style,
                                            with_error)
from mlabs_desktop.gui.train.params import ParamsPanel
from mlabs_desktop.gui.train.sources import SourcesGroup


def _warm_up() -> None:
    """Worker thread: import the trainer's modules once the devices are known.

    An import holds the GIL while it loads and compiles, stalling the window for up to
    a few hundred milliseconds; done here, in the background, Start does not pay for it.
    """
    from mlabs_desktop.core.training import trainer  # noqa: F401 - warm-up import


SHORT_MODEL_STEPS = 1000  # fewer steps than this rarely give a usable style


class TrainForm(QWidget):
    """The left column of the Train view; `config()` is what Start trains."""

    changed = Signal()              # contents or validity changed

    def __init__(self, services: Services, parent: QWidget | None = None):
        super().__init__(parent)
        self.services = services
        self.mode = "new"           # new | resume | fine-tune
        self.resume_name: str | None = None
        self.init_from: str | None = None
        self.errors: dict[str, str] = {}
        self.error_labels: dict[str, QLabel] = {}
        self._vgg_path: Path | None = None
        self._vgg_error: str | None = None
        self._name_touched = False
        self._model_names: set[str] | None = None
        self._busy = False
        self._warming = False
        self._build()
        self.refresh_vgg()
        services.devices.found.connect(self._devices_found)
        services.devices.failed.connect(self._devices_failed)

    # The parameter editors live in `ParamsPanel`; these make them reachable from here.
    @property
    def fields(self) -> dict[str, QWidget]:
        return self.params_panel.fields

    def raw(self, name: str) -> Any:
        return self.params_panel.raw(name)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params_panel.set_params(params)

    def apply_preset(self, name: str | None) -> None:
        self.params_panel.apply_preset(name)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 4, 0)
        self._layout.setSpacing(14)
        self.banner = QFrame(objectName="Banner")
        self.banner.setStyleSheet("QFrame#Banner { background: #e8f0fe; border: 1px solid #aac4f5;"
                                  " border-radius: 6px; }")
        row = QHBoxLayout(self.banner)
        row.setContentsMargins(12, 8, 8, 8)
        self.banner_label = QLabel(wordWrap=True)
        self.banner_cancel = QPushButton("New model instead")
        self.banner_cancel.setToolTip("Forget this model and set up a new training run.")
        self.banner_cancel.clicked.connect(self.clear_mode)
        row.addWidget(self.banner_label, 1)
        row.addWidget(self.banner_cancel, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.hide()
        self._layout.addWidget(self.banner)
        self.vgg_warning = QLabel(wordWrap=True, objectName="VggWarning")
        self.vgg_warning.setStyleSheet("QLabel#VggWarning { background: #fff4e5; color: #7a4100; border: 1px solid"
                                       " #f3c98b; border-radius: 6px; padding: 8px 10px; }")
        self.vgg_warning.hide()
        self._layout.addWidget(self.vgg_warning)
        self.sources = SourcesGroup(self.services.workers)
        self.sources.refused.connect(self.services.hub.error.emit)
        self.sources.changed.connect(self.validate)
        self.sources.style_chosen.connect(self._suggest_name)
        self.error_labels.update(self.sources.error_labels)
        self._layout.addWidget(self.sources)
        self.params_panel = ParamsPanel(self.services)
        self.params_panel.changed.connect(self.validate)
        self.error_labels.update(self.params_panel.error_labels)
        self._layout.addWidget(self.params_panel)
        self._build_output()
        self._layout.addStretch(1)

    def _build_output(self) -> None:
        box, form = form_group("Output")
        self._layout.addWidget(box)
        self.name_edit = QLineEdit(placeholderText="Suggested from the style image's name")
        self.name_edit.setToolTip("The name the model gets in the library.")
        self.name_edit.textEdited.connect(self._name_edited)
        cell, self.error_labels["name"] = with_error(self.name_edit)
        form.addRow("Model name", cell)
        self.vgg_note = note_label()
        form.addRow("Loss network", self.vgg_note)

    # ------------------------------------------------------------------ values
    def config(self) -> TrainingConfig:
        values = {PARAMS_BY_NAME[k].field: v for k, v in self.params_panel.params().items()}
        preset = self.params_panel.preset_combo.currentData() or None
        return TrainingConfig(style=self.sources.style_path, train_path=self.sources.train_path(),
                              vgg_path=str(self._vgg_path) if self._vgg_path else None,
                              test=self.sources.test_path(), name=self.name_edit.text().strip(),
                              init_from=self.init_from, preset=preset, **values)

    # ------------------------------------------------------------------ name, VGG, devices
    def _name_edited(self, _: str) -> None:
        self._name_touched = True
        self.validate()

    def _suggest_name(self, style: str) -> None:
        if self._name_touched or self.mode == "resume":
            return
        self.name_edit.setText(self.services.library().unique_name(Path(style).stem or "style"))
        self.validate()

    def invalidate_library(self) -> None:
        """The library changed: names may be taken now, and the settings may point at new weights."""
        self._model_names = None
        self.refresh_vgg()

    def _name_taken(self, name: str) -> bool:
        if self._model_names is None:
            self._model_names = {m.name.casefold() for m in self.services.library().models()}
        return name.casefold() in self._model_names

    def refresh_vgg(self) -> None:
        """Find the VGG19 file (file checks only, no TensorFlow) and say what to do when it is missing."""
        try:
            self._vgg_path, self._vgg_error = vgg.find_vgg_weights(self.services.settings.vgg_path), None
            self.vgg_note.setText(f"VGG19 weights: {self._vgg_path.name}")
            self.vgg_note.setToolTip(str(self._vgg_path))
        except UserError:
            self._vgg_path = None
            self._vgg_error = messages.vgg_missing(messages.APP, vgg.KERAS_VGG19_URL) + "."
            self.vgg_note.setText("Missing: see the note at the top.")
        self.validate()

    def start_device_detection(self) -> None:
        """Ask for the device list (detecting imports TensorFlow, so it waits until the view is shown)."""
        service = self.services.devices
        if service.devices is not None:
            self._devices_found(service.devices)
        elif service.error is not None:
            self._devices_failed(service.error)
        service.request()

    def devices_requested(self) -> bool:
        return self.services.devices.requested

    def _devices_found(self, devices: list) -> None:
        self.params_panel.set_devices([d for d in devices if d.kind == "gpu"])
        self.validate()
        if not self._warming:
            self._warming = True
            self.services.workers.run(_warm_up, lambda _: None, name="warm-up")

    def _devices_failed(self, message: str) -> None:
        self.params_panel.device_note.setText(f"Could not list the devices: {message}")

    # ------------------------------------------------------------------ validation
    def validate(self) -> bool:
        errors = self.sources.problems() | self.params_panel.problems()
        prompts = set(self.sources.prompt_keys)
        name = self.name_edit.text().strip()
        if not name:
            errors["name"] = "Give the model a name."
            prompts.add("name")
        elif self.mode != "resume" and self._name_taken(name):
            errors["name"] = f"A model named “{name}” already exists: choose another name."
        warnings = self.params_panel.warnings() | self._length_notes()
        for key, label in self.error_labels.items():
            red = key in errors and key not in prompts  # "not chosen yet" is no error: the hint says it
            text = errors[key] if red else warnings.get(key, "")
            label.setText(text)
            set_note_style(label, ERROR_STYLE if red else WARNING_STYLE)
            label.setVisible(bool(text))
        if self._vgg_error:
            errors = {"vgg": self._vgg_error} | errors  # the first thing to fix
        self.vgg_warning.setText(self._vgg_error or "")
        self.vgg_warning.setVisible(bool(self._vgg_error))
        # Real errors before prompts, so the hint by the Start button names what is wrong first.
        errors = dict(sorted(errors.items(), key=lambda kv: kv[0] in prompts))
        self.errors = errors
        self.changed.emit()
        return not errors

    def is_valid(self) -> bool:
        return not self.errors

    def first_problem(self) -> str:
        return next(iter(self.errors.values()), "")

    def _length_notes(self) -> dict[str, str]:
        """Say before Start when a new run will be far shorter than a usable style needs, or than its model."""
        scan = self.sources.scan
        if scan is None or not scan.paths or self.mode == "resume":
            return {}
        try:
            config = apply_params(TrainingConfig(), self.params_panel.params())
        except ValueError:
            return {}  # the field's own error says what is wrong
        images, notes = len(scan.paths), {}
        total, run = model_steps(config, images), run_end(config, images)
        if not config.steps and total < SHORT_MODEL_STEPS:
            epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
            notes["epochs"] = (f"Only {format_steps(total)}: {epochs} of {images:,} photos "
                               f"at a batch of {config.batch_size}. A usable style takes a few thousand steps: "
                               "set Steps instead.")
        if run < total:
            notes["max-steps"] = (f"This run stops after {run:,} of the model's {total:,} steps; "
                                  "Resume in the Library continues it.")
        return notes

    # ------------------------------------------------------------------ modes
    def load_for_resume(self, model: Model) -> None:
        """Show a model's settings to continue it; only max-steps may change."""
        config = resume_config(model, 0)
        self._fill_from(config, model.name)
        self.mode, self.resume_name, self.init_from = "resume", model.name, None
        steps = model.manifest.statistics.get("steps", 0)
        self._show_banner(f"Continuing “{model.name}” from step {steps:,}. It keeps the settings it was "
                          "trained with; only “Max steps” can change.")
        self._apply_lock()
        self.validate()

    def load_for_fine_tune(self, model: Model) -> None:
        """Start a new model from this one's weights and parameters."""
        config = resume_config(model, 0)
        try:
            config = apply_params(config, {k: v for k, v in model.manifest.parameters.items()
                                           if k in PARAMS_BY_NAME})
        except ValueError:
            pass  # keep what resume_config could read
        self._fill_from(config, self.services.library().unique_name(f"{model.name} fine-tuned"))
        self.mode, self.resume_name, self.init_from = "fine-tune", None, model.name
        self._show_banner(f"Fine-tuning from “{model.name}”: the new model starts from its weights. "
                          "Change the style, photos or parameters as you like.")
        self._apply_lock()
        self.validate()

    def _fill_from(self, config: TrainingConfig, name: str) -> None:
        if config.style and Path(config.style).is_file():
            self.sources.set_style(config.style)
        if config.train_path:
            self.sources.set_train_folder(config.train_path)
        self.sources.set_test(config.test if config.test and Path(config.test).is_file() else None)
        self.name_edit.setText(name)
        self._name_touched = True
        # The user's Max steps is about this run, not the model: it stays what they typed.
        self.set_params(config.parameters() | {"max-steps": self.raw("max-steps")})

    def _show_banner(self, text: str) -> None:
        self.banner_label.setText(text)
        self.banner.show()

    def set_busy(self, busy: bool) -> None:
        """Lock the editors while a run uses these settings (the form stays readable, in colour)."""
        if busy != self._busy:
            self._busy = busy
            self._apply_lock()

    def _apply_lock(self) -> None:
        locked = self._busy or self.mode == "resume"
        self.sources.set_locked(locked)
        self.params_panel.set_locked(self._busy, self.mode)
        self.name_edit.setEnabled(not locked)
        self.banner_cancel.setEnabled(not self._busy)

    def clear_mode(self) -> None:
        self.mode, self.resume_name, self.init_from = "new", None, None
        self.banner.hide()
        self._apply_lock()
        self._name_touched = False
        if self.sources.style_path:
            self._suggest_name(self.sources.style_path)
        self.validate()

    def workers(self) -> list:
        return list(self.sources.workers)

    def wait_for_workers(self, timeout_ms: int) -> bool:
        return all(w.wait(timeout_ms) for w in self.workers() if w.isRunning())
