"""PostgreSQL driver on ``asyncpg``, with a connection pool of a named size.

Rules
=====
1.  Every store method runs on one pooled connection, either as a single statement
    (atomic by itself; no BEGIN/COMMIT round trips) or in one explicit transaction
    (``READ COMMITTED``, PostgreSQL's default).  The roster and its version are read in
    one ``REPEATABLE READ`` snapshot.
2.  Atomic check-then-write steps take a transaction-scoped advisory lock keyed by the
    user (offline quota) or by the schema (migrations), so concurrent server processes
    sharing one database (DESIGN.md §4) serialize exactly where needed and nowhere else.
3.  Commits are durable with PostgreSQL's defaults (``synchronous_commit=on``).
4.  asyncpg is untyped: the few methods used are described by the private protocols
    below, and every value read is converted to its declared type explicitly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final, Protocol, cast

import asyncpg  # type: ignore[import-untyped]

from xmppx.storage._errors import (
    AccountExists,
    AccountNotFound,
    RoomNotFound,
    StorageConfigError,
    StorageError,
)
from xmppx.storage._factory import DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT
from xmppx.storage._migrations import MIGRATIONS, Migration, pending_steps
from xmppx.storage._protocols import MAX_PAGE_SIZE, Storage
from xmppx.storage._records import (
    Affiliation,
    LastActivity,
    MucAffiliation,
    MucRoom,
    NewAccount,
    OfflineMessage,
    PendingSubscription,
    Roster,
    RosterItem,
    RosterState,
    ScramCredentials,
    Subscription,
    check_credentials,
    domain_of,
)
from xmppx.storage._util import (
    check_limit,
    check_quota,
    dedupe_jids,
    dump_config,
    load_config,
    redact_url,
    require_aware,
)

__all__ = ["MIGRATION_TIMEOUT", "PostgresStorage"]

#: Seconds one schema migration statement may take (``open()`` applies them).
MIGRATION_TIMEOUT: Final = 600.0


#: Advisory lock keys (first int4 of the two-key form, so they cannot collide with
#: other applications' single bigint keys): "xmpp" in ASCII, plus a class number.
_LOCK_MIGRATION: Final = 0x786D7070
_LOCK_OFFLINE: Final = 0x786D7071

_DRIVER_ERRORS: Final = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


class _Record(Protocol):
    def __getitem__(self, key: int | str, /) -> Any: ...


class _Connection(Protocol):
    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str: ...

    async def fetch(self, query: str, *args: object) -> list[_Record]: ...

    async def fetchrow(self, query: str, *args: object) -> _Record | None: ...

    async def fetchval(self, query: str, *args: object) -> object: ...

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False
    ) -> AbstractAsyncContextManager[object]: ...


class _Pool(Protocol):
    def acquire(
        self, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[_Connection]: ...

    async def close(self) -> None: ...

    def terminate(self) -> None: ...


def _rowcount(status: str) -> int:
    """Rows affected, from a command status such as ``"DELETE 3"``."""
    return int(status.rsplit(" ", 1)[-1])


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise StorageError(f"expected a timestamp from PostgreSQL, got {value!r}")
    return value.astimezone(UTC)


def _failure(exc: BaseException, timeout: float) -> str:
    """What went wrong, for a StorageError: a timeout's own text is empty."""
    if isinstance(exc, TimeoutError):
        return f"PostgreSQL did not answer within {timeout:g} s"
    return f"PostgreSQL error: {exc}"


class _Db:
    """The pool, and transactions on it that turn driver errors into StorageError;
    waiting for a pooled connection, like each statement, takes at most ``timeout``
    seconds (a database that stops answering is an error, not a hung server)."""

    def __init__(self, timeout: float) -> None:
        self.pool: _Pool | None = None
        self.timeout = timeout

    @asynccontextmanager
    async def tx(
        self, *, isolation: str | None = None, readonly: bool = False
    ) -> AsyncIterator[_Connection]:
        pool = self.pool
        if pool is None:
            raise StorageError("storage is not open")
        try:
            async with (
                pool.acquire(timeout=self.timeout) as conn,
                conn.transaction(isolation=isolation, readonly=readonly),
            ):
                yield conn
        except _DRIVER_ERRORS as exc:
            raise StorageError(_failure(exc, self.timeout)) from exc

    @asynccontextmanager
    async def conn(self) -> AsyncIterator[_Connection]:
        """A pooled connection without an explicit transaction, for methods that are
        one statement (atomic on its own): saves the BEGIN and COMMIT round trips."""
        pool = self.pool
        if pool is None:
            raise StorageError("storage is not open")
        try:
            async with pool.acquire(timeout=self.timeout) as conn:
                yield conn
        except _DRIVER_ERRORS as exc:
            raise StorageError(_failure(exc, self.timeout)) from exc


# -- accounts --------------------------------------------------------------------------

_INSERT_CREDENTIALS: Final = (
    "INSERT INTO scram_credentials (jid, hash, salt, iterations, stored_key, server_key) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[], $5::bytea[], "
    "$6::bytea[])"
)
_USER_TABLES: Final = (
    ("roster_items", "username"),
    ("roster_versions", "username"),
    ("roster_pending", "username"),
    ("offline_messages", "username"),
    ("private_storage", "username"),
    ("blocklist", "username"),
    ("last_activity", "username"),
)
#: A room's affiliations of the user go with the account, except a ban: it is the room's
#: decision about the JID (XEP-0045 §9.1), and still holds against whoever registers the
#: name again.
_DELETE_AFFILIATIONS: Final = (
    "DELETE FROM muc_affiliations WHERE jid = $1 AND affiliation <> 'outcast'"
)


async def _insert_credentials(
    conn: _Connection, pairs: Iterable[tuple[str, ScramCredentials]]
) -> None:
    users: list[str] = []
    hashes: list[str] = []
    salts: list[bytes] = []
    iterations: list[int] = []
    stored: list[bytes] = []
    server: list[bytes] = []
    for user, c in pairs:
        users.append(user)
        hashes.append(c.hash_name)
        salts.append(c.salt)
        iterations.append(c.iterations)
        stored.append(c.stored_key)
        server.append(c.server_key)
    await conn.execute(_INSERT_CREDENTIALS, users, hashes, salts, iterations, stored, server)


def _credentials(row: _Record) -> ScramCredentials:
    return ScramCredentials(
        hash_name=str(row["hash"]),
        salt=bytes(row["salt"]),
        iterations=int(row["iterations"]),
        stored_key=bytes(row["stored_key"]),
        server_key=bytes(row["server_key"]),
    )


async def _account_exists(conn: _Connection, user: str) -> bool:
    return await conn.fetchval("SELECT 1 FROM accounts WHERE jid = $1", user) is not None


class _Accounts:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def create(self, user: str, credentials: Sequence[ScramCredentials]) -> None:
        creds = tuple(credentials)
        domain = domain_of(user)
        check_credentials(creds)
        async with self._db.tx() as conn:
            try:
                await conn.execute(
                    "INSERT INTO accounts (jid, domain) VALUES ($1, $2)", user, domain
                )
            except asyncpg.UniqueViolationError as exc:
                raise AccountExists(user) from exc
            await _insert_credentials(conn, ((user, c) for c in creds))

    async def create_many(self, accounts: Sequence[NewAccount]) -> int:
        batch = tuple(accounts)
        users: list[str] = []
        seen: set[str] = set()
        for account in batch:
            if account.user in seen:
                raise AccountExists(account.user)
            seen.add(account.user)
            users.append(account.user)
        domains = [domain_of(user) for user in users]
        try:
            async with self._db.tx() as conn:
                existing = {
                    str(row[0])
                    for row in await conn.fetch(
                        "SELECT jid FROM accounts WHERE jid = ANY($1::text[])", users
                    )
                }
                for user in users:
                    if user in existing:
                        raise AccountExists(user)
                await conn.execute(
                    "INSERT INTO accounts (jid, domain) "
                    "SELECT * FROM unnest($1::text[], $2::text[])",
                    users,
                    domains,
                )
                await _insert_credentials(conn, ((a.user, c) for a in batch for c in a.credentials))
        except StorageError as exc:
            if not isinstance(exc.__cause__, asyncpg.UniqueViolationError):
                raise
            # Lost a race with a concurrent create: name the account that now exists.
            async with self._db.conn() as conn:
                rows = await conn.fetch(
                    "SELECT jid FROM accounts WHERE jid = ANY($1::text[])", users
                )
            found = {str(row[0]) for row in rows}
            raise AccountExists(next((u for u in users if u in found), users[0])) from exc
        return len(batch)

    async def exists(self, user: str) -> bool:
        async with self._db.conn() as conn:
            return await _account_exists(conn, user)

    async def count(self, *, domain: str | None = None) -> int:
        async with self._db.conn() as conn:
            if domain is None:
                value = await conn.fetchval("SELECT count(*) FROM accounts")
            else:
                value = await conn.fetchval(
                    "SELECT count(*) FROM accounts WHERE domain = $1", domain
                )
        return int(cast(int, value))

    async def list_users(
        self, *, domain: str | None = None, after: str | None = None, limit: int = MAX_PAGE_SIZE
    ) -> tuple[str, ...]:
        check_limit(limit)
        where: list[str] = []
        params: list[object] = []
        if domain is not None:
            params.append(domain)
            where.append(f"domain = ${len(params)}")
        if after is not None:
            params.append(after)
            where.append(f"jid > ${len(params)}")
        params.append(limit)
        sql = "SELECT jid FROM accounts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY jid LIMIT ${len(params)}"
        async with self._db.conn() as conn:
            rows = await conn.fetch(sql, *params)
        return tuple(str(row[0]) for row in rows)

    async def get_credentials(self, user: str, hash_name: str) -> ScramCredentials | None:
        async with self._db.conn() as conn:
            row = await conn.fetchrow(
                "SELECT hash, salt, iterations, stored_key, server_key FROM scram_credentials "
                "WHERE jid = $1 AND hash = $2",
                user,
                hash_name,
            )
        return None if row is None else _credentials(row)

    async def list_credentials(self, user: str) -> tuple[ScramCredentials, ...]:
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "SELECT hash, salt, iterations, stored_key, server_key FROM scram_credentials "
                "WHERE jid = $1 ORDER BY hash",
                user,
            )
        return tuple(_credentials(row) for row in rows)

    async def set_credentials(self, user: str, credentials: Sequence[ScramCredentials]) -> None:
        creds = tuple(credentials)
        check_credentials(creds)
        async with self._db.tx() as conn:
            # FOR UPDATE: a concurrent delete cannot slip between the check and the insert.
            found = await conn.fetchval("SELECT 1 FROM accounts WHERE jid = $1 FOR UPDATE", user)
            if found is None:
                raise AccountNotFound(user)
            await conn.execute("DELETE FROM scram_credentials WHERE jid = $1", user)
            await _insert_credentials(conn, ((user, c) for c in creds))

    async def delete(self, user: str) -> bool:
        async with self._db.tx() as conn:
            existed = _rowcount(await conn.execute("DELETE FROM accounts WHERE jid = $1", user))
            for table, column in _USER_TABLES:
                await conn.execute(f"DELETE FROM {table} WHERE {column} = $1", user)
            await conn.execute(_DELETE_AFFILIATIONS, user)
        return existed > 0


# -- roster ----------------------------------------------------------------------------

_ROSTER_COLUMNS: Final = "contact, name, subscription, ask, approved, groups"


def _roster_item(row: _Record) -> RosterItem:
    name = row["name"]
    return RosterItem(
        contact=str(row["contact"]),
        name=None if name is None else str(name),
        subscription=cast(Subscription, str(row["subscription"])),
        ask=bool(row["ask"]),
        approved=bool(row["approved"]),
        groups=tuple(str(g) for g in row["groups"]),
    )


async def _roster_version(conn: _Connection, user: str) -> str:
    value = await conn.fetchval("SELECT version FROM roster_versions WHERE username = $1", user)
    return "0" if value is None else str(value)


async def _bump_roster_version(conn: _Connection, user: str) -> str:
    """The next value of a global sequence becomes the user's version: versions never
    repeat for a user, even after the account is deleted and created again."""
    value = await conn.fetchval(
        "INSERT INTO roster_versions (username, version) "
        "VALUES ($1, nextval('roster_version_seq')) "
        "ON CONFLICT (username) DO UPDATE SET version = excluded.version RETURNING version",
        user,
    )
    return str(value)


#: The second part of a key is matched by its digest (the index) and its text (schema
#: step 2: "Keys as long as XMPP allows" in ``_migrations``).
_CONTACT_IS_2: Final = "contact_digest = xmppx_key_digest($2) AND contact = $2"
_JID_IS_2: Final = "jid_digest = xmppx_key_digest($2) AND jid = $2"
_KEY_IS_2: Final = "key_digest = xmppx_key_digest($2) AND key = $2"


class _Roster:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get_roster(self, user: str) -> Roster:
        async with self._db.tx(isolation="repeatable_read", readonly=True) as conn:
            rows = await conn.fetch(
                f"SELECT {_ROSTER_COLUMNS} FROM roster_items WHERE username = $1 ORDER BY contact",
                user,
            )
            version = await _roster_version(conn, user)
        return Roster(version=version, items=tuple(_roster_item(row) for row in rows))

    async def get_roster_state(self, user: str) -> RosterState:
        async with self._db.tx(isolation="repeatable_read", readonly=True) as conn:
            rows = await conn.fetch(
                f"SELECT {_ROSTER_COLUMNS} FROM roster_items WHERE username = $1 ORDER BY contact",
                user,
            )
            version = await _roster_version(conn, user)
            pending = await conn.fetch(
                "SELECT contact, stanza FROM roster_pending WHERE username = $1 ORDER BY id",
                user,
            )
        return RosterState(
            roster=Roster(version=version, items=tuple(_roster_item(row) for row in rows)),
            pending=tuple(
                PendingSubscription(contact=str(row[0]), stanza=bytes(row[1])) for row in pending
            ),
        )

    async def get_version(self, user: str) -> str:
        async with self._db.conn() as conn:
            return await _roster_version(conn, user)

    async def get_item(self, user: str, contact: str) -> RosterItem | None:
        async with self._db.conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_ROSTER_COLUMNS} FROM roster_items "
                f"WHERE username = $1 AND {_CONTACT_IS_2}",
                user,
                contact,
            )
        return None if row is None else _roster_item(row)

    async def put_item(self, user: str, item: RosterItem) -> str:
        async with self._db.tx() as conn:
            await conn.execute(
                f"INSERT INTO roster_items (username, {_ROSTER_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username, contact_digest) "
                "DO UPDATE SET name = excluded.name, subscription = excluded.subscription, "
                "ask = excluded.ask, approved = excluded.approved, groups = excluded.groups",
                user,
                item.contact,
                item.name,
                item.subscription,
                item.ask,
                item.approved,
                list(item.groups),
            )
            return await _bump_roster_version(conn, user)

    async def delete_item(self, user: str, contact: str) -> str | None:
        async with self._db.tx() as conn:
            status = await conn.execute(
                f"DELETE FROM roster_items WHERE username = $1 AND {_CONTACT_IS_2}", user, contact
            )
            if _rowcount(status) == 0:
                return None
            return await _bump_roster_version(conn, user)

    async def put_pending(self, user: str, contact: str, stanza: bytes) -> None:
        async with self._db.conn() as conn:
            await conn.execute(
                "INSERT INTO roster_pending (username, contact, stanza) VALUES ($1, $2, $3) "
                "ON CONFLICT (username, contact_digest) DO UPDATE SET stanza = excluded.stanza",
                user,
                contact,
                stanza,
            )

    async def list_pending(self, user: str) -> tuple[PendingSubscription, ...]:
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "SELECT contact, stanza FROM roster_pending WHERE username = $1 ORDER BY id",
                user,
            )
        return tuple(PendingSubscription(contact=str(row[0]), stanza=bytes(row[1])) for row in rows)

    async def remove_pending(self, user: str, contact: str) -> bool:
        async with self._db.conn() as conn:
            status = await conn.execute(
                f"DELETE FROM roster_pending WHERE username = $1 AND {_CONTACT_IS_2}", user, contact
            )
        return _rowcount(status) > 0


# -- offline ---------------------------------------------------------------------------


def _offline_message(row: _Record) -> OfflineMessage:
    return OfflineMessage(id=int(row[0]), stanza=bytes(row[1]), stamp=_utc(row[2]))


class _Offline:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def append(self, user: str, stanza: bytes, *, stamp: datetime, quota: int) -> bool:
        require_aware("stamp", stamp)
        check_quota(quota)
        async with self._db.tx() as conn:
            # Serializes appends for this user across all connections and processes until
            # commit, so the count below cannot be stale when we insert.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_OFFLINE, user
            )
            stored = await conn.fetchval(
                "SELECT count(*) FROM offline_messages WHERE username = $1", user
            )
            if int(cast(int, stored)) >= quota:
                return False
            await conn.execute(
                "INSERT INTO offline_messages (username, stanza, stamp) VALUES ($1, $2, $3)",
                user,
                stanza,
                stamp,
            )
        return True

    async def count(self, user: str) -> int:
        async with self._db.conn() as conn:
            value = await conn.fetchval(
                "SELECT count(*) FROM offline_messages WHERE username = $1", user
            )
        return int(cast(int, value))

    async def fetch(self, user: str, *, limit: int | None = None) -> tuple[OfflineMessage, ...]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "SELECT id, stanza, stamp FROM offline_messages WHERE username = $1 "
                "ORDER BY id LIMIT $2",
                user,
                limit,
            )
        return tuple(_offline_message(row) for row in rows)

    async def delete(self, user: str, ids: Iterable[int]) -> int:
        wanted = [int(i) for i in dict.fromkeys(ids)]
        async with self._db.conn() as conn:
            status = await conn.execute(
                "DELETE FROM offline_messages WHERE username = $1 AND id = ANY($2::bigint[])",
                user,
                wanted,
            )
        return _rowcount(status)

    async def pop_all(self, user: str) -> tuple[OfflineMessage, ...]:
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "DELETE FROM offline_messages WHERE username = $1 RETURNING id, stanza, stamp",
                user,
            )
        return tuple(sorted((_offline_message(row) for row in rows), key=lambda m: m.id))


# -- private XML -----------------------------------------------------------------------


class _Private:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get(self, user: str, key: str) -> bytes | None:
        async with self._db.conn() as conn:
            value = await conn.fetchval(
                f"SELECT data FROM private_storage WHERE username = $1 AND {_KEY_IS_2}",
                user,
                key,
            )
        return None if value is None else bytes(cast(bytes, value))

    async def put(self, user: str, key: str, data: bytes) -> None:
        async with self._db.conn() as conn:
            await conn.execute(
                "INSERT INTO private_storage (username, key, data) VALUES ($1, $2, $3) "
                "ON CONFLICT (username, key_digest) DO UPDATE SET data = excluded.data",
                user,
                key,
                data,
            )

    async def delete(self, user: str, key: str) -> bool:
        async with self._db.conn() as conn:
            status = await conn.execute(
                f"DELETE FROM private_storage WHERE username = $1 AND {_KEY_IS_2}",
                user,
                key,
            )
        return _rowcount(status) > 0

    async def sizes(self, user: str, prefix: str) -> dict[str, int]:
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "SELECT key, octet_length(data) AS size FROM private_storage "
                "WHERE username = $1 AND left(key, $2) = $3",
                user,
                len(prefix),
                prefix,
            )
        return {str(r["key"]): int(cast(int, r["size"])) for r in rows}


# -- blocklist -------------------------------------------------------------------------


class _Blocklist:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get(self, user: str) -> tuple[str, ...]:
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "SELECT jid FROM blocklist WHERE username = $1 ORDER BY jid", user
            )
        return tuple(str(row[0]) for row in rows)

    async def add(self, user: str, jids: Iterable[str]) -> tuple[str, ...]:
        wanted = dedupe_jids(jids)
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "INSERT INTO blocklist (username, jid) SELECT $1, unnest($2::text[]) "
                "ON CONFLICT (username, jid_digest) DO NOTHING RETURNING jid",
                user,
                list(wanted),
            )
        added = {str(row[0]) for row in rows}
        return tuple(jid for jid in wanted if jid in added)

    async def remove(self, user: str, jids: Iterable[str]) -> tuple[str, ...]:
        wanted = dedupe_jids(jids)
        async with self._db.conn() as conn:
            rows = await conn.fetch(
                "DELETE FROM blocklist WHERE username = $1 AND jid_digest = ANY("
                "ARRAY(SELECT xmppx_key_digest(j) FROM unnest($2::text[]) AS j)) "
                "AND jid = ANY($2::text[]) RETURNING jid",
                user,
                list(wanted),
            )
        removed = {str(row[0]) for row in rows}
        return tuple(jid for jid in wanted if jid in removed)

    async def clear(self, user: str) -> tuple[str, ...]:
        async with self._db.conn() as conn:
            rows = await conn.fetch("DELETE FROM blocklist WHERE username = $1 RETURNING jid", user)
        # Python's str order is code-point order, as COLLATE "C" on UTF-8 is.
        return tuple(sorted(str(row[0]) for row in rows))


# -- last activity ---------------------------------------------------------------------


class _LastActivity:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get(self, user: str) -> LastActivity | None:
        async with self._db.conn() as conn:
            row = await conn.fetchrow(
                "SELECT stamp, status FROM last_activity WHERE username = $1", user
            )
        if row is None:
            return None
        return LastActivity(stamp=_utc(row[0]), status=str(row[1]))

    async def put(self, user: str, activity: LastActivity) -> None:
        async with self._db.conn() as conn:
            await conn.execute(
                "INSERT INTO last_activity (username, stamp, status) VALUES ($1, $2, $3) "
                "ON CONFLICT (username) DO UPDATE SET "
                "stamp = excluded.stamp, status = excluded.status",
                user,
                activity.stamp,
                activity.status,
            )

    async def delete(self, user: str) -> bool:
        async with self._db.conn() as conn:
            status = await conn.execute("DELETE FROM last_activity WHERE username = $1", user)
        return _rowcount(status) > 0


# -- MUC -------------------------------------------------------------------------------

_ROOM_COLUMNS: Final = "jid, config, subject, subject_author"
_AFFILIATION_COLUMNS: Final = "room, jid, affiliation, reason, nick"


def _room(row: _Record) -> MucRoom:
    return MucRoom(
        jid=str(row[0]),
        config=load_config(str(row[1])),
        subject=str(row[2]),
        subject_author=str(row[3]),
    )


def _affiliation(row: _Record) -> MucAffiliation:
    nick = row[4]
    return MucAffiliation(
        room=str(row[0]),
        user=str(row[1]),
        affiliation=cast(Affiliation, str(row[2])),
        reason=str(row[3]),
        nick=None if nick is None else str(nick),
    )


class _Muc:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def list_rooms(self, *, service: str | None = None) -> tuple[MucRoom, ...]:
        async with self._db.conn() as conn:
            if service is None:
                rows = await conn.fetch(f"SELECT {_ROOM_COLUMNS} FROM muc_rooms ORDER BY jid")
            else:
                rows = await conn.fetch(
                    f"SELECT {_ROOM_COLUMNS} FROM muc_rooms WHERE service = $1 ORDER BY jid",
                    service,
                )
        return tuple(_room(row) for row in rows)

    async def get_room(self, room: str) -> MucRoom | None:
        async with self._db.conn() as conn:
            row = await conn.fetchrow(f"SELECT {_ROOM_COLUMNS} FROM muc_rooms WHERE jid = $1", room)
        return None if row is None else _room(row)

    async def put_room(self, room: MucRoom) -> None:
        async with self._db.conn() as conn:
            await conn.execute(
                "INSERT INTO muc_rooms (jid, service, config, subject, subject_author) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jid) DO UPDATE SET "
                "config = excluded.config, subject = excluded.subject, "
                "subject_author = excluded.subject_author",
                room.jid,
                room.service,
                dump_config(room.config),
                room.subject,
                room.subject_author,
            )

    async def delete_room(self, room: str) -> bool:
        async with self._db.conn() as conn:
            status = await conn.execute("DELETE FROM muc_rooms WHERE jid = $1", room)
        return _rowcount(status) > 0

    async def get_affiliation(self, room: str, user: str) -> MucAffiliation | None:
        async with self._db.conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_AFFILIATION_COLUMNS} FROM muc_affiliations "
                f"WHERE room = $1 AND {_JID_IS_2}",
                room,
                user,
            )
        return None if row is None else _affiliation(row)

    async def set_affiliation(self, affiliation: MucAffiliation) -> None:
        a = affiliation
        try:
            async with self._db.conn() as conn:
                await conn.execute(
                    f"INSERT INTO muc_affiliations ({_AFFILIATION_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room, jid_digest) DO UPDATE SET "
                    "affiliation = excluded.affiliation, reason = excluded.reason, "
                    "nick = excluded.nick",
                    a.room,
                    a.user,
                    a.affiliation,
                    a.reason,
                    a.nick,
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, asyncpg.ForeignKeyViolationError):
                raise RoomNotFound(a.room) from exc.__cause__
            raise

    async def delete_affiliation(self, room: str, user: str) -> bool:
        async with self._db.conn() as conn:
            status = await conn.execute(
                f"DELETE FROM muc_affiliations WHERE room = $1 AND {_JID_IS_2}", room, user
            )
        return _rowcount(status) > 0

    async def list_affiliations(
        self, room: str, *, affiliation: Affiliation | None = None
    ) -> tuple[MucAffiliation, ...]:
        async with self._db.conn() as conn:
            if affiliation is None:
                rows = await conn.fetch(
                    f"SELECT {_AFFILIATION_COLUMNS} FROM muc_affiliations WHERE room = $1 "
                    "ORDER BY jid",
                    room,
                )
            else:
                rows = await conn.fetch(
                    f"SELECT {_AFFILIATION_COLUMNS} FROM muc_affiliations "
                    "WHERE room = $1 AND affiliation = $2 ORDER BY jid",
                    room,
                    affiliation,
                )
        return tuple(_affiliation(row) for row in rows)


# -- the bundle ------------------------------------------------------------------------


class PostgresStorage(Storage):
    """All stores on one PostgreSQL database, through a pool of at most ``pool_size``
    connections.  ``dsn`` is a libpq-style URL (``postgresql://user@host:port/db``).
    Connecting, waiting for a pooled connection and each statement take at most
    ``timeout`` seconds, schema migrations at most ``MIGRATION_TIMEOUT`` a statement."""

    def __init__(
        self, dsn: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        if pool_size < 1:
            raise StorageConfigError(f"PostgreSQL pool_size must be >= 1, got {pool_size}")
        if not timeout > 0:
            raise StorageConfigError(f"PostgreSQL timeout must be positive, got {timeout}")
        self._dsn = dsn
        self.pool_size = pool_size
        self._db = _Db(timeout)
        self.accounts = _Accounts(self._db)
        self.roster = _Roster(self._db)
        self.offline = _Offline(self._db)
        self.private = _Private(self._db)
        self.blocklist = _Blocklist(self._db)
        self.last_activity = _LastActivity(self._db)
        self.muc = _Muc(self._db)

    @property
    def timeout(self) -> float:
        """The longest wait for PostgreSQL, in seconds (see the class docstring)."""
        return self._db.timeout

    async def open(self) -> None:
        if self._db.pool is not None:
            raise StorageError("storage is already open")
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
                server_settings={"application_name": "xmppx"},
            )
        except (*_DRIVER_ERRORS, ValueError) as exc:
            why = (
                f"no answer within {self.timeout:g} s"
                if isinstance(exc, TimeoutError)
                else str(exc) or type(exc).__name__
            )
            raise StorageConfigError(
                f"cannot connect to PostgreSQL at {redact_url(self._dsn)}: {why}"
            ) from exc
        self._db.pool = cast(_Pool, pool)
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._db.pool = self._db.pool, None
        if pool is not None:
            try:
                # graceful: waits for the calls in progress, but not for a database
                # that stopped answering
                await asyncio.wait_for(pool.close(), self.timeout)
            except TimeoutError:
                pool.terminate()

    async def migrate(self) -> int:
        return await self._migrate_steps(MIGRATIONS)

    async def _migrate_steps(self, steps: Sequence[Migration]) -> int:
        """Apply ``steps`` (tests use this to add a step after ``MIGRATIONS``)."""
        async with self._db.tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", _LOCK_MIGRATION)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version integer NOT NULL PRIMARY KEY, description text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current = int(
                cast(
                    int, await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
                )
            )
            for step in pending_steps(current, steps):
                for statement in step.postgresql:
                    # rebuilding a large table may take longer than a store call may
                    await conn.execute(statement, timeout=MIGRATION_TIMEOUT)
                await conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                    step.version,
                    step.description,
                )
                current = step.version
        return current

    async def schema_version(self) -> int:
        async with self._db.conn() as conn:
            if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
                return 0
            value = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        return int(cast(int, value))

    def __repr__(self) -> str:
        return (
            f"PostgresStorage(dsn={redact_url(self._dsn)!r}, pool_size={self.pool_size}, "
            f"timeout={self.timeout:g})"
        )
