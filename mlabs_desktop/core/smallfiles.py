"""Reading the small text files strangers may hand us: manifests, presets, lab files."""

from __future__ import annotations

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
