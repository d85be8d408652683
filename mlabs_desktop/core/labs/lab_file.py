"""Reading and checking a MachineLabs lab file (``ml.yaml``).

A lab file on the platform named a docker image, the hardware, the script's
flags (``parameters``), files fetched by URL before the run (``inputs``) and
datasets mounted at ``/machinelabs/mounts/NAME`` (``mounts``). `load_lab` reads
it with ``yaml.safe_load`` (a lab from a stranger holds data, never code: tags
such as ``!!python/object`` are refused) and checks its structure; every
problem is a `UserError` naming the file, the line and the key. Platform-only
keys (``dockerImageId``, ``cli``) and unknown ones land in `Lab.ignored`:
reported, never errors.
"""

from __future__ import annotations

import difflib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.smallfiles import UnreadableYAML, load_yaml, read_small_text

MAX_LAB_BYTES = 1 << 20
MOUNT_ROOT = "/machinelabs/mounts"

KNOWN_KEYS = ("dockerImageId", "hardwareType", "parameters", "inputs", "mounts", "cli")
PLATFORM_ONLY = {
    "dockerImageId": "platform-only: the lab runs with this installation's TensorFlow",
    "cli": "platform-only: settings of the platform's command-line client",
}
HARDWARE_TYPES = ("cpu", "gpu")

_SAFE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                                  "timestamp", "binary", "merge", "set", "omap", "pairs",
                                                  "value")}


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
            if self.root is not None:
                self._refuse_tags(self.root, "", set())
            data = load_yaml(self.text)
        except RecursionError:  # from compose or the tag check: load_yaml words its own
            raise UserError(f"{self.path.name}: {UnreadableYAML.NESTED}") from None
        except UnreadableYAML as exc:  # no line to point at
            raise UserError(f"{self.path.name}: {exc.problem}") from None
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
        from mlabs_desktop.core.transfer.http import is_url

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
