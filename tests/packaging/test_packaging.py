"""The packaged build's parts agree: spec, build script, resource lookup, console use.

CI does not build the PyInstaller bundle (minutes, gigabytes); these checks make
sure that what the app loads at run time is what the spec bundles, in the layout
``mlabs_desktop.resources.resource_path`` expects (macOS's bundle identifier
comes from the spec). That the icons and the Linux and Windows metadata name the
same app and version as pyproject.toml is checked in test_packaging_metadata.py.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
PACKAGE = ROOT / "mlabs_desktop"
SPEC = PACKAGING / "mlabs-desktop.spec"


def _load(name: str, path: Path):
    # packaging/ is deliberately not a Python package (it would shadow the
    # `packaging` library), so its modules are loaded from their files.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bd():
    return _load("mlabs_packaging_bundle_data", PACKAGING / "bundle_data.py")


@pytest.fixture(scope="module")
def build_script():
    return _load("mlabs_packaging_build", PACKAGING / "build.py")


@pytest.fixture(scope="module")
def make_icons():
    return _load("mlabs_packaging_make_icons", PACKAGING / "make_icons.py")


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def app_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


# ------------------------------------------------------------ what the app loads

LOOKUPS = {"resource_path", "resource_dir", "sample_image"}


def lookups_in(source: str, where: str = "<source>") -> list[tuple[str, str, tuple[str | None, ...]]]:
    """The resource lookups called in ``source``: (where:line, function, the path parts it asks for).

    A part that is not a string constant is None (a name chosen at run time);
    ``resource_dir("resources") / "samples"`` counts as asking for resources/samples.
    """
    tree = ast.parse(source)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name not in LOOKUPS:
            continue
        args = tuple(a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
                     for a in node.args)
        outer = node
        while (isinstance(parents.get(outer), ast.BinOp) and isinstance(parents[outer].op, ast.Div)
               and parents[outer].left is outer):
            right = parents[outer].right
            args += (right.value if isinstance(right, ast.Constant) and isinstance(right.value, str) else None,)
            outer = parents[outer]
        found.append((f"{where}:{node.lineno}", name, args))
    return found


def resource_requests() -> list[tuple[str, str, tuple[str | None, ...]]]:
    """Every call of the resource lookup in the app."""
    found = []
    for path in app_sources():
        if path.name != "resources.py":   # the lookup itself
            found += lookups_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return found


def requested_path(function: str, args: tuple[str | None, ...]) -> tuple[str, ...]:
    """The parts of the shipped path a call asks for, up to the first part chosen at run time."""
    if function == "sample_image":
        from mlabs_desktop.resources import sample_image
        import inspect

        default = inspect.signature(sample_image).parameters["name"].default
        parts: tuple[str | None, ...] = ("resources", "samples", args[0] if args else default)
    else:
        parts = args
    known = []
    for part in parts:
        if part is None:
            break
        known.extend(part.split("/"))
    return tuple(known)


def test_the_scan_finds_the_known_lookups():
    calls = {(name, args) for _where, name, args in resource_requests()}
    assert ("resource_dir", ("presets",)) in calls
    assert ("resource_path", ("resources", "icons", "mlabs-desktop.png")) in calls
    assert any(name == "sample_image" for name, _ in calls)
    snippet = 'a = resource_dir("resources") / "samples" / name\nb = resources.sample_image(x)'
    assert {(n, args) for _w, n, args in lookups_in(snippet)} == {
        ("resource_dir", ("resources", "samples", None)), ("sample_image", (None,))}


def test_every_resource_the_app_loads_is_bundled(bd):
    bundled_files = {src for src, _dest in bd.data_files()}
    bundled_folders = {folder for folder, _patterns in bd.DATA_FOLDERS}
    problems = []
    for where, function, args in resource_requests():
        parts = requested_path(function, args)
        if not parts:
            problems.append(f"{where}: {function}{args} names no shipped folder")
            continue
        rel = "/".join(parts)
        if (ROOT / rel).is_file():
            if rel not in bundled_files:
                problems.append(f"{where}: {rel} is loaded at run time but not bundled")
        elif (ROOT / rel).is_dir():
            # A folder asked for as a whole, or with a name chosen at run time: all of it ships.
            if not any(rel == f or rel.startswith(f + "/") or f.startswith(rel + "/") for f in bundled_folders):
                problems.append(f"{where}: folder {rel} is read at run time but not bundled")
            for file in (ROOT / rel).rglob("*"):
                if file.is_file() and file.suffix not in (".ico", ".icns"):
                    if file.relative_to(ROOT).as_posix() not in bundled_files:
                        problems.append(f"{where}: {file.relative_to(ROOT)} is in a folder the app reads "
                                        "but is not bundled")
        else:
            problems.append(f"{where}: {rel} does not exist in the checkout")
    assert not problems, "\n".join(problems)


def test_bundle_layout_matches_the_resource_lookup(bd, tmp_path, monkeypatch):
    """Lay the data files out as the spec does under a fake sys._MEIPASS: the lookup finds them there."""
    from mlabs_desktop import resources
    from mlabs_desktop.core.training import presets

    for src, dest in bd.data_files():
        target = tmp_path / dest / Path(src).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / src, target)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)

    for src, _dest in bd.data_files():
        assert resources.resource_path(*src.split("/")) == tmp_path / src
    for _where, function, args in resource_requests():
        rel = requested_path(function, args)
        assert resources.resource_path(*rel).is_relative_to(tmp_path), rel
    assert resources.sample_image() == tmp_path / "resources" / "samples" / resources.sample_image().name
    assert presets.shipped_dir() == tmp_path / "presets"
    shipped = {p.name for p in presets.list_presets() if p.shipped}
    assert shipped == {p.stem for p in (ROOT / "presets").glob("*.yaml")}


def test_data_folders_keep_the_source_layout(bd):
    assert {folder.split("/")[0] for folder, _ in bd.DATA_FOLDERS} <= set(
        __import__("mlabs_desktop.resources", fromlist=["x"]).RESOURCE_FOLDERS)
    for src, dest in bd.data_files():
        assert Path(src).parent.as_posix() == dest


# ------------------------------------------------------------ spec and build script

def _spec_calls() -> dict[str, ast.Call]:
    tree = ast.parse(SPEC.read_text(encoding="utf-8"), str(SPEC))
    calls = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id[0].isupper():
            calls.setdefault(node.func.id, node)
    return calls


def _keyword(call: ast.Call, name: str) -> ast.expr:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    raise AssertionError(f"{call.func.id}() in the spec has no {name}=")


def test_spec_takes_its_lists_from_bundle_data():
    calls = _spec_calls()
    analysis = calls["Analysis"]
    assert ast.unparse(_keyword(analysis, "datas")) == "bd.pyinstaller_datas()"
    assert ast.unparse(_keyword(analysis, "hiddenimports")) == "bd.hidden_imports()"
    assert "bd.EXCLUDED_MODULES" in ast.unparse(_keyword(analysis, "excludes"))
    assert "launcher.py" in ast.unparse(analysis.args[0])
    assert "bd.keep_file" in SPEC.read_text(encoding="utf-8")


def test_spec_builds_a_windowed_one_folder_app(bd):
    calls = _spec_calls()
    exe = calls["EXE"]
    assert ast.literal_eval(_keyword(exe, "console")) is False
    assert ast.literal_eval(_keyword(exe, "exclude_binaries")) is True   # one folder, not one file
    assert ast.unparse(_keyword(exe, "name")) == "bd.EXE_NAME"
    assert ast.unparse(_keyword(calls["COLLECT"], "name")) == "bd.EXE_NAME"
    assert ast.unparse(_keyword(calls["BUNDLE"], "bundle_identifier")) == "bd.APP_ID"


def test_launcher_pins_the_tensorflow_backend():
    tree = ast.parse((PACKAGING / "launcher.py").read_text(encoding="utf-8"))
    source = ast.unparse(tree)
    assert "os.environ['KERAS_BACKEND'] = 'tensorflow'" in source
    assert "from mlabs_desktop.cli.main import main" in source


def test_lazily_imported_gui_modules_are_hidden_imports(bd):
    hidden = set(bd.hidden_imports())
    lazy = set()
    for path in app_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    module = f"{base}.{node.module}" if node.module else base
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlabs_desktop"):
                    module = node.module
                else:
                    continue
                if (ROOT / Path(*module.split("."))).with_suffix(".py").exists():
                    lazy.add(module)
    assert {"mlabs_desktop.gui.train.view", "mlabs_desktop.gui.stylize.view",
            "mlabs_desktop.gui.dialogs.settings"} <= lazy
    assert lazy <= hidden, sorted(lazy - hidden)
    assert "mlabs_desktop.gui.main_window" in hidden and "mlabs_desktop.cli.main" in hidden


def test_trimming_keeps_what_the_app_imports(bd):
    """No module the app imports at module level, and no Qt module it uses, is excluded from the bundle."""
    excluded = set(bd.EXCLUDED_MODULES)
    used_qt, top_level = set(), set()
    for path in app_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("PySide6."):
                    used_qt.add(name)
        for node in tree.body:   # module level: runs whenever the module is imported
            if isinstance(node, ast.Import):
                top_level.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                top_level.add(node.module)
    assert used_qt and not used_qt & excluded, sorted(used_qt & excluded)
    blocked = {m for m in top_level for ex in excluded if m == ex or m.startswith(ex + ".")}
    assert not blocked, sorted(blocked)


def test_keep_file_trims_only_unused_parts(bd):
    keep = bd.keep_file
    for dropped in ("PySide6/Qt/lib/libQt6WebEngineCore.so.6", "PySide6/Qt/translations/qtbase_de.qm",
                    "tensorflow/include/tensorflow/core/framework/tensor.h", "PySide6/Qt/lib/libQt6Pdf.so.6",
                    "PySide6/Qt/plugins/imageformats/libqpdf.so", "numpy/_core/tests/data/x.csv"):
        assert not keep(dropped), dropped
    for kept in ("PySide6/Qt/lib/libQt6Widgets.so.6", "PySide6/Qt/lib/libQt6Charts.so.6",
                 "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqoffscreen.so",
                 "PySide6/Qt/plugins/imageformats/libqjpeg.so", "tensorflow/libtensorflow_cc.so.2",
                 "tensorflow/lite/python/_pywrap_tensorflow_interpreter_wrapper.so",
                 "tensorflow/python/_pywrap_tensorflow_internal.so"):
        assert keep(kept), kept
    for src, _dest in bd.data_files():   # the app's own data is never trimmed
        assert keep(src), src


def test_build_script_checks_the_files_the_spec_bundles(bd, build_script, tmp_path):
    dist = tmp_path / "dist"
    internal = build_script.internal_dir(dist)
    for src, dest in bd.data_files():
        (internal / dest).mkdir(parents=True, exist_ok=True)
        (internal / src).write_bytes(b"x")
    build_script.check_data_files(dist)
    (internal / bd.data_files()[0][0]).unlink()
    with pytest.raises(build_script.BuildError, match="missing"):
        build_script.check_data_files(dist)
    if sys.platform.startswith("linux"):
        assert build_script.executable(dist) == dist / "mlabs-desktop" / "mlabs-desktop"
        assert internal == dist / "mlabs-desktop" / "_internal"


def test_build_script_self_test_is_offscreen_and_fails_the_build():
    source = (PACKAGING / "build.py").read_text(encoding="utf-8")
    assert 'QT_QPA_PLATFORM="offscreen"' in source and '"--self-test"' in source
    assert "proc.returncode != 0" in source


# ------------------------------------------------------------ no console in windowed builds

_GUARDS = ("sys.stdout is not None", "sys.stderr is not None", "sys.stdout is None", "sys.stderr is None")


def _console_writes(tree: ast.AST):
    """Calls that write to the console: print() without a file, sys.std*.write, StreamHandler(), ..."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        text = ast.unparse(node.func)
        file_arg = next((k.value for k in node.keywords if k.arg == "file"), None)
        if text == "print" and (file_arg is None or ast.unparse(file_arg) in ("sys.stdout", "sys.stderr")):
            yield node
        elif re.fullmatch(r"sys\.(stdout|stderr)\.\w+", text):
            yield node
        elif text in ("logging.StreamHandler", "StreamHandler") and (
                not node.args or ast.unparse(node.args[0]) in ("sys.stdout", "sys.stderr")):
            yield node
        elif text in ("traceback.print_exc", "traceback.print_exception", "faulthandler.enable") and \
                file_arg is None:
            yield node


def test_console_output_checks_the_console_exists():
    """A windowed build has sys.stdout and sys.stderr set to None: every write must check first."""
    offenders = []
    for path in app_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for call in _console_writes(tree):
            owners = [f for f in functions if f.lineno <= call.lineno <= f.end_lineno]
            guarded = any(guard in ast.unparse(owner) for owner in owners for guard in _GUARDS)
            if not guarded:
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}: {ast.unparse(call)[:80]}")
    assert not offenders, "unguarded console writes:\n" + "\n".join(offenders)
