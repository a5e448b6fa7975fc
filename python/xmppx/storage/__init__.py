"""Async storage for xmppx: one narrow typed store per kind of data, on SQLite or
PostgreSQL.

Server modules receive the stores (``storage.roster``, ``storage.offline``, ...) and never
import a driver (DESIGN.md §1); both drivers pass one test suite (``tests/storage``).
Records are frozen keyword-only dataclasses of plain values; stanzas are stored as their
serialized XML ``bytes``.  The contract of every store is in its protocol's docstrings.

Example::

    from xmppx.storage import open_storage

    storage = await open_storage("sqlite:///var/lib/xmppx/xmppx.db")
    try:
        stored = await storage.offline.append(
            "juliet@example.com", b"<message .../>", stamp=now, quota=100
        )
    finally:
        await storage.close()
"""

from xmppx.storage._errors import (
    AccountExists,
    AccountNotFound,
    RoomNotFound,
    SchemaVersionError,
    StorageConfigError,
    StorageError,
)
from xmppx.storage._factory import (
    DEFAULT_POOL_SIZE,
    DEFAULT_TIMEOUT,
    create_storage,
    open_storage,
)
from xmppx.storage._migrations import SCHEMA_VERSION
from xmppx.storage._protocols import (
    MAX_PAGE_SIZE,
    AccountStore,
    BlocklistStore,
    LastActivityStore,
    MucStore,
    OfflineStore,
    PrivateStore,
    RosterStore,
    Storage,
)
from xmppx.storage._records import (
    SCRAM_HASHES,
    Affiliation,
    JsonValue,
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
)

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_PAGE_SIZE",
    "SCHEMA_VERSION",
    "SCRAM_HASHES",
    "AccountExists",
    "AccountNotFound",
    "AccountStore",
    "Affiliation",
    "BlocklistStore",
    "JsonValue",
    "LastActivity",
    "LastActivityStore",
    "MucAffiliation",
    "MucRoom",
    "MucStore",
    "NewAccount",
    "OfflineMessage",
    "OfflineStore",
    "PendingSubscription",
    "PrivateStore",
    "RoomNotFound",
    "Roster",
    "RosterItem",
    "RosterState",
    "RosterStore",
    "SchemaVersionError",
    "ScramCredentials",
    "Storage",
    "StorageConfigError",
    "StorageError",
    "Subscription",
    "create_storage",
    "open_storage",
]
