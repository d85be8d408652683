"""User settings: a typed object saved as YAML in the config dir.

Unknown keys are reported (not silently dropped on the next save... they are
kept out and listed in `Settings.warnings`), missing keys take their defaults,
and a broken file never stops the app from starting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlabs_desktop.core import atomic, paths
from mlabs_desktop.core.smallfiles import load_yaml

SETTINGS_FILE = "settings.yaml"
SETTINGS_VERSION = 1


@dataclass
class Settings:
    version: int = SETTINGS_VERSION
    library_dir: str | None = None      # None: the platformdirs default
    vgg_path: str | None = None         # None: look in the usual places
    default_device: str = "auto"
    default_preset: str = "quick-look"
    lab_mounts: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list, repr=False, compare=False)

    def to_yaml(self) -> str:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "warnings"}
        return yaml.safe_dump(data, sort_keys=False)


def settings_path() -> Path:
    return paths.config_dir() / SETTINGS_FILE


def load_settings() -> Settings:
    path = settings_path()
    settings = Settings()
    if not path.is_file():
        return settings
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        settings.warnings.append(f"{path} could not be read ({type(exc).__name__}); using defaults")
        return settings
    if not isinstance(data, dict):
        settings.warnings.append(f"{path} is not a mapping; using defaults")
        return settings
    known = {f.name: f for f in dataclasses.fields(Settings) if f.name != "warnings"}
    for key, value in data.items():
        if key not in known:
            settings.warnings.append(f"{path}: unknown setting '{key}' ignored")
            continue
        default = getattr(settings, key)
        if not _same_kind(default, value, known[key]):
            settings.warnings.append(f"{path}: setting '{key}' has the wrong type; using the default")
            continue
        setattr(settings, key, value)
    if settings.default_device not in ("auto", "cpu", "gpu"):
        settings.warnings.append(f"{path}: default_device must be auto, cpu or gpu")
        settings.default_device = "auto"
    return settings


def _same_kind(default: Any, value: Any, f: dataclasses.Field) -> bool:
    if value is None:
        return "None" in str(f.type)
    if isinstance(default, dict) or f.name == "lab_mounts":
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if isinstance(default, int) and not isinstance(default, bool):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def save_settings(settings: Settings) -> Path:
    path = settings_path()
    atomic.write_text(path, settings.to_yaml())
    return path
