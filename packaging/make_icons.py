"""Render the app icon from its SVG source into every format the packages need.

    python packaging/make_icons.py            # writes resources/icons/*
    python packaging/make_icons.py --check    # exit 1 if the files are missing or out of date

Qt's QSvgRenderer draws ``resources/icons/mlabs-desktop.svg`` offscreen at each
size (no display needed); Pillow writes the Windows ``.ico`` and macOS
``.icns`` from those renderings, so every size is drawn from the vector source
rather than scaled from one bitmap.

Outputs (all in ``resources/icons/``):

- ``mlabs-desktop-<N>.png`` for N in SIZES (Linux hicolor theme, AppStream, docs)
- ``mlabs-desktop.png`` (256 px: the window icon ``gui/app.py`` loads)
- ``mlabs-desktop.ico`` (16..256, PyInstaller and Inno Setup on Windows)
- ``mlabs-desktop.icns`` (16..1024, PyInstaller on macOS)
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
SOURCE = ICONS / "mlabs-desktop.svg"
NAME = "mlabs-desktop"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
WINDOW_ICON_SIZE = 256
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def output_files() -> list[Path]:
    """Every file this script writes (the packaging test checks they exist)."""
    files = [ICONS / f"{NAME}-{size}.png" for size in SIZES]
    return files + [ICONS / f"{NAME}.png", ICONS / f"{NAME}.ico", ICONS / f"{NAME}.icns"]


def render_png(svg: Path, size: int) -> bytes:
    """PNG bytes of ``svg`` drawn at ``size`` x ``size`` pixels, transparent outside the shape."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"error: {svg} is not an SVG file Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def build_all(svg: Path = SOURCE) -> dict[Path, bytes]:
    """The bytes of every output file, keyed by path (nothing written)."""
    from PIL import Image

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - Qt needs one
    pngs = {size: render_png(svg, size) for size in sorted(set(SIZES) | {WINDOW_ICON_SIZE})}
    out: dict[Path, bytes] = {ICONS / f"{NAME}-{size}.png": pngs[size] for size in SIZES}
    out[ICONS / f"{NAME}.png"] = pngs[WINDOW_ICON_SIZE]

    images = {size: Image.open(io.BytesIO(data)).convert("RGBA") for size, data in pngs.items()}
    ico = io.BytesIO()
    largest = images[max(ICO_SIZES)]
    largest.save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                 append_images=[images[s] for s in ICO_SIZES if s != max(ICO_SIZES)])
    out[ICONS / f"{NAME}.ico"] = ico.getvalue()

    icns = io.BytesIO()
    biggest = images[max(ICNS_SIZES)]
    biggest.save(icns, format="ICNS", append_images=[images[s] for s in ICNS_SIZES if s != max(ICNS_SIZES)])
    out[ICONS / f"{NAME}.icns"] = icns.getvalue()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the files exist and match the SVG")
    args = parser.parse_args(argv)
    files = build_all()
    if args.check:
        stale = [p for p, data in files.items() if not p.exists() or p.read_bytes() != data]
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    ICONS.mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT)} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
