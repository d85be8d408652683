"""A real HTTP server on 127.0.0.1 for download tests: no internet, no mocks of requests.

Usage::

    with LocalHTTPServer() as server:
        url = server.route("/file.bin", body=b"...", drop_after=1000, drop_times=1)
        ...
        assert server.count("/file.bin") == 2
        assert server.ranges("/file.bin") == [None, "bytes=1000-"]

Each route is a `Route`; every request is recorded as a `Hit`. ``close()`` (or
leaving the ``with``) wakes any hanging or throttled handler and joins every
thread, so no test leaves one running.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Route:
    body: bytes = b""
    status: int = 200  # anything but 200 answers that status with `body`
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    ranges: bool = True  # honour Range with 206; False answers 200 with the whole body
    etag: bool = True  # send a strong ETag (and honour If-Range)
    chunk_size: int = 16 * 1024
    delay: float = 0.0  # seconds to sleep before each chunk (throttle)
    drop_after: int | None = None  # close the connection after this many body bytes...
    drop_times: int = 0  # ...on the first K requests to this route
    stall: float = 0.0  # ...after first stalling this long (to hit a read timeout mid-body)
    content_length: int | None = None  # lie in Content-Length (200 only)
    redirect_to: str | None = None  # answer `redirect_status` with this Location
    redirect_status: int = 302
    hang: float = 0.0  # accept the request, then say nothing for this long and close


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    range: str | None
    headers: dict[str, str]


class _Server(http.server.ThreadingHTTPServer):
    # Join handler threads on server_close(): nothing outlives the test.
    daemon_threads = False
    block_on_close = True
    owner: "LocalHTTPServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client hanging up (timeouts, cancels) is expected here, not a failure.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads
    timeout = 5  # socket timeout, so a silent client cannot pin a handler thread
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        hit = Hit(self.command, path, self.headers.get("Range"), dict(self.headers.items()))
        with owner._lock:
            owner.hits.append(hit)
            route = owner._routes.get(path)
            number = sum(1 for h in owner.hits if h.path == path and h.method == "GET")
        if route is None:
            self._simple(404, b"no such route")
            return
        if route.hang:
            owner._stop.wait(route.hang)
            self.close_connection = True
            return
        if route.redirect_to is not None:
            self.send_response(route.redirect_status)
            self.send_header("Location", route.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if route.status != 200:
            self._simple(route.status, route.body)
            return
        self._send_body(route, number, head)

    def _simple(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_body(self, route: Route, number: int, head: bool) -> None:
        body = route.body
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and route.ranges and (if_range is None or if_range == etag):
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if match:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                end = min(int(match.group(2)), len(body) - 1) if match.group(2) else len(body) - 1
                body, status = body[start : end + 1], 206
        self.send_response(status)
        self.send_header("Content-Type", route.content_type)
        length = route.content_length if (status == 200 and route.content_length is not None) else len(body)
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(route.body)}")
        if route.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if route.etag:
            self.send_header("ETag", etag)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        stop = self.server.owner._stop
        limit = route.drop_after if number <= route.drop_times else None
        sent = 0
        for i in range(0, len(body), route.chunk_size):
            if route.delay and stop.wait(route.delay):
                return
            piece = body[i : i + route.chunk_size]
            if limit is not None and sent + len(piece) >= limit:
                self.wfile.write(piece[: limit - sent])
                self.wfile.flush()
                if route.stall:
                    stop.wait(route.stall)
                self.close_connection = True
                return
            self.wfile.write(piece)
            sent += len(piece)


class LocalHTTPServer:
    """A threaded HTTP server on a free port of 127.0.0.1, with scripted routes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._closed = False

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, route: Route | None = None, **options: Any) -> str:
        """Add (or replace) the route at ``path``; returns its full URL."""
        with self._lock:
            self._routes[path] = route if route is not None else Route(**options)
        return self.url(path)

    def count(self, path: str) -> int:
        """GET requests made to ``path`` so far."""
        with self._lock:
            return sum(1 for h in self.hits if h.path == path and h.method == "GET")

    def ranges(self, path: str) -> list[str | None]:
        """The Range header of every GET to ``path``, None where there was none."""
        with self._lock:
            return [h.range for h in self.hits if h.path == path and h.method == "GET"]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()  # wake hanging, stalled and throttled handlers
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the handler threads (block_on_close)
        self._thread.join(timeout=5)

    def __enter__(self) -> "LocalHTTPServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------ pytest fixtures
import pytest  # noqa: E402


@pytest.fixture
def offline_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short retry back-off, and no proxy from the environment swallowing requests to 127.0.0.1."""
    from mlabs_desktop.core.transfer import http as http_transfer

    monkeypatch.setattr(http_transfer, "RETRY_BACKOFF_S", 0.01)
    monkeypatch.setattr(http_transfer, "RETRY_BACKOFF_MAX_S", 0.02)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    with LocalHTTPServer() as srv:
        yield srv
