"""Shared test set-up: offscreen Qt, an isolated user-data home, quiet TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest


def pytest_configure(config: pytest.Config) -> None:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own MLABS_DESKTOP_HOME: library, cache and config never leak."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MLABS_DESKTOP_HOME", str(home))
    return home
