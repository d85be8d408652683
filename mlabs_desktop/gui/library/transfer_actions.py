"""The File menu's model import and export: file and address dialogs over `transfer`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import Model
from mlabs_desktop.core.outputs import WouldReplace
from mlabs_desktop.gui.kit.common import MODEL_BUNDLE_SUFFIX, confirm_replace, user_text, wait_cursor
from mlabs_desktop.gui.library.transfer import EXPORT_FORMATS, import_model
from mlabs_desktop.gui.kit.services import Services


class ModelTransfer(QObject):
    """Import and export dialogs, owned by the main window.

    ``imported`` carries the name of the last model imported (the window shows
    it in the Library); ``noModelSelected`` asks the window to show the Library;
    ``status`` is one line for the status bar.
    """

    imported = Signal(str)
    noModelSelected = Signal()
    status = Signal(str)

    def __init__(self, window: QWidget, services: Services):
        super().__init__(window)
        self._window = window
        self._services = services

    @Slot()
    def import_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Import a model", "",
            "Style models (*.mlstyle checkpoint *.index manifest.yaml);;All files (*)")
        if path:
            chosen = Path(path)
            # A checkpoint index or a manifest stands for the folder that holds it.
            self.import_models([chosen if chosen.suffix.lower() == MODEL_BUNDLE_SUFFIX else chosen.parent])

    def import_url_dialog(self) -> None:
        url, ok = QInputDialog.getText(self._window, "Import from a web address",
                                       "Address of a .mlstyle bundle (http or https):")
        if ok and url.strip():
            self.import_models([url.strip()])

    def import_models(self, sources: list) -> list[Model]:
        library = self._services.library()
        imported, problems = [], []
        with wait_cursor():
            for source in sources:
                try:
                    imported.append(import_model(source, library))
                except (UserError, OSError) as exc:
                    problems.append(user_text(exc))
        if imported:
            self._services.hub.library_changed.emit()
            self.imported.emit(imported[-1].name)
            self.status.emit(f"Imported {', '.join(repr(m.name) for m in imported)}")
        if problems:
            QMessageBox.warning(self._window, "Cannot import", "\n\n".join(problems))
        return imported

    @Slot(str)
    def export_model_dialog(self, name: str | None) -> None:
        """Export ``name`` (None: nothing chosen yet, so the user is sent to the Library)."""
        if not name:
            self.noModelSelected.emit()
            QMessageBox.information(self._window, "Export model", "Select a model in the Library first.")
            return
        fmt, ok = QInputDialog.getItem(self._window, f"Export '{name}'", "Format:", list(EXPORT_FORMATS), 0, False)
        if not ok:
            return
        folder = QFileDialog.getExistingDirectory(self._window, f"Export '{name}' into folder")
        if not folder:
            return
        overwrite = False
        while True:
            try:
                with wait_cursor():
                    target = EXPORT_FORMATS[fmt](self._services.library().get(name), Path(folder), overwrite)
                break
            except WouldReplace as exc:
                if overwrite or not confirm_replace(self._window, exc.paths):
                    return
                overwrite = True
            except (UserError, OSError) as exc:
                QMessageBox.warning(self._window, "Cannot export", user_text(exc))
                return
        self.status.emit(f"Exported '{name}' to {target}")
