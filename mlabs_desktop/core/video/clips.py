"""What a clip is: the file types read as video, and what a file holds before any frame is decoded.

Decoding and encoding go through PyAV, whose wheels carry FFmpeg: nothing to
install beside the app. Every FFmpeg error about a file becomes one `UserError`
naming it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.stylize.stylizer import MediaKind

CLIP_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})
ANIMATED_EXTENSIONS = frozenset({".gif", ".webp"})   # images, read as clips when the output is a clip
# Containers written: H.264 video in each. Others (webm, avi) come out as mp4.
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
DEFAULT_SUFFIX = ".mp4"


def is_clip_path(path: Path | str) -> bool:
    return Path(path).suffix.lower() in CLIP_EXTENSIONS


def clip_output_name(path: Path) -> Path:
    """Where a clip's result goes by default: its own name, in a container that holds H.264."""
    return path if path.suffix.lower() in OUTPUT_FORMATS else path.with_suffix(DEFAULT_SUFFIX)


# Clips in folders; animated GIF and WebP too when named alone with a clip's name to write.
CLIPS = MediaKind("clips", CLIP_EXTENSIONS, frozenset(OUTPUT_FORMATS), clip_output_name, ANIMATED_EXTENSIONS)


def is_clip_job(target: Path) -> bool:
    """Whether a planned job writes a clip (a photo's result never has a clip's extension)."""
    return target.suffix.lower() in OUTPUT_FORMATS


def output_format(path: Path) -> str:
    try:
        return OUTPUT_FORMATS[path.suffix.lower()]
    except KeyError:
        raise UserError(f"cannot write a clip as {path.name}; name it .mp4, .mov or .mkv") from None


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    width: int              # as shown: after the rotation the file asks for
    height: int
    rotation: int           # degrees counter-clockwise the stored frames are turned for showing
    fps: float              # average frame rate
    frames: int             # the container's count, or duration x rate when it has none
    seconds: float
    audio: str | None       # the audio codec's name, None without sound


def unreadable(path: Path, exc: BaseException) -> UserError:
    reason = str(getattr(exc, "strerror", None) or exc).rstrip(".")
    return UserError(f"cannot read {path.name} as a video ({reason}); try converting it to mp4")


@contextlib.contextmanager
def opened(path: Path) -> Iterator[object]:
    """The file as a PyAV input container with a video stream; FFmpeg's errors as one `UserError`."""
    import av

    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise unreadable(path, exc) from None
    try:
        if not container.streams.video:
            raise UserError(f"{path.name} holds no video stream")
        yield container
    finally:
        container.close()


def _rotation(stream) -> int:
    """The display rotation from the stream's first frame (FFmpeg puts the matrix there)."""
    for frame in stream.container.decode(stream):
        return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    return 0


def probe(path: Path) -> ClipInfo:
    """Size, rate, length and sound of a clip, reading one frame; a `UserError` when it is not one."""
    import av

    path = Path(path)
    with opened(path) as container:
        stream = container.streams.video[0]
        try:
            rotation = _rotation(stream)
        except av.FFmpegError as exc:
            raise unreadable(path, exc) from None
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        seconds = (float(stream.duration * stream.time_base) if stream.duration
                   else (container.duration or 0) / 1e6)
        frames = stream.frames or max(1, round(seconds * float(rate)))
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        if not width or not height:
            raise UserError(f"{path.name} holds a video stream with no picture size")
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return ClipInfo(path, width, height, rotation, float(rate), int(frames), seconds, audio)
