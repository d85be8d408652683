"""``.mlstyle`` bundles: one model as a single zip file, for sharing with strangers.

A bundle holds exactly these entries, nothing else::

    manifest.yaml          the model's manifest (required)
    weights.npz            the transform-network weights (required)
    style.jpg              style thumbnail (optional)
    preview.jpg            latest preview (optional)
    losses.npz             loss history for charts (optional)
    previews/              (optional directory entry)
    previews/step-N.jpg    earlier previews (optional)

``checkpoint.npz`` (optimizer state) is never exported: it is useless to anyone
but the trainer and would triple the size.

Export is deterministic: fixed entry order, fixed timestamps and permissions,
and the weights and losses written as canonical ``.npz`` (sorted keys, fixed
timestamps), so the same model always gives the same bytes. Local paths in the
manifest's provenance are cut down to file names, so a shared bundle does not
reveal the author's folders.

Import treats the file as hostile. Every check happens before anything is
trusted, and every refusal is a `UserError` starting with ``bundle rejected:``:

* only the entry names above (exact, or the previews pattern); absolute paths,
  ``..`` components, backslashes, drive letters, NUL bytes, symlinks, other
  directories, devices, duplicates, encryption and compression methods other
  than stored/deflate are refused;
* at most `MAX_ENTRIES` entries, per-entry declared size limits, a total
  declared limit, a compression-ratio limit (zip bombs), and overlapping
  entries are refused; each entry is read through a bounded reader that stops
  one byte past its declared size, so a lying header cannot inflate past it;
* the manifest is size-limited, parsed with ``yaml.safe_load`` (no Python tags),
  bounded in depth and node count (no alias bombs), and validated by
  `Manifest.from_mapping`;
* the weights are read with ``allow_pickle=False`` after every ``.npy`` header
  has been checked (no object arrays, floating point only, exactly the shapes
  the declared architecture needs, so nothing large is ever allocated), then
  checked for finite values, and re-saved (the stranger's file is not kept);
* images must be JPEGs that Pillow decodes (via `images.load_image`) within a
  size limit, otherwise they are dropped (with a warning), not fatal;
* everything is extracted into an `atomic.staging_dir` inside the library and
  renamed into place only when all of it passed, under the library lock, with
  file names built from the allow-list, never from the archive.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import io
import logging
import os
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import yaml

from . import atomic
from .errors import UserError
from .library import (LOSSES, MANIFEST, PREVIEW, PREVIEWS, STYLE_THUMB, WEIGHTS, Library, Manifest,
                      Model, now_iso, slugify)
from .locks import library_lock

log = logging.getLogger(__name__)

SUFFIX = ".mlstyle"

MAX_ENTRIES = 64
MAX_WEIGHTS_BYTES = 256 << 20
MAX_IMAGE_BYTES = 16 << 20
MAX_MANIFEST_BYTES = 1 << 20
MAX_LOSSES_BYTES = 16 << 20
MAX_TOTAL_BYTES = 300 << 20
# 64 records of a few dozen bytes each; anything near this is not a bundle.
MAX_DIRECTORY_BYTES = 256 << 10
# Entries smaller than this may compress as well as they like: they cannot bomb anything.
RATIO_MIN_BYTES = 1 << 20
MAX_RATIO = 200
MAX_IMAGE_SIDE = 4096
MAX_NAME_CHARS = 200
# yaml.safe_load builds aliases as shared objects, so "billion laughs" costs nothing
# until something walks the tree (asdict, safe_dump): bound the walk instead.
MAX_MANIFEST_NODES = 20_000
MAX_MANIFEST_DEPTH = 32

PREVIEWS_DIR = f"{PREVIEWS}/"
PREVIEW_ENTRY = re.compile(rf"{PREVIEWS}/step-([0-9]{{1,12}})\.jpg")
IMAGES = (STYLE_THUMB, PREVIEW)
LIMITS: dict[str, int] = {
    MANIFEST: MAX_MANIFEST_BYTES,
    WEIGHTS: MAX_WEIGHTS_BYTES,
    STYLE_THUMB: MAX_IMAGE_BYTES,
    PREVIEW: MAX_IMAGE_BYTES,
    LOSSES: MAX_LOSSES_BYTES,
}
ALLOWED_TEXT = f"{', '.join(LIMITS)}, {PREVIEWS}/step-N.jpg"
# Provenance values that are paths on the author's machine: only file names travel.
LOCAL_PATH_KEYS = ("style", "train_path", "vgg_path", "test", "init_from")

SHARED_FILE_MODE = 0o644
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_ATTR = (stat.S_IFREG | 0o644) << 16
_CHUNK = 1 << 20

WarnFn = Callable[[str], None]


def _reject(reason: str) -> UserError:
    return UserError(f"bundle rejected: {reason}")


# ----------------------------------------------------------------- shared pieces

@functools.lru_cache(maxsize=None)
def _cached_shapes(architecture: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    from .networks import weight_shapes

    return tuple(sorted(weight_shapes(architecture).items()))


def expected_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """Variable path -> shape for ``architecture`` (built once per process and cached)."""
    return dict(_cached_shapes(architecture))


def _zip_info(name: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = compress_type
    info.create_system = 3  # Unix, whatever the exporting OS: same bytes everywhere
    info.external_attr = _FILE_ATTR
    return info


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A canonical ``.npz`` (sorted keys, fixed timestamps): same arrays, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            archive.writestr(_zip_info(f"{key}.npy", zipfile.ZIP_STORED), member.getvalue())
    return buffer.getvalue()


# ---------------------------------------------------------------------- export

def _shareable_manifest(manifest: Manifest) -> Manifest:
    shared = copy.deepcopy(manifest)
    for key in LOCAL_PATH_KEYS:
        value = shared.provenance.get(key)
        if isinstance(value, str) and value and ("/" in value or "\\" in value):
            shared.provenance[key] = PurePosixPath(value.replace("\\", "/")).name
    return shared


def _read_small(path: Path, limit: int) -> bytes | None:
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _losses_arrays(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    return arrays if all(a.dtype.kind in "fiu" and a.ndim == 1 for a in arrays.values()) else None


def bundle_entries(model: Model) -> list[tuple[str, bytes, int]]:
    """(entry name, bytes, compression) in bundle order, after checking the weights."""
    from .weights import check_shapes

    arrays = model.load_weights()
    check_shapes(arrays, expected_shapes(model.manifest.architecture), f"model '{model.name}'")
    manifest_text = _shareable_manifest(model.manifest).to_yaml().encode("utf-8")
    if len(manifest_text) > MAX_MANIFEST_BYTES:
        raise UserError(f"model '{model.name}': its manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    entries = [(MANIFEST, manifest_text, zipfile.ZIP_DEFLATED),
               (WEIGHTS, npz_bytes(arrays), zipfile.ZIP_DEFLATED)]
    for name in IMAGES:
        data = _read_small(model.file(name), MAX_IMAGE_BYTES)
        if data:
            entries.append((name, data, zipfile.ZIP_STORED))
    losses = _losses_arrays(model.file(LOSSES))
    if losses is not None:
        data = npz_bytes(losses)
        if len(data) <= MAX_LOSSES_BYTES:
            entries.append((LOSSES, data, zipfile.ZIP_DEFLATED))
    room = MAX_ENTRIES - len(entries)
    previews = [p for p in model.previews() if PREVIEW_ENTRY.fullmatch(f"{PREVIEWS}/{p.name}")]
    for path in previews[-room:]:  # the latest, should a folder somehow hold more than fit
        data = _read_small(path, MAX_IMAGE_BYTES)
        if data:
            entries.append((f"{PREVIEWS}/{path.name}", data, zipfile.ZIP_STORED))
    total = 0
    kept = []
    for entry in entries:  # stay under the total an importer accepts: drop previews first
        if total + len(entry[1]) > MAX_TOTAL_BYTES and entry[0] not in (MANIFEST, WEIGHTS):
            continue
        total += len(entry[1])
        kept.append(entry)
    return kept


def default_bundle_name(model: Model) -> str:
    return f"{slugify(model.name)}{SUFFIX}"


def export_bundle(model: Model, out_path: str | os.PathLike) -> Path:
    """Write ``model`` as a ``.mlstyle`` bundle; return the file written.

    ``out_path`` may be a folder (the file is named after the model) or a file
    path (``.mlstyle`` is added when it has no suffix). The file appears
    atomically: a temporary file beside it replaces it only when complete.
    """
    out = Path(out_path).expanduser()
    if out.is_dir():
        out = out / default_bundle_name(model)
    elif not out.suffix:
        out = out.with_name(out.name + SUFFIX)
    entries = bundle_entries(model)
    atomic.sweep_temporaries(out.parent)  # what killed exports left there
    try:
        with atomic.atomic_path(out) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
                for name, data, compression in entries:
                    archive.writestr(_zip_info(name, compression), data)
            os.chmod(tmp, SHARED_FILE_MODE)  # a file to share, not a private temporary
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


# ---------------------------------------------------------------------- import

@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    name: str        # our own name for it (from the allow-list), never the archive's text
    limit: int


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_name(name: str) -> None:
    """Refuse any entry name that could land outside the model folder."""
    shown = repr(name)
    if "\\" in name:
        raise _reject(f"entry {shown} contains a backslash (a Windows path that could escape the model folder)")
    if re.match(r"^[A-Za-z]:", name):
        raise _reject(f"entry {shown} names a drive letter (an absolute Windows path)")
    if name.startswith("/"):
        raise _reject(f"entry {shown} is an absolute path")
    if ".." in name.split("/"):
        raise _reject(f"entry {shown} escapes the model folder")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _reject(f"entry {shown} has control characters in its name")


def _classify(info: zipfile.ZipInfo) -> _Entry | None:
    """The allow-listed name and size limit of one entry; None for the previews/ folder."""
    name = info.filename  # already checked by _check_name
    mode = info.external_attr >> 16
    if _is_symlink(info):
        raise _reject(f"entry {name!r} is a symbolic link")
    kind = stat.S_IFMT(mode)
    if name.endswith("/"):
        if name != PREVIEWS_DIR:
            raise _reject(f"entry {name!r} is a folder; a bundle may only hold the {PREVIEWS_DIR} folder")
        if info.file_size or info.compress_size:
            raise _reject(f"folder entry {name!r} has content")
        return None
    if kind not in (0, stat.S_IFREG):
        raise _reject(f"entry {name!r} is not a regular file")
    if name in LIMITS:
        limit = LIMITS[name]
    elif PREVIEW_ENTRY.fullmatch(name):
        limit = MAX_IMAGE_BYTES
    else:
        raise _reject(f"entry {name!r} is not a file a style bundle may contain (allowed: {ALLOWED_TEXT})")
    if info.flag_bits & 0x1:
        raise _reject(f"entry {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _reject(f"entry {name!r} uses an unsupported compression method ({info.compress_type})")
    if info.file_size > limit:
        raise _reject(f"entry {name!r} declares {info.file_size:,} bytes; the limit for it is {limit:,}")
    if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise _reject(f"entry {name!r} expands {info.file_size / max(info.compress_size, 1):.0f} times "
                      f"(more than {MAX_RATIO}x): a zip bomb")
    return _Entry(info, name, limit)


def _check_layout(infos: list[zipfile.ZipInfo], archive_size: int) -> None:
    """Entries must not overlap (overlapping entries are how small zips inflate to huge ones)."""
    spans = sorted((i.header_offset, i.header_offset + 30 + len(i.orig_filename.encode("utf-8", "replace"))
                    + i.compress_size, i.filename) for i in infos)
    if spans and spans[0][0] < 0:
        raise _reject(f"entry {spans[0][2]!r} starts before the beginning of the file (a damaged bundle)")
    for (start, end, name), (next_start, _, next_name) in zip(spans, spans[1:]):
        if end > next_start:
            raise _reject(f"entries {name!r} and {next_name!r} overlap in the archive")
    if spans and spans[-1][1] > archive_size:
        raise _reject(f"entry {spans[-1][2]!r} runs past the end of the file (truncated bundle)")


def _plan(archive: zipfile.ZipFile, archive_size: int) -> dict[str, _Entry]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise _reject(f"it has {len(infos)} entries; a bundle holds at most {MAX_ENTRIES}")
    for info in infos:  # where an entry would land comes first: the most serious refusal
        if info.orig_filename != info.filename:
            raise _reject(f"entry {info.orig_filename!r} has a NUL byte in its name")
        _check_name(info.filename)
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise _reject(f"entry {info.filename!r} appears twice")
        seen.add(info.filename)
    entries = {}
    for info in infos:
        entry = _classify(info)
        if entry is not None:
            entries[entry.name] = entry
    total = sum(e.info.file_size for e in entries.values())
    if total > MAX_TOTAL_BYTES:
        raise _reject(f"its entries declare {total:,} bytes in all; the limit is {MAX_TOTAL_BYTES:,}")
    _check_layout(infos, archive_size)
    for required in (MANIFEST, WEIGHTS):
        if required not in entries:
            raise _reject(f"it has no {required}")
    return entries


def _copy_bounded(archive: zipfile.ZipFile, entry: _Entry, sink) -> None:
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
                    raise _reject(f"entry {entry.name!r} decompresses to more than its declared "
                                  f"{declared:,} bytes: a zip bomb")
                sink(chunk)
    except UserError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        raise _reject(f"entry {entry.name!r} is damaged ({_short(exc)})") from None
    if done != declared:
        raise _reject(f"entry {entry.name!r} is truncated ({done:,} of {declared:,} bytes)")


def _read_bytes(archive: zipfile.ZipFile, entry: _Entry) -> bytes:
    parts: list[bytes] = []
    _copy_bounded(archive, entry, parts.append)
    return b"".join(parts)


def _extract(archive: zipfile.ZipFile, entry: _Entry, target: Path) -> Path:
    with open(target, "xb") as handle:
        _copy_bounded(archive, entry, handle.write)
    return target


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _check_tree(value: Any) -> None:
    """Bound the manifest's size as a tree: no alias bombs, no self-references, plain types."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_MANIFEST_NODES:
            raise _reject(f"{MANIFEST} has more than {MAX_MANIFEST_NODES} values (an alias bomb?)")
        if depth > MAX_MANIFEST_DEPTH:
            raise _reject(f"{MANIFEST} is nested more than {MAX_MANIFEST_DEPTH} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    raise _reject(f"{MANIFEST} has a key of type {type(key).__name__}")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif not (node is None or isinstance(node, (str, int, float, bool, _dt.date))):
            raise _reject(f"{MANIFEST} holds a value of type {type(node).__name__}")


def _clean_name(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]+", " ", name).strip()
    if not name:
        raise _reject("the model name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise _reject(f"the model name is longer than {MAX_NAME_CHARS} characters")
    return name


def _read_manifest(archive: zipfile.ZipFile, entry: _Entry) -> Manifest:
    data = _read_bytes(archive, entry)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _reject(f"{MANIFEST} is not UTF-8 text") from None
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise _reject(f"{MANIFEST} is not plain YAML ({detail})") from None
    except RecursionError:
        raise _reject(f"{MANIFEST} is nested too deeply") from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a 100,000-digit number
        raise _reject(f"{MANIFEST} holds an unreadable value ({_short(exc)})") from None
    _check_tree(mapping)
    try:
        manifest = Manifest.from_mapping(mapping, MANIFEST)
    except UserError as exc:
        raise _reject(str(exc)) from None
    manifest.name = _clean_name(manifest.name)
    return manifest


def _npz_headers(path: Path, label: str, expected: Mapping[str, tuple[int, ...]] | None,
                 kinds: str, limit: int) -> list[str]:
    """Check every ``.npy`` header of an ``.npz`` before any array is allocated; return the keys."""
    try:
        with zipfile.ZipFile(path) as inner:
            infos = inner.infolist()
            if expected is not None and len(infos) > len(expected):
                raise _reject(f"{label} holds {len(infos)} arrays; the declared architecture has "
                              f"{len(expected)} weights")
            if len(infos) > MAX_ENTRIES:
                raise _reject(f"{label} holds {len(infos)} arrays")
            if sum(i.file_size for i in infos) > limit:
                raise _reject(f"{label} declares more than {limit:,} bytes")
            keys: list[str] = []
            for info in infos:
                if not info.filename.endswith(".npy") or info.filename[:-4] in keys:
                    raise _reject(f"{label} holds an unexpected member {info.filename!r}")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
                    raise _reject(f"{label}: member {info.filename!r} is encrypted or oddly compressed")
                key = info.filename[:-4]
                if expected is not None and key not in expected:
                    raise _reject(f"{label} does not match its declared architecture (unexpected {key!r})")
                with inner.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        raise _reject(f"{label}: array {key!r} uses .npy version {version}")
                if dtype.hasobject:
                    raise _reject(f"{label}: array {key!r} holds pickled Python objects "
                                  "(loading them could run code)")
                if dtype.kind not in kinds:
                    raise _reject(f"{label}: array {key!r} has type {dtype}, not numbers of the expected kind")
                if expected is not None and tuple(shape) != tuple(expected[key]):
                    raise _reject(f"{label}: weight {key} has shape {tuple(shape)}, the declared "
                                  f"architecture needs {tuple(expected[key])}")
                if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                    raise _reject(f"{label}: array {key!r} is shorter than its header says")
                keys.append(key)
            return keys
    except UserError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, SyntaxError, TypeError, KeyError) as exc:
        raise _reject(f"{label} is damaged ({_short(exc)})") from None


def _load_npz(path: Path, label: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise _reject(f"{label} is damaged ({_short(exc)})") from None


def _import_weights(archive: zipfile.ZipFile, entry: _Entry, staging: Path, architecture: str) -> None:
    from .weights import check_shapes, save_weight_arrays

    expected = expected_shapes(architecture)
    raw = _extract(archive, entry, staging / ".weights-in.npz")
    keys = _npz_headers(raw, WEIGHTS, expected, "f", MAX_WEIGHTS_BYTES)
    missing = sorted(set(expected) - set(keys))
    if missing:
        raise _reject(f"{WEIGHTS} does not match its declared architecture {architecture} (missing {missing[:3]})")
    arrays = _load_npz(raw, WEIGHTS)
    check_shapes(arrays, expected, f"bundle rejected: {WEIGHTS} ({architecture})")
    raw.unlink()
    save_weight_arrays(staging / WEIGHTS, arrays)  # our own file, not the stranger's bytes


def _import_losses(archive: zipfile.ZipFile, entry: _Entry, staging: Path, warn: WarnFn) -> None:
    from .weights import save_weight_arrays

    raw = _extract(archive, entry, staging / ".losses-in.npz")
    _npz_headers(raw, LOSSES, None, "fiu", MAX_LOSSES_BYTES)  # pickles are refused, not dropped
    arrays = _load_npz(raw, LOSSES)
    raw.unlink()
    if not all(a.ndim == 1 for a in arrays.values()):
        warn(f"{LOSSES} dropped: it is not a loss history")
        return
    save_weight_arrays(staging / LOSSES, arrays)


def _image_problem(path: Path) -> str | None:
    from PIL import Image

    from . import images

    size = images.image_info(path)
    if size is None:
        return "not an image Pillow can read"
    if max(size) > MAX_IMAGE_SIDE:
        return f"{size[0]}x{size[1]} is larger than {MAX_IMAGE_SIDE} pixels a side"
    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                return f"a {im.format} image, not a JPEG"
        images.load_image(path)
    except UserError as exc:
        return str(exc)
    except Exception as exc:  # anything Pillow throws at a hostile file: drop the file
        return _short(exc)
    return None


def _import_image(archive: zipfile.ZipFile, entry: _Entry, staging: Path, warn: WarnFn) -> None:
    if entry.name in IMAGES:
        target = staging / entry.name
    else:  # a preview: the name is rebuilt from the digits the pattern matched
        match = PREVIEW_ENTRY.fullmatch(entry.name)
        assert match is not None
        (staging / PREVIEWS).mkdir(exist_ok=True)
        target = staging / PREVIEWS / f"step-{match.group(1)}.jpg"
    _extract(archive, entry, target)
    problem = _image_problem(target)
    if problem:
        target.unlink()
        warn(f"{entry.name} dropped: {problem}")


def _is_url(text: object) -> bool:
    from .downloads import is_url

    return is_url(text)


def _fetch(file_or_url: str | os.PathLike, progress: Callable | None, cancelled: Callable[[], bool] | None) -> Path:
    from . import downloads

    if downloads.is_url(file_or_url):
        def capped(report) -> None:
            if report.received > MAX_TOTAL_BYTES + (1 << 20):
                raise _reject(f"the download is larger than {MAX_TOTAL_BYTES:,} bytes")
            if progress is not None:
                progress(report)
        return downloads.fetch_to_path(str(file_or_url), progress=capped, cancelled=cancelled)
    path = downloads.fetch_to_path(file_or_url).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"bundle not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path} is a folder, not a {SUFFIX} bundle")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path} is not a regular file")
    return path


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
        raise _reject(f"it has {count:,} entries; a bundle holds at most {MAX_ENTRIES}")
    if directory_bytes > MAX_DIRECTORY_BYTES:
        raise _reject(f"its zip directory is {directory_bytes:,} bytes; a bundle's is at most {MAX_DIRECTORY_BYTES:,}")


def _open_archive(path: Path) -> tuple[zipfile.ZipFile, int]:
    size = path.stat().st_size
    if size > MAX_TOTAL_BYTES + (16 << 20):
        raise _reject(f"{path.name} is {size:,} bytes; a bundle is at most {MAX_TOTAL_BYTES:,}")
    try:
        _check_directory(path, size)
        return zipfile.ZipFile(path), size
    except zipfile.BadZipFile as exc:
        raise _reject(f"{path.name} is not a {SUFFIX} bundle (not a valid zip file: {_short(exc)})") from None
    except (OSError, ValueError, EOFError, zipfile.LargeZipFile) as exc:
        raise _reject(f"{path.name} is damaged ({_short(exc)})") from None


def inspect_bundle(file_or_url: str | os.PathLike, *, progress: Callable | None = None,
                   cancelled: Callable[[], bool] | None = None) -> Manifest:
    """The manifest of a bundle after the structural and manifest checks, writing nothing.

    For an "Import 'Name' (architecture)?" confirmation. The weights and images
    are only checked by `import_bundle`, so this is not a promise that it succeeds.
    """
    path = _fetch(file_or_url, progress, cancelled)
    archive, size = _open_archive(path)
    with archive:
        return _read_manifest(archive, _plan(archive, size)[MANIFEST])


def import_bundle(file_or_url: str | os.PathLike, library: Library | None = None, name: str | None = None,
                  *, on_warning: WarnFn | None = None, progress: Callable | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Model:
    """Add the model in a ``.mlstyle`` bundle (a path or an http(s) URL) to the library.

    The model keeps the bundle's name (or ``name``); when that name is taken it
    gets a unique one (``"Name (2)"``). Optional images that fail to decode are
    dropped and reported through ``on_warning``; anything else wrong refuses the
    whole bundle with a `UserError` and leaves the library exactly as it was.
    ``progress`` and ``cancelled`` are passed to the download of a URL.
    """
    warn = on_warning or (lambda text: log.warning("%s", text))
    if name is not None and not name.strip():
        raise UserError("the name for the imported model is empty")
    path = _fetch(file_or_url, progress, cancelled)
    library = library if library is not None else Library()
    archive, size = _open_archive(path)
    with archive:
        entries = _plan(archive, size)
        manifest = _read_manifest(archive, entries[MANIFEST])
        expected_shapes(manifest.architecture)  # build (and cache) before taking the lock
        manifest.provenance["imported_from"] = str(file_or_url) if _is_url(file_or_url) else path.name
        manifest.provenance["imported"] = now_iso()
        if manifest.state == "training":
            manifest.state = "stopped"  # nothing is training it here
        wanted = _clean_name(name) if name is not None else manifest.name
        try:
            with library_lock(library.root):
                manifest.name = library.unique_name(wanted)
                final = library.root / slugify(manifest.name)
                with atomic.staging_dir(final) as staging:
                    _import_weights(archive, entries[WEIGHTS], staging, manifest.architecture)
                    if LOSSES in entries:
                        _import_losses(archive, entries[LOSSES], staging, warn)
                    for entry in _images(entries.values()):
                        _import_image(archive, entry, staging, warn)
                    previews = staging / PREVIEWS
                    if previews.is_dir() and not any(previews.iterdir()):
                        previews.rmdir()
                    (staging / MANIFEST).write_text(manifest.to_yaml(), encoding="utf-8")
        except OSError as exc:  # a full disk or a read-only library; the staging folder is gone
            raise UserError(f"cannot import into the library at {library.root}: {exc.strerror or exc}") from None
    return Model(final, manifest)


def _images(entries: Iterable[_Entry]) -> list[_Entry]:
    return sorted((e for e in entries if e.name in IMAGES or PREVIEW_ENTRY.fullmatch(e.name)),
                  key=lambda e: e.name)
