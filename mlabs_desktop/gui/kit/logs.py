"""The app's log file: a small rotating file in the user's log folder.

A windowed build (PyInstaller ``--windowed``, ``pythonw``) has ``sys.stdout``
and ``sys.stderr`` set to None; writing to them would raise, so console output
is only added when a console exists. Qt's own warnings and uncaught exceptions
from slots go to the same file, because in a windowed build they would
otherwise vanish.
"""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from mlabs_desktop.core import paths

LOG_FILE = "mlabs-desktop.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
LOGGER_NAME = "mlabs_desktop"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Marks the handlers installed here, so a second call (tests, a second run_app)
# replaces them instead of stacking duplicates.
_OURS = "_mlabs_desktop_handler"


def log_file() -> Path:
    return paths.log_dir() / LOG_FILE


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Send the app's log to a rotating file (1 MB x 3); returns the file, or None if unwritable."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if getattr(h, _OURS, False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)
    logger.propagate = False
    formatter = logging.Formatter(_FORMAT)

    path: Path | None
    try:
        path = log_file()
        file_handler: logging.Handler = RotatingFileHandler(path, maxBytes=MAX_BYTES,
                                                            backupCount=BACKUP_COUNT, encoding="utf-8")
    except OSError:
        # A read-only or full disk must not stop the app from starting.
        path, file_handler = None, logging.NullHandler()
    file_handler.setFormatter(formatter)
    setattr(file_handler, _OURS, True)
    logger.addHandler(file_handler)

    if sys.stderr is not None:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)   # the file has the details; the console only problems
        console.setFormatter(formatter)
        setattr(console, _OURS, True)
        logger.addHandler(console)

    _install_hooks(logger)
    return path


def _install_hooks(logger: logging.Logger) -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}

    def qt_message(kind: QtMsgType, context: object, message: str) -> None:
        logging.getLogger(f"{LOGGER_NAME}.qt").log(levels.get(kind, logging.WARNING), "%s", message)

    qInstallMessageHandler(qt_message)

    previous = sys.excepthook

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        # An exception escaping a slot would otherwise only reach a (possibly absent) stderr.
        logger.error("uncaught exception", exc_info=(kind, value, tb))
        if sys.stderr is not None and previous is not excepthook:
            previous(kind, value, tb)

    if not getattr(sys.excepthook, _OURS, False):
        setattr(excepthook, _OURS, True)
        sys.excepthook = excepthook
