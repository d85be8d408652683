"""The PySide6 desktop app: a thin layer of views and workers over `mlabs_desktop.core`."""
