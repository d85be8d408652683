"""The ``.mlstyle`` format: what a bundle may hold, its limits, and the manifest checks.

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

The limits here are shared by the writer (`bundle_writer`: never write what an
importer refuses) and the reader (`bundle_reader`, `bundle_import`). The
manifest of a stranger's bundle is size-limited, parsed with
``yaml.safe_load`` (no Python tags), bounded in depth and node count (no alias
bombs), and validated by `Manifest.from_mapping` (`parse_manifest`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from typing import Any, Callable

import yaml

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import LOSSES, MANIFEST, PREVIEW, PREVIEWS, STYLE_THUMB, WEIGHTS, Manifest
from mlabs_desktop.core.smallfiles import UnreadableYAML, load_yaml

SUFFIX = ".mlstyle"

MAX_ENTRIES = 64
MAX_WEIGHTS_BYTES = 256 << 20
MAX_IMAGE_BYTES = 16 << 20
MAX_MANIFEST_BYTES = 1 << 20
MAX_LOSSES_BYTES = 16 << 20
MAX_TOTAL_BYTES = 300 << 20
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

WarnFn = Callable[[str], None]


def reject(reason: str) -> UserError:
    return UserError(f"bundle rejected: {reason}")


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@functools.lru_cache(maxsize=None)
def _cached_shapes(architecture: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    from mlabs_desktop.core.networks.transform import weight_shapes

    return tuple(sorted(weight_shapes(architecture).items()))


def expected_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """Variable path -> shape for ``architecture`` (built once per process and cached)."""
    return dict(_cached_shapes(architecture))


def _check_tree(value: Any) -> None:
    """Bound the manifest's size as a tree: no alias bombs, no self-references, plain types."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_MANIFEST_NODES:
            raise reject(f"{MANIFEST} has more than {MAX_MANIFEST_NODES} values (an alias bomb?)")
        if depth > MAX_MANIFEST_DEPTH:
            raise reject(f"{MANIFEST} is nested more than {MAX_MANIFEST_DEPTH} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    raise reject(f"{MANIFEST} has a key of type {type(key).__name__}")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif not (node is None or isinstance(node, (str, int, float, bool, _dt.date))):
            raise reject(f"{MANIFEST} holds a value of type {type(node).__name__}")


def clean_name(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]+", " ", name).strip()
    if not name:
        raise reject("the model name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise reject(f"the model name is longer than {MAX_NAME_CHARS} characters")
    return name


def parse_manifest(data: bytes) -> Manifest:
    """A stranger's ``manifest.yaml`` bytes as a checked `Manifest`, or a ``bundle rejected`` error."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise reject(f"{MANIFEST} is not UTF-8 text") from None
    try:
        mapping = load_yaml(text)
    except UnreadableYAML as exc:  # e.g. a 100,000-digit number
        raise reject(f"{MANIFEST}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise reject(f"{MANIFEST} is not plain YAML ({detail})") from None
    _check_tree(mapping)
    try:
        manifest = Manifest.from_mapping(mapping, MANIFEST)
    except UserError as exc:
        raise reject(str(exc)) from None
    manifest.name = clean_name(manifest.name)
    return manifest
