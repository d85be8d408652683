"""Brush size and style mixing, the two controls after training."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.ops import resize_to
from mlabs_desktop.core.networks.precision import sample_photos
from mlabs_desktop.core.stylize.controls import check_brush, check_mix, mix_results, run_with_brush
from mlabs_desktop.core.stylize.stylizer import Stylizer


def test_every_brush_size_keeps_the_photo_size():
    photo = sample_photos((101, 67))[0]
    seen = []
    for brush in (0.5, 1.0, 2.0, 3.0):
        out = run_with_brush(lambda x: seen.append(x.shape[:2]) or x, photo, brush)
        assert out.shape == photo.shape
    assert seen == [(134, 202), (67, 101), (34, 50), (22, 34)]  # the network saw copies 1/brush the size


def test_a_bigger_brush_keeps_the_photos_detail():
    """With a network that changes nothing, the detail the small copy lost comes back from the photo."""
    photo = sample_photos((256, 192))[0]
    blurred = resize_to(resize_to(photo, (128, 96)), (256, 192))
    kept = run_with_brush(lambda x: x, photo, 2.0)
    assert np.abs(kept - photo).mean() < 0.5 * np.abs(blurred - photo).mean()


def test_mixing_is_linear_in_the_amount():
    a, b = np.zeros((2, 2, 3), np.float32), np.full((2, 2, 3), 100, np.float32)
    assert np.array_equal(mix_results(a, b, 0.0), a) and np.array_equal(mix_results(a, b, 1.0), b)
    assert mix_results(a, b, 0.3) == pytest.approx(np.full((2, 2, 3), 30.0))


@pytest.mark.parametrize("check, value", [(check_brush, 0.1), (check_brush, 5), (check_mix, -0.1), (check_mix, 1.5)])
def test_out_of_range_controls_say_their_range(check, value):
    with pytest.raises(UserError, match="must be between"):
        check(value)


def test_a_stylizer_with_brush_and_mix(tiny_model):
    from mlabs_desktop.core.library.store import WEIGHTS, Library, Manifest
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import model_arrays, save_weight_arrays

    net = build_transform_network("tiny", seed=7)
    second = Library().create(Manifest(name="second", architecture="tiny", state="finished"),
                              lambda folder: save_weight_arrays(folder / WEIGHTS, model_arrays(net)))
    photo = sample_photos((96, 64))[0]
    first, other = Stylizer(tiny_model, device="cpu"), Stylizer(second, device="cpu")
    alone, theirs = first.run(photo), other.run(photo)
    first.set_controls(brush=2.0)
    bigger = first.run(photo)
    assert bigger.shape == alone.shape and np.abs(bigger - alone).mean() > 1
    first.set_controls(mix=(other, 0.25))  # a quarter of the second style, at the trained brush size
    assert first.run(photo) == pytest.approx(0.75 * alone + 0.25 * theirs, abs=1e-3)
