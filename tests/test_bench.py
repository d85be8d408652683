"""Bench pieces that the quick command-line run leaves out."""

from __future__ import annotations

from mlabs_desktop.core.bench import bench_convolutions
from mlabs_desktop.core.devices import import_keras_quietly


def test_convolutions_alone_count_every_convolution_once():
    import_keras_quietly()
    from mlabs_desktop.core.networks import build_transform_network, conv_multiply_adds, multiply_adds_per_pixel

    net = build_transform_network("lite", input_shape=(64, 64))
    total = sum(conv_multiply_adds(layer) for layer in net.layers)
    assert total == multiply_adds_per_pixel("lite") * 64 * 64
    result = bench_convolutions("lite", (64, 64), repeats=1)
    assert result["seconds"] > 0
    assert abs(result["gflops"] - 2 * total / result["seconds"] / 1e9) < 0.1
    conv_names = {layer.name for layer in net.layers if conv_multiply_adds(layer)}
    assert set(result["slowest_layers"]) <= conv_names and len(result["slowest_layers"]) == 2
