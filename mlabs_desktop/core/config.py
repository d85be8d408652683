"""The one description of a training run.

Command-line flags, preset YAML, lab parameters and the app's form all become a
`TrainingConfig`; the trainer takes nothing else. Field names are the flag
names with ``-`` turned into ``_``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

ARCHITECTURES = ("classic", "default", "lite", "tiny")  # as core.networks.transform builds them
IMPORTED_ARCHITECTURES = ("pytorch",)  # built for imported models only, not trained here
DEVICES = ("auto", "cpu", "gpu")
TRAINING_PRECISIONS = ("auto", "float32")
DISTILL_STEPS = 3000  # a fast copy's length unless told; why this many: docs/decisions/fast-copy-precision.md


@dataclass(frozen=True)
class ParamSpec:
    """What a tunable training parameter is, for flags, presets, forms and tooltips."""

    name: str          # the flag name, e.g. "content-weight"
    kind: type         # float, int or str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    trains_well: tuple[float, float] | None = None  # values outside are accepted, with a warning

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    def unusual(self, value: Any) -> str | None:
        """A warning when ``value`` is far outside the range that trains well; None when it is inside."""
        if self.trains_well is None or not isinstance(value, (int, float)):
            return None
        low, high = self.trains_well
        if low <= value <= high:
            return None
        return f"{self.name} {value:g} is far outside the range that trains well ({low:g} to {high:g})"


# The parameters a preset may set (the 2017 MachineLabs lab's flag names). Paths are not among
# them: a preset describes how to train, not on what.
PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("content-weight", float, "How strongly the result keeps the photo's content (VGG relu4_2 features).", 0.0, 1e9,
              trains_well=(0.1, 1e3)),
    ParamSpec("style-weight", float, "How strongly the result takes on the painting's textures and colours (Gram matrices).", 0.0, 1e12,
              trains_well=(1.0, 1e5)),
    ParamSpec("tv-weight", float, "Smoothness (total variation): higher gives smoother, less noisy results.", 0.0, 1e9,
              trains_well=(0.0, 1e4)),
    ParamSpec("learning-rate", float, "How big each learning step is (Adam's step size). Lower is slower but steadier.", 1e-7, 1.0,
              trains_well=(1e-5, 1e-2)),
    ParamSpec("batch-size", int, "Training images per step. Larger needs more GPU memory.", 1, 1024),
    ParamSpec("steps", int, "Train the model this many steps in all, whatever the folder's size (0 = as many as the epochs give).", 0, 10**9),
    ParamSpec("epochs", int, "Passes over the training folder; only when steps is 0.", 1, 100000),
    ParamSpec("checkpoint-iterations", int, "Save a checkpoint and a preview every this many steps.", 1, 10**9),
    ParamSpec("image-size", int, "Training crops are this many pixels square.", 16, 4096),
    ParamSpec("style-scale", float, "Scale the painting by this factor before learning its style: bigger gives bigger brush strokes.", 0.05, 8.0),
    ParamSpec("max-steps", int, "Stop after this many steps of this run (0 = no limit).", 0, 10**9),
    ParamSpec("architecture", str, "Transform network: classic (the reference), default (no checkerboard artefacts), lite (2.5-3x faster), tiny (about 2x faster than lite, for previews, video and slow machines).", choices=ARCHITECTURES),
    ParamSpec("device", str, "Where to train: auto picks a GPU when one is visible.", choices=DEVICES),
    ParamSpec("precision", str, "What training computes in: auto uses mixed precision where it is faster than float32 to the same loss (bfloat16 on Ampere or newer GPUs, on CPUs with AMX, and on CPUs with AVX512-BF16 alone once a first timing finds it pays: about twice as fast; float16 on Volta and Turing GPUs); float32 always computes in full precision.", choices=TRAINING_PRECISIONS),
)
PARAMS_BY_NAME = {p.name: p for p in PARAMS}


@dataclass
class TrainingConfig:
    style: str = ""
    train_path: str = ""
    vgg_path: str | None = None
    checkpoint_dir: str | None = None
    content_weight: float = 7.5
    style_weight: float = 1e2
    tv_weight: float = 2e2
    learning_rate: float = 1e-3
    batch_size: int = 4
    steps: int = 0
    epochs: int = 2
    checkpoint_iterations: int = 2000
    image_size: int = 256
    style_scale: float = 1.0
    max_steps: int = 0
    architecture: str = "default"
    name: str | None = None
    test: str | None = None
    init_from: str | None = None
    device: str = "auto"
    precision: str = "auto"
    preset: str | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "TrainingConfig":
        return dataclasses.replace(self, **changes)

    def parameters(self) -> dict[str, Any]:
        """The tunable parameters, keyed by flag name (what manifests and presets store)."""
        return {p.name: getattr(self, p.field) for p in PARAMS}


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Whole batches in one pass over ``images`` photos (a partial batch is left for the next pass)."""
    return max(1, images // max(1, batch_size))


def model_steps(config: "TrainingConfig", images: int) -> int:
    """How many steps the model trains in all: its ``steps``, or else its epochs over the folder."""
    return config.steps or steps_per_epoch(images, config.batch_size) * config.epochs


def run_end(config: "TrainingConfig", images: int, start_step: int = 0) -> int:
    """The step a run from ``start_step`` ends at: the model's steps, or sooner at ``max_steps``."""
    end = model_steps(config, images)
    return min(end, start_step + config.max_steps) if config.max_steps else end


def unusual_params(config: "TrainingConfig") -> list[str]:
    """A warning for each parameter of ``config`` far outside the range that trains well."""
    return [warning for spec in PARAMS if (warning := spec.unusual(getattr(config, spec.field))) is not None]


def coerce_param(name: str, value: Any) -> Any:
    """Check one parameter value against its spec; raise ValueError with a readable reason."""
    spec = PARAMS_BY_NAME.get(name)
    if spec is None:
        raise ValueError(f"unknown parameter '{name}'")
    if spec.kind is str:
        if not isinstance(value, str) or (spec.choices and value not in spec.choices):
            raise ValueError(f"{name} must be one of {', '.join(spec.choices or ())}, not {value!r}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, not {value!r}")
    try:
        number = float(value) if spec.kind is float else _as_int(value)
    except (TypeError, ValueError):
        kind = "a whole number" if spec.kind is int else "a number"
        raise ValueError(f"{name} must be {kind}, not {value!r}") from None
    if spec.kind is float and not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if spec.minimum is not None and number < spec.minimum:
        raise ValueError(f"{name} must be at least {spec.minimum:g}, not {value!r}")
    if spec.maximum is not None and number > spec.maximum:
        raise ValueError(f"{name} must be at most {spec.maximum:g}, not {value!r}")
    return number


def _as_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    text = str(value).strip()
    as_float = float(text)
    if not as_float.is_integer():
        raise ValueError(value)
    return int(as_float)


def apply_params(config: TrainingConfig, params: dict[str, Any]) -> TrainingConfig:
    """Return ``config`` with ``params`` (flag name -> value) applied, validated."""
    changes = {PARAMS_BY_NAME[name].field if name in PARAMS_BY_NAME else name: coerce_param(name, value)
               for name, value in params.items()}
    return config.replace(**changes)
