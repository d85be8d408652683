"""SIGKILL inside `export` (every format), `import` and `import-checkpoint` leaves the library
consistent and the target complete or absent, never half written; the same command then succeeds.

Each operation is first run uninterrupted in this process to measure its write
window (from its hidden temporary appearing to the end); then the real command
line runs in fresh processes that are killed at random moments spread over that
window. Exports overwrite an earlier export of another model, so what is left
must be exactly one of the two.
"""

from __future__ import annotations

import shutil
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from crash_helpers import (KillRound, assert_every_model_loads, assert_no_temporaries_in_library, kill_inside_window,
                           measure_window, run_cli_here, spread, temporaries)

from mlabs_desktop.core.formats.bundle_writer import export_bundle

ROUNDS = 1  # kills per operation, each at a random point of its measured write window (suite time)
IMAGE = np.random.default_rng(5).uniform(0, 255, (20, 24, 3)).astype(np.float32)


@dataclass
class Operation:
    """One command: run once measured, ROUNDS times killed, then once more to completion."""

    name: str
    home: Path
    args: Callable[[str], list[str]]   # by round tag: "measured", "kill-1", ..., "rerun"
    folder: Path                       # where its temporary appears
    label: Callable[[str], str]        # the temporary's name, by round tag
    check: Callable[[str], None]       # after a round: what must hold (the tag says which round)
    window: float = 0.0
    rounds: list[KillRound] = field(default_factory=list)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Two lite and two classic models with different random weights, a bundle and a reference checkpoint."""
    from test_bundles import make_model

    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.formats.reference_writer import write_reference_checkpoint
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    root = tmp_path_factory.mktemp("crash-saving")
    library = Library(root / "library")
    kinds = (("A", "lite", 1), ("B", "lite", 2), ("C1", "classic", 3), ("C2", "classic", 4))
    models = {name: make_model(library, name, arch, seed=seed) for name, arch, seed in kinds}
    export_bundle(models["A"], root / "share.mlstyle")
    write_reference_checkpoint(models["C1"], root / "reference")
    outputs = {name: np.clip(Stylizer(models[name], "cpu").run(IMAGE), 0, 255) for name in ("A", "B")}
    return root, models, outputs


def _home(tmp_path: Path, name: str, models: dict, wanted: tuple[str, ...]) -> Path:
    home = tmp_path / name
    for key in wanted:
        shutil.copytree(models[key].folder, home / "data" / "library" / models[key].folder.name)
    return home


def _one_of(found: np.ndarray, expected: dict[str, np.ndarray], tolerance: float) -> str:
    errors = {name: float(np.abs(found - out).max()) for name, out in expected.items()}
    best = min(errors, key=errors.get)
    assert errors[best] <= tolerance, errors
    return best


def operations(tmp_path: Path, base) -> list[Operation]:
    from mlabs_desktop.core.formats import exporters
    from mlabs_desktop.core.formats.reference_checkpoint import read_reference_checkpoint

    root, models, outputs = base
    ops: list[Operation] = []

    def export(fmt: str, first: str, then: str, out_name: str, complete: Callable[[Path], str]) -> None:
        home = _home(tmp_path, fmt, models, (first, then))
        out = home / "out" / out_name

        def check(tag: str) -> None:
            expected = {"measured": (first,), "rerun": (then,)}.get(tag, (first, then))
            if out.exists():  # complete, and the earlier export or the new one
                assert complete(out) in expected, tag
            else:  # only possible between the two renames that replace a folder
                assert tag.startswith("kill"), f"{out} missing after the {tag} run"
        ops.append(Operation(f"export {fmt}", home,
                             lambda tag: ["export", first if tag == "measured" else then,
                                          f"--format={fmt}", f"--out={out}", "--overwrite"],
                             out.parent, lambda tag: out.name, check))

    def bundle_of(path: Path) -> str:
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None  # every entry's CRC checks out
        from mlabs_desktop.core.formats.bundle_import import inspect_bundle
        return inspect_bundle(path).name

    def savedmodel_of(path: Path) -> str:
        import tensorflow as tf
        serve = tf.saved_model.load(str(path)).signatures[exporters.SIGNATURE]
        return _one_of(serve(image=IMAGE[None])[exporters.OUTPUT_NAME].numpy()[0], outputs, 1e-3)

    def tflite_of(path: Path) -> str:
        return _one_of(exporters.run_tflite(exporters.tflite_interpreter(path), IMAGE), outputs, 0.05)

    def reference_of(path: Path) -> str:
        arrays = read_reference_checkpoint(path)
        for name in ("C1", "C2"):  # conv1 holds the folded input scale; every other array is as trained
            weights = models[name].load_weights()
            if all(np.array_equal(arrays[k], weights[k]) for k in arrays if k != "conv1/kernel"):
                return name
        raise AssertionError(f"{path} holds neither model's weights")

    export("bundle", "A", "B", "model.mlstyle", bundle_of)
    export("savedmodel", "A", "B", "model-savedmodel", savedmodel_of)
    export("tflite", "A", "B", "model.tflite", tflite_of)
    export("reference-checkpoint", "C1", "C2", "model-checkpoint", reference_of)

    def importing(name: str, command: list[str], slug: str) -> None:
        home = tmp_path / name
        library = home / "data" / "library"
        ops.append(Operation(name, home, lambda tag: [*command, f"--name={slug}-{tag}"], library,
                             lambda tag: f"staging-{slug}-{tag}", lambda tag: None))

    importing("import", ["import", str(root / "share.mlstyle")], "imported")
    importing("import-checkpoint", ["import-checkpoint", str(root / "reference")], "checkpoint")
    return ops


def check_after(op: Operation, tag: str) -> None:
    from mlabs_desktop.core.library.store import Library

    library = Library(op.home / "data" / "library")
    assert_every_model_loads(library)
    assert_no_temporaries_in_library(library)
    op.check(tag)


@pytest.mark.heavy
@pytest.mark.timeout(600)
def test_sigkill_inside_exports_and_imports(base, tmp_path, monkeypatch):
    ops = operations(tmp_path, base)
    for op in ops:  # measured, one at a time, in this process
        monkeypatch.setenv("MLABS_DESKTOP_HOME", str(op.home))
        op.window = measure_window(op.args("measured"), op.folder, op.label("measured"))
        check_after(op, "measured")

    checking = threading.Lock()  # the checks load TensorFlow models: one at a time

    def kill_rounds(op: Operation, seed: int) -> None:
        for i, delay in enumerate(spread(op.window, ROUNDS, seed), 1):
            tag = f"kill-{i}"
            op.rounds.append(kill_inside_window(op.args(tag), op.folder, op.label(tag), delay,
                                                env={"MLABS_DESKTOP_HOME": str(op.home)}))
            with checking:
                check_after(op, tag)

    with ThreadPoolExecutor(2) as pool:  # two operations at a time, each in its own home
        for future in [pool.submit(kill_rounds, op, seed) for seed, op in enumerate(ops)]:
            future.result()

    for op in ops:  # the same command again succeeds, and sweeps what the killed runs left
        monkeypatch.setenv("MLABS_DESKTOP_HOME", str(op.home))
        assert run_cli_here(op.args("rerun")) == 0, op.name
        check_after(op, "rerun")
        assert temporaries(op.folder) == [], op.name

    report = [(op.name, f"window {op.window:.3f} s", [(f"{r.delay:.3f} s", "killed" if r.killed else "finished")
                                                      for r in op.rounds]) for op in ops]
    print("\nkill rounds:", *report, sep="\n  ")
    killed = sum(r.killed for op in ops for r in op.rounds)
    assert 2 * killed >= len(ops) * ROUNDS, report  # at least half the kills find the command still running


def test_sweep_removes_a_dead_process_temporaries_and_keeps_a_live_ones(tmp_path):
    import subprocess
    import sys

    from mlabs_desktop.core import atomic

    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                               capture_output=True, text=True).stdout)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f".model.tflite.pid{ended}-abc_123.part").write_bytes(b"half")
        (tmp_path / f".staging-x.pid{ended}-def.part").mkdir()
        live = tmp_path / f".model.tflite.pid{alive.pid}-ghi.part"
        live.write_bytes(b"being written")
        (tmp_path / ".staging-someone-elses").mkdir()  # no pid: not ours to judge in a user's folder
        (tmp_path / ".model.tflite.part").write_bytes(b"not our name")
        atomic.sweep_temporaries(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".model.tflite.part", live.name,
                                                              ".staging-someone-elses"]
    finally:
        alive.kill()
        alive.wait()
