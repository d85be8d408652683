"""The perceptual losses, exactly as the reference defines them (0..255 pixel space).

Only ``keras.ops`` is used, so the losses run on every Keras backend. All terms
are computed in float32, whatever the compute dtype of the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from keras import ops


@dataclass(frozen=True)
class LossWeights:
    content: float
    style: float
    tv: float


def gram(features):
    """Gram matrices of a batch of feature maps, normalised by H*W*C: (B, C, C)."""
    f = ops.cast(features, "float32")
    shape = ops.shape(f)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    flat = ops.reshape(f, (b, h * w, c))
    size = ops.cast(h * w * c, "float32")
    return ops.matmul(ops.transpose(flat, (0, 2, 1)), flat) / size


def gram_numpy(features: np.ndarray) -> np.ndarray:
    """The style target's Gram matrix of one image (H, W, C), computed once in NumPy."""
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return (flat.T @ flat / flat.size).astype(np.float32)


def content_loss(predicted, target, weight: float):
    """``weight * mean((F_pred - F_content)^2)`` at the content layer."""
    diff = ops.cast(predicted, "float32") - ops.cast(target, "float32")
    return weight * ops.mean(ops.square(diff))


def style_loss(predicted: Mapping[str, object], targets: Mapping[str, object], weight: float):
    """Sum over style layers of ``sum((G - A)^2) / C^2``, times weight, over the batch size.

    ``targets`` holds one (C, C) Gram matrix per layer, compared with every sample's.
    """
    total = 0.0
    batch = None
    for name, target in targets.items():
        grams = gram(predicted[name])
        batch = ops.cast(ops.shape(grams)[0], "float32")
        channels = ops.cast(ops.shape(grams)[-1], "float32")
        diff = grams - ops.cast(target, "float32")[None]
        total = total + ops.sum(ops.square(diff)) / (channels * channels)
    return weight * total / batch


def tv_loss(images, weight: float):
    """Total variation: mean squared horizontal plus vertical neighbour differences."""
    x = ops.cast(images, "float32")
    dy = x[:, 1:, :, :] - x[:, :-1, :, :]
    dx = x[:, :, 1:, :] - x[:, :, :-1, :]
    return weight * (ops.mean(ops.square(dx)) + ops.mean(ops.square(dy)))


def perceptual_losses(styled, styled_features, content_features, style_targets,
                      content_layer: str, weights: LossWeights) -> dict[str, object]:
    """All terms and their total, keyed ``content``, ``style``, ``tv``, ``total``."""
    content = content_loss(styled_features[content_layer], content_features, weights.content)
    style = style_loss(styled_features, style_targets, weights.style)
    tv = tv_loss(styled, weights.tv)
    return {"content": content, "style": style, "tv": tv, "total": content + style + tv}
