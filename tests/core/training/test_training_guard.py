"""Training never dies of a NaN: constant photos train, a bad step never touches the weights,
and a run that keeps failing stops by itself with the last good weights saved."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import tiny_config, write_photos

# `lite` is `default` at half the width (the same layers, so the same constant-photo path); `tiny` keeps
# the narrowest widths and `classic` the zero padding and transposed convolutions.
ARCHITECTURES = ("classic", "default", "tiny")
SIZE = 32


def _loss_setup(vgg_h5, style_image):
    from mlabs_desktop.core.networks import loss_network as vgg
    from mlabs_desktop.core.images.decode import read_rgb
    from mlabs_desktop.core.images.ops import resize_to
    from mlabs_desktop.core.training.losses import gram_numpy

    loss_net = vgg.build_loss_network(vgg.load_vgg19_weights(vgg_h5))
    style = resize_to(read_rgb(style_image), (96, 72)).astype(np.float32)
    features = loss_net(style[None])
    targets = {n: gram_numpy(np.asarray(features[n])[0]) for n in vgg.STYLE_LAYERS}
    return loss_net, targets


class StepRig:
    """One real training step per architecture, its start weights kept to reset between examples."""

    def __init__(self, vgg_h5, style_image):
        from mlabs_desktop.core.training.losses import LossWeights
        from mlabs_desktop.core.networks.transform import build_transform_network
        from mlabs_desktop.core.training.steps import make_optimizer, make_train_step

        loss_net, targets = _loss_setup(vgg_h5, style_image)
        self.rigs = {}
        for arch in ARCHITECTURES:
            net = build_transform_network(arch, 1 / 255, seed=3)
            optimizer = make_optimizer(1e-3, net)
            step = make_train_step(net, loss_net, targets, LossWeights(7.5, 1e2, 2e2), optimizer)
            self.rigs[arch] = (net, optimizer, step, net.get_weights(), [v.numpy() for v in optimizer.variables])

    def reset(self, arch):
        net, optimizer, step, weights, slots = self.rigs[arch]
        net.set_weights(weights)
        for variable, value in zip(optimizer.variables, slots):
            variable.assign(value)
        return net, optimizer, step


@pytest.fixture(scope="module")
def rig(vgg_h5, style_image):
    return StepRig(vgg_h5, style_image)


@pytest.fixture(scope="module")
def folder_photo(tmp_path_factory) -> np.ndarray:
    """One real photo, as the folder reader decodes it."""
    folder = write_photos(tmp_path_factory.mktemp("guard"), count=1, size=(SIZE, SIZE))
    return np.asarray(Image.open(folder / "photo0.jpg"), np.float32)


def photo_batch(photo: np.ndarray, *others: np.ndarray) -> np.ndarray:
    return np.stack([photo, *others]).astype(np.float32)


# ------------------------------------------------------------------ the root cause

@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("level", [0.0, 128.0, 255.0])
def test_a_constant_photo_in_the_batch_keeps_training_finite(rig, folder_photo, arch, level):
    """Before the fix, `default` and `lite` reached gradients of 1e24 by the second step with a constant
    photo in the batch (reflection padding keeps it constant through all 16 instance norms), and NaN
    weights by the third."""
    from mlabs_desktop.core.training.steps import APPLIED

    net, _, step = rig.reset(arch)
    batch = photo_batch(folder_photo, np.full((SIZE, SIZE, 3), level, np.float32))
    for _ in range(6):
        losses = step(batch)
        assert np.isfinite(losses["total"]) and losses[APPLIED] == 1.0, losses
    assert all(np.isfinite(w).all() for w in net.get_weights())


def test_instance_norm_passes_no_gradient_into_a_constant_channel():
    import tensorflow as tf

    from mlabs_desktop.core.networks.transform import InstanceNormalization

    layer = InstanceNormalization()
    layer.build((1, 8, 8, 2))
    weights = tf.constant(np.random.default_rng(0).normal(size=(1, 8, 8, 2)), tf.float32)
    values = np.random.default_rng(1).normal(size=(1, 8, 8, 2)).astype(np.float32)
    values[..., 0] = 0.3  # channel 0 constant (its mean rounds), channel 1 not
    x = tf.Variable(values)
    with tf.GradientTape(persistent=True) as tape:
        trained = layer(x, training=True)
        inferred = layer(x, training=False)
        trained_loss = tf.reduce_sum(trained * weights)
        inferred_loss = tf.reduce_sum(inferred * weights)
    np.testing.assert_allclose(trained.numpy(), inferred.numpy(), rtol=1e-6, atol=1e-6)  # the reference's values
    g_train = tape.gradient(trained_loss, x).numpy()
    g_infer = tape.gradient(inferred_loss, x).numpy()
    assert np.abs(g_infer[..., 0]).max() > 10  # 1/sqrt(epsilon) = 31.6 times rounding noise's gradient
    assert np.abs(g_train[..., 0]).max() == 0.0
    np.testing.assert_allclose(g_train[..., 1], g_infer[..., 1], rtol=1e-5, atol=1e-6)  # a channel with content
    # scale and shift still learn from the constant channel
    assert np.abs(tape.gradient(trained_loss, layer.shift).numpy()[0]) > 0


# ------------------------------------------------------------------ the guard in every step

def test_a_non_finite_step_does_not_touch_the_weights(rig, folder_photo):
    from mlabs_desktop.core.training.steps import APPLIED

    net, optimizer, step = rig.reset("default")
    step(photo_batch(folder_photo, np.full((SIZE, SIZE, 3), 60.0, np.float32)))  # one good step: Adam has state
    before = [w.copy() for w in net.get_weights()]
    slots = [v.numpy().copy() for v in optimizer.variables]
    poisoned = photo_batch(folder_photo, np.full((SIZE, SIZE, 3), np.nan, np.float32))
    losses = step(poisoned)
    assert losses[APPLIED] == 0.0 and not np.isfinite(losses["total"])
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(slots, optimizer.variables))


images = st.sampled_from(["constant", "noise", "gradient", "checker", "extreme", "sparse"])


def make_image(kind: str, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    if kind == "constant":
        return np.full((SIZE, SIZE, 3), level, np.float32)
    if kind == "noise":
        return rng.uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    if kind == "gradient":
        return np.repeat((x * level / SIZE)[..., None], 3, 2)
    if kind == "checker":
        return np.repeat((((x + y) % 2) * 255)[..., None], 3, 2).astype(np.float32)
    if kind == "extreme":
        return np.where(rng.random((SIZE, SIZE, 1)) < 0.5, 0.0, 255.0).repeat(3, 2).astype(np.float32)
    image = np.full((SIZE, SIZE, 3), level, np.float32)  # "sparse": one bright pixel on a flat field
    image[rng.integers(SIZE), rng.integers(SIZE)] = 255.0 - level
    return image


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(kinds=st.lists(images, min_size=2, max_size=2), level=st.floats(0, 255), seed=st.integers(0, 2**16),
       arch=st.sampled_from(ARCHITECTURES))
def test_any_tiny_batch_gives_finite_loss_and_gradients(rig, kinds, level, seed, arch):
    from mlabs_desktop.core.training.steps import APPLIED

    net, _, step = rig.reset(arch)
    batch = np.stack([make_image(kind, level, seed + i) for i, kind in enumerate(kinds)])
    for _ in range(2):  # the second step is where the constant-photo gradients used to explode
        losses = step(batch)
        assert np.isfinite(losses["total"]) and losses[APPLIED] == 1.0, (kinds, level, losses)
    assert all(np.isfinite(w).all() for w in net.get_weights())


# ------------------------------------------------------------------ whole runs

def write_degenerate(folder):
    """Photo-folder oddities: blank frames, placeholders, tracking pixels, 16-bit and float scans."""
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.iterdir())
    rgb = lambda w, h, v: Image.fromarray(np.full((h, w, 3), v, np.uint8))  # noqa: E731
    rgb(640, 480, 0).save(folder / "black.jpg")
    rgb(300, 200, 255).save(folder / "white.png")
    rgb(64, 64, 128).save(folder / "grey.bmp")
    rgb(1, 1, 200).save(folder / "pixel.png")
    rgb(2000, 1, 90).save(folder / "wide-strip.png")
    rgb(1, 900, 30).save(folder / "tall-strip.png")
    rgb(3, 3, 10).save(folder / "tiny.png")
    near = np.full((96, 96, 3), 100, np.uint8)
    near[::7, ::5] = 101
    Image.fromarray(near).save(folder / "almost-flat.png")
    Image.fromarray(np.full((50, 70), 40000, np.uint16)).save(folder / "flat-16bit.png")
    Image.fromarray(np.full((40, 40), 0.25, np.float32), mode="F").save(folder / "flat-float.tif")
    return sorted(p.name for p in set(folder.iterdir()) - before)


def test_a_folder_of_degenerate_photos_trains_to_the_end(vgg_h5, style_image, tmp_path):
    from mlabs_desktop.core.events import LogEvent, StepEvent
    from mlabs_desktop.core.training.trainer import Trainer

    folder = tmp_path / "photos"
    write_photos(folder, count=2)
    odd = write_degenerate(folder)
    assert len(odd) == 10
    events = []
    model = Trainer(tiny_config(style_image, folder, vgg_h5, architecture="default", batch_size=4, epochs=2,
                                max_steps=0, checkpoint_iterations=100), events.append).run()
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert len(steps) == 6 and all(np.isfinite(e.total_loss) for e in steps)  # 12 images, batch 4, 2 epochs
    assert not [e for e in events if isinstance(e, LogEvent) and "skipped" in e.message]
    assert model.manifest.state == "finished"
    assert all(np.isfinite(v).all() for v in model.load_weights().values())


def poison_batches_holding_a_flat_photo(monkeypatch, after: int) -> dict:
    """From step ``after`` on, a batch holding a one-colour photo reaches the real step with NaN pixels,
    as a photo that breaks the arithmetic would: the real guard decides what happens."""
    from mlabs_desktop.core.training import steps

    real = steps.make_train_step
    seen = {"calls": 0, "good_weights": None, "real": real}

    def make_train_step(net, *args, **kwargs):
        step = real(net, *args, **kwargs)

        def run(batch):
            seen["calls"] += 1
            if seen["calls"] > after and any(b.std() == 0 for b in batch):
                batch = batch.copy()
                batch[0, 0, 0, 0] = np.nan
            losses = step(batch)
            if losses[steps.APPLIED]:
                seen["good_weights"] = [w.copy() for w in net.get_weights()]
            return losses
        return run

    monkeypatch.setattr(steps, "make_train_step", make_train_step)
    return seen


def test_a_run_that_keeps_failing_stops_with_the_last_good_weights(vgg_h5, style_image, tmp_path, monkeypatch):
    from mlabs_desktop.core.errors import UserError
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.training.trainer import Trainer
    from mlabs_desktop.core.training.guard import MAX_REFUSED_IN_ROW

    folder = tmp_path / "photos"
    write_photos(folder, count=1)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(folder / "blank.png")
    seen = poison_batches_holding_a_flat_photo(monkeypatch, after=3)
    config = tiny_config(style_image, folder, vgg_h5, batch_size=2, epochs=50, max_steps=0,
                         checkpoint_iterations=1000, name="guarded")
    with pytest.raises(UserError) as caught:
        Trainer(config).run()
    message = str(caught.value)
    assert f"{MAX_REFUSED_IN_ROW} steps in a row (from step 4)" in message
    assert "blank.png" in message and "photo0.jpg" in message  # both were in every refused batch
    assert "saved in 'guarded' (step 8)" in message
    model = Library().get("guarded")
    assert model.manifest.state == "stopped"
    saved = model.load_weights()
    net = build_transform_network("lite", 1 / 255)
    from mlabs_desktop.core.networks.weights import assign

    assign(net, saved, "test")
    # Not the last checkpoint (there was none before the stop): the weights of step 3, from memory.
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), seen["good_weights"]))

    # Resumed (the photo left alone, so nothing is poisoned any more), it goes on from those weights.
    from mlabs_desktop.core.training import steps

    monkeypatch.setattr(steps, "make_train_step", seen["real"])
    events = []
    resumed = Trainer.for_resume("guarded", max_steps=2, on_event=events.append).run()
    assert resumed.manifest.statistics["steps"] == 10
    first = next(e for e in events if type(e).__name__ == "StepEvent")
    assert first.step == 9 and np.isfinite(first.total_loss)


def test_without_a_common_photo_the_parameters_are_named():
    from mlabs_desktop.core.config import TrainingConfig
    from mlabs_desktop.core.training.guard import likely_cause

    from pathlib import Path

    refused = [(5, (Path("a.jpg"), Path("b.jpg"))), (6, (Path("c.jpg"), Path("d.jpg")))]
    wild = TrainingConfig(style_weight=1e12, learning_rate=1.0)
    cause = likely_cause(refused, wild)
    assert "style-weight 1e+12 is far outside the range that trains well (1 to 100000)" in cause
    assert "learning-rate 1 is far outside" in cause
    assert likely_cause(refused, TrainingConfig()) == "lower the learning rate or the style weight"


# Weights of zero, and the wildest values together (each alone is a milder case of the same run).
@pytest.mark.parametrize("changes", [dict(tv_weight=0.0, content_weight=0.0),
                                     dict(style_weight=1e12, learning_rate=1.0, content_weight=0.0)])
def test_wild_parameters_train_to_a_usable_model(vgg_h5, style_image, photos_dir, tmp_path, changes):
    from mlabs_desktop.core.events import LogEvent
    from mlabs_desktop.core.training.trainer import Trainer

    folder = tmp_path / "photos"
    write_photos(folder, count=3)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(folder / "blank.jpg")
    events = []
    model = Trainer(tiny_config(style_image, folder, vgg_h5, architecture="default", max_steps=6, epochs=10,
                                checkpoint_iterations=100, **changes), events.append).run()
    assert model.manifest.statistics["steps"] == 6
    assert all(np.isfinite(v).all() for v in model.load_weights().values())
    warnings = [e.message for e in events if isinstance(e, LogEvent) and "far outside" in e.message]
    assert len(warnings) == len([k for k in changes if k != "tv_weight"])  # a TV weight of 0 trains well


def test_a_flat_style_trains_finite_and_says_why_it_learns_little(vgg_h5, photos_dir, tmp_path):
    from mlabs_desktop.core.events import LogEvent
    from mlabs_desktop.core.training.trainer import Trainer

    style = tmp_path / "flat.png"
    Image.fromarray(np.full((60, 80, 3), (200, 40, 40), np.uint8)).save(style)
    events = []
    model = Trainer(tiny_config(style, photos_dir, vgg_h5, architecture="default", max_steps=4, epochs=4),
                    events.append).run()
    assert all(np.isfinite(v).all() for v in model.load_weights().values())
    assert any(isinstance(e, LogEvent) and "almost a single colour" in e.message for e in events)


# ------------------------------------------------------------------ never a NaN on disk

def test_non_finite_weights_are_never_written_nor_exported(tiny_model, tmp_path):
    from mlabs_desktop.core.errors import UserError
    from mlabs_desktop.core.formats.exporters import export_model
    from mlabs_desktop.core.library.store import WEIGHTS
    from mlabs_desktop.core.networks.weights import load_weight_arrays, save_weight_arrays

    path = tiny_model.folder / WEIGHTS
    good = path.read_bytes()
    arrays = load_weight_arrays(path)
    name = sorted(arrays)[0]
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nan
    with pytest.raises(UserError, match="not finite.*nothing was written"):
        save_weight_arrays(path, arrays)
    assert path.read_bytes() == good
    # A damaged file from elsewhere is refused when read, so no export or stylize carries it on.
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    for fmt in ("bundle", "savedmodel"):
        with pytest.raises(UserError, match="not finite"):
            export_model(tiny_model, fmt, tmp_path / fmt)
    assert sorted(tmp_path.iterdir()) == []


def test_under_loss_scaling_overflowing_gradients_are_left_to_the_loss_scale_optimizer():
    """float16 steps overflow routinely at first: the LossScaleOptimizer skips them and lowers its scale, so the
    guard must not count them as refused steps (5 in a row would end the run)."""
    import keras

    from mlabs_desktop.core.training.steps import healthy

    adam = keras.optimizers.Adam()
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    overflow = [np.array([1.0, np.inf], np.float32)]
    assert not bool(healthy(np.float32(3.0), overflow, adam))
    assert bool(healthy(np.float32(3.0), overflow, scaled))
    assert not bool(healthy(np.float32(np.nan), overflow, scaled))
    assert bool(healthy(np.float32(3.0), [np.array([1e17], np.float32)], adam))
    assert not bool(healthy(np.float32(3.0), [np.array([1e19], np.float32)], adam))
