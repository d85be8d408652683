"""The Stylize view's comparison: the current photo's cached result, re-blended and shown with its state.

Strength and colour changes re-blend the cached raw result in NumPy, never
re-running the network; a big photo is blended off the GUI thread.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel

from mlabs_desktop.gui.stylize.before_after import BeforeAfterView
from mlabs_desktop.gui.stylize.blend_renderer import BlendRenderer, render_blend
from mlabs_desktop.gui.stylize.queue import PhotoQueue, QueueItem, short_reason
from mlabs_desktop.gui.stylize.style_picker import EMPTY_NOTE, StylePanel

DEBOUNCE_PIXELS = 1_500_000  # above this, blend changes wait for the slider to rest


class ComparisonDisplay:
    """What the comparison shows, mixed into `StylizeView` (which has these attributes)."""

    photos: PhotoQueue
    compare: BeforeAfterView
    style_panel: StylePanel
    zoom_label: QLabel
    _blender: BlendRenderer
    _blend_timer: QTimer
    _blend_token: int
    _shown_id: int | None
    _current: Callable[[], QueueItem | None]
    _update_actions: Callable[[], None]

    @staticmethod
    def _is_big(item: QueueItem | None) -> bool:
        return item is not None and item.image is not None and item.image.rgb[..., 0].size > DEBOUNCE_PIXELS

    def _on_blend_changed(self) -> None:
        if self._is_big(self._current()):
            self._blend_timer.start()  # a big photo: re-blend once the slider rests for 50 ms
        else:
            self._reblend()

    def _reblend(self) -> None:
        """Show the current photo's cached result with the current strength and colours."""
        item = self._current()
        raw = self.photos.result(item, self.photos.style) if item is not None else None
        self._blend_token = 0  # whatever a thread still blends for an earlier request is now stale
        if item is None or item.image is None or raw is None:
            self.compare.set_styled(None)
        elif self._is_big(item):  # a part of a second in NumPy: off the GUI thread
            self._blend_token = self._blender.request(item.image.rgb, raw, item.image.alpha,
                                                      self.style_panel.options())
        else:
            self.compare.set_styled(render_blend(item.image.rgb, raw, item.image.alpha, self.style_panel.options()))

    def _show_current(self, reset_view: bool) -> None:
        item = self._current()
        if item is None or item.image is None or item.display is None:
            self._blend_token = 0
            self.compare.clear()
        else:
            if reset_view or self._shown_id != item.id or self.compare.original_image() is None:
                self.compare.set_images(item.display, None, reset_view=True)
            self._reblend()
        self._shown_id = item.id if item is not None else None
        self.compare.set_labels("Original", self.photos.style or "Styled")
        self._show_state(item)
        self._update_actions()

    def _show_state(self, item: QueueItem | None) -> None:
        """The words over the comparison: loading, waiting, why it failed."""
        if item is None:
            self.compare.set_overlay(None)
            return
        state, detail = item.state(self.photos.style)
        if item.image is None:
            text = (f"Could not open {item.name}\n{short_reason(detail).capitalize()}. Choose Retry in the list's "
                    "context menu, or remove it with Delete." if state == "failed"
                    else f"Loading {item.name}…" if state == "running" else "Waiting in the queue…")
        else:
            text = {"running": f"Stylizing with {self.photos.style}…",
                    "queued": "Waiting in the queue…" if self.photos.style else EMPTY_NOTE,
                    "failed": f"Failed: {short_reason(detail)}"}.get(state)
        self.compare.set_overlay(text, error=state == "failed")

    def _on_zoom(self, zoom: float) -> None:
        if self.compare.original_image() is None:
            self.zoom_label.setText("")
        else:
            self.zoom_label.setText(f"Fit · {zoom * 100:.0f} %" if self.compare.is_fit() else f"{zoom * 100:.0f} %")
