"""Advice to the user, worded once: the facts come in, and a `Voice` names the controls.

The command line names its flags (``--batch-size``), the app its fields and buttons
("Batch size"); the sentence around them is the same, so the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlabs_desktop.core.events import OutOfMemoryEvent


@dataclass(frozen=True)
class Voice:
    """How advice names each control the user can change.

    A field may hold ``{fact}`` placeholders (``{name}``, ``{size}``): they are
    filled from the facts of the message that uses it.
    """

    batch_size: str
    image_size: str
    smaller_photo: str     # how to stylize a smaller copy of a photo
    lite: str
    cpu: str
    batch_of: str          # with {size}: a batch size set to a value
    resume: str            # with {name} and {batch} (a `batch_of`): how to continue a model
    auto_batch: str        # how to have smaller batches tried automatically ("" where the app asks anyway)
    get_vgg: str           # with {url}: how to download the VGG19 weights
    pick_vgg: str          # how to point at a VGG19 file the user already has
    style: str             # the style image
    give_style: str        # how to give a style image
    train_path: str        # the training photos
    give_photos: str       # how to give the training photos
    name: str              # a model's name
    resume_model: str      # with {name}: how to continue an existing model
    architecture: str
    precision: str
    device: str
    in_path: str           # what is stylized
    out_path: str          # where results go
    out: str               # where an export goes
    size: str              # an export's fixed size
    overwrite: str         # how to agree to replacing files
    list_models: str       # where the library's models are listed
    brush: str             # the size of the brush strokes at stylize time
    mix: str               # a second style mixed in
    mix_results: str       # how to mix two styles' results rather than their weights
    library_dir: str       # where the library folder is chosen


CLI = Voice(batch_size="--batch-size", image_size="--image-size", smaller_photo="with a smaller --max-size",
            lite="--architecture=lite", cpu="--device=cpu", batch_of="--batch-size={size}",
            resume='`mlabs-desktop resume "{name}" {batch}`',
            auto_batch=", or add --auto-batch to retry with smaller batches automatically",
            get_vgg="run `mlabs-desktop download vgg19` (or download {url})",
            pick_vgg="pass --vgg-path with a file you already have (Keras's notop .h5 or the MatConvNet .mat)",
            style="--style", give_style="pass --style=FILE", train_path="--train-path",
            give_photos="pass --train-path=DIR", name="--name", resume_model='`mlabs-desktop resume "{name}"`',
            architecture="--architecture", precision="--precision", device="--device", in_path="--in-path",
            out_path="--out-path", out="--out", size="--size", overwrite="add --overwrite to replace",
            list_models="`mlabs-desktop library list` lists them", brush="--brush", mix="--mix",
            mix_results="leave out --mix-weights", library_dir="library_dir in settings.yaml")
APP = Voice(batch_size="Batch size", image_size="Image size", smaller_photo="a smaller copy of the photo",
            lite="the lite architecture", cpu="the CPU (Settings > Device)", batch_of="Batch size {size}",
            resume="Resume on “{name}” in the Library with {batch}", auto_batch="",
            get_vgg="open Settings > Download", pick_vgg="choose a file you already have in Settings",
            style="Style image", give_style="choose a Style image", train_path="Training photos",
            give_photos="choose a folder of Training photos", name="Model name",
            resume_model="Resume on “{name}” in the Library", architecture="Architecture",
            precision="Precision", device="Device (Settings)", in_path="the input", out_path="the output",
            out="folder", size="the fixed size", overwrite="agree to replace", list_models="the Library shows them",
            brush="Brush", mix="Mix", mix_results="turn off “Blend the networks”",
            library_dir="Library folder in Settings")


class Worded:
    """A voice's control names with a message's facts filled in: what ``{voice.x}`` reads in a template."""

    def __init__(self, voice: Voice, facts: dict[str, object]):
        self._voice, self._facts = voice, facts

    def __getattr__(self, field: str) -> str:
        return getattr(self._voice, field).format_map(self._facts)


def word(template: str, voice: Voice, facts: dict[str, object]) -> str:
    """``template`` with ``{voice.x}`` as ``voice`` names control x, and ``{fact}`` from ``facts``.

    Facts are substituted once, never re-read as a template, so a path with braces is safe.
    """
    return template.format_map({**facts, "voice": Worded(voice, facts)})


def out_of_memory(voice: Voice, task: str | None = None) -> str:
    """Memory ran out (``task``: "training", "stylizing", or None when it is not known)."""
    if task == "stylizing":
        fix = f"close other programs, or stylize {voice.smaller_photo}, or use {voice.cpu}"
    elif task == "training":
        fix = (f"use a smaller {voice.batch_size} or {voice.image_size} (or {voice.lite}), close other programs, "
               f"or train on {voice.cpu}")
    else:
        fix = (f"close other programs; to train, use a smaller {voice.batch_size} or {voice.image_size}; "
               f"to stylize, stylize {voice.smaller_photo}")
    return f"Out of memory: {fix}."


def training_out_of_memory(event: OutOfMemoryEvent, voice: Voice) -> str:
    """What ran out, what is kept, and how to go on from there."""
    text = f"out of memory at batch size {event.batch_size} (step {event.step}); "
    if event.model_name:
        text += f"model '{event.model_name}' keeps its last checkpoint (step {event.checkpoint_step})"
    else:
        text += "nothing was saved yet"
    smaller = event.smaller_batch
    if smaller is None:
        return text + (f". Even one image per step does not fit: close other programs, or train a new model "
                       f"with a smaller {voice.image_size} or {voice.lite}")
    batch = voice.batch_of.format(size=smaller)
    retry = (f"Continue it with {voice.resume.format(name=event.model_name, batch=batch)}" if event.model_name
             else f"Try {batch}")
    return text + f". {retry}{voice.auto_batch}"


def vgg_missing(voice: Voice, url: str, where: str = "") -> str:
    """The VGG19 weights that measure the losses are not there (``where``: where they were looked for)."""
    return (f"The VGG19 weights that measure the losses are missing{' ' + where if where else ''}: "
            f"{voice.get_vgg.format(url=url)} to fetch them (80 MB), or {voice.pick_vgg}")
