"""The fused instance norm of bfloat16 inference computes what the `keras.ops` formula computes."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.networks import precision
from mlabs_desktop.core.networks.fused_norm import FusedInstanceNormalization
from mlabs_desktop.core.networks.inference import make_forward
from mlabs_desktop.core.networks.transform import ARCHITECTURES, build_transform_network


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_the_fused_kernel_normalises_each_image_as_the_formula_does(architecture):
    photos = np.random.default_rng(0).uniform(0, 255, (2, 48, 64, 3)).astype(np.float32)
    net = build_transform_network(architecture, seed=1)
    fused = build_transform_network(architecture, norm_layer=FusedInstanceNormalization)
    fused.set_weights(net.get_weights())
    formula, kernel = make_forward(net), make_forward(fused)
    for i in range(2):  # one image: the fused kernel, in float32 here
        assert np.abs(kernel(photos[i:i + 1]) - formula(photos[i:i + 1])).max() < 0.05
    assert np.array_equal(kernel(photos), formula(photos))  # a batch: statistics per image, by the formula


def test_the_bfloat16_network_runs_the_fused_kernel_where_it_is_wide_enough():
    import tensorflow as tf

    net = precision.build_reduced_network("tiny", 1 / 255)  # 8, 16 and 32 channels
    norms = [layer for layer in net.layers if "norm" in layer.name]
    assert norms and all(isinstance(layer, FusedInstanceNormalization) for layer in norms)
    graph = tf.function(lambda x: net(x, training=False)).get_concrete_function(
        tf.TensorSpec([None, None, None, 3], tf.float32)).graph
    library = graph.as_graph_def().library.function  # the kernel sits in a branch taken for one image
    fused = [node for function in library for node in function.node_def if node.op.startswith("FusedBatchNorm")]
    assert len(fused) == len(norms) - 2  # all but the two 8-channel layers, where the formula was faster
