"""Small pieces every view uses: image conversion, dropped paths, throttling, workers."""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import shiboken6
from PySide6.QtCore import QMimeData, QObject, Qt, QThread, QUrl, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QApplication, QComboBox, QMessageBox, QWidget

from mlabs_desktop.core import messages
from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.images.decode import IMAGE_EXTENSIONS
from mlabs_desktop.core.hardware.memory import out_of_memory
from mlabs_desktop.core.outputs import describe

MODEL_BUNDLE_SUFFIX = ".mlstyle"
# What the window takes, for any message about a file it cannot use.
DROP_ADVICE = ("Drop or open photos (JPEG, PNG, WebP, BMP or TIFF) or folders that hold them, or clips (MP4, MOV, "
               "MKV, WebM or AVI), to stylize them, or style models (.mlstyle bundles or model folders) to add "
               "them to the Library.")


def qimage_from_array(rgb: np.ndarray, alpha: np.ndarray | None = None) -> QImage:
    """A deep-copied QImage from float or uint8 RGB (H, W, 3), with optional alpha."""
    pixels = np.clip(np.rint(rgb), 0, 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
    if alpha is not None:
        a = np.clip(np.rint(alpha), 0, 255).astype(np.uint8)
        pixels = np.ascontiguousarray(np.dstack([pixels, a]))
        h, w = pixels.shape[:2]
        return QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def pixmap_from_array(rgb: np.ndarray, alpha: np.ndarray | None = None) -> QPixmap:
    return QPixmap.fromImage(qimage_from_array(rgb, alpha))


def pixmap_from_file(path: Path | str, max_side: int | None = None) -> QPixmap | None:
    """A (scaled) pixmap of an image file, or None when it cannot be read."""
    pixmap = QPixmap(str(path))
    if pixmap.isNull():
        try:
            from mlabs_desktop.core.images.decode import load_image

            loaded = load_image(path, max_size=max_side)
            pixmap = pixmap_from_array(loaded.rgb, loaded.alpha)
        except UserError:
            return None
    if max_side and max(pixmap.width(), pixmap.height()) > max_side:
        from PySide6.QtCore import Qt

        pixmap = pixmap.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
    return pixmap


def local_path(url: QUrl) -> Path:
    """The file a file:// URL names, byte for byte.

    ``toLocalFile`` decodes the name as UTF-8, so a name in another encoding
    (old archives, other systems' disks) would come back as a file that does not
    exist; POSIX file names are bytes, so the percent-encoded bytes are decoded as the OS does.
    """
    if os.name == "nt":
        return Path(url.toLocalFile())
    from urllib.parse import unquote_to_bytes

    return Path(os.fsdecode(unquote_to_bytes(url.path(QUrl.ComponentFormattingOption.FullyEncoded))))


def dropped_paths(mime: QMimeData) -> list[Path]:
    """Local files and folders from a drop, in order, duplicates removed."""
    seen: dict[Path, None] = {}
    for url in mime.urls():
        if url.isLocalFile():
            seen[local_path(url)] = None
    return list(seen)


def dropped_urls(mime: QMimeData) -> list[str]:
    """http(s) image URLs from a drop (an image dragged out of a web browser)."""
    return [u.toString() for u in mime.urls() if u.scheme() in ("http", "https")]


def expand_images(paths: Iterable[Path]) -> list[Path]:
    """Image files from files and folders (folders searched recursively), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                                and p.is_file() and not p.name.startswith(".")))
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            found.append(path)
    return list(dict.fromkeys(found))


class Throttle:
    """Lets an action through at most ``per_second`` times a second (the last one is kept)."""

    def __init__(self, per_second: float = 10.0):
        self.interval = 1.0 / per_second
        self._last = 0.0

    def ready(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False


class Worker(QThread):
    """Runs ``job(report, cancelled)`` off the GUI thread.

    ``report(obj)`` crosses to the GUI thread as the ``progress`` signal (the
    objects are small immutable dataclasses); errors arrive as one readable
    message on ``failed``. ``cancel()`` sets a flag the job checks between steps.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled_signal = Signal()

    def __init__(self, job: Callable[[Callable[[Any], None], Callable[[], bool]], Any],
                 parent: QObject | None = None, name: str = "worker"):
        super().__init__(parent)
        self._job = job
        self._cancel = False
        self.setObjectName(name)

    def cancel(self) -> None:
        self._cancel = True
        self.requestInterruption()

    def is_cancelled(self) -> bool:
        return self._cancel or self.isInterruptionRequested()

    def run(self) -> None:
        try:
            result = self._job(self.progress.emit, self.is_cancelled)
        except Cancelled:
            self.cancelled_signal.emit()
        except UserError as exc:
            self.failed.emit(user_text(exc))
        except MemoryError:
            self.failed.emit(messages.out_of_memory(messages.APP))
        except Exception as exc:  # noqa: BLE001 - every failure must reach the window
            self.failed.emit(describe_exception(exc))
        else:
            self.succeeded.emit(result)


def narrow_combo(combo: QComboBox) -> QComboBox:
    """A combo box that may be narrower than its longest choice (elided), so the form fits a small window."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
    return combo


def user_text(exc: BaseException) -> str:
    """An expected failure (a `UserError`, an `OSError`) as the app words it: fields and buttons, not flags."""
    return exc.text(messages.APP) if isinstance(exc, UserError) else str(exc)


def describe_exception(exc: BaseException) -> str:
    """A readable message for an unexpected failure, with what to do next."""
    name = type(exc).__name__
    if out_of_memory(exc):
        return messages.out_of_memory(messages.APP)
    import logging

    logging.getLogger("mlabs_desktop").error("unexpected error\n%s", "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return f"Something went wrong ({name}: {exc}). Details are in the log file (Help > Open log folder)."


def _untrack(worker: Worker, track: set[Worker]) -> None:
    worker.wait()  # `finished` comes a moment before the thread has really ended
    track.discard(worker)


class WorkerSet:
    """Keeps parentless workers referenced until their thread has really ended.

    A QThread destroyed while running aborts the process, and ``finished``
    arrives a moment before the thread ends, so the last reference is dropped
    only after ``wait()``. Connect a worker's signals before ``start(worker)``
    so no result is lost; ``stop()`` cancels and waits for all (closing a window).
    """

    def __init__(self) -> None:
        self._workers: list[Worker] = []

    def start(self, worker: Worker) -> Worker:
        self._workers.append(worker)
        worker.finished.connect(lambda w=worker: self._forget(w))
        worker.start()
        return worker

    def run(self, job: Callable[[], Any], on_done: Callable[[Any], None],
            on_failed: Callable[[str], None] | None = None, name: str = "job",
            receiver: QObject | None = None, track: set[Worker] | None = None) -> Worker:
        """Run ``job()`` in a new `Worker`; its result or error message arrives on the GUI thread.

        With ``receiver``, the callbacks are dropped once that widget is gone (a view
        closed while its scan still ran). ``track`` holds the worker while it runs.
        """
        def guarded(callback: Callable[[Any], None]) -> Callable[[Any], None]:
            return lambda value: callback(value) if receiver is None or shiboken6.isValid(receiver) else None

        worker = Worker(lambda report, cancelled: job(), None, name=name)
        worker.succeeded.connect(guarded(on_done))
        if on_failed is not None:
            worker.failed.connect(guarded(on_failed))
        if track is not None:
            track.add(worker)
            worker.finished.connect(lambda: _untrack(worker, track))
        return self.start(worker)

    def _forget(self, worker: Worker) -> None:
        worker.wait()
        if worker in self._workers:
            self._workers.remove(worker)

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait, without cancelling, for every worker; False when one outlived the timeout."""
        return all(worker.wait(timeout_ms) for worker in list(self._workers) if worker.isRunning())

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel every worker and wait for it; False when one outlived the timeout."""
        for worker in list(self._workers):
            worker.cancel()
        return all(worker.wait(timeout_ms) for worker in list(self._workers))

    def __len__(self) -> int:
        return len(self._workers)


@contextlib.contextmanager
def wait_cursor() -> Iterator[None]:
    """The busy cursor for a short job on the GUI thread, restored however it ends."""
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        yield
    finally:
        QApplication.restoreOverrideCursor()


def confirm_replace(parent: QWidget, paths: Sequence[Path]) -> bool:
    """Ask before replacing files that exist; No is the default, so Enter keeps them."""
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(parent, "Replace files?", f"This would replace {describe(paths)}.\n\nReplace "
                                  f"{'it' if len(paths) == 1 else 'them'}?", buttons.Yes | buttons.No, buttons.No)
    return answer == buttons.Yes
