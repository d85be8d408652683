"""MachineLabs lab files (``ml.yaml``), run locally: ``mlabs-desktop lab run FILE.yaml``.

A lab file on the platform named a docker image, the hardware, the script's
flags (``parameters``), files fetched by URL before the run (``inputs``) and
datasets mounted at ``/machinelabs/mounts/NAME`` (``mounts``). Here:

* `lab_file.load_lab` reads the file with ``yaml.safe_load`` (a lab from a
  stranger holds data, never code: tags such as ``!!python/object`` are
  refused) and checks its structure; every problem names the file, the line and
  the key. Platform-only keys (``dockerImageId``, ``cli``) and unknown ones land
  in `Lab.ignored`: reported, never errors.
* `plan.plan_lab` turns the lab into the argument list of ``mlabs-desktop
  train`` or ``stylize`` (chosen from the flags), with mounts mapped to local
  folders, relative paths anchored at the lab's working folder and
  ``hardwareType`` mapped to ``--device``. It reads the disk (do the folders
  exist?) but writes nothing.
* `inputs.fetch_inputs` fills ``WORKDIR/inputs/`` (from ``--input
  NAME=FILE`` or through the download cache, concurrently) and creates
  ``WORKDIR/outputs/``.
* `prepare_lab` does all of it and returns the plan, whose ``argv`` the command line runs.

The lab runs "in" its working folder (``inputs/`` and ``outputs/`` live there)
without changing the process's current directory: paths are made absolute
instead. Nothing here prints: messages go to the ``on_log`` callback, download
progress to ``progress``, and problems a user can fix are `UserError`\\ s.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Callable, Iterable, Mapping, Sequence

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.labs.lab_file import load_lab
from mlabs_desktop.core.labs.inputs import fetch_inputs
from mlabs_desktop.core.labs.plan import LabPlan, plan_lab

LogFn = Callable[[str], None]


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


def describe_plan(plan: LabPlan) -> list[str]:
    """What the lab will run, what it reads and where it writes, a line each, before it starts."""
    lines = [f"plan: runs mlabs-desktop {plan.command} in {plan.workdir}"]
    lines += [f"plan: reads {value}" + (", outside the lab's own folders" if value in plan.reads_outside else "")
              for value in plan.reads]
    lines += [f"plan: writes into {path}" for path in [plan.inputs_dir, *plan.writes]]
    if plan.command == "train":
        lines.append("plan: writes the trained model into the library")
    return lines


def prepare_lab(path: str | os.PathLike[str], workdir: str | os.PathLike[str] | None = None,
                mounts: Mapping[str, str | os.PathLike[str]] | None = None,
                inputs: Mapping[str, str | os.PathLike[str]] | None = None,
                extra_args: Sequence[str] = (), on_log: LogFn | None = None,
                progress: Callable[[str, Any], None] | None = None,
                cancelled: Callable[[], bool] | None = None,
                gpu_visible: bool | None = None, overwrite: bool = False,
                allow_writes_outside: bool = False) -> LabPlan:
    """Get a lab ready to run here: load, plan, remember the mounts, fetch inputs; the
    command line runs the plan's ``argv`` (``mlabs-desktop train|stylize``).

    ``workdir`` defaults to the lab file's folder. ``extra_args`` are appended
    after the lab's parameters and override them (e.g. ``--image-size=32`` or
    ``--max-steps=10`` for a quick try of a lab written for a GPU). Problems found
    before the command starts raise `UserError`.
    A lab writes only inside its working folder unless ``allow_writes_outside``,
    and replaces files there only with ``overwrite``; its plan (what runs, what it
    reads, where it writes) is logged before anything is fetched or run.
    """
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.settings import load_settings, save_settings

    log = on_log or (lambda message: None)
    lab = load_lab(path)
    for ignored in lab.ignored:
        log(f"{lab.path.name} {ignored}")
    settings = load_settings()
    if overwrite:
        extra_args = [*extra_args, "--overwrite"]
    plan = plan_lab(lab, workdir, mounts, inputs, settings.lab_mounts, extra_args, gpu_visible,
                    unique_name=Library().unique_name, allow_writes_outside=allow_writes_outside)
    for line in describe_plan(plan):
        log(line)
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
    return plan
