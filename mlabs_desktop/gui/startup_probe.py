"""How long the app takes to show its window, measured in a fresh interpreter (for ``mlabs-desktop bench``)."""

from __future__ import annotations

import sys
import time

_STARTUP_SCRIPT = """
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["MLABS_DESKTOP_HOME"] = sys.argv[1]
from mlabs_desktop.gui.app import application
from mlabs_desktop.gui.main_window import MainWindow
from mlabs_desktop.gui.kit.services import Services
app = application(headless=True)
window = MainWindow(Services(), persist_state=False)
window.show()
app.processEvents()
print("SHOWN", "tensorflow" in sys.modules, flush=True)
"""


def measure_startup(runs: int = 3) -> dict:
    """Seconds from launching a fresh interpreter until the main window is shown (best of ``runs``)."""
    import subprocess
    import tempfile

    import importlib.util

    # A bundle has no interpreter to launch the probe with; a headless GPU box may have no Qt.
    if getattr(sys, "frozen", False) or importlib.util.find_spec("PySide6") is None:
        return {"window_shown_seconds": None, "tensorflow_imported_before_window": None}

    best = float("inf")
    imported_tf = None
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", _STARTUP_SCRIPT, home], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            for line in proc.stdout:
                if line.startswith("SHOWN"):
                    best = min(best, time.perf_counter() - started)
                    imported_tf = line.split()[1] == "True"
                    break
            proc.kill()
            proc.wait()
    return {"window_shown_seconds": round(best, 3), "tensorflow_imported_before_window": imported_tf}
