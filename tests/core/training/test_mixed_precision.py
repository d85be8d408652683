"""Mixed bfloat16 training: where it is the default, and that it reaches the loss float32 training reaches."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLES, tiny_config, write_photos
from mlabs_desktop.core.hardware import cpu_info
from mlabs_desktop.core.hardware.devices import DeviceInfo
from mlabs_desktop.core.networks.precision import training_precision
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.training.trainer import Trainer


def test_the_policy_each_device_trains_in(monkeypatch):
    cpu = DeviceInfo("cpu", "CPU")
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)
    assert training_precision(cpu) == "mixed_bfloat16"
    assert training_precision(cpu, "float32") == "float32"
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # measured under TensorFlow only
    assert training_precision(cpu) == "float32"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: False)
    assert training_precision(cpu) == "float32"
    gpus = {(8, 6): "mixed_bfloat16", (7, 5): "mixed_float16", (6, 1): "float32"}
    for capability, policy in gpus.items():
        assert training_precision(DeviceInfo("gpu", "GPU", compute_capability=capability)) == policy
    assert training_precision(DeviceInfo("gpu", "GPU", compute_capability=(9, 0)), "float32") == "float32"


def float32_loss(model, photos: np.ndarray, style, vgg) -> float:
    """The model's total loss on ``photos``, all in float32, as float32 training measures it."""
    import keras

    from mlabs_desktop.core.images.decode import load_image
    from mlabs_desktop.core.networks import loss_network
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import assign
    from mlabs_desktop.core.training.losses import LossWeights, gram_numpy, perceptual_losses

    net = build_transform_network(model.manifest.architecture, model.manifest.input_scale)
    assign(net, model.load_weights(), model.name)
    loss_net = loss_network.build_loss_network(loss_network.load_vgg19_weights(vgg))
    style_rgb = load_image(style, max_size=128).rgb
    features = loss_net(style_rgb[None])
    targets = {n: gram_numpy(keras.ops.convert_to_numpy(features[n])[0]) for n in loss_network.STYLE_LAYERS}
    styled = net(photos)
    losses = perceptual_losses(styled, loss_net(styled), loss_net(photos)[loss_network.CONTENT_LAYER], targets,
                               loss_network.CONTENT_LAYER, LossWeights(7.5, 1e2, 2e2))
    return float(keras.ops.convert_to_numpy(losses["total"]))


HAS_BFLOAT16 = cpu_info.cpu_has_bfloat16()  # read at import, before the autouse fixture patches it


@pytest.mark.heavy
@pytest.mark.skipif(not HAS_BFLOAT16, reason="this CPU has no bfloat16 units: training stays in float32 here, "
                                             "and emulated bfloat16 would only make the test slow")
def test_mixed_training_reaches_the_float32_loss(vgg_h5, tmp_path, monkeypatch):
    """Same start, same batches; each result judged by the float32 loss on photos it did not train on.

    At this size, 60 steps leave much to chance: over seeds 0-4 mixed ended 24 % below to 4 % above float32
    (seed 0: +0.02 %), so the bound here catches training that fails, not a 1 % difference. The 1 % is measured
    at 128 px over 200 steps in docs/decisions/mixed-training-cpu.md.
    """
    from mlabs_desktop.core.images.decode import load_image

    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)
    photos = write_photos(tmp_path / "photos", count=12, size=(64, 48))
    held_out = write_photos(tmp_path / "held", count=4, size=(32, 32), seed=9)
    batch = np.stack([load_image(p).rgb for p in sorted(held_out.iterdir())])
    logs: dict[str, list[str]] = {}
    losses = {}
    for precision in ("float32", "auto"):
        logs[precision] = []
        config = tiny_config(SAMPLES / "swirls.jpg", photos, vgg_h5, name=precision, precision=precision, steps=60,
                             max_steps=0, checkpoint_iterations=60, seed=0)
        model = Trainer(config, library=Library(),
                        on_event=lambda e, out=logs[precision]: out.append(getattr(e, "message", ""))).run()
        losses[precision] = float32_loss(model, batch, SAMPLES / "swirls.jpg", vgg_h5)
    assert any("in mixed bfloat16" in line for line in logs["auto"])
    assert not any("mixed" in line for line in logs["float32"])
    assert losses["auto"] <= losses["float32"] * 1.25, losses
