"""What a reference checkpoint holds: the TF1 files Engstrom's fast-style-transfer writes, and its variables.

The files (layout in design.md)::

    checkpoint                        text index: model_checkpoint_path: "..."
    fns.ckpt.index                    tensor-bundle index
    fns.ckpt.data-00000-of-00001      the numbers
    fns.ckpt.meta                     the graph (optional; never needed here)

Its 48 variables are unnamed (``Variable``, ``Variable_1``, ... ``Variable_47``),
three per layer of `transform.LAYER_ORDER`: conv kernel, instance-norm shift,
instance-norm scale. Conv kernels are ``[h, w, in, out]``; conv-transpose
kernels ``[h, w, out, in]``, which is also Keras 3's ``Conv2DTranspose`` layout,
so every array maps to our ``classic`` network unchanged. Adam slots
(``Variable/Adam``...) and ``beta1_power``/``beta2_power`` are ignored.

TensorFlow is imported only inside functions: this module imports without it.
"""

from __future__ import annotations

import functools
import re

from mlabs_desktop.core.errors import UserError

STATE_FILE = "checkpoint"
PREFIX_NAME = "fns.ckpt"
DATA_SUFFIX = ".data-00000-of-00001"
# Every file a reference checkpoint may consist of.
REFERENCE_FILES = (STATE_FILE, f"{PREFIX_NAME}.index", f"{PREFIX_NAME}{DATA_SUFFIX}", f"{PREFIX_NAME}.meta")
VARIABLE_COUNT = 48

IGNORED_VARIABLES = re.compile(r"(^|/)(beta[12]_power(_\d+)?|global_step)$|/Adam(_\d+)?$|/(Momentum|RMSProp)(_\d+)?$")
UNNAMED_VARIABLE = re.compile(r"^Variable(_(\d+))?$")


def reference_names() -> list[tuple[str, str]]:
    """``(reference variable name, our Keras variable path)`` in the reference's order."""
    from mlabs_desktop.core.networks.transform import LAYER_ORDER

    paths_ = []
    for layer in LAYER_ORDER:
        paths_ += [f"{layer}/kernel", f"{layer}_norm/shift", f"{layer}_norm/scale"]
    return [("Variable" if i == 0 else f"Variable_{i}", path) for i, path in enumerate(paths_)]


def reference_shapes() -> dict[str, tuple[int, ...]]:
    """Our variable path -> shape, for the ``classic`` network (same as the reference's)."""
    return dict(_classic_shapes())


@functools.lru_cache(maxsize=1)
def _classic_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    from mlabs_desktop.core.networks.transform import weight_shapes

    return tuple(weight_shapes("classic").items())


def load_tensorflow():
    """TensorFlow, configured as the app runs it; a `UserError` saying how to install it when missing."""
    try:
        from mlabs_desktop.core.hardware.devices import configure_tensorflow

        return configure_tensorflow()
    except ImportError:
        raise UserError("reading or writing TensorFlow checkpoints needs the tensorflow package "
                        "(pip install tensorflow)") from None


def short_error(exc: BaseException) -> str:
    """The first line of an error's message (TensorFlow's run to pages)."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(text.strip().splitlines()[:1])[:300]
