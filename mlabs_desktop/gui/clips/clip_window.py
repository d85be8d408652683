"""A clip's own window: any frame before and after, a preview of the first seconds, the whole clip, Save.

The scrubber picks a moment; its frame is stylized on its own (or read back from
what was already rendered, steady mode included) and shown in the same
before/after view as photos. Rendering runs `video.pipeline.stylize_clip` in a
worker into the cache folder, with progress, frames per second, time left and
Cancel; Save copies the finished clip where the user says, atomically.
"""

from __future__ import annotations

import html
import shutil
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QDeadlineTimer, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSlider,
                               QVBoxLayout, QWidget)

from mlabs_desktop.core.atomic import write_with
from mlabs_desktop.core.events import format_duration
from mlabs_desktop.core.outputs import styled_name
from mlabs_desktop.core.paths import cache_dir
from mlabs_desktop.core.stylize.stylizer import BlendOptions, finish
from mlabs_desktop.core.video.clips import ClipInfo
from mlabs_desktop.core.video.pipeline import PREVIEW_SECONDS, ClipOptions, ClipProgress, stylize_clip
from mlabs_desktop.core.video.reader import frame_at
from mlabs_desktop.gui.kit.common import Worker
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.stylize.before_after import BeforeAfterView
from mlabs_desktop.gui.stylize.blend_renderer import display_image
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.stylize.work import StylizerCache

SCRUB_DELAY_MS = 150    # the frame is stylized once the scrubber rests this long
STEADY_NEEDS = ("Steady holds one style at its trained brush size: with another Brush size or a Mix of two "
                "styles' results, each frame is styled on its own")


def clock(seconds: float) -> str:
    """``m:ss.t``: a moment in a clip, to the tenth of a second (never rounded up past it)."""
    tenths = int(max(0.0, seconds) * 10 + 1e-6)
    return f"{format_duration(tenths // 10)}.{tenths % 10}"


class ClipWindow(QWidget):
    """One clip in one look (a style, its brush size, a mix). The owner calls ``cancel_and_wait`` before quitting."""

    closed = Signal(object)

    def __init__(self, services: Services, info: ClipInfo, look: Look, options: BlendOptions,
                 stylizers: StylizerCache, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.info, self.look, self.options = info, look, options
        self._services = services
        self._stylizers = stylizers  # shared by every clip window: a style's network loads once
        self._rendered: dict[str, Path] = {}     # "preview" / "whole" -> the finished file in the cache folder
        self._worker: Worker | None = None
        self._still_wanted: float | None = None
        self._closed = False
        self.setWindowTitle(f"{info.path.name} in {look.title} - MachineLabs Desktop")
        self._build()
        self._scrub_timer = QTimer(self, singleShot=True, interval=SCRUB_DELAY_MS)
        self._scrub_timer.timeout.connect(self._show_moment)
        self.resize(960, 640)
        self._show_moment()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        info = self.info
        sound = f", sound ({info.audio})" if info.audio else ", no sound"
        self.facts = QLabel(f"<b>{info.path.name}</b> &nbsp; {info.width}x{info.height}, {info.fps:.3g} frames/s, "
                            f"{clock(info.seconds)}, {info.frames:,} frames{sound} &nbsp; "
                            f"Style: <b>{html.escape(self.look.title)}</b>")
        self.compare = BeforeAfterView()
        self.compare.set_labels("Original", self.look.title)
        self.scrubber = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=max(0, info.frames - 1),
                                toolTip="Pick the moment to compare (arrow keys step one frame)")
        self.scrubber.setAccessibleName("Frame")
        self.scrubber.valueChanged.connect(self._on_scrub)
        self.time_label = QLabel(minimumWidth=120, alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.steady = QCheckBox("Steady", checked=self.look.as_trained, enabled=self.look.as_trained,
                                toolTip="Hold the look steady from frame to frame (about half the speed); off "
                                        "styles each frame on its own" if self.look.as_trained else STEADY_NEEDS)
        self.preview_button = QPushButton(f"Preview first {PREVIEW_SECONDS:.0f} s",
                                          toolTip="Render the clip's first seconds, to scrub through before "
                                                  "committing to the whole clip")
        self.render_button = QPushButton("Stylize whole clip", default=True)
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.save_button = QPushButton("Save…", enabled=False, toolTip="Save the finished clip as MP4 (H.264), "
                                                                       "with the original's sound")
        self.preview_button.clicked.connect(lambda: self.render(PREVIEW_SECONDS))
        self.render_button.clicked.connect(lambda: self.render(None))
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self.save_dialog)
        self.progress = QProgressBar(visible=False, maximumWidth=240)
        self.status = QLabel("Drag the slider to see any moment before and after.")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(self.progress.sizeHint().height())  # no jump when the bar appears

        scrub = QHBoxLayout()
        scrub.addWidget(self.scrubber, 1)
        scrub.addWidget(self.time_label)
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.steady)
        buttons.addStretch(1)
        for button in (self.preview_button, self.render_button, self.cancel_button, self.save_button):
            buttons.addWidget(button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.progress)
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 16, 16, 12)
        root.setSpacing(10)
        root.addWidget(self.facts)
        root.addWidget(self.compare, 1)
        root.addLayout(scrub)
        root.addLayout(buttons)
        root.addLayout(bottom)

    # ------------------------------------------------------------------ moments
    def moment(self) -> float:
        """The scrubber's time in seconds."""
        return self.scrubber.value() / self.info.fps if self.info.fps else 0.0

    def _on_scrub(self) -> None:
        self.time_label.setText(f"{clock(self.moment())} / {clock(self.info.seconds)}")
        self._scrub_timer.start()

    def _rendered_at(self, seconds: float) -> Path | None:
        if "whole" in self._rendered:
            return self._rendered["whole"]
        if "preview" in self._rendered and seconds < PREVIEW_SECONDS:
            return self._rendered["preview"]
        return None

    def _show_moment(self) -> None:
        seconds = self.moment()
        self.time_label.setText(f"{clock(seconds)} / {clock(self.info.seconds)}")
        if self.is_busy():
            self._still_wanted = seconds  # shown once the running job ends
            return
        self._start(Worker(self._still_job(seconds, self._rendered_at(seconds)), name="clip-frame"),
                    self._on_still)
        self.compare.set_overlay("Stylizing this frame…")

    def _still_job(self, seconds: float, rendered: Path | None) -> Callable:
        def job(report, cancelled):
            original = frame_at(self.info, seconds)
            if rendered is not None:
                from mlabs_desktop.core.video.clips import probe

                styled = frame_at(probe(rendered), seconds).astype(np.float32)
            else:
                stylizer = self._stylizers.for_look(self.look, self._services.settings.default_device)
                styled = finish(original.astype(np.float32), stylizer.run(original), self.options)
            return display_image(original, None), display_image(styled, None), rendered is not None
        return job

    def _on_still(self, result) -> None:
        original, styled, from_render = result
        self.compare.set_images(original, styled)
        self.compare.set_overlay(None)
        shown = "as rendered" if from_render else "this frame alone"
        self.compare.set_labels("Original", f"{self.look.title}, {shown}")

    # ------------------------------------------------------------------ rendering
    def render(self, seconds: float | None) -> None:
        """Stylize the first ``seconds`` (a preview) or the whole clip into the cache folder."""
        if self.is_busy():
            return
        kind = "preview" if seconds is not None else "whole"
        target = cache_dir() / "clips" / f"{uuid.uuid4().hex}.mp4"
        options = ClipOptions(self.options, steady=self.steady.isChecked(), seconds=seconds)

        def job(report, cancelled):
            stylizer = self._stylizers.for_look(self.look, self._services.settings.default_device)
            return kind, stylize_clip(stylizer, self.info.path, target, options, report, cancelled).path
        worker = Worker(job, name=f"clip-{kind}")
        worker.progress.connect(self._on_progress)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.status.setText("Loading the style…" if kind == "whole" else f"Rendering the first {seconds:.0f} s…")
        self._start(worker, self._on_rendered)

    def _on_progress(self, p: ClipProgress) -> None:
        self.progress.setRange(0, p.frames_total)
        self.progress.setValue(p.frames_done)
        self.status.setText(f"Frame {p.frames_done:,} of {p.frames_total:,} · {p.frames_per_second:.2f} frames/s · "
                            f"{format_duration(p.seconds_left)} left")

    def _on_rendered(self, result) -> None:
        kind, path = result
        if self._closed:  # finished after the window closed: nobody will save it
            path.unlink(missing_ok=True)
            return
        old = self._rendered.pop(kind, None)
        if old is not None:
            old.unlink(missing_ok=True)
        self._rendered[kind] = path
        self.status.setText("The whole clip is ready: Save… writes it." if kind == "whole" else
                            f"Preview ready: the first {PREVIEW_SECONDS:.0f} s show as rendered. "
                            "Stylize whole clip when it looks right.")
        self.scrubber.setValue(min(self.scrubber.value(), self.scrubber.maximum()))
        self._still_wanted = self.moment()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.status.setText("Cancelling…")

    # ------------------------------------------------------------------ saving
    def default_target(self) -> Path:
        return self.info.path.with_name(styled_name(self.info.path.stem, self.look.title, ".mp4"))

    def save_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save stylized clip", str(self.default_target()),
                                              "MP4 video (*.mp4)")
        if name:
            self.save_to(Path(name))

    def save_to(self, target: Path) -> None:
        """Copy the finished clip to ``target`` (made .mp4) off the GUI thread; nothing partial is left."""
        source = self._rendered.get("whole")
        if source is None or self.is_busy():
            return
        target = target if target.suffix.lower() == ".mp4" else target.with_name(target.name + ".mp4")
        self.status.setText(f"Saving {target.name}…")
        self._start(Worker(lambda report, cancelled: write_with(target, lambda tmp: shutil.copyfile(source, tmp))
                           or target, name="clip-save"),
                    lambda saved: self.status.setText(f"Saved {saved}"))

    # ------------------------------------------------------------------ workers
    def _start(self, worker: Worker, done: Callable) -> None:
        self._worker = worker
        worker.succeeded.connect(done)
        worker.failed.connect(self._on_failed)
        worker.cancelled_signal.connect(lambda: self.status.setText("Cancelled; nothing was written."))
        worker.finished.connect(lambda w=worker: self._on_finished(w))
        self._update_buttons()
        self._services.workers.start(worker)

    def _on_failed(self, message: str) -> None:
        self.status.setText(message)
        self.compare.set_overlay(None)
        self._services.hub.error.emit(f"Cannot stylize {self.info.path.name}", message)

    def _on_finished(self, worker: Worker) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.progress.setVisible(False)
        self._update_buttons()
        if self._still_wanted is not None:
            self._still_wanted = None
            self._show_moment()

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        rendering = busy and self._worker.objectName() in ("clip-preview", "clip-whole")
        self.preview_button.setEnabled(not busy)
        self.render_button.setEnabled(not busy)
        self.cancel_button.setEnabled(rendering)
        self.save_button.setEnabled(not busy and "whole" in self._rendered)

    def is_busy(self) -> bool:
        return self._worker is not None

    def cancel_and_wait(self, timeout_ms: int) -> bool:
        """Stop what runs (a save is finished) and wait for it; False if it is still running."""
        worker = self._worker
        if worker is None:
            return True
        if worker.objectName() != "clip-save":
            worker.cancel()
        return worker.wait(QDeadlineTimer(max(0, timeout_ms)))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._closed = True
        if self.cancel_and_wait(10_000):
            self._discard_renders()
        else:  # a save still copying: its source goes once it is done
            self._worker.finished.connect(self._discard_renders)
        self.closed.emit(self)
        super().closeEvent(event)

    def _discard_renders(self) -> None:
        for path in self._rendered.values():
            path.unlink(missing_ok=True)
        self._rendered.clear()
