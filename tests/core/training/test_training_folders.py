"""Training folders that change under a running training: files removed, the whole folder gone, tiny photos."""

from __future__ import annotations

import shutil

import pytest
from conftest import tiny_config, write_photos

from mlabs_desktop.core.training.dataset import BatchStream, count_small_images, scan_folder
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import LogEvent
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.training.trainer import Trainer


def test_files_removed_while_training_are_skipped_and_counted(tmp_path):
    folder = write_photos(tmp_path / "photos", count=8)
    stream = BatchStream(scan_folder(folder), batch_size=2, image_size=16, seed=0, workers=2, prefetch=1)
    batches = stream.batches(0)
    next(batches)
    removed = sorted(folder.iterdir())[:3]
    for path in removed:
        path.unlink()
    shapes = [next(batches)[2].shape for _ in range(11)]  # three more epochs: every file is asked for again
    batches.close()
    assert shapes == [(2, 16, 16, 3)] * 11  # the batches stay full: spare images stand in
    assert stream.skipped.count == 3
    assert sorted(line.split(":")[0] for line in stream.skipped.recent) == sorted(str(p) for p in removed)


def test_a_vanished_training_folder_is_a_clear_error(tmp_path):
    folder = write_photos(tmp_path / "photos", count=4)
    stream = BatchStream(scan_folder(folder), batch_size=2, image_size=16, seed=0, workers=2, prefetch=1)
    batches = stream.batches(0)
    next(batches)
    shutil.rmtree(folder)
    with pytest.raises(UserError, match="is gone .*resume"):
        for _ in range(10):
            next(batches)
    batches.close()


def test_small_images_are_counted_from_their_headers(tmp_path):
    folder = write_photos(tmp_path / "small", count=3, size=(20, 30))
    write_photos(tmp_path / "small", count=2, size=(64, 48), seed=5)  # photo0/1 overwritten bigger
    assert count_small_images(scan_folder(folder).paths, 32) == (1, 3)


def test_training_on_tiny_photos_warns_that_they_are_upscaled(tmp_path, vgg_h5, style_image):
    folder = write_photos(tmp_path / "tiny", count=4, size=(20, 18))
    logs = []
    config = tiny_config(style_image, folder, vgg_h5, max_steps=1, name="tiny-photos")
    Trainer(config, on_event=lambda e: isinstance(e, LogEvent) and logs.append(e), library=Library()).run()
    warnings = [e.message for e in logs if e.level == "warning" and "upscaled" in e.message]
    assert warnings == ["4 of 4 training images checked are smaller than 32 px and are upscaled, which blurs "
                        "them: use bigger photos or a smaller image size"]


def test_photos_added_while_training_are_announced_for_the_next_resume(tmp_path, vgg_h5, style_image):
    folder = write_photos(tmp_path / "growing", count=4)
    logs: list[str] = []

    def on_event(event) -> None:  # noqa: ANN001 - any training event
        if isinstance(event, LogEvent):
            logs.append(event.message)
        elif getattr(event, "step", None) == 1 and not (folder / "more").exists():
            write_photos(folder / "more", count=2, seed=9)  # two new photos, mid-epoch

    config = tiny_config(style_image, folder, vgg_h5, batch_size=2, epochs=3, max_steps=5, name="growing")
    model = Trainer(config, on_event=on_event, library=Library()).run()
    added = [m for m in logs if "added to the training folder" in m]
    assert added == ["2 images were added to the training folder since this run started; they are used from "
                     "the next resume (stop, then resume)"]  # said at the next epoch, and only once
    assert model.manifest.statistics["steps"] == 5
