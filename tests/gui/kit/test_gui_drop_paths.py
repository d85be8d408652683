"""Dropped and pasted files keep their exact names, including names that are not UTF-8."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from PySide6.QtCore import QByteArray, QMimeData

from mlabs_desktop.gui.kit.common import dropped_paths


@pytest.mark.skipif(sys.platform == "win32", reason="Windows file names are Unicode, never raw bytes")
def test_a_dropped_name_in_another_encoding_names_the_real_file(qapp, tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9-\xff.png"  # Latin-1 bytes, as a file manager sends them
    with open(raw, "wb") as handle:
        handle.write(b"x")
    plain = tmp_path / "plain photo.jpg"
    plain.write_bytes(b"x")
    mime = QMimeData()
    uris = [b"file://" + quote_from_bytes(raw).encode(), plain.as_uri().encode()]
    mime.setData("text/uri-list", QByteArray(b"\r\n".join(uris) + b"\r\n"))
    paths = dropped_paths(mime)
    assert paths == [Path(os.fsdecode(raw)), plain]
    assert all(p.exists() for p in paths)
