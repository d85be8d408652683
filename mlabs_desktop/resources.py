"""The one place that finds files shipped with the app (presets, samples, icons).

A source checkout keeps them beside the package; an installed wheel carries
them inside the package as ``mlabs_desktop/_data``; a PyInstaller bundle
unpacks them under ``sys._MEIPASS``. Nothing is looked up relative to the
working directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
RESOURCE_FOLDERS = ("resources", "presets")


def _roots() -> list[Path]:
    roots = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.append(Path(bundle))
    roots.append(_PACKAGE / "_data")      # installed wheel
    roots.append(_PACKAGE.parent)         # source checkout / editable install
    return roots


def resource_path(*parts: str) -> Path:
    """Path of a shipped file, e.g. ``resource_path('presets', 'reference.yaml')``."""
    for root in _roots():
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"shipped resource missing: {'/'.join(parts)} (looked in {', '.join(map(str, _roots()))})")


def resource_dir(name: str) -> Path:
    return resource_path(name)


def sample_image(name: str = "chelsea.jpg") -> Path:
    return resource_path("resources", "samples", name)
