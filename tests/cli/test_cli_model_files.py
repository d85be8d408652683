"""`mlabs-desktop import FILE.pth|FILE.onnx` and `export --format=onnx`: models from and for other tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlabs_desktop.core.library.store import Library
from test_cli import cli

FIXTURES = Path(__file__).resolve().parents[1] / "core" / "formats" / "fixtures"


def test_what_is_not_a_transformer_net_is_one_error_line(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(b"cos\nsystem\n(S'touch HACKED'\ntR.")
    for path, words in ((FIXTURES / "small-zip.pth", "is not a PyTorch fast-neural-style TransformerNet"),
                        (evil, "asks to run os.system, which a weights file never needs"),
                        (tmp_path / "missing.pth", "input not found")):
        result = cli("import", str(path))
        assert result.returncode == 2 and result.stderr.startswith("error: ") and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert Library().models() == []


def test_a_pytorch_example_model_imports_from_the_command_line(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    from torch_transformer import trained_like

    path = tmp_path / "mosaic.pth"
    torch.save(trained_like(seed=2).state_dict(), path)
    result = cli("import", str(path), "--name=Mosaic", check=True)
    assert result.stdout.startswith("imported 'Mosaic'")
    assert Library().get("Mosaic").manifest.architecture == "pytorch"


def test_onnx_export_and_import_from_the_command_line(tiny_model, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    result = cli("export", "tiny", "--format=onnx", f"--out={tmp_path}", check=True)
    assert (tmp_path / "tiny.onnx").stat().st_size > 10_000 and "tiny.onnx" in result.stdout
    refused = cli("import", str(tmp_path / "tiny.onnx"))  # a lite network, not the PyTorch example's
    assert refused.returncode == 2 and "uses Tanh: ONNX import reads the PyTorch examples' fast-style network" in refused.stderr
