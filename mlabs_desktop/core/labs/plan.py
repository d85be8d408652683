"""A lab turned into a command line: ``mlabs-desktop train`` or ``stylize`` and its flags.

`plan_lab` chooses the command from the flags, maps mounts to local folders,
anchors relative paths at the lab's working folder and maps ``hardwareType`` to
``--device``. It reads the disk (do the folders exist?) but writes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.labs.lab_file import MOUNT_ROOT, Lab

INPUTS_DIR = "inputs"
OUTPUTS_DIR = "outputs"

# Flags that decide the command (exact flag names: --checkpoint-dir is not --checkpoint).
TRAIN_FLAGS = ("--style", "--train-path")
STYLIZE_FLAGS = ("--checkpoint", "--in-path")
# Flags whose relative values are paths, anchored at the lab's working folder.
PATH_FLAGS = ("--style", "--vgg-path", "--train-path", "--checkpoint-dir", "--checkpoint", "--in-path",
              "--out-path", "--test")
# Flags whose values are written to: a stranger's lab may write only inside its working folder.
WRITE_FLAGS = ("--out-path", "--checkpoint-dir")
# Flags only the person running a lab may give (after `--`), never the lab file itself.
RUNNER_ONLY_FLAGS = ("--overwrite",)
# Lab file names too generic to name a model after: the folder's name is used instead.
GENERIC_STEMS = ("ml", "lab", "main", "config")


@dataclass
class LabPlan:
    lab: Lab
    command: str                              # "train" or "stylize"
    argv: list[str]                           # for mlabs_desktop.cli.main.main: [command, *args]
    workdir: Path
    mounts: dict[str, Path] = field(default_factory=dict)       # mount name -> local folder
    input_files: dict[str, Path] = field(default_factory=dict)  # input name -> local file (--input)
    remember: dict[str, str] = field(default_factory=dict)      # mount path -> folder, for Settings.lab_mounts
    added: list[str] = field(default_factory=list)              # arguments the plan added to the lab's own
    warnings: list[str] = field(default_factory=list)           # worth a "warning:" (GPU missing, unused mount)
    notes: list[str] = field(default_factory=list)              # worth a line (a remembered mount used)
    reads: list[str] = field(default_factory=list)              # files, folders and URLs the command reads
    reads_outside: list[str] = field(default_factory=list)      # of those, local ones outside its own folders
    writes: list[Path] = field(default_factory=list)            # where the command writes

    @property
    def inputs_dir(self) -> Path:
        return self.workdir / INPUTS_DIR

    @property
    def outputs_dir(self) -> Path:
        return self.workdir / OUTPUTS_DIR


def _flag(arg: str) -> tuple[str, str | None]:
    """("--flag", "value") for "--flag=value", ("--flag", None) for "--flag", (arg, None) otherwise."""
    if arg.startswith("--") and "=" in arg:
        name, value = arg.split("=", 1)
        return name, value
    return arg, None


def _has_flag(args: Iterable[str], *names: str) -> bool:
    return any(_flag(a)[0] in names for a in args)


def plan_lab(lab: Lab, workdir: str | os.PathLike[str] | None = None,
             mounts: Mapping[str, str | os.PathLike[str]] | None = None,
             inputs: Mapping[str, str | os.PathLike[str]] | None = None,
             remembered_mounts: Mapping[str, str] | None = None,
             extra_args: Sequence[str] = (), gpu_visible: bool | None = None,
             unique_name: Callable[[str], str] | None = None,
             allow_writes_outside: bool = False) -> LabPlan:
    """Decide the command and its arguments; nothing is written.

    ``mounts`` maps a mount's name (or its platform path) to a local folder, as
    ``--mount NAME=DIR``; ``remembered_mounts`` maps mount paths to folders from
    earlier runs (``Settings.lab_mounts``). ``inputs`` maps input names to local
    files (``--input NAME=FILE``). ``extra_args`` go last, so they override the
    lab's own flags (argparse keeps the last value), e.g. ``--image-size=32``;
    they are the user's own, relative to the current folder, and left as given.
    ``gpu_visible`` None asks the Keras backend (imports it) only when the lab
    says ``hardwareType: gpu``. ``unique_name`` makes the default model name
    unique (prepare_lab passes the library's); None leaves it as derived.
    """
    workdir = Path(workdir).expanduser().resolve() if workdir else lab.path.expanduser().resolve().parent
    command = _choose_command(lab)
    plan = LabPlan(lab, command, [], workdir)
    _check_inputs(lab, inputs or {}, plan)
    local_mounts = _resolve_mounts(lab, dict(mounts or {}), dict(remembered_mounts or {}), plan)

    rewritten: list[str] = []
    expect_path: str | bool = False
    for parameter in lab.parameters:
        for arg in parameter.args:
            arg = _rewrite_mount(arg, lab, local_mounts)
            name, value = _flag(arg)
            if name in RUNNER_ONLY_FLAGS:
                raise UserError(f"{lab.where(parameter.line)}: a lab file may not pass {name}; only the person "
                                f"running it may (after `--`)")
            if value is not None and name in PATH_FLAGS:
                value = _anchor(name, value, workdir)
                arg = f"{name}={value}"
                _note_path(plan, name, value, parameter.line, allow_writes_outside)
            elif expect_path and not arg.startswith("-"):
                arg = _anchor(expect_path, arg, workdir)
                _note_path(plan, expect_path, arg, parameter.line, allow_writes_outside)
            expect_path = name if (value is None and name in PATH_FLAGS) else False
            rewritten.append(arg)
    for folder in (plan.inputs_dir, plan.outputs_dir):
        if not allow_writes_outside and not _inside(folder, workdir):
            raise UserError(f"{folder} leads outside the lab's working folder {workdir} (a link?); the lab "
                            "writes there, so it is refused (add --allow-writes-outside to allow it)")

    everything = rewritten + list(extra_args)
    if lab.hardware_line and not _has_flag(everything, "--device"):
        plan.added.append(f"--device={_device(lab, plan, gpu_visible)}")
    if command == "train":
        if not _has_flag(everything, "--architecture"):
            plan.added.append("--architecture=classic")
        if not _has_flag(everything, "--name"):
            name = default_model_name(lab)
            plan.added.append(f"--name={unique_name(name) if unique_name else name}")
    plan.argv = [command, *rewritten, *plan.added, *extra_args]
    return plan


def _inside(path: str | Path, folder: Path) -> bool:
    """Whether ``path``, with every link followed, is ``folder`` or lies within it."""
    return Path(path).expanduser().resolve().is_relative_to(folder.resolve())


def _note_path(plan: LabPlan, flag: str, value: str, line: int, allow_writes_outside: bool) -> None:
    """Record what the flag reads or writes; refuse a write outside the working folder."""
    from mlabs_desktop.core.transfer.http import is_url

    local = os.path.isabs(os.path.expanduser(value)) and not is_url(value)
    if flag in WRITE_FLAGS:
        if not local or not _inside(value, plan.workdir):
            if not allow_writes_outside:
                raise UserError(f"{plan.lab.where(line)}: {flag}={value} writes outside the lab's working folder "
                                f"{plan.workdir}; a lab file may only write there (add --allow-writes-outside "
                                "if you trust it)")
        plan.writes.append(Path(value).expanduser())
        return
    plan.reads.append(value)
    own = [plan.workdir, *plan.mounts.values()]
    if local and not any(_inside(value, folder) for folder in own):
        plan.reads_outside.append(value)


def default_model_name(lab: Lab) -> str:
    """The lab file's name without ``.yaml``; for a generic ``ml.yaml``, its folder's name."""
    path = lab.path.expanduser().resolve()
    stem = path.stem
    if stem.lower() in GENERIC_STEMS and path.parent.name:
        return path.parent.name
    return stem or "lab"


def _choose_command(lab: Lab) -> str:
    args = lab.args
    train = [f for f in TRAIN_FLAGS if _has_flag(args, f)]
    stylize = [f for f in STYLIZE_FLAGS if _has_flag(args, f)]
    line = lab.parameters[0].line if lab.parameters else 0
    if train and stylize:
        raise UserError(f"{lab.where(line)}: parameters mix training flags ({', '.join(train)}) and "
                        f"stylize flags ({', '.join(stylize)}); a lab either trains or stylizes")
    if not train and not stylize:
        raise UserError(f"{lab.where(line)}: parameters name none of {', '.join(TRAIN_FLAGS)} (a training lab) "
                        f"or {', '.join(STYLIZE_FLAGS)} (a stylize lab), so there is nothing to run")
    return "train" if train else "stylize"


def _check_inputs(lab: Lab, given: Mapping[str, str | os.PathLike[str]], plan: LabPlan) -> None:
    names = [i.name for i in lab.inputs]
    for name, file in given.items():
        if name not in names:
            known = ", ".join(names) or "it has none"
            raise UserError(f"--input {name}=...: the lab has no input named {name!r} (its inputs: {known})")
        path = Path(file).expanduser()
        if not path.is_file():
            raise UserError(f"--input {name}={file}: no such file" if not path.exists()
                            else f"--input {name}={file}: not a file")
        plan.input_files[name] = path.resolve()


def _resolve_mounts(lab: Lab, given: dict[str, str | os.PathLike[str]], remembered: dict[str, str],
                    plan: LabPlan) -> dict[str, Path]:
    """Mount name -> local folder for every mount the lab uses; errors say what to pass."""
    by_name = {m.name: m for m in lab.mounts}
    by_path = {m.path: m for m in lab.mounts}
    chosen: dict[str, Path] = {}
    for key, folder in given.items():
        mount = by_name.get(key) or by_path.get(key)
        name = mount.name if mount else key
        if mount is None and not _referenced(lab, key):
            known = ", ".join(f"{m.name} ({m.path})" for m in lab.mounts) or "it has none"
            raise UserError(f"--mount {key}=...: the lab has no mount named {key!r} (its mounts: {known})")
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise UserError(f"--mount {key}={folder}: " + ("not a folder" if path.exists() else "no such folder"))
        chosen[name] = path.resolve()
        if mount is not None:
            plan.remember[mount.path] = str(chosen[name])
    needed = [(m.name, m) for m in lab.mounts] + [(n, None) for n in sorted(_referenced_names(lab))
                                                  if n not in by_name]
    for name, mount in needed:
        if name in chosen:
            continue
        line = mount.line if mount else _first_use(lab, name)
        used = _referenced(lab, name)
        remembered_folder = remembered.get(mount.path) if mount else None
        if remembered_folder:
            path = Path(remembered_folder)
            if path.is_dir():
                chosen[name] = path
                plan.notes.append(f"mount '{name}' ({mount.path}) is {path}, remembered from an earlier run; "
                                     f"pass --mount {name}=DIR for another folder")
                continue
            if used:
                raise UserError(f"{lab.where(line)}: the folder remembered for mount '{name}' ({mount.path}), "
                                f"{path}, no longer exists; pass --mount {name}=DIR with the local folder")
        if used:
            what = f"the local folder holding {mount.path}" if mount else "a local folder"
            raise UserError(f"{lab.where(_first_use(lab, name))}: the lab reads {MOUNT_ROOT}/{name}; pass "
                            f"--mount {name}=DIR with {what}")
        plan.warnings.append(f"mount '{name}' ({mount.path}) has no local folder; no parameter uses it, "
                             "so the lab runs without it")
    plan.mounts = chosen
    return chosen


def _mount_prefix(arg: str) -> tuple[str, str, str] | None:
    """("head", NAME, "rest") where arg (or its --flag= value) starts with /machinelabs/mounts/NAME."""
    name, value = _flag(arg)
    head, text = (f"{name}=", value) if value is not None else ("", arg)
    root = MOUNT_ROOT + "/"
    if not text.startswith(root):
        return None
    mount, sep, rest = text[len(root):].partition("/")
    return (head, mount, sep + rest) if mount else None


def _referenced_names(lab: Lab) -> set[str]:
    return {m[1] for a in lab.args if (m := _mount_prefix(a))}


def _referenced(lab: Lab, name: str) -> bool:
    return name in _referenced_names(lab)


def _first_use(lab: Lab, name: str) -> int:
    for p in lab.parameters:
        if any((m := _mount_prefix(a)) and m[1] == name for a in p.args):
            return p.line
    return 0


def _rewrite_mount(arg: str, lab: Lab, local: Mapping[str, Path]) -> str:
    found = _mount_prefix(arg)
    if not found:
        return arg
    head, name, rest = found
    folder = local[name]  # _resolve_mounts made sure every referenced mount has one
    return head + str(folder / rest.lstrip("/") if rest.strip("/") else folder)


def _anchor(flag: str, value: str, workdir: Path) -> str:
    """A relative path made absolute against the lab's folder; URLs, absolute paths and
    library model names (``--checkpoint=NAME``) are left alone."""
    from mlabs_desktop.core.transfer.http import is_url

    if not value or is_url(value) or value.startswith("~") or os.path.isabs(value):
        return value
    if flag == "--checkpoint":
        # A bare word may be a model in the library; it is a folder of the lab only
        # when it is one of the lab's own folders, exists there, or has a separator.
        first = value.replace("\\", "/").split("/", 1)[0]
        if not ("/" in value or "\\" in value or first in (INPUTS_DIR, OUTPUTS_DIR) or (workdir / value).exists()):
            return value
    return str(workdir / value)


def _device(lab: Lab, plan: LabPlan, gpu_visible: bool | None) -> str:
    if lab.hardware_type != "gpu":
        return "cpu"
    if gpu_visible is None:
        from mlabs_desktop.core.hardware.devices import detect_devices

        gpu_visible = any(d.kind == "gpu" for d in detect_devices())
    if gpu_visible:
        return "gpu"
    from mlabs_desktop.core.hardware.devices import no_gpu_hint

    plan.warnings.append(f"{lab.where(lab.hardware_line)}: the lab asks for a GPU (hardwareType: gpu) but none "
                         f"is visible, so it runs on the CPU, much more slowly. {no_gpu_hint()}")
    return "auto"
