"""Where results may be written: never over a file the same run reads, never over an existing file unasked.

A person's photos are irreplaceable. Every command that writes picks its
targets through these functions before it starts: a target that is one of the
run's inputs (the same path, a symlink or a hard link to it) gets a
``-<style>`` name instead, and a target that already exists is only replaced
when the person said so (``--overwrite`` on the command line, a question in the app).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.messages import CLI

# How many paths an error names before it says "and N more".
SHOWN = 4


class WouldReplace(UserError):
    """Writing would replace files that exist; nothing has been written."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)
        self.template = "would replace {what}; {voice.overwrite} {them}, or choose another output"
        self.facts = {"what": describe(self.paths), "them": "it" if len(self.paths) == 1 else "them"}
        super().__init__(self.text(CLI))


def describe(paths: Sequence[Path]) -> str:
    """``2 existing files: a.jpg, b.jpg`` with at most `SHOWN` names."""
    names = ", ".join(str(p) for p in paths[:SHOWN])
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    noun = "existing file" if len(paths) == 1 else f"{len(paths)} existing files"
    return f"{noun}: {names}{more}"


def styled_name(stem: str, style: str, ext: str) -> str:
    """``<stem>-<style><ext>``: the name a styled copy gets beside (or instead of) its original."""
    from mlabs_desktop.core.filenames import slugify

    return f"{stem}-{slugify(style)}{ext}"


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` leads to, following symlinks; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def occupied(path: Path) -> bool:
    """Whether writing ``path`` would replace something: a file, a folder, or a link (even a broken one)."""
    return path.exists() or path.is_symlink()


class InputSet:
    """The files a run reads, recognised however a target names them."""

    def __init__(self, paths: Iterable[Path]):
        self.paths = [Path(p) for p in paths]
        self._ids = {i for p in self.paths if (i := file_identity(p)) is not None}
        self._resolved = {Path(p).expanduser().resolve() for p in self.paths}

    def holds(self, target: Path) -> bool:
        identity = file_identity(target)
        return (identity is not None and identity in self._ids) or \
            Path(target).expanduser().resolve() in self._resolved


def refuse_replacing(targets: Iterable[Path], overwrite: bool) -> None:
    """Raise `WouldReplace` listing every target that exists, unless ``overwrite``."""
    if overwrite:
        return
    taken = [Path(t) for t in targets if occupied(Path(t))]
    if taken:
        raise WouldReplace(taken)


def refuse_inputs(targets: Iterable[Path], inputs: InputSet) -> None:
    """The last line of defence: no target is a file the run reads, whatever ``--overwrite`` says."""
    for target in targets:
        if inputs.holds(Path(target)):
            raise UserError(f"{target} is one of the files being read; a result never replaces its original "
                            "(choose another output)")
