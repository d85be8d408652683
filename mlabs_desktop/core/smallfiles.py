"""Reading the files strangers may hand us: small text files (manifests, presets, lab files), and digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file of any size, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
