"""Decoding a clip in file order: upright RGB frames with their timestamps, and its sound untouched.

Audio comes as the file's own packets when the output can hold them as they are,
or decoded when they must be re-encoded (`writer.audio_mode`); either way in the
order the file stores it, so the writer can interleave without holding more
than a few frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.video.clips import ClipInfo, opened, unreadable


@dataclass(frozen=True)
class Frame:
    index: int
    pts: int            # in the video stream's time base, strictly increasing
    rgb: np.ndarray     # uint8 H x W x 3, turned upright
    duration: int = 0   # how long it shows, in the same time base (0: unknown); keeps the last frame's length


@dataclass(frozen=True)
class Sound:
    item: object        # an av.Packet (copied) or an av.AudioFrame (to re-encode)


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame the way the file asks it to be shown (counter-clockwise degrees)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class PtsMaker:
    """Timestamps as the file gives them, made strictly increasing (encoders refuse repeats)."""

    def __init__(self, step: int):
        self.step, self.last = max(1, step), None

    def __call__(self, pts: int | None) -> int:
        if pts is None:
            pts = 0 if self.last is None else self.last + self.step
        elif self.last is not None and pts <= self.last:
            pts = self.last + 1
        self.last = pts
        return pts


def read_clip(info: ClipInfo, audio: str | None, seconds: float | None = None,
              stopped: Callable[[], bool] = lambda: False) -> Iterator[Frame | Sound]:
    """Frames (and, unless ``audio`` is None, sound as ``"copy"`` packets or ``"decode"`` frames) in file order.

    ``seconds`` ends the clip early (a preview): frames and sound from that time on are left out.
    Each frame's duration runs to the next frame's timestamp (the last one's to the
    stream's end): decoders report durations in decoding order, which B-frames reorder.
    """
    held: Frame | None = None
    for item in _decoded(info, audio, seconds, stopped):
        if isinstance(item, Sound):
            yield item
            continue
        index, pts, rgb, end = item
        if held is not None:
            yield Frame(held.index, held.pts, held.rgb, pts - held.pts)
        held = Frame(index, pts, rgb, max(0, end - pts) if end else 0)
    if held is not None:
        yield held


def _decoded(info: ClipInfo, audio: str | None, seconds: float | None,
             stopped: Callable[[], bool]) -> Iterator[Sound | tuple[int, int, np.ndarray, int]]:
    """Sound items, and frames as (index, pts, upright rgb, the stream's end pts or 0)."""
    import av

    path: Path = info.path
    with opened(path) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        sound = container.streams.audio[0] if audio and container.streams.audio else None
        streams = [video] + ([sound] if sound is not None else [])
        step = round(1 / (info.fps * video.time_base)) if info.fps and video.time_base else 1
        end = (video.start_time or 0) + video.duration if video.duration else 0
        if seconds is not None:  # as a fraction: 0.2 s is exactly 3200/16000, not a float's 0.2000000000000000111
            seconds = Fraction(seconds).limit_denominator(1_000_000)
            end = min(end or 2**62, (video.start_time or 0) + round(seconds / video.time_base))
        pts_of = PtsMaker(step)
        index = 0
        try:
            for packet in container.demux(*streams):
                if stopped():
                    return
                if packet.stream is sound:
                    if packet.dts is None:
                        continue
                    if seconds is not None and packet.pts is not None and \
                            (packet.pts - (sound.start_time or 0)) * packet.time_base >= seconds:
                        continue
                    if audio == "copy":
                        yield Sound(packet)
                    else:
                        for frame in packet.decode():
                            yield Sound(frame)
                    continue
                for frame in packet.decode():
                    if seconds is not None and frame.pts is not None and \
                            (frame.pts - (video.start_time or 0)) * video.time_base >= seconds:
                        return
                    yield index, pts_of(frame.pts), upright(frame.to_ndarray(format="rgb24"), info.rotation), end
                    index += 1
        except av.FFmpegError as exc:
            if index == 0:
                raise unreadable(path, exc) from None
            # A damaged tail: what decoded so far is the clip (players do the same).


def frame_at(info: ClipInfo, seconds: float) -> np.ndarray:
    """The upright frame shown at ``seconds`` (the last one at or before it; the first for earlier times)."""
    import av

    with opened(info.path) as container:
        video = container.streams.video[0]
        target = round(max(0.0, seconds) / video.time_base) + (video.start_time or 0)
        try:
            container.seek(target, stream=video, backward=True)  # to the key frame before it
            shown = None
            for frame in container.decode(video):
                if shown is not None and frame.pts is not None and frame.pts > target:
                    break
                shown = frame
        except av.FFmpegError as exc:
            raise unreadable(info.path, exc) from None
        if shown is None:
            raise UserError(f"{info.path.name} has no frame to show at {seconds:.2f} s")
        return upright(shown.to_ndarray(format="rgb24"), info.rotation)
