"""ONNX: every library model exported and run by onnxruntime as we run it; ONNX fast-style models imported."""

from __future__ import annotations

import numpy as np
import pytest

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.library.store import WEIGHTS, Library, Manifest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")


def library_model(architecture: str, name: str | None = None):
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import model_arrays, save_weight_arrays

    net = build_transform_network(architecture, input_scale=1.0 if architecture == "pytorch" else 1 / 255, seed=5)
    manifest = Manifest(name=name or architecture, architecture=architecture, state="finished",
                        input_scale=1.0 if architecture == "pytorch" else 1 / 255)
    return Library().create(manifest, lambda folder: save_weight_arrays(folder / WEIGHTS, model_arrays(net)))


def photo(size=(96, 64)) -> np.ndarray:
    from mlabs_desktop.core.networks.precision import sample_photos

    return sample_photos(size)[0]


@pytest.mark.parametrize("architecture", ["classic", "default", "lite", "tiny", "pytorch"])
def test_an_exported_model_runs_in_onnxruntime_as_it_runs_here(architecture, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    from mlabs_desktop.core.formats.exporters import export_model
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    model = library_model(architecture)
    path = export_model(model, "onnx", tmp_path)
    assert path.name == f"{architecture}.onnx"
    session = ort.InferenceSession(str(path))
    [given] = session.get_inputs()
    assert given.name == "pixels" and given.shape == ["batch", 3, "height", "width"]
    for size in ((96, 64), (64, 128)):  # height and width are free
        image = photo(size)
        theirs = session.run(None, {"pixels": image.transpose(2, 0, 1)[None]})[0][0].transpose(1, 2, 0)
        ours = np.clip(Stylizer(model, device="cpu").run(image), 0, 255)
        assert np.abs(ours - theirs).max() <= 1.0  # within 1/255 of the full range


def test_an_exported_pytorch_model_imports_back_to_the_same_weights(tmp_path):
    from mlabs_desktop.core.formats.exporters import export_model
    from mlabs_desktop.core.formats.onnx_import import import_onnx

    model = library_model("pytorch", "original")
    back = import_onnx(export_model(model, "onnx", tmp_path / "style.onnx"), name="back")
    assert back.manifest.architecture == "pytorch" and back.manifest.provenance["source"] == "onnx"
    before, after = model.load_weights(), back.load_weights()
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)


def test_other_onnx_graphs_are_refused_with_one_message(tmp_path):
    from onnx import TensorProto, helper

    from mlabs_desktop.core.formats.onnx_import import import_onnx

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "classifier", [x], [y],
                              [helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.0] * 16)])
    other = tmp_path / "classifier.onnx"
    other.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(UserError, match="classifier.onnx uses MatMul: ONNX import reads the PyTorch examples' fast-style network"):
        import_onnx(other)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07" + b"not protobuf" * 10)
    with pytest.raises(UserError, match="junk.onnx is not a readable ONNX model"):
        import_onnx(junk)
    assert Library().models() == []


def test_a_zoo_style_model_exported_from_pytorch_imports_with_parity(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed: it writes the zoo-style file")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    from torch_transformer import TransformerNet, trained_like

    from mlabs_desktop.core.formats.onnx_import import import_onnx
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    net = TransformerNet().eval()
    net.load_state_dict(trained_like(seed=3).state_dict(), strict=False)  # the running statistics are not used
    path = tmp_path / "mosaic-9.onnx"  # as the ONNX model zoo's: opset 9, Upsample, a fixed 224x224 input
    torch.onnx.export(net, torch.rand(1, 3, 224, 224) * 255, str(path), opset_version=9, input_names=["input1"],
                      output_names=["output1"], dynamo=False)
    model = import_onnx(path)
    image = photo((224, 224))
    theirs = np.clip(ort.InferenceSession(str(path)).run(None, {"input1": image.transpose(2, 0, 1)[None]})[0][0]
                     .transpose(1, 2, 0), 0, 255)
    ours = np.clip(Stylizer(model, device="cpu").run(image), 0, 255)
    assert np.abs(ours - theirs).max() <= 1.0 and theirs.std() > 10


def test_weights_kept_in_other_files_are_never_read(tmp_path, monkeypatch):
    from onnx import TensorProto, helper

    from mlabs_desktop.core.formats.onnx_import import import_onnx

    (tmp_path / "secret.bin").write_bytes(b"private" * 100)
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0] * 4)
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="secret.bin")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weight])
    path = tmp_path / "outside.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="keeps its weights in other files"):
        import_onnx(path)
