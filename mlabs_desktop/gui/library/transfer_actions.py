"""The main window's File-menu model import and export: file and address dialogs over `transfer`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QFileDialog, QInputDialog, QLabel, QMessageBox

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import Model
from mlabs_desktop.core.outputs import WouldReplace
from mlabs_desktop.gui.kit.common import MODEL_BUNDLE_SUFFIX, confirm_replace, wait_cursor
from mlabs_desktop.gui.library.view import LibraryView
from mlabs_desktop.gui.library.transfer import EXPORT_FORMATS, import_model
from mlabs_desktop.gui.kit.services import Services


class ModelTransferActions:
    """Import and export dialogs, mixed into `MainWindow` (which has ``show_view`` and these attributes)."""

    services: Services
    library_view: LibraryView
    status_text: QLabel
    show_view: Callable[[str], None]

    def import_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a model", "", "Style models (*.mlstyle checkpoint *.index manifest.yaml);;All files (*)")
        if path:
            chosen = Path(path)
            # A checkpoint index or a manifest stands for the folder that holds it.
            self.import_models([chosen if chosen.suffix.lower() == MODEL_BUNDLE_SUFFIX else chosen.parent])

    def import_url_dialog(self) -> None:
        url, ok = QInputDialog.getText(self, "Import from a web address",
                                       "Address of a .mlstyle bundle (http or https):")
        if ok and url.strip():
            self.import_models([url.strip()])

    def import_models(self, sources: list) -> list[Model]:
        library = self.services.library()
        imported, problems = [], []
        with wait_cursor():
            for source in sources:
                try:
                    imported.append(import_model(source, library))
                except (UserError, OSError) as exc:
                    problems.append(str(exc))
        if imported:
            self.services.hub.library_changed.emit()
            self.show_view("library")
            self.library_view.select_model(imported[-1].name)
            self.status_text.setText(f"Imported {', '.join(repr(m.name) for m in imported)}")
        if problems:
            QMessageBox.warning(self, "Cannot import", "\n\n".join(problems))
        return imported

    def export_model_dialog(self, name: str | None = None) -> None:
        name = name or self.library_view.selected_name()
        if not name:
            self.show_view("library")
            QMessageBox.information(self, "Export model", "Select a model in the Library first.")
            return
        fmt, ok = QInputDialog.getItem(self, f"Export '{name}'", "Format:", list(EXPORT_FORMATS), 0, False)
        if not ok:
            return
        folder = QFileDialog.getExistingDirectory(self, f"Export '{name}' into folder")
        if not folder:
            return
        overwrite = False
        while True:
            try:
                with wait_cursor():
                    target = EXPORT_FORMATS[fmt](self.services.library().get(name), Path(folder), overwrite)
                break
            except WouldReplace as exc:
                if overwrite or not confirm_replace(self, exc.paths):
                    return
                overwrite = True
            except (UserError, OSError) as exc:
                QMessageBox.warning(self, "Cannot export", str(exc))
                return
        self.status_text.setText(f"Exported '{name}' to {target}")
