"""A clip through the network and back: frames, timing, size, rotation and sound kept; nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest

from clip_helpers import SIZE, decoded, sample
from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.stylize.stylizer import BlendOptions, Stylizer
from mlabs_desktop.core.video.pipeline import ClipOptions, stylize_clip
from mlabs_desktop.core.video.samples import pan_frames, write_clip


@pytest.fixture
def stylizer(tiny_model):
    return Stylizer(tiny_model, device="cpu")


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("steady", [False, True])
def test_a_clip_with_sound_round_trips(stylizer, tmp_path, steady):
    source = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 12), fps=25)
    progress = []
    result = stylize_clip(stylizer, source, tmp_path / "out.mp4", ClipOptions(steady=steady), progress.append)
    frames, _, out = decoded(result.path)
    _, _, src = decoded(source)
    assert result.frames == len(frames) == 12
    assert (out.codec, out.width, out.height) == ("h264", 96, 64)
    assert out.fps == pytest.approx(25) and out.seconds == pytest.approx(src.seconds, abs=1e-3)
    assert out.audio == "aac" and out.audio_seconds == pytest.approx(src.audio_seconds, abs=1e-3)
    assert [p.frames_done for p in progress] == list(range(1, 13))
    assert progress[-1].frames_total == 12 and progress[-1].frames_per_second > 0
    assert np.std(frames[5]) > 1 and leftovers(tmp_path) == []


def test_a_variable_frame_rate_keeps_every_timestamp(stylizer, tmp_path):
    times = [0.0, 0.04, 0.06, 0.13, 0.15, 0.30, 0.32, 0.40]
    source = write_clip(tmp_path / "vfr.mp4", pan_frames(sample(), SIZE, len(times)), times=times)
    target = stylize_clip(stylizer, source, tmp_path / "out.mp4", ClipOptions(steady=False)).path
    _, source_pts, src = decoded(source)
    _, pts, out = decoded(target)
    assert pts == source_pts and out.seconds == pytest.approx(src.seconds, abs=1e-3)


def test_an_odd_size_is_made_even_by_one_copied_edge(stylizer, tmp_path):
    frames = [f[:63, :95] for f in pan_frames(sample(), SIZE, 4)]
    source = write_clip(tmp_path / "odd.mov", frames, codec="png", audio=None)
    out = decoded(stylize_clip(stylizer, source, tmp_path / "out.mp4", ClipOptions(steady=False)).path)
    assert (out[2].width, out[2].height, len(out[0]), out[2].audio) == (96, 64, 4, None)


def test_a_rotated_clip_comes_out_upright(stylizer, tmp_path):
    frames = [np.zeros((64, 96, 3), np.uint8) for _ in range(3)]
    for f in frames:
        f[:16, :16] = 255  # a white corner, stored top left
    source = write_clip(tmp_path / "turned.mp4", frames, audio=None, rotation=90)
    keep_photo = ClipOptions(BlendOptions(strength=0.0), steady=False)
    [first, *_], _, out = decoded(stylize_clip(stylizer, source, tmp_path / "out.mp4", keep_photo).path)
    assert (out.width, out.height) == (64, 96)
    # Shown turned 90 degrees counter-clockwise: the stored top left is now the bottom left.
    assert first[-16:, :16].mean() > 200 and first[:16, :16].mean() < 50


def test_sound_the_mp4_cannot_hold_is_made_aac(stylizer, tmp_path):
    source = write_clip(tmp_path / "pcm.mkv", pan_frames(sample(), SIZE, 6), audio="pcm_s16le")
    to_mp4 = decoded(stylize_clip(stylizer, source, tmp_path / "out.mp4", ClipOptions(steady=False)).path)[2]
    to_mkv = decoded(stylize_clip(stylizer, source, tmp_path / "out.mkv", ClipOptions(steady=False)).path)[2]
    src = decoded(source)[2]
    assert to_mp4.audio == "aac" and to_mp4.audio_seconds == pytest.approx(src.audio_seconds, abs=0.05)
    assert to_mkv.audio == "pcm_s16le"


def test_a_preview_is_the_first_seconds(stylizer, tmp_path):
    source = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 20), fps=25)
    result = stylize_clip(stylizer, source, tmp_path / "first.mp4", ClipOptions(steady=False, seconds=0.2))
    _, _, out = decoded(result.path)
    assert result.frames == 5 and out.seconds == pytest.approx(0.2, abs=1e-3)
    assert 0.15 < out.audio_seconds <= 0.25


def test_cancelling_leaves_nothing_at_the_target(stylizer, tmp_path):
    source = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 20))
    target = tmp_path / "out" / "styled.mp4"
    target.parent.mkdir()
    seen = []
    with pytest.raises(Cancelled):
        stylize_clip(stylizer, source, target, ClipOptions(steady=False), seen.append, cancelled=lambda: len(seen) >= 3)
    assert not target.exists() and leftovers(target.parent) == []


def test_a_failing_network_leaves_nothing_and_stops_the_threads(stylizer, tmp_path, monkeypatch):
    import threading

    source = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 20))
    calls = []

    def broken(rgb):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return rgb.astype(np.float32)
    monkeypatch.setattr(stylizer, "run", broken)
    with pytest.raises(KeyboardInterrupt):
        stylize_clip(stylizer, source, tmp_path / "out.mp4", ClipOptions(steady=False))
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("mlabs-clip")]


def test_a_corrupt_clip_is_one_message_and_no_file(stylizer, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(UserError, match="cannot read bad.mp4 as a video"):
        stylize_clip(stylizer, bad, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


def test_a_failing_writer_stops_the_clip_without_hanging(stylizer, tmp_path, monkeypatch):
    import errno
    import threading

    from mlabs_desktop.core.video import writer

    source = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 30))
    real_add = writer.ClipWriter.add_frame

    def failing(self, rgb, pts, duration=0):
        if pts > 0:
            raise OSError(errno.EIO, "the disk went away")
        real_add(self, rgb, pts, duration)
    monkeypatch.setattr(writer.ClipWriter, "add_frame", failing)
    with pytest.raises(OSError, match="the disk went away"):
        stylize_clip(stylizer, source, tmp_path / "out.mp4", ClipOptions(steady=False))
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("mlabs-clip")]


@pytest.mark.parametrize("name, codec, sound", [("in.webm", "libvpx-vp9", "libopus"), ("in.avi", "mpeg4", "pcm_s16le")])
def test_webm_and_avi_clips_come_out_as_mp4_with_their_sound(stylizer, tmp_path, name, codec, sound):
    source = write_clip(tmp_path / name, pan_frames(sample(), SIZE, 6), fps=25, codec=codec, audio=sound)
    frames, _, out = decoded(stylize_clip(stylizer, source, tmp_path / "out.mp4", ClipOptions(steady=False)).path)
    assert len(frames) == 6 and out.codec == "h264" and out.audio in ("opus", "aac")
    assert out.audio_seconds == pytest.approx(decoded(source)[2].audio_seconds, abs=0.03)
