"""The Library view: a grid of model cards, a search box, and a details pane for the selected model.

The folder on disk is the truth: the view re-reads it when shown and whenever
``hub.library_changed`` fires, and keeps nothing but what it needs to paint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QModelIndex, QPoint, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFrame, QHBoxLayout, QInputDialog, QLabel, QLineEdit,
                               QListView, QMenu, QMessageBox, QPushButton, QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.gui.kit.common import user_text
from mlabs_desktop.gui.library.cards import CARD_ROLE, CARD_SIZE, CardDelegate, CardModel, ModelCard, ThumbnailCache
from mlabs_desktop.gui.library.details import DetailsPane, set_font
from mlabs_desktop.gui.kit.services import Services

if TYPE_CHECKING:
    from mlabs_desktop.gui.library.fast_copy import FastCopyDialog


class LibraryView(QWidget):
    view_requested = Signal(str)       # "train": the empty library's call to action
    export_requested = Signal(str)     # model name: the main window owns export formats
    import_requested = Signal()

    def __init__(self, services: Services, parent: QWidget | None = None):
        super().__init__(parent)
        self.services = services
        self.cache = ThumbnailCache()
        self._selected: str | None = None
        self._fast_copies: list["FastCopyDialog"] = []  # their dialogs, open or closed (WA_DeleteOnClose)

        self.card_model = CardModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.card_model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search styles by name")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(240)
        self.search.textChanged.connect(self._on_search)
        self.count_label = QLabel()
        self.count_label.setStyleSheet("color: palette(placeholder-text);")
        import_button = QPushButton("Import…")
        import_button.setToolTip("Copy a model folder into the library")
        import_button.clicked.connect(self.import_requested.emit)
        title = QLabel("Library")
        set_font(title, 1.7, bold=True)
        header = QHBoxLayout()
        header.setSpacing(12)
        header.addWidget(title)
        header.addWidget(self.count_label, 0, Qt.AlignmentFlag.AlignBottom)
        header.addStretch(1)
        header.addWidget(self.search)
        header.addWidget(import_button)

        self.grid = QListView()
        self.grid.setObjectName("card-grid")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setUniformItemSizes(True)
        self.grid.setSpacing(8)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setMouseTracking(True)
        self.grid.setFrameShape(QFrame.Shape.NoFrame)
        # Cards are painted in the Base colour (see CardDelegate); the grid sits on the window colour.
        grid_palette = self.grid.palette()
        grid_palette.setColor(grid_palette.ColorRole.Base, grid_palette.color(grid_palette.ColorRole.Window))
        self.grid.setPalette(grid_palette)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.setModel(self.proxy)
        self.grid.setItemDelegate(CardDelegate(self.cache, self.grid))
        self.grid.setMinimumWidth(CARD_SIZE.width() + 40)
        self.grid.selectionModel().currentChanged.connect(self._on_current_changed)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.grid.doubleClicked.connect(lambda _index: self.stylize_selected())
        self.no_match = QLabel()
        self.no_match.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_match.setStyleSheet("color: palette(placeholder-text); padding: 24px;")
        self.no_match.hide()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.no_match)
        left_layout.addWidget(self.grid, 1)

        self.details = DetailsPane(self.cache)
        self.details.action.connect(self._on_action)
        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([640, 460])

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(16, 16, 16, 12)
        content_layout.setSpacing(12)
        content_layout.addLayout(header)
        content_layout.addWidget(splitter, 1)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._empty_page())
        self.pages.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages)
        services.hub.library_changed.connect(self.refresh)
        self.refresh()

    def _empty_page(self) -> QWidget:
        page = QWidget()
        page.setObjectName("empty-library")
        title = QLabel("Your library is empty")
        set_font(title, 2.0, bold=True)
        body = QLabel("Train a style from a painting and a folder of your photos. It appears here as "
                      "soon as its first checkpoint is saved.\n\nYou can also drop a model folder onto "
                      "this window to import it.")
        body.setWordWrap(True)
        body.setStyleSheet("color: palette(placeholder-text);")
        set_font(body, 1.1)
        for label in (title, body):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        button = QPushButton("Train your first style")
        button.setObjectName("train-first")
        button.setDefault(True)
        button.setMinimumSize(220, 40)
        set_font(button, 1.1, bold=True)
        button.clicked.connect(lambda: self.view_requested.emit("train"))
        # A fixed-width column whose wrapped text is given its full height up front: layouts
        # that centre a widget use its size hint, which is too short for wrapped text.
        column = QWidget()
        column.setFixedWidth(480)
        column_layout = QVBoxLayout(column)
        column_layout.setContentsMargins(0, 0, 0, 0)
        column_layout.setSpacing(16)
        body.setMinimumHeight(body.heightForWidth(480))
        column_layout.addWidget(title)
        column_layout.addWidget(body)
        column_layout.addSpacing(4)
        column_layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(32, 32, 32, 32)
        layout.addStretch(1)
        layout.addWidget(column, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        return page

    # -------------------------------------------------------------- state
    def is_empty(self) -> bool:
        return self.pages.currentIndex() == 0

    def selected_name(self) -> str | None:
        return self._selected

    def select_model(self, name: str) -> bool:
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(CARD_ROLE).name == name:
                self.grid.setCurrentIndex(index)
                self.grid.scrollTo(index)
                return True
        return False

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the library folder; repaint only when something changed."""
        try:
            cards = [ModelCard.from_model(m) for m in self.services.library().models()]
        except (OSError, UserError) as exc:  # its folder gone (a drive unplugged) since the app started
            self.services.hub.status.emit(f"Cannot read the library: {user_text(exc)}")
            cards = []
        self.pages.setCurrentIndex(0 if not cards else 1)
        if cards != self.card_model.cards:
            keep = self._selected
            self.card_model.set_cards(cards)
            if keep is None or not self.select_model(keep):
                self._show_details(None)
        self._update_no_match()

    def _on_search(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        if self._selected and not self.select_model(self._selected):
            self.grid.clearSelection()
            self._show_details(None)
        self._update_no_match()

    def _update_no_match(self) -> None:
        total, shown = len(self.card_model.cards), self.proxy.rowCount()
        self.count_label.setText(f"{shown} of {total} styles" if shown != total
                                 else f"{total} style{'s' if total != 1 else ''}")
        empty = shown == 0 and bool(total)
        self.no_match.setText(f"No styles match “{self.search.text().strip()}”.")
        self.no_match.setVisible(empty)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_details(current.data(CARD_ROLE).name if current.isValid() else None)

    def _show_details(self, name: str | None) -> None:
        self._selected = name
        model = self.services.library().find(name) if name else None
        self.details.show_model(model)

    # ------------------------------------------------------------ actions
    def _context_menu(self, pos: QPoint) -> None:
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        self.grid.setCurrentIndex(index)
        menu = QMenu(self)
        for key, text in self.details.ACTIONS:
            if key == "rename":
                menu.addSeparator()
            action = menu.addAction(text)
            action.setEnabled(self.details.buttons[key].isEnabled())
            action.triggered.connect(lambda _c=False, k=key: self._on_action(k))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    def _on_action(self, key: str) -> None:
        name = self._selected
        if not name:
            return
        hub = self.services.hub
        if key == "stylize":
            hub.stylize_with.emit(name)
        elif key == "resume":
            hub.train_from.emit(name, "resume")
        elif key == "fine-tune":
            hub.train_from.emit(name, "fine-tune")
        elif key == "fast-copy":
            self.make_fast_copy(name)
        elif key == "export":
            self.export_requested.emit(name)
        elif key == "rename":
            self.rename_selected()
        elif key == "delete":
            self.delete_selected()

    def make_fast_copy(self, name: str) -> QDialog | None:
        """Distil ``name`` into the tiny network, in a dialog with progress and Stop (None: no photos chosen).

        While a copy of the same style is being made, its dialog comes to the front instead.
        """
        from mlabs_desktop.gui.library.fast_copy import FastCopyDialog, photos_for

        for dialog in self.running_fast_copies():
            if dialog.model_name == name:
                dialog.raise_()
                dialog.activateWindow()
                return dialog
        model = self.services.library().find(name)
        photos = photos_for(model, self) if model is not None else None
        if photos is None:
            return None
        dialog = FastCopyDialog(self.services, model, photos, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.made.connect(lambda made: (self.refresh(), self.select_model(made)))
        self._fast_copies.append(dialog)
        dialog.show()
        return dialog

    def running_fast_copies(self) -> list["FastCopyDialog"]:
        self._fast_copies = [d for d in self._fast_copies if shiboken6.isValid(d)]
        return [d for d in self._fast_copies if d.is_running()]

    def stop_fast_copies_and_wait(self, timeout_ms: int) -> bool:
        """Stop every fast copy after its current step (each keeps what it learnt); False if one is still saving."""
        running = self.running_fast_copies()
        for dialog in running:
            dialog.stop()
        return all(dialog.worker.wait(timeout_ms) for dialog in running)

    def stylize_selected(self) -> None:
        self._on_action("stylize")

    def rename_selected(self) -> None:
        name = self._selected
        if not name:
            return
        new, ok = QInputDialog.getText(self, "Rename style", "New name:", QLineEdit.EchoMode.Normal, name)
        new = (new or "").strip()
        if not ok or not new or new == name:
            return
        try:
            model = self.services.library().rename(name, new)
        except (UserError, OSError) as exc:
            QMessageBox.warning(self, "Cannot rename", user_text(exc))
            return
        self._selected = model.name
        self.services.hub.library_changed.emit()
        self.services.hub.status.emit(f"Renamed '{name}' to '{model.name}'")

    def delete_selected(self) -> None:
        name = self._selected
        if not name:
            return
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        answer = QMessageBox.question(
            self, "Delete style", f"Delete '{name}'?\n\nIts folder, weights and checkpoints are removed "
            "from the library. This cannot be undone.", yes | no, no)
        if answer != yes:
            return
        try:
            self.services.library().delete(name)
        except (UserError, OSError) as exc:
            QMessageBox.warning(self, "Cannot delete", user_text(exc))
            return
        self._selected = None
        self.services.hub.library_changed.emit()
        self.services.hub.status.emit(f"Deleted '{name}'")
