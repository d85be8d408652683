"""Save and Save all from the Stylize view: file names, and finishing and writing off the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PySide6.QtCore import QDeadlineTimer, QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from mlabs_desktop.core.errors import Cancelled
from mlabs_desktop.core.images.encode import SAVE_FORMATS, save_image
from mlabs_desktop.core.images.decode import LoadedImage, load_image
from mlabs_desktop.core.filenames import slugify
from mlabs_desktop.core.outputs import InputSet, occupied, styled_name
from mlabs_desktop.core.stylize.stylizer import BlendOptions, finish
from mlabs_desktop.gui.kit.common import Worker, confirm_replace
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.stylize.queue import QueueItem


def output_name(item: QueueItem, style: str, alpha: bool = False, suffix: str | None = None) -> str:
    """``<stem>-<style>.jpg``; PNG for transparent photos, whose alpha JPEG would lose."""
    return styled_name(item.stem, style, suffix or (".png" if alpha else ".jpg"))


def unique_targets(folder: Path, items: Sequence[QueueItem], style: str, replace: bool,
                   originals: InputSet | None = None) -> list[tuple[Path, QueueItem]]:
    """Where Save all writes each item: its own name and type with a ``-<style>`` suffix.

    Two photos with the same name (from different folders) never overwrite each
    other; with ``replace`` False, files already in ``folder`` are kept too; an
    original photo (in ``originals``) is never replaced.
    """
    taken: set[str] = set()
    out: list[tuple[Path, QueueItem]] = []
    for item in items:
        ext = Path(item.name).suffix.lower()
        ext = ext if ext in SAVE_FORMATS else ".jpg"
        if item.has_alpha and ext in (".jpg", ".jpeg", ".bmp"):
            ext = ".png"
        name, n = output_name(item, style, suffix=ext), 2
        while name.casefold() in taken or (not replace and occupied(folder / name)) or \
                (originals is not None and originals.holds(folder / name)):
            name, n = f"{item.stem}-{slugify(style)} ({n}){ext}", n + 1
        taken.add(name.casefold())
        out.append((folder / name, item))
    return out


@dataclass(frozen=True)
class ExportItem:
    """One file to write: where, and how to get its original and raw result in the worker thread."""

    target: Path
    image: LoadedImage | None          # None: it was let go of, read again from ``local``
    local: Path | None
    raw: Callable[[], np.ndarray | None]  # None: the result could not be kept; the photo must run again


@dataclass(frozen=True)
class Saved:
    files: list[Path]
    missing: list[str]  # names of photos whose result was no longer kept


def export_job(work: Sequence[ExportItem],
               options: BlendOptions) -> Callable[[Callable[[Any], None], Callable[[], bool]], Saved]:
    """A `Worker` job finishing and saving (atomically) each item, one photo in memory at a time."""
    def job(report: Callable[[Any], None], cancelled: Callable[[], bool]) -> Saved:
        saved: list[Path] = []
        missing: list[str] = []
        for index, entry in enumerate(work, 1):
            if cancelled():
                raise Cancelled()
            report(f"Saving {entry.target.name} ({index} of {len(work)})…")
            raw = entry.raw()
            image = entry.image or (load_image(entry.local) if entry.local is not None and raw is not None else None)
            if raw is None or image is None or raw.shape[:2] != image.rgb.shape[:2]:
                missing.append(entry.target.name)
                continue
            saved.append(save_image(entry.target, finish(image.rgb, raw, options), image.alpha))
        return Saved(saved, missing)
    return job


class Exporter(QObject):
    """Save and Save all: asks where, then finishes and writes full-size files off the GUI thread.

    Writing a big photo takes a moment and a folder of them much longer; the
    network queue is not involved, so saving never waits behind stylizing.
    """

    busy_changed = Signal()

    def __init__(self, parent: QWidget, say: Callable[[str], None], error: Callable[[str, str], None],
                 result: Callable[[QueueItem, Look], np.ndarray | None], originals: Callable[[], list[Path]]):
        super().__init__(parent)
        self._window, self._say, self._error, self._result = parent, say, error, result
        self._originals = originals
        self._worker: Worker | None = None

    def is_busy(self) -> bool:
        return self._worker is not None

    def save_one(self, item: QueueItem, look: Look, options: BlendOptions, start: Path) -> None:
        suggested = start / output_name(item, look.title, alpha=item.has_alpha)
        path, _ = QFileDialog.getSaveFileName(self._window, "Save styled photo", str(suggested),
                                              "JPEG (*.jpg *.jpeg);;PNG (*.png);;WebP (*.webp);;TIFF (*.tif *.tiff)")
        if not path:
            return
        target = Path(path) if Path(path).suffix else Path(path + ".jpg")
        if InputSet(self._originals()).holds(target):
            self._error("That is an original photo", f"{target.name} is one of the photos in the queue; a styled "
                        "copy never replaces its original. Save again and choose another name.")
            return
        if target.name != Path(path).name and occupied(target) and not confirm_replace(self._window, [target]):
            return  # the dialog asked about the name without .jpg
        self.start([(target, item)], look, options)

    def save_all(self, items: Sequence[QueueItem], look: Look, options: BlendOptions, start: Path) -> None:
        folder = QFileDialog.getExistingDirectory(self._window, "Save all styled photos into", str(start))
        if not folder:
            return
        originals = InputSet(self._originals())
        targets = unique_targets(Path(folder), items, look.title, replace=True, originals=originals)
        existing = sum(occupied(t) for t, _ in targets)
        if existing:
            buttons = QMessageBox.StandardButton
            answer = QMessageBox.question(self._window, "Replace files?",
                                          f"{existing} of these files already exist in {folder}. Replace them?\n\n"
                                          "No keeps them and saves the new ones with a number added.",
                                          buttons.Yes | buttons.No | buttons.Cancel)
            if answer == buttons.Cancel:
                return
            if answer == buttons.No:
                targets = unique_targets(Path(folder), items, look.title, replace=False, originals=originals)
        self.start(targets, look, options)

    def start(self, targets: Sequence[tuple[Path, QueueItem]], look: Look, options: BlendOptions) -> None:
        # Only references are taken here: results spilled to disk are read in the worker, one at a time.
        work = [ExportItem(path, it.image, it.local, lambda it=it: self._result(it, look))
                for path, it in targets if it.ready(look)]
        worker = Worker(export_job(work, options), parent=self, name="export")
        # Bound methods of this GUI-thread object, so Qt delivers them on the GUI thread.
        worker.progress.connect(self._on_progress)
        worker.succeeded.connect(self._on_saved)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.busy_changed.emit()
        worker.start()

    def cancel_and_wait(self, deadline: QDeadlineTimer) -> bool:
        if self._worker is None:
            return True
        self._worker.cancel()  # checked between files; the file being written is finished atomically
        if not self._worker.wait(deadline):
            return False
        self._worker = None
        return True

    @Slot(object)
    def _on_progress(self, text: object) -> None:
        self._say(str(text))

    @Slot(object)
    def _on_saved(self, saved: Saved) -> None:
        files = saved.files
        if len(files) == 1:
            self._say(f"Saved {files[0].name}")
        elif files:
            self._say(f"Saved {len(files)} photos to {files[0].parent}")
        if saved.missing:
            names = ", ".join(saved.missing[:5]) + (f" and {len(saved.missing) - 5} more" if len(saved.missing) > 5 else "")
            self._error("Some photos were not saved",
                        f"{len(saved.missing)} styled photo{'s were' if len(saved.missing) != 1 else ' was'} no longer "
                        f"kept in memory or on disk (the disk was nearly full): {names}. Select them in the queue "
                        "to stylize them again, then save again.")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._error("Could not save", f"{message} Choose another folder or file name and try again.")

    @Slot()
    def _on_finished(self) -> None:
        worker = self.sender()
        if worker is self._worker and self._worker is not None:
            self._worker.wait()  # `finished` comes a moment before the thread has really ended
            self._worker.deleteLater()
            self._worker = None
        self.busy_changed.emit()
