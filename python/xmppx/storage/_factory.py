"""Storage URLs and the factory that turns one into a :class:`Storage`.

Accepted URLs
=============
``sqlite://PATH``
    Everything after ``sqlite://`` is the database file path, taken literally:
    ``sqlite:///var/lib/xmppx/xmppx.db`` is the absolute path ``/var/lib/xmppx/xmppx.db``,
    ``sqlite://xmppx.db`` is relative to the working directory, ``sqlite://:memory:`` is
    a private in-memory database that lives until ``close()``.  The directory must
    exist; the file is created.  No query string (``?`` and ``#`` are refused).
``postgresql://[user[:password]@][host][:port][/database][?param=value...]``
    (also ``postgres://``) passed to asyncpg as is; query parameters are libpq's
    (``sslmode``, ``host`` for a Unix socket directory, ...), and any other parameter is
    sent to the server as a setting: ``?search_path=xmppx`` keeps the tables in the
    (existing) schema ``xmppx``.

Anything else raises :class:`StorageConfigError` naming the problem, before any I/O.
Passwords never appear in error messages.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from xmppx.storage._errors import StorageConfigError
from xmppx.storage._protocols import Storage
from xmppx.storage._util import redact_url

__all__ = ["DEFAULT_POOL_SIZE", "DEFAULT_TIMEOUT", "create_storage", "open_storage"]

#: PostgreSQL connections per server process.  Enough to overlap the storage round
#: trips of a busy node (most calls take well under a millisecond), while ~9 nodes stay
#: below PostgreSQL's default ``max_connections=100``.  Config key: ``storage.pool_size``.
DEFAULT_POOL_SIZE: Final = 10
#: Seconds PostgreSQL may take to accept a connection, lend a pooled one, or run one
#: statement before the call fails: far above any store call's milliseconds, below the
#: minute after which a client gives up on its request.  Config key: ``storage.timeout``.
DEFAULT_TIMEOUT: Final = 30.0

_SQLITE_SCHEMES: Final = frozenset({"sqlite"})
_POSTGRES_SCHEMES: Final = frozenset({"postgresql", "postgres"})


def _sqlite_path(url: str, rest: str) -> str:
    if not rest:
        raise StorageConfigError(
            f"storage URL {url!r} has no database path; "
            "use sqlite:///absolute/path.db, sqlite://relative.db or sqlite://:memory:"
        )
    if "?" in rest or "#" in rest:
        raise StorageConfigError(
            f"storage URL {url!r}: sqlite URLs take no query string or fragment"
        )
    return rest


def _check_postgres(url: str) -> None:
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        raise StorageConfigError(f"invalid PostgreSQL URL {shown!r}: {exc}") from exc
    if parts.fragment:
        raise StorageConfigError(f"invalid PostgreSQL URL {shown!r}: unexpected fragment")
    database = parts.path.removeprefix("/")
    if "/" in database:
        raise StorageConfigError(
            f"invalid PostgreSQL URL {shown!r}: database name {database!r} contains '/'"
        )


def create_storage(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeout: float = DEFAULT_TIMEOUT
) -> Storage:
    """A not-yet-open :class:`Storage` for ``url`` (see the module docstring).

    ``pool_size`` is the PostgreSQL pool's maximum and ``timeout`` the longest a
    PostgreSQL connection, a pooled connection or a statement is waited for (both
    ignored for SQLite, which uses one connection in one worker thread and fails a write
    that waits for another process's lock for 5 s).  Raises :class:`StorageConfigError`
    for an unsupported scheme or a malformed URL; does no I/O.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise StorageConfigError(
            f"storage URL {redact_url(url)!r} has no scheme; "
            "expected sqlite://PATH or postgresql://user@host:port/database"
        )
    scheme = scheme.lower()
    if scheme in _SQLITE_SCHEMES:
        from xmppx.storage._sqlite import SqliteStorage

        return SqliteStorage(_sqlite_path(url, rest))
    if scheme in _POSTGRES_SCHEMES:
        _check_postgres(url)
        try:
            from xmppx.storage._postgres import PostgresStorage
        except ImportError as exc:  # pragma: no cover - asyncpg is a dependency
            raise StorageConfigError(
                f"PostgreSQL storage needs the asyncpg package ({exc})"
            ) from exc
        return PostgresStorage(url, pool_size=pool_size, timeout=timeout)
    raise StorageConfigError(
        f"unsupported storage URL scheme {scheme!r} in {redact_url(url)!r}; "
        "expected sqlite:// or postgresql://"
    )


async def open_storage(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeout: float = DEFAULT_TIMEOUT
) -> Storage:
    """:func:`create_storage`, then ``open()`` (connect and migrate); the caller closes.

    Raises :class:`StorageConfigError` for a bad URL or an unreachable database and
    :class:`SchemaVersionError` for a database written by a newer xmppx.
    """
    storage = create_storage(url, pool_size=pool_size, timeout=timeout)
    await storage.open()
    return storage
