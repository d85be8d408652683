"""The Stylize view's comparison: the current photo's cached result, re-blended and shown with its state.

Strength and colour changes re-blend the cached raw result in NumPy, never
re-running the network; a big photo is blended off the GUI thread.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QDeadlineTimer, QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from mlabs_desktop.gui.stylize.before_after import BeforeAfterView
from mlabs_desktop.gui.stylize.blend_renderer import BlendRenderer, render_blend
from mlabs_desktop.gui.stylize.queue import PhotoQueue, QueueItem, short_reason
from mlabs_desktop.gui.stylize.style_panel import StylePanel
from mlabs_desktop.gui.stylize.style_picker import EMPTY_NOTE

DEBOUNCE_PIXELS = 1_500_000  # above this, blend changes wait for the slider to rest


class ComparisonDisplay(QObject):
    """Keeps the before/after widget, the zoom label and the overlay words in step with the selected photo.

    ``current`` answers which queue item is selected; ``shown`` fires after every
    change of what is displayed, so the view can update its actions.
    """

    shown = Signal()

    def __init__(self, photos: PhotoQueue, compare: BeforeAfterView, style_panel: StylePanel, zoom_label: QLabel,
                 current: Callable[[], QueueItem | None], parent: QObject | None = None):
        super().__init__(parent)
        self._photos, self._compare, self._style_panel, self._zoom_label = photos, compare, style_panel, zoom_label
        self._current = current
        self._shown_id: int | None = None
        self._blender = BlendRenderer(self)
        self._blender.ready.connect(self._on_blended)
        self._blend_token = 0
        self._blend_timer = QTimer(self, singleShot=True, interval=50)
        self._blend_timer.timeout.connect(self.reblend)
        style_panel.blendChanged.connect(self._on_blend_changed)
        compare.zoomChanged.connect(self._on_zoom)

    def is_busy(self) -> bool:
        return self._blender.is_busy()

    def cancel_and_wait(self, deadline: QDeadlineTimer) -> bool:
        return self._blender.cancel_and_wait(deadline)

    @staticmethod
    def _is_big(item: QueueItem | None) -> bool:
        return item is not None and item.image is not None and item.image.rgb[..., 0].size > DEBOUNCE_PIXELS

    @Slot()
    def _on_blend_changed(self) -> None:
        if self._is_big(self._current()):
            self._blend_timer.start()  # a big photo: re-blend once the slider rests for 50 ms
        else:
            self.reblend()

    @Slot()
    def reblend(self) -> None:
        """Show the current photo's cached result with the current strength and colours."""
        item, look = self._current(), self._photos.look
        raws = self._photos.look_raws(item, look) if item is not None else None
        self._blend_token = 0  # whatever a thread still blends for an earlier request is now stale
        if item is None or item.image is None or raws is None:
            self._compare.set_styled(None)
        elif self._is_big(item):  # a part of a second in NumPy: off the GUI thread
            self._blend_token = self._blender.request(item.image.rgb, lambda: look.combine(raws), item.image.alpha,
                                                      self._style_panel.options())
        else:
            self._compare.set_styled(render_blend(item.image.rgb, look.combine(raws), item.image.alpha,
                                                  self._style_panel.options()))

    @Slot(int, object)
    def _on_blended(self, token: int, image: object) -> None:
        if token == self._blend_token and isinstance(image, QImage):
            self._compare.set_styled(image)

    def show_current(self, reset_view: bool) -> None:
        item = self._current()
        if item is None or item.image is None or item.display is None:
            self._blend_token = 0
            self._compare.clear()
        else:
            if reset_view or self._shown_id != item.id or self._compare.original_image() is None:
                self._compare.set_images(item.display, None, reset_view=True)
            self.reblend()
        self._shown_id = item.id if item is not None else None
        self._compare.set_labels("Original", self._photos.look.title or "Styled")
        self.show_state(item)
        self.shown.emit()

    def show_state(self, item: QueueItem | None) -> None:
        """The words over the comparison: loading, waiting, why it failed."""
        if item is None:
            self._compare.set_overlay(None)
            return
        state, detail = item.state(self._photos.look)
        if item.image is None:
            text = (f"Could not open {item.name}\n{short_reason(detail).capitalize()}. Choose Retry in the list's "
                    "context menu, or remove it with Delete." if state == "failed"
                    else f"Loading {item.name}…" if state == "running" else "Waiting in the queue…")
        else:
            text = {"running": f"Stylizing with {self._photos.look.title}…",
                    "queued": "Waiting in the queue…" if self._photos.style else EMPTY_NOTE,
                    "failed": f"Failed: {short_reason(detail)}"}.get(state)
        self._compare.set_overlay(text, error=state == "failed")

    @Slot(float)
    def _on_zoom(self, zoom: float) -> None:
        if self._compare.original_image() is None:
            self._zoom_label.setText("")
        else:
            self._zoom_label.setText(f"Fit · {zoom * 100:.0f} %" if self._compare.is_fit() else f"{zoom * 100:.0f} %")
