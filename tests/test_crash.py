"""SIGKILL during training, inside its checkpoint writes and its final save, leaves a consistent
library and a model that resumes from its last checkpoint, losing at most one checkpoint interval.

The kills are aimed: each run reports a step, then writes its checkpoint, then
reports the checkpoint; the time between the two is measured on the run's own
earlier checkpoints, and the kill falls at a random moment inside that window.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from statistics import mean
from typing import Callable

import pytest

from crash_helpers import (assert_every_model_loads, assert_no_temporaries_in_library, kill_when, run_cli_here,
                           start_training)

CHECKPOINT_EVERY = 3
STRETCH = 1.3  # the window measured on earlier checkpoints, and a little more


@dataclass
class Windows:
    """Seconds from a checkpoint step's report to its checkpoint's report, per step."""

    reported: dict[int, float] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)

    def see(self, event: dict, arrived: float) -> None:
        if event["event"] == "step" and event["step"] % CHECKPOINT_EVERY == 0:
            self.reported[event["step"]] = arrived
        elif event["event"] == "checkpoint" and event["step"] in self.reported:
            self.seconds[event["step"]] = arrived - self.reported[event["step"]]


@dataclass
class Aim:
    """Kill in slice ``slot`` of ``slots`` equal slices of the write that follows the aimed step.

    ``step`` gets the run's first step; ``window`` is read when the aimed step is
    reported, so it can use the checkpoints the run has measured until then. The
    write ends with the report ``until`` (checkpoint, or done for the final save).
    """

    step: Callable[[int], int]
    window: Callable[[], float]
    slot: int = 0
    slots: int = 1
    until: str = "checkpoint"


def run_and_kill(args: list[str], windows: Windows, aim: Aim, rng: random.Random) -> tuple[int, bool, bool]:
    """Train, kill as aimed; return the last step seen, whether the kill found the run alive,
    and whether it fell inside the aimed write (before that checkpoint was reported)."""
    target: list[int] = []
    reported: set[tuple[str, int]] = set()

    def due(event: dict, arrived: float) -> float | None:
        windows.see(event, arrived)
        reported.add((event["event"], event.get("step", -1)))
        if event["event"] != "step":
            return None
        if not target:
            target.append(aim.step(event["step"]))
        if event["step"] != target[0]:
            return None
        return arrived + STRETCH * aim.window() * (aim.slot + rng.random()) / aim.slots

    seen, killed = kill_when(start_training(args), due)
    return seen, killed, killed and bool(target) and seen >= target[0] and (aim.until, target[0]) not in reported


def saved_step(library, name: str) -> int | None:
    from mlabs_desktop.core.networks.weights import load_weight_arrays

    model = library.find(name)
    return int(load_weight_arrays(model.file("checkpoint.npz"))["step"]) if model else None


def check_round(library, name: str, seen: int) -> int | None:
    """Every listed model loads, nothing half-written is left, and at most one interval is lost."""
    assert_every_model_loads(library)
    assert_no_temporaries_in_library(library)
    saved = saved_step(library, name)
    if saved is None:
        assert seen <= CHECKPOINT_EVERY, f"'{name}' lost although step {seen} was reported"
        return None
    assert 0 < saved <= seen and seen - saved <= CHECKPOINT_EVERY, (seen, saved)
    return saved


@pytest.mark.heavy
@pytest.mark.timeout(600)
def test_sigkill_inside_checkpoint_writes_and_final_save(vgg_h5, photos_dir, style_image, capsys):
    from mlabs_desktop.core.library.store import Library

    rng = random.Random(1234)
    library = Library()

    def train(name: str) -> list[str]:
        return ["train", f"--style={style_image}", f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}",
                "--image-size=32", "--style-scale=0.25", "--batch-size=2", "--epochs=1000",
                f"--checkpoint-iterations={CHECKPOINT_EVERY}", "--architecture=lite", f"--name={name}",
                "--max-steps=100000"]

    windows = Windows()
    later = lambda: mean(s for step, s in windows.seconds.items() if step > CHECKPOINT_EVERY)  # noqa: E731
    every = CHECKPOINT_EVERY
    outcomes = []

    def record(what: str, name: str, outcome: tuple[int, bool, bool]) -> None:
        seen, killed, inside = outcome
        outcomes.append((what, killed, inside, seen, check_round(library, name, seen)))

    # 1. A new model: three checkpoints measured, the kill in the first half of the fourth's write.
    record("checkpoint write", "crash",
           run_and_kill(train("crash"), windows, Aim(lambda _: 4 * every, later, 0, 2), rng))
    first_checkpoint = windows.seconds[every]
    # 2. Resumed: the kill in the second half of its third checkpoint's write.
    record("checkpoint write", "crash", run_and_kill(
        ["resume", "crash", "--max-steps=100000"], windows,
        Aim(lambda first: (first // every + 3) * every, later, 1, 2), rng))
    # 3. Resumed for 4 steps: the kill inside the final save (the last checkpoint, then the manifest).
    record("final save", "crash", run_and_kill(["resume", "crash", "--max-steps=4"], windows,
                                               Aim(lambda first: first + 3, later, until="done"), rng))
    # 4. Another new model: the kill inside its first checkpoint, which is built in a staging folder.
    record("first checkpoint", "crash-first", run_and_kill(train("crash-first"), Windows(),
                                                           Aim(lambda _: every, lambda: first_checkpoint), rng))

    print("\ncrash rounds (operation, killed, inside the write, step seen, step saved):", *outcomes, sep="\n  ")
    assert all(killed for _, killed, *_ in outcomes), outcomes
    # The model resumes exactly at its last checkpoint.
    saved = saved_step(Library(), "crash")
    capsys.readouterr()
    assert run_cli_here(["resume", "crash", "--max-steps=1", "--progress=json"]) == 0  # TensorFlow is loaded here
    steps = [json.loads(line)["step"] for line in capsys.readouterr().out.splitlines() if '"event": "step"' in line]
    assert steps == [saved + 1]
