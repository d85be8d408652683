"""bfloat16 stylizing: used only where the hardware has it and the model's output stays within the gate."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.hardware import cpu_info
from mlabs_desktop.core.networks import precision
from mlabs_desktop.core.hardware.devices import DeviceInfo
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.stylize.stylizer import Stylizer


def test_psnr_matches_its_definition():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (8, 8, 3))
    b = a + rng.normal(0, 2, a.shape)
    mse = np.mean((np.clip(a, 0, 255) - np.clip(b, 0, 255)) ** 2)
    assert precision.psnr_db(a, b) == pytest.approx(10 * np.log10(255**2 / mse))
    assert precision.psnr_db(a, a) == float("inf")


def test_sample_photos_are_real_photos_of_one_size():
    photos = precision.sample_photos()
    assert len(photos) >= 4
    assert {p.shape for p in photos} == {(240, 320, 3)}
    assert all(p.std() > 10 for p in photos)  # photographs, not flat fills


def test_support_follows_the_hardware(monkeypatch):
    assert precision.bfloat16_supported(DeviceInfo("gpu", "A100", 0, (8, 0)))
    assert not precision.bfloat16_supported(DeviceInfo("gpu", "V100", 0, (7, 0)))
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: False)
    assert not precision.bfloat16_supported(DeviceInfo("cpu", "CPU"))


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Treat this CPU as having bfloat16 (it computes the same either way, only faster with AVX512-BF16)."""
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)


def _counting_measure(monkeypatch):
    calls = []
    real = precision.measure_fidelity
    monkeypatch.setattr(precision, "measure_fidelity", lambda *a: calls.append(1) or real(*a))
    return calls


def test_auto_uses_bfloat16_only_when_the_model_passes_the_gate(tiny_model, bf16_cpu, monkeypatch):
    calls = _counting_measure(monkeypatch)
    monkeypatch.setattr(precision, "PSNR_GATE_DB", 1000.0)  # no real output passes this
    assert Stylizer(tiny_model, "cpu", precision="auto").precision == "float32"
    monkeypatch.setattr(precision, "PSNR_GATE_DB", 0.0)     # and every output passes this
    fast = Stylizer(tiny_model, "cpu", precision="auto")
    assert fast.precision == "bfloat16"
    assert len(calls) == 2  # the gate is part of the cache key: each gate measured once
    Stylizer(tiny_model, "cpu", precision="auto")
    assert len(calls) == 2  # the verdict for these weights is cached


def test_bfloat16_output_is_close_to_float32(tiny_model, bf16_cpu):
    photo = precision.sample_photos()[0]
    exact = Stylizer(tiny_model, "cpu", precision="float32").run(photo)
    fast = Stylizer(tiny_model, "cpu", precision="bfloat16").run(photo)
    assert fast.shape == exact.shape and np.isfinite(fast).all()
    assert not np.array_equal(fast, exact)  # really computed in bfloat16
    assert precision.psnr_db(exact, fast) > 20


def test_without_bfloat16_hardware(tiny_model, monkeypatch):
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: False)
    assert Stylizer(tiny_model, "cpu", precision="auto").precision == "float32"
    with pytest.raises(UserError, match="bfloat16"):
        Stylizer(tiny_model, "cpu", precision="bfloat16")
    with pytest.raises(UserError, match="--precision"):
        Stylizer(tiny_model, "cpu", precision="half")


def test_auto_falls_back_to_float32_when_the_bfloat16_network_cannot_be_built(tiny_model, bf16_cpu, monkeypatch, caplog):
    def broken(*args):
        raise ValueError("Only input tensors may be passed as positional arguments")  # as Keras said once

    monkeypatch.setattr(precision, "build_reduced_network", broken)
    stylizer = Stylizer(tiny_model, "cpu", precision="auto")
    assert stylizer.precision == "float32" and stylizer.run(precision.sample_photos()[0]).ndim == 3
    assert "stylizing in float32" in caplog.text
    with pytest.raises(ValueError):  # asked for by name, bfloat16 is not silently replaced
        Stylizer(tiny_model, "cpu", precision="bfloat16")


@pytest.mark.heavy
def test_the_gate_judges_trained_weights_and_random_ones_are_not_the_test(vgg_h5, photos_dir, style_image):
    """An untrained network amplifies rounding at every layer; a few dozen steps of training already tame it."""
    from conftest import tiny_config
    from mlabs_desktop.core.networks.inference import make_forward
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import assign
    from mlabs_desktop.core.training.trainer import Trainer

    def fidelity(net):
        reduced = precision.reduced_forward("lite", 1 / 255, net.get_weights())
        return precision.measure_fidelity(make_forward(net), reduced, precision.sample_photos())

    trained = Trainer(tiny_config(style_image, photos_dir, vgg_h5, name="gate", steps=40, max_steps=0,
                                  checkpoint_iterations=1000)).run()
    net = build_transform_network("lite")
    assign(net, trained.load_weights(), "gate")
    random_init = fidelity(build_transform_network("lite", seed=0))
    judged = fidelity(net)
    assert judged.passes and not random_init.passes  # measured: 42.9 dB after 20 steps, 31.4 dB untrained
    assert judged.psnr_db > random_init.psnr_db + 5


def test_where_bfloat16_is_slower_auto_keeps_float32_and_asking_still_works(tiny_model, bf16_cpu, monkeypatch):
    from mlabs_desktop.core.hardware import bfloat16_speed

    monkeypatch.setattr(cpu_info, "cpu_has_amx_bfloat16", lambda: False)  # AVX512-BF16 alone
    monkeypatch.setattr(bfloat16_speed, "measure_speedup", lambda: 0.6)  # as measured without AMX
    calls = _counting_measure(monkeypatch)
    assert Stylizer(tiny_model, "cpu", precision="auto").precision == "float32"
    assert not calls  # not even the fidelity check: speed rules it out first
    assert Stylizer(tiny_model, "cpu", precision="bfloat16").precision == "bfloat16"
