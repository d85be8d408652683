"""Shared by the crash tests: run the real command line, SIGKILL it inside a write, check what is left.

A kill lands in the dangerous window on purpose, not by luck: `measure_window`
times one uninterrupted run of the command in this process (from the moment its
hidden temporary appears to the end), and `kill_inside_window` starts the same
command in a fresh process, waits for that process's own temporary to appear
and kills it a chosen fraction of the measured window later.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
# Hidden names `core.atomic` gives temporaries and staging folders (and the pre-pid staging form).
TEMPORARY = re.compile(r"^\..+\.pid\d+-[a-z0-9_]+\.part$|^\.staging-")
POLL_SECONDS = 0.0005


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment (its MLABS_DESKTOP_HOME too), plus ``env``, for a command-line subprocess."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}


def start_cli(args: list[str], env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen([sys.executable, "-m", "mlabs_desktop", *args], text=True, env=cli_env(env), **popen)


def run_cli_here(args: list[str]) -> int:
    """The command line's own entry point, in this process (TensorFlow is already loaded here)."""
    from mlabs_desktop.cli.main import main

    return main(args)


def temporaries(folder: Path) -> list[str]:
    """Names in ``folder`` that are temporaries or staging folders of `core.atomic`."""
    return sorted(p.name for p in folder.iterdir() if TEMPORARY.match(p.name)) if folder.is_dir() else []


def _appeared(folder: Path, prefix: str) -> bool:
    try:
        return any(name.startswith(prefix) for name in os.listdir(folder))
    except FileNotFoundError:
        return False


def _temporary_prefix(label: str, pid: int) -> str:
    return f".{label}.pid{pid}-"


def measure_window(args: list[str], folder: Path, label: str) -> float:
    """Run ``args`` here, uninterrupted; seconds from its temporary for ``label`` appearing to the end."""
    seen: list[float] = []
    done = threading.Event()
    prefix = _temporary_prefix(label, os.getpid())

    def watch() -> None:
        while not done.is_set():
            if _appeared(folder, prefix):
                seen.append(time.monotonic())
                return
            time.sleep(POLL_SECONDS)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(POLL_SECONDS)  # let the watcher run while the command holds the GIL
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        code = run_cli_here(args)
        end = time.monotonic()
    finally:
        done.set()
        watcher.join()
        sys.setswitchinterval(switch)
    assert code == 0, f"{args} failed uninterrupted"
    return end - seen[0] if seen else 0.0


@dataclass
class KillRound:
    """One SIGKILL of a command line inside its write."""

    args: list[str]
    delay: float
    returncode: int

    @property
    def killed(self) -> bool:  # False: it had finished before the kill was due
        return self.returncode == -signal.SIGKILL


def kill_inside_window(args: list[str], folder: Path, label: str, delay: float,
                       env: dict[str, str] | None = None, timeout: float = 300.0) -> KillRound:
    """Start ``args``; ``delay`` s after its temporary for ``label`` appears in ``folder``, SIGKILL it."""
    proc = start_cli(args, env)
    prefix = _temporary_prefix(label, proc.pid)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not _appeared(folder, prefix):
            assert time.monotonic() < deadline, f"{args}: no temporary {prefix}* appeared in {folder}"
            time.sleep(POLL_SECONDS)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode in (0, -signal.SIGKILL), f"{args} failed by itself (exit {proc.returncode})"
    return KillRound(args, delay, proc.returncode)


def spread(window: float, rounds: int, seed: int) -> list[float]:
    """``rounds`` random delays, one in each equal slice of [0, window]."""
    rng = random.Random(seed)
    width = window / rounds
    return [width * (i + rng.random()) for i in range(rounds)]


# ------------------------------------------------------------------ library checks

def assert_every_model_loads(library) -> list:
    """Every listed model's weights load into its network; return the models."""
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import assign

    nets: dict[str, object] = {}
    models = library.models()
    for model in models:
        arch = model.manifest.architecture
        if arch not in nets:
            nets[arch] = build_transform_network(arch)
        assign(nets[arch], model.load_weights(), f"model '{model.name}'")  # checks every shape and value
    return models


def assert_no_temporaries_in_library(library) -> None:
    """Opening the library swept what a killed process left behind."""
    from mlabs_desktop.core.library.store import Library, PREVIEWS

    library = Library(library.root)  # opening it sweeps
    left = temporaries(library.root)
    for folder in library.root.iterdir():
        if not folder.name.startswith("."):
            left += [f"{folder.name}/{n}" for n in temporaries(folder) + temporaries(folder / PREVIEWS)]
    assert not left, left


# ------------------------------------------------------------------ training runs

class EventReader:
    """The JSON progress lines of a training subprocess, each with the time it arrived."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put((time.monotonic(), json.loads(line)))

    def poll(self, timeout: float = 0.005) -> tuple[float, dict] | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def ended(self) -> bool:  # the output read to its end, every line taken
        return not self.reader.is_alive() and self.lines.empty()


def start_training(args: list[str]) -> EventReader:
    return EventReader(start_cli([*args, "--progress=json"], stdout=subprocess.PIPE))


def kill_when(reader: EventReader, due: Callable[[dict, float], float | None]) -> tuple[int, bool]:
    """Feed events to ``due(event, arrived)`` until it names a time; SIGKILL then.

    Return the last step the run reported and whether the kill found it still
    running (False: it ended first).
    """
    last, kill_at = 0, None

    def see(arrived: float, event: dict) -> None:
        nonlocal last, kill_at
        last = event["step"] if event["event"] == "step" else last
        when = due(event, arrived)
        kill_at = when if kill_at is None else kill_at

    while kill_at is None or time.monotonic() < kill_at:
        item = reader.poll()
        if item is not None:
            see(*item)
        elif reader.ended:
            break
    reader.proc.send_signal(signal.SIGKILL)
    reader.proc.wait(timeout=30)
    reader.reader.join(timeout=30)
    while (item := reader.poll(0)) is not None:  # reported just before the kill
        see(*item)
    return last, reader.proc.returncode == -signal.SIGKILL
