"""Quitting while work runs: every question is asked first, then everything is stopped the way it keeps its work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtWidgets import QApplication, QMessageBox

STOP_TRAINING_TIMEOUT_MS = 120_000   # one training step plus a checkpoint write, on a slow CPU
STOP_STYLIZE_TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class RunningWork:
    """Something running when the user quits: the question asked, then how it is stopped."""
    question: str
    stopping: str               # the status line while it stops
    stop: Callable[[], bool]    # stops it and waits; False: it is still finishing
    still: str                  # said when it is still finishing


def finish_running_work(window) -> bool:  # noqa: ANN001 - MainWindow (which imports this module)
    """Ask about everything running, then stop it all (training saves a checkpoint, a fast copy is saved);
    False keeps the window open, and a No anywhere stops nothing."""
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    running = running_work(window)
    if any(QMessageBox.question(window, "Quit", work.question, yes | no, no) != yes for work in running):
        return False
    for work in running:
        window.status_text.setText(work.stopping)
        QApplication.processEvents()
        if not work.stop():
            QMessageBox.warning(window, "Quit", f"{work.still} Try again in a moment.")
            return False
    window.clips.close_all()
    return True


def running_work(window) -> list[RunningWork]:  # noqa: ANN001 - MainWindow
    train, stylize, library, clips = window.train_view, window.stylize_view, window.library_view, window.clips
    running = []
    if train is not None and train.is_training():
        running.append(RunningWork("Training is running. Stop it (a checkpoint is saved) and quit?",
                                   "Stopping training and saving a checkpoint…",
                                   lambda: train.request_stop_and_wait(STOP_TRAINING_TIMEOUT_MS),
                                   "Training is still saving its checkpoint."))
    if library.running_fast_copies():
        running.append(RunningWork("A fast copy is being made. Stop it (the copy keeps what it learnt, in the "
                                   "Library) and quit?", "Stopping the fast copy…",
                                   lambda: library.stop_fast_copies_and_wait(STOP_TRAINING_TIMEOUT_MS),
                                   "The fast copy is still being saved."))
    if (stylize is not None and stylize.is_busy()) or clips.is_busy():
        running.append(RunningWork("Stylizing is running. Cancel it and quit?", "Cancelling stylizing…",
                                   lambda: all([clips.cancel_and_wait(STOP_STYLIZE_TIMEOUT_MS),
                                                stylize is None or stylize.cancel_and_wait(STOP_STYLIZE_TIMEOUT_MS)]),
                                   "Stylizing is still finishing."))
    return running
