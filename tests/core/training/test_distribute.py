"""Two replicas on two logical CPU devices train exactly like one replica on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]

# One child process for both scenarios: logical devices must be set before TensorFlow starts, and
# each child pays TensorFlow's start-up (seconds) again.
SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/tests")
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from conftest import tiny_config
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.networks import loss_network as vgg
from mlabs_desktop.core.training.losses import LossWeights
from mlabs_desktop.core.networks.transform import build_transform_network
from mlabs_desktop.core.training.steps import APPLIED, make_optimizer, make_train_step
from mlabs_desktop.core.training.trainer import Trainer
from pathlib import Path

style, photos, vgg_path = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
results = {}
for label, devices in (("one", None), ("two", ["/cpu:0", "/cpu:1"])):
    losses, logs = [], []
    config = tiny_config(style, photos, vgg_path, name=label, batch_size=4, max_steps=2, epochs=5,
                         checkpoint_iterations=100, learning_rate=5e-3, seed=3)
    model = Trainer(config, on_event=lambda e: (losses.append(getattr(e, "total_loss", None)),
                                        logs.append(getattr(e, "message", ""))),
                    library=Library(Path(sys.argv[5]) / label), replica_devices=devices).run()
    weights = model.load_weights()
    results[label] = {"losses": [l for l in losses if l is not None], "logs": logs,
                      "checksum": float(sum(np.abs(w).sum() for w in weights.values())),
                      "conv1": weights["conv1/kernel"].ravel().tolist()}

# A NaN in one replica's half of the batch: no replica may update.
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    net = build_transform_network("lite", 1 / 255, seed=1)
    optimizer = make_optimizer(1e-3, net)
loss_net = vgg.build_loss_network(vgg.load_vgg19_weights(vgg_path))
targets = {n: np.eye(c, dtype=np.float32) for n, c in zip(vgg.STYLE_LAYERS, (64, 128, 256, 512, 512))}
step = make_train_step(net, loss_net, targets, LossWeights(7.5, 1e2, 2e2), optimizer, strategy=strategy)
batch = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
poisoned = batch.copy()
poisoned[3, 0, 0, 0] = np.nan  # only the second replica's half
before = [w.copy() for w in net.get_weights()]
refused = step(poisoned)
unchanged = all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
applied = step(batch)
moved = not all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
results["guard"] = {"refused": float(refused[APPLIED]), "unchanged": unchanged,
                    "applied": float(applied[APPLIED]), "moved": moved}
print("RESULT " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def replicas(vgg_h5, photos_dir, style_image, tmp_path_factory) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(style_image), str(photos_dir),
                             str(vgg_h5), str(tmp_path_factory.mktemp("replicas"))], capture_output=True, text=True,
                            env=env, timeout=300)
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert result.returncode == 0 and line, result.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


@pytest.mark.heavy
def test_two_replicas_match_one(replicas):
    one, two = replicas["one"], replicas["two"]
    assert len(one["losses"]) == len(two["losses"]) == 2
    assert any("training on 2 replicas" in m for m in two["logs"]), two["logs"]
    assert not any("replicas" in m for m in one["logs"])
    # The same global batch of 4, split 2 + 2: losses averaged over the global batch agree.
    for a, b in zip(one["losses"], two["losses"]):
        assert abs(a - b) <= 1e-3 * abs(a), (one["losses"], two["losses"])
    assert abs(one["checksum"] - two["checksum"]) <= 1e-4 * abs(one["checksum"])
    # Adam divides each gradient by its own magnitude, so entries whose gradient is
    # near zero move by amounts that float rounding decides (the two runs sum in
    # different orders; on AVX2 machines up to one step, 5e-3). The bulk must agree.
    diffs = np.abs(np.array(one["conv1"]) - np.array(two["conv1"]))
    assert np.median(diffs) < 1e-4, np.median(diffs)
    assert np.quantile(diffs, 0.99) < 1e-3, np.quantile(diffs, 0.99)


@pytest.mark.heavy
def test_a_bad_half_on_one_replica_keeps_every_replica_from_updating(replicas):
    assert replicas["guard"] == {"refused": 0.0, "unchanged": True, "applied": 1.0, "moved": True}
