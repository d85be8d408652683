"""The rules the folder tree stands for: one direction of imports, Qt only in the app, rooms of a size to read.

The module graph comes from `docs/import_graph.py`, which also draws the rooms for docs/architecture.md.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlabs_desktop"
CORE = PACKAGE / "core"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "qtpy", "shiboken6")
MAX_MODULES_PER_FOLDER = 15

sys.path.insert(0, str(ROOT / "docs"))
import import_graph  # noqa: E402


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: Tarjan's components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_only_the_app_imports_qt():
    offenders = {str(p.relative_to(ROOT)): m for p in PACKAGE.rglob("*.py") if "gui" not in p.relative_to(PACKAGE).parts
                 for m in imported_modules(p) if m.split(".")[0] in QT_MODULES}
    assert offenders == {}


def test_the_core_imports_neither_the_command_line_nor_the_app():
    graph = import_graph.module_imports(import_graph.module_files())
    offenders = sorted((m, t) for m, targets in graph.items() if layer(m) == "core"
                       for t in targets if layer(t) in ("cli", "gui"))
    assert offenders == []


def test_the_app_does_not_import_the_command_line():
    graph = import_graph.module_imports(import_graph.module_files())
    assert sorted((m, t) for m, targets in graph.items() if layer(m) == "gui" for t in targets
                  if layer(t) == "cli") == []


def test_no_import_circles_between_modules():
    assert strongly_connected(import_graph.module_imports(import_graph.module_files())) == []


def test_no_import_circles_between_rooms():
    assert strongly_connected(import_graph.room_graph()) == []


def test_cross_cutting_core_modules_import_no_room():
    """``core/*.py`` (config, errors, atomic writes...) sit below every room of the core."""
    rooms = import_graph.room_graph()
    assert rooms["core"] <= {"resources"}


def test_core_errors_name_no_command_line_flag_directly():
    """A core error that names a control is `UserError.worded`, so the app can name its field instead.

    Lab files are written with the 2017 MachineLabs lab's flags, so their errors name those.
    """
    flag = re.compile(r"(?<![\w-])--[a-z]")
    offenders = []
    for path in (PACKAGE / "core").rglob("*.py"):
        if "labs" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                texts = [c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for t in texts if flag.search(t)]
    assert offenders == []


def test_no_folder_holds_more_than_fifteen_modules():
    for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= MAX_MODULES_PER_FOLDER, folder


def test_the_drawn_import_graph_is_current():
    """docs/architecture.md shows the graph as it is (regenerate: python docs/import_graph.py --write)."""
    assert import_graph.main.__module__ and subprocess.run(
        [sys.executable, str(ROOT / "docs" / "import_graph.py"), "--check"], cwd=ROOT, timeout=60).returncode == 0


def test_importing_the_whole_core_loads_no_qt():
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in CORE.rglob("*.py") if p.stem != "__init__"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\nprint(bad)\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_model_and_loss_code_use_only_keras():
    for name in ("networks/transform.py", "networks/block_conv.py", "networks/upsample_conv.py",
                 "networks/norm_gradient.py", "training/losses.py", "networks/loss_network.py"):
        modules = imported_modules(CORE / name)
        assert not any(m.split(".")[0] in ("tensorflow", "torch", "jax") for m in modules), name


def test_the_cli_answers_without_tensorflow_until_a_network_is_needed(tiny_model):
    """Library commands, and a wrong path, size, taken output or photo that is not an image, are answered
    in a second, not after TensorFlow's start-up (seconds)."""
    code = ("import sys\nfrom mlabs_desktop.cli.main import main\nmain(['library', 'list'])\n"
            "assert main(['import', 'no-such-bundle.mlstyle']) == 2\n"  # a wrong path: answered before Keras
            "assert main(['import-checkpoint', 'no-such-folder', '--name=x']) == 2\n"
            "assert main(['distill', 'tiny', '--train-path=no-such-folder']) == 2\n"
            "assert main(['export', 'tiny', '--format=onnx', '--size=64x64']) == 2\n"
            "import pathlib, tempfile\ntaken = pathlib.Path(tempfile.mkdtemp()) / 'taken.tflite'\n"
            "taken.write_bytes(b'x')\nassert main(['export', 'tiny', '--format=tflite', f'--out={taken}']) == 2\n"
            "notes, out = taken.with_name('notes.png'), taken.with_name('out.png')\nnotes.write_text('not an image')\n"
            "assert main(['stylize', '--checkpoint=tiny', f'--in-path={notes}', f'--out-path={out}']) == 2\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
