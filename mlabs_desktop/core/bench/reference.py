"""The reference implementation timed with its own code, from a checkout of Engstrom's fast-style-transfer.

The bench's `REFERENCE` constants were measured on one machine class; given a
checkout (``bench --reference-checkout DIR``), the same run times the reference
itself: its `src/transform.py` network at 1024x680, and a training step of its
`src/optimize.py` loop at batch 4, 256 px, against a MatConvNet VGG19 ``.mat``
(its loss network's only format). Its code runs as it is, in TensorFlow's
graph mode, in float32. Nothing here runs unless asked: it executes code from
the checkout, which the user chose to trust by naming it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from mlabs_desktop.core.errors import UserError

MODULES = ("transform", "vgg", "optimize", "utils")  # the checkout's src/ modules, imported by these names
ENTRY_POINTS = {"transform": "net", "vgg": "net", "optimize": "optimize"}  # what the timing calls in them
# What its code imports beyond NumPy, by import name and package name.
REQUIREMENTS = {"tensorflow": "tensorflow", "scipy": "scipy", "imageio": "imageio", "PIL": "Pillow"}
STEP_SHAPE = (4, 256, 256, 3)    # the reference's own batch and crop
TIMED_STEPS = 4                  # after one step of warm-up


def check_checkout(checkout: Path) -> Path:
    """The checkout's ``src`` folder, or a `UserError` saying what is missing."""
    try:
        folder = Path(checkout).expanduser()
    except RuntimeError:  # "~user" of no such user
        raise UserError(f"{checkout}: no such user's home folder") from None
    if not folder.is_dir():
        raise UserError(f"{checkout}: no such folder")
    src = folder / "src"
    missing = [f"src/{name}.py" for name in MODULES if not (src / f"{name}.py").is_file()]
    missing += [f"{function}() in src/{module}.py" for module, function in ENTRY_POINTS.items()
                if not missing and not re.search(rf"^def {function}\(", _text(src / f"{module}.py"), re.M)]
    if missing:
        raise UserError(f"{checkout} is not a checkout of fast-style-transfer: it has no {', '.join(missing)}")
    return src


def check_requirements() -> None:
    """A `UserError` naming the packages the reference's code imports that are not installed here."""
    absent = [package for module, package in REQUIREMENTS.items() if importlib.util.find_spec(module) is None]
    if absent:
        raise UserError(f"the reference's own code needs {', '.join(absent)}, not installed here: "
                        f"pip install {' '.join(absent)}")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def _reference_modules(src: Path):
    """Import the checkout's modules under their own top-level names, and forget them afterwards."""
    saved = {name: sys.modules.pop(name) for name in MODULES if name in sys.modules}
    sys.path.insert(0, str(src))
    try:
        yield {name: importlib.import_module(name) for name in MODULES}
    except ImportError as error:
        raise UserError(f"the reference's own code needs {error.name}, which is not installed: "
                        f"pip install {error.name}") from None
    finally:
        sys.path.remove(str(src))
        for name in MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def time_reference_stylize(src: Path, size: tuple[int, int] = (1024, 680), repeats: int = 5) -> float:
    """Seconds for one photo through the reference's network, as its evaluate.py runs it (raw 0..255 pixels)."""
    import tensorflow as tf

    from mlabs_desktop.core.hardware.rates import best_time

    with _reference_modules(src) as ref, tf.Graph().as_default(), tf.compat.v1.Session() as session:
        image = tf.compat.v1.placeholder(tf.float32, shape=(1, size[1], size[0], 3))
        styled = ref["transform"].net(image)
        session.run(tf.compat.v1.global_variables_initializer())
        photo = np.random.default_rng(0).uniform(0, 255, (1, size[1], size[0], 3)).astype(np.float32)
        return best_time(lambda: session.run(styled, {image: photo}), repeats)


def time_reference_train_step(src: Path, vgg_mat: Path) -> float:
    """Seconds per step of the reference's own training loop, by its own clock (its ``debug`` output).

    The median of the steps after the first (which builds and warms up). Its
    content photos are 256x256 JPEGs, so decoding them (which it does in the
    loop, one at a time, and inside its clock) costs little beside the step.
    """
    from PIL import Image

    printed = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, _reference_modules(src) as ref:
        rng = np.random.default_rng(1)
        photos = []
        for i in range(STEP_SHAPE[0] * (TIMED_STEPS + 1)):
            path = Path(tmp) / f"photo{i:03d}.jpg"
            Image.fromarray(rng.integers(0, 256, STEP_SHAPE[1:], dtype=np.uint8)).save(path, quality=90)
            photos.append(str(path))
        style = rng.uniform(0, 255, STEP_SHAPE[1:]).astype(np.float32)
        with contextlib.redirect_stdout(printed):
            for _ in ref["optimize"].optimize(photos, style, 7.5, 100.0, 200.0, str(vgg_mat), epochs=1,
                                              print_iterations=10**6, batch_size=STEP_SHAPE[0],
                                              save_path=str(Path(tmp) / "fns.ckpt"), debug=True):
                pass
    steps = [float(m) for m in re.findall(r"batch time: ([0-9.eE+-]+)", printed.getvalue())]
    if len(steps) != TIMED_STEPS + 1:
        raise UserError(f"the reference's training loop reported {len(steps)} step times, not {TIMED_STEPS + 1}: "
                        "is this checkout's src/optimize.py the original?")
    return float(np.median(steps[1:]))


def time_reference(src: Path, vgg_mat: Path | None, repeats: int = 5) -> dict:
    """Both timings (the training step only with a ``.mat``), for the bench's report."""
    seconds = time_reference_stylize(src, repeats=repeats)
    result = {"checkout": str(src.parent), "stylize_seconds_1024x680": round(seconds, 4),
              "stylize_mp_per_s_1024x680": round(1024 * 680 / seconds / 1e6, 3)}
    if vgg_mat is not None:
        result["train_step_seconds_b4_256"] = round(time_reference_train_step(src, vgg_mat), 3)
    return result
