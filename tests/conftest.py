"""Shared test set-up: offscreen Qt, an isolated user-data home, quiet TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import sys
from pathlib import Path as _Path

import pytest

_TESTS = _Path(__file__).resolve().parent
# Tests mirror the package in folders; they import shared helpers (tests/*.py) and, in a few places,
# each other's fixtures by module name, so every test folder is importable.
for _folder in sorted({path.parent for path in _TESTS.rglob("test_*.py")} - {_TESTS}, reverse=True):
    sys.path.insert(0, str(_folder))
sys.path.insert(0, str(_TESTS))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "heavy: takes 15 s or more on 2 cores; started before the others")
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    # pytest-qt makes its QApplication without the app's start-up: guard the test process too.
    from mlabs_desktop.gui.kit.pyside_guard import keep_singletons_alive

    keep_singletons_alive()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heavy tests go first: one handed out last keeps a worker busy long after the other has finished."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(autouse=True)
def float32_unless_asked(monkeypatch: pytest.MonkeyPatch):
    """Results must not depend on whether the test machine's CPU has bfloat16: tests stylize in
    float32 unless they ask for bfloat16 themselves (tests/core/networks/test_precision.py), and train in
    float32 (mixed bfloat16 is the default on such CPUs). A test that gives the CPU bfloat16 gives it AMX
    too (bfloat16 then pays without timing it) unless it says otherwise (test_bfloat16_speed.py)."""
    from mlabs_desktop.core.hardware import cpu_info

    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: False)
    monkeypatch.setattr(cpu_info, "cpu_has_amx_bfloat16", lambda: True)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own MLABS_DESKTOP_HOME: library, cache and config never leak."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MLABS_DESKTOP_HOME", str(home))
    return home


# ---------------------------------------------------------------- shared data
import shutil
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


@pytest.fixture(scope="session")
def vgg_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weights VGG19 in Keras's notop layout (full real shapes)."""
    from vgg_fixtures import write_keras_notop_h5

    path = tmp_path_factory.mktemp("vgg") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras_notop_h5(path)
    return path


def write_photos(folder: Path, count: int = 6, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """Small smooth random 'photos' (gradients plus noise), saved as JPEG and PNG."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    for i in range(count):
        base = np.stack([x * rng.uniform(2, 5), y * rng.uniform(2, 5), (x + y) * rng.uniform(1, 3)], -1)
        pixels = (base + rng.normal(0, 20, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / (f"photo{i}.jpg" if i % 2 == 0 else f"photo{i}.png"))
    return folder


@pytest.fixture(scope="session")
def photos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def style_image() -> Path:
    return SAMPLES / "swirls.jpg"


def tiny_config(style: Path, photos: Path, vgg: Path, **changes):
    from mlabs_desktop.core.config import TrainingConfig

    # style_scale 0.25: the style's Gram matrices from a 128x96 copy, not 512x384. Each run builds
    # them eagerly through VGG19, which took over a second of every tiny run's five.
    base = dict(style=str(style), train_path=str(photos), vgg_path=str(vgg), image_size=32, batch_size=2,
                epochs=1, checkpoint_iterations=2, max_steps=2, architecture="lite", name="tiny",
                test=str(SAMPLES / "chelsea.jpg"), seed=1, style_scale=0.25, precision="float32")
    base.update(changes)
    return TrainingConfig(**base)


@pytest.fixture(scope="session")
def _trained_tiny_model(tmp_path_factory: pytest.TempPathFactory, vgg_h5: Path, photos_dir: Path,
                        style_image: Path) -> Path:
    """Train one tiny model per session (a few seconds); tests get copies."""
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.training.trainer import Trainer

    library = Library(tmp_path_factory.mktemp("session-library"))
    model = Trainer(tiny_config(style_image, photos_dir, vgg_h5), library=library).run()
    return model.folder


@pytest.fixture
def tiny_model(_trained_tiny_model: Path, isolated_home: Path):
    """A small trained model named 'tiny' in this test's own library."""
    from mlabs_desktop.core.library.store import Library

    library = Library()
    shutil.copytree(_trained_tiny_model, library.root / _trained_tiny_model.name)
    return library.get("tiny")
