"""Perceptual losses against independent NumPy computations (design.md, "Losses").

Inputs are random float64 arrays rounded to float32; the NumPy references compute in
float64 from the same float32 values, so the only differences are float32 round-off.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mlabs_desktop.core.training.losses import (LossWeights, content_loss, gram, gram_numpy, perceptual_losses,
                                                style_loss, tv_loss)

RTOL = 2e-5  # float32 sums of a few thousand terms


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float64).astype(np.float32)


def _np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _dtype(x) -> str:
    return keras.backend.standardize_dtype(x.dtype)


def l2_loss(t: np.ndarray) -> float:
    """``tf.nn.l2_loss``: sum(t**2) / 2."""
    return float(np.sum(np.asarray(t, np.float64) ** 2) / 2)


def np_gram(features: np.ndarray) -> np.ndarray:
    """Per-sample F^T F / (H*W*C), F reshaped to (H*W, C); float64."""
    f = np.asarray(features, np.float64)
    b, h, w, c = f.shape
    flat = f.reshape(b, h * w, c)
    return np.einsum("bpi,bpj->bij", flat, flat) / (h * w * c)


def np_content(pred, target, weight) -> float:
    d = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    return weight * float(np.mean(d**2))


def np_style(predicted: dict, targets: dict, weight: float) -> float:
    """``style_weight * sum_layers sum_batch sum((G_b - A)^2) / C^2 / batch_size``."""
    total, batch = 0.0, None
    for name, a in targets.items():
        g = np_gram(predicted[name])
        batch, c = g.shape[0], g.shape[-1]
        for b in range(batch):
            total += float(np.sum((g[b] - np.asarray(a, np.float64)) ** 2)) / c**2
    return weight * total / batch


def np_style_reference(predicted: dict, targets: dict, weight: float, batch_size: int) -> float:
    """Engstrom's formulation: ``2 * l2_loss(grams - style_gram) / style_gram.size`` per layer."""
    losses = []
    for name, style_gram in targets.items():
        grams = np_gram(predicted[name])
        style_gram = np.asarray(style_gram, np.float64)
        losses.append(2 * l2_loss(grams - style_gram[None]) / style_gram.size)
    return weight * sum(losses) / batch_size


def np_tv_reference(images, weight: float) -> float:
    """Engstrom's TV: ``tv_weight * 2 * (x_tv / tv_x_size + y_tv / tv_y_size) / batch``."""
    x = np.asarray(images, np.float64)
    b, h, w, c = x.shape
    tv_y_size = (h - 1) * w * c  # _tensor_size(preds[:, 1:, :, :]), batch excluded
    tv_x_size = h * (w - 1) * c  # _tensor_size(preds[:, :, 1:, :])
    y_tv = l2_loss(x[:, 1:, :, :] - x[:, :-1, :, :])
    x_tv = l2_loss(x[:, :, 1:, :] - x[:, :, :-1, :])
    return weight * 2 * (x_tv / tv_x_size + y_tv / tv_y_size) / b


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _style_case(rng, batch=3, dtype=np.float32, scale=1.0):
    """Style layers with different H, W and C each, plus the content layer (ignored by style)."""
    shapes = {"relu1_1": (12, 10, 4), "relu2_1": (6, 5, 7), "relu3_1": (3, 3, 9)}
    predicted = {n: (np.abs(rng.normal(0, scale, (batch, *s)))).astype(dtype) for n, s in shapes.items()}
    predicted["relu4_2"] = rng.normal(0, scale, (batch, 3, 3, 5)).astype(dtype)
    targets = {}
    for n, (h, w, c) in shapes.items():
        f = np.abs(rng.normal(0, scale, (h * w, c)))
        targets[n] = _f32(f.T @ f / f.size)
    return predicted, targets


# ----------------------------------------------------------------- gram


def test_gram_matches_numpy(rng):
    f = _f32(rng.normal(0, 3, (3, 7, 5, 6)))
    g = gram(f)
    assert _dtype(g) == "float32"
    assert tuple(g.shape) == (3, 6, 6)
    np.testing.assert_allclose(_np(g), np_gram(f), rtol=RTOL, atol=1e-6)
    for b in range(3):  # per sample, not pooled over the batch
        flat = f[b].reshape(-1, 6).astype(np.float64)
        np.testing.assert_allclose(_np(g)[b], flat.T @ flat / (7 * 5 * 6), rtol=RTOL, atol=1e-6)


def test_gram_numpy_equals_gram_on_one_image(rng):
    f = _f32(rng.normal(0, 10, (9, 11, 8)))
    target = gram_numpy(f)
    assert target.dtype == np.float32 and target.shape == (8, 8)
    np.testing.assert_allclose(target, _np(gram(f[None]))[0], rtol=RTOL, atol=1e-5)
    np.testing.assert_allclose(target, np_gram(f[None])[0], rtol=1e-6)


# ----------------------------------------------------------------- content


def test_content_loss_matches_numpy(rng):
    pred = _f32(rng.normal(0, 20, (2, 6, 4, 16)))
    target = _f32(rng.normal(0, 20, (2, 6, 4, 16)))
    got = content_loss(pred, target, 7.5)
    assert _dtype(got) == "float32"
    assert float(_np(got)) == pytest.approx(np_content(pred, target, 7.5), rel=RTOL)
    # Engstrom: content_weight * 2 * l2_loss(diff) / (tensor size * batch)
    ref = 7.5 * 2 * l2_loss(pred.astype(np.float64) - target) / pred.size
    assert float(_np(got)) == pytest.approx(ref, rel=RTOL)


# ----------------------------------------------------------------- style


def test_style_loss_matches_numpy(rng):
    predicted, targets = _style_case(rng, batch=3, scale=5.0)
    got = style_loss(predicted, targets, 100.0)
    assert _dtype(got) == "float32"
    want = np_style(predicted, targets, 100.0)
    ref = np_style_reference(predicted, targets, 100.0, batch_size=3)
    assert want == pytest.approx(ref, rel=1e-12)  # the two formulations are the same number
    assert float(_np(got)) == pytest.approx(want, rel=RTOL)
    assert want > 0


def test_style_loss_divides_by_batch_and_per_layer_channels(rng):
    predicted, targets = _style_case(rng, batch=2)
    # Doubling the batch with identical samples leaves the loss unchanged.
    doubled = {n: np.concatenate([f, f]) for n, f in predicted.items()}
    single = float(_np(style_loss(predicted, targets, 1.0)))
    assert float(_np(style_loss(doubled, targets, 1.0))) == pytest.approx(single, rel=RTOL)
    # Each layer separately: sum over batch of sum((G-A)^2) / C^2 / B, with its own C.
    parts = [float(_np(style_loss(predicted, {n: t}, 1.0))) for n, t in targets.items()]
    assert sum(parts) == pytest.approx(single, rel=RTOL)
    for (n, t), part in zip(targets.items(), parts):
        g = np_gram(predicted[n])
        assert part == pytest.approx(np.sum((g - t) ** 2) / t.shape[0] ** 2 / 2, rel=RTOL)


def test_style_loss_zero_when_grams_match(rng):
    predicted, _ = _style_case(rng, batch=1)
    targets = {n: gram_numpy(predicted[n][0]) for n in ("relu1_1", "relu2_1", "relu3_1")}
    assert float(_np(style_loss(predicted, targets, 100.0))) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------- total variation


def test_tv_loss_matches_reference_definition(rng):
    images = _f32(rng.uniform(-20, 280, (3, 9, 7, 3)))
    got = tv_loss(images, 200.0)
    assert _dtype(got) == "float32"
    want = np_tv_reference(images, 200.0)
    assert float(_np(got)) == pytest.approx(want, rel=RTOL)
    # design.md's wording: mean of squared horizontal + mean of squared vertical differences.
    x = images.astype(np.float64)
    means = np.mean((x[:, :, 1:] - x[:, :, :-1]) ** 2) + np.mean((x[:, 1:] - x[:, :-1]) ** 2)
    assert want == pytest.approx(200.0 * means, rel=1e-12)


def test_tv_loss_non_square_distinguishes_axes(rng):
    # Only vertical change: x_tv == 0, y_tv / ((H-1)*W*C) carries everything.
    ramp = np.broadcast_to(np.arange(5, dtype=np.float64)[None, :, None, None] * 3.0, (2, 5, 8, 3))
    images = _f32(ramp)
    assert float(_np(tv_loss(images, 1.0))) == pytest.approx(9.0, rel=1e-6)
    assert np_tv_reference(images, 1.0) == pytest.approx(9.0, rel=1e-12)


# ----------------------------------------------------------------- all together


def test_perceptual_losses_total_is_sum_of_terms(rng):
    predicted, targets = _style_case(rng, batch=2, scale=4.0)
    styled = _f32(rng.uniform(0, 255, (2, 16, 12, 3)))
    content_features = _f32(rng.normal(0, 4, predicted["relu4_2"].shape))
    weights = LossWeights(content=7.5, style=100.0, tv=200.0)
    out = perceptual_losses(styled, predicted, content_features, targets, "relu4_2", weights)
    assert set(out) == {"content", "style", "tv", "total"}
    values = {k: float(_np(v)) for k, v in out.items()}
    assert all(_dtype(v) == "float32" for v in out.values())
    assert values["content"] == pytest.approx(np_content(predicted["relu4_2"], content_features, 7.5), rel=RTOL)
    assert values["style"] == pytest.approx(np_style(predicted, targets, 100.0), rel=RTOL)
    assert values["tv"] == pytest.approx(np_tv_reference(styled, 200.0), rel=RTOL)
    assert values["total"] == pytest.approx(values["content"] + values["style"] + values["tv"], rel=1e-6)


# ----------------------------------------------------------------- float16 inputs


def test_losses_are_float32_for_float16_inputs(rng):
    # Magnitudes whose squares and Gram sums overflow float16 (max 65504): each term must
    # be computed in float32 from the float16 values, not squared in float16.
    predicted, targets = _style_case(rng, batch=2, dtype=np.float16, scale=300.0)
    targets16 = {n: t.astype(np.float16) for n, t in targets.items()}
    with np.errstate(over="ignore"):
        assert np.isinf(np.square(predicted["relu1_1"])).any()
    content16 = rng.normal(0, 300, predicted["relu4_2"].shape).astype(np.float16)
    styled16 = rng.uniform(-22.5, 277.5, (2, 10, 8, 3)).astype(np.float16)

    g = gram(predicted["relu2_1"])
    c = content_loss(predicted["relu4_2"], content16, 7.5)
    s = style_loss(predicted, targets16, 100.0)
    t = tv_loss(styled16, 200.0)
    out = perceptual_losses(styled16, predicted, content16, targets16, "relu4_2", LossWeights(7.5, 100.0, 200.0))
    for value in (g, c, s, t, *out.values()):
        assert _dtype(value) == "float32"
        assert np.isfinite(_np(value)).all()
    np.testing.assert_allclose(_np(g), np_gram(predicted["relu2_1"]), rtol=1e-4)
    assert float(_np(c)) == pytest.approx(np_content(predicted["relu4_2"], content16, 7.5), rel=1e-4)
    assert float(_np(s)) == pytest.approx(np_style(predicted, targets16, 100.0), rel=1e-4)
    assert float(_np(t)) == pytest.approx(np_tv_reference(styled16, 200.0), rel=1e-4)
