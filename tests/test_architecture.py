"""The core never imports Qt; model and loss code use only keras.layers / keras.ops."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "mlabs_desktop" / "core"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "qtpy", "shiboken6")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_core_module_imports_qt():
    offenders = {p.name: m for p in CORE.rglob("*.py") for m in imported_modules(p)
                 if m.split(".")[0] in QT_MODULES}
    assert offenders == {}


def test_importing_the_whole_core_loads_no_qt():
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in CORE.rglob("*.py") if p.stem != "__init__"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\nprint(bad)\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_model_and_loss_code_use_only_keras():
    for name in ("networks/transform.py", "networks/block_conv.py", "networks/upsample_conv.py",
                 "training/losses.py", "networks/loss_network.py"):
        modules = imported_modules(CORE / name)
        assert not any(m.split(".")[0] in ("tensorflow", "torch", "jax") for m in modules), name


def test_the_cli_does_not_import_tensorflow_for_library_commands():
    code = ("import sys\nfrom mlabs_desktop.cli.main import main\nmain(['library', 'list'])\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
