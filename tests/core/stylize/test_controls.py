"""Brush size and style mixing, the two controls after training."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.ops import resize_to
from mlabs_desktop.core.networks.precision import sample_photos
from mlabs_desktop.core.stylize.controls import check_brush, check_mix, mix_results, run_with_brush
from mlabs_desktop.core.stylize.stylizer import Stylizer
from sibling_styles import fine_tuned


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


def test_which_styles_can_blend_their_weights(tiny_model):
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.stylize.controls import weights_related

    library = Library()
    first, second = (fine_tuned(library, name, tiny_model, 0.01, seed) for seed, name in ((1, "first"), (2, "second")))
    by_name = fine_tuned(library, "by name", tiny_model, 0.01, 3, sha=None)  # recorded before hashes were
    other_parent = fine_tuned(library, "other", tiny_model, 0.01, 4, sha="0" * 64)  # its parent was retrained since
    assert weights_related(first, second) and weights_related(second, first)
    assert weights_related(first, tiny_model) and weights_related(tiny_model, first)  # a child and its parent
    assert weights_related(first, by_name)  # by name where one did not record the weights
    assert not weights_related(first, other_parent) and not weights_related(other_parent, tiny_model)
    assert not weights_related(first, first)
    assert not weights_related(first, fine_tuned(library, "classic one", tiny_model, 0.0, 5, architecture="classic"))


def test_a_blend_of_weights_is_one_network_between_the_two(tiny_model):
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.stylize.controls import blend_weights

    library = Library()
    first, second = (fine_tuned(library, name, tiny_model, 0.02, seed) for seed, name in ((1, "first"), (2, "second")))
    a, b = first.load_weights(), second.load_weights()
    halfway = blend_weights(first, second, 0.5)
    assert all(np.allclose(halfway[k], (a[k] + b[k]) / 2, atol=1e-6) for k in a)
    photo = sample_photos((64, 48))[0]
    ends = [Stylizer.blended(first, second, amount, device="cpu", precision="auto") for amount in (0.0, 1.0)]
    assert ends[0].precision == "float32"  # the precision check is per weights file; a blend has none
    assert ends[0].run(photo) == pytest.approx(Stylizer(first, device="cpu").run(photo), abs=1e-3)
    assert ends[1].run(photo) == pytest.approx(Stylizer(second, device="cpu").run(photo), abs=1e-3)
    with pytest.raises(UserError, match="not fine-tuned from one parent network"):
        blend_weights(first, fine_tuned(library, "stranger", first, 0.0, 6, sha="1" * 64), 0.5)
