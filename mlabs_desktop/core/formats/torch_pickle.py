"""Reading PyTorch ``.pth`` weight files without PyTorch, and without running anything they contain.

A ``.pth`` is a pickle: unpickled as Python does it, it may call any function it
names. Here the unpickler knows six kinds of names (an ordered dict, tensor and
parameter rebuilding, the storage types) and refuses every other one. Tensors
come back as NumPy arrays, checked against the bytes really stored. Both layouts
in the wild are read: the zip archive ``torch.save`` writes since PyTorch 1.6, and
the older stream (magic number, protocol, system info, the pickle, the storage
keys, then each storage's bytes) in which the widely shared 2017 files were saved.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlabs_desktop.core.errors import UserError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C   # the legacy format's first pickle
LEGACY_PROTOCOL = 1001
MAX_FILE_BYTES = 1 << 30                # no style network comes near this
MAX_PICKLE_BYTES = 16 << 20
MAX_TENSORS = 10_000

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafePickle(UserError):
    """The file asks for something a weights file never needs."""


@dataclass(frozen=True)
class StorageType:
    name: str

    @property
    def itemsize(self) -> int:
        dtype = STORAGE_DTYPES[self.name]
        return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


@dataclass(frozen=True)
class StorageRef:
    kind: StorageType
    key: str
    numel: int
    view: tuple[str, int, int] | None = None   # legacy views: (view key, offset, size) into the root storage


@dataclass(frozen=True)
class LazyTensor:
    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, size, stride, *_ignored) -> LazyTensor:
    if not isinstance(storage, StorageRef):
        raise UnsafePickle("a tensor in this file is not built from a stored array")
    ints = lambda v: isinstance(v, (tuple, list)) and all(isinstance(i, int) and i >= 0 for i in v)  # noqa: E731
    if not (isinstance(offset, int) and offset >= 0 and ints(size) and ints(stride) and len(size) == len(stride)):
        raise UnsafePickle("a tensor in this file has an impossible shape")
    return LazyTensor(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, source: str):
        super().__init__(stream)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickle(f"{self.source} asks to run {module}.{name}, which a weights file never needs; "
                               "it was not loaded") from None

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)
                and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0):
            raise UnsafePickle(f"{self.source} refers to stored data in a way this reader does not know")
        view = pid[5] if len(pid) > 5 else None
        if view is not None and not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                                     and all(isinstance(v, int) and v >= 0 for v in view[1:])):
            raise UnsafePickle(f"{self.source} holds a storage view this reader does not know")
        return StorageRef(pid[1], pid[2], pid[4], view)


def _load(stream: io.BytesIO, source: str) -> Any:
    """The pickle at the stream's position; the stream is left just after it."""
    try:
        return _Unpickler(stream, source).load()
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed pickle is one message
        raise UserError(f"{source} is not a readable PyTorch weights file ({type(exc).__name__}: {exc})") from None


def _array(raw: bytes, kind: StorageType, numel: int, source: str) -> np.ndarray:
    if numel * kind.itemsize > len(raw):
        raise UserError(f"{source} is cut short: a storage needs {numel * kind.itemsize:,} bytes, "
                        f"{len(raw):,} are there")
    dtype = STORAGE_DTYPES[kind.name]
    if dtype == "bfloat16":  # the top half of a float32
        halves = np.frombuffer(raw, "<u2", count=numel).astype(np.uint32) << 16
        return halves.view(np.float32)
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"), count=numel)


def _tensor(t: LazyTensor, storages: dict[str, np.ndarray], source: str) -> np.ndarray:
    ref = t.storage
    base = storages.get(ref.key)  # a legacy view is a slice of its root storage, stored under the root's key
    if base is None:
        raise UserError(f"{source}: a tensor's data is missing")
    if ref.view is not None:
        base = base[ref.view[1]:ref.view[1] + ref.view[2]]
    needed = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride)) + 1 if all(t.size) else 0
    if needed > base.size:
        raise UserError(f"{source}: a tensor reaches past its stored data")
    if int(np.prod(t.size, dtype=np.float64)) > base.size:  # repeated elements (stride 0) would multiply memory
        raise UserError(f"{source}: a tensor holds more values than were stored for it")
    if not all(t.size):
        return np.zeros(t.size, base.dtype)
    view = np.lib.stride_tricks.as_strided(base[t.offset:], t.size, [s * base.itemsize for s in t.stride],
                                           writeable=False)
    return np.array(view, dtype=base.dtype.newbyteorder("="))


MAX_DEPTH = 3   # a state dict, perhaps inside a checkpoint dict: nothing deeper


def _resolve(obj: Any, storages: dict[str, np.ndarray], source: str) -> Any:
    if isinstance(obj, LazyTensor):
        return _tensor(obj, storages, source)
    if isinstance(obj, dict):
        return {k: _resolve(v, storages, source) for k, v in obj.items()}
    return obj


def _tensors(obj: Any, source: str, depth: int = 0, seen: set[int] | None = None) -> list[LazyTensor]:
    """Every tensor in the loaded object, which must be dicts at most `MAX_DEPTH` deep, each met once."""
    if isinstance(obj, LazyTensor):
        return [obj]
    if not isinstance(obj, dict):
        return []
    seen = set() if seen is None else seen
    if depth > MAX_DEPTH or id(obj) in seen:
        raise UserError(f"{source} nests its weights deeper than a state dict, or in a circle")
    seen.add(id(obj))
    found = [t for v in obj.values() for t in _tensors(v, source, depth + 1, seen)]
    if len(found) > MAX_TENSORS:
        raise UserError(f"{source} holds more than {MAX_TENSORS:,} tensors")
    return found


def _read_zip(path: Path, source: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise UserError(f"{source} is a zip file but not a PyTorch weights file (no data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if sum(i.file_size for i in archive.infolist()) > MAX_FILE_BYTES:
            raise UserError(f"{source} unpacks to more than {MAX_FILE_BYTES:,} bytes; refusing it")
        if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
            raise UnsafePickle(f"{source}: its pickle is too large for a weights file")
        result = _load(io.BytesIO(archive.read(pickles[0])), source)
        refs = {t.storage.key: t.storage for t in _tensors(result, source)}
        storages = {}
        for key, ref in refs.items():
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise UserError(f"{source}: stored data {key!r} is missing") from None
            storages[key] = _array(raw, ref.kind, ref.numel, source)
        return _resolve(result, storages, source)


def _read_legacy(data: bytes, source: str) -> Any:
    stream = io.BytesIO(data)
    magic, protocol = _load(stream, source), _load(stream, source)
    if magic != MAGIC_NUMBER or protocol != LEGACY_PROTOCOL:
        raise UserError(f"{source} is not a PyTorch weights file")
    info = _load(stream, source)
    if not isinstance(info, dict) or info.get("little_endian") is False:
        raise UserError(f"{source} was saved on a big-endian machine; load and save it again with PyTorch")
    start = stream.tell()
    result = _load(stream, source)
    if stream.tell() - start > MAX_PICKLE_BYTES:
        raise UnsafePickle(f"{source}: its pickle is too large for a weights file")
    keys = _load(stream, source)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or len(keys) > MAX_TENSORS:
        raise UserError(f"{source}: its list of stored data is damaged")
    refs = {t.storage.key: t.storage for t in _tensors(result, source)}
    storages = {}
    for key in keys:
        header = stream.read(8)
        if len(header) != 8:
            raise UserError(f"{source} is cut short")
        numel = int.from_bytes(header, "little")
        ref = refs.get(key)
        if ref is None or numel < ref.numel:
            raise UserError(f"{source}: stored data {key!r} does not match the tensors that use it")
        if numel * ref.kind.itemsize > len(data) - stream.tell():
            raise UserError(f"{source} is cut short: stored data {key!r} needs {numel * ref.kind.itemsize:,} bytes")
        storages[key] = _array(stream.read(numel * ref.kind.itemsize), ref.kind, numel, source)
    return _resolve(result, storages, source)


def read_pth(path: Path | str) -> Any:
    """The object a ``.pth`` file holds (for weights: a dict of name -> NumPy array), with no code run."""
    path = Path(path)
    source = path.name
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UserError(f"{source} is {size:,} bytes, too large to be a style network's weights")
        if zipfile.is_zipfile(path):
            return _read_zip(path, source)
        return _read_legacy(path.read_bytes(), source)
    except UserError:
        raise
    except zipfile.BadZipFile as exc:
        raise UserError(f"{source} is a damaged zip file ({exc})") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - encrypted members, odd compressions, absurd sizes: one message
        raise UserError(f"{source} is not a readable PyTorch weights file ({type(exc).__name__}: {exc})") from None
