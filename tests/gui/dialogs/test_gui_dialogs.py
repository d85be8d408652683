"""The Settings and GPU status dialogs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml
from PySide6.QtWidgets import QDialog

from mlabs_desktop.core import paths
from mlabs_desktop.core.hardware import devices
from mlabs_desktop.core.hardware.devices import DeviceInfo
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.settings import load_settings
from mlabs_desktop.gui.kit.services import Services

from conftest import SAMPLES
from gui_helpers import no_thread_leaks  # noqa: F401 - fixture
from test_gui_shell import fake_devices, temp_qsettings  # noqa: F401 - the shell's autouse fixtures


@pytest.fixture
def settings_dialog(qtbot):
    from mlabs_desktop.gui.dialogs.settings import SettingsDialog

    dialog = SettingsDialog(Services())
    qtbot.addWidget(dialog)
    yield dialog
    dialog.workers.stop()


def test_settings_dialog_saves_yaml(settings_dialog, qtbot, tmp_path: Path):
    from mlabs_desktop.core.training.presets import list_presets

    dialog = settings_dialog
    preset = list_presets()[-1].name
    dialog.library_edit.setText(str(tmp_path / "my-library"))
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.preset_combo.setCurrentIndex(dialog.preset_combo.findData(preset))
    dialog.save()
    assert dialog.result() == QDialog.DialogCode.Accepted
    saved = yaml.safe_load((paths.config_dir() / "settings.yaml").read_text())
    assert saved["library_dir"] == str(tmp_path / "my-library")
    assert saved["default_device"] == "cpu" and saved["default_preset"] == preset
    assert load_settings().default_device == "cpu"
    assert Library().root == tmp_path / "my-library"


def test_settings_dialog_explains_invalid_choices(settings_dialog, tmp_path: Path):
    dialog = settings_dialog
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    dialog.library_edit.setText(str(a_file))
    dialog.vgg_edit.setText(str(tmp_path / "missing.h5"))
    dialog.save()
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert "not a folder" in dialog.library_note.text() and not dialog.library_note.isHidden()
    assert "does not exist" in dialog.vgg_status.text()
    assert not (paths.config_dir() / "settings.yaml").exists()


def test_settings_dialog_checks_vgg_file(settings_dialog, qtbot, vgg_h5: Path):
    dialog = settings_dialog
    dialog.vgg_edit.setText(str(vgg_h5))
    dialog.check_vgg()
    qtbot.waitUntil(lambda: dialog.vgg_valid is True, timeout=20_000)
    assert dialog.vgg_status.text().startswith("✓ Valid VGG19 weights")
    dialog.vgg_edit.setText(str(SAMPLES / "chelsea.jpg"))
    dialog.check_vgg()
    qtbot.waitUntil(lambda: dialog.vgg_valid is False, timeout=10_000)
    assert "not a VGG19 weights file" in dialog.vgg_status.text()
    dialog.save()
    assert dialog.result() != QDialog.DialogCode.Accepted


def test_settings_dialog_downloads_weights(settings_dialog, qtbot, monkeypatch):
    from http_server import LocalHTTPServer
    from mlabs_desktop.core.transfer import http as http_transfer
    from mlabs_desktop.core.networks import loss_network as vgg
    from mlabs_desktop.gui.dialogs import settings as module

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(http_transfer, "RETRY_BACKOFF_S", 0.01)
    body = os.urandom(200_000)
    with LocalHTTPServer() as server:
        url = server.route("/vgg19.h5", body=body)
        monkeypatch.setattr(module, "VGG_DOWNLOAD", (url, hashlib.md5(body).hexdigest(), len(body)))
        dialog = settings_dialog
        dialog.download_vgg()
        target = paths.weights_dir() / vgg.KERAS_VGG19_FILENAME
        qtbot.waitUntil(lambda: dialog.vgg_edit.text() == str(target), timeout=20_000)
        assert target.read_bytes() == body
        # Random bytes are not VGG19 weights: the check after the download says so in red.
        qtbot.waitUntil(lambda: dialog.vgg_valid is False, timeout=10_000)
        assert dialog.download_button.isEnabled()


@pytest.mark.parametrize("gpu", [False, True])
def test_gpu_status_dialog(qtbot, fake_devices, gpu: bool):
    from mlabs_desktop.gui.dialogs.gpu_status import GpuStatusDialog

    if gpu:
        fake_devices.insert(0, DeviceInfo("gpu", "Fake RTX", 0, (8, 9)))
    dialog = GpuStatusDialog(Services().devices)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "found" in dialog.summary.text().lower(), timeout=5000)
    assert ("Fake RTX" in dialog.device_list.text()) == gpu
    assert dialog.hint.isHidden() == gpu
    if not gpu:
        assert devices.no_gpu_hint()[:20] in dialog.hint.text()
    dialog.reject()
