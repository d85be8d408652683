"""Render every view of the window at the sizes people use, for a person to look at.

    QT_QPA_PLATFORM=offscreen python docs/window_tour.py OUT_DIR [--scale 2]

A throwaway home holds a tiny model trained for a few steps against random loss-network
weights (the tests' stand-in for VGG19), the sample photos queued in Stylize and a
finished run in Train; each view is then grabbed at 960x620, 1024x700, 1280x800 and
1920x1080 (window sizes, before the scale factor). The pictures are for eyes, not tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((960, 620), (1024, 700), (1280, 800), (1920, 1080))


def wait(app, condition, seconds: float = 120) -> None:  # noqa: ANN001 - QApplication
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="QT_SCALE_FACTOR for the whole run")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT_SCALE_FACTOR"] = f"{args.scale:g}"
    home = Path(tempfile.mkdtemp(prefix="mlabs-tour-"))
    os.environ["MLABS_DESKTOP_HOME"] = str(home)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from vgg_fixtures import write_keras_notop_h5

    from mlabs_desktop.gui.app import application
    from mlabs_desktop.gui.kit.services import Services
    from mlabs_desktop.gui.main_window import MainWindow
    from mlabs_desktop.resources import sample_image

    vgg = home / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras_notop_h5(vgg)
    photos = home / "photos"
    photos.mkdir()
    for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"):
        (photos / name).write_bytes(sample_image(name).read_bytes())
    app = application(headless=True)
    services = Services()
    services.settings.vgg_path = str(vgg)
    window = MainWindow(services, persist_state=False)
    window.resize(*SIZES[2])
    window.show()

    train = window.train_view
    window.show_view("train")
    wait(app, lambda: train.form.params_panel.gpus is not None)
    train.form.sources.set_style(str(sample_image("swirls.jpg")))
    train.form.sources.set_train_folder(str(photos))
    wait(app, lambda: not train.form.sources.scanning)
    train.form.set_params({"image-size": 64, "batch-size": 2, "steps": 6, "checkpoint-iterations": 3,
                           "architecture": "lite"})
    train.form.name_edit.setText("Swirls")
    train.start()
    wait(app, lambda: not train.is_training() and train._worker is None, 600)

    window.show_view("stylize")
    stylize = window.stylize_view
    stylize.select_style("Swirls")
    stylize.open_paths([photos])
    wait(app, lambda: all(item.ready(stylize.photos.look) for item in stylize.photos.items.values()), 300)
    window.show_view("library")
    window.library_view.select_model("Swirls")

    args.out.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        window.resize(width, height)
        for view in ("train", "library", "stylize"):
            window.show_view(view)
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                app.processEvents()
            target = args.out / f"{view}-{width}x{height}-scale{args.scale:g}.png"
            window.grab().save(str(target))
            print(target)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
