"""What a clip is: probing files, naming results, and planning folders that mix photos and clips."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clip_helpers import SIZE, sample
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.stylize.stylizer import PHOTOS, plan_outputs
from mlabs_desktop.core.video.clips import CLIPS, is_clip_job, probe
from mlabs_desktop.core.video.samples import pan_frames, write_clip


def test_probe_reads_size_rate_length_and_sound(tmp_path):
    clip = write_clip(tmp_path / "a.mp4", pan_frames(sample(), SIZE, 10), fps=25)
    info = probe(clip)
    assert (info.width, info.height, info.rotation) == (96, 64, 0)
    assert info.fps == pytest.approx(25) and info.frames == 10 and info.seconds == pytest.approx(0.4, abs=0.01)
    assert info.audio == "aac"


def test_probe_turns_the_size_of_a_rotated_clip(tmp_path):
    clip = write_clip(tmp_path / "turned.mp4", pan_frames(sample(), SIZE, 3), audio=None, rotation=90)
    info = probe(clip)
    assert (info.width, info.height, info.rotation, info.audio) == (64, 96, 90, None)


@pytest.mark.parametrize("content, words", [
    (b"not a video at all" * 100, "cannot read bad.mp4 as a video"),
    (b"", "cannot read bad.mp4 as a video"),
])
def test_a_file_that_is_not_a_clip_gets_one_clear_message(tmp_path, content, words):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(UserError, match=words):
        probe(bad)


def test_a_clip_cut_short_before_its_index_is_refused(tmp_path):
    whole = write_clip(tmp_path / "whole.mp4", pan_frames(sample(), SIZE, 10))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])  # mp4 keeps its index at the end
    with pytest.raises(UserError, match="cannot read cut.mp4 as a video"):
        probe(cut)


def test_sound_alone_is_not_a_clip(tmp_path):
    import av

    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    with pytest.raises(UserError, match="voice.mp4 holds no video stream"):
        probe(path)


def test_a_folder_of_photos_and_clips_is_planned_together(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(sample()).save(folder / "cat.jpg")
    for name in ("a.mp4", "b.webm", "c.mov"):
        (folder / name).write_bytes(b"x")
    jobs = dict(plan_outputs(folder, tmp_path / "out", "style", kinds=(PHOTOS, CLIPS)))
    names = {source.name: target.name for source, target in jobs.items()}
    assert names == {"cat.jpg": "cat.jpg", "a.mp4": "a.mp4", "b.webm": "b.mp4", "c.mov": "c.mov"}
    assert [is_clip_job(t) for t in sorted(jobs.values())] == [True, True, True, False]
    photos_only = dict(plan_outputs(folder, tmp_path / "out", "style"))
    assert [p.name for p in photos_only] == ["cat.jpg"]


def test_an_animated_gif_is_a_clip_only_when_a_clip_is_asked_for(tmp_path):
    gif = tmp_path / "moving.gif"
    frames = [Image.fromarray(f) for f in pan_frames(sample(), SIZE, 3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    [(_, as_clip)] = plan_outputs(gif, tmp_path / "moving.mp4", "s", kinds=(PHOTOS, CLIPS))
    [(_, as_photo)] = plan_outputs(gif, tmp_path / "out", "s", kinds=(PHOTOS, CLIPS))
    assert is_clip_job(as_clip) and as_photo.name == "moving.png" and not is_clip_job(as_photo)
    assert probe(gif).frames == 3


def test_a_clip_onto_a_photo_name_is_refused_naming_the_clip_formats(tmp_path):
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    with pytest.raises(UserError, match=r"cannot tell the output format from a.png; use one of .m4v, .mkv, .mov, .mp4"):
        plan_outputs(clip, tmp_path / "a.png", "s", kinds=(PHOTOS, CLIPS))


def test_any_moment_of_a_clip_can_be_shown(tmp_path):
    from mlabs_desktop.core.video.reader import frame_at

    frames = [np.full((64, 96, 3), 20 * i, np.uint8) for i in range(10)]
    clip = write_clip(tmp_path / "steps.mp4", frames, fps=10, audio=None)
    info = probe(clip)
    for seconds, level in ((0.0, 0), (0.45, 80), (0.5, 100), (0.99, 180), (5.0, 180)):
        assert abs(float(frame_at(info, seconds).mean()) - level) < 3, seconds
