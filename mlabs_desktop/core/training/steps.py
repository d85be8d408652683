"""Compiled training steps, one per Keras backend (inference lives in `networks.inference`).

Model and loss code are backend-neutral; only taking gradients and compiling
differ between TensorFlow, PyTorch and JAX, and that difference lives here.
"""

from __future__ import annotations

from typing import Callable, Mapping

import keras
import numpy as np
from keras import ops

from mlabs_desktop.core.hardware.devices import keras_backend
from mlabs_desktop.core.training.losses import LossWeights, perceptual_losses
from mlabs_desktop.core.networks.loss_network import CONTENT_LAYER

LossDict = dict[str, float]
# A step applies its gradients only when the loss is finite and no gradient is beyond this: Adam squares
# them, and above sqrt(float32 max) = 1.8e19 its second moment overflows and the next update is NaN.
GRADIENT_LIMIT = 1e18
APPLIED = "applied"  # the key of the step's result saying whether the weights moved (1.0) or not (0.0)


def healthy(total_loss, grads, optimizer):
    """Whether a step's loss and gradients may touch the weights (a boolean tensor).

    Under float16 loss scaling, overflowing gradients are routine: the `LossScaleOptimizer`
    skips those steps and lowers its scale itself, so only the loss is judged here.
    """
    finite_loss = ops.isfinite(ops.cast(total_loss, "float32"))
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return finite_loss
    largest = ops.max(ops.stack([ops.max(ops.abs(ops.cast(g, "float32"))) for g in grads]))
    # A NaN compares false either way, so `largest <= limit` is false for NaN gradients too.
    return ops.logical_and(finite_loss, largest <= GRADIENT_LIMIT)


def _loss_fn(net, loss_net, style_targets, weights: LossWeights):
    def compute(batch, content_features):
        styled = net(batch, training=True)
        features = loss_net(styled)
        return perceptual_losses(styled, features, content_features, style_targets, CONTENT_LAYER, weights)
    return compute


def make_optimizer(learning_rate: float, net):
    """Adam for ``net``, with loss scaling when the dtype policy computes in float16."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    if keras.config.dtype_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(net.trainable_variables)
    return optimizer


def make_train_step(net, loss_net, style_targets: Mapping[str, np.ndarray], weights: LossWeights,
                    optimizer, jit: bool = False, strategy=None) -> Callable[[np.ndarray], LossDict]:
    """A function taking a float32 0..255 batch, applying one Adam step, returning the losses.

    A step whose loss or gradients are not `healthy` leaves the weights and the
    optimizer untouched; its result says so under `APPLIED` (0.0).

    With a ``tf.distribute`` strategy (TensorFlow only) the global batch is split
    across replicas; each replica's loss is divided by the replica count, so the
    summed gradients are those of the loss averaged over the global batch.
    """
    backend = keras_backend()
    targets = {k: ops.convert_to_tensor(v) for k, v in style_targets.items()}
    compute = _loss_fn(net, loss_net, targets, weights)
    variables = net.trainable_variables
    if not optimizer.built:
        optimizer.build(variables)

    if backend == "tensorflow":
        step = _make_tf_step(loss_net, compute, optimizer, variables, jit, strategy)
    elif backend == "torch":
        import torch

        def step(batch):
            batch = ops.convert_to_tensor(batch)
            with torch.no_grad():
                content = loss_net(batch)[CONTENT_LAYER]
            net.zero_grad()
            losses = compute(batch, content)
            optimizer.scale_loss(losses["total"]).backward()
            grads = [v.value.grad for v in variables]
            ok = bool(healthy(losses["total"], grads, optimizer))
            if ok:
                with torch.no_grad():
                    optimizer.apply(grads, variables)
            return {**{k: v.detach() for k, v in losses.items()}, APPLIED: float(ok)}
    elif backend == "jax":
        step = _make_jax_step(net, loss_net, compute, optimizer)
    else:
        raise RuntimeError(f"unsupported Keras backend {backend!r}")

    def run(batch: np.ndarray) -> LossDict:
        return {k: float(ops.convert_to_numpy(v)) for k, v in step(batch).items()}

    return run


def _make_tf_step(loss_net, compute, optimizer, variables, jit: bool, strategy):
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync if strategy else 1

    def gradients(batch):
        content = loss_net(batch)[CONTENT_LAYER]
        with tf.GradientTape() as tape:
            losses = compute(batch, content)
            scaled = optimizer.scale_loss(losses["total"] / replicas)
        grads = tape.gradient(scaled, variables)
        return losses, grads, tf.cast(tf.logical_not(healthy(losses["total"], grads, optimizer)), tf.float32)

    if strategy is None:
        def one_step(batch):
            losses, grads, bad = gradients(batch)

            def apply():
                optimizer.apply(grads, variables)
                return tf.constant(1.0)

            return {**losses, APPLIED: tf.cond(bad == 0.0, apply, lambda: tf.constant(0.0))}

        return tf.function(one_step, jit_compile=jit, reduce_retracing=True)

    # The optimizer's update aggregates across replicas, which TensorFlow does not allow inside a
    # tf.cond: the replicas' gradients come back first, and the update runs only when all are healthy.
    @tf.function(reduce_retracing=True)
    def distributed_gradients(per_replica_batch):
        losses, grads, bad = strategy.run(gradients, args=(per_replica_batch,))
        losses = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in losses.items()}
        return losses, grads, strategy.reduce(tf.distribute.ReduceOp.SUM, bad, axis=None)

    @tf.function(reduce_retracing=True)
    def distributed_apply(grads):
        strategy.run(lambda g: optimizer.apply(g, variables), args=(grads,))

    def step(batch: np.ndarray):
        if len(batch) % replicas:
            raise ValueError(f"batch of {len(batch)} cannot be split across {replicas} replicas")
        parts = np.split(batch, replicas)
        values = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(parts[ctx.replica_id_in_sync_group]))
        losses, grads, bad = distributed_gradients(values)
        ok = float(bad) == 0.0
        if ok:
            distributed_apply(grads)
        return {**losses, APPLIED: tf.constant(float(ok))}

    return step


def _make_jax_step(net, loss_net, compute, optimizer):
    import jax
    from keras import StatelessScope

    # Every variable travels as an argument, so one jitted function holds the
    # whole step (forward, gradients and Adam) and no weights are baked in as constants.
    trainable, frozen = net.trainable_variables, net.non_trainable_variables
    loss_vars, opt_vars = loss_net.variables, optimizer.variables

    def loss_of(train_values, frozen_values, loss_values, opt_values, batch, content):
        mapping = [*zip(trainable, train_values), *zip(frozen, frozen_values),
                   *zip(loss_vars, loss_values), *zip(opt_vars, opt_values)]
        with StatelessScope(state_mapping=mapping):
            losses = compute(batch, content)
            scaled = optimizer.scale_loss(losses["total"])
        return scaled, losses

    @jax.jit
    def pure_step(train_values, frozen_values, loss_values, opt_values, batch):
        with StatelessScope(state_mapping=list(zip(loss_vars, loss_values))):
            content = loss_net(batch)[CONTENT_LAYER]
        (_, losses), grads = jax.value_and_grad(loss_of, has_aux=True)(
            train_values, frozen_values, loss_values, opt_values, batch, content)
        ok = healthy(losses["total"], grads, optimizer)
        new_train, new_opt = jax.lax.cond(
            ok, lambda: optimizer.stateless_apply(opt_values, grads, train_values),
            lambda: (list(train_values), list(opt_values)))
        return new_train, new_opt, {**losses, APPLIED: ok.astype("float32")}

    def step(batch):
        new_train, new_opt, losses = pure_step(
            [v.value for v in trainable], [v.value for v in frozen], [v.value for v in loss_vars],
            [v.value for v in opt_vars], batch)
        for variable, value in (*zip(trainable, new_train), *zip(opt_vars, new_opt)):
            variable.assign(value)
        return losses

    return step
