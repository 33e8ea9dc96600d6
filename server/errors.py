"""Errors that reach users: each message says what is wrong and how to fix it."""


class StrongroomError(Exception):
    """Base class of errors shown to a user or a client model as one clear message."""

    def for_operator(self) -> str:
        """The message for the operator (the CLI, the server's log); ``str()`` is for clients."""
        return str(self)


class InvalidArgument(StrongroomError):
    """A caller passed a value that cannot be used (empty query, k out of range, ...)."""


class NotFound(StrongroomError):
    """The named thing does not exist (or the caller may not see it: the answer is the same)."""


class StoreError(StrongroomError):
    """The index cannot be used right now. ``str()`` names no server path; ``where`` does."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where

    def for_operator(self) -> str:
        return f"{self} ({self.where})" if self.where else str(self)


class StoreBusy(StoreError):
    """Another process holds the catalog's write lock longer than the busy timeout."""


class StoreFull(StoreError):
    """The disk (or the database's size limit) holding the index is full."""


class StoreCorrupt(StoreError):
    """The catalog file is damaged or is not a Strongroom catalog."""


class StoreTooNew(StoreError):
    """The data folder was written by a newer Strongroom whose schema this version cannot read."""


class StoreUnavailable(StoreError):
    """The index cannot be opened, read or written (permissions, I/O errors, a server down)."""
