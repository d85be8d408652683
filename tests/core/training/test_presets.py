"""Presets: shipped ones, user ones, and broken ones that name the file and line."""

from __future__ import annotations

import pytest

from mlabs_desktop.core.config import TrainingConfig
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.training.presets import find_preset, list_presets, load_preset, save_user_preset


def test_shipped_presets_match_the_issue():
    names = {p.name for p in list_presets()}
    assert {"machinelabs-lab", "reference", "quick-look", "high-quality"} <= names
    lab = find_preset("machinelabs-lab").apply(TrainingConfig())
    assert (lab.content_weight, lab.checkpoint_iterations, lab.batch_size, lab.epochs) == (15.0, 1000, 4, 2)
    ref = find_preset("reference").apply(TrainingConfig())
    assert (ref.content_weight, ref.style_weight, ref.tv_weight, ref.learning_rate, ref.batch_size,
            ref.epochs, ref.checkpoint_iterations, ref.image_size, ref.architecture) == \
        (7.5, 100.0, 200.0, 1e-3, 4, 2, 2000, 256, "classic")


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
