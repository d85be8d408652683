"""All styles: one photo in every library style, as one grid picture (the 2017 MachineLabs post's multi-styled image).

The tiles are computed by the serial stylize worker (so this never runs a second
network beside the queue), the grid is composed in NumPy, and what the dialog
shows is exactly what Export saves.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PySide6.QtCore import QRectF, QSize, Qt, Slot
from PySide6.QtGui import QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (QCheckBox, QDialog, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSizePolicy, QVBoxLayout, QWidget)

from mlabs_desktop.core.images.decode import LoadedImage
from mlabs_desktop.core.images.encode import save_image
from mlabs_desktop.core.images.ops import resize_max, to_uint8
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.outputs import occupied
from mlabs_desktop.core.stylize.stylizer import BlendOptions
from mlabs_desktop.gui.kit.common import confirm_replace, pixmap_from_array, user_text
from mlabs_desktop.gui.stylize.jobs import AllStylesJob, JobEnded, JobFailed, StatusText, Tile
from mlabs_desktop.gui.stylize.worker import StylizeQueue

ORIGINAL_LABEL = "Original"


def grid_columns(count: int) -> int:
    """Columns for ``count`` tiles: about square, a little wider than tall (screens are)."""
    return max(1, math.ceil(math.sqrt(count)))


def compose_grid(tiles: Sequence[np.ndarray | None], labels: Sequence[str] | None = None, *,
                 columns: int | None = None, gap: int = 12, tile_size: tuple[int, int] | None = None,
                 background: tuple[int, int, int] = (255, 255, 255),
                 placeholder: tuple[int, int, int] = (226, 228, 231)) -> np.ndarray:
    """Tiles (HxWx3, uint8 or float 0..255) as one uint8 grid, each optionally captioned below.

    A None tile (not computed yet, or failed) is drawn as a flat placeholder of
    the others' size; tiles of another size are centred in their cell.
    """
    if not tiles:
        raise ValueError("no tiles to compose")
    sizes = [t.shape[:2] for t in tiles if t is not None]
    if tile_size is not None:
        cell_h, cell_w = tile_size[1], tile_size[0]
    elif sizes:
        cell_h, cell_w = max(s[0] for s in sizes), max(s[1] for s in sizes)
    else:
        raise ValueError("tile_size is needed when no tile has pixels")
    cols = columns or grid_columns(len(tiles))
    rows = math.ceil(len(tiles) / cols)
    font = _font(max(12, min(28, cell_w // 18)))
    label_h = (font.size + 16) if labels else 0  # type: ignore[union-attr]
    height = gap + rows * (cell_h + label_h + gap)
    width = gap + cols * (cell_w + gap)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = background
    for i, tile in enumerate(tiles):
        top, left = gap + (i // cols) * (cell_h + label_h + gap), gap + (i % cols) * (cell_w + gap)
        if tile is None:
            canvas[top:top + cell_h, left:left + cell_w] = placeholder
            continue
        pixels = to_uint8(tile)[:cell_h, :cell_w]
        dy, dx = (cell_h - pixels.shape[0]) // 2, (cell_w - pixels.shape[1]) // 2
        canvas[top + dy:top + dy + pixels.shape[0], left + dx:left + dx + pixels.shape[1]] = pixels
    if labels:
        picture = Image.fromarray(canvas)
        draw = ImageDraw.Draw(picture)
        for i, text in enumerate(labels[:len(tiles)]):
            top, left = gap + (i // cols) * (cell_h + label_h + gap), gap + (i % cols) * (cell_w + gap)
            draw.text((left + cell_w / 2, top + cell_h + label_h / 2), _fit_text(draw, text, font, cell_w),
                      fill=(32, 33, 36), font=font, anchor="mm")
        canvas = np.asarray(picture)
    return canvas


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
              width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


class _FitImage(QWidget):
    """A picture scaled to fit the widget, centred, sharp on HiDPI screens."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        self._pixmap = pixmap
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(900, 640)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        size = self._pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRectF(0, 0, size.width(), size.height())
        target.moveCenter(QRectF(self.rect()).center())
        p.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))


class AllStylesDialog(QDialog):
    """Computes and shows the grid of one photo in every style; Export saves it."""

    def __init__(self, queue: StylizeQueue, item_id: int, image: LoadedImage,
                 model_names: Sequence[str], options: BlendOptions, device: str,
                 report_error: Callable[[str, str], None], parent: QWidget | None = None):
        super().__init__(parent)
        self._queue = queue
        self._report_error = report_error
        self._names = list(model_names)
        self._stem = image.path.stem or "photo"
        self._job = AllStylesJob(item_id, image, tuple(self._names), options, device)
        tile = to_uint8(resize_max(image.rgb, self._job.tile_side))
        self._tiles: list[np.ndarray | None] = [tile] + [None] * len(self._names)
        self._errors: dict[str, str] = {}
        self._running = True
        self.setWindowTitle(f"All styles — {image.path.name}")
        self.setSizeGripEnabled(True)

        self.title = QLabel(f"<b>{html.escape(image.path.name)}</b> in {len(self._names)} "
                            f"style{'s' if len(self._names) != 1 else ''}")
        self.canvas = _FitImage()
        self.canvas.setToolTip("Every style at the current strength and colour settings")
        self.progress = QProgressBar()
        self.progress.setRange(0, len(self._names))
        self.progress.setTextVisible(False)
        self.progress.setFixedWidth(180)
        self.status = QLabel("Starting…")
        self.labels = QCheckBox("Style names")
        self.labels.setChecked(True)
        self.labels.setToolTip("Write each style's name under its picture (also in the exported image)")
        self.labels.toggled.connect(self._redraw)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the grid as one image")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_clicked)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)

        bottom = QHBoxLayout()
        bottom.setSpacing(12)
        bottom.addWidget(self.progress)
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.labels)
        bottom.addWidget(self.export_button)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.setSpacing(12)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(bottom)
        self.resize(1000, 760)

        queue.event.connect(self._on_event)
        queue.submit(self._job, front=True)  # the user is waiting for this one
        self._redraw()

    # -- results
    def is_running(self) -> bool:
        return self._running

    def grid(self) -> np.ndarray:
        """The composed grid, exactly as shown and exported."""
        labels = [ORIGINAL_LABEL] + [n + (" (failed)" if n in self._errors else "") for n in self._names]
        first = self._tiles[0]
        assert first is not None
        return compose_grid(self._tiles, labels if self.labels.isChecked() else None,
                            tile_size=(first.shape[1], first.shape[0]))

    def export_to(self, path: Path) -> Path:
        return save_image(path, self.grid())

    # -- events from the worker
    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, Tile) and event.token == self._job.token:
            self._tiles[event.index + 1] = event.rgb
            if event.error:
                self._errors[event.model_name] = event.error
            self.progress.setValue(event.index + 1)
            self._redraw()
        elif isinstance(event, StatusText) and event.job is self._job:
            self.status.setText(event.text)
        elif isinstance(event, JobFailed) and event.job is self._job:
            self.status.setText("Stopped: " + event.message)
            self._report_error("All styles failed", event.message)
        elif isinstance(event, JobEnded) and event.job is self._job:
            self._running = False
            self.progress.hide()
            failed = len(self._errors)
            if not event.cancelled and not self.status.text().startswith("Stopped"):
                self.status.setText("Done" if not failed else
                                    f"Done; {failed} style{'s' if failed > 1 else ''} failed (hover the grid for why)")
            if self._errors:
                self.canvas.setToolTip("\n".join(f"{k}: {v}" for k, v in self._errors.items()))
            self.export_button.setEnabled(any(t is not None for t in self._tiles[1:]))

    def _redraw(self) -> None:
        self.canvas.set_pixmap(pixmap_from_array(self.grid()))

    def _export_clicked(self) -> None:
        suggested = str(Path.home() / f"{self._stem}-all-styles.jpg")
        path, _ = QFileDialog.getSaveFileName(self, "Export all styles", suggested,
                                              "JPEG (*.jpg *.jpeg);;PNG (*.png);;WebP (*.webp)")
        if not path:
            return
        if not Path(path).suffix:
            path += ".jpg"  # the dialog asked about the name without it
            if occupied(Path(path)) and not confirm_replace(self, [Path(path)]):
                return
        try:
            saved = self.export_to(Path(path))
        except UserError as exc:
            self._report_error("Could not export the grid", f"{user_text(exc)} Choose another folder or name.")
            return
        self.status.setText(f"Saved {saved.name}")

    # -- closing stops the work
    def done(self, result: int) -> None:
        self._stop()
        super().done(result)

    def _stop(self) -> None:
        if self._running:
            self._queue.discard(lambda job: job is self._job)
            self._queue.cancel_current(lambda job: job is self._job)
        try:
            self._queue.event.disconnect(self._on_event)
        except (RuntimeError, TypeError):
            pass  # already disconnected

