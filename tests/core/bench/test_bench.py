"""Bench pieces that the quick command-line run leaves out."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.bench.measure import bench_convolutions
from mlabs_desktop.core.hardware.devices import import_keras_quietly


def test_convolutions_alone_count_every_convolution_once():
    import_keras_quietly()
    from mlabs_desktop.core.networks.transform import (build_transform_network, conv_multiply_adds,
                                                       multiply_adds_per_pixel)

    net = build_transform_network("lite", input_shape=(64, 64))
    total = sum(conv_multiply_adds(layer) for layer in net.layers)
    assert total == multiply_adds_per_pixel("lite") * 64 * 64
    result = bench_convolutions("lite", (64, 64), repeats=1)
    assert result["seconds"] > 0
    assert abs(result["gflops"] - 2 * total / result["seconds"] / 1e9) < 0.1
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
