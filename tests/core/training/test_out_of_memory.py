"""Training out of memory: a clear message, no lost steps, and --auto-batch going on with smaller batches.

The out-of-memory error is TensorFlow's own, raised at the step boundary
(`oom_injection`); the command line runs in this process (`cli.main`, what the
console script calls) so the injection reaches it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config, write_photos
from mlabs_desktop.cli.main import main
from mlabs_desktop.core.tiling import policy as tiling
from mlabs_desktop.core.events import LogEvent, OutOfMemoryEvent
from mlabs_desktop.core.library.store import Library, read_manifest
from mlabs_desktop.core.hardware.memory import TrainingOutOfMemory, out_of_memory
from oom_injection import OomInjector


@pytest.fixture(scope="module")
def photos8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 photos: 2 steps an epoch at batch 4, 4 at batch 2, 8 at batch 1."""
    return write_photos(tmp_path_factory.mktemp("photos8"), count=8, size=(40, 40))


def train_args(style: Path, photos: Path, vgg: Path, name: str, *extra: str) -> list[str]:
    return ["train", f"--style={style}", f"--train-path={photos}", f"--vgg-path={vgg}", "--image-size=32",
            "--style-scale=0.25", "--checkpoint-iterations=100", "--architecture=lite", f"--name={name}", "--seed=1",
            "--progress=json", *extra]


def run_cli(capsys: pytest.CaptureFixture, args: list[str]) -> tuple[int, list[str], list[dict]]:
    """Exit code, stderr lines and the JSON events printed on stdout."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, err.strip().splitlines(), [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def of_kind(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


def test_out_of_memory_is_recognised_for_each_backend():
    import tensorflow as tf

    class XlaRuntimeError(RuntimeError):  # JAX's: the status code is only in the message
        pass

    class OutOfMemoryError(RuntimeError):  # PyTorch's torch.cuda.OutOfMemoryError
        pass

    assert out_of_memory(MemoryError())
    assert out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))
    assert out_of_memory(OutOfMemoryError("CUDA out of memory"))
    assert out_of_memory(XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8.0GiB"))
    assert not out_of_memory(XlaRuntimeError("INTERNAL: failed to compile"))
    assert not out_of_memory(ValueError("out of memory"))
    assert tiling.out_of_memory is out_of_memory  # stylizing's tile retries use the same test


def test_without_auto_batch_one_error_line_keeps_the_checkpoint_and_resume_goes_on(
        monkeypatch, capsys, vgg_h5, photos8, style_image):
    oom = OomInjector(monkeypatch, max_images=2, after_steps=1)  # step 1 fits, step 2 at batch 4 does not
    code, errors, events = run_cli(capsys, train_args(style_image, photos8, vgg_h5, "oom", "--batch-size=4",
                                                      "--epochs=2"))
    assert code == 2 and len(errors) == 1, errors
    assert errors[0].startswith("error: out of memory at batch size 4 (step 2); model 'oom' keeps its last "
                                "checkpoint (step 1). Continue it with `mlabs-desktop resume \"oom\" "
                                "--batch-size=2`, or add --auto-batch"), errors[0]
    assert [e["step"] for e in of_kind(events, "step")] == [1]
    assert of_kind(events, "out_of_memory") == [{"event": "out_of_memory", "batch_size": 4, "step": 2,
                                                 "checkpoint_step": 1, "model_name": "oom", "steps_left": 0}]
    model = Library().get("oom")
    assert model.has_checkpoint and model.manifest.state == "stopped"
    assert model.manifest.statistics["steps"] == 1 and model.manifest.parameters["batch-size"] == 4

    code, errors, events = run_cli(capsys, ["resume", "oom", "--batch-size=2", "--progress=json"])
    assert code == 0, errors
    # At batch 2 an epoch is 4 steps: two epochs end at step 8, counted on from the checkpoint.
    assert [e["step"] for e in of_kind(events, "step")] == [2, 3, 4, 5, 6, 7, 8]
    assert any("at step 1 with batch size 2 (it was 4)" in e["message"] for e in of_kind(events, "log"))
    assert oom.ran == [4] + [2] * 7 and oom.failed == [4]
    model = Library().get("oom")
    assert model.manifest.state == "finished" and model.manifest.statistics["steps"] == 8
    assert model.manifest.parameters["batch-size"] == 2
    assert list(model.loss_history()["step"]) == list(range(1, 9))


def test_auto_batch_halves_the_batch_until_a_step_fits_and_loses_no_step(
        monkeypatch, capsys, tmp_path, vgg_h5, photos8, style_image):
    oom = OomInjector(monkeypatch, max_images=1, after_steps=1)  # batch 4, then 2, run out at step 2
    copy = tmp_path / "outputs"
    code, errors, events = run_cli(capsys, train_args(style_image, photos8, vgg_h5, "auto", "--batch-size=4",
                                                      "--epochs=1", "--auto-batch", f"--checkpoint-dir={copy}"))
    assert code == 0 and errors == []
    assert oom.failed == [4, 2] and oom.ran == [4] + [1] * 7
    assert [(e["batch_size"], e["step"], e["checkpoint_step"]) for e in of_kind(events, "out_of_memory")] \
        == [(4, 2, 1), (2, 2, 1)]
    logs = [e["message"] for e in of_kind(events, "log")]
    assert "out of memory at batch size 4: continuing from step 1 with batch size 2" in logs
    assert "out of memory at batch size 2: continuing from step 1 with batch size 1" in logs
    # Step 1 (batch 4) is kept; at batch 1 an epoch is 8 steps, so the run ends at step 8.
    assert [e["step"] for e in of_kind(events, "step")] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert of_kind(events, "done")[-1]["state"] == "finished" and of_kind(events, "done")[-1]["step"] == 8
    model = Library().get("auto")
    assert model.manifest.parameters["batch-size"] == 1 and model.manifest.statistics["steps"] == 8
    assert list(model.loss_history()["step"]) == list(range(1, 9))
    assert np.isfinite(model.loss_history()["total"]).all()
    copied = read_manifest(copy)  # --checkpoint-dir still gets the finished model
    assert copied.state == "finished" and copied.parameters["batch-size"] == 1


def test_auto_batch_gives_up_at_batch_one_with_a_clear_message(monkeypatch, capsys, vgg_h5, photos8, style_image):
    OomInjector(monkeypatch, max_images=0, after_steps=1)  # after step 1 nothing fits
    code, errors, events = run_cli(capsys, train_args(style_image, photos8, vgg_h5, "hopeless", "--batch-size=2",
                                                      "--epochs=1", "--auto-batch"))
    assert code == 2 and len(errors) == 1, errors
    assert errors[0].startswith("error: out of memory at batch size 1 (step 2); model 'hopeless' keeps its last "
                                "checkpoint (step 1). Even one image per step does not fit"), errors[0]
    assert [e["batch_size"] for e in of_kind(events, "out_of_memory")] == [2, 1]
    model = Library().get("hopeless")
    assert model.has_checkpoint and model.manifest.statistics["steps"] == 1


def test_out_of_memory_at_the_first_step_saves_nothing_and_starts_again_smaller(
        monkeypatch, vgg_h5, photos8, style_image):
    from mlabs_desktop.core.training.trainer import Trainer

    OomInjector(monkeypatch, max_images=2)
    events: list = []
    trainer = Trainer(tiny_config(style_image, photos8, vgg_h5, batch_size=4, epochs=2, max_steps=3,
                                  name="first"),
                      events.append)
    with pytest.raises(TrainingOutOfMemory) as caught:
        trainer.run()
    assert caught.value.event == OutOfMemoryEvent(4, 1, 0, None, 3)
    assert str(caught.value).startswith("out of memory at batch size 4 (step 1); nothing was saved yet. "
                                        "Try --batch-size=2")
    assert Library().find("first") is None
    model = trainer.with_smaller_batch(caught.value.event).run()
    assert LogEvent("out of memory at batch size 4: starting again with batch size 2", "warning") in events
    assert model.manifest.parameters["batch-size"] == 2 and model.manifest.statistics["steps"] == 3
