"""Errors raised by the storage layer.

Every failure a store reports is a :class:`StorageError`; callers (server modules) never
see ``sqlite3`` or ``asyncpg`` exceptions, because modules never import a driver
(DESIGN.md §1).  The original driver exception is kept as ``__cause__`` for logs.

Programming errors in arguments (a naive ``datetime``, a quota below zero, a malformed
record) are ``ValueError`` raised before any I/O, as Python's own APIs do.
"""

from __future__ import annotations

__all__ = [
    "AccountExists",
    "AccountNotFound",
    "RoomNotFound",
    "SchemaVersionError",
    "StorageConfigError",
    "StorageError",
]


class StorageError(Exception):
    """The storage backend failed (I/O, connection lost, constraint, closed storage).

    Raised for every backend failure; the driver's own exception is ``__cause__``.
    """


class StorageConfigError(StorageError):
    """The storage URL or an option is wrong; the message names the problem.

    Raised by :func:`~xmppx.storage.create_storage` before any I/O (bad scheme, bad port,
    empty path) and by ``open()`` when the target cannot be used (missing directory,
    unreachable server).  Passwords in URLs are never echoed.
    """


class SchemaVersionError(StorageError):
    """The database schema was written by a newer xmppx than this one.

    ``found`` is the version in the database, ``supported`` the newest this code knows.
    The database is left untouched: running an old server on a newer schema could
    silently lose data, so ``open()`` refuses.
    """

    def __init__(self, *, found: int, supported: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than the newest this xmppx "
            f"supports ({supported}); upgrade xmppx or use a matching database"
        )
        self.found = found
        self.supported = supported


class AccountExists(StorageError):
    """``create``/``create_many`` found an account with that bare JID (``user``)."""

    def __init__(self, user: str) -> None:
        super().__init__(f"account {user!r} already exists")
        self.user = user


class AccountNotFound(StorageError):
    """An operation that needs an existing account (``set_credentials``) found none."""

    def __init__(self, user: str) -> None:
        super().__init__(f"account {user!r} does not exist")
        self.user = user


class RoomNotFound(StorageError):
    """An affiliation was written for a room that is not stored (``put_room`` first)."""

    def __init__(self, room: str) -> None:
        super().__init__(f"room {room!r} is not stored")
        self.room = room
