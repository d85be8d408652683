"""PyTorch ``.pth`` files: read without torch and without running them; TransformerNet models imported with parity."""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.formats.torch_import import import_pth, torch_layers, transformer_arrays
from mlabs_desktop.core.formats.torch_pickle import MAGIC_NUMBER, UnsafePickle, read_pth

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["small-zip.pth", "small-legacy.pth"])
def test_both_file_layouts_are_read_without_torch(name):
    """Committed files written by torch 2.13 (zip, and the legacy layout of the 2017 files)."""
    state = read_pth(FIXTURES / name)
    assert state["conv.weight"].shape == (2, 3, 3, 3) and state["conv.weight"][1, 2, 2, 2] == pytest.approx(5.3)
    assert state["conv.bias"].tolist() == [0.5, -1.25] and state["norm.num_batches_tracked"] == 7
    assert state["half"].dtype == np.float16 and state["half"].tolist() == [1.5, -2.0]
    assert state["bf16"].dtype == np.float32 and state["bf16"].tolist() == [3.0, 0.15625]
    # A transposed view of the same storage comes back as its own array.
    assert np.array_equal(state["transposed"], state["conv.weight"][0, 0].T)


def zip_pth(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def legacy_pth(path: Path, pickled: bytes, tail: bytes = b"") -> Path:
    head = b"".join(pickle.dumps(v, protocol=2) for v in (MAGIC_NUMBER, 1001, {"little_endian": True}))
    path.write_bytes(head + pickled + pickle.dumps([], protocol=2) + tail)
    return path


EVIL = [
    b"cos\nsystem\n(S'touch HACKED'\ntR.",                  # the classic: a shell command
    b"cbuiltins\neval\n(S'1+1'\ntR.",
    b"ctorch\nload\n(S'x'\ntR.",                             # a torch name outside the tensor-rebuilding ones
    b"\x80\x02ccollections\nOrderedDict\n)\x81}bcposix\nsystem\n.",  # a global hidden after a BUILD
]


@pytest.mark.parametrize("payload", EVIL)
@pytest.mark.parametrize("layout", [zip_pth, legacy_pth])
def test_a_file_that_asks_to_run_anything_else_is_refused(tmp_path, monkeypatch, payload, layout):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafePickle, match="which a weights file never needs; it was not loaded"):
        read_pth(layout(tmp_path / "evil.pth", payload))
    assert not (tmp_path / "HACKED").exists()


def tensor_pickle(numel: int, size: tuple[int, ...], stride: tuple[int, ...], offset: int = 0) -> bytes:
    """A state dict of one float tensor over storage '0', as torch writes it."""
    dims = lambda v: b"(" + b"".join(b"K" + bytes([n]) if n < 256 else b"M" + struct.pack("<H", n) for n in v) + b"t"  # noqa: E731
    return (b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
            b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000"
            b"X\x03\x00\x00\x00cpuM" + struct.pack("<H", numel) + b"tQ"
            + b"K" + bytes([offset]) + dims(size) + dims(stride) + b"\x89ccollections\nOrderedDict\n)RtRu.")


def test_a_tensor_larger_than_its_stored_bytes_is_refused(tmp_path):
    with pytest.raises(UserError, match="is cut short"):
        read_pth(zip_pth(tmp_path / "short.pth", tensor_pickle(1000, (1000,), (1,)), {"0": bytes(40)}))


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    with pytest.raises(UserError, match="reaches past its stored data"):
        read_pth(zip_pth(tmp_path / "far.pth", tensor_pickle(10, (10, 10), (10, 1)), {"0": bytes(40)}))
    fine = read_pth(zip_pth(tmp_path / "fine.pth", tensor_pickle(10, (2, 5), (5, 1)), {"0": bytes(40)}))
    assert fine["w"].shape == (2, 5)


@pytest.mark.parametrize("content", [b"", b"garbage" * 20, b"PK\x03\x04 not really a zip"])
def test_files_that_are_not_pytorch_weights_get_one_message(tmp_path, content):
    path = tmp_path / "odd.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match="odd.pth"):
        read_pth(path)


def test_another_network_is_not_taken_for_a_transformer_net():
    state = read_pth(FIXTURES / "small-zip.pth")
    with pytest.raises(UserError, match="is not a PyTorch fast-neural-style TransformerNet"):
        transformer_arrays(state, "small-zip.pth")


def fake_transformer_state(seed: int = 0) -> dict[str, np.ndarray]:
    """A TransformerNet state dict made without torch: the right names and shapes, random values."""
    from mlabs_desktop.core.networks.transform import weight_shapes

    rng = np.random.default_rng(seed)
    ours = weight_shapes("pytorch")
    state = {}
    for module, (layer, kind) in torch_layers().items():
        if kind == "conv":
            h, w, i, o = ours[f"{layer}/kernel"]
            state[f"{module}.conv2d.weight"] = rng.normal(0, 0.05, (o, i, h, w)).astype(np.float32)
            state[f"{module}.conv2d.bias"] = rng.normal(0, 0.05, o).astype(np.float32)
        else:
            c = ours[f"{layer}/scale"][0]
            state.update({f"{module}.weight": rng.uniform(0.5, 1.5, c).astype(np.float32),
                          f"{module}.bias": rng.uniform(-0.5, 0.5, c).astype(np.float32),
                          f"{module}.running_mean": np.zeros(c, np.float32),
                          f"{module}.running_var": np.ones(c, np.float32)})
    return state


def test_a_transformer_net_state_maps_onto_the_pytorch_architecture():
    state = fake_transformer_state()
    arrays = transformer_arrays({f"module.{k}": v for k, v in state.items()}, "x.pth")  # DataParallel names too
    assert np.array_equal(arrays["conv1/kernel"], state["conv1.conv2d.weight"].transpose(2, 3, 1, 0))
    assert np.array_equal(arrays["res3_b_norm/shift"], state["res3.in2.bias"])
    assert np.array_equal(arrays["out/bias"], state["deconv3.conv2d.bias"])
    assert len(arrays) == 2 * len(torch_layers())


torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch): the parity tests need it")


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_pytorch_example_model_stylizes_as_pytorch_does(tmp_path, isolated_home, zipped):
    from torch_transformer import styled, trained_like

    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.networks.precision import sample_photos
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    net = trained_like(seed=1)
    path = tmp_path / "candy.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=zipped)
    model = import_pth(path)
    assert (model.name, model.manifest.architecture, model.manifest.input_scale) == ("candy", "pytorch", 1.0)
    photo = sample_photos((160, 120))[0]
    ours = np.clip(Stylizer(Library().get("candy"), device="cpu").run(photo), 0, 255)
    theirs = styled(net, photo)
    assert np.abs(ours - theirs).max() <= 1.0  # within 1/255 of the full range
    assert np.std(theirs) > 10  # a real picture, not a constant one


def test_a_tensor_that_repeats_its_values_to_fill_memory_is_refused(tmp_path):
    """3000 x 3000 values from one stored float (stride 0): 36 MB from a few hundred bytes."""
    with pytest.raises(UserError, match="holds more values than were stored"):
        read_pth(zip_pth(tmp_path / "big.pth", tensor_pickle(1, (3000, 3000), (0, 0)), {"0": bytes(4)}))


@pytest.mark.parametrize("shape", ["circle", "deep"])
def test_weights_nested_in_a_circle_or_too_deep_are_refused(tmp_path, shape):
    if shape == "circle":
        nested: dict = {}
        nested["self"] = nested
    else:
        nested = {"w": 1}
        for _ in range(40):  # shared levels: 2**40 paths if walked naively
            nested = {"a": nested, "b": nested}
    with pytest.raises(UserError, match="deeper than a state dict, or in a circle"):
        read_pth(zip_pth(tmp_path / "nested.pth", pickle.dumps(nested, protocol=2)))


def test_a_legacy_view_reads_its_slice_of_the_root_storage(tmp_path):
    """The 2017 files can hold views: (view key, offset, size) into a storage saved under its root key."""
    pickled = tensor_pickle(10, (4,), (1,)).replace(
        b"X\x03\x00\x00\x00cpuM\x0a\x00t", b"X\x03\x00\x00\x00cpuM\x0a\x00(X\x01\x00\x00\x00vK\x02K\x04tt")
    head = b"".join(pickle.dumps(v, protocol=2) for v in (MAGIC_NUMBER, 1001, {"little_endian": True}))
    values = np.arange(10, dtype="<f4")
    path = tmp_path / "view.pth"
    path.write_bytes(head + pickled + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 10) + values.tobytes())
    assert read_pth(path)["w"].tolist() == [2.0, 3.0, 4.0, 5.0]
