"""The main window: a sidebar over the Train / Library / Stylize views, menus, drops, a careful close.

The sidebar is drawn in `sidebar`; the File menu's model import and export are a
`transfer_actions.ModelTransfer` the window owns.
"""

from __future__ import annotations


import html
import logging
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QUrl
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent,
                           QKeySequence)
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QListWidgetItem, QMainWindow, QMessageBox,
                               QStackedWidget, QWidget)

from mlabs_desktop import __version__
from mlabs_desktop.core import paths
from mlabs_desktop.core.images.decode import is_image_path
from mlabs_desktop.core.video.clips import is_clip_path
from mlabs_desktop.gui.clips.windows import ClipWindows
from mlabs_desktop.gui.kit.common import DROP_ADVICE, WorkerSet, dropped_paths, dropped_urls
from mlabs_desktop.gui.dialogs.help import guide_dialog, shortcuts_dialog
from mlabs_desktop.gui.library.view import LibraryView
from mlabs_desktop.gui.library.transfer import is_importable
from mlabs_desktop.gui.library.transfer_actions import ModelTransfer
from mlabs_desktop.gui.kit.services import Services
from mlabs_desktop.gui.quitting import finish_running_work
from mlabs_desktop.gui.sidebar import make_sidebar, sidebar_icon

if TYPE_CHECKING:  # imported lazily at run time: a broken view becomes a placeholder, not a dead app
    from mlabs_desktop.gui.stylize.view import StylizeView
    from mlabs_desktop.gui.train.view import TrainView

log = logging.getLogger("mlabs_desktop.gui")

VIEW_NAMES = ("train", "library", "stylize")
VIEW_TITLES = {"train": "Train", "library": "Library", "stylize": "Stylize"}
DEFAULT_VIEW = "library"
KEY_GEOMETRY, KEY_STATE, KEY_VIEW = "main_window/geometry", "main_window/state", "main_window/view"
WORKER_EXIT_TIMEOUT_MS = 30_000      # device detection may be in the middle of importing TensorFlow


# ------------------------------------------------------------------ helpers

PLACEHOLDER = "placeholder-"  # object-name prefix of a view that could not be built


def placeholder_view(title: str, reason: str) -> QLabel:
    label = QLabel(f"<h2>{title}</h2><p>This view is not available in this build.</p>"
                   f"<p style='color:gray'>{html.escape(reason)}</p>")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setObjectName(f"{PLACEHOLDER}{title.lower()}")
    return label


# ------------------------------------------------------------------ window

class MainWindow(QMainWindow):
    def __init__(self, services: Services, persist_state: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.services = services
        self.persist_state = persist_state
        self.workers = WorkerSet()   # closeEvent waits for them
        self.setWindowTitle("MachineLabs Desktop")
        self.setMinimumSize(QSize(960, 620))
        self.setAcceptDrops(True)

        self.sidebar = make_sidebar()
        self.stack = QStackedWidget()
        self.views: dict[str, QWidget] = {}
        icon_color = self.palette().color(self.palette().ColorRole.WindowText)
        for name in VIEW_NAMES:
            view = self._create_view(name)
            self.views[name] = view
            self.stack.addWidget(view)
            QListWidgetItem(sidebar_icon(name, icon_color), VIEW_TITLES[name], self.sidebar)
        self.library_view: LibraryView = self.views["library"]  # type: ignore[assignment]
        # The Train and Stylize views, or None where a broken one was replaced by a placeholder.
        self.train_view: TrainView | None = self._real(self.views["train"])  # type: ignore[assignment]
        self.stylize_view: StylizeView | None = self._real(self.views["stylize"])  # type: ignore[assignment]
        self.sidebar.currentRowChanged.connect(self._on_row_changed)

        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.sidebar)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.status_text = QLabel("Ready")
        self.device_label = QLabel("")
        self.device_label.setObjectName("device-label")
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().setContentsMargins(8, 0, 8, 0)

        self.clips = ClipWindows(services, self)
        if self.stylize_view is not None:
            self.stylize_view.clipsOpened.connect(self._open_clips)
        self.transfer = ModelTransfer(self, services)
        self.transfer.imported.connect(self._show_imported)
        self.transfer.noModelSelected.connect(lambda: self.show_view("library"))
        self.transfer.status.connect(self.status_text.setText)
        self._build_menus()
        self._connect_hub()
        self.library_view.view_requested.connect(self.show_view)
        self.library_view.export_requested.connect(self.transfer.export_model_dialog)
        self.library_view.import_requested.connect(self.transfer.import_model_dialog)
        self._restore_state()
        for warning in services.settings.warnings:
            log.warning("settings: %s", warning)
        if services.settings.warnings:
            self.status_text.setText(services.settings.warnings[0])

    def _open_clips(self, clips: list) -> None:
        if self.stylize_view is not None:
            self.clips.open(clips, *self.stylize_view.clip_look())

    # ---------------------------------------------------------------- views
    def _create_view(self, name: str) -> QWidget:
        if name == "library":
            return LibraryView(self.services, self)
        # The other views are imported here, not at module level: a missing or
        # broken one leaves a placeholder instead of stopping the whole app.
        try:
            if name == "train":
                from mlabs_desktop.gui.train.view import TrainView
                return TrainView(self.services, self)
            from mlabs_desktop.gui.stylize.view import StylizeView
            return StylizeView(self.services, self)
        except ImportError as exc:
            log.warning("%s view unavailable: %s", name, exc)
            return placeholder_view(VIEW_TITLES[name], str(exc))

    @staticmethod
    def _real(view: QWidget) -> QWidget | None:
        """The view itself, or None for the placeholder of a view that could not be built."""
        return None if view.objectName().startswith(PLACEHOLDER) else view

    def show_view(self, name: str) -> None:
        if name not in VIEW_NAMES:
            raise ValueError(f"unknown view {name!r}; choose one of {', '.join(VIEW_NAMES)}")
        self.sidebar.setCurrentRow(VIEW_NAMES.index(name))

    def current_view(self) -> str:
        return VIEW_NAMES[max(self.stack.currentIndex(), 0)]

    def _on_row_changed(self, row: int) -> None:
        if row < 0:
            return
        self.stack.setCurrentIndex(row)
        self._view_actions[VIEW_NAMES[row]].setChecked(True)

    # ---------------------------------------------------------------- menus
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._add_action(file_menu, "&Open photos or clips…", self.open_photos, QKeySequence.StandardKey.Open)
        file_menu.addSeparator()
        self._add_action(file_menu, "&Import model…", self.transfer.import_model_dialog, "Ctrl+I")
        self._add_action(file_menu, "Import from &web address…", self.transfer.import_url_dialog)
        self._add_action(file_menu, "&Export model…",
                         lambda: self.transfer.export_model_dialog(self.library_view.selected_name()), "Ctrl+E")
        file_menu.addSeparator()
        self._add_action(file_menu, "&Settings…", self.open_settings, QKeySequence.StandardKey.Preferences)
        file_menu.addSeparator()
        self._add_action(file_menu, "&Quit", self.close, "Ctrl+Q")

        view_menu = bar.addMenu("&View")
        group = QActionGroup(self)
        self._view_actions: dict[str, QAction] = {}
        for number, name in enumerate(VIEW_NAMES, 1):
            action = self._add_action(view_menu, VIEW_TITLES[name], lambda n=name: self.show_view(n),
                                      f"Ctrl+{number}")
            action.setCheckable(True)
            group.addAction(action)
            self._view_actions[name] = action

        help_menu = bar.addMenu("&Help")
        self._add_action(help_menu, "&Getting started", lambda: self._show_document(guide_dialog), "F1")
        self._add_action(help_menu, "&Keyboard shortcuts", lambda: self._show_document(shortcuts_dialog))
        help_menu.addSeparator()
        self._add_action(help_menu, "&GPU status…", self.open_gpu_status)
        self._add_action(help_menu, "Open &log folder", self.open_log_folder)
        help_menu.addSeparator()
        self._add_action(help_menu, "&About MachineLabs Desktop", self.show_about)

    def _add_action(self, menu, text: str, slot: Callable[[], Any],
                    shortcut: str | QKeySequence.StandardKey | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    # ------------------------------------------------------------------ hub
    def _connect_hub(self) -> None:
        hub = self.services.hub
        hub.status.connect(lambda text: self.status_text.setText(text or "Ready"))
        hub.error.connect(self.show_error)
        hub.stylize_with.connect(self._stylize_with)
        hub.train_from.connect(self._train_from)

    def show_error(self, title: str, message: str) -> None:
        """The one place every worker error is shown."""
        log.warning("%s: %s", title, message)
        QMessageBox.critical(self, title, message)

    def _show_imported(self, name: str) -> None:
        self.show_view("library")
        self.library_view.select_model(name)

    def _stylize_with(self, name: str) -> None:
        self.show_view("stylize")
        if self.stylize_view is not None:
            self.stylize_view.select_style(name)

    def _train_from(self, name: str, mode: str) -> None:
        self.show_view("train")
        if self.train_view is not None:
            (self.train_view.resume_model if mode == "resume" else self.train_view.fine_tune_from)(name)

    # ------------------------------------------------------------- devices
    def start_device_detection(self) -> None:
        """Ask the app's device service for the list (it imports TensorFlow in the background)."""
        service = self.services.devices
        if service.requested:
            return
        self.device_label.setText("Detecting device…")
        service.found.connect(self._on_devices)
        service.failed.connect(self._on_devices_failed)
        service.request()

    def _on_devices(self, devices: list) -> None:
        gpus = [d for d in devices if d.kind == "gpu"]
        label = f"GPU: {gpus[0].name}" if gpus else "CPU"
        self.device_label.setText(label)
        self.device_label.setToolTip("\n".join(d.label for d in devices))
        self.services.hub.device_detected.emit(label)

    def _on_devices_failed(self, message: str) -> None:
        self.device_label.setText("CPU")
        self.device_label.setToolTip(f"Device detection failed: {message}")
        log.warning("device detection failed: %s", message)
        self.services.hub.device_detected.emit("CPU")

    # ------------------------------------------------------------- dialogs
    def open_photos(self) -> None:
        """File > Open photos or clips… from any view: they go to the Stylize view."""
        self.show_view("stylize")
        if self.stylize_view is not None:
            self.stylize_view.files.open_dialog()

    def _show_document(self, make: Callable[[QWidget], QDialog]) -> None:
        dialog = make(self)
        dialog.exec()
        dialog.deleteLater()

    def open_settings(self) -> None:
        from mlabs_desktop.gui.dialogs.settings import SettingsDialog
        dialog = SettingsDialog(self.services, self)
        dialog.exec()
        dialog.deleteLater()

    def open_gpu_status(self) -> None:
        from mlabs_desktop.gui.dialogs.gpu_status import GpuStatusDialog
        dialog = GpuStatusDialog(self.services.devices, self)
        dialog.exec()
        dialog.deleteLater()

    def open_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.log_dir())))

    def show_about(self) -> None:
        QMessageBox.about(self, "About MachineLabs Desktop", (
            f"<h3>MachineLabs Desktop {__version__}</h3>"
            "<p>Train fast neural style transfer models on your own computer and apply them to "
            "your photos.</p>"
            f"<p>Library: {self.services.library().root}<br>Logs: {paths.log_dir()}</p>"))

    # --------------------------------------------------------------- drops
    # Every drop of files is taken, so that one the window cannot use is answered with why.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_paths(event.mimeData()) or dropped_urls(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: ANN001 - QDragMoveEvent
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths_ = dropped_paths(event.mimeData())
        urls = dropped_urls(event.mimeData())
        if not (paths_ or urls):
            return
        event.acceptProposedAction()
        models = [p for p in paths_ if is_importable(p)]
        photos = [p for p in paths_ if p not in models and (p.is_dir() or is_image_path(p) or is_clip_path(p))]
        unusable = [p for p in paths_ if p not in models and p not in photos]
        if models:
            self.transfer.import_models(models)
        if photos or urls:
            self.show_view("stylize")
            if self.stylize_view is not None:
                self.stylize_view.open_paths([*photos, *urls])
        if unusable:
            names = ", ".join(p.name for p in unusable[:3]) + (" and more" if len(unusable) > 3 else "")
            self.show_error(f"Cannot open {names}", DROP_ADVICE)

    # --------------------------------------------------------------- state
    def _settings(self) -> QSettings:
        # MLABS_DESKTOP_HOME keeps *everything* under one folder, window state included.
        import os

        if os.environ.get(paths.HOME_ENV):
            return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)
        return QSettings()

    def _restore_state(self) -> None:
        view = DEFAULT_VIEW
        if self.persist_state:
            settings = self._settings()
            geometry, state = settings.value(KEY_GEOMETRY), settings.value(KEY_STATE)
            if isinstance(geometry, QByteArray) and self.restoreGeometry(geometry):
                if isinstance(state, QByteArray):
                    self.restoreState(state)
            else:
                self.resize(1240, 800)
            saved = settings.value(KEY_VIEW)
            view = saved if saved in VIEW_NAMES else DEFAULT_VIEW
        else:
            self.resize(1240, 800)
        self.show_view(view)

    def save_state(self) -> None:
        if not self.persist_state:
            return
        settings = self._settings()
        settings.setValue(KEY_GEOMETRY, self.saveGeometry())
        settings.setValue(KEY_STATE, self.saveState())
        settings.setValue(KEY_VIEW, self.current_view())
        settings.sync()

    # --------------------------------------------------------------- close
    def closeEvent(self, event: QCloseEvent) -> None:
        if not finish_running_work(self):
            event.ignore()
            return
        self.save_state()
        self.hide()   # waiting below can take seconds (TensorFlow import); don't look frozen
        self.workers.stop(WORKER_EXIT_TIMEOUT_MS)
        if self.train_view is not None:
            self.train_view.shutdown(WORKER_EXIT_TIMEOUT_MS)
        event.accept()
