"""SIGKILL at random moments of training leaves a consistent library and a resumable model."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_EVERY = 3


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "mlabs_desktop", *args, "--progress=json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def kill_after_random_delay(proc: subprocess.Popen, rng: random.Random) -> int:
    """Wait for the first step, then SIGKILL at a random moment; return the last step seen."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True).start()
    last, deadline = 0, None
    while deadline is None or time.monotonic() < deadline:
        try:
            event = json.loads(lines.get(timeout=0.01))
        except queue.Empty:
            if proc.poll() is not None:
                raise AssertionError("training ended before it could be killed") from None
            continue
        if event["event"] == "step":
            last = event["step"]
            deadline = deadline or time.monotonic() + rng.uniform(0.0, 2.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    while not lines.empty():  # steps reported just before the kill
        event = json.loads(lines.get())
        last = event["step"] if event["event"] == "step" else last
    return last


@pytest.mark.timeout(600)
def test_sigkill_during_training_loses_at_most_one_checkpoint_interval(vgg_h5, photos_dir, style_image):
    from mlabs_desktop.core.checkpoints import CheckpointState  # noqa: F401 - import check
    from mlabs_desktop.core.library import Library
    from mlabs_desktop.core.stylize import Stylizer
    from mlabs_desktop.core.weights import load_weight_arrays

    rng = random.Random(1234)
    train = ["train", f"--style={style_image}", f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}",
             "--image-size=32", "--batch-size=2", "--epochs=1000", f"--checkpoint-iterations={CHECKPOINT_EVERY}",
             "--architecture=lite", "--name=crash", "--max-steps=100000"]
    rounds = []
    for _ in range(4):
        exists = Library().find("crash") is not None
        proc = start(["resume", "crash", "--max-steps=100000"] if exists else train)
        seen = kill_after_random_delay(proc, rng)
        models = Library().models()
        for model in models:  # every listed model loads and runs
            out = Stylizer(model, device="cpu").run(np.full((8, 8, 3), 120, np.float32))
            assert np.isfinite(out).all()
        if not models:
            assert seen < CHECKPOINT_EVERY + 1  # killed before the first checkpoint finished
            continue
        saved = int(load_weight_arrays(Library().get("crash").file("checkpoint.npz"))["step"])
        assert 0 < saved <= seen
        assert seen - saved <= CHECKPOINT_EVERY, (seen, saved)
        rounds.append((seen, saved))
    assert rounds, "no round got past its first checkpoint"
    # The last survivor resumes exactly at its checkpoint.
    result = subprocess.run([sys.executable, "-m", "mlabs_desktop", "resume", "crash", "--max-steps=1",
                             "--progress=json"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    steps = [json.loads(l)["step"] for l in result.stdout.splitlines() if '"event": "step"' in l]
    saved = rounds[-1][1]
    assert steps == [saved + 1] or steps[0] > saved  # a later round may have advanced it
