"""Training crops: the reference's (a random square of the scaled photo) and the varied ones a fast copy learns on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.decode import CropVariety, training_crop

from test_images import noise, write


@pytest.mark.parametrize("w,h", [(20, 64), (64, 20), (8, 8), (5, 40)])
def test_training_crop_shapes(tmp_path, w, h):
    path = write(tmp_path / "c.png", Image.fromarray(noise(h, w)))
    crop = training_crop(path, 16, np.random.default_rng(0))
    assert crop.shape == (16, 16, 3) and crop.dtype == np.uint8


def test_training_crop_deterministic_and_modes(tmp_path):
    big = write(tmp_path / "big.jpg", Image.fromarray(noise(384, 512)))
    a = training_crop(big, 32, np.random.default_rng(5))
    b = training_crop(big, 32, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 32, 3)
    for name, im in [("g.png", Image.new("L", (20, 30), 40)), ("la.png", Image.new("LA", (20, 30), (40, 9))),
                     ("f.tif", Image.fromarray(np.full((20, 30), 0.5, np.float32)))]:
        crop = training_crop(write(tmp_path / name, im), 10, np.random.default_rng(0))
        assert crop.shape == (10, 10, 3) and crop.dtype == np.uint8
    (tmp_path / "bad.jpg").write_text("nope")
    with pytest.raises(UserError):
        training_crop(tmp_path / "bad.jpg", 16, np.random.default_rng(0))


def test_training_crop_is_a_scaled_window(tmp_path):
    arr = np.zeros((10, 40, 3), np.uint8)
    arr[:, :20] = 255  # white left half, black right half
    path = write(tmp_path / "halves.png", Image.fromarray(arr))
    means = {int(training_crop(path, 10, np.random.default_rng(s)).mean() > 127) for s in range(40)}
    assert means == {0, 1}  # crops land on both halves: the offset is random


def test_crop_variety_zooms_in_and_mirrors_where_asked(tmp_path):
    arr = np.zeros((64, 64, 3), np.uint8)
    arr[:, :32] = 255  # white left half, black right half
    path = write(tmp_path / "halves.png", Image.fromarray(arr))
    plain = [training_crop(path, 32, np.random.default_rng(s)) for s in range(30)]
    assert all(np.array_equal(crop, plain[0]) for crop in plain)  # a square photo: always the whole of it
    assert plain[0][:, 0].min() == 255  # and never mirrored
    varied = [training_crop(path, 32, np.random.default_rng(s), variety=CropVariety(smallest=0.5, mirror=True))
              for s in range(30)]
    white_share = {round(float((crop > 127).mean()), 2) for crop in varied}
    assert len(white_share) > 5  # zoomed in on parts: the halves' shares vary
    sides = [crop.mean(axis=(0, 2)) for crop in varied]  # each column's brightness
    assert any(c[0] > c[-1] + 100 for c in sides)  # white on the left, as in the photo
    assert any(c[0] < c[-1] - 100 for c in sides)  # white on the right: mirrored
    assert all(crop.shape == (32, 32, 3) for crop in varied)
    for wrong in (0.0, 1.5):
        with pytest.raises(ValueError):
            CropVariety(smallest=wrong)

