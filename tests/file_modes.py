"""Child processes that honour file modes even when the tests run as root.

Root reads a file whatever its mode, through two capabilities (CAP_DAC_OVERRIDE
and CAP_DAC_READ_SEARCH). A child that drops them from its bounding set before
it starts Python keeps them off: it stays root (so it can still read the
interpreter under a private /root), but a file with mode 000 is refused to it
as to any user. Without root, nothing needs dropping.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PR_CAPBSET_DROP = 24
_DAC_CAPABILITIES = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def _drop_dac_capabilities() -> None:  # runs in the child, between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _DAC_CAPABILITIES:
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_honouring_modes(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``python ARGS`` with this checkout importable, unable to read what its mode forbids."""
    root = os.name == "posix" and os.geteuid() == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen", **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL, preexec_fn=_drop_dac_capabilities if root else None, **kwargs)


def cannot_honour_modes() -> str | None:
    """Why file modes cannot be tried here, or None when they can."""
    if os.name != "posix":
        return "file modes are POSIX"
    locked = Path(os.environ.get("TMPDIR", "/tmp")) / f"mlabs-mode-probe-{os.getpid()}"
    locked.write_text("x")
    locked.chmod(0)
    try:
        probe = run_honouring_modes(["-c", f"open({str(locked)!r}).read()"])
    except OSError as exc:  # a container that does not allow dropping capabilities
        return f"cannot drop root's file-access capabilities here: {exc}"
    finally:
        locked.unlink()
    return None if "PermissionError" in probe.stderr else "a mode-000 file was still readable in the child"
