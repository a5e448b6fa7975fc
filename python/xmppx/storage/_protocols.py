"""The storage contract: one narrow protocol per kind of data, and the ``Storage`` bundle.

Server modules receive these stores and never import a driver (DESIGN.md §1).  Both
drivers (SQLite, PostgreSQL) implement every protocol and pass one test suite
(``tests/storage``), so the rules written here are normative for both.

Common rules
============
1.  Users are bare JID strings (``localpart@domain``) normalized by the caller; storage
    compares them byte for byte.  Sorting is by Unicode code point in both drivers.
2.  Every method is one atomic transaction: it happens entirely or not at all, and a
    concurrent reader sees it entirely or not at all.
3.  Each method returns only after its transaction committed.  If the awaiting task is
    cancelled, the operation may still complete in the background.
4.  Backend failures raise :class:`~xmppx.storage.StorageError`; bad arguments raise
    ``ValueError`` before any I/O.  Methods that "return whether" something happened
    never raise for a missing key.
5.  Timestamps are timezone-aware ``datetime`` in, UTC ``datetime`` out, with microsecond
    precision.
6.  Results are immutable (tuples, frozen records).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Final, Protocol, Self

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
)

__all__ = [
    "MAX_PAGE_SIZE",
    "AccountStore",
    "BlocklistStore",
    "LastActivityStore",
    "MucStore",
    "OfflineStore",
    "PrivateStore",
    "RosterStore",
    "Storage",
]

#: Largest page :meth:`AccountStore.list_users` returns: big enough for an admin listing
#: or an export batch, small enough that one call never holds a large result in memory
#: (and in the SQLite worker thread) at once.
MAX_PAGE_SIZE: Final = 1000


class AccountStore(Protocol):
    """Accounts and their SCRAM credentials (RFC 5802 keys; never a password)."""

    async def create(self, user: str, credentials: Sequence[ScramCredentials]) -> None:
        """Create ``user`` with one credentials record per hash.

        Raises :class:`AccountExists` if the account exists (nothing changes), and
        ``ValueError`` for a non-bare JID, no credentials or a hash given twice.
        """
        ...

    async def create_many(self, accounts: Sequence[NewAccount]) -> int:
        """Create all ``accounts`` in one transaction and return how many (bulk import).

        All or nothing: if any JID exists already, or appears twice in ``accounts``,
        :class:`AccountExists` names it and no account is created.  Meant for thousands
        of accounts per call; callers importing millions send batches.
        """
        ...

    async def exists(self, user: str) -> bool:
        """Whether the account ``user`` exists."""
        ...

    async def count(self, *, domain: str | None = None) -> int:
        """Number of accounts, on all domains or only on ``domain``."""
        ...

    async def list_users(
        self, *, domain: str | None = None, after: str | None = None, limit: int = MAX_PAGE_SIZE
    ) -> tuple[str, ...]:
        """One page of account JIDs in code-point order (keyset pagination).

        Returns at most ``limit`` (1..:data:`MAX_PAGE_SIZE`) JIDs greater than ``after``
        (from the start when ``None``), optionally only on ``domain``.  The next page
        starts ``after`` the last JID returned; an empty tuple means the end.  Stable
        under concurrent creation and deletion: no JID is returned twice.
        """
        ...

    async def get_credentials(self, user: str, hash_name: str) -> ScramCredentials | None:
        """The credentials of ``user`` for ``hash_name``; ``None`` if the account or that
        hash is missing (the SASL layer must then fail the same way for both, to not
        reveal which accounts exist)."""
        ...

    async def list_credentials(self, user: str) -> tuple[ScramCredentials, ...]:
        """All credentials records of ``user`` sorted by hash name; ``()`` if none."""
        ...

    async def set_credentials(self, user: str, credentials: Sequence[ScramCredentials]) -> None:
        """Replace all credentials of ``user`` (password change): hashes not given are
        removed.  Raises :class:`AccountNotFound` if the account does not exist."""
        ...

    async def delete(self, user: str) -> bool:
        """Delete the account and *all* of the user's data in every store (roster, its
        version, pending subscriptions, offline messages, private XML, blocklist, last
        activity, MUC affiliations other than bans), in one transaction.  Returns whether
        the account existed; the user's data is purged either way.  Rooms themselves are
        kept, and so are their bans of the user (``outcast``, XEP-0045 §9.1): they hold
        against whoever registers the name next."""
        ...


class RosterStore(Protocol):
    """Rosters (RFC 6121 §2), their versions (§2.6) and pending inbound subscription
    requests (§3.1.3)."""

    async def get_roster(self, user: str) -> Roster:
        """All items (sorted by contact) and the version, in one snapshot.  A user
        without items has an empty roster with version ``"0"`` or the last version."""
        ...

    async def get_roster_state(self, user: str) -> RosterState:
        """:meth:`get_roster` and :meth:`list_pending` together, in one snapshot (one
        transaction, so one storage round trip: what a login loads at resource bind)."""
        ...

    async def get_version(self, user: str) -> str:
        """The current roster version of ``user`` (``"0"`` if never changed)."""
        ...

    async def get_item(self, user: str, contact: str) -> RosterItem | None:
        """The item for ``contact`` (bare JID), or ``None``."""
        ...

    async def put_item(self, user: str, item: RosterItem) -> str:
        """Insert or replace the item for ``item.contact``; returns the new version.

        The version changes on every call, even when the item is unchanged (a roster
        push is sent for every set, RFC 6121 §2.1.5)."""
        ...

    async def delete_item(self, user: str, contact: str) -> str | None:
        """Remove the item; returns the new version, or ``None`` if there was no item
        (then the version is unchanged)."""
        ...

    async def put_pending(self, user: str, contact: str, stanza: bytes) -> None:
        """Keep the inbound subscription request from ``contact`` (serialized presence).
        A newer request from the same contact replaces the stanza but keeps its place."""
        ...

    async def list_pending(self, user: str) -> tuple[PendingSubscription, ...]:
        """Pending inbound requests, oldest first."""
        ...

    async def remove_pending(self, user: str, contact: str) -> bool:
        """Forget the pending request from ``contact``; returns whether there was one."""
        ...


class OfflineStore(Protocol):
    """Offline message storage (XEP-0160) with a per-user quota.

    Two ways to deliver: :meth:`pop_all` (simple, at-most-once), or :meth:`fetch`, send,
    then :meth:`delete` the ids sent (at-least-once: a crash in between redelivers)."""

    async def append(self, user: str, stanza: bytes, *, stamp: datetime, quota: int) -> bool:
        """Store ``stanza`` for ``user`` unless they already have ``quota`` messages.

        Returns ``True`` once the message is durably committed (it survives a crash or
        power loss from then on), ``False`` when the quota is full (nothing stored; the
        caller bounces the stanza, XEP-0160 §3).  The count check and the insert are one
        atomic step: concurrent appends never exceed ``quota``.  ``quota`` >= 0; ``0``
        refuses everything.  ``stamp`` is the delay stamp (XEP-0203) to add on delivery.
        """
        ...

    async def count(self, user: str) -> int:
        """How many messages are stored for ``user``."""
        ...

    async def fetch(self, user: str, *, limit: int | None = None) -> tuple[OfflineMessage, ...]:
        """The oldest ``limit`` messages (all when ``None``) in arrival order, kept."""
        ...

    async def delete(self, user: str, ids: Iterable[int]) -> int:
        """Delete the user's messages with these ids; returns how many were deleted.
        Ids of other users' messages are ignored."""
        ...

    async def pop_all(self, user: str) -> tuple[OfflineMessage, ...]:
        """Remove and return all of the user's messages in arrival order, atomically:
        two concurrent calls never both return the same message."""
        ...


class PrivateStore(Protocol):
    """Private XML storage (XEP-0049) and vcard-temp (XEP-0054): one XML blob per
    ``(user, key)``; the caller picks keys, e.g. ``"storage:bookmarks"`` (the child's
    namespace plus name, as XEP-0049 §3 says) or ``"vcard-temp"``."""

    async def get(self, user: str, key: str) -> bytes | None:
        """The stored XML, or ``None``."""
        ...

    async def put(self, user: str, key: str, data: bytes) -> None:
        """Store (replace) the XML for ``key``."""
        ...

    async def delete(self, user: str, key: str) -> bool:
        """Remove the XML for ``key``; returns whether there was any."""
        ...

    async def sizes(self, user: str, prefix: str) -> dict[str, int]:
        """The size in bytes of each of ``user``'s entries whose key begins with
        ``prefix`` (a quota counts them)."""
        ...


class BlocklistStore(Protocol):
    """Blocking command (XEP-0191): a set of JID strings (bare, full or domain) per user."""

    async def get(self, user: str) -> tuple[str, ...]:
        """The blocked JIDs in code-point order."""
        ...

    async def add(self, user: str, jids: Iterable[str]) -> tuple[str, ...]:
        """Block ``jids``; returns those newly blocked, in the given order without
        repeats (already-blocked ones are not returned, so no redundant push)."""
        ...

    async def remove(self, user: str, jids: Iterable[str]) -> tuple[str, ...]:
        """Unblock ``jids``; returns those that were blocked, in the given order."""
        ...

    async def clear(self, user: str) -> tuple[str, ...]:
        """Unblock everything (XEP-0191 §3.4 "unblock all"); returns what was blocked."""
        ...


class LastActivityStore(Protocol):
    """Last logout time and status per user (XEP-0012 §5)."""

    async def get(self, user: str) -> LastActivity | None:
        """The last activity, or ``None`` if never recorded."""
        ...

    async def put(self, user: str, activity: LastActivity) -> None:
        """Record (replace) the last activity."""
        ...

    async def delete(self, user: str) -> bool:
        """Forget the last activity; returns whether there was one."""
        ...


class MucStore(Protocol):
    """Persistent multi-user chat rooms and affiliations (XEP-0045 §10.2, §5.2)."""

    async def list_rooms(self, *, service: str | None = None) -> tuple[MucRoom, ...]:
        """All stored rooms, or those of one MUC ``service`` domain, sorted by JID
        (the MUC service loads them at start)."""
        ...

    async def get_room(self, room: str) -> MucRoom | None:
        """The room with bare JID ``room``, or ``None``."""
        ...

    async def put_room(self, room: MucRoom) -> None:
        """Insert or replace a room (config, subject); its affiliations are kept."""
        ...

    async def delete_room(self, room: str) -> bool:
        """Destroy a room with all its affiliations; returns whether it existed."""
        ...

    async def get_affiliation(self, room: str, user: str) -> MucAffiliation | None:
        """The affiliation of ``user`` with ``room``, or ``None`` (affiliation "none")."""
        ...

    async def set_affiliation(self, affiliation: MucAffiliation) -> None:
        """Insert or replace an affiliation.  Raises :class:`RoomNotFound` if the room
        is not stored."""
        ...

    async def delete_affiliation(self, room: str, user: str) -> bool:
        """Set the affiliation back to "none"; returns whether there was a record."""
        ...

    async def list_affiliations(
        self, room: str, *, affiliation: Affiliation | None = None
    ) -> tuple[MucAffiliation, ...]:
        """The room's affiliations, or only those of one kind (e.g. the member list,
        XEP-0045 §9.5), sorted by user JID."""
        ...


class Storage(ABC):
    """All stores of one database, with its lifecycle.

    ``open()`` connects and applies pending schema migrations (refusing a database from
    a newer xmppx with :class:`SchemaVersionError`); ``close()`` releases everything and
    is safe to call twice.  Also an async context manager::

        async with create_storage("sqlite:///var/lib/xmppx/xmppx.db") as storage:
            await storage.accounts.exists("juliet@example.com")

    Calling a store of a storage that is not open raises :class:`StorageError`.
    """

    accounts: AccountStore
    roster: RosterStore
    offline: OfflineStore
    private: PrivateStore
    blocklist: BlocklistStore
    last_activity: LastActivityStore
    muc: MucStore

    @abstractmethod
    async def open(self) -> None:
        """Connect, then :meth:`migrate`.  Raises :class:`StorageConfigError` if the
        database cannot be reached, :class:`StorageError` if already open."""

    @abstractmethod
    async def close(self) -> None:
        """Close connections and worker threads; idempotent."""

    @abstractmethod
    async def migrate(self) -> int:
        """Apply the pending migration steps in order, each recorded in the
        ``schema_version`` table, all in one transaction; return the schema version.
        A no-op on an up-to-date database.  Safe if two processes race (one waits)."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The schema version recorded in the database (0 for an empty database)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
