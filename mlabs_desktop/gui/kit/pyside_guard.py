"""A guard against a PySide6 build that frees None.

PySide6 6.12.0 on CPython 3.11 drops one reference to ``None`` for every Qt
call from Python that returns nothing (``setText``, every ``QPainter`` call)
and one to ``True`` for every signal emitted from Python. When a count reaches
zero the interpreter aborts ("deallocating None"): the Stylize view did so 600
photos into a 1,000-photo batch. 6.11.3 does not do this, and CPython 3.12
never frees these objects, so the project's requirements exclude that
combination; this guard covers an environment that has it anyway.
"""

from __future__ import annotations

import ctypes
import sys

BROKEN_VERSIONS = ("6.12.0",)


def affected(pyside_version: str, python: tuple[int, int] = sys.version_info[:2]) -> bool:
    return python < (3, 12) and pyside_version in BROKEN_VERSIONS


def keep_singletons_alive() -> bool:
    """Give None, True and False a reference count no leak can exhaust (what 3.12 does); True if done."""
    import PySide6

    if not affected(PySide6.__version__):
        return False
    for singleton in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt leads every object in release builds
        if count.value == sys.getrefcount(singleton) - 1:     # the layout is as expected (getrefcount adds one)
            count.value += 1 << 40
    return True
