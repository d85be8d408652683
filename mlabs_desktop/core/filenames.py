"""Names for files and folders made from what people type (model names, styles): portable on every OS."""

from __future__ import annotations

import re
import unicodedata


def slugify(name: str) -> str:
    """A folder name for a model name: portable on every OS, never empty."""
    text = unicodedata.normalize("NFKC", name).strip()
    text = re.sub(r"[\\/:*?\"<>|\x00-\x1f]+", "-", text)
    text = re.sub(r"\s+", " ", text).strip(" .-")
    return text[:80] or "model"
