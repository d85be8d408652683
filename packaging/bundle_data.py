"""What goes into the PyInstaller bundle: the one list the spec, the build script and the tests share.

Pure standard library and no imports of the app, so PyInstaller's spec, the
build script and ``tests/test_packaging.py`` can all load it cheaply.

Data files keep the layout of the source checkout (``presets/...``,
``resources/...``) under the bundle's ``sys._MEIPASS``, which
``mlabs_desktop.resources.resource_path`` searches first, so the bundle finds
them exactly as a source install does.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mlabs_desktop"

APP_NAME = "MachineLabs Desktop"         # window title, installer and menu name
EXE_NAME = "mlabs-desktop"               # executable and bundle folder name
APP_ID = "io.machinelabs.Desktop"        # reverse-DNS id: AppStream, macOS bundle identifier
PUBLISHER = "MachineLabs"
ICON_BASENAME = "mlabs-desktop"

# (folder, file patterns): every folder the app reads through resource_path /
# resource_dir / sample_image. Each file goes to the same folder in the bundle.
DATA_FOLDERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("presets", ("*.yaml",)),
    ("resources/samples", ("*.jpg", "*.jpeg", "*.png")),
    # The window icon (mlabs-desktop.png) and its sizes; .ico/.icns are only
    # the executable's icon, so they stay out of the data.
    ("resources/icons", ("*.png", "*.svg")),
    ("resources/guide", ("*.md",)),          # Help > Getting started
)

# ------------------------------------------------------------------ trimming
# Python modules the app never imports in the bundle. The bundle runs Keras on
# TensorFlow only (the launcher pins KERAS_BACKEND), so the other backends go.
EXCLUDED_MODULES: tuple[str, ...] = (
    # other Keras backends and their stacks
    "torch", "torchvision", "torchaudio", "jax", "jaxlib", "flax", "triton",
    # development and notebook tools that optional imports drag in
    "IPython", "ipykernel", "jupyter_client", "matplotlib", "pandas", "tkinter", "_tkinter",
    "pytest", "_pytest", "pytest_qt", "pytestqt", "hypothesis", "pydoc_data", "lib2to3",
    "tensorboard", "tensorboard_data_server", "portpicker",
    # the tests run exported ONNX models in onnxruntime; the app only writes and reads ONNX files
    "onnxruntime",
    # only TensorFlow's debugger and RPC servers use grpc; only urllib3's optional pyOpenSSL
    # support uses cryptography (downloads use the standard ssl module)
    "grpc", "cryptography", "OpenSSL",
    # SciPy: the app reads MatConvNet .mat files with scipy.io, which needs scipy.sparse
    # (and, lazily, linalg/special); nothing else of SciPy is used
    "scipy.optimize", "scipy.stats", "scipy.spatial", "scipy.interpolate", "scipy.integrate",
    "scipy.signal", "scipy.ndimage", "scipy.odr", "scipy.cluster", "scipy.datasets", "scipy.differentiate",
    "scipy.misc",
    # test suites shipped inside libraries
    # (TensorFlow's own modules all stay: `import tensorflow` loads tf.lite, tf.debugging,
    # the profiler and the MLIR converter eagerly.)
    "numpy.tests", "numpy.testing.tests", "scipy.tests", "tensorflow.python.kernel_tests",
    # Qt bindings the app does not use (it uses QtCore, QtGui, QtWidgets and QtCharts; the Qt
    # libraries those link to stay, only the unused Python bindings go)
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebEngineQuick",
    "PySide6.QtWebChannel", "PySide6.QtWebSockets", "PySide6.QtWebView",
    "PySide6.QtQuick", "PySide6.QtQuick3D", "PySide6.QtQuickControls2", "PySide6.QtQuickWidgets",
    "PySide6.QtQuickTest", "PySide6.QtQml",
    "PySide6.Qt3DAnimation", "PySide6.Qt3DCore", "PySide6.Qt3DExtras", "PySide6.Qt3DInput",
    "PySide6.Qt3DLogic", "PySide6.Qt3DRender",
    "PySide6.QtMultimedia", "PySide6.QtMultimediaWidgets", "PySide6.QtSpatialAudio",
    "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtDesigner", "PySide6.QtUiTools", "PySide6.QtHelp",
    "PySide6.QtBluetooth", "PySide6.QtNfc", "PySide6.QtSensors", "PySide6.QtSerialPort",
    "PySide6.QtSerialBus", "PySide6.QtLocation", "PySide6.QtPositioning", "PySide6.QtRemoteObjects",
    "PySide6.QtScxml", "PySide6.QtStateMachine", "PySide6.QtTextToSpeech", "PySide6.QtSql",
    "PySide6.QtTest", "PySide6.QtDataVisualization", "PySide6.QtGraphs", "PySide6.QtGraphsWidgets",
    "PySide6.QtHttpServer", "PySide6.QtNetworkAuth", "PySide6.QtAxContainer", "PySide6.QtCanvasPainter",
    "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtNetwork", "PySide6.QtDBus",
    "PySide6.scripts",
)

# Files (paths inside the bundle's _internal folder, '/'-separated, fnmatch
# patterns) dropped after analysis: shared libraries pulled in by plugins the
# app never loads, headers, and Qt translations (the app loads none).
EXCLUDED_FILES: tuple[str, ...] = (
    # C/C++ headers and static libraries
    "*/include/*", "*.h", "*.hpp", "*.a", "*.lib", "*.pyi",
    # Qt: web engine, QML/Quick, 3D, multimedia, PDF, designer, ... and their plugins
    "*libQt6WebEngine*", "*Qt6WebEngine*", "*QtWebEngineProcess*", "*/resources/qtwebengine*",
    "*libQt6Quick*", "*libQt6Qml*", "*/Qt/qml/*", "*libQt63D*", "*libQt6Multimedia*",
    "*libQt6SpatialAudio*", "*libQt6Pdf*", "*libQt6Designer*", "*libQt6Bluetooth*", "*libQt6Sensors*",
    "*libQt6SerialPort*", "*libQt6Location*", "*libQt6Positioning*", "*libQt6VirtualKeyboard*",
    "*/plugins/multimedia/*", "*/plugins/qmltooling/*", "*/plugins/sceneparsers/*",
    "*/plugins/renderers/*", "*/plugins/geometryloaders/*", "*/plugins/position/*",
    "*/plugins/sensors/*", "*/plugins/texttospeech/*", "*/plugins/designer/*",
    "*/plugins/imageformats/libqpdf*", "*/plugins/platforminputcontexts/libqtvirtualkeyboard*",
    # Qt translations: the app installs no QTranslator (its UI is English), so none are loaded
    "*/translations/*",
    # TensorFlow: C++ headers (430 MB; PyInstaller's hook leaves them out too) and the StableHLO
    # Python extension (26 MB), which only JAX interop imports
    "tensorflow/include/*", "tensorflow/compiler/mlir/stablehlo/stablehlo_extension*",
    # test data of any library
    "*/tests/*", "*/test/*",
)

def _read_version() -> str:
    text = (ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise RuntimeError(f"no __version__ in {PACKAGE}/__init__.py")


VERSION = _read_version()


def data_files(root: Path = ROOT) -> list[tuple[str, str]]:
    """Every data file to bundle, as ``(file relative to root, folder inside the bundle)``.

    The second item is what PyInstaller's ``datas`` wants: the destination folder,
    here identical to the source folder, so ``resource_path`` works unchanged.
    """
    files = []
    for folder, patterns in DATA_FOLDERS:
        base = root / folder
        if not base.is_dir():
            raise FileNotFoundError(f"data folder missing from the checkout: {folder}")
        for path in sorted(base.iterdir()):
            if path.is_file() and any(fnmatch.fnmatch(path.name, p) for p in patterns):
                files.append((path.relative_to(root).as_posix(), folder))
    return files


def pyinstaller_datas(root: Path = ROOT) -> list[tuple[str, str]]:
    """``data_files`` with absolute sources, ready for ``Analysis(datas=...)``."""
    return [(str(root / source), dest) for source, dest in data_files(root)]


def package_modules(root: Path = ROOT) -> list[str]:
    """Every module of the app package, found on disk.

    The spec lists them all as hidden imports: the Train and Stylize views, the
    settings dialog and others are imported inside functions (a broken view
    becomes a placeholder instead of stopping the app), and a module left out of
    the bundle would turn into that placeholder silently.
    """
    modules = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        modules.append(".".join(parts))
    return modules


# Imported by name at run time (strings, plugins), which PyInstaller's analysis cannot see.
EXTRA_HIDDEN_IMPORTS: tuple[str, ...] = (
    "keras.src.backend.tensorflow",
    "scipy.io.matlab",              # MatConvNet VGG weights (.mat)
    "h5py.defs", "h5py.utils", "h5py.h5ac", "h5py._proxy",   # Keras notop VGG weights (.h5)
)


def hidden_imports(root: Path = ROOT) -> list[str]:
    return package_modules(root) + list(EXTRA_HIDDEN_IMPORTS)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def keep_file(dest: str) -> bool:
    """Whether a file (its path inside the bundle) stays when trimming."""
    dest = dest.replace("\\", "/")
    # Data files of the app itself are never trimmed.
    if any(dest.startswith(folder + "/") for folder, _ in DATA_FOLDERS):
        return True
    return not _matches(dest, EXCLUDED_FILES)


def app_version_tuple() -> tuple[int, int, int, int]:
    """VERSION as four integers (Windows version resources want that)."""
    numbers = [int(n) for n in re.findall(r"\d+", VERSION)[:4]]
    return tuple((numbers + [0, 0, 0, 0])[:4])  # type: ignore[return-value]
