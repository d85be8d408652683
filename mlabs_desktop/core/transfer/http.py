"""One HTTP(S) download into the cache's ``.part`` file: resumable, retried, verified.

`Transfer` feeds its hashes exactly the bytes it writes, so they stay right
across resumes; transient failures (dropped connections, timeouts, 5xx) are
retried with a short backoff, and every failure a user can act on becomes a
one-line `UserError`. Redirects are followed by hand, each hop checked to be
http(s).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from mlabs_desktop.core import atomic
from mlabs_desktop.core.smallfiles import read_json_mapping
from mlabs_desktop.core.transfer.cache import remove_files, sidecar
from mlabs_desktop.core.errors import Cancelled, UserError, disk_full_error

CHUNK_SIZE = 64 * 1024
MAX_REDIRECTS = 10
# Backoff before retry n is RETRY_BACKOFF_S * 2**(n-1), capped: short, because a
# person is usually watching the progress bar. Tests shrink it.
RETRY_BACKOFF_S = 0.25
RETRY_BACKOFF_MAX_S = 2.0

_REDIRECT_CODES = {301, 302, 303, 307, 308}
# urllib3 1.x has no NameResolutionError; isinstance(x, ()) is simply False there.
_NAME_ERROR: Any = getattr(urllib3.exceptions, "NameResolutionError", ())


@dataclass(frozen=True)
class DownloadProgress:
    url: str
    received: int
    total: int | None
    bytes_per_sec: float


ProgressFn = Callable[[DownloadProgress], None]
CancelFn = Callable[[], bool]


class _Retry(Exception):
    """A transient failure (dropped connection, timeout, 5xx): worth another try."""

    def __init__(self, detail: str, advice: str) -> None:
        super().__init__(detail)
        self.detail, self.advice, self.tries = detail, advice, 0


def is_url(text: object) -> bool:
    """True for an http:// or https:// address with a host."""
    if not isinstance(text, str):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


@dataclass
class Transfer:
    """One download into ``.NAME.part``. The hashes are fed exactly the bytes that
    are written, so they stay right across resumes without re-reading the file."""

    url: str
    final: Path
    progress: ProgressFn | None
    cancelled: CancelFn | None
    timeout: float
    retries: int
    offset: int = 0
    total: int | None = None
    validator: str | None = None  # strong ETag or Last-Modified, sent as If-Range
    can_resume: bool = True
    fetched: int = 0  # bytes off the network in this call, for the rate
    started: float = field(default_factory=time.monotonic)
    md5: Any = field(default_factory=hashlib.md5)
    sha256: Any = field(default_factory=hashlib.sha256)

    @property
    def part(self) -> Path:
        return sidecar(self.final, ".part")

    @property
    def part_state(self) -> Path:
        return sidecar(self.final, ".part.json")

    def run(self, md5: str | None, sha256: str | None, expected_size: int | None) -> Path:
        folder, done, keep = self.final.parent, False, False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._load_partial()
            with requests.Session() as session:
                self._retry_loop(session)
            self._verify(md5, sha256, expected_size)
            with open(self.part, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(self.part, self.final)
            meta = {"url": self.url, "size": self.offset, "md5": self.md5.hexdigest()}
            meta["sha256"] = self.sha256.hexdigest()
            atomic.write_text(sidecar(self.final, ".json"), json.dumps(meta))  # also fsyncs the folder
            remove_files(self.part_state)
            done = True
            return self.final
        except Cancelled:
            keep = True
            raise
        except _Retry as exc:  # out of retries
            # Worth resuming next time only with a validator proving the file is unchanged.
            keep = self.offset > 0 and self.validator is not None and self.can_resume
            raise UserError(f"download failed after {exc.tries} tries: {exc.detail}; {exc.advice}") from exc
        except UserError:
            raise
        except requests.RequestException as exc:  # an OSError subclass: keep it out of the branch below
            raise UserError(f"download of {self.url} failed ({type(exc).__name__}); check the address") from exc
        except OSError as exc:
            raise _fs_error(exc, self.url, folder) from exc
        finally:
            if not done:
                if not keep:
                    remove_files(self.part, self.part_state)
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only succeeds when nothing is left in it

    def _load_partial(self) -> None:
        validator = read_json_mapping(self.part_state).get("validator")
        if not (isinstance(validator, str) and validator.isprintable() and validator and self.part.is_file()):
            remove_files(self.part, self.part_state)  # the server's file may have changed since
            return
        self.validator = validator
        with open(self.part, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                self._add(block)
        self.fetched = 0

    def _add(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.offset += len(chunk)
        self.fetched += len(chunk)

    def _restart(self) -> None:
        if self.part.exists():
            os.truncate(self.part, 0)
        self.offset = 0
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()

    def _report(self) -> None:
        if self.progress is not None:
            elapsed = time.monotonic() - self.started
            rate = self.fetched / elapsed if elapsed > 0 else 0.0
            self.progress(DownloadProgress(self.url, self.offset, self.total, rate))

    def _check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled()

    def _retry_loop(self, session: requests.Session) -> None:
        tries = failures = 0
        best = self.offset
        while True:
            self._check()
            tries += 1
            try:
                return self._attempt(session)
            except _Retry as exc:
                if self.offset > best:  # the budget counts stalls, not a long download on a flaky line
                    best, failures = self.offset, 0
                failures += 1
                if failures > self.retries:
                    exc.tries = tries
                    raise
                # Sleep in slices so a cancel during the backoff is honoured promptly.
                deadline = time.monotonic() + min(RETRY_BACKOFF_S * 2 ** (failures - 1), RETRY_BACKOFF_MAX_S)
                while (left := deadline - time.monotonic()) > 0:
                    self._check()
                    time.sleep(min(left, 0.05))

    def _attempt(self, session: requests.Session) -> None:
        if self.offset and not self.can_resume:
            self._restart()
        headers = {"Accept-Encoding": "identity"}  # byte offsets must mean bytes of the file
        if self.offset:
            headers["Range"] = f"bytes={self.offset}-"
            if self.validator:
                headers["If-Range"] = self.validator  # a changed file comes back whole (200)
        try:
            response = _open(session, self.url, headers, self.timeout)
        except requests.RequestException as exc:
            raise _classify(exc, self.url, self.timeout, mid_body=False) from exc
        with response:
            if not self._start_body(response):
                return
            if self.validator:
                atomic.write_text(self.part_state, json.dumps({"validator": self.validator, "total": self.total}))
            self._report()
            try:
                with open(self.part, "ab") as handle:
                    for chunk in _chunks(response):
                        self._check()
                        _write_chunk(handle, chunk)
                        self._add(chunk)
                        self._report()
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                raise _classify(exc, self.url, self.timeout, mid_body=True) from exc
        if self.total is not None and self.offset < self.total:
            detail = f"the connection to {self.url} dropped after {self.offset} of {self.total} bytes"
            raise _Retry(detail, "try again later")

    def _start_body(self, response: requests.Response) -> bool:
        """Line the .part file up with the response; False when nothing is left to read."""
        code, headers = response.status_code, response.headers
        if code == 416 and self.offset:
            total = _content_range(headers.get("Content-Range", ""))[1]
            if total == self.offset and self.total in (None, total):  # the .part already holds it all
                self.total = total
                return False
            self._restart()
            raise _Retry(f"{self.url} refused to resume the download", "try again")
        _raise_for_status(response, self.url)
        if code == 206:
            start, total = _content_range(headers.get("Content-Range", ""))
            if start != self.offset or (None not in (total, self.total) and total != self.total):
                self._restart()
                raise _Retry(f"{self.url} answered a resume request with the wrong range", "try again")
        else:
            if self.offset:  # the server ignored Range, or If-Range says the file changed
                self._restart()
            length = headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        if headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
            # Decoded bytes match neither Content-Length nor byte ranges.
            total, self.can_resume = None, False
        self.total = total
        etag = headers.get("ETag")
        self.validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
        return True

    def _verify(self, md5: str | None, sha256: str | None, expected_size: int | None) -> None:
        if expected_size is not None and self.offset != expected_size:
            raise UserError(
                f"download of {self.url} has the wrong size: expected {expected_size} bytes, got {self.offset}; "
                "check the address or the expected size"
            )
        for algo, want, hasher in (("md5", md5, self.md5), ("sha256", sha256, self.sha256)):
            if want and hasher.hexdigest() != want.strip().lower():
                raise UserError(
                    f"download of {self.url} is not the expected file: expected {algo} {want.strip().lower()}, "
                    f"got {hasher.hexdigest()}; try again, or check the address and the expected hash"
                )


def _chunks(response: requests.Response) -> Iterator[bytes]:
    raw = response.raw
    # A short body is caught by `offset < total`; letting urllib3 raise instead
    # would throw away the bytes it had buffered, and resume further back.
    raw.enforce_content_length = False
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # urllib3 1.x
        yield from (chunk for chunk in response.iter_content(CHUNK_SIZE) if chunk)
        return
    # read1 hands over whatever has arrived, so a read timeout mid-body loses
    # nothing already received (read(n) waits to fill n, then drops it all).
    while chunk := read1(CHUNK_SIZE, decode_content=True):
        yield chunk


def _write_chunk(handle: Any, data: bytes) -> None:
    # A seam of its own so tests can simulate a full disk.
    handle.write(data)


def _open(session: requests.Session, url: str, headers: dict[str, str], timeout: float) -> requests.Response:
    # Redirects are followed by hand: requests would follow one to any scheme its
    # adapters know, and each hop must be checked to be http(s).
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        response = session.get(
            current, headers=headers, stream=True, timeout=(timeout, timeout), allow_redirects=False
        )
        location = response.headers.get("Location")
        if response.status_code not in _REDIRECT_CODES or not location:
            return response
        response.close()
        current = urljoin(current, location)
        if not is_url(current):
            raise UserError(
                f"refusing the redirect from {url} to {current}: only http:// and https:// downloads are allowed"
            )
    raise UserError(f"download failed: {url} redirects more than {MAX_REDIRECTS} times; check the address")


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(start, total) from "bytes START-END/TOTAL" or "bytes */TOTAL"."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _raise_for_status(response: requests.Response, url: str) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    what = f"{url} answered HTTP {code} {response.reason or ''}".rstrip()
    if code in (408, 425, 429) or code >= 500:
        raise _Retry(what, "the server has a problem; try again later")
    advice = {
        401: "the file is not public; check the address",
        403: "the server refused access; check the address",
        410: "the file was removed; look for a new address",
    }.get(code, "check the address")
    raise UserError(f"download failed: {what}; {advice}")


def _classify(exc: Exception, url: str, timeout: float, *, mid_body: bool) -> Exception:
    host = urlsplit(url).hostname or url
    inner = exc.args[0] if exc.args else None
    if isinstance(getattr(inner, "reason", inner), _NAME_ERROR):
        # An unknown host does not come back in a few seconds: no retries.
        return UserError(f"could not find the server {host} for {url}; check the address and your internet connection")
    if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
        return _Retry(f"no answer from {url} within {timeout:g} s", "check your internet connection or try again later")
    if mid_body or isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _Retry(f"the connection to {url} dropped", "try again later")
    if isinstance(exc, requests.ConnectionError):
        return _Retry(f"could not connect to {host} for {url}", "check the address and your internet connection")
    return UserError(f"download of {url} failed ({type(exc).__name__}); check the address")


def _fs_error(exc: OSError, url: str, folder: Path) -> UserError:
    full = disk_full_error(exc, folder)
    if full is not None:
        return full
    return UserError(f"could not save {url} in {folder}: {exc.strerror or exc}; check that the folder is writable")
