"""MachineLabs lab files (``ml.yaml``), run locally: ``mlabs-desktop lab run FILE.yaml``.

A lab file on the platform named a docker image, the hardware, the script's
flags (``parameters``), files fetched by URL before the run (``inputs``) and
datasets mounted at ``/machinelabs/mounts/NAME`` (``mounts``). Here:

* `load_lab` reads the file with ``yaml.safe_load`` (a lab from a stranger holds
  data, never code: tags such as ``!!python/object`` are refused) and checks its
  structure; every problem names the file, the line and the key. Platform-only
  keys (``dockerImageId``, ``cli``) and unknown ones land in `Lab.ignored`:
  reported, never errors.
* `plan_lab` turns the lab into the argument list of ``mlabs-desktop train`` or
  ``stylize`` (chosen from the flags), with mounts mapped to local folders,
  relative paths anchored at the lab's working folder and ``hardwareType``
  mapped to ``--device``. It reads the disk (do the folders exist?) but writes
  nothing.
* `fetch_inputs` fills ``WORKDIR/inputs/`` (from ``--input NAME=FILE`` or through
  the download cache, concurrently) and creates ``WORKDIR/outputs/``.
* `run_lab` does all of it and runs the command in this process.

The lab runs "in" its working folder (``inputs/`` and ``outputs/`` live there)
without changing the process's current directory: paths are made absolute
instead. Nothing here prints: messages go to the ``on_log`` callback, download
progress to ``progress``, and problems a user can fix are `UserError`\\ s.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shlex
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from .errors import Cancelled, UserError
from .smallfiles import read_small_text

MAX_LAB_BYTES = 1 << 20
MOUNT_ROOT = "/machinelabs/mounts"
INPUTS_DIR = "inputs"
OUTPUTS_DIR = "outputs"
DOWNLOAD_WORKERS = 4

KNOWN_KEYS = ("dockerImageId", "hardwareType", "parameters", "inputs", "mounts", "cli")
PLATFORM_ONLY = {
    "dockerImageId": "platform-only: the lab runs with this installation's TensorFlow",
    "cli": "platform-only: settings of the platform's command-line client",
}
HARDWARE_TYPES = ("cpu", "gpu")

# Flags that decide the command (exact flag names: --checkpoint-dir is not --checkpoint).
TRAIN_FLAGS = ("--style", "--train-path")
STYLIZE_FLAGS = ("--checkpoint", "--in-path")
# Flags whose relative values are paths, anchored at the lab's working folder.
PATH_FLAGS = ("--style", "--vgg-path", "--train-path", "--checkpoint-dir", "--checkpoint", "--in-path",
              "--out-path", "--test")
# Lab file names too generic to name a model after: the folder's name is used instead.
GENERIC_STEMS = ("ml", "lab", "main", "config")

_SAFE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                                  "timestamp", "binary", "merge", "set", "omap", "pairs",
                                                  "value")}

LogFn = Callable[[str], None]


# --- the lab -------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    pass_as: str
    args: tuple[str, ...]      # pass_as split the way a shell would (shlex)
    line: int
    index: int

    @property
    def where(self) -> str:
        return f"parameters[{self.index}]"


@dataclass(frozen=True)
class LabInput:
    name: str
    url: str
    line: int


@dataclass(frozen=True)
class LabMount:
    path: str                  # the dataset on the platform, e.g. machinelabs/fast-style-transfer/small
    name: str                  # appears at /machinelabs/mounts/NAME
    line: int


@dataclass(frozen=True)
class IgnoredKey:
    key: str                   # e.g. "dockerImageId" or "parameters[2].comment"
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: '{self.key}' ignored ({self.reason})"


@dataclass(frozen=True)
class Lab:
    path: Path
    hardware_type: str = "cpu"
    docker_image_id: str | None = None
    parameters: tuple[Parameter, ...] = ()
    inputs: tuple[LabInput, ...] = ()
    mounts: tuple[LabMount, ...] = ()
    ignored: tuple[IgnoredKey, ...] = ()
    hardware_line: int = 0     # 0 when hardwareType is not in the file (or empty): no --device is added

    @property
    def args(self) -> list[str]:
        return [a for p in self.parameters for a in p.args]

    def where(self, line: int) -> str:
        return f"{self.path.name} line {line}" if line else str(self.path.name)


def load_lab(path: str | os.PathLike[str]) -> Lab:
    """Read and check a lab file; every problem is a `UserError` naming the line and key."""
    path = Path(path).expanduser()
    text = read_small_text(path, MAX_LAB_BYTES, "a lab file (often ml.yaml)",
                           missing=f"lab file not found: {path}")
    return parse_lab(text, path)


def parse_lab(text: str, path: str | os.PathLike[str] = "ml.yaml") -> Lab:
    """`load_lab` on text already read; ``path`` names it in messages."""
    return _Parser(text, Path(path)).parse()


class _Parser:
    def __init__(self, text: str, path: Path):
        self.text, self.path = text, path
        self.ignored: list[IgnoredKey] = []
        self.root: yaml.Node | None = None

    def fail(self, line: int, message: str) -> UserError:
        return UserError(f"{self.path.name} line {max(1, line)}: {message}")

    # YAML -> data, refusing anything but plain data.
    def parse(self) -> Lab:
        try:
            self.root = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise self._syntax_error(exc) from None
        if self.root is not None:
            self._refuse_tags(self.root, "", set())
        try:
            data = yaml.safe_load(self.text)
        except yaml.YAMLError as exc:  # e.g. a malformed !!int; tags were refused above
            raise self._syntax_error(exc) from None
        if data is None:
            raise self.fail(1, "the lab file is empty; it needs at least 'parameters'")
        if not isinstance(data, dict):
            raise self.fail(1, "a lab file must be a mapping of keys (" + ", ".join(KNOWN_KEYS) + ")")
        return self._lab(data)

    def _syntax_error(self, exc: yaml.YAMLError) -> UserError:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or "not valid YAML"
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        key = self._key_before(line)
        return self.fail(line, f"{'in ' + repr(key) + ': ' if key else ''}not valid YAML ({detail})")

    def _key_before(self, line: int) -> str | None:
        """The top-level key whose block holds ``line`` (1-based), from the raw text."""
        lines = self.text.splitlines()
        for raw in reversed(lines[: max(1, line)]):
            if raw[:1] and not raw[0].isspace() and raw[0] not in "#-" and ":" in raw:
                return raw.split(":", 1)[0].strip().strip("'\"") or None
        return None

    def _refuse_tags(self, node: yaml.Node, where: str, seen: set[int]) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if node.tag not in _SAFE_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self.fail(node.start_mark.line + 1,
                            f"{where or 'the file'} uses the YAML tag {tag}; lab files hold plain data "
                            "only (tags that build Python objects are refused, never run)")
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self._refuse_tags(key, where or "a key", seen)
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                self._refuse_tags(value, f"{where}.{name}" if where else str(name), seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._refuse_tags(item, f"{where}[{i}]", seen)

    # Line numbers: walk the node tree along a path of keys and indexes.
    def node(self, *keys: str | int) -> yaml.Node | None:
        node = self.root
        for key in keys:
            if isinstance(key, int) and isinstance(node, yaml.SequenceNode) and key < len(node.value):
                node = node.value[key]
            elif isinstance(key, str) and isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            else:
                return None
            if node is None:
                return None
        return node

    def line(self, *keys: str | int) -> int:
        """Line (1-based) of the value at ``keys``, or of its nearest ancestor that exists."""
        for depth in range(len(keys), -1, -1):
            node = self.node(*keys[:depth])
            if node is not None:
                return node.start_mark.line + 1
        return 1

    def key_line(self, *keys: str | int) -> int:
        """Line of the key itself (a value may start on a later line)."""
        parent = self.node(*keys[:-1])
        if isinstance(parent, yaml.MappingNode):
            for k, _ in parent.value:
                if isinstance(k, yaml.ScalarNode) and k.value == keys[-1]:
                    return k.start_mark.line + 1
        return self.line(*keys)

    # Data -> Lab.
    def _lab(self, data: dict[Any, Any]) -> Lab:
        for key in data:
            if key in KNOWN_KEYS and key not in PLATFORM_ONLY:
                continue
            name = str(key)
            if key in PLATFORM_ONLY:
                reason = PLATFORM_ONLY[key]
            else:
                close = difflib.get_close_matches(name, KNOWN_KEYS, n=1)
                reason = f"unknown key{'; did you mean ' + repr(close[0]) + '?' if close else ''}"
            self.ignored.append(IgnoredKey(name, self.key_line(name), reason))
        docker = data.get("dockerImageId")
        hardware, hardware_line = self._hardware(data)
        return Lab(self.path, hardware, None if docker is None else str(docker), self._parameters(data),
                   self._inputs(data), self._mounts(data), tuple(self.ignored), hardware_line)

    def _hardware(self, data: dict[Any, Any]) -> tuple[str, int]:
        if "hardwareType" not in data:
            return "cpu", 0
        value, line = data["hardwareType"], self.line("hardwareType")
        if value is None:
            return "cpu", 0
        if not isinstance(value, str) or value.strip().lower() not in HARDWARE_TYPES:
            raise self.fail(line, f"hardwareType must be cpu or gpu, not {value!r}")
        return value.strip().lower(), line

    def _list(self, data: dict[Any, Any], key: str, what: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(self.line(key), f"'{key}' must be a list of {what} (items starting with '- '), "
                                            f"not {_kind(value)}")
        return value

    def _item(self, key: str, index: int, item: Any, fields: tuple[str, ...]) -> dict[str, Any]:
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise self.fail(self.line(key, index), f"{where} must be a mapping with "
                            + " and ".join(repr(f) for f in fields) + f", not {_kind(item)}")
        for extra in item:
            if extra not in fields:
                self.ignored.append(IgnoredKey(f"{where}.{extra}", self.key_line(key, index, str(extra)),
                                               "unknown key"))
        return item

    def _text(self, key: str, index: int, item: dict[str, Any], name: str, hint: str = "") -> str:
        """A required string field; plain numbers keep the text written in the file."""
        where, value = f"{key}[{index}]", item.get(name)
        node = self.node(key, index, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(node, yaml.ScalarNode):
            value = node.value
        if not isinstance(value, str) or not value.strip():
            if name in item:
                got = ", but it is empty" if value is None or value == "" else f", not {_kind(value)}"
            else:
                close = difflib.get_close_matches(name, [str(k) for k in item], n=1)
                got = f" (found {close[0]!r}: a typo?)" if close else ""
            raise self.fail(self.line(key, index, name), f"{where} needs a '{name}' string{hint}{got}")
        return value.strip()

    def _parameters(self, data: dict[Any, Any]) -> tuple[Parameter, ...]:
        found = []
        for i, item in enumerate(self._list(data, "parameters", "'pass-as' items")):
            item = self._item("parameters", i, item, ("pass-as",))
            text = self._text("parameters", i, item, "pass-as")
            line = self.line("parameters", i, "pass-as")
            try:
                args = tuple(shlex.split(text))
            except ValueError as exc:
                raise self.fail(line, f"parameters[{i}].pass-as cannot be split into arguments ({exc}): {text}")
            found.append(Parameter(text, args, line, i))
        return tuple(found)

    def _inputs(self, data: dict[Any, Any]) -> tuple[LabInput, ...]:
        from .downloads import is_url

        found: list[LabInput] = []
        for i, item in enumerate(self._list(data, "inputs", "'name' and 'url' items")):
            item = self._item("inputs", i, item, ("name", "url"))
            name = self._text("inputs", i, item, "name", " (the file name under inputs/)")
            url = self._text("inputs", i, item, "url", " (an http:// or https:// address)")
            line = self.line("inputs", i)
            problem = _unsafe_name(name)
            if problem:
                raise self.fail(self.line("inputs", i, "name"), f"inputs[{i}].name {name!r} {problem}")
            if not is_url(url):
                raise self.fail(self.line("inputs", i, "url"),
                                f"inputs[{i}].url must be an http:// or https:// address, not {url!r}")
            if any(other.name == name for other in found):
                raise self.fail(line, f"inputs[{i}]: a second input named {name!r}")
            found.append(LabInput(name, url, line))
        return tuple(found)

    def _mounts(self, data: dict[Any, Any]) -> tuple[LabMount, ...]:
        found: list[LabMount] = []
        for i, item in enumerate(self._list(data, "mounts", "'path' and 'name' items")):
            item = self._item("mounts", i, item, ("path", "name"))
            mount_path = self._text("mounts", i, item, "path", " (the dataset on the platform)")
            name = self._text("mounts", i, item, "name", f" (it appears at {MOUNT_ROOT}/NAME)")
            line = self.line("mounts", i)
            problem = _unsafe_name(name)
            if problem:
                raise self.fail(self.line("mounts", i, "name"), f"mounts[{i}].name {name!r} {problem}")
            if any(other.name == name for other in found):
                raise self.fail(line, f"mounts[{i}]: a second mount named {name!r}")
            found.append(LabMount(mount_path, name, line))
        return tuple(found)


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list", str: f"the text {value!r}", bool: f"{value!r}"}.get(
        type(value), f"{type(value).__name__} {value!r}")


def _unsafe_name(name: str) -> str | None:
    """Why ``name`` cannot be a plain file name inside a folder, or None."""
    if name in (".", ".."):
        return "must be a file name, not '.' or '..'"
    if any(c in name for c in "/\\") or any(ord(c) < 32 for c in name) or ":" in name:
        return "must be a plain file name (no '/', '\\', ':' or control characters)"
    return None


# --- the plan ------------------------------------------------------------------------


@dataclass
class LabPlan:
    lab: Lab
    command: str                              # "train" or "stylize"
    argv: list[str]                           # for mlabs_desktop.cli.main: [command, *args]
    workdir: Path
    mounts: dict[str, Path] = field(default_factory=dict)       # mount name -> local folder
    input_files: dict[str, Path] = field(default_factory=dict)  # input name -> local file (--input)
    remember: dict[str, str] = field(default_factory=dict)      # mount path -> folder, for Settings.lab_mounts
    added: list[str] = field(default_factory=list)              # arguments the plan added to the lab's own
    warnings: list[str] = field(default_factory=list)           # worth a "warning:" (GPU missing, unused mount)
    notes: list[str] = field(default_factory=list)              # worth a line (a remembered mount used)

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
             unique_name: Callable[[str], str] | None = None) -> LabPlan:
    """Decide the command and its arguments; nothing is written.

    ``mounts`` maps a mount's name (or its platform path) to a local folder, as
    ``--mount NAME=DIR``; ``remembered_mounts`` maps mount paths to folders from
    earlier runs (``Settings.lab_mounts``). ``inputs`` maps input names to local
    files (``--input NAME=FILE``). ``extra_args`` go last, so they override the
    lab's own flags (argparse keeps the last value), e.g. ``--image-size=32``;
    they are the user's own, relative to the current folder, and left as given.
    ``gpu_visible`` None asks the Keras backend (imports it) only when the lab
    says ``hardwareType: gpu``. ``unique_name`` makes the default model name
    unique (run_lab passes the library's); None leaves it as derived.
    """
    workdir = Path(workdir).expanduser().resolve() if workdir else lab.path.expanduser().resolve().parent
    args = list(lab.args)
    command = _choose_command(lab)
    plan = LabPlan(lab, command, [], workdir)
    _check_inputs(lab, inputs or {}, plan)
    local_mounts = _resolve_mounts(lab, dict(mounts or {}), dict(remembered_mounts or {}), plan)

    rewritten: list[str] = []
    expect_path = False
    for arg in args:
        arg = _rewrite_mount(arg, lab, local_mounts)
        name, value = _flag(arg)
        if value is not None and name in PATH_FLAGS:
            arg = f"{name}={_anchor(name, value, workdir)}"
        elif expect_path and not arg.startswith("-"):
            arg = _anchor(expect_path, arg, workdir)
        expect_path = name if (value is None and name in PATH_FLAGS) else False
        rewritten.append(arg)

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
    from .downloads import is_url

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
        from .devices import detect_devices

        gpu_visible = any(d.kind == "gpu" for d in detect_devices())
    if gpu_visible:
        return "gpu"
    from .devices import no_gpu_hint

    plan.warnings.append(f"{lab.where(lab.hardware_line)}: the lab asks for a GPU (hardwareType: gpu) but none "
                         f"is visible, so it runs on the CPU, much more slowly. {no_gpu_hint()}")
    return "auto"


# --- inputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class InputReport:
    """One input is in place at ``path``."""
    name: str
    path: Path
    source: Path               # the --input file or the cached download
    how: str                   # "linked", "copied" or "kept" (already that very file)
    origin: str                # "file" (--input), "download" or "cache" (downloaded on an earlier run)


def fetch_inputs(plan: LabPlan, progress: Callable[[str, Any], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> list[InputReport]:
    """Put every input at ``WORKDIR/inputs/NAME`` and create ``WORKDIR/outputs/``.

    A file given with ``--input NAME=FILE`` is used as is; the others are
    downloaded through the cache (`downloads.download`: a URL is fetched once,
    ever), up to `DOWNLOAD_WORKERS` at a time, as the platform did. Each file is
    then *hard-linked* into ``inputs/`` when source and folder share a file
    system (no copy of a 500 MB VGG file), else copied. A hard link is the same
    file: editing ``inputs/NAME`` in place would change the source (or the cached
    download) too; the commands a lab runs only read their inputs.

    ``progress(name, DownloadProgress)`` is called from the download threads.
    Errors name the input; after the first failure the other downloads are
    cancelled (their partial files stay resumable in the cache).
    """
    from .downloads import cached_path, download

    lab = plan.lab
    for folder in (plan.inputs_dir, plan.outputs_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {folder}: {exc.strerror or exc}; check that the folder is writable "
                            "or pass --workdir DIR") from None
    sources: dict[str, tuple[Path, str]] = {n: (p, "file") for n, p in plan.input_files.items()}
    wanted = [i for i in lab.inputs if i.name not in sources]
    failed = threading.Event()

    def stop() -> bool:
        return failed.is_set() or bool(cancelled and cancelled())

    def fetch(item: LabInput) -> tuple[Path, str]:
        report = (lambda p: progress(item.name, p)) if progress else None
        origin = "cache" if cached_path(item.url) is not None else "download"
        try:
            return download(item.url, progress=report, cancelled=stop), origin
        except UserError as exc:
            failed.set()
            raise UserError(f"{lab.where(item.line)}: input '{item.name}': {exc}; or give the file with "
                            f"--input {item.name}=FILE") from None
        except BaseException:
            failed.set()
            raise

    if wanted:
        with ThreadPoolExecutor(max_workers=min(DOWNLOAD_WORKERS, len(wanted)),
                                thread_name_prefix="lab-input") as pool:
            futures = [(item, pool.submit(fetch, item)) for item in wanted]
            errors: list[BaseException] = []
            for item, future in futures:
                try:
                    sources[item.name] = future.result()
                except BaseException as exc:  # noqa: BLE001 - the first real error is raised below
                    errors.append(exc)
        if errors:
            # A Cancelled caused by our own stop() hides the error that set it.
            real = [e for e in errors if not isinstance(e, Cancelled)]
            raise (real or errors)[0]

    reports = []
    for item in lab.inputs:
        source, origin = sources[item.name]
        target = plan.inputs_dir / item.name
        try:
            how = place_file(source, target)
        except OSError as exc:
            raise UserError(f"{lab.where(item.line)}: input '{item.name}': cannot put {source} at {target}: "
                            f"{exc.strerror or exc}") from None
        reports.append(InputReport(item.name, target, source, how, origin))
    return reports


def place_file(source: Path, target: Path) -> str:
    """Hard-link (else copy) ``source`` to ``target``, replacing it atomically.
    Returns "kept" (already that file), "linked" or "copied"."""
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(21, "a folder of that name is in the way", str(target))
    with contextlib.suppress(OSError):
        if target.exists() and os.path.samefile(source, target):
            return "kept"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        try:
            os.link(source, tmp)
            how = "linked"
        except OSError:
            shutil.copyfile(source, tmp)
            how = "copied"
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return how


# --- running -------------------------------------------------------------------------


def parse_assignments(values: Iterable[str] | None, flag: str) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` from a repeated command-line flag, as a dict."""
    result: dict[str, str] = {}
    for value in values or ():
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            what = "DIR" if flag == "--mount" else "FILE"
            raise UserError(f"{flag} expects NAME={what}, not {value!r}")
        result[name.strip()] = rest.strip()
    return result


def run_lab(path: str | os.PathLike[str], workdir: str | os.PathLike[str] | None = None,
            mounts: Mapping[str, str | os.PathLike[str]] | None = None,
            inputs: Mapping[str, str | os.PathLike[str]] | None = None,
            extra_args: Sequence[str] = (), on_log: LogFn | None = None,
            progress: Callable[[str, Any], None] | None = None,
            cancelled: Callable[[], bool] | None = None,
            gpu_visible: bool | None = None) -> int:
    """Run a lab file here: load, plan, remember the mounts, fetch inputs, then run
    ``mlabs-desktop train|stylize`` in this process and return its exit code.

    ``workdir`` defaults to the lab file's folder. ``extra_args`` are appended
    after the lab's parameters and override them (e.g. ``--image-size=32`` or
    ``--max-steps=10`` for a quick try of a lab written for a GPU). Problems found
    before the command starts raise `UserError`; the command's own errors are
    printed by it and come back as its exit code (2 for a user error).
    """
    from .library import Library
    from .settings import load_settings, save_settings

    log = on_log or (lambda message: None)
    lab = load_lab(path)
    for ignored in lab.ignored:
        log(f"{lab.path.name} {ignored}")
    settings = load_settings()
    plan = plan_lab(lab, workdir, mounts, inputs, settings.lab_mounts, extra_args, gpu_visible,
                    unique_name=Library().unique_name)
    for note in plan.notes:
        log(note)
    for warning in plan.warnings:
        log(f"warning: {warning}")
    if plan.remember and any(settings.lab_mounts.get(k) != v for k, v in plan.remember.items()):
        settings = load_settings()  # fresh, so a change made meanwhile by the app is kept
        settings.lab_mounts.update(plan.remember)
        save_settings(settings)
    for report in fetch_inputs(plan, progress, cancelled):
        origin = {"file": f"from {report.source}", "download": "downloaded",
                  "cache": "already downloaded"}[report.origin]
        log(f"input {report.name}: {origin}, {report.how} into {plan.inputs_dir}")
    log("running: mlabs-desktop " + " ".join(shlex.quote(a) for a in plan.argv))
    from .. import cli

    return cli.main(plan.argv)
