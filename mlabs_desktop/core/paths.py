"""Where user data lives.

Everything goes under the platformdirs locations, unless ``MLABS_DESKTOP_HOME``
names a folder: then library, cache, config and logs all live under it (tests
and portable installs use this).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "mlabs-desktop"
HOME_ENV = "MLABS_DESKTOP_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    home = _home()
    return _ensure(home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))


def config_dir() -> Path:
    home = _home()
    return _ensure(home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)))


def cache_dir() -> Path:
    home = _home()
    return _ensure(home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)))


def log_dir() -> Path:
    home = _home()
    return _ensure(home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)))


def default_library_dir() -> Path:
    return _ensure(data_dir() / "library")


def user_presets_dir() -> Path:
    return _ensure(config_dir() / "presets")


def weights_dir() -> Path:
    """Where downloaded or located loss-network weights are kept."""
    return _ensure(data_dir() / "weights")
