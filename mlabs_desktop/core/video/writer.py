"""Encoding a clip: H.264 (yuv420p) at the source's timestamps, with the source's sound.

Frames keep their own timestamps in the source's time base, so a variable
frame rate and the duration come through unchanged. yuv420p needs even sides:
an odd side gains one edge-copied row or column (no picture is lost).
Sound is copied packet for packet where the container can hold its codec, and
re-encoded as AAC where it cannot (Vorbis or PCM into mp4).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from mlabs_desktop.core.video.reader import Sound

# Audio codecs each output container takes as they are.
_MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
COPYABLE_AUDIO = {"mp4": _MP4_AUDIO, "mov": _MP4_AUDIO | {"pcm_s16le", "pcm_s24le", "pcm_f32le"}, "matroska": None}
VIDEO_CODEC = "libx264"
# Visually lossless for stylized frames. No B-frames: with them the muxer times samples by decoding order,
# and the clip's last frame (in showing order) no longer sets where the clip ends.
QUALITY = {"crf": "18", "preset": "medium", "bf": "0"}


def audio_mode(codec: str | None, container_format: str) -> str | None:
    """How the source's sound reaches the output: ``copy``, ``decode`` (to re-encode) or None (no sound)."""
    if codec is None:
        return None
    allowed = COPYABLE_AUDIO[container_format]
    return "copy" if allowed is None or codec in allowed else "decode"


def even(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def mux_timed(container, packets, durations: dict[int, int]) -> None:
    """Mux encoded video packets with the durations their frames had (by timestamp).

    The encoder does not carry frame durations to its packets, and the muxer needs
    the last one's for the clip to last as long as its source (encode without B-frames).
    """
    for packet in packets:
        packet.duration = durations.pop(packet.pts, packet.duration)
        container.mux(packet)


class ClipWriter:
    """An output container being written; `close` finishes it (the caller renames it into place)."""

    def __init__(self, path: Path, container_format: str, size: tuple[int, int], time_base: Fraction,
                 rate: Fraction, audio_source=None, audio: str | None = None):
        import av

        self._av = av
        self.container = av.open(str(path), "w", format=container_format)
        try:
            self._add_streams(size, time_base, rate, audio_source, audio)
        except BaseException:
            self.container.close()
            raise

    def _add_streams(self, size: tuple[int, int], time_base: Fraction, rate: Fraction, audio_source,
                     audio: str | None) -> None:
        av = self._av
        width, height = size
        self.video = self.container.add_stream(VIDEO_CODEC, rate=rate, options=dict(QUALITY))
        self.video.width, self.video.height = width + width % 2, height + height % 2
        self.video.pix_fmt = "yuv420p"
        self.video.codec_context.time_base = time_base
        self.time_base = time_base
        self._durations: dict[int, int] = {}
        self.sound = self.resampler = None
        if audio == "copy":
            self.sound = self.container.add_stream_from_template(audio_source)
        elif audio == "decode":
            context = audio_source.codec_context
            self.sound = self.container.add_stream("aac", rate=context.sample_rate)
            self.sound.layout = "mono" if context.layout.nb_channels == 1 else "stereo"  # more is mixed down
            self.resampler = av.AudioResampler(format="fltp", layout=self.sound.layout, rate=context.sample_rate)

    def add_frame(self, rgb: np.ndarray, pts: int, duration: int = 0) -> None:
        frame = self._av.VideoFrame.from_ndarray(even(rgb), format="rgb24")
        frame.pts, frame.time_base = pts, self.time_base
        if duration:
            self._durations[pts] = duration
        self._mux_video(self.video.encode(frame))

    def _mux_video(self, packets) -> None:
        mux_timed(self.container, packets, self._durations)

    def add_sound(self, sound: Sound) -> None:
        if self.sound is None:
            return
        if self.resampler is None:
            sound.item.stream = self.sound
            self.container.mux(sound.item)
            return
        for frame in self.resampler.resample(sound.item):
            self.container.mux(self.sound.encode(frame))

    def close(self) -> None:
        """Flush the encoders and write the container's index."""
        self._mux_video(self.video.encode(None))
        if self.resampler is not None:
            for frame in self.resampler.resample(None):
                self.container.mux(self.sound.encode(frame))
            self.container.mux(self.sound.encode(None))
        self.container.close()

    def abandon(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the half-written file is deleted anyway
            pass
