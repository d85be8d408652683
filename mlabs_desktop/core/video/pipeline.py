"""A clip stylized as a stream: decode, network and encode overlap, and memory stays flat.

A reader thread decodes ahead, the calling thread runs the network, a writer
thread encodes and muxes behind; bounded queues between them hold a few frames
whatever the clip's length. Sound passes through the same queues in file order.
The result is written beside the target under a temporary name and renamed into
place when complete: a cancelled, interrupted or failed run leaves nothing at
the target.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from mlabs_desktop.core.atomic import atomic_path
from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.hardware.devices import device_scope
from mlabs_desktop.core.images.ops import to_uint8
from mlabs_desktop.core.stylize.stylizer import BlendOptions, Stylizer, finish
from mlabs_desktop.core.tiling.policy import should_tile
from mlabs_desktop.core.video.clips import ClipInfo, opened, output_format, probe
from mlabs_desktop.core.video.reader import Frame, read_clip
from mlabs_desktop.core.video.steady import SteadyFrames, SteadySettings
from mlabs_desktop.core.video.writer import ClipWriter, audio_mode

QUEUE_FRAMES = 4    # frames each queue holds: enough to overlap the stages, few enough to stay small
PREVIEW_SECONDS = 3.0
_END = object()


@dataclass(frozen=True)
class ClipOptions:
    blend: BlendOptions = BlendOptions()
    steady: bool = True
    steady_settings: SteadySettings = SteadySettings()
    seconds: float | None = None        # only the clip's first seconds (a preview)


@dataclass(frozen=True)
class ClipProgress:
    source: Path
    frames_done: int
    frames_total: int                   # from the container; an estimate for some files
    frames_per_second: float
    seconds_left: float


@dataclass(frozen=True)
class ClipResult:
    path: Path
    frames: int
    seconds: float                      # wall-clock time the clip took
    cuts: int                           # scene cuts steady mode started afresh at (0 per frame)


class _Stage(threading.Thread):
    """A daemon thread whose failure is kept for the calling thread to raise."""

    def __init__(self, name: str, work: Callable[[], None]):
        super().__init__(name=name, daemon=True)
        self.work, self.error = work, None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self.error = exc


def _put(q: queue.Queue, item, stop: threading.Event, consumer: _Stage | None = None) -> None:
    """Hand ``item`` on once there is room; a consuming stage's failure is raised here instead of waiting."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if consumer is not None and consumer.error is not None:
                raise consumer.error
            if consumer is not None and not consumer.is_alive():
                raise RuntimeError(f"{consumer.name} stopped before the clip ended")


def _get(q: queue.Queue, stop: threading.Event, feeder: _Stage | None = None):
    """The next item, or `_END` once stopped; a feeding stage's failure is raised here."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if feeder is not None and feeder.error is not None:
                raise feeder.error
            if stop.is_set() or (feeder is not None and not feeder.is_alive()):
                return _END


class FrameStylizer:
    """One clip's frames through the network, per frame or steady, finished with the blend options."""

    def __init__(self, stylizer: Stylizer, options: ClipOptions):
        self.stylizer, self.options = stylizer, options
        self.steady = None
        if options.steady and stylizer.brush == 1.0 and stylizer.mixed is None:  # the controls run frame by frame
            device = stylizer.device
            whole = lambda h, w: not should_tile(h, w, device.kind, device.memory_bytes)  # noqa: E731
            self.steady = SteadyFrames(stylizer.tiled(), options.steady_settings, whole)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        with device_scope(self.stylizer.device):
            raw = self.steady(rgb) if self.steady is not None else self.stylizer.run(rgb)
        return to_uint8(finish(rgb.astype(np.float32), raw, self.options.blend))

    @property
    def cuts(self) -> int:
        return self.steady.cuts if self.steady is not None else 0


def _open_writer(info: ClipInfo, tmp: Path, target: Path) -> tuple[ClipWriter, str | None]:
    fmt = output_format(target)
    mode = audio_mode(info.audio, fmt)
    with opened(info.path) as container:
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate or Fraction(round(info.fps) or 25)
        sound = container.streams.audio[0] if mode else None
        return ClipWriter(tmp, fmt, (info.width, info.height), video.time_base, rate, sound, mode), mode


def stylize_clip(stylizer: Stylizer, source: Path, target: Path, options: ClipOptions = ClipOptions(),
                 progress: Callable[[ClipProgress], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> ClipResult:
    """Stylize the clip at ``source`` into ``target`` (mp4, mov or mkv): frames, timing and sound kept."""
    info = probe(source)
    output_format(target)  # a wrong name is answered before any work
    total = info.frames if options.seconds is None else max(1, min(info.frames, round(options.seconds * info.fps)))
    frames = FrameStylizer(stylizer, options)
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    finished: queue.Queue = queue.Queue(QUEUE_FRAMES)
    start, done = time.monotonic(), 0
    with atomic_path(target) as tmp:
        writer: ClipWriter | None = None
        reader = encoder = None
        try:
            writer, mode = _open_writer(info, tmp, target)

            def read() -> None:
                for item in read_clip(info, mode, options.seconds, stop.is_set):
                    _put(decoded, item, stop)
                _put(decoded, _END, stop)

            def write() -> None:
                while (item := _get(finished, stop)) is not _END:
                    if isinstance(item, Frame):
                        writer.add_frame(item.rgb, item.pts, item.duration)
                    else:
                        writer.add_sound(item)

            reader, encoder = _Stage("mlabs-clip-read", read), _Stage("mlabs-clip-write", write)
            reader.start()
            encoder.start()
            while (item := _get(decoded, stop, reader)) is not _END:
                if cancelled and cancelled():
                    raise Cancelled()
                if isinstance(item, Frame):
                    item = dataclasses.replace(item, rgb=frames(item.rgb))
                    done += 1
                    if progress is not None:
                        progress(_progress(source, done, max(total, done), start))
                _put(finished, item, stop, encoder)
            if done == 0:
                raise UserError(f"{source.name} holds no frames that could be decoded")
            _put(finished, _END, stop, encoder)
            encoder.join()
            if encoder.error is not None:
                raise encoder.error
            writer.close()
        except BaseException as exc:
            stop.set()
            for stage in (reader, encoder):
                if stage is not None:
                    stage.join(timeout=10)
            if writer is not None:
                writer.abandon()
            if isinstance(exc, av_error()):
                raise UserError(f"cannot write {target.name}: {exc}") from None
            raise
    return ClipResult(target, done, time.monotonic() - start, frames.cuts)


def av_error() -> type:
    import av

    return av.FFmpegError


def _progress(source: Path, done: int, total: int, start: float) -> ClipProgress:
    elapsed = max(1e-6, time.monotonic() - start)
    rate = done / elapsed
    return ClipProgress(source, done, total, rate, (total - done) / rate if rate > 0 else 0.0)
