"""Schema migrations: ordered steps, each written for both drivers side by side.

Rules
=====
1.  The ``schema_version`` table holds one row per applied step (version, description);
    the database's version is the largest.  An empty database is version 0.
2.  Steps are numbered 1, 2, 3, ... without gaps and are never edited once released:
    a change is a new step.  Each step gives its SQL for SQLite and for PostgreSQL, so
    the two schemas cannot drift apart unnoticed.
3.  ``open()`` applies the pending steps in order in *one* transaction with the version
    rows (both engines have transactional DDL): a failure leaves the old schema intact,
    re-running is a no-op, and two processes migrating at once serialize.
4.  A database whose version is greater than the last step here was written by a newer
    xmppx: it is refused (:class:`SchemaVersionError`), never "downgraded".

Conventions of the schema
=========================
* Users and JIDs are ``TEXT``; PostgreSQL columns use ``COLLATE "C"`` so ordering is by
  code point, as SQLite's default ``BINARY`` collation (on UTF-8) is.
* Bytes are ``BLOB``/``bytea``.  SQLite stores timestamps as integer microseconds since
  the Unix epoch (UTC); PostgreSQL as ``timestamptz`` (also microseconds).
* Per-user data is keyed by the user's bare JID and not tied to ``accounts`` by a
  foreign key: deployments with external authentication still keep rosters.  Account
  deletion removes it explicitly (``AccountStore.delete``).
* Keys as long as XMPP allows.  A bare JID takes up to 2,047 bytes and a full JID
  3,071 (RFC 7622 §3.1), a private-storage key is a namespace of any length
  (XEP-0049 §3), and PostgreSQL's B-tree refuses an index entry over 2,704 bytes.  So
  on PostgreSQL a key that pairs the user (or room) with a second JID or a namespace
  indexes a SHA-256 digest of the second part, a stored generated column
  ``<column>_digest`` = ``xmppx_key_digest(<column>)`` (step 2); queries match the
  digest and the text.  SQLite has no such limit and keys on the text itself.  The
  indexes by domain (``accounts_by_domain``, ``muc_rooms_by_service``) hold a domain the
  operator configures next to a JID, and PostgreSQL compresses an entry that long
  before it measures it: only a domain of several hundred bytes could reach the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from xmppx.storage._errors import SchemaVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "pending_steps"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Migration:
    """One schema step: its version, a one-line description, and its statements per
    driver (each statement is executed on its own, in order)."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


_V1_SQLITE: Final = (
    """CREATE TABLE accounts (
        jid TEXT NOT NULL PRIMARY KEY,
        domain TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX accounts_by_domain ON accounts (domain, jid)",
    """CREATE TABLE scram_credentials (
        jid TEXT NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL CHECK (iterations > 0),
        stored_key BLOB NOT NULL,
        server_key BLOB NOT NULL,
        PRIMARY KEY (jid, hash)
    ) WITHOUT ROWID""",
    """CREATE TABLE roster_items (
        username TEXT NOT NULL,
        contact TEXT NOT NULL,
        name TEXT,
        subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask INTEGER NOT NULL CHECK (ask IN (0, 1)),
        approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
        groups TEXT NOT NULL,
        PRIMARY KEY (username, contact)
    ) WITHOUT ROWID""",
    """CREATE TABLE roster_versions (
        username TEXT NOT NULL PRIMARY KEY,
        version INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE roster_version_counter (
        id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
    )""",
    "INSERT INTO roster_version_counter (id, value) VALUES (1, 0)",
    """CREATE TABLE roster_pending (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        contact TEXT NOT NULL,
        stanza BLOB NOT NULL,
        UNIQUE (username, contact)
    )""",
    """CREATE TABLE offline_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        stanza BLOB NOT NULL,
        stamp INTEGER NOT NULL
    )""",
    "CREATE INDEX offline_messages_by_user ON offline_messages (username, id)",
    """CREATE TABLE private_storage (
        username TEXT NOT NULL,
        key TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (username, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE blocklist (
        username TEXT NOT NULL,
        jid TEXT NOT NULL,
        PRIMARY KEY (username, jid)
    ) WITHOUT ROWID""",
    """CREATE TABLE last_activity (
        username TEXT NOT NULL PRIMARY KEY,
        stamp INTEGER NOT NULL,
        status TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE muc_rooms (
        jid TEXT NOT NULL PRIMARY KEY,
        service TEXT NOT NULL,
        config TEXT NOT NULL,
        subject TEXT NOT NULL,
        subject_author TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX muc_rooms_by_service ON muc_rooms (service, jid)",
    """CREATE TABLE muc_affiliations (
        room TEXT NOT NULL REFERENCES muc_rooms (jid) ON DELETE CASCADE,
        jid TEXT NOT NULL,
        affiliation TEXT NOT NULL
            CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
        reason TEXT NOT NULL,
        nick TEXT,
        PRIMARY KEY (room, jid)
    ) WITHOUT ROWID""",
    "CREATE INDEX muc_affiliations_by_jid ON muc_affiliations (jid)",
)

_V1_POSTGRESQL: Final = (
    """CREATE TABLE accounts (
        jid text COLLATE "C" NOT NULL PRIMARY KEY,
        domain text COLLATE "C" NOT NULL
    )""",
    "CREATE INDEX accounts_by_domain ON accounts (domain, jid)",
    """CREATE TABLE scram_credentials (
        jid text COLLATE "C" NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
        hash text COLLATE "C" NOT NULL,
        salt bytea NOT NULL,
        iterations integer NOT NULL CHECK (iterations > 0),
        stored_key bytea NOT NULL,
        server_key bytea NOT NULL,
        PRIMARY KEY (jid, hash)
    )""",
    """CREATE TABLE roster_items (
        username text COLLATE "C" NOT NULL,
        contact text COLLATE "C" NOT NULL,
        name text,
        subscription text NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask boolean NOT NULL,
        approved boolean NOT NULL,
        groups text[] NOT NULL,
        PRIMARY KEY (username, contact)
    )""",
    """CREATE TABLE roster_versions (
        username text COLLATE "C" NOT NULL PRIMARY KEY,
        version bigint NOT NULL
    )""",
    "CREATE SEQUENCE roster_version_seq AS bigint",
    """CREATE TABLE roster_pending (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        username text COLLATE "C" NOT NULL,
        contact text COLLATE "C" NOT NULL,
        stanza bytea NOT NULL,
        UNIQUE (username, contact)
    )""",
    """CREATE TABLE offline_messages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        username text COLLATE "C" NOT NULL,
        stanza bytea NOT NULL,
        stamp timestamptz NOT NULL
    )""",
    "CREATE INDEX offline_messages_by_user ON offline_messages (username, id)",
    """CREATE TABLE private_storage (
        username text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (username, key)
    )""",
    """CREATE TABLE blocklist (
        username text COLLATE "C" NOT NULL,
        jid text COLLATE "C" NOT NULL,
        PRIMARY KEY (username, jid)
    )""",
    """CREATE TABLE last_activity (
        username text COLLATE "C" NOT NULL PRIMARY KEY,
        stamp timestamptz NOT NULL,
        status text NOT NULL
    )""",
    """CREATE TABLE muc_rooms (
        jid text COLLATE "C" NOT NULL PRIMARY KEY,
        service text COLLATE "C" NOT NULL,
        config text NOT NULL,
        subject text NOT NULL,
        subject_author text NOT NULL
    )""",
    "CREATE INDEX muc_rooms_by_service ON muc_rooms (service, jid)",
    """CREATE TABLE muc_affiliations (
        room text COLLATE "C" NOT NULL REFERENCES muc_rooms (jid) ON DELETE CASCADE,
        jid text COLLATE "C" NOT NULL,
        affiliation text NOT NULL
            CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
        reason text NOT NULL,
        nick text,
        PRIMARY KEY (room, jid)
    )""",
    "CREATE INDEX muc_affiliations_by_jid ON muc_affiliations (jid)",
)

#: Step 2 (PostgreSQL only): the keys that pair a user or room with a long second part
#: index a digest of that part (see "Keys as long as XMPP allows" above).
#: ``convert_to`` is only STABLE because it finds the conversion from the database
#: encoding through ``search_path``; from UTF8 (and SQL_ASCII) to UTF-8 there is none to
#: find, the bytes stay as they are, so the wrapper may be IMMUTABLE, as an index
#: requires.  (A superuser's ``CREATE DEFAULT CONVERSION`` on a database in another
#: encoding could change the digests; xmppx expects UTF8.)
_V2_POSTGRESQL: Final = (
    """CREATE FUNCTION xmppx_key_digest(value text) RETURNS bytea
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT sha256(convert_to(value, 'UTF8')) $$""",
    "ALTER TABLE roster_items ADD COLUMN contact_digest bytea NOT NULL "
    "GENERATED ALWAYS AS (xmppx_key_digest(contact)) STORED",
    "ALTER TABLE roster_items DROP CONSTRAINT roster_items_pkey",
    "ALTER TABLE roster_items ADD PRIMARY KEY (username, contact_digest)",
    "ALTER TABLE roster_pending ADD COLUMN contact_digest bytea NOT NULL "
    "GENERATED ALWAYS AS (xmppx_key_digest(contact)) STORED",
    "ALTER TABLE roster_pending DROP CONSTRAINT roster_pending_username_contact_key",
    "ALTER TABLE roster_pending ADD UNIQUE (username, contact_digest)",
    "ALTER TABLE private_storage ADD COLUMN key_digest bytea NOT NULL "
    "GENERATED ALWAYS AS (xmppx_key_digest(key)) STORED",
    "ALTER TABLE private_storage DROP CONSTRAINT private_storage_pkey",
    "ALTER TABLE private_storage ADD PRIMARY KEY (username, key_digest)",
    "ALTER TABLE blocklist ADD COLUMN jid_digest bytea NOT NULL "
    "GENERATED ALWAYS AS (xmppx_key_digest(jid)) STORED",
    "ALTER TABLE blocklist DROP CONSTRAINT blocklist_pkey",
    "ALTER TABLE blocklist ADD PRIMARY KEY (username, jid_digest)",
    "ALTER TABLE muc_affiliations ADD COLUMN jid_digest bytea NOT NULL "
    "GENERATED ALWAYS AS (xmppx_key_digest(jid)) STORED",
    "ALTER TABLE muc_affiliations DROP CONSTRAINT muc_affiliations_pkey",
    "ALTER TABLE muc_affiliations ADD PRIMARY KEY (room, jid_digest)",
)

#: Every released schema step, in order.  Append only.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        description="accounts, roster, offline, private, blocklist, last activity, MUC",
        sqlite=_V1_SQLITE,
        postgresql=_V1_POSTGRESQL,
    ),
    Migration(
        version=2,
        description="PostgreSQL: keys with a JID or namespace of any length (digest columns)",
        sqlite=(),
        postgresql=_V2_POSTGRESQL,
    ),
)

#: The schema version this code writes and reads.
SCHEMA_VERSION: Final = MIGRATIONS[-1].version


def pending_steps(current: int, steps: Sequence[Migration] = MIGRATIONS) -> tuple[Migration, ...]:
    """The steps to apply to a database at version ``current``, in order.

    Raises :class:`SchemaVersionError` when ``current`` is newer than the last step, and
    ``ValueError`` if ``steps`` are not numbered 1..n without gaps (a bug in this file).
    """
    versions = [step.version for step in steps]
    if versions != list(range(1, len(steps) + 1)):
        raise ValueError(f"migration steps must be numbered 1..n in order, got {versions}")
    latest = len(steps)
    if current > latest:
        raise SchemaVersionError(found=current, supported=latest)
    return tuple(steps[current:])
