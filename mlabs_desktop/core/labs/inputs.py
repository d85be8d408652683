"""A lab's inputs put in place: ``WORKDIR/inputs/NAME`` from ``--input`` files or cached downloads."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.labs.lab_file import LabInput
from mlabs_desktop.core.labs.plan import LabPlan

DOWNLOAD_WORKERS = 4


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
    from mlabs_desktop.core.transfer.downloads import cached_path, download

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
