"""Writing a model as a ``.mlstyle`` bundle (the format is in `bundle_format`).

Export is deterministic: fixed entry order, fixed timestamps and permissions,
and the weights and losses written as canonical ``.npz`` (sorted keys, fixed
timestamps), so the same model always gives the same bytes. Local paths in the
manifest's provenance are cut down to file names, so a shared bundle does not
reveal the author's folders. What is written stays within the limits an
importer accepts.
"""

from __future__ import annotations

import copy
import io
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Mapping

import numpy as np

from mlabs_desktop.core import atomic
from mlabs_desktop.core.formats.bundle_format import (IMAGES, MAX_ENTRIES, MAX_IMAGE_BYTES, MAX_LOSSES_BYTES,
                                                      MAX_MANIFEST_BYTES, MAX_TOTAL_BYTES, PREVIEW_ENTRY, SUFFIX,
                                                      expected_shapes)
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import LOSSES, MANIFEST, PREVIEWS, WEIGHTS, Manifest, Model
from mlabs_desktop.core.filenames import slugify

# Provenance values that are paths on the author's machine: only file names travel.
LOCAL_PATH_KEYS = ("style", "train_path", "vgg_path", "test", "init_from")

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_ATTR = (stat.S_IFREG | 0o644) << 16


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
    from mlabs_desktop.core.networks.weights import check_shapes

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
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out
