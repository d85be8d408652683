"""bfloat16 where it is faster: AMX without timing, AVX512-BF16 alone timed once and remembered per CPU."""

from __future__ import annotations

import json
import math

import pytest

from mlabs_desktop.core.hardware import bfloat16_speed, cpu_info
from mlabs_desktop.core.hardware.devices import DeviceInfo
from mlabs_desktop.core.networks.precision import training_precision
from mlabs_desktop.core.paths import cache_dir

CPU = DeviceInfo("cpu", "CPU")


@pytest.fixture
def avx512_bf16_alone(monkeypatch):
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(cpu_info, "cpu_has_amx_bfloat16", lambda: False)


def _timed_at(monkeypatch, speedup: float) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(bfloat16_speed, "measure_speedup", lambda: calls.append(1) or speedup)
    return calls


def test_without_bfloat16_or_with_amx_nothing_is_timed(monkeypatch):
    calls = _timed_at(monkeypatch, 5.0)
    assert not bfloat16_speed.cpu_bfloat16_pays()  # conftest: no bfloat16
    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)  # with AMX (conftest)
    assert bfloat16_speed.cpu_bfloat16_pays() and training_precision(CPU) == "mixed_bfloat16"
    assert not calls


def test_avx512_bf16_alone_is_timed_once_and_kept(avx512_bf16_alone, monkeypatch):
    calls = _timed_at(monkeypatch, 0.6)  # oneDNN held to AVX512-BF16 on a Xeon (docs/decisions)
    assert bfloat16_speed.known_cpu_bfloat16_pays() is None
    assert training_precision(CPU) == "float32"
    assert not bfloat16_speed.cpu_bfloat16_pays()
    assert bfloat16_speed.known_cpu_bfloat16_pays() is False and len(calls) == 1
    kept = json.loads((cache_dir() / bfloat16_speed.VERDICTS_FILE).read_text())
    assert [entry["speedup"] for entry in kept.values()] == [0.6]


def test_where_it_is_faster_it_is_used(avx512_bf16_alone, monkeypatch):
    _timed_at(monkeypatch, 1.8)
    assert training_precision(CPU) == "mixed_bfloat16"
    assert training_precision(CPU, "float32") == "float32"


def test_a_verdict_belongs_to_its_cpu(avx512_bf16_alone, monkeypatch):
    calls = _timed_at(monkeypatch, 1.8)
    assert bfloat16_speed.cpu_bfloat16_pays()
    monkeypatch.setattr(cpu_info, "cpu_model", lambda: "Another CPU")
    assert bfloat16_speed.known_cpu_bfloat16_pays() is None
    assert bfloat16_speed.cpu_bfloat16_pays() and len(calls) == 2


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"x": "y"}', "[" * 200_000])
def test_an_unreadable_file_is_timed_again(avx512_bf16_alone, monkeypatch, text):
    (cache_dir() / bfloat16_speed.VERDICTS_FILE).write_text(text)
    calls = _timed_at(monkeypatch, 1.8)
    assert bfloat16_speed.cpu_bfloat16_pays() and len(calls) == 1


def test_the_timing_runs_both_precisions_on_this_machine():
    speedup = bfloat16_speed.measure_speedup()
    assert math.isfinite(speedup) and speedup > 0
