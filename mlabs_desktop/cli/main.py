"""The ``mlabs-desktop`` entry point: run a command, turn what went wrong into one ``error:`` line.

User errors print one ``error: ...`` line to stderr and exit 2. Heavy modules
(TensorFlow, Qt) are imported only by the commands that need them.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything can import TensorFlow

from mlabs_desktop.cli import commands  # noqa: E402
from mlabs_desktop.cli.parser import parse  # noqa: E402
from mlabs_desktop.core.errors import Cancelled, UserError  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(lambda: commands.execute(parse(sys.argv[1:] if argv is None else argv)))


def run_lab(path: str | os.PathLike[str], **options: Any) -> int:
    """``lab run`` from Python: problems with the lab raise `UserError` (`prepare_lab`); its command's
    own errors come back as the exit code the command line gives (2 for a user error)."""
    from mlabs_desktop.core.labs.runner import prepare_lab

    return main(prepare_lab(path, **options).argv)


def guarded(run: Callable[[], int]) -> int:
    """``run()``'s exit code; what the user can act on becomes one ``error:`` line and 2."""
    try:
        return run()
    except UserError as exc:
        _stderr(f"error: {exc}")
        return 2
    except Cancelled:
        _stderr("cancelled")
        return 130
    except KeyboardInterrupt:
        _stderr("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - turn known resource failures into advice
        from mlabs_desktop.core import messages
        from mlabs_desktop.core.errors import disk_full_error
        from mlabs_desktop.core.hardware.memory import out_of_memory

        if out_of_memory(exc):
            _stderr(f"error: {messages.out_of_memory(messages.CLI)}")
            return 2
        full = disk_full_error(exc, getattr(exc, "filename", None) or "a file")
        if full is not None:
            _stderr(f"error: {full}")
            return 2
        raise


def _stderr(line: str) -> None:
    # A windowed build has no stderr at all.
    if sys.stderr is not None:
        print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
