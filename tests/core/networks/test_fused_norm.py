"""The fused instance norm of bfloat16 inference computes what the `keras.ops` formula computes."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.networks import precision
from mlabs_desktop.core.networks.fused_norm import FusedInstanceNormalization
from mlabs_desktop.core.networks.inference import make_forward
from mlabs_desktop.core.networks.transform import ARCHITECTURES, InstanceNormalization, build_transform_network


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_the_fused_kernel_normalises_each_image_as_the_formula_does(architecture):
    photos = np.random.default_rng(0).uniform(0, 255, (2, 48, 64, 3)).astype(np.float32)
    net = build_transform_network(architecture, seed=1)
    fused = build_transform_network(architecture, norm_layer=FusedInstanceNormalization)
    fused.set_weights(net.get_weights())
    formula, kernel, single = make_forward(net), make_forward(fused), make_forward(fused, batch=1)
    for i in range(2):  # one image: the fused kernel, in float32 here, behind a branch and traced for one
        assert np.abs(kernel(photos[i:i + 1]) - formula(photos[i:i + 1])).max() < 0.05
        assert np.abs(single(photos[i:i + 1]) - formula(photos[i:i + 1])).max() < 0.05
    assert np.array_equal(kernel(photos), formula(photos))  # a batch: statistics per image, by the formula


def test_the_bfloat16_network_runs_the_fused_kernel_in_every_norm():
    import tensorflow as tf

    net = precision.build_reduced_network("tiny", 1 / 255)  # 8, 16 and 32 channels
    norms = [layer for layer in net.layers if "norm" in layer.name]
    assert norms and all(isinstance(layer, FusedInstanceNormalization) for layer in norms)
    graph = tf.function(lambda x: net(x, training=False)).get_concrete_function(
        tf.TensorSpec([None, None, None, 3], tf.float32)).graph
    library = graph.as_graph_def().library.function  # the kernel sits in a branch taken for one image
    fused = [node for function in library for node in function.node_def if node.op.startswith("FusedBatchNorm")]
    assert len(fused) == len(norms) + 2  # the two 8-channel layers: statistics, then normalising


def test_grouped_norms_keep_the_shape_the_layers_after_them_need():
    """A branch's result has no static shape; without it tiny's convolutions went to XLA and its norms unfused."""
    import tensorflow as tf

    net = precision.build_reduced_network("tiny", 1 / 255)
    graph = tf.function(lambda x: net(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, None, None, 3], tf.float32)).graph.as_graph_def()
    library = graph.library.function
    assert not [f.signature.name for f in library if "xla" in f.signature.name.lower()]
    assert len([n for n in graph.node if n.op in ("If", "StatelessIf")]) == 2  # the two 8-channel norms only
    feeding = {node.name: node.op for node in graph.node}
    fused_relus = [n for n in graph.node if n.op == "Relu" and feeding[n.input[0].split(":")[0]] == "FusedBatchNormV3"]
    assert len(fused_relus) == 8  # every ReLU after a 16- or 32-channel norm


@pytest.mark.parametrize("channels", [8, 3])  # tiny's widest layers; classic's output
@pytest.mark.parametrize("size", [(24, 32), (5, 7)])  # the second's pixels do not group: the formula's
def test_other_widths_pool_the_statistics_of_pixel_groups_exactly(size, channels):
    """8 channels run as 16 (pixels in pairs), 3 as 48; the pooled statistics are each channel's own."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, *size, channels)) * np.arange(1, channels + 1) + rng.uniform(-9, 9, channels)
    x[:, :, ::2] += 5  # groups whose members differ: their means' spread is part of the channel's variance
    x = x.astype(np.float32)
    formula, fused = InstanceNormalization(), FusedInstanceNormalization()
    formula.build(x.shape), fused.build(x.shape)
    for layer in (formula, fused):
        layer.set_weights([np.linspace(-1, 1, channels).astype(np.float32),
                           np.linspace(0.5, 2, channels).astype(np.float32)])
    single = make_forward(fused, channels=channels, batch=1)
    assert np.abs(single(x) - formula(x).numpy()).max() < 1e-4


def test_traced_for_one_image_the_kernels_need_no_branch():
    """Without the branch each kernel feeds its ReLU directly, which TensorFlow fuses into one kernel."""
    import tensorflow as tf

    net = precision.build_reduced_network("default", 1 / 255)
    graph = tf.function(lambda x: net(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, None, None, 3], tf.float32)).graph.as_graph_def()
    ops = [node.op for node in graph.node]
    assert ops.count("FusedBatchNormV3") == 15 and not graph.library.function
    relus = [node for node in graph.node if node.op == "Relu"]
    feeding = {node.name: node.op for node in graph.node}
    assert len(relus) == 10 and all(feeding[relu.input[0].split(":")[0]] == "FusedBatchNormV3" for relu in relus)
