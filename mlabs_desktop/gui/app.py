"""Starting the desktop app, rendering a view to PNG, and the packaged build's self-test.

TensorFlow takes seconds to import, so nothing here imports it before the
window is on screen: device detection runs in a worker thread afterwards, and
only the self-test (which must run a network) loads it directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from mlabs_desktop.core.images.decode import load_image
from mlabs_desktop.core import paths
from mlabs_desktop.gui.kit.logs import setup_logging
from mlabs_desktop.gui.kit.pyside_guard import keep_singletons_alive

log = logging.getLogger("mlabs_desktop.gui")

ORGANIZATION = "MachineLabs"
APPLICATION = "MachineLabs Desktop"
SCREENSHOT_SIZE = (1280, 800)
SETTLE_MS = 1500   # lets async scans and thumbnail loads finish before a screenshot


def _say(text: str, error: bool = False) -> None:
    """Print for a console; a windowed build has no sys.stdout/sys.stderr at all."""
    stream = sys.stderr if error else sys.stdout
    if stream is not None:
        print(text, file=stream, flush=True)


def _no_display() -> bool:
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or
                                                     os.environ.get("WAYLAND_DISPLAY"))


def application(headless: bool = False) -> QApplication:
    """The one QApplication (reused when one exists, as under pytest-qt)."""
    keep_singletons_alive()
    app = QApplication.instance()
    if app is None:
        if headless and _no_display():
            # --screenshot and --self-test must work on a server or in CI.
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(sys.argv[:1])
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setDesktopFileName("mlabs-desktop")  # lets Wayland match the window to the .desktop icon
    try:
        from mlabs_desktop.resources import resource_path
        app.setWindowIcon(QIcon(str(resource_path("resources", "icons", "mlabs-desktop.png"))))
    except FileNotFoundError:
        pass   # a source checkout without icons still runs
    return app  # type: ignore[return-value]


def process_events_for(ms: int) -> None:
    """Run the event loop for ``ms`` milliseconds (workers report, timers fire), without sleeping."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def run_app(view: str | None = None, screenshot: str | None = None, self_test: bool = False) -> int:
    """Open the app (or render ``view`` to ``screenshot``, or run the self-test); returns the exit code."""
    app = application(headless=bool(screenshot or self_test))
    log_path = setup_logging()
    log.info("starting MachineLabs Desktop (log %s)", log_path)
    if self_test:
        return run_self_test()

    from mlabs_desktop.gui.main_window import MainWindow
    from mlabs_desktop.gui.kit.services import Services

    services = Services()
    if not screenshot and not library_usable(services):
        return 2
    window = MainWindow(services, persist_state=not screenshot)
    if screenshot:
        return render_screenshot(window, view, Path(screenshot))
    if view:
        window.show_view(view)
    window.show()
    # After the first paint: the window appears first, then TensorFlow loads in the background.
    QTimer.singleShot(0, window.start_device_detection)
    return app.exec()


def library_usable(services) -> bool:  # noqa: ANN001 - Services
    """A library folder that cannot be used (its drive unplugged) is said before the window opens, with a way
    on: the default folder (saved in Settings), or quit. False: quit."""
    from PySide6.QtWidgets import QMessageBox

    from mlabs_desktop.core.errors import UserError
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.gui.kit.common import user_text

    try:
        Library()
        return True
    except UserError as exc:
        problem = user_text(exc)
    box = QMessageBox(QMessageBox.Icon.Warning, "Library folder",
                      f"{problem[:1].upper()}{problem[1:]}.\n\nUse the default library folder "
                      f"({paths.default_library_dir()}) instead? The styles in the other folder are not "
                      "touched: choose it again in Settings once its drive is back.")
    use = box.addButton("Use the default folder", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
    box.exec()
    if box.clickedButton() is not use:
        return False
    services.settings.library_dir = None
    services.save_settings()
    return True


def render_screenshot(window, view: str | None, target: Path) -> int:  # noqa: ANN001 - MainWindow
    if not target.parent.is_dir():   # fail before spending seconds rendering
        window.deleteLater()
        _say(f"error: cannot write the screenshot to {target}: the folder {target.parent} does not exist",
             error=True)
        return 2
    window.resize(*SCREENSHOT_SIZE)
    if view:
        window.show_view(view)
    window.show()
    process_events_for(SETTLE_MS)
    image = window.grab()
    ok = image.save(str(target), "PNG")
    window.close()
    window.deleteLater()
    if not ok:
        _say(f"error: cannot write the screenshot to {target} (does the folder exist and is it writable?)",
             error=True)
        return 2
    log.info("screenshot of %s written to %s", view or window.current_view(), target)
    return 0


@contextlib.contextmanager
def _temporary_home() -> Iterator[Path]:
    """Point MLABS_DESKTOP_HOME at a throwaway folder: the self-test never touches the user's data."""
    previous = os.environ.get(paths.HOME_ENV)
    with tempfile.TemporaryDirectory(prefix="mlabs-self-test-") as folder:
        os.environ[paths.HOME_ENV] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop(paths.HOME_ENV, None)
            else:
                os.environ[paths.HOME_ENV] = previous


def run_self_test() -> int:
    """Check a packaged build end to end: window, TensorFlow, a tiny model, one stylized photo."""
    started = time.monotonic()
    try:
        with _temporary_home() as home:
            _self_test_steps(home)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer the self-test gives
        log.exception("self-test failed")
        _say(f"self-test FAILED: {type(exc).__name__}: {exc}", error=True)
        return 1
    _say(f"self-test passed ({time.monotonic() - started:.1f} s)")
    log.info("self-test passed")
    return 0


def _self_test_steps(home: Path) -> None:
    import numpy as np

    from mlabs_desktop.core.library.store import WEIGHTS, Library, Manifest
    from mlabs_desktop.resources import sample_image
    from mlabs_desktop.gui.main_window import MainWindow
    from mlabs_desktop.gui.kit.services import Services

    window = MainWindow(Services(), persist_state=False)
    window.show()
    process_events_for(100)
    window.close()
    window.deleteLater()

    from mlabs_desktop.core.hardware.devices import import_keras_quietly

    import_keras_quietly()   # keeps the backend's start-up banner off the console
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.stylize.stylizer import Stylizer
    from mlabs_desktop.core.networks.weights import model_arrays, save_weight_arrays

    net = build_transform_network("lite")
    manifest = Manifest(name="self-test", architecture="lite", state="finished",
                        provenance={"source": "self-test"})
    library = Library(home / "library")
    model = library.create(manifest, lambda folder: save_weight_arrays(folder / WEIGHTS, model_arrays(net)))
    source = load_image(sample_image("chelsea.jpg"))
    result = Stylizer(library.get(model.name), device="auto").run(source.rgb)
    if result.shape != source.rgb.shape:
        raise AssertionError(f"output shape {result.shape} differs from input shape {source.rgb.shape}")
    if not np.isfinite(result).all():
        raise AssertionError("the output has non-finite values")
    _self_test_clip(home, Stylizer(library.get(model.name), device="auto"), source.rgb.astype(np.uint8))


def _self_test_clip(home: Path, stylizer, photo) -> None:
    """A four-frame clip with sound, written and stylized: FFmpeg's codecs came along in the bundle."""
    from mlabs_desktop.core.video.clips import probe
    from mlabs_desktop.core.video.pipeline import ClipOptions, stylize_clip
    from mlabs_desktop.core.video.samples import pan_frames, write_clip

    clip = write_clip(home / "self-test.mp4", pan_frames(photo, (64, 48), 4), fps=25)
    styled = probe(stylize_clip(stylizer, clip, home / "self-test styled.mp4", ClipOptions(steady=False)).path)
    if (styled.frames, styled.width, styled.height, styled.audio) != (4, 64, 48, "aac"):
        raise AssertionError(f"the stylized clip came out as {styled}")
