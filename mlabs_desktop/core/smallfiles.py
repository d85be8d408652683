"""Reading the files strangers may hand us: small text files (manifests, presets, lab files), and digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from mlabs_desktop.core.errors import UserError


def read_small_text(path: Path, limit: int, what: str, missing: str | None = None) -> str:
    """UTF-8 text of ``path``, refusing files over ``limit`` bytes; every failure is one UserError.

    ``what`` names the file in messages ("a preset", "a lab file"); ``missing``
    replaces the message for a file that does not exist.
    """
    try:
        if path.stat().st_size > limit:
            raise UserError(f"{path}: too large for {what} (more than {max(1, limit // 1024)} KB)")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(missing or f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {what} {path}: {exc}") from None


class UnreadableYAML(yaml.YAMLError):
    """Text that parses but cannot become data: nested too deeply, or a number too long to convert.

    Its ``problem`` reads after the file's name and a colon ("ml.yaml: nested too deeply"); it has no line to
    point at."""

    NESTED = "nested too deeply"

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem  # as yaml's own errors name it, for callers that word it


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` (plain data, no tags that run code), with every failure a `yaml.YAMLError`.

    safe_load itself raises RecursionError for deep nesting and ValueError for a number of thousands of
    digits; callers catch one error class for all of it.
    """
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise UnreadableYAML(UnreadableYAML.NESTED) from None
    except (ValueError, OverflowError, TypeError) as exc:  # Python's own advice after ";" is not for our users
        raise UnreadableYAML(f"a value that cannot be read ({str(exc).split(';')[0][:120]})") from None


def read_json_mapping(path: Path) -> dict[str, Any]:
    """The JSON object in a file the app keeps for itself (a cache, a sidecar); {} where it is missing or
    damaged in any way, since such a file is only ever a shortcut."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file of any size, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
