"""Real (tiny) training runs: loss goes down, checkpoints, resume, cancel, fine-tune."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_config, write_photos
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import CheckpointEvent, DoneEvent, PreviewEvent, StepEvent
from mlabs_desktop.core.library.store import WEIGHTS, Library
from mlabs_desktop.core.smallfiles import file_sha256
from mlabs_desktop.core.stylize.controls import weights_related
from mlabs_desktop.core.training.trainer import Trainer


def run(config, events=None, **kw):
    return Trainer(config, on_event=(events.append if events is not None else None), **kw).run()


def steps_of(events):
    return [e for e in events if isinstance(e, StepEvent)]


def test_twenty_steps_reduce_the_total_loss(vgg_h5, photos_dir, style_image):
    events: list = []
    config = tiny_config(style_image, photos_dir, vgg_h5, name="twenty", max_steps=20, epochs=10,
                         checkpoint_iterations=10, learning_rate=1e-2, architecture="lite")
    model = run(config, events)
    totals = [e.total_loss for e in steps_of(events)]
    assert len(totals) == 20
    assert np.mean(totals[-4:]) < 0.8 * np.mean(totals[:4])
    assert model.manifest.statistics["steps"] == 20
    assert model.manifest.state == "paused"  # max-steps ended this run before the 10 epochs
    step = steps_of(events)[-1]
    assert step.images_per_sec > 0 and step.eta_seconds == pytest.approx(0.0)
    assert [e.step for e in events if isinstance(e, CheckpointEvent)] == [10, 20]


def test_events_library_files_and_the_checkpoint_dir_copy(vgg_h5, photos_dir, style_image, tmp_path):
    events: list = []
    out = tmp_path / "outputs"
    model = run(tiny_config(style_image, photos_dir, vgg_h5, max_steps=3, checkpoint_iterations=2,
                            checkpoint_dir=str(out)), events)
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("StepEvent") == 3
    assert kinds.count("CheckpointEvent") == 2           # at step 2, and the final one at step 3
    preview = [e for e in events if isinstance(e, PreviewEvent)][-1]
    assert preview.image.dtype == np.uint8 and preview.image.ndim == 3
    assert isinstance(events[-1], DoneEvent) and events[-1].step == 3
    for name in ("manifest.yaml", "weights.npz", "checkpoint.npz", "style.jpg", "preview.jpg", "losses.npz"):
        assert model.file(name).is_file(), name
    assert [p.name for p in model.previews()] == ["step-00000002.jpg", "step-00000003.jpg"]
    history = model.loss_history()
    assert list(history["step"]) == [1, 2, 3]
    assert Library().get("tiny").folder == model.folder
    assert (out / "manifest.yaml").is_file() and (out / "weights.npz").is_file()  # --checkpoint-dir's copy
    assert Library().get(str(out)).name == "tiny"


@pytest.mark.heavy
def test_stop_between_steps_then_resume_continues_as_an_uninterrupted_run(vgg_h5, photos_dir, style_image):
    """No checkpoint is due before the stop: stopping writes one, and resuming goes on at exactly that step."""
    common = dict(epochs=3, checkpoint_iterations=100, seed=5, learning_rate=5e-3)
    straight: list = []
    run(tiny_config(style_image, photos_dir, vgg_h5, name="straight", max_steps=6, **common), straight)

    first: list = []
    trainer = Trainer(tiny_config(style_image, photos_dir, vgg_h5, name="split", max_steps=50, **common))

    def on_event(event):
        first.append(event)
        if isinstance(event, StepEvent) and event.step == 4:
            trainer.stop()

    trainer.on_event = on_event
    stopped = trainer.run()
    assert stopped.manifest.state == "stopped" and stopped.manifest.statistics["steps"] == 4
    assert stopped.has_checkpoint
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    out = Stylizer(stopped).run(np.full((9, 7, 3), 128, np.float32))
    assert out.shape == (9, 7, 3) and np.isfinite(out).all()

    second: list = []
    resumed = Trainer.for_resume("split", max_steps=2, on_event=second.append).run()
    assert [e.step for e in steps_of(second)] == [5, 6]
    assert resumed.manifest.statistics["steps"] == 6
    # Same data order, weights and Adam state: the resumed losses equal the uninterrupted ones.
    expected = [e.total_loss for e in steps_of(straight)][4:]
    got = [e.total_loss for e in steps_of(second)]
    np.testing.assert_allclose(got, expected, rtol=2e-3)
    assert list(resumed.loss_history()["step"]) == [1, 2, 3, 4, 5, 6]


def test_fine_tune_starts_from_the_base_weights(vgg_h5, photos_dir, style_image, tiny_model):
    events: list = []
    model = run(tiny_config(style_image, photos_dir, vgg_h5, name="tuned", init_from="tiny", max_steps=1,
                            learning_rate=1e-7), events)
    base, tuned = tiny_model.load_weights(), model.load_weights()
    assert set(base) == set(tuned)
    for name in base:
        np.testing.assert_allclose(tuned[name], base[name], atol=1e-5)
    assert model.manifest.provenance["init_from"] == "tiny"
    # The parent's weights are recorded, so its fine-tuned children are known as siblings even if it is retrained.
    assert model.manifest.provenance["init_from_sha256"] == file_sha256(tiny_model.file(WEIGHTS))
    assert weights_related(model, tiny_model)


def test_fine_tune_refuses_another_architecture(vgg_h5, photos_dir, style_image, tiny_model):
    with pytest.raises(UserError, match="architecture"):
        run(tiny_config(style_image, photos_dir, vgg_h5, name="x", init_from="tiny", architecture="classic"))


def test_unreadable_files_are_skipped_and_counted(tmp_path, vgg_h5, style_image):
    folder = write_photos(tmp_path / "mixed", count=4)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "empty.png").write_bytes(b"")
    events: list = []
    model = run(tiny_config(style_image, folder, vgg_h5, name="mixed", epochs=2, max_steps=0,
                            checkpoint_iterations=100), events)
    assert steps_of(events)[-1].skipped == 2
    warnings = [e.message for e in events if getattr(e, "level", "") == "warning"]
    assert any("broken.jpg" in w for w in warnings) and any("empty.png" in w for w in warnings)
    assert model.manifest.statistics["skipped"] == 2


def test_no_usable_image_is_a_clear_error(tmp_path, vgg_h5, style_image):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"<html>nope</html>")
    with pytest.raises(UserError, match="could be read"):
        run(tiny_config(style_image, folder, vgg_h5, name="bad"))
    assert Library().models() == []


def test_fewer_images_than_the_batch(tmp_path, vgg_h5, style_image):
    folder = write_photos(tmp_path / "one", count=1)
    events: list = []
    run(tiny_config(style_image, folder, vgg_h5, name="one", batch_size=3, max_steps=2), events)
    assert len(steps_of(events)) == 1  # one image, batch of 3 (repeated), one step per epoch
    assert any("repeated" in getattr(e, "message", "") for e in events)


@pytest.mark.parametrize("change, message", [
    (dict(style="/nonexistent/style.jpg"), "does not exist"),
    (dict(train_path="/nonexistent/folder"), "not found"),
    (dict(vgg_path="/nonexistent/vgg.h5"), "VGG19 weights that measure the losses are missing at /nonexistent"),
    (dict(batch_size=0), "batch-size must be at least 1"),
    (dict(architecture="huge"), "architecture must be one of"),
    (dict(name="tiny"), "already exists"),
])
def test_bad_input_fails_fast_with_a_clear_message(change, message, vgg_h5, photos_dir, style_image, tiny_model):
    with pytest.raises(UserError, match=message):
        run(tiny_config(style_image, photos_dir, vgg_h5, name="fresh").replace(**change))


def test_matconvnet_weights_train_too(tmp_path, photos_dir, style_image):
    from vgg_fixtures import write_matconvnet_mat

    mat = tmp_path / "imagenet-vgg-verydeep-19.mat"
    write_matconvnet_mat(mat)
    model = run(tiny_config(style_image, photos_dir, mat, name="mat", max_steps=1))
    assert model.manifest.provenance["vgg_path"].endswith(".mat")


def test_stop_before_any_batch_is_ready_ends_the_stream(tmp_path):
    import threading

    from mlabs_desktop.core.training.dataset import BatchStream, scan_folder

    folder = write_photos(tmp_path / "p", count=4)
    stop = threading.Event()
    stop.set()
    stream = BatchStream(scan_folder(folder), 2, 16, seed=0)
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(stream.batches(0, stop)))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the stream kept waiting after a stop"


def test_a_made_up_model_name_is_made_unique_but_a_chosen_one_is_not(tiny_model, monkeypatch, style_image):
    from mlabs_desktop.core.training import model_writer as model_store
    from mlabs_desktop.core.config import TrainingConfig
    from mlabs_desktop.core.errors import UserError
    from mlabs_desktop.core.library.store import Library

    monkeypatch.setattr(model_store, "default_model_name", lambda config: "tiny")  # as two runs in one minute
    writer = model_store.ModelWriter(Library(), TrainingConfig(style=str(style_image)), None)
    assert writer.name == "tiny (2)"
    with pytest.raises(UserError, match="already exists"):
        model_store.ModelWriter(Library(), TrainingConfig(style=str(style_image), name="tiny"), None)


def test_the_tiny_network_trains_stylizes_and_travels_like_the_others(vgg_h5, photos_dir, style_image, tmp_path):
    from mlabs_desktop.core.formats.bundle_import import import_bundle
    from mlabs_desktop.core.formats.bundle_writer import export_bundle
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    model = run(tiny_config(style_image, photos_dir, vgg_h5, name="tiny net", architecture="tiny"))
    assert model.manifest.architecture == "tiny" and model.manifest.parameters["architecture"] == "tiny"
    photo = np.random.default_rng(3).uniform(0, 255, (40, 56, 3)).astype(np.float32)
    styled = Stylizer(model, "cpu").run(photo)
    copy = import_bundle(export_bundle(model, tmp_path / "tiny.mlstyle"), Library(), name="tiny copy")
    assert styled.shape == photo.shape and np.array_equal(Stylizer(copy, "cpu").run(photo), styled)
