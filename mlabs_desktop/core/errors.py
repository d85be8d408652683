"""Errors a user can act on.

A `UserError` carries one readable sentence: the command line prints it as
``error: ...`` and exits 2, the app shows it in a message box.
"""


class UserError(Exception):
    """A problem with the user's input or environment, with what to do next."""


class Cancelled(Exception):
    """Raised inside long work when the user asked it to stop."""
