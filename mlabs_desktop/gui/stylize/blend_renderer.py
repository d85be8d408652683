"""Re-blending a cached result for a new strength or colour choice, and the QImage the canvas draws."""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QDeadlineTimer, QObject, Signal, Slot
from PySide6.QtGui import QImage

from mlabs_desktop.core.stylize.stylizer import BlendOptions, finish
from mlabs_desktop.gui.kit.common import Worker, qimage_from_array


def display_image(rgb: np.ndarray, alpha: np.ndarray | None) -> QImage:
    """A QImage in the format the canvas draws directly; QImage (unlike QPixmap) is safe off the GUI thread."""
    fmt = QImage.Format.Format_ARGB32_Premultiplied if alpha is not None else QImage.Format.Format_RGB32
    return qimage_from_array(rgb, alpha).convertToFormat(fmt)


def render_blend(rgb: np.ndarray, raw: np.ndarray, alpha: np.ndarray | None, options: BlendOptions) -> QImage:
    """The finished picture, ready to draw."""
    return display_image(finish(rgb, raw, options), alpha)


class BlendRenderer(QObject):
    """Re-blends a cached result for a new strength or colour choice, never running the network.

    A big photo takes a noticeable part of a second in NumPy, so it is blended in
    a thread of its own (not the network queue) and the newest request wins;
    ``ready(token, image)`` brings the picture back to the GUI thread.
    """

    ready = Signal(int, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._worker: Worker | None = None
        self._waiting: tuple[int, Callable[[Callable[[Any], None], Callable[[], bool]], QImage]] | None = None
        self._tokens = itertools.count(1)

    def request(self, rgb: np.ndarray, raw: Callable[[], np.ndarray], alpha: np.ndarray | None,
                options: BlendOptions) -> int:
        """Blend ``raw()`` (made in the thread too: mixing two styles' results costs as much as blending)."""
        token = next(self._tokens)
        self._waiting = (token, lambda report, cancelled: render_blend(rgb, raw(), alpha, options))
        self._start()
        return token

    def is_busy(self) -> bool:
        return self._worker is not None

    def cancel_and_wait(self, deadline: QDeadlineTimer) -> bool:
        self._waiting = None
        if self._worker is not None and not self._worker.wait(deadline):
            return False
        self._worker = None
        return True

    def _start(self) -> None:
        if self._worker is not None or self._waiting is None:
            return  # the running blend finishes first; then only the newest waiting one runs
        token, job = self._waiting
        self._waiting = None
        worker = Worker(job, parent=self, name="blend")
        worker.setProperty("token", token)
        worker.succeeded.connect(self._on_done)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    @Slot(object)
    def _on_done(self, image: object) -> None:
        worker = self.sender()
        if worker is self._worker and self._worker is not None:
            self.ready.emit(int(self._worker.property("token")), image)

    @Slot()
    def _on_finished(self) -> None:
        worker = self.sender()
        if worker is self._worker and self._worker is not None:
            self._worker.wait()
            self._worker.deleteLater()
            self._worker = None
        self._start()
