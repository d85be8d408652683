"""Clips made from photos, for the bench and the tests: a slow pan with camera noise, with a tone for sound.

Real photographs give the network real content to react to; the pan and noise are
the two things that make a stylized clip flicker.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from mlabs_desktop.core.video.writer import mux_timed

TONE_HZ = 440.0
SAMPLE_RATE = 48000     # every encoder here takes it (Opus takes no 44.1 kHz)


def pan_frames(photo: np.ndarray, size: tuple[int, int], count: int, step: float = 1.0, noise: float = 0.0,
               seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` uint8 frames of ``size`` (width, height): a window moving ``step`` pixels a frame across
    ``photo`` (resized to fit the whole pan), plus Gaussian noise of ``noise`` levels."""
    from PIL import Image

    width, height = size
    span = int(np.ceil(step * max(0, count - 1)))
    scale = max((width + span) / photo.shape[1], height / photo.shape[0])
    canvas = Image.fromarray(np.asarray(photo, np.uint8)).resize(
        (max(width + span, round(photo.shape[1] * scale)), max(height, round(photo.shape[0] * scale))),
        Image.Resampling.LANCZOS)
    canvas = np.asarray(canvas, np.float32)
    rng = np.random.default_rng(seed)
    for i in range(count):
        left = int(round(i * step))
        frame = canvas[:height, left:left + width]
        if noise:
            frame = frame + rng.normal(0.0, noise, frame.shape)
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _tone(seconds: float) -> Iterator[tuple[int, np.ndarray]]:
    total = int(round(seconds * SAMPLE_RATE))
    for start in range(0, total, 1024):
        n = min(1024, total - start)
        wave = (0.2 * np.sin(2 * np.pi * TONE_HZ * np.arange(start, start + n) / SAMPLE_RATE)).astype(np.float32)
        yield start, np.stack([wave, wave])


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: float = 25.0, *,
               times: Sequence[float] | None = None, audio: str | None = "aac", rotation: int = 0,
               container_format: str | None = None, lossless: bool = False, codec: str = "libx264") -> Path:
    """Encode uint8 RGB frames as H.264 at ``fps``, or at ``times`` (seconds) for a variable rate, with a tone
    as long as the video in ``audio`` (an encoder name: aac, pcm_s16le, ...) unless None.

    ``lossless`` keeps camera noise exactly (lossy H.264 smooths much of it away in still scenes).
    H.264 needs even sides; ``codec="png"`` (in mkv or mov) takes any.
    """
    import av

    frames = list(frames)
    height, width = frames[0].shape[:2]
    tick = Fraction(1, 1000)
    times = list(times) if times is not None else [i / fps for i in range(len(frames))]
    end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1 / fps)
    with av.open(str(path), "w", format=container_format) as out:
        video = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001),
                               options={"bf": "0", **({"qp": "0"} if lossless else {})})
        video.width, video.height = width, height
        video.pix_fmt = "rgb24" if codec == "png" else "yuv420p"
        video.codec_context.time_base = tick
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream(audio, rate=SAMPLE_RATE)
            sound.layout = "stereo"
        pts = [round(t / tick) for t in times] + [round(end / tick)]
        durations = {start: stop - start for start, stop in zip(pts, pts[1:])}
        for rgb, start in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = start, tick
            mux_timed(out, video.encode(frame), durations)
        mux_timed(out, video.encode(None), durations)
        if sound is not None:  # PyAV converts the samples to what each encoder takes
            for start, wave in _tone(end):
                chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path
