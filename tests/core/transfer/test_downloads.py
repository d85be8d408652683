"""Downloads against a real local HTTP server: cache, resume, redirects, failures."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from http_server import LocalHTTPServer, offline_downloads, server  # noqa: F401 - fixtures
from mlabs_desktop.core.transfer import http as http_transfer
from mlabs_desktop.core import paths
from mlabs_desktop.core.transfer.downloads import cached_path, download, fetch_to_path
from mlabs_desktop.core.transfer.http import DownloadProgress, is_url
from mlabs_desktop.core.errors import Cancelled, UserError

BODY = os.urandom(300_000)
BODY_MD5 = hashlib.md5(BODY).hexdigest()
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()


@pytest.fixture(autouse=True)
def _fast_and_offline(offline_downloads) -> None:
    """Every test here talks only to the local server (fixtures in tests/http_server.py)."""


def downloads_root() -> Path:
    return paths.cache_dir() / "downloads"


def cached_files() -> list[Path]:
    root = downloads_root()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def finished_files() -> list[Path]:
    return [p for p in cached_files() if not p.name.startswith(".")]


# --- happy path and cache ---------------------------------------------------------


def test_download_then_cache_hit(server: LocalHTTPServer) -> None:
    url = server.route("/weights/model.h5", body=BODY)
    first = download(url, md5=BODY_MD5, sha256=BODY_SHA256, expected_size=len(BODY))
    assert first.read_bytes() == BODY
    assert first.name == "model.h5"
    assert first.parent.name == hashlib.sha256(url.encode()).hexdigest()
    assert first.parent.parent == downloads_root()
    assert server.count("/weights/model.h5") == 1

    second = download(url, md5=BODY_MD5)
    assert second == first
    assert server.count("/weights/model.h5") == 1  # no second request
    assert cached_path(url) == first
    assert fetch_to_path(url) == first
    assert server.count("/weights/model.h5") == 1
    assert finished_files() == [first]
    assert [p.name for p in cached_files()] == [".model.h5.json", "model.h5"]  # no .part left


def test_custom_filename_and_name_sanitising(server: LocalHTTPServer) -> None:
    url = server.route("/get", body=b"abc")
    path = download(url + "?id=7", filename="../style.jpg")
    assert path.name == "_style.jpg"
    assert path.parent.parent == downloads_root()
    assert path.read_bytes() == b"abc"
    bare = download(server.route("/", body=b"x"))
    assert bare.name == "download"


def test_truncated_cache_entry_is_fetched_again(server: LocalHTTPServer) -> None:
    url = server.route("/a.bin", body=BODY)
    path = download(url)
    path.write_bytes(BODY[:10])  # damaged behind our back
    assert cached_path(url) is None
    assert download(url).read_bytes() == BODY
    assert server.count("/a.bin") == 2


def test_progress_is_monotonic_and_reaches_total(server: LocalHTTPServer) -> None:
    url = server.route("/p.bin", body=BODY, chunk_size=8192)
    seen: list[DownloadProgress] = []
    download(url, progress=seen.append)
    assert len(seen) > 3
    received = [p.received for p in seen]
    assert received == sorted(received)
    assert received[-1] == len(BODY)
    assert all(p.total == len(BODY) and p.url == url and p.bytes_per_sec >= 0 for p in seen)


# --- resume -----------------------------------------------------------------------


def test_resume_after_dropped_connection_uses_range(server: LocalHTTPServer) -> None:
    url = server.route("/r.bin", body=BODY, drop_after=100_000, drop_times=2)
    path = download(url, md5=BODY_MD5)
    assert path.read_bytes() == BODY
    assert server.ranges("/r.bin") == [None, "bytes=100000-", "bytes=200000-"]


def test_resume_after_read_timeout_mid_body(server: LocalHTTPServer) -> None:
    url = server.route("/slow.bin", body=BODY, drop_after=50_000, drop_times=1, stall=10)
    path = download(url, sha256=BODY_SHA256, timeout=0.5)
    assert path.read_bytes() == BODY
    assert server.ranges("/slow.bin") == [None, "bytes=50000-"]


def test_body_shorter_than_content_length_is_retried_then_refused(server: LocalHTTPServer) -> None:
    # The server always claims 2000 bytes but sends 1000: never accepted as complete.
    url = server.route("/short.bin", body=BODY[:1000], content_length=2000)
    with pytest.raises(UserError, match="dropped"):
        download(url, retries=2)
    assert finished_files() == []
    assert cached_path(url) is None
    assert server.ranges("/short.bin")[:2] == [None, "bytes=1000-"]


def test_server_ignoring_range_restarts_from_zero(server: LocalHTTPServer) -> None:
    url = server.route("/n.bin", body=BODY, ranges=False, drop_after=120_000, drop_times=1)
    seen: list[DownloadProgress] = []
    path = download(url, md5=BODY_MD5, progress=seen.append)
    assert path.read_bytes() == BODY
    assert server.ranges("/n.bin") == [None, "bytes=120000-"]  # asked, got a 200, restarted
    assert seen[-1].received == len(BODY)


def test_cancelled_part_is_resumed_by_a_later_call(server: LocalHTTPServer) -> None:
    url = server.route("/c.bin", body=BODY, chunk_size=8192, delay=0.002)
    with pytest.raises(Cancelled):
        download(url, progress=lambda p: None, cancelled=_after_bytes(url, 100_000))
    assert cached_path(url) is None
    assert finished_files() == []
    path = download(url, md5=BODY_MD5)
    assert path.read_bytes() == BODY
    second_range = server.ranges("/c.bin")[1]
    assert second_range is not None and second_range.startswith("bytes=")


def test_changed_file_is_not_spliced_onto_an_old_part(server: LocalHTTPServer) -> None:
    url = server.route("/c.bin", body=BODY, chunk_size=8192, delay=0.002)
    with pytest.raises(Cancelled):
        download(url, cancelled=_after_bytes(url, 100_000))
    new_body = os.urandom(len(BODY))
    server.route("/c.bin", body=new_body)  # new ETag: If-Range makes the server send it whole
    path = download(url, md5=hashlib.md5(new_body).hexdigest())
    assert path.read_bytes() == new_body
    resume = server.hits[-1]
    assert resume.range is not None and resume.headers.get("If-Range") is not None


def test_part_that_already_holds_everything_is_finished(server: LocalHTTPServer) -> None:
    url = server.route("/f.bin", body=BODY)
    folder = downloads_root() / hashlib.sha256(url.encode()).hexdigest()
    folder.mkdir(parents=True)
    (folder / ".f.bin.part").write_bytes(BODY)
    etag = '"' + hashlib.sha1(BODY).hexdigest() + '"'
    (folder / ".f.bin.part.json").write_text(json.dumps({"validator": etag}))
    path = download(url, sha256=BODY_SHA256)
    assert path.read_bytes() == BODY
    assert server.ranges("/f.bin") == [f"bytes={len(BODY)}-"]  # answered 416: nothing left to send
    assert sorted(p.name for p in folder.iterdir()) == [".f.bin.json", "f.bin"]


def _after_bytes(url: str, limit: int):
    """A cancel callback that turns true once the .part holds ``limit`` bytes."""
    folder = downloads_root() / hashlib.sha256(url.encode()).hexdigest()
    part = folder / f".{url.rsplit('/', 1)[-1]}.part"

    def cancelled() -> bool:
        return part.exists() and part.stat().st_size >= limit

    return cancelled


# --- verification and failures ----------------------------------------------------


def test_wrong_hash_raises_and_leaves_nothing(server: LocalHTTPServer) -> None:
    url = server.route("/w.bin", body=b"not the weights you are looking for")
    with pytest.raises(UserError) as info:
        download(url, md5=BODY_MD5)
    message = str(info.value)
    assert BODY_MD5 in message and hashlib.md5(b"not the weights you are looking for").hexdigest() in message
    assert "\n" not in message
    assert cached_files() == []
    assert cached_path(url) is None


def test_wrong_sha256_and_size(server: LocalHTTPServer) -> None:
    url = server.route("/s.bin", body=b"abc")
    with pytest.raises(UserError, match="sha256"):
        download(url, sha256="0" * 64)
    with pytest.raises(UserError, match="wrong size"):
        download(url, expected_size=4)
    assert cached_files() == []


@pytest.mark.parametrize("status", [404, 403, 500, 503])
def test_http_errors(server: LocalHTTPServer, status: int) -> None:
    url = server.route("/e", status=status, body=b"nope")
    with pytest.raises(UserError) as info:
        download(url, retries=2)
    assert url in str(info.value) and str(status) in str(info.value)
    assert server.count("/e") == (3 if status >= 500 else 1)
    assert cached_files() == []


def test_unknown_route_is_404(server: LocalHTTPServer) -> None:
    with pytest.raises(UserError, match="404"):
        download(server.url("/missing.bin"))


def test_redirect_to_http_is_followed(server: LocalHTTPServer) -> None:
    target = server.route("/real/file.bin", body=BODY)
    url = server.route("/go", redirect_to="/hop")
    server.route("/hop", redirect_to=target, redirect_status=301)
    path = download(url, md5=BODY_MD5)
    assert path.read_bytes() == BODY
    assert path.name == "go"  # named after the URL asked for, which is the cache key


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x"])
def test_redirect_to_other_scheme_is_refused(server: LocalHTTPServer, target: str) -> None:
    url = server.route("/evil", redirect_to=target)
    with pytest.raises(UserError, match="only http"):
        download(url)
    assert cached_files() == []


def test_redirect_loop_is_refused(server: LocalHTTPServer) -> None:
    url = server.route("/loop", redirect_to="/loop")
    with pytest.raises(UserError, match="redirects"):
        download(url)


def test_timeout(server: LocalHTTPServer) -> None:
    url = server.route("/hang", hang=30)
    with pytest.raises(UserError) as info:
        download(url, timeout=0.3, retries=1)
    assert "0.3 s" in str(info.value) and url in str(info.value)
    assert server.count("/hang") == 2
    assert cached_files() == []


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.bin"
    with pytest.raises(UserError, match="could not connect"):
        download(url, retries=1)
    assert cached_files() == []


def test_unknown_host_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UserError, match="could not find the server no-such-host.invalid"):
        download("http://no-such-host.invalid/w.h5")


def test_disk_full(server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.route("/big.bin", body=BODY)
    calls = {"n": 0}
    real = http_transfer._write_chunk

    def full(handle, data):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(handle, data)

    monkeypatch.setattr(http_transfer, "_write_chunk", full)
    with pytest.raises(UserError) as info:
        download(url)
    assert "disk is full" in str(info.value)
    assert str(downloads_root()) in str(info.value)
    assert cached_files() == []


def test_cancel_mid_download(server: LocalHTTPServer) -> None:
    url = server.route("/c.bin", body=BODY * 4, chunk_size=8192, delay=0.005)
    seen: list[int] = []
    stop = threading.Event()

    def progress(p: DownloadProgress) -> None:
        seen.append(p.received)
        if p.received >= 50_000:
            stop.set()

    with pytest.raises(Cancelled):
        download(url, progress=progress, cancelled=stop.is_set)
    assert seen[-1] < len(BODY) * 4
    assert finished_files() == []
    assert cached_path(url) is None
    assert all(p.name.startswith(".") for p in cached_files())  # only the hidden .part and its state


def test_cancel_before_start(server: LocalHTTPServer) -> None:
    url = server.route("/x.bin", body=b"abc")
    with pytest.raises(Cancelled):
        download(url, cancelled=lambda: True)
    assert server.count("/x.bin") == 0


# --- URLs and paths ---------------------------------------------------------------


@pytest.mark.parametrize("bad", ["file:///etc/passwd", "ftp://example.com/x", "/tmp/x.jpg", "example.com/a", ""])
def test_non_http_is_rejected(bad: str) -> None:
    with pytest.raises(UserError, match="only http"):
        download(bad)


def test_is_url() -> None:
    assert is_url("http://example.com/a.jpg")
    assert is_url("HTTPS://example.com")
    assert not is_url("file:///etc/passwd")
    assert not is_url("ftp://example.com/x")
    assert not is_url("http://")
    assert not is_url("C:\\images\\a.jpg")
    assert not is_url(Path("/tmp/x"))
    assert not is_url(None)


def test_fetch_to_path_passes_local_paths_through(tmp_path: Path) -> None:
    local = tmp_path / "photo.jpg"
    assert fetch_to_path(str(local)) == local
    assert fetch_to_path(local) == local
    assert fetch_to_path("relative/style.jpg") == Path("relative/style.jpg")
    assert fetch_to_path("C:/styles/a.jpg") == Path("C:/styles/a.jpg")
    assert fetch_to_path("~/x.jpg") == Path("~/x.jpg")  # unchanged: the caller decides
    with pytest.raises(UserError, match="only http"):
        fetch_to_path("ftp://example.com/x.jpg")


def test_fetch_to_path_downloads_urls(server: LocalHTTPServer) -> None:
    url = server.route("/style.jpg", body=b"jpeg bytes")
    path = fetch_to_path(url, md5=hashlib.md5(b"jpeg bytes").hexdigest())
    assert path.read_bytes() == b"jpeg bytes"
    assert fetch_to_path(url) == path
    assert server.count("/style.jpg") == 1


def test_cached_path_for_unknown_and_invalid_urls() -> None:
    assert cached_path("http://127.0.0.1:1/never.bin") is None
    assert cached_path("not a url") is None


def test_server_closes_cleanly() -> None:
    before = threading.active_count()
    with LocalHTTPServer() as srv:
        srv.route("/hang", hang=30)
        with pytest.raises(UserError):
            download(srv.url("/hang"), timeout=0.2, retries=0)
    assert threading.active_count() <= before
