"""Errors that reach users: each message says what is wrong and how to fix it."""


class StrongroomError(Exception):
    """Base class of errors shown to a user or a client model as one clear message."""


class InvalidArgument(StrongroomError):
    """A caller passed a value that cannot be used (empty query, k out of range, ...)."""


class NotFound(StrongroomError):
    """The named thing does not exist (or the caller may not see it: the answer is the same)."""
