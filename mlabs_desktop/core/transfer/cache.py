"""The download cache: one folder per URL, finished files and their sidecars.

Layout of ``paths.cache_dir() / "downloads" / sha256(url)``: ``NAME`` is the
finished file (it only ever appears through os.replace), ``.NAME.json`` its size
and hashes, ``.NAME.part`` the bytes received so far (hidden, so never mistaken
for a finished file) and ``.NAME.part.json`` the server's validator for resuming.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlabs_desktop.core import paths
from mlabs_desktop.core.smallfiles import read_json_mapping

_UNSAFE_CHARS = re.compile(r'[\x00-\x1f<>:"/\\|?*]')


def url_folder(url: str) -> Path:
    return paths.cache_dir() / "downloads" / hashlib.sha256(url.encode("utf-8")).hexdigest()


def safe_name(url: str, filename: str | None) -> str:
    raw = filename if filename is not None else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    # No separators or characters Windows rejects; no leading dot, so the finished
    # file can never collide with the hidden .part/.json files beside it.
    name = _UNSAFE_CHARS.sub("_", raw).strip().lstrip(".").rstrip(". ")[:200]
    return name or "download"


def sidecar(final: Path, suffix: str) -> Path:
    return final.with_name(f".{final.name}{suffix}")


def remove_files(*files: Path) -> None:
    for path in files:
        with contextlib.suppress(OSError):
            path.unlink()


def is_complete(final: Path) -> bool:
    # The recorded size catches a cached file truncated or replaced behind our back.
    if not final.is_file():
        return False
    size = read_json_mapping(sidecar(final, ".json")).get("size")
    return size is None or final.stat().st_size == size


def _matches(path: Path, md5: str | None, sha256: str | None, expected_size: int | None) -> bool:
    if not is_complete(path) or (expected_size is not None and path.stat().st_size != expected_size):
        return False
    # Hashes were recorded when the file was verified: a hit costs no re-read.
    meta = read_json_mapping(sidecar(path, ".json"))
    return all(not want or meta.get(algo) == want.strip().lower() for algo, want in (("md5", md5), ("sha256", sha256)))


def cache_hit(final: Path, md5: str | None, sha256: str | None, size: int | None) -> Path | None:
    if _matches(final, md5, sha256, size):
        return final
    remove_files(final, sidecar(final, ".json"))  # truncated, or not what is expected now
    return None
