"""The packaged app's identity agrees everywhere: pyproject.toml, the GUI, the icons, and the
Linux (desktop entry, AppStream) and Windows (Inno Setup) metadata name the same app and version.

The spec, build script and resource layout are checked in test_packaging.py.
"""

from __future__ import annotations

import configparser
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from test_packaging import PACKAGING, ROOT, bd, make_icons, pyproject  # noqa: F401 - bd, make_icons are fixtures


# ------------------------------------------------------------ versions and names

def test_versions_agree(bd):
    import mlabs_desktop

    project = pyproject()["project"]
    assert project["version"] == mlabs_desktop.__version__ == bd.VERSION
    assert any("pyinstaller" in req.lower() for req in project["optional-dependencies"]["packaging"])
    assert project["scripts"][bd.EXE_NAME] == "mlabs_desktop.cli.main:main"


def test_app_name_matches_the_gui(bd):
    from mlabs_desktop.gui import app

    assert app.APPLICATION == bd.APP_NAME


# ------------------------------------------------------------ icons

def test_icons_exist_in_every_format(make_icons):
    from PIL import Image

    svg = ET.parse(make_icons.SOURCE).getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 1024 1024"
    for path in make_icons.output_files():
        assert path.is_file(), f"{path.name} missing: run python packaging/make_icons.py"
    for size in make_icons.SIZES:
        with Image.open(make_icons.ICONS / f"mlabs-desktop-{size}.png") as image:
            assert image.format == "PNG" and image.size == (size, size) and image.mode == "RGBA"
    with Image.open(make_icons.ICONS / "mlabs-desktop.png") as image:
        assert image.size == (make_icons.WINDOW_ICON_SIZE,) * 2
    with Image.open(make_icons.ICONS / "mlabs-desktop.ico") as ico:
        assert ico.format == "ICO" and {(s, s) for s in make_icons.ICO_SIZES} <= set(ico.info["sizes"])
    with Image.open(make_icons.ICONS / "mlabs-desktop.icns") as icns:
        assert icns.format == "ICNS"
        assert {s for s, _s2, _scale in icns.info["sizes"]} >= {16, 32, 128, 256, 512}


def test_the_window_icon_is_bundled(bd):
    from mlabs_desktop.resources import resource_path

    assert "resources/icons/mlabs-desktop.png" in {src for src, _ in bd.data_files()}
    assert resource_path("resources", "icons", "mlabs-desktop.png").is_file()


# ------------------------------------------------------------ Linux metadata

def test_desktop_file_is_well_formed(bd):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str   # keys are case-sensitive
    parser.read(PACKAGING / "linux" / "mlabs-desktop.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == bd.APP_NAME
    assert entry["Exec"].split()[0] == bd.EXE_NAME
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and "Graphics" in entry["Categories"].split(";")
    assert (ROOT / "resources" / "icons" / f"{entry['Icon']}-256.png").is_file()


def test_appstream_metadata_is_well_formed(bd):
    root = ET.parse(PACKAGING / "linux" / f"{bd.APP_ID}.metainfo.xml").getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == bd.APP_ID
    assert root.findtext("name") == bd.APP_NAME
    assert root.findtext("project_license") == pyproject()["project"]["license"]["text"]
    launchable = root.find("launchable")
    assert launchable is not None and (PACKAGING / "linux" / launchable.text).is_file()
    assert root.findtext("provides/binary") == bd.EXE_NAME
    assert root.findtext("icon") == "mlabs-desktop"
    release = root.find("releases/release")
    assert release is not None and release.get("version") == pyproject()["project"]["version"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", release.get("date", ""))
    assert root.find("description/p") is not None


# ------------------------------------------------------------ Windows installer

def _inno() -> tuple[dict[str, str], dict[str, list[str]]]:
    """The #define values and the [Section] lines of the Inno Setup script."""
    defines: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for raw in (PACKAGING / "windows" / "mlabs-desktop.iss").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        match = re.fullmatch(r'#define\s+(\w+)\s+"([^"]*)"', line)
        if match:
            defines.setdefault(match[1], match[2])
        elif re.fullmatch(r"\[\w+\]", line):
            current = line[1:-1]
            sections[current] = []
        elif current and not line.startswith("#"):
            sections[current].append(line)
    return defines, sections


def test_inno_setup_script_names_the_same_app_and_version(bd):
    defines, sections = _inno()
    assert defines["AppName"] == bd.APP_NAME
    assert defines["AppVersion"] == pyproject()["project"]["version"]
    assert defines["AppExeName"] == f"{bd.EXE_NAME}.exe"
    assert defines["BundleName"] == bd.EXE_NAME
    setup = dict(line.split("=", 1) for line in sections["Setup"])
    assert setup["AppName"] == "{#AppName}" and setup["AppVersion"] == "{#AppVersion}"
    assert re.fullmatch(r"\{\{[0-9A-F-]{36}\}", setup["AppId"])
    icon = PACKAGING / "windows" / Path(*setup["SetupIconFile"].split("\\"))
    assert icon.resolve() == (ROOT / "resources" / "icons" / "mlabs-desktop.ico").resolve()
    dist = PACKAGING / "windows" / Path(*defines["DistDir"].split("\\"))
    assert dist.resolve() == (ROOT / "dist").resolve()   # build.py's default output folder
    assert any("{#DistDir}\\{#BundleName}\\*" in line for line in sections["Files"])
