"""Presets: shipped ones, user ones, and broken ones that name the file and line."""

from __future__ import annotations

import pytest

from mlabs_desktop.core.config import TrainingConfig, model_steps, run_end, steps_per_epoch
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.training.presets import find_preset, list_presets, load_preset, save_user_preset


def test_shipped_presets_match_the_issue():
    names = {p.name for p in list_presets()}
    assert {"machinelabs-lab", "reference", "quick-look", "high-quality"} <= names
    lab = find_preset("machinelabs-lab").apply(TrainingConfig())
    assert (lab.content_weight, lab.checkpoint_iterations, lab.batch_size, lab.steps) == (15.0, 1000, 4, 41390)
    ref = find_preset("reference").apply(TrainingConfig())
    assert (ref.content_weight, ref.style_weight, ref.tv_weight, ref.learning_rate, ref.batch_size,
            ref.steps, ref.checkpoint_iterations, ref.image_size, ref.architecture) == \
        (7.5, 100.0, 200.0, 1e-3, 4, 41390, 2000, 256, "classic")


@pytest.mark.parametrize("preset", ["quick-look", "reference", "machinelabs-lab", "high-quality"])
def test_every_shipped_preset_promises_its_steps_whatever_the_folder(preset):
    config = find_preset(preset).apply(TrainingConfig())
    promised = int(find_preset(preset).description.split(" steps")[0].split()[-1].replace(",", ""))
    assert config.steps == promised > 0 and config.max_steps == 0
    for images in (1, 6, 300, 83_000):
        assert model_steps(config, images) == run_end(config, images) == promised


def test_epochs_decide_only_without_steps_and_max_steps_ends_a_run_sooner():
    config = TrainingConfig(batch_size=4, epochs=2)
    assert model_steps(config, 6) == 2 and model_steps(config, 3) == 2       # a partial batch waits a pass
    assert model_steps(config, 83) == 40 and steps_per_epoch(83, 4) == 20
    assert model_steps(config.replace(steps=500), 6) == 500
    quick = find_preset("quick-look").apply(TrainingConfig()).replace(max_steps=300)
    assert run_end(quick, 6) == 300 and model_steps(quick, 6) == 3000
    assert run_end(quick, 6, start_step=2900) == 3000                      # never past the model's steps


def test_user_preset_round_trip_and_override():
    path = save_user_preset("my style", {"batch-size": 8, "style-weight": 300})
    assert path.is_file()
    assert find_preset("my style").apply(TrainingConfig()).batch_size == 8
    save_user_preset("reference", {"batch-size": 2})
    assert find_preset("reference").params == {"batch-size": 2}      # the user's copy wins


@pytest.mark.parametrize("text, message", [
    ("batch-size: 4\nbogus-key: 1\n", "line 2: unknown key 'bogus-key'"),
    ("epochs: 2\nlearning-rate: fast\n", "line 2: learning-rate must be a number"),
    ("epochs: [1, 2\n", "line 2"),
    ("- just\n- a list\n", "line 1: a preset must be a mapping"),
    ("architecture: !!python/object/apply:os.system ['true']\n", "line 1"),
])
def test_broken_preset_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_preset(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_bad_preset_names_are_refused():
    with pytest.raises(UserError):
        save_user_preset("../escape", {})
