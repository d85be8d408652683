"""The bench's start-up probe: a fresh interpreter shows the main window, and says whether TensorFlow came first."""

from __future__ import annotations

from mlabs_desktop.gui.startup_probe import measure_startup


def test_the_probe_times_a_fresh_window():
    result = measure_startup(1)
    assert 0 < result["window_shown_seconds"] < 120
    assert result["tensorflow_imported_before_window"] is False
