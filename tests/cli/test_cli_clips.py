"""`mlabs-desktop stylize` on clips: a round trip with sound, folders mixing photos and clips, clean failures."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from clip_helpers import SIZE, decoded, sample
from mlabs_desktop.core.video.samples import pan_frames, write_clip
from test_cli import cli


def test_a_clip_round_trips_through_the_command_line(tiny_model, tmp_path):
    source = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 8), fps=25)
    result = cli("stylize", "--checkpoint=tiny", f"--in-path={source}", f"--out-path={tmp_path / 'out.mp4'}",
                 "--strength=0.8", "--preserve-colors", "--precision=float32", check=True)
    frames, _, facts = decoded(tmp_path / "out.mp4")
    assert len(frames) == 8 and (facts.width, facts.height, facts.audio) == (96, 64, "aac")
    assert "frame 8/8" in result.stderr and "frames/s" in result.stderr
    assert re.search(r"out\.mp4: 8 frames in \d+:\d\d$", result.stderr.strip())


def test_a_folder_of_photos_and_clips_and_a_preview(tiny_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(sample()[:48, :64]).save(folder / "cat.png")
    write_clip(folder / "walk.mov", pan_frames(sample(), SIZE, 20), fps=25)
    cli("stylize", "--checkpoint=tiny", f"--in-path={folder}", f"--out-path={tmp_path / 'out'}", "--no-steady",
        "--first-seconds=0.2", check=True)
    assert Image.open(tmp_path / "out" / "cat.png").size == (64, 48)
    assert len(decoded(tmp_path / "out" / "walk.mov")[0]) == 5


def test_clip_mistakes_are_one_line_and_leave_nothing(tiny_model, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nothing to see" * 50)
    clip = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 3))
    for args, words in (((f"--in-path={bad}", f"--out-path={tmp_path / 'o.mp4'}"), "cannot read bad.mp4 as a video"),
                        ((f"--in-path={clip}", f"--out-path={tmp_path / 'o.avi'}"), "cannot tell the output format"),
                        ((f"--in-path={clip}", f"--out-path={tmp_path / 'o.mp4'}", "--first-seconds=0"),
                         "--first-seconds must be more than 0")):
        result = cli("stylize", "--checkpoint=tiny", *args)
        assert result.returncode == 2 and result.stderr.startswith("error: ") and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "in.mp4"]


def test_ctrl_c_leaves_no_half_written_clip(tiny_model, tmp_path, monkeypatch):
    from mlabs_desktop.core.video import pipeline

    source = write_clip(tmp_path / "in.mp4", pan_frames(sample(), SIZE, 12))
    real_call = pipeline.FrameStylizer.__call__
    frames = []

    def interrupted(self, rgb: np.ndarray) -> np.ndarray:
        frames.append(1)
        if len(frames) == 4:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        return real_call(self, rgb)
    monkeypatch.setattr(pipeline.FrameStylizer, "__call__", interrupted)
    result = cli("stylize", "--checkpoint=tiny", f"--in-path={source}", f"--out-path={tmp_path / 'out.mp4'}")
    assert result.returncode == 130 and result.stderr.strip().endswith("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
