"""Help > Getting started and Help > Keyboard shortcuts.

The guide is a shipped Markdown file; the shortcuts are read from the window's
own actions, so the list cannot drift from what the keys do.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from mlabs_desktop.resources import resource_path

# Keys that belong to a widget, not to an action.
WIDGET_KEYS = (("0", "Fit the photo in the comparison"), ("1", "Show the photo at 100 %"),
               ("Delete", "Remove the selected photos from the queue"))


def guide_markdown() -> str:
    return resource_path("resources", "guide", "first-use.md").read_text(encoding="utf-8")


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(keys, what they do) for every action under ``window`` that has a shortcut, first one of each."""
    rows: dict[str, str] = {}
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        label = action.text().replace("&", "").rstrip("…").strip()
        if keys and label and keys not in rows:
            rows[keys] = label
    return [*rows.items(), *WIDGET_KEYS]


def _document_dialog(parent: QWidget, title: str, fill) -> QDialog:  # noqa: ANN001 - fills a QTextBrowser
    dialog = QDialog(parent, windowTitle=title)
    browser = QTextBrowser(openExternalLinks=True)
    fill(browser)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(browser)
    layout.addWidget(buttons)
    dialog.resize(620, 560)
    return dialog


def guide_dialog(parent: QWidget) -> QDialog:
    return _document_dialog(parent, "Getting started", lambda b: b.setMarkdown(guide_markdown()))


def shortcuts_dialog(parent: QWidget) -> QDialog:
    rows = "".join(f"<tr><td style='padding:3px 18px 3px 0'><b>{keys}</b></td><td>{what}</td></tr>"
                   for keys, what in shortcut_rows(parent))
    html = f"<h3>Keyboard shortcuts</h3><table>{rows}</table>"
    return _document_dialog(parent, "Keyboard shortcuts", lambda b: b.setHtml(html))
