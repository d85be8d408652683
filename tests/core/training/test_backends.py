"""The same networks, losses and trainer on Keras's PyTorch and JAX backends.

Each backend runs in its own interpreter (Keras picks its backend at import).
Skipped when the backend's package is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/tests")
from pathlib import Path
import numpy as np
from conftest import tiny_config
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.stylize.stylizer import Stylizer
from mlabs_desktop.core.training.trainer import Trainer

style, photos, vgg, home = (Path(a) for a in sys.argv[2:6])
losses = []
config = tiny_config(style, photos, vgg, name="other-backend", max_steps=4, epochs=5, learning_rate=1e-2,
                     checkpoint_iterations=2, architecture="default")
model = Trainer(config, on_event=lambda e: losses.append(getattr(e, "total_loss", None)),
                library=Library(home)).run()
out = Stylizer(model).run(np.full((21, 17, 3), 100.0, np.float32))
import keras
from mlabs_desktop.core.networks.transform import build_transform_network
start = build_transform_network("default", seed=model.manifest.provenance["seed"])
trained = model.load_weights()
moved = max(float(np.abs(trained[v.path] - keras.ops.convert_to_numpy(v.value)).max()) for v in start.weights)
print("RESULT " + json.dumps({"backend": keras.backend.backend(), "losses": [l for l in losses if l is not None],
                              "shape": list(out.shape), "finite": bool(np.isfinite(out).all()),
                              "weights_moved": moved}))
"""


@pytest.mark.parametrize("backend, package", [("torch", "torch"), ("jax", "jax")])
def test_train_and_stylize_on_another_backend(backend, package, vgg_h5, photos_dir, style_image, tmp_path):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install {package}) ")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(style_image), str(photos_dir),
                             str(vgg_h5), str(tmp_path)], capture_output=True, text=True, env=env, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    assert data["backend"] == backend
    assert len(data["losses"]) == 4 and all(l == l for l in data["losses"])
    assert data["shape"] == [21, 17, 3] and data["finite"]
    assert data["weights_moved"] > 1e-4  # the optimizer's updates reached the saved weights
