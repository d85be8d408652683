"""Downloads into a per-URL cache: resumable, verified, moved into place atomically.

The command line (``--style``, ``--test``, ``--in-path``, ``--vgg-path``) and the app
fetch remote files through `fetch_to_path`, so a URL is fetched once and reused.
Nothing here prints: the progress callback is the only output, and every failure a
user can act on is a one-line `UserError`.

The cache's layout is in `cache`; the transfer itself (resume, retries,
redirects, verification) in `http`.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

from mlabs_desktop.core.transfer.cache import cache_hit, is_complete, safe_name, url_folder
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.transfer.http import CancelFn, ProgressFn, Transfer, is_url

_OTHER_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


# One lock per URL: the app and a command in one process must not share a .part.
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def fetch_to_path(url_or_path: str | os.PathLike[str], **kw: Any) -> Path:
    """A local path as a `Path` (unchanged, not checked), or a URL downloaded via the cache."""
    if is_url(url_or_path):
        return download(str(url_or_path), **kw)
    text = os.fspath(url_or_path)
    # "ftp://x" would otherwise become a baffling "file not found"; two letters at
    # least, so Windows drive letters ("C:/...") stay paths.
    if _OTHER_SCHEME.match(text):
        raise UserError(f"cannot fetch {text}: only http:// and https:// addresses or local paths are supported")
    return Path(text)


def cached_path(url: str, filename: str | None = None) -> Path | None:
    """The finished cached file for ``url``, or None when it was never downloaded."""
    if not is_url(url):
        return None
    folder = url_folder(url)
    candidates = [folder / safe_name(url, filename)]
    if filename is None and folder.is_dir():
        # A copy saved under a caller-chosen name is still this URL's download.
        candidates += sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    return next((p for p in candidates if is_complete(p)), None)


def download(
    url: str,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    expected_size: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
    timeout: float = 30.0,
    retries: int = 5,
    filename: str | None = None,
) -> Path:
    """Download ``url`` into the cache (once) and return the local path.

    Raises `UserError` for every failure a user can act on, and `Cancelled` once
    ``cancelled()`` is true (the .part stays, so a later call can resume it).
    """
    if not is_url(url):
        raise UserError(f"cannot download {url!r}: only http:// and https:// addresses are supported")
    final = url_folder(url) / safe_name(url, filename)
    with _locks_guard:
        lock = _locks.setdefault(final.parent.name, threading.Lock())
    with lock:
        hit = cache_hit(final, md5, sha256, expected_size)
        if hit is not None:
            return hit
        job = Transfer(url, final, progress, cancelled, timeout, retries)
        return job.run(md5, sha256, expected_size)
