"""Presets: named sets of training parameters in YAML, keyed by command-line flag names.

Shipped presets live in ``presets/``; users save their own in the config dir's
``presets/`` folder, where a user preset of the same name wins. Files are read
with ``yaml.safe_load`` (a preset from a stranger can hold data, never code),
and any problem names the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlabs_desktop.core import atomic, paths
from mlabs_desktop.core.config import PARAMS_BY_NAME, TrainingConfig, apply_params, coerce_param
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.smallfiles import load_yaml, read_small_text
from mlabs_desktop.resources import resource_dir

MAX_PRESET_BYTES = 64 * 1024
SUFFIX = ".yaml"


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    params: dict[str, Any]
    description: str = ""
    shipped: bool = False
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    def apply(self, config: TrainingConfig) -> TrainingConfig:
        return apply_params(config, self.params)


def _key_lines(text: str) -> dict[str, int]:
    """Line number (1-based) of each top-level key, for messages that point at the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def load_preset(path: Path | str, shipped: bool = False) -> Preset:
    path = Path(path).expanduser()
    text = read_small_text(path, MAX_PRESET_BYTES, "a preset", missing=f"preset file not found: {path}")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UserError(f"{path}{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path} line 1: a preset must be a mapping of flag names to values")
    lines = _key_lines(text)
    description = data.pop("description", "")
    params: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path} line {lines.get(str(key), 1)}"
        if key not in PARAMS_BY_NAME:
            raise UserError(f"{where}: unknown key '{key}' (allowed: {', '.join(PARAMS_BY_NAME)})")
        try:
            params[key] = coerce_param(key, value)
        except ValueError as exc:
            raise UserError(f"{where}: {exc}") from None
    return Preset(path.stem, path, params, str(description or ""), shipped, lines)


def shipped_dir() -> Path:
    return resource_dir("presets")


def list_presets() -> list[Preset]:
    """Shipped presets, then the user's (a user preset replaces a shipped one of the same name).

    A broken user preset is left out here; loading it by name reports the problem.
    """
    found: dict[str, Preset] = {}
    for folder, shipped in ((shipped_dir(), True), (paths.user_presets_dir(), False)):
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                found[path.stem] = load_preset(path, shipped)
            except UserError:
                continue
    return list(found.values())


def find_preset(name_or_file: str) -> Preset:
    """A preset by name (user's first, then shipped) or by file path."""
    candidate = Path(name_or_file).expanduser()
    if candidate.suffix in (SUFFIX, ".yml") or candidate.is_file():
        return load_preset(candidate)
    for folder, shipped in ((paths.user_presets_dir(), False), (shipped_dir(), True)):
        path = folder / f"{name_or_file}{SUFFIX}"
        if path.is_file():
            return load_preset(path, shipped)
    names = ", ".join(p.name for p in list_presets())
    raise UserError(f"unknown preset '{name_or_file}' (available: {names})")


def save_user_preset(name: str, params: dict[str, Any], description: str = "") -> Path:
    """Write a user preset atomically; values are validated first."""
    clean = name.strip()
    if not clean or any(c in clean for c in '/\\:*?"<>|') or clean.startswith("."):
        raise UserError(f"'{name}' cannot be a preset name; use letters, digits, spaces or dashes")
    checked = {k: coerce_param(k, v) for k, v in params.items()}
    body = ({"description": description} if description else {}) | checked
    path = paths.user_presets_dir() / f"{clean}{SUFFIX}"
    atomic.write_text(path, yaml.safe_dump(body, sort_keys=False))
    return path
