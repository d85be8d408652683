"""Clips for the video tests, built in the test from the shipped sample photos (`video.samples`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlabs_desktop.resources import resource_dir

SIZE = (96, 64)     # width, height: small enough for a tiny network on two cores


def sample(name: str = "chelsea.jpg") -> np.ndarray:
    with Image.open(resource_dir("resources") / "samples" / name) as im:
        return np.asarray(im.convert("RGB"))


def decoded(path: Path) -> tuple[list[np.ndarray], list[int], "Facts"]:
    """Every frame as RGB, their timestamps, and the container's stream facts (a small record)."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames, pts = [], []
        for frame in container.decode(video):
            frames.append(frame.to_ndarray(format="rgb24"))
            pts.append(frame.pts)
        seconds = float(video.duration * video.time_base) if video.duration else container.duration / 1e6
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    return frames, pts, Facts(video.codec_context.name, video.codec_context.width, video.codec_context.height,
                              float(video.average_rate or 0), seconds, audio, _sound_seconds(path))


def _sound_seconds(path: Path) -> float:
    """How long the sound lasts: its decoded samples over its rate (mkv keeps no per-stream duration)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0.0
        sound = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(sound)) / sound.codec_context.sample_rate


@dataclass(frozen=True)
class Facts:
    codec: str
    width: int
    height: int
    fps: float
    seconds: float
    audio: str | None
    audio_seconds: float
