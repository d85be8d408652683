"""What the commands share: lines on the console, training progress, Ctrl-C, the backend, inputs from the web."""

from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from mlabs_desktop.core.events import (CheckpointEvent, DistillStepEvent, DoneEvent, Event, LogEvent, PreviewEvent,
                                       StepEvent, event_to_json, format_duration, format_steps)


def say(line: str = "") -> None:
    if sys.stdout is not None:
        print(line, flush=True)


def err(line: str) -> None:
    if sys.stderr is not None:
        print(line, file=sys.stderr, flush=True)


class ProgressPrinter:
    """Prints trainer events: one JSON object per line, or a text bar on stderr."""

    def __init__(self, mode: str):
        self.mode = mode
        self._last_draw = 0.0
        self._bar_open = False

    def __call__(self, event: Event) -> None:
        if self.mode == "json":
            say(json.dumps(event_to_json(event)))
            return
        if isinstance(event, StepEvent):
            self._draw(event)
        elif isinstance(event, DistillStepEvent):
            left = "" if event.eta_seconds is None else f" ETA {format_duration(event.eta_seconds)}"
            self._line(event.step == event.total_steps, f"step {event.step}/{event.total_steps} loss {event.loss:.4g}{left}")
        else:
            self.end_bar()
            if isinstance(event, LogEvent):
                err(("warning: " if event.level == "warning" else "") + event.message)
            elif isinstance(event, CheckpointEvent):
                err(f"checkpoint at step {event.step}: {event.path}")
            elif isinstance(event, PreviewEvent):
                err(f"preview: {event.path}")
            elif isinstance(event, DoneEvent):
                err(f"{event.state}: model '{event.model_name}' after {format_steps(event.step)} "
                     f"({format_duration(event.seconds)}) in {event.folder}")

    def _draw(self, e: StepEvent) -> None:
        width = 24
        filled = int(width * e.step / max(1, e.total_steps))
        bar = "#" * filled + "-" * (width - filled)
        line = (f"[{bar}] step {e.step}/{e.total_steps} epoch {e.epoch + 1} "
                f"loss {e.total_loss:.4g} (content {e.content_loss:.3g}, style {e.style_loss:.3g}, "
                f"tv {e.tv_loss:.3g}) {e.images_per_sec:.2f} img/s ETA {format_duration(e.eta_seconds)}")
        self._line(e.step == e.total_steps, line + (f" skipped {e.skipped}" if e.skipped else ""))

    def _line(self, last: bool, line: str) -> None:
        """One progress line on stderr, at most five a second (the last always), redrawn in place on a terminal."""
        if sys.stderr is None or (time.monotonic() - self._last_draw < 0.2 and not last):
            return
        self._last_draw = time.monotonic()
        line = "\r" + line
        sys.stderr.write(line + "\033[K" if sys.stderr.isatty() else line + "\n")
        sys.stderr.flush()
        self._bar_open = sys.stderr.isatty()

    def clip(self, p) -> None:
        """A clip's progress (`video.pipeline.ClipProgress`) as a bar with frames per second and time left."""
        width = 24
        filled = int(width * p.frames_done / max(1, p.frames_total))
        self._line(p.frames_done == p.frames_total,
                   f"[{'#' * filled}{'-' * (width - filled)}] {p.source.name}: frame {p.frames_done}/{p.frames_total} "
                   f"{p.frames_per_second:.2f} frames/s ETA {format_duration(p.seconds_left)}")

    def end_bar(self) -> None:
        if self._bar_open and sys.stderr is not None:
            sys.stderr.write("\n")
            self._bar_open = False


@contextmanager
def stop_on_interrupt(trainer, saving: str = "saving a checkpoint") -> Iterator[None]:
    """First Ctrl-C asks the trainer to stop after this step, ``saving`` what it learnt; a second one aborts."""
    def handler(signum, frame):
        if trainer.stopping:
            raise KeyboardInterrupt
        err(f"\nstopping after this step and {saving} (Ctrl-C again to abort)")
        trainer.stop()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def engine() -> None:
    """Start Keras and its backend quietly; every command calls this before its first network."""
    from mlabs_desktop.core.hardware.devices import import_keras_quietly

    import_keras_quietly()


def fetch(value: str | None) -> str | None:
    """A local path unchanged; an http(s) URL downloaded through the cache."""
    if not value:
        return value
    from mlabs_desktop.core.transfer.downloads import fetch_to_path
    from mlabs_desktop.core.transfer.http import is_url

    return str(fetch_to_path(value)) if is_url(value) else value
