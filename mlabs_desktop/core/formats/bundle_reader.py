"""Reading a stranger's zip safely: the bundle itself and the ``.npz`` files inside it.

Every check happens before anything is trusted, and every refusal is a
`UserError` starting with ``bundle rejected:``:

* only the entry names of `bundle_format` (exact, or the previews pattern);
  absolute paths, ``..`` components, backslashes, drive letters, NUL bytes,
  symlinks, other directories, devices, duplicates, encryption and compression
  methods other than stored/deflate are refused;
* at most `MAX_ENTRIES` entries (counted from the end-of-directory record
  before `zipfile` parses anything), per-entry declared size limits, a total
  declared limit, a compression-ratio limit (zip bombs), and overlapping
  entries are refused; each entry is read through a bounded reader that stops
  one byte past its declared size, so a lying header cannot inflate past it;
* every ``.npy`` header of an ``.npz`` is checked (no object arrays, the
  expected kind of numbers, the expected shapes) before any array is
  allocated, and the arrays are then read with ``allow_pickle=False``.

Entries come back as `Entry` values whose ``name`` is our own text from the
allow-list, never the archive's: callers build file names from it.
"""

from __future__ import annotations

import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from mlabs_desktop.core.formats.bundle_format import (ALLOWED_TEXT, LIMITS, MAX_ENTRIES, MAX_IMAGE_BYTES,
                                                      MAX_TOTAL_BYTES, PREVIEW_ENTRY, PREVIEWS_DIR, SUFFIX, reject,
                                                      short)
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import MANIFEST, WEIGHTS

# 64 records of a few dozen bytes each; anything near this is not a bundle.
MAX_DIRECTORY_BYTES = 256 << 10
# Entries smaller than this may compress as well as they like: they cannot bomb anything.
RATIO_MIN_BYTES = 1 << 20
MAX_RATIO = 200
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    info: zipfile.ZipInfo
    name: str        # our own name for it (from the allow-list), never the archive's text
    limit: int


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_name(name: str) -> None:
    """Refuse any entry name that could land outside the model folder."""
    shown = repr(name)
    if "\\" in name:
        raise reject(f"entry {shown} contains a backslash (a Windows path that could escape the model folder)")
    if re.match(r"^[A-Za-z]:", name):
        raise reject(f"entry {shown} names a drive letter (an absolute Windows path)")
    if name.startswith("/"):
        raise reject(f"entry {shown} is an absolute path")
    if ".." in name.split("/"):
        raise reject(f"entry {shown} escapes the model folder")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise reject(f"entry {shown} has control characters in its name")


def _classify(info: zipfile.ZipInfo) -> Entry | None:
    """The allow-listed name and size limit of one entry; None for the previews/ folder."""
    name = info.filename  # already checked by _check_name
    mode = info.external_attr >> 16
    if _is_symlink(info):
        raise reject(f"entry {name!r} is a symbolic link")
    kind = stat.S_IFMT(mode)
    if name.endswith("/"):
        if name != PREVIEWS_DIR:
            raise reject(f"entry {name!r} is a folder; a bundle may only hold the {PREVIEWS_DIR} folder")
        if info.file_size or info.compress_size:
            raise reject(f"folder entry {name!r} has content")
        return None
    if kind not in (0, stat.S_IFREG):
        raise reject(f"entry {name!r} is not a regular file")
    if name in LIMITS:
        limit = LIMITS[name]
    elif PREVIEW_ENTRY.fullmatch(name):
        limit = MAX_IMAGE_BYTES
    else:
        raise reject(f"entry {name!r} is not a file a style bundle may contain (allowed: {ALLOWED_TEXT})")
    if info.flag_bits & 0x1:
        raise reject(f"entry {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise reject(f"entry {name!r} uses an unsupported compression method ({info.compress_type})")
    if info.file_size > limit:
        raise reject(f"entry {name!r} declares {info.file_size:,} bytes; the limit for it is {limit:,}")
    if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise reject(f"entry {name!r} expands {info.file_size / max(info.compress_size, 1):.0f} times "
                      f"(more than {MAX_RATIO}x): a zip bomb")
    return Entry(info, name, limit)


def _check_layout(infos: list[zipfile.ZipInfo], archive_size: int) -> None:
    """Entries must not overlap (overlapping entries are how small zips inflate to huge ones)."""
    spans = sorted((i.header_offset, i.header_offset + 30 + len(i.orig_filename.encode("utf-8", "replace"))
                    + i.compress_size, i.filename) for i in infos)
    if spans and spans[0][0] < 0:
        raise reject(f"entry {spans[0][2]!r} starts before the beginning of the file (a damaged bundle)")
    for (start, end, name), (next_start, _, next_name) in zip(spans, spans[1:]):
        if end > next_start:
            raise reject(f"entries {name!r} and {next_name!r} overlap in the archive")
    if spans and spans[-1][1] > archive_size:
        raise reject(f"entry {spans[-1][2]!r} runs past the end of the file (truncated bundle)")


def plan_entries(archive: zipfile.ZipFile, archive_size: int) -> dict[str, Entry]:
    """Check every entry's name, kind, sizes and place; return the allowed ones by our name."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise reject(f"it has {len(infos)} entries; a bundle holds at most {MAX_ENTRIES}")
    for info in infos:  # where an entry would land comes first: the most serious refusal
        if info.orig_filename != info.filename:
            raise reject(f"entry {info.orig_filename!r} has a NUL byte in its name")
        _check_name(info.filename)
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise reject(f"entry {info.filename!r} appears twice")
        seen.add(info.filename)
    entries = {}
    for info in infos:
        entry = _classify(info)
        if entry is not None:
            entries[entry.name] = entry
    total = sum(e.info.file_size for e in entries.values())
    if total > MAX_TOTAL_BYTES:
        raise reject(f"its entries declare {total:,} bytes in all; the limit is {MAX_TOTAL_BYTES:,}")
    _check_layout(infos, archive_size)
    for required in (MANIFEST, WEIGHTS):
        if required not in entries:
            raise reject(f"it has no {required}")
    return entries


def _copy_bounded(archive: zipfile.ZipFile, entry: Entry, sink) -> None:
    """Stream one entry into ``sink``, never more than its declared size + 1 byte."""
    declared, done = entry.info.file_size, 0
    try:
        with archive.open(entry.info) as source:
            while True:
                chunk = source.read(min(_CHUNK, declared + 1 - done))
                if not chunk:
                    break
                done += len(chunk)
                if done > declared:
                    raise reject(f"entry {entry.name!r} decompresses to more than its declared "
                                  f"{declared:,} bytes: a zip bomb")
                sink(chunk)
    except UserError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        raise reject(f"entry {entry.name!r} is damaged ({short(exc)})") from None
    if done != declared:
        raise reject(f"entry {entry.name!r} is truncated ({done:,} of {declared:,} bytes)")


def read_bytes(archive: zipfile.ZipFile, entry: Entry) -> bytes:
    parts: list[bytes] = []
    _copy_bounded(archive, entry, parts.append)
    return b"".join(parts)


def extract(archive: zipfile.ZipFile, entry: Entry, target: Path) -> Path:
    with open(target, "xb") as handle:
        _copy_bounded(archive, entry, handle.write)
    return target


def _check_directory(path: Path, size: int) -> None:
    """Read the end-of-directory record before `zipfile` parses the directory.

    `zipfile.ZipFile` builds an object per directory record up front, so a
    300 MB file of tiny records would cost gigabytes before any other check:
    refuse a directory with too many records or bytes first. A file without a
    readable record is left to `zipfile` to report.
    """
    with open(path, "rb") as handle:
        tail_size = min(size, 22 + 0xFFFF + 20)
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return
        count, directory_bytes = struct.unpack_from("<HL", tail, at + 10)
        if (count == 0xFFFF or directory_bytes == 0xFFFFFFFF) and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
            record_at = struct.unpack_from("<Q", tail, at - 12)[0]
            handle.seek(min(record_at, size))
            record = handle.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                count, directory_bytes = struct.unpack_from("<QQ", record, 32)
    if count > MAX_ENTRIES:
        raise reject(f"it has {count:,} entries; a bundle holds at most {MAX_ENTRIES}")
    if directory_bytes > MAX_DIRECTORY_BYTES:
        raise reject(f"its zip directory is {directory_bytes:,} bytes; a bundle's is at most {MAX_DIRECTORY_BYTES:,}")


def open_archive(path: Path) -> tuple[zipfile.ZipFile, int]:
    """The open bundle and its size in bytes, after checking the size and the zip directory."""
    size = path.stat().st_size
    if size > MAX_TOTAL_BYTES + (16 << 20):
        raise reject(f"{path.name} is {size:,} bytes; a bundle is at most {MAX_TOTAL_BYTES:,}")
    try:
        _check_directory(path, size)
        return zipfile.ZipFile(path), size
    except zipfile.BadZipFile as exc:
        raise reject(f"{path.name} is not a {SUFFIX} bundle (not a valid zip file: {short(exc)})") from None
    except (OSError, ValueError, EOFError, zipfile.LargeZipFile) as exc:
        raise reject(f"{path.name} is damaged ({short(exc)})") from None


def check_npz_headers(path: Path, label: str, expected: Mapping[str, tuple[int, ...]] | None,
                 kinds: str, limit: int) -> list[str]:
    """Check every ``.npy`` header of an ``.npz`` before any array is allocated; return the keys."""
    try:
        with zipfile.ZipFile(path) as inner:
            infos = inner.infolist()
            if expected is not None and len(infos) > len(expected):
                raise reject(f"{label} holds {len(infos)} arrays; the declared architecture has "
                              f"{len(expected)} weights")
            if len(infos) > MAX_ENTRIES:
                raise reject(f"{label} holds {len(infos)} arrays")
            if sum(i.file_size for i in infos) > limit:
                raise reject(f"{label} declares more than {limit:,} bytes")
            keys: list[str] = []
            for info in infos:
                if not info.filename.endswith(".npy") or info.filename[:-4] in keys:
                    raise reject(f"{label} holds an unexpected member {info.filename!r}")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
                    raise reject(f"{label}: member {info.filename!r} is encrypted or oddly compressed")
                key = info.filename[:-4]
                if expected is not None and key not in expected:
                    raise reject(f"{label} does not match its declared architecture (unexpected {key!r})")
                with inner.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        raise reject(f"{label}: array {key!r} uses .npy version {version}")
                if dtype.hasobject:
                    raise reject(f"{label}: array {key!r} holds pickled Python objects "
                                  "(loading them could run code)")
                if dtype.kind not in kinds:
                    raise reject(f"{label}: array {key!r} has type {dtype}, not numbers of the expected kind")
                if expected is not None and tuple(shape) != tuple(expected[key]):
                    raise reject(f"{label}: weight {key} has shape {tuple(shape)}, the declared "
                                  f"architecture needs {tuple(expected[key])}")
                if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                    raise reject(f"{label}: array {key!r} is shorter than its header says")
                keys.append(key)
            return keys
    except UserError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, SyntaxError, TypeError, KeyError) as exc:
        raise reject(f"{label} is damaged ({short(exc)})") from None


def load_npz(path: Path, label: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise reject(f"{label} is damaged ({short(exc)})") from None
