"""The Stylize view: drop photos, pick a style, compare before and after, save.

Data flow: dropped paths -> queue items -> one serial worker runs the network ->
the raw float result is cached per item and run (a style at a brush size) -> strength,
colour and mix options re-blend that cache in NumPy (never re-running the network) -> the comparison
(`display.ComparisonDisplay`). Open, paste, save and copy are `files.PhotoFiles`;
drops arrive through `chrome.PhotoDrops`. Each part talks to the view by signals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QDeadlineTimer, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence, QShowEvent
from PySide6.QtWidgets import (QButtonGroup, QHBoxLayout, QLabel, QMenu, QProgressBar, QSplitter, QStackedWidget,
                               QToolButton, QVBoxLayout, QWidget)

from mlabs_desktop.core.transfer.http import is_url
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.stylize.stylizer import BlendOptions
from mlabs_desktop.core.video.clips import is_clip_path
from mlabs_desktop.gui.stylize.before_after import BeforeAfterView
from mlabs_desktop.gui.kit.common import DROP_ADVICE, expand_images, user_text
from mlabs_desktop.gui.stylize.export import Exporter
from mlabs_desktop.gui.stylize.jobs import Look
from mlabs_desktop.gui.stylize.queue import PhotoQueue, QueueItem
from mlabs_desktop.gui.stylize.queue_list import PhotoQueueList
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.stylize.style_panel import StylePanel
from mlabs_desktop.gui.stylize.chrome import (DropOverlay, EmptyState, FailureReport, PhotoDrops, panel_title,
                                              text_button, view_action)
from mlabs_desktop.gui.stylize.display import ComparisonDisplay
from mlabs_desktop.gui.stylize.files import PhotoFiles, Source


class StylizeView(QWidget):
    """Queue on the left, the before/after comparison in the middle, style and blend on the right.

    The owner calls ``cancel_and_wait`` before closing: worker threads must end
    before their QThread objects are destroyed.
    """

    clipsOpened = Signal(list)  # clip paths dropped or opened here, for the window to open

    def __init__(self, services: Services, parent: QWidget | None = None):
        super().__init__(parent)
        self._services = services
        self.all_styles_dialog: QWidget | None = None
        self.photos = PhotoQueue(services.library, lambda: services.settings.default_device, self)
        self.photos.changed.connect(self._on_item_changed)
        self._failures = FailureReport(services.hub.error.emit, self)
        self.photos.failed.connect(self._failures.add)
        self.photos.status.connect(self._say)
        self.photos.worker.busy_changed.connect(self._update_status)
        self._exporter = Exporter(self, self._say, services.hub.error.emit,
                                  lambda item, look: self.photos.look_result(item, look, keep=False),
                                  self.photos.originals)
        self._exporter.busy_changed.connect(self._update_actions)
        self.compare = BeforeAfterView()
        self.style_panel = StylePanel()
        self.zoom_label = QLabel(minimumWidth=84, toolTip="Zoom; the mouse wheel zooms around the pointer")
        self.display = ComparisonDisplay(self.photos, self.compare, self.style_panel, self.zoom_label, self._current,
                                         self)
        self.display.shown.connect(self._update_actions)
        self.files = PhotoFiles(self, self.photos, self._exporter, self.compare, self.style_panel, self._current)
        self.files.sourcesChosen.connect(self.open_paths)
        self.files.status.connect(self._say)
        self._build()
        self.drops = PhotoDrops(self, self.overlay)
        self.drops.dropped.connect(self.open_paths)
        services.hub.library_changed.connect(self.refresh_styles)
        self.refresh_styles()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        key = QKeySequence.StandardKey
        files = self.files
        # Ctrl+O is the window's File > Open photos or clips…, which works from every view.
        self.open_action = view_action(self, "Open…", "Add photos or a folder to the queue (Ctrl+O)",
                                       files.open_dialog)
        self.save_action = view_action(self, "Save…", "Save the styled photo at full size", files.save_current,
                                       key.Save)
        self.save_all_action = view_action(self, "Save all…", "Save every finished photo into a folder",
                                            files.save_all, "Ctrl+Shift+S")
        self.copy_action = view_action(self, "Copy", "Copy the styled photo to the clipboard", files.copy_current,
                                       key.Copy)
        self.paste_action = view_action(self, "Paste", "Add photos, files or a web address from the clipboard",
                                        files.paste_from_clipboard, key.Paste)
        self.all_action = view_action(self, "All styles…", "See the selected photo in every style, as one grid",
                                       self.show_all_styles)
        self.fit_action = view_action(self, "Fit", "Fit the photo in the window (key 0)",
                                      lambda: self.compare.zoom_fit())
        self.actual_action = view_action(self, "100 %", "One photo pixel per screen pixel (key 1)",
                                          lambda: self.compare.zoom_actual())

        top = QHBoxLayout()
        top.setSpacing(8)
        for action in (self.open_action, self.save_action, self.save_all_action, self.copy_action):
            top.addWidget(text_button(action))
        top.addStretch(1)
        self.split_button = text_button(text="Split", tip="Original and styled either side of a divider you drag")
        self.side_button = text_button(text="Side by side",
                                        tip="Original and styled next to each other, zoomed and panned together")
        group = QButtonGroup(self)
        for button, mode in ((self.split_button, "split"), (self.side_button, "side-by-side")):
            button.setCheckable(True)
            group.addButton(button)
            button.clicked.connect(lambda _=False, m=mode: self.compare.setMode(m))
            top.addWidget(button)
        self.split_button.setChecked(True)
        top.addSpacing(12)
        top.addWidget(text_button(self.fit_action))
        top.addWidget(text_button(self.actual_action))
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        top.addWidget(self.zoom_label)
        top.addSpacing(12)
        top.addWidget(text_button(self.all_action))

        # Left: the queue, hidden until there is something in it.
        self.queue_list = PhotoQueueList()
        self.queue_list.currentItemChanged.connect(self._on_selection)
        self.queue_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.queue_list.customContextMenuRequested.connect(self._queue_menu)
        self.remove_action = QAction("Remove from queue", self.queue_list, shortcut=QKeySequence.StandardKey.Delete)
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.remove_action.triggered.connect(self.remove_selected)
        self.queue_list.addAction(self.remove_action)
        self.queue_title = QLabel()
        clear = QToolButton(text="Clear", autoRaise=True, toolTip="Remove every photo from the queue")
        clear.clicked.connect(self.clear_queue)
        self.queue_panel = panel_title(self.queue_title, clear, self.queue_list)
        self.queue_panel.setMinimumWidth(200)

        # Centre: the invitation to drop, or the comparison.
        self.compare.modeChanged.connect(self._on_mode)
        self.empty = EmptyState(self.open_action)
        self.center = QStackedWidget()
        self.center.addWidget(self.empty)
        self.center.addWidget(self.compare)

        # Right: style, strength, colours, brush size, mix.
        self.picker, self.strength, self.preserve = (self.style_panel.picker, self.style_panel.strength.slider,
                                                     self.style_panel.preserve)
        self.style_panel.styleChosen.connect(self._set_style)
        self.style_panel.lookChanged.connect(self._apply_look)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False, handleWidth=12)
        for widget, stretch in ((self.queue_panel, 0), (self.center, 1), (self.style_panel, 0)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(self.splitter.indexOf(widget), stretch)
        self.splitter.setSizes([240, 760, 236])

        self.status = QLabel()
        self.progress = QProgressBar(maximumWidth=220, visible=False, format="%v of %m")
        self.status.setMinimumHeight(self.progress.sizeHint().height())  # no jump when the bar appears
        bottom = QHBoxLayout()
        bottom.setSpacing(12)
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.progress)
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 16, 16, 12)
        root.setSpacing(12)
        root.addLayout(top)
        root.addWidget(self.splitter, 1)
        root.addLayout(bottom)
        self.overlay = DropOverlay(self)
        self._update_panels()

    # ------------------------------------------------------------------ the contract
    def select_style(self, name: str) -> bool:
        """Pick a library style by name (e.g. "Stylize with" in the Library); False if unknown."""
        self.refresh_styles()
        if not self.picker.select(name):
            return False
        self._set_style(name)
        return True

    def clip_look(self) -> tuple[Look, BlendOptions]:
        """The look and blend a clip opened now is stylized with: what the photos show."""
        return self.photos.look, self.style_panel.options()

    @Slot(list)
    def open_paths(self, paths: Sequence[Source]) -> int:
        """Queue image files, folders (searched inside) and http(s) URLs; returns how many were added.

        Clips go to their own windows (`clipsOpened`), with the style picked here.
        """
        clips = [Path(p) for p in paths if not (isinstance(p, str) and is_url(p)) and is_clip_path(p)]
        if clips:
            self.clipsOpened.emit(clips)
            paths = [p for p in paths if Path(str(p)) not in clips]
            if not paths:
                return 0
        urls = [str(p) for p in paths if isinstance(p, str) and is_url(p)]
        files = expand_images(Path(p) for p in paths if not (isinstance(p, str) and is_url(p)))
        if not files and not urls:
            names = ", ".join(Path(str(p)).name for p in list(paths)[:3]) or "nothing"
            self._services.hub.error.emit("No photos to open", f"No image files found in {names}.\n\n{DROP_ADVICE}")
            return 0
        added, first = self.photos.add([*files, *urls])
        for item_id in sorted(set(self.photos.items) - set(self.queue_list.ids())):
            self.queue_list.add(self.photos.items[item_id], self.photos.look)
        self._update_panels()
        if first is not None:
            self.queue_list.select_id(first)
        self._say(f"Added {added} photo{'s' if added != 1 else ''}" if added else "Already in the queue")
        return added

    def is_busy(self) -> bool:
        return self.photos.worker.is_busy() or self._exporter.is_busy() or self.display.is_busy()

    def cancel_and_wait(self, timeout_ms: int) -> bool:
        """Drop waiting work, stop what runs (a file being saved is finished) and wait for the threads."""
        deadline = QDeadlineTimer(max(0, timeout_ms))
        stopped = self.photos.worker.cancel_and_wait(int(deadline.remainingTime()))
        stopped = self.display.cancel_and_wait(deadline) and stopped
        stopped = self._exporter.cancel_and_wait(deadline) and stopped
        if stopped:
            self.photos.close()  # nothing reads the spilled results any more: remove them
        return stopped

    # ------------------------------------------------------------------ styles
    @Slot()
    def refresh_styles(self) -> None:
        try:
            models = self._services.library().models()
        except (OSError, UserError) as exc:
            models = []
            self._say(f"Cannot read the library: {user_text(exc)}")
        self.style_panel.set_models(models)
        names = self.picker.names()
        self.style_panel.set_blend_enabled(bool(names))
        if self.photos.style in names:
            self.picker.select(self.photos.style)
            self._apply_look()  # the mix's second style may have gone
        else:
            self._set_style(names[0] if names else None)
        self._update_actions()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh_styles()  # the library on disk may have changed while another view was shown

    @Slot(str)
    def _set_style(self, name: str | None) -> None:
        if name is not None:
            self.picker.select(name)
        self.style_panel.mix.set_style(name)
        self._apply_look()

    @Slot()
    def _apply_look(self) -> None:
        """Show what the panel now asks for: cached results at once, the rest queued."""
        look = self.style_panel.look()
        if look == self.photos.look:
            return
        self.photos.set_look(look, first=self.queue_list.current_id())
        for item in self.photos.items.values():
            self.queue_list.refresh(item, look)
        self.display.show_current(reset_view=False)
        self._update_status()

    # ------------------------------------------------------------------ the queue
    def _current(self) -> QueueItem | None:
        item_id = self.queue_list.current_id()
        return None if item_id is None else self.photos.items.get(item_id)

    def _on_selection(self) -> None:
        self.photos.show(self.queue_list.current_id())  # first in line, and kept in memory while shown
        self.display.show_current(reset_view=True)

    def remove_selected(self) -> None:
        self._remove(self.queue_list.selected_ids())

    def clear_queue(self) -> None:
        self._remove(list(self.photos.items))

    def _remove(self, ids: list[int]) -> None:
        self.photos.remove(ids)
        for item_id in ids:
            self.queue_list.remove_id(item_id)
        self._update_panels()
        self.display.show_current(reset_view=True)
        self._update_status()

    def _queue_menu(self, pos: QPoint) -> None:
        ids = self.queue_list.selected_ids()
        if ids:
            menu = QMenu(self)
            items = [self.photos.items[i] for i in ids if i in self.photos.items]
            menu.addAction("Retry", lambda: self.photos.retry(ids)).setEnabled(
                any(it.state(self.photos.look)[0] == "failed" for it in items))
            menu.addAction(self.remove_action)
            menu.exec(self.queue_list.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------ worker events
    @Slot(int, bool)
    def _on_item_changed(self, item_id: int, new_pixels: bool) -> None:
        item = self.photos.items.get(item_id)
        if item is None:
            return
        self.queue_list.refresh(item, self.photos.look)
        if item_id == self.queue_list.current_id():
            if new_pixels:  # loaded: a new picture and Fit; styled: the same picture, new right side
                self.display.show_current(reset_view=not item.ready(self.photos.look))
            else:
                self.display.show_state(item)
        self._update_status()

    def _on_mode(self, mode: str) -> None:
        (self.split_button if mode == "split" else self.side_button).setChecked(True)
        self._update_status()  # the footer's hint is about the divider, which only Split has

    # ------------------------------------------------------------------ panels and status
    def _update_panels(self) -> None:
        self.queue_panel.setVisible(bool(self.photos.items))
        self.center.setCurrentWidget(self.compare if self.photos.items else self.empty)
        self.queue_title.setText(f"<b>Photos</b>&nbsp;&nbsp;<span style='color:gray'>{len(self.photos.items)}</span>")
        self._update_actions()

    @Slot()
    def _update_actions(self) -> None:
        item = self._current()
        loaded = item is not None and item.image is not None
        ready = loaded and item.ready(self.photos.look)  # type: ignore[union-attr]
        saving = self._exporter.is_busy()
        self.save_action.setEnabled(ready and not saving)
        self.copy_action.setEnabled(ready)
        any_done = any(it.ready(self.photos.look) for it in self.photos.items.values())
        self.save_all_action.setEnabled(any_done and not saving)
        self.all_action.setEnabled(loaded and bool(self.picker.names()))
        self.fit_action.setEnabled(loaded)
        self.actual_action.setEnabled(loaded)

    @Slot()
    def _update_status(self) -> None:
        self._update_actions()
        states = [it.state(self.photos.look)[0] for it in self.photos.items.values()]
        finished, failed = sum(s in ("done", "failed") for s in states), states.count("failed")
        running = next((it for it in self.photos.items.values() if it.running), None)
        busy = self.photos.worker.is_busy() and self.photos.style is not None and finished < len(states)
        self.progress.setVisible(busy)
        self.progress.setRange(0, max(1, len(states)))
        self.progress.setValue(finished)
        if running is not None and busy:
            text = f"Stylizing {running.name} with {self.photos.look.title} — {finished + 1} of {len(states)}"
        elif states and self.photos.style:
            hint = " — drag the divider to compare" if self.compare.mode() == "split" else ""
            precision = self.photos.precision()
            text = f"{finished - failed} of {len(states)} photos in {self.photos.look.title}" + (
                f" ({precision})" if precision else "") + (
                f", {failed} failed" if failed else hint)
        else:
            text = "" if states else "Drop photos or clips anywhere on this page, or press Ctrl+O"
        self._say(text)

    def _say(self, text: str) -> None:
        """The view's own footer: its words do not follow the user into the other views."""
        self.status.setText(text)

    # ------------------------------------------------------------------ all styles
    def show_all_styles(self) -> None:
        item = self._current()
        if item is None or item.image is None or not self.picker.names():
            return
        from mlabs_desktop.gui.stylize.all_styles import AllStylesDialog

        dialog = AllStylesDialog(self.photos.worker, item.id, item.image, self.picker.names(),
                                 self.style_panel.options(), self._services.settings.default_device,
                                 self._services.hub.error.emit, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.all_styles_dialog = dialog
        dialog.show()
