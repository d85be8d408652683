"""A fast copy of a style: a tiny network learns a library model's outputs, without VGG19."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import DistillStepEvent, LogEvent
from mlabs_desktop.core.hardware.devices import choose_device
from mlabs_desktop.core.networks.precision import training_precision
from mlabs_desktop.core.library.store import WEIGHTS, Library, Manifest
from mlabs_desktop.core.stylize.stylizer import Stylizer
from mlabs_desktop.core.training.distill import DistillConfig, Distiller

from conftest import write_photos


def test_a_copy_learns_its_teacher_and_lands_in_the_library(tiny_model, tmp_path):
    photos = write_photos(tmp_path / "photos", count=9, size=(64, 48))
    events: list = []
    config = DistillConfig("tiny", train_path=str(photos), steps=40, batch_size=2, image_size=32,
                           learning_rate=5e-3, held_out=3, seed=0)
    result = Distiller(config, events.append).run()
    steps = [e for e in events if isinstance(e, DistillStepEvent)]
    assert [e.step for e in steps] == list(range(1, 41)) and steps[-1].eta_seconds == 0
    assert steps[0].eta_seconds is None and steps[1].eta_seconds > 0  # the first step compiles: no estimate from it
    said = " ".join(e.message for e in events if isinstance(e, LogEvent))  # as training learns on this machine
    assert ("learning in mixed bfloat16" in said) == (training_precision(choose_device("cpu")) == "mixed_bfloat16")
    # It learns: about halfway down in 40 steps (0.52-0.56 of the start over seeds 0-4 on this teacher).
    assert np.mean([e.loss for e in steps[-10:]]) < 0.7 * np.mean([e.loss for e in steps[:5]])
    model = result.model
    assert model.name == "tiny (fast copy)" and model.manifest.architecture == "tiny"
    assert model.manifest.provenance["distilled_from"] == "tiny" and result.held_out == 3
    assert model.manifest.statistics["teacher_psnr_db"] == pytest.approx(result.psnr_db, abs=0.01)
    assert 5 < result.psnr_db < 100
    assert Library().get("tiny (fast copy)").file("preview.jpg").is_file()
    photo = np.random.default_rng(0).uniform(0, 255, (40, 52, 3)).astype(np.float32)
    assert Stylizer(model, "cpu").run(photo).shape == photo.shape


def test_a_copy_needs_photos_and_a_free_name(tiny_model, tmp_path):
    with pytest.raises(UserError, match="unknown model 'nobody'"):
        Distiller(DistillConfig("nobody")).run()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no images in"):
        Distiller(DistillConfig("tiny", train_path=str(empty))).run()
    with pytest.raises(UserError, match="already exists"):
        Distiller(DistillConfig("tiny", name="tiny")).run()
    with pytest.raises(UserError, match="batch-size must be at least 1, not 0"):
        Distiller(DistillConfig("tiny", batch_size=0)).run()
    with pytest.raises(UserError, match="image-size must be at least 16, not 8"):
        Distiller(DistillConfig("tiny", image_size=8)).run()


SHORT = dict(steps=4, batch_size=2, image_size=32, seed=0)


def test_unreadable_photos_are_skipped_and_a_name_taken_meanwhile_gets_a_number(tiny_model, tmp_path):
    """One run: unreadable photos are skipped and said; the name was free when the copy started, and another
    model took it meanwhile: the copy is saved under a number, not lost."""
    photos = write_photos(tmp_path / "photos", count=5, size=(48, 40))
    (photos / "000.jpg").write_bytes(b"not a photo")  # first, so kept out to measure the copy on
    (photos / "zzz.jpg").write_bytes(b"not a photo either")  # learnt on
    events: list = []

    def take_the_name(event):
        events.append(event)
        if isinstance(event, DistillStepEvent) and event.step == 1:
            Library().create(Manifest("tiny (fast copy)", "tiny", state="finished"),
                             lambda folder: shutil.copy(tiny_model.file(WEIGHTS), folder / WEIGHTS))

    result = Distiller(DistillConfig("tiny", train_path=str(photos), **SHORT), take_the_name).run()
    assert result.held_out == 1 and result.judged_on == "on 1 photo it did not train on"
    warnings = [e.message for e in events if isinstance(e, LogEvent) and e.level == "warning"]
    assert any("zzz.jpg" in w for w in warnings) and np.isfinite(result.psnr_db)
    assert result.model.name == "tiny (fast copy) (2)" and Library().get("tiny (fast copy) (2)").folder.is_dir()


def test_a_float32_copy_of_two_photos_stopped_at_step_3(tiny_model, tmp_path, monkeypatch):
    """Even on a CPU with bfloat16 units, precision float32 keeps the copy and the original in float32; two
    photos are too few to keep one aside, and the PSNR says it is over photos the copy trained on. A stop
    ends it after the current step, though the original was already at work on the next batch."""
    from mlabs_desktop.core.hardware import cpu_info

    monkeypatch.setattr(cpu_info, "cpu_has_bfloat16", lambda: True)
    photos = write_photos(tmp_path / "photos", count=2, size=(48, 40))
    events: list = []

    def stop_at_3(event):
        events.append(event)
        if isinstance(event, DistillStepEvent) and event.step == 3:
            distiller.stop()

    distiller = Distiller(DistillConfig("tiny", train_path=str(photos), precision="float32", name="full",
                                        **{**SHORT, "steps": 1000}), stop_at_3)
    result = distiller.run()
    assert result.steps == 3 and result.model.manifest.statistics["steps"] == 3
    assert [e.step for e in events if isinstance(e, DistillStepEvent)] == [1, 2, 3]
    assert result.held_out == 0 and "too few to keep some aside" in result.judged_on
    assert np.isfinite(result.psnr_db) and result.model.manifest.statistics["held_out_photos"] == 0
    said = " ".join(e.message for e in events if isinstance(e, LogEvent))
    assert "distilling 'tiny'" in said and "bfloat16" not in said
    photo = np.random.default_rng(0).uniform(0, 255, (40, 52, 3)).astype(np.float32)
    assert np.isfinite(Stylizer(result.model, "cpu").run(photo)).all()


def test_the_original_labels_one_batch_ahead_and_a_stop_learns_nothing_more():
    """The look-ahead alone, with stand-ins for the photos and the original (no network runs)."""
    import threading

    labelled_batches: list[int] = []

    def original(batch):
        labelled_batches.append(int(batch[0]))
        return batch + 1

    def stream():
        return ((step, 0, np.full(2, step), ()) for step in range(100))

    got = [(step, int(target[0])) for step, _batch, target in
           Distiller(DistillConfig("x", steps=5))._labelled(stream(), original)]
    assert got == [(step, step + 1) for step in range(5)] and labelled_batches == [0, 1, 2, 3, 4]
    distiller = Distiller(DistillConfig("x", steps=100))
    labelled = distiller._labelled(stream(), original)
    assert next(labelled)[0] == 0  # while the copy learns from batch 0, the original labels batch 1
    distiller.stop()
    assert list(labelled) == []  # batch 1 was labelled, but the stop came first: nothing more is learnt
    abandoned = Distiller(DistillConfig("x", steps=100))._labelled(stream(), original)
    next(abandoned)
    abandoned.close()  # the copy's loop ended (an error of its own): the original's thread ends too

    def failing(batch):
        raise MemoryError("the original ran out of memory")

    with pytest.raises(MemoryError):
        list(Distiller(DistillConfig("x", steps=3))._labelled(stream(), failing))
    assert not [t for t in threading.enumerate() if t.name.startswith("mlabs-original")]
