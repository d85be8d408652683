"""Steady mode: less flicker than frame by frame on a pan and on camera noise, and a clean start at a cut."""

from __future__ import annotations

import numpy as np
import pytest

from clip_helpers import SIZE, decoded, sample
from mlabs_desktop.core.stylize.stylizer import Stylizer
from mlabs_desktop.core.video.pipeline import ClipOptions, stylize_clip
from mlabs_desktop.core.video.samples import pan_frames, write_clip
from mlabs_desktop.core.video.steady import SteadyFrames, camera_shift, flicker, moved


@pytest.fixture
def stylizer(tiny_model):
    return Stylizer(tiny_model, device="cpu")


def test_flicker_is_measured_where_the_pan_shows_the_same_place():
    frames = list(pan_frames(sample(), SIZE, 4, step=2))
    assert flicker(frames, step=2) < 1.0 < flicker(frames)
    assert flicker([frames[0]] * 3) == 0.0


def test_the_camera_motion_is_found_to_the_pixel():
    photo = sample()[:200, :300]
    for dy, dx in ((0, 1), (2, -3), (-5, 0)):
        assert camera_shift(photo, moved(photo, dy, dx)[0]) == (dy, dx)


def excess(clip_frames, styled, step):
    return flicker(styled, step) - flicker(clip_frames, step)


@pytest.mark.parametrize("step, noise", [(1, 0.0), (0, 3.0)], ids=["slow pan", "camera noise"])
def test_steady_mode_halves_the_excess_flicker(stylizer, step, noise):
    frames = list(pan_frames(sample(), SIZE, 10, step=step, noise=noise))
    per_frame = [stylizer.run(f) for f in frames]
    steady = SteadyFrames(stylizer.tiled())
    held = [steady(f) for f in frames]
    assert excess(frames, per_frame, step) > 1.0  # the network flickers on its own
    assert excess(frames, held, step) <= 0.5 * excess(frames, per_frame, step)
    assert steady.cuts == 1


def test_a_scene_cut_starts_afresh_with_no_ghost(stylizer):
    first = list(pan_frames(sample("chelsea.jpg"), SIZE, 4, step=1))
    second = list(pan_frames(sample("coffee.jpg"), SIZE, 4, step=1))
    steady = SteadyFrames(stylizer.tiled())
    held = [steady(f) for f in first + second]
    after_cut = stylizer.run(second[0])
    assert steady.cuts == 2
    # The first frame after the cut is the per-frame render: nothing of the first scene shows through.
    assert np.abs(held[4] - after_cut).max() < 0.05
    assert np.abs(held[5] - stylizer.run(second[1])).mean() < np.abs(held[5] - held[3]).mean()


def test_steady_mode_beats_frame_by_frame_in_the_written_clip(stylizer, tmp_path):
    source = write_clip(tmp_path / "pan.mp4", pan_frames(sample(), SIZE, 10, step=1), lossless=True, audio=None)
    figures = {}
    for steady in (False, True):
        out = stylize_clip(stylizer, source, tmp_path / f"{steady}.mp4", ClipOptions(steady=steady)).path
        figures[steady] = flicker(decoded(out)[0], step=1)
    input_flicker = flicker(decoded(source)[0], step=1)
    assert figures[True] - input_flicker <= 0.5 * (figures[False] - input_flicker)
