"""Small files from strangers or damaged on disk: YAML becomes plain data or one YAMLError, JSON caches are
shortcuts that a damaged file only turns off. Each reader the app has is tried with the same hostile texts."""

from __future__ import annotations

import os

import pytest
import yaml

from mlabs_desktop.core import atomic
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.locks import file_lock
from mlabs_desktop.core.smallfiles import UnreadableYAML, load_yaml, read_json_mapping

DEEP = "[" * 5_000                           # safe_load recurses per level, past Python's limit
LONG_NUMBER = "version: " + "9" * 5000       # past Python's 4,300-digit limit for int()


def test_yaml_that_cannot_become_data_is_one_error_class():
    for text, problem in ((DEEP, "nested too deeply"), (LONG_NUMBER, "a value that cannot be read")):
        with pytest.raises(UnreadableYAML) as caught:
            load_yaml(text)
        assert isinstance(caught.value, yaml.YAMLError) and caught.value.problem.startswith(problem)
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']")  # a tag that would run code is refused
    assert load_yaml("a: [1, 2]") == {"a": [1, 2]}


def test_every_yaml_reader_words_it_instead_of_crashing(isolated_home, tmp_path):
    from mlabs_desktop.core.labs.lab_file import load_lab
    from mlabs_desktop.core.settings import load_settings, settings_path
    from mlabs_desktop.core.training.presets import load_preset

    for text in (DEEP, LONG_NUMBER):
        settings_path().parent.mkdir(parents=True, exist_ok=True)
        settings_path().write_text(text)
        assert "could not be read" in load_settings().warnings[0]  # defaults, with a warning
        (tmp_path / "preset.yaml").write_text(text)
        with pytest.raises(UserError, match="preset.yaml"):
            load_preset(tmp_path / "preset.yaml")
        (tmp_path / "ml.yaml").write_text(text)
        with pytest.raises(UserError, match="ml.yaml"):
            load_lab(tmp_path / "ml.yaml")


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", "[" * 200_000, '{"n": ' + "9" * 5000 + "}"])
def test_a_damaged_json_cache_reads_as_empty(tmp_path, text):
    path = tmp_path / "cache.json"
    path.write_text(text)
    assert read_json_mapping(path) == {}
    path.unlink()
    path.mkdir()  # a folder in its place
    assert read_json_mapping(path) == {}


def test_a_damaged_precision_verdict_is_measured_again(tiny_model, isolated_home):
    from mlabs_desktop.core.library.store import WEIGHTS
    from mlabs_desktop.core.networks import precision

    weights = tiny_model.file(WEIGHTS)
    precision.cached_fidelity(weights, lambda: precision.Fidelity(45.0, 2))
    path = precision._verdict_path(weights)
    for text in ('{"psnr_db": 50, "photos": 1e999}', '{"psnr_db": NaN, "photos": 2}', '{"psnr_db": "50", "photos": 2}',
                 '{"psnr_db": 50, "photos": 0}', "[" * 200_000):
        path.write_text(text)
        assert precision.known_fidelity(weights) is None
        assert precision.cached_fidelity(weights, lambda: precision.Fidelity(41.0, 3)).psnr_db == 41.0


def test_a_temporary_whose_name_holds_no_real_process_is_left_alone(tmp_path):
    strange = tmp_path / ".x.pid99999999999999999999-abc.part"
    strange.write_text("")
    assert not atomic.owner_gone(10**20)
    atomic.sweep_temporaries(tmp_path, older_than_seconds=10**9)
    assert strange.exists()


def test_a_folder_where_a_lock_file_belongs_is_a_clear_error(tmp_path):
    (tmp_path / "library.lock").mkdir()
    with pytest.raises(UserError, match="cannot lock the library: .* is a folder where its lock file belongs"):
        with file_lock(tmp_path / "library.lock", "the library"):
            pass
    os.rmdir(tmp_path / "library.lock")
    (tmp_path / "not-a-folder").write_text("")  # any other reason it cannot be made: a clear error too
    with pytest.raises(UserError, match="cannot lock the library: .* cannot be created"):
        with file_lock(tmp_path / "not-a-folder" / "library.lock", "the library"):
            pass
