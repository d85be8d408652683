"""Errors a user can act on.

A `UserError` carries one readable sentence: the command line prints it as
``error: ...`` and exits 2, the app shows it in a message box. One whose advice
names a control is `UserError.worded`: it keeps its template and facts, so the
command line names the flag and the app the field or button (`messages.Voice`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Iterator, TypeVar

from mlabs_desktop.core.messages import CLI, Voice, word


E = TypeVar("E", bound="UserError")


class UserError(Exception):
    """A problem with the user's input or environment, with what to do next.

    ``str()`` is the command line's wording; `text` words it for any voice.
    """

    template: str | None = None
    facts: dict[str, object] = {}

    @classmethod
    def worded(cls: type[E], template: str, **facts: object) -> E:
        """An error whose ``template`` names controls as ``{voice.batch_size}`` and facts as ``{name}``."""
        error = cls(word(template, CLI, facts))
        error.template, error.facts = template, facts
        return error

    def text(self, voice: Voice) -> str:
        return word(self.template, voice, self.facts) if self.template is not None else str(self)


class Cancelled(Exception):
    """Raised inside long work when the user asked it to stop."""


class DiskFullError(UserError):
    """A write failed for want of room; the message names what could not be written."""


# No room for a write: a full disk, a full quota, or a file larger than the file
# system or a process limit (RLIMIT_FSIZE) allows. The user's remedy is the same.
NO_ROOM_ERRNOS = frozenset(code for code in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None))
                           if code is not None)
# TensorFlow reports a failed write as its own exception type, with no errno,
# only the C library's text for it.
_NO_ROOM_TEXTS = tuple(os.strerror(code) for code in sorted(NO_ROOM_ERRNOS))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or while handling (also when that is hidden with ``from None``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def disk_full_error(exc: BaseException, path: os.PathLike | str) -> DiskFullError | None:
    """The clear error for a write of ``path`` that failed with ``exc``, if the cause is no room; else None."""
    for cause in _chain(exc):
        if isinstance(cause, DiskFullError):
            return cause
        if isinstance(cause, OSError):
            reason = (cause.strerror or os.strerror(cause.errno)) if cause.errno in NO_ROOM_ERRNOS else None
        else:
            reason = next((text for text in _NO_ROOM_TEXTS if text in str(cause)), None)
        if reason:
            return DiskFullError(f"cannot write {path}: the disk is full or the file is too large for it "
                                 f"({reason}); free some space or choose another place")
    return None


@contextlib.contextmanager
def disk_full_as_user_error(path: os.PathLike | str) -> Iterator[None]:
    """Turn a write failure for want of room into `DiskFullError` naming ``path``; other errors pass."""
    try:
        yield
    except Exception as exc:
        full = disk_full_error(exc, path)
        if full is None or full is exc:
            raise
        raise full from None
