"""Advice is worded once: the command line names flags, the app names fields, the sentence is the same."""

from __future__ import annotations

import re

import pytest

from mlabs_desktop.core import messages
from mlabs_desktop.core.events import OutOfMemoryEvent

EVENTS = [OutOfMemoryEvent(4, 2, 1, "oom", 0), OutOfMemoryEvent(1, 2, 1, "oom", 0), OutOfMemoryEvent(4, 1, 0, None, 3)]


def skeleton(text: str, voice: messages.Voice) -> str:
    """The sentence with the voice's control names taken out."""
    for name in sorted((v for v in vars(voice).values() if "{" not in v and v), key=len, reverse=True):
        text = text.replace(name, "<control>")
    return re.sub(r"<control>.*?(?=[,.;]|$)", "<control>", text)


@pytest.mark.parametrize("task", [None, "training", "stylizing"])
def test_out_of_memory_is_one_sentence_in_two_voices(task):
    cli, app = messages.out_of_memory(messages.CLI, task), messages.out_of_memory(messages.APP, task)
    assert "--" in cli and "--" not in app
    assert skeleton(cli, messages.CLI) == skeleton(app, messages.APP)


@pytest.mark.parametrize("event", EVENTS)
def test_training_out_of_memory_names_flags_or_fields(event):
    cli = messages.training_out_of_memory(event, messages.CLI)
    app = messages.training_out_of_memory(event, messages.APP)
    assert cli.startswith(f"out of memory at batch size {event.batch_size} (step {event.step})")
    assert app.split(". ")[0] == cli.split(". ")[0]  # the facts are the same
    assert "mlabs-desktop" not in app and "--" not in app
    if event.smaller_batch and event.model_name:
        assert f'`mlabs-desktop resume "oom" --batch-size={event.smaller_batch}`' in cli
        assert f"Resume on “oom” in the Library with Batch size {event.smaller_batch}" in app


def test_missing_vgg_weights_say_how_in_each_voice():
    cli = messages.vgg_missing(messages.CLI, "https://x/vgg.h5", "at /x.h5")
    app = messages.vgg_missing(messages.APP, "https://x/vgg.h5")
    assert "https://x/vgg.h5" in cli and "https://" not in app
    assert "mlabs-desktop download vgg19" in cli and "--vgg-path" in cli and "at /x.h5" in cli
    assert "Settings > Download" in app and "--" not in app and "mlabs-desktop" not in app


def worded_errors(tmp_path):
    """Real core errors whose advice names a control, raised by the code that owns them."""
    from mlabs_desktop.core.errors import UserError
    from mlabs_desktop.core.hardware.devices import choose_device
    from mlabs_desktop.core.outputs import WouldReplace
    from mlabs_desktop.core.training.dataset import scan_folder

    a_file = tmp_path / "odd {name} photo.jpg"  # braces in a fact are never read as a template
    a_file.write_bytes(b"x")
    for raise_it in (lambda: scan_folder(a_file), lambda: choose_device("tpu")):
        with pytest.raises(UserError) as caught:
            raise_it()
        yield caught.value
    yield WouldReplace([a_file])


def test_worded_errors_name_flags_on_the_command_line_and_fields_in_the_app(tmp_path):
    errors = list(worded_errors(tmp_path))
    assert len(errors) == 3
    for error in errors:
        cli, app = str(error), error.text(messages.APP)
        assert error.text(messages.CLI) == cli
        assert "--" in cli and "--" not in app, (cli, app)
        assert skeleton(cli, messages.CLI) == skeleton(app, messages.APP)
    assert "odd {name} photo.jpg" in str(errors[0]) and "odd {name} photo.jpg" in errors[2].text(messages.APP)
    assert errors[0].text(messages.APP).startswith("Training photos must be a folder of images")


def test_a_plain_error_reads_the_same_in_both_voices():
    from mlabs_desktop.core.errors import UserError

    error = UserError("cannot read {this} file")
    assert error.text(messages.APP) == error.text(messages.CLI) == "cannot read {this} file"
