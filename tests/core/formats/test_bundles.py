""".mlstyle bundles: a bit-identical round trip, deterministic export, import by URL,
and one crafted hostile bundle per attack, each refused without a trace."""

from __future__ import annotations

from mlabs_desktop.core.images.decode import read_rgb
from mlabs_desktop.core.formats.bundle_import import import_bundle, inspect_bundle
from mlabs_desktop.core.formats.bundle_writer import export_bundle

import io
import os
import shutil
import stat
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import Library, Manifest

SAMPLE = Path(__file__).resolve().parents[3] / "resources" / "samples" / "chelsea.jpg"


# ------------------------------------------------------------------ helpers

def _jpeg(size=(24, 20), seed=0) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def make_model(library: Library, name: str, architecture: str = "lite", seed: int = 3, extras: bool = True):
    """A model with random (untrained) weights, written the way the library writes models."""
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import model_arrays, save_weight_arrays

    net = build_transform_network(architecture, seed=seed)
    manifest = Manifest(name=name, architecture=architecture, state="finished",
                        parameters={"style-weight": 100.0, "architecture": architecture},
                        provenance={"style": "/home/someone/private/starry.jpg", "seed": seed})

    def fill(folder: Path) -> None:
        save_weight_arrays(folder / "weights.npz", model_arrays(net))
        if extras:
            (folder / "style.jpg").write_bytes(_jpeg(seed=1))
            (folder / "preview.jpg").write_bytes(_jpeg(seed=2))
            (folder / "previews").mkdir()
            (folder / "previews" / "step-00000002.jpg").write_bytes(_jpeg(seed=3))
            save_weight_arrays(folder / "losses.npz", {"step": np.arange(3.0), "total": np.ones(3)})
    return library.create(manifest, fill)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    return make_model(Library(tmp_path_factory.mktemp("base") / "library"), "existing")


@pytest.fixture(scope="module")
def base(base_model, tmp_path_factory) -> dict[str, bytes]:
    """The entries of a valid bundle (random-weights lite model), to craft hostile ones from."""
    path = export_bundle(base_model, tmp_path_factory.mktemp("bundle") / "base.mlstyle")
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_zip(path: Path, items, compression=zipfile.ZIP_DEFLATED) -> Path:
    """``items``: (name or ZipInfo, bytes) pairs, written in order (duplicates allowed)."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name"
        for name, data in items:
            archive.writestr(name, data)
    return path


def npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def weights_of(base) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(base["weights.npz"]), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _central_records(data: bytes):
    """(offset of each central-directory record, its fields) of a plain (non-zip64) zip."""
    end = data.rindex(b"PK\x05\x06")
    start = struct.unpack_from("<L", data, end + 16)[0]
    fmt = "<4s6H3L5H2L"
    pos = start
    while data[pos:pos + 4] == b"PK\x01\x02":
        fields = list(struct.unpack_from(fmt, data, pos))
        name = data[pos + 46: pos + 46 + fields[10]]
        yield pos, fields, name
        pos += 46 + fields[10] + fields[11] + fields[12]


def patch(data: bytes, name: str, *, file_size=None, flags=None, offset_of=None) -> bytes:
    """Rewrite header fields of entry ``name`` in both its central and its local header."""
    out = bytearray(data)
    records = list(_central_records(data))
    offsets = {n.decode(): f[16] for _, f, n in records}
    for pos, fields, entry in records:
        if entry.decode() != name:
            continue
        local = fields[16]
        if file_size is not None:
            struct.pack_into("<L", out, pos + 24, file_size)
            struct.pack_into("<L", out, local + 22, file_size)
        if flags is not None:
            struct.pack_into("<H", out, pos + 8, flags)
            struct.pack_into("<H", out, local + 6, flags)
        if offset_of is not None:
            struct.pack_into("<L", out, pos + 42, offsets[offset_of])
    return bytes(out)


def patch_directory_count(data: bytes, count: int) -> bytes:
    """Make the end-of-directory record lie about how many entries there are."""
    out = bytearray(data)
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", out, end + 8, count, count)
    return bytes(out)


def snapshot(*roots: Path) -> set[str]:
    """Every path under ``roots`` (the lock files aside: locking is not a change)."""
    found = set()
    for root in roots:
        for path in root.rglob("*"):
            if ".locks" not in path.relative_to(root).parts:
                found.add(str(path))
    return found


# ------------------------------------------------------------------ round trip

def test_round_trip_is_bit_identical(tiny_model, tmp_path):
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    path = export_bundle(tiny_model, tmp_path)
    assert path == tmp_path / "tiny.mlstyle"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert names[:2] == ["manifest.yaml", "weights.npz"]
    assert {"style.jpg", "preview.jpg", "losses.npz"} <= set(names)
    assert "checkpoint.npz" not in names and tiny_model.has_checkpoint
    assert sorted(n for n in names if n.startswith("previews/")) == \
        [f"previews/{p.name}" for p in tiny_model.previews()]

    imported = import_bundle(path)
    assert imported.name == "tiny (2)"  # the original is still in this library
    assert imported.folder.parent == tiny_model.folder.parent and imported.folder != tiny_model.folder
    assert not imported.has_checkpoint
    for field in ("architecture", "input_scale", "parameters", "statistics", "created", "state"):
        assert getattr(imported.manifest, field) == getattr(tiny_model.manifest, field), field
    assert imported.manifest.provenance["imported_from"] == "tiny.mlstyle"
    assert [p.name for p in imported.previews()] == [p.name for p in tiny_model.previews()]
    history = imported.loss_history()
    for key, values in tiny_model.loss_history().items():
        np.testing.assert_array_equal(history[key], values)
    assert Library().get("tiny (2)").folder == imported.folder  # listed, loadable

    photo = read_rgb(SAMPLE, max_size=48)
    odd = np.random.default_rng(0).uniform(0, 255, (37, 29, 3)).astype(np.float32)
    before, after = Stylizer(tiny_model, "cpu"), Stylizer(imported, "cpu")
    for x in (photo, odd):
        assert np.array_equal(before.run(x), after.run(x))  # bit-identical, not merely close


def test_export_is_deterministic_and_private(tiny_model, tmp_path):
    first = export_bundle(tiny_model, tmp_path / "a.mlstyle")
    second = export_bundle(tiny_model, tmp_path / "b")
    assert second.name == "b.mlstyle"
    assert first.read_bytes() == second.read_bytes()
    assert stat.S_IMODE(first.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mlstyle", "b.mlstyle"]  # no temporaries
    with zipfile.ZipFile(first) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        text = archive.read("manifest.yaml").decode()
    # Only file names of the author's inputs travel, not their folders.
    assert str(Path(tiny_model.manifest.provenance["style"]).parent) not in text
    assert tiny_model.manifest.provenance["style"].startswith("/")  # the library copy is untouched


def test_names_on_import(tmp_path):
    library = Library()
    model = make_model(library, "Starry", extras=False)
    path = export_bundle(model, tmp_path / "s.mlstyle")
    assert import_bundle(path, library, name="Mine").name == "Mine"
    assert import_bundle(path, library, name="Mine").name == "Mine (2)"
    assert import_bundle(path, library).name == "Starry (2)"
    assert sorted(m.name for m in library.models()) == ["Mine", "Mine (2)", "Starry", "Starry (2)"]
    with pytest.raises(UserError, match="name .* is empty"):
        import_bundle(path, library, name="  ")
    peek = inspect_bundle(path)
    assert (peek.name, peek.architecture) == ("Starry", "lite")
    assert len(library.models()) == 4


def test_import_from_url(tmp_path):
    from http_server import LocalHTTPServer

    library = Library()
    path = export_bundle(make_model(library, "Remote", extras=False), tmp_path / "r.mlstyle")
    library.delete("Remote")
    with LocalHTTPServer() as server:
        url = server.route("/styles/r.mlstyle", body=path.read_bytes())
        model = import_bundle(url, library)
        assert server.count("/styles/r.mlstyle") >= 1
    assert model.name == "Remote"
    assert model.manifest.provenance["imported_from"] == url
    assert [m.name for m in library.models()] == ["Remote"]


def test_import_from_url_refuses_a_hostile_download(tmp_path):
    from http_server import LocalHTTPServer

    library = Library()
    before = snapshot(library.root)
    with LocalHTTPServer() as server:
        url = server.route("/evil.mlstyle", body=b"<html>not a bundle</html>")
        with pytest.raises(UserError, match="bundle rejected: .*not a .mlstyle bundle"):
            import_bundle(url, library)
    assert snapshot(library.root) == before


def test_bad_images_are_dropped_not_fatal(base, tmp_path):
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    items = [(n, d) for n, d in base.items() if n not in ("style.jpg", "preview.jpg")]
    items += [("style.jpg", b"<html>hello</html>"), ("preview.jpg", png.getvalue()),
              ("previews/step-00000009.jpg", _jpeg()[:200])]
    warned: list[str] = []
    model = import_bundle(write_zip(tmp_path / "b.mlstyle", items), on_warning=warned.append)
    assert not model.file("style.jpg").exists() and not model.file("preview.jpg").exists()
    assert [p.name for p in model.previews()] == ["step-00000002.jpg"]
    assert len(warned) == 3 and all("dropped" in w for w in warned)
    assert "not a JPEG" in " ".join(warned)


def test_missing_file_and_folder_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="bundle not found"):
        import_bundle(tmp_path / "nope.mlstyle")
    with pytest.raises(UserError, match="is a folder"):
        import_bundle(tmp_path)


# ------------------------------------------------------------------ hostile bundles

def _replace(base, name, data):
    return [(n, data if n == name else d) for n, d in base.items()]


def _with_manifest(base, text):
    return _replace(base, "manifest.yaml", text.encode())


def _symlink(base):
    info = zipfile.ZipInfo("style.jpg")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return [(n, d) for n, d in base.items() if n != "style.jpg"] + [(info, b"/etc/passwd")]


def _zip_info(name, compress_type=zipfile.ZIP_DEFLATED):
    info = zipfile.ZipInfo(name)
    info.compress_type = compress_type
    return info


def _bomb(path: Path, base, megabytes: int) -> Path:
    """``megabytes`` of zeros as weights.npz, streamed: never all in memory."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("manifest.yaml", base["manifest.yaml"])
        with archive.open(_zip_info("weights.npz"), "w", force_zip64=True) as handle:
            for _ in range(megabytes):
                handle.write(chunk)
    return path


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zipped(items, compression=zipfile.ZIP_DEFLATED) -> bytes:
    return write_zip(io.BytesIO(), items, compression).getvalue()


def _manifest_text(base) -> str:
    return base["manifest.yaml"].decode()


Builder = Callable[[Path, dict], Path]

HOSTILE: dict[str, tuple[Builder, str]] = {
    # paths that try to leave the model folder
    "zip-slip ../evil": (lambda p, b: write_zip(p, [*b.items(), ("../evil", b"x")]), "escapes the model folder"),
    "zip-slip deep ../../x": (lambda p, b: write_zip(p, [("../../x", b"x"), *b.items()]), "'../../x' escapes"),
    "zip-slip inside previews/": (lambda p, b: write_zip(p, [*b.items(), ("previews/../../evil.jpg", _jpeg())]),
                                  "escapes the model folder"),
    "absolute /tmp/evil": (lambda p, b: write_zip(p, [*b.items(), (_zip_info("/tmp/evil"), b"x")]),
                           "absolute path"),
    "windows ..\\evil": (lambda p, b: write_zip(p, [*b.items(), ("..\\evil", b"x")]), "backslash"),
    "drive letter C:/evil": (lambda p, b: write_zip(p, [*b.items(), ("C:/evil", b"x")]), "drive letter"),
    "NUL byte in a name": (lambda p, b: _put(p, _zipped([*b.items(), ("style.jpgX../x", b"x")])
                                             .replace(b"style.jpgX../x", b"style.jpg\0../x")), "NUL byte"),
    "symlink entry": (lambda p, b: write_zip(p, _symlink(b)), "symbolic link"),
    "unexpected model.py": (lambda p, b: write_zip(p, [*b.items(), ("model.py", b"import os\nos.system('x')")]),
                            "'model.py' is not a file a style bundle may contain"),
    "unexpected evil.pkl": (lambda p, b: write_zip(p, [*b.items(), ("evil.pkl", b"\x80\x04.")]),
                            "'evil.pkl' is not a file"),
    "checkpoint.npz (not shared)": (lambda p, b: write_zip(p, [*b.items(), ("checkpoint.npz", b["weights.npz"])]),
                                    "'checkpoint.npz' is not a file"),
    "other folder entry": (lambda p, b: write_zip(p, [*b.items(), ("scripts/", b"")]), "is a folder"),
    "duplicate entries": (lambda p, b: write_zip(p, [*b.items(), ("weights.npz", npz({"a": np.zeros(2)}))]),
                          "'weights.npz' appears twice"),
    "too many entries": (lambda p, b: write_zip(p, [*b.items()] + [(f"previews/step-{i:08d}.jpg", b"x")
                                                                   for i in range(10, 70)]),
                         "at most 64"),
    "huge zip directory (3,000 records, count lies)": (
        lambda p, b: _put(p, patch_directory_count(_zipped(
            [*b.items()] + [(f"previews/step-{i:08d}.jpg" + "x" * 120, b"") for i in range(3000)],
            zipfile.ZIP_STORED), 5)), "zip directory is"),
    "missing weights": (lambda p, b: write_zip(p, [(n, d) for n, d in b.items() if n != "weights.npz"]),
                        "has no weights.npz"),
    # weights
    "pickled object array in weights": (
        lambda p, b: write_zip(p, _replace(b, "weights.npz", npz({
            **weights_of(b), "conv1/kernel": np.array([{"evil": "object"}], dtype=object)}))),
        "pickled Python objects"),
    "wrong shapes for the architecture": (
        lambda p, b: write_zip(p, _replace(b, "weights.npz", npz({
            **weights_of(b), "conv1/kernel": np.zeros((9, 9, 3, 3), np.float32)}))),
        r"conv1/kernel has shape \(9, 9, 3, 3\)"),
    "weights of another architecture": (
        lambda p, b: write_zip(p, _with_manifest(b, _manifest_text(b).replace("architecture: lite",
                                                                               "architecture: default"))),
        "shape"),
    "a weight missing": (lambda p, b: write_zip(p, _replace(b, "weights.npz", npz(
        {k: v for k, v in weights_of(b).items() if k != "out/kernel"}))), "missing"),
    "an extra weight": (lambda p, b: write_zip(p, _replace(b, "weights.npz", npz(
        {**weights_of(b), "evil/payload": np.zeros(3, np.float32)}))), "47 arrays; the declared architecture has 46"),
    "NaN weights": (lambda p, b: write_zip(p, _replace(b, "weights.npz", npz(
        {**weights_of(b), "conv1/kernel": np.full((9, 9, 3, 16), np.nan, np.float32)}))), "not finite"),
    "integer weights": (lambda p, b: write_zip(p, _replace(b, "weights.npz", npz(
        {**weights_of(b), "conv1/kernel": np.zeros((9, 9, 3, 16), np.int32)}))), "int32"),
    "weights not an npz": (lambda p, b: write_zip(p, _replace(b, "weights.npz", b"PK\x03\x04garbage")), "damaged"),
    "pickled losses": (lambda p, b: write_zip(p, _replace(b, "losses.npz", npz(
        {"step": np.array([os.system], dtype=object)}))), "pickled Python objects"),
    # manifest
    "!!python/object tag": (lambda p, b: write_zip(p, _with_manifest(
        b, _manifest_text(b) + "evil: !!python/object:os.system {}\n")), "not plain YAML"),
    "!!python/object/apply tag": (lambda p, b: write_zip(p, _with_manifest(
        b, "!!python/object/apply:os.system ['echo hacked > /tmp/evil']\n")), "not plain YAML"),
    "YAML alias bomb": (lambda p, b: write_zip(p, _with_manifest(b, _manifest_text(b) + "bomb:\n" + "".join(
        f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else 'lol'}]\n" for i in range(9)))), "alias bomb"),
    "unknown architecture": (lambda p, b: write_zip(p, _with_manifest(
        b, _manifest_text(b).replace("architecture: lite", "architecture: trojan"))), "unknown architecture"),
    "future format version": (lambda p, b: write_zip(p, _with_manifest(
        b, _manifest_text(b).replace("format_version: 1", "format_version: 99"))), "unsupported model format"),
    "manifest not a mapping": (lambda p, b: write_zip(p, _with_manifest(b, "- just\n- a list\n")), "not a mapping"),
    "manifest not UTF-8": (lambda p, b: write_zip(p, _replace(b, "manifest.yaml", b"name: \xff\xfe\n")), "UTF-8"),
    "manifest too large": (lambda p, b: write_zip(p, _with_manifest(b, _manifest_text(b) + "#" * (1 << 20))),
                           "limit for it is 1,048,576"),
    # sizes and zip structure
    "huge declared size": (lambda p, b: _put(p, patch(_zipped(b.items()), "weights.npz", file_size=0xFFFF0000)),
                           "declares 4,294,901,760 bytes"),
    "zip bomb (300 MB of zeros)": (lambda p, b: _bomb(p, b, 300), "declares 314,572,800 bytes"),
    "zip bomb under the size limit (100 MB)": (lambda p, b: _bomb(p, b, 100), "zip bomb"),
    "size smaller than the data (lying header)": (
        lambda p, b: _put(p, patch(_zipped(b.items()), "weights.npz", file_size=1000)),
        "damaged|declared|truncated"),
    "overlapping entries": (lambda p, b: _put(p, patch(_zipped(b.items()), "weights.npz", offset_of="manifest.yaml")),
                            "overlap"),
    "encrypted entry": (lambda p, b: _put(p, patch(_zipped(b.items()), "weights.npz", flags=1)), "encrypted"),
    "bzip2 compression": (lambda p, b: write_zip(p, b.items(), zipfile.ZIP_BZIP2), "unsupported compression"),
    "truncated zip": (lambda p, b: _put(p, _zipped(b.items())[:5000]), "not a valid zip"),
    "bytes cut from the middle": (lambda p, b: _put(p, (lambda d: d[:3000] + d[60000:])(_zipped(b.items()))),
                                  "bundle rejected"),
    "not a zip (a JPEG)": (lambda p, b: _put(p, _jpeg()), "not a .mlstyle bundle"),
    "empty file": (lambda p, b: _put(p, b""), "not a .mlstyle bundle"),
}


def test_hostile_file_count():
    # The issue asks how many hostile files were tried: every one below is refused.
    assert len(HOSTILE) == 44


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_hostile_bundle_is_rejected_without_a_trace(attack, base, base_model, tmp_path, isolated_home):
    build, message = HOSTILE[attack]
    library = Library()
    shutil.copytree(base_model.folder, library.root / base_model.folder.name)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = build(incoming / "evil.mlstyle", base)
    before = snapshot(isolated_home, tmp_path)
    with pytest.raises(UserError, match=message) as caught:
        import_bundle(path, library)
    assert str(caught.value).startswith("bundle rejected: ")
    assert "\n" not in str(caught.value)
    assert snapshot(isolated_home, tmp_path) == before  # no folder, no staging left-over, nothing outside
    assert [m.name for m in library.models()] == ["existing"]
    assert not Path("/tmp/evil").exists()
    print(f"{attack}: {caught.value}")
