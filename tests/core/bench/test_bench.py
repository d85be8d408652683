"""Bench pieces that the quick command-line run leaves out."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.bench.measure import bench_convolutions
from mlabs_desktop.core.hardware.rates import LIMIT_CONV
from mlabs_desktop.core.hardware.devices import import_keras_quietly


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_convolutions_alone_count_every_convolution_once(policy):
    keras = import_keras_quietly()
    from mlabs_desktop.core.networks.transform import (build_transform_network, conv_multiply_adds,
                                                       multiply_adds_per_pixel)

    net = build_transform_network("lite", input_shape=(64, 64))
    total = sum(conv_multiply_adds(layer) for layer in net.layers)
    assert total == multiply_adds_per_pixel("lite") * 64 * 64
    result = bench_convolutions("lite", (64, 64), repeats=1, policy=policy)
    assert result["computed_in"] == ["float32" if policy == "float32" else "bfloat16"]
    assert keras.config.dtype_policy().name == "float32"  # put back
    assert result["seconds"] > 0
    assert result["gflops"] == pytest.approx(2 * total / result["seconds"] / 1e9, rel=0.01)  # seconds are rounded
    conv_names = {layer.name for layer in net.layers if conv_multiply_adds(layer)}
    assert set(result["slowest_layers"]) <= conv_names and len(result["slowest_layers"]) == 2


@pytest.mark.parametrize("architecture", ["classic", "default", "lite"])
def test_plain_layers_are_the_same_network_built_as_defined(architecture):
    """The bench's reference layout: no folded or blocked layers, the same weights, the same output."""
    import_keras_quietly()
    from mlabs_desktop.core.networks.block_conv import BlockConv2D
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.upsample_conv import UpsampleConv2D

    ours = build_transform_network(architecture, seed=1)
    plain = build_transform_network(architecture, seed=2, plain_layers=True)
    assert [v.path for v in plain.weights] == [v.path for v in ours.weights]
    assert not any(isinstance(layer, (BlockConv2D, UpsampleConv2D)) for layer in plain.layers)
    assert any(isinstance(layer, (BlockConv2D, UpsampleConv2D)) for layer in ours.layers)
    plain.set_weights(ours.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (1, 40, 56, 3)).astype(np.float32)
    assert np.abs(np.asarray(ours(x)) - np.asarray(plain(x))).max() < 0.01  # levels of 0..255


def test_vector_extensions_come_from_the_cpu_flags(monkeypatch):
    from mlabs_desktop.core.hardware import cpu_info

    text = "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx avx2 avx512f avx512_bf16 sse4_2\n"
    monkeypatch.setattr(cpu_info, "_cpuinfo", lambda: text)
    assert cpu_info.cpu_model() == "Test CPU 9000"
    assert cpu_info.vector_extensions() == ["avx512_bf16", "avx512f", "avx2", "avx", "sse4_2"]
    monkeypatch.setattr(cpu_info, "_cpuinfo", lambda: "")  # not Linux, or unreadable
    assert cpu_info.vector_extensions() == [] and cpu_info.cpu_model()


def test_the_bfloat16_limit_is_measured_where_the_device_has_it(monkeypatch):
    from mlabs_desktop.core.bench.measure import reduced_precision_limits
    from mlabs_desktop.core.bench.report import format_report
    from mlabs_desktop.core.hardware.devices import DeviceInfo
    from mlabs_desktop.core.hardware import cpu_info

    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: False)
    assert reduced_precision_limits(DeviceInfo("cpu", "CPU"), 256, quick=True) == {"supported": False}
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)  # any CPU computes it, if slowly
    monkeypatch.setattr(cpu_info, "cpu_has_float16", lambda: False)
    assert "float16" not in reduced_precision_limits(DeviceInfo("cpu", "CPU"), 256, quick=True)["matmul_gflops"]
    monkeypatch.setattr(cpu_info, "cpu_has_float16", lambda: True)
    limits = reduced_precision_limits(DeviceInfo("cpu", "CPU"), 256, quick=True)
    assert limits["supported"] and min(limits["matmul_gflops"].values()) > 0 and min(limits["conv_gflops"].values()) > 0
    assert set(limits["conv_gflops"]) == {"float32", "bfloat16", "float16"}
    report = {"machine": {"cpu": "x", "processor": "x", "cpu_count": 2, "keras_backend": "tensorflow",
                          "device": "CPU", "vector_extensions": []}, "matmul_gflops": 1, "matmul_gflops_after": 1,
              "reduced_precision_limits": limits, "architectures": {}, "peak_rss_mb": 1,
              "reference": {"stylize_mp_per_s_1024x680": 0.5, "train_step_seconds_b4_256": 4.6}}
    text = format_report(report)
    assert "bfloat16 limit: matmul" in text and "float16 (not used by the networks): matmul" in text
    assert limits["conv"]["in_a_row"] < LIMIT_CONV.in_a_row  # quick: fewer, on machines that emulate bfloat16
    assert f"({limits['conv']['in_a_row']} in a row)" in text  # the sum after one convolution is not all it times
    assert "does not use bfloat16 here" not in text
    limits["used_by_default"] = False  # AVX512-BF16 without AMX, timed slower
    assert "the app does not use bfloat16 here by default: under 1.2x float32" in format_report(report)


def test_the_reference_timed_in_the_run_is_set_beside_classic():
    from mlabs_desktop.core.bench.report import _measured_reference

    report = {"reference_measured": {"checkout": "/src/fst", "stylize_seconds_1024x680": 0.9,
                                     "stylize_mp_per_s_1024x680": 0.774, "train_step_seconds_b4_256": 2.4},
              "architectures": {"classic": {
                  "stylize": {"1024x680": {"seconds": 0.6}},
                  "stylize_bfloat16": {"supported": True, "bfloat16_seconds": 0.18},
                  "train_step": {"image_size": 256, "seconds": 1.2, "precision": "mixed_bfloat16"}}}}
    text = "\n".join(_measured_reference(report))
    assert "0.900 s per 1024x680 photo" in text and "2.400 s per training step" in text
    assert "1.50x the reference's speed in float32, 5.00x in bfloat16" in text
    assert "training step here (mixed_bfloat16): 2.00x the reference's speed" in text
    del report["reference_measured"]["train_step_seconds_b4_256"]
    assert "training step not timed (give --reference-vgg)" in "\n".join(_measured_reference(report))
    report["reference_measured"] = {"error": "AttributeError: module 'vgg' has no attribute 'net'"}
    assert _measured_reference(report) == ["reference implementation: its own code failed, so it was not timed "
                                           "(AttributeError: module 'vgg' has no attribute 'net')"]
