"""Importing a ``.mlstyle`` bundle (a file or an http(s) URL) into the library.

The bundle is hostile until proven otherwise: its zip structure and manifest
are checked first (`bundle_reader`, `bundle_format`), then

* the weights are read with ``allow_pickle=False`` after every ``.npy`` header
  has been checked (no object arrays, floating point only, exactly the shapes
  the declared architecture needs, so nothing large is ever allocated), then
  checked for finite values, and re-saved (the stranger's file is not kept);
* images must be JPEGs that Pillow decodes (via `load_image`) within a
  size limit, otherwise they are dropped (with a warning), not fatal;
* everything is extracted into an `atomic.staging_dir` inside the library and
  renamed into place only when all of it passed, under the library lock, with
  file names built from the allow-list, never from the archive.
"""

from __future__ import annotations

import logging
import os
import stat
import zipfile
from pathlib import Path
from typing import Callable, Iterable

from mlabs_desktop.core.images.decode import image_info, load_image
from mlabs_desktop.core import atomic
from mlabs_desktop.core.formats.bundle_format import (IMAGES, MAX_LOSSES_BYTES, MAX_TOTAL_BYTES, MAX_WEIGHTS_BYTES,
                                                      PREVIEW_ENTRY, SUFFIX, WarnFn, clean_name, expected_shapes,
                                                      parse_manifest, reject, short)
from mlabs_desktop.core.formats.bundle_reader import (Entry, check_npz_headers, extract, load_npz, open_archive,
                                                      plan_entries, read_bytes)
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import LOSSES, MANIFEST, PREVIEWS, WEIGHTS, Library, Manifest, Model, now_iso
from mlabs_desktop.core.filenames import slugify
from mlabs_desktop.core.locks import library_lock

log = logging.getLogger(__name__)

MAX_IMAGE_SIDE = 4096


def _read_manifest(archive: zipfile.ZipFile, entry: Entry) -> Manifest:
    return parse_manifest(read_bytes(archive, entry))


def _import_weights(archive: zipfile.ZipFile, entry: Entry, staging: Path, architecture: str) -> None:
    from mlabs_desktop.core.networks.weights import check_shapes, save_weight_arrays

    expected = expected_shapes(architecture)
    raw = extract(archive, entry, staging / ".weights-in.npz")
    keys = check_npz_headers(raw, WEIGHTS, expected, "f", MAX_WEIGHTS_BYTES)
    missing = sorted(set(expected) - set(keys))
    if missing:
        raise reject(f"{WEIGHTS} does not match its declared architecture {architecture} (missing {missing[:3]})")
    arrays = load_npz(raw, WEIGHTS)
    check_shapes(arrays, expected, f"bundle rejected: {WEIGHTS} ({architecture})")
    raw.unlink()
    save_weight_arrays(staging / WEIGHTS, arrays)  # our own file, not the stranger's bytes


def _import_losses(archive: zipfile.ZipFile, entry: Entry, staging: Path, warn: WarnFn) -> None:
    from mlabs_desktop.core.networks.weights import save_weight_arrays

    raw = extract(archive, entry, staging / ".losses-in.npz")
    check_npz_headers(raw, LOSSES, None, "fiu", MAX_LOSSES_BYTES)  # pickles are refused, not dropped
    arrays = load_npz(raw, LOSSES)
    raw.unlink()
    if not all(a.ndim == 1 for a in arrays.values()):
        warn(f"{LOSSES} dropped: it is not a loss history")
        return
    save_weight_arrays(staging / LOSSES, arrays)


def _image_problem(path: Path) -> str | None:
    from PIL import Image


    size = image_info(path)
    if size is None:
        return "not an image Pillow can read"
    if max(size) > MAX_IMAGE_SIDE:
        return f"{size[0]}x{size[1]} is larger than {MAX_IMAGE_SIDE} pixels a side"
    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                return f"a {im.format} image, not a JPEG"
        load_image(path)
    except UserError as exc:
        return str(exc)
    except Exception as exc:  # anything Pillow throws at a hostile file: drop the file
        return short(exc)
    return None


def _import_image(archive: zipfile.ZipFile, entry: Entry, staging: Path, warn: WarnFn) -> None:
    if entry.name in IMAGES:
        target = staging / entry.name
    else:  # a preview: the name is rebuilt from the digits the pattern matched
        match = PREVIEW_ENTRY.fullmatch(entry.name)
        assert match is not None
        (staging / PREVIEWS).mkdir(exist_ok=True)
        target = staging / PREVIEWS / f"step-{match.group(1)}.jpg"
    extract(archive, entry, target)
    problem = _image_problem(target)
    if problem:
        target.unlink()
        warn(f"{entry.name} dropped: {problem}")


def _is_url(text: object) -> bool:
    from mlabs_desktop.core.transfer.http import is_url

    return is_url(text)


def _fetch(file_or_url: str | os.PathLike, progress: Callable | None, cancelled: Callable[[], bool] | None) -> Path:
    from mlabs_desktop.core.transfer import downloads

    if downloads.is_url(file_or_url):
        def capped(report) -> None:
            if report.received > MAX_TOTAL_BYTES + (1 << 20):
                raise reject(f"the download is larger than {MAX_TOTAL_BYTES:,} bytes")
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


def inspect_bundle(file_or_url: str | os.PathLike, *, progress: Callable | None = None,
                   cancelled: Callable[[], bool] | None = None) -> Manifest:
    """The manifest of a bundle after the structural and manifest checks, writing nothing.

    For an "Import 'Name' (architecture)?" confirmation. The weights and images
    are only checked by `import_bundle`, so this is not a promise that it succeeds.
    """
    path = _fetch(file_or_url, progress, cancelled)
    archive, size = open_archive(path)
    with archive:
        return _read_manifest(archive, plan_entries(archive, size)[MANIFEST])


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
    archive, size = open_archive(path)
    with archive:
        entries = plan_entries(archive, size)
        manifest = _read_manifest(archive, entries[MANIFEST])
        expected_shapes(manifest.architecture)  # build (and cache) before taking the lock
        manifest.provenance["imported_from"] = str(file_or_url) if _is_url(file_or_url) else path.name
        manifest.provenance["imported"] = now_iso()
        if manifest.state == "training":
            manifest.state = "stopped"  # nothing is training it here
        wanted = clean_name(name) if name is not None else manifest.name
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


def _images(entries: Iterable[Entry]) -> list[Entry]:
    return sorted((e for e in entries if e.name in IMAGES or PREVIEW_ENTRY.fullmatch(e.name)),
                  key=lambda e: e.name)
