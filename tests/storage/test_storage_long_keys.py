"""Keys as long as XMPP allows, on both drivers.

A bare JID may take 2,047 bytes and a full one 3,071 (RFC 7622 §3.1: 1,023 bytes a
part), a private-storage key is an XML namespace of any length (XEP-0049 §3), and the
tables key their rows on pairs of these.  PostgreSQL's B-tree refuses an index entry
over about 2.7 KB, so the schema must not put such pairs in one B-tree entry; these
tests store, find, replace and delete rows whose keys go past that, with random letters
that no compression shrinks.
"""

from __future__ import annotations

import random
import string

import asyncpg
import pytest

from xmppx.storage import (
    SCHEMA_VERSION,
    MucAffiliation,
    MucRoom,
    RosterItem,
    Storage,
    create_storage,
)
from xmppx.storage._migrations import MIGRATIONS

pytestmark = pytest.mark.asyncio

JULIET = "juliet@example.com"
ROMEO = "romeo@example.net"
ROOM = "balcony@chat.example.com"


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def _domain(rng: random.Random, size: int) -> str:
    """A domain of ``size`` bytes made of 63-byte labels."""
    labels: list[str] = []
    while sum(len(label) + 1 for label in labels) + 63 <= size:
        labels.append(_letters(rng, 63))
    rest = size - sum(len(label) + 1 for label in labels)
    labels.append(_letters(rng, max(rest, 1)))
    return ".".join(labels)[:size]


def _bare(rng: random.Random) -> str:
    """A bare JID of the largest size: 1,023-byte localpart and domainpart."""
    return f"{_letters(rng, 1023)}@{_domain(rng, 1023)}"


async def test_roster_items_and_pending_with_the_longest_bare_jids(storage: Storage) -> None:
    rng = random.Random(6122)
    user, contact, other = _bare(rng), _bare(rng), _bare(rng)
    assert len(user.encode()) == len(contact.encode()) == 2047
    await storage.roster.put_item(user, RosterItem(contact=contact, name="long", subscription="to"))
    await storage.roster.put_item(user, RosterItem(contact=other))
    await storage.roster.put_item(
        user, RosterItem(contact=contact, name="again", subscription="both")
    )
    got = await storage.roster.get_item(user, contact)
    assert got is not None and (got.name, got.subscription) == ("again", "both")
    assert [i.contact for i in (await storage.roster.get_roster(user)).items] == sorted(
        [contact, other]
    )
    assert await storage.roster.delete_item(user, contact) is not None
    assert await storage.roster.get_item(user, contact) is None

    await storage.roster.put_pending(user, contact, b"<presence type='subscribe'/>")
    await storage.roster.put_pending(user, contact, b"<presence type='subscribe' id='2'/>")
    pending = await storage.roster.list_pending(user)
    assert [(p.contact, p.stanza) for p in pending] == [
        (contact, b"<presence type='subscribe' id='2'/>")
    ]
    assert await storage.roster.remove_pending(user, contact) is True
    assert await storage.roster.list_pending(user) == ()


async def test_private_storage_with_a_long_namespace(storage: Storage) -> None:
    rng = random.Random(49)
    user = _bare(rng)
    key = "{urn:example:" + _letters(rng, 4000) + "}query"
    other = key[:-1] + "r"
    await storage.private.put(user, key, b"<query/>")
    await storage.private.put(user, other, b"<r/>")
    await storage.private.put(user, key, b"<query>2</query>")
    assert await storage.private.get(user, key) == b"<query>2</query>"
    assert await storage.private.get(user, other) == b"<r/>"
    assert await storage.private.delete(user, key) is True
    assert await storage.private.get(user, key) is None
    assert await storage.private.get(user, other) == b"<r/>"


async def test_blocklist_with_the_longest_full_jids(storage: Storage) -> None:
    rng = random.Random(191)
    user = _bare(rng)
    blocked = [f"{_bare(rng)}/{_letters(rng, 1023)}" for _ in range(3)]
    assert len(blocked[0].encode()) == 3071
    assert await storage.blocklist.add(user, blocked) == tuple(blocked)
    assert await storage.blocklist.add(user, blocked[:1]) == ()
    assert await storage.blocklist.get(user) == tuple(sorted(blocked))
    assert await storage.blocklist.remove(user, blocked[1:2]) == (blocked[1],)
    assert await storage.blocklist.clear(user) == tuple(sorted([blocked[0], blocked[2]]))


async def test_muc_affiliations_with_the_longest_bare_jids(storage: Storage) -> None:
    rng = random.Random(45)
    # the service is a domain the operator configures; the room's name may be long
    room = f"{_letters(rng, 1023)}@conference.example.com"
    await storage.muc.put_room(MucRoom(jid=room, config={"persistent": True}))
    user = _bare(rng)
    await storage.muc.set_affiliation(
        MucAffiliation(room=room, user=user, affiliation="member", nick="n")
    )
    await storage.muc.set_affiliation(
        MucAffiliation(room=room, user=user, affiliation="admin", reason="why")
    )
    got = await storage.muc.get_affiliation(room, user)
    assert got is not None and (got.affiliation, got.reason) == ("admin", "why")
    assert [a.user for a in await storage.muc.list_affiliations(room)] == [user]
    assert await storage.muc.delete_affiliation(room, user) is True
    assert await storage.muc.get_affiliation(room, user) is None


@pytest.mark.parametrize("driver", ["postgresql"])  # step 2 changes nothing on SQLite
async def test_a_version_1_database_keeps_its_rows_through_step_2(storage_url: str) -> None:
    """A PostgreSQL database the first release made (schema step 1, rows written with
    that release's SQL) is upgraded on open: its rows are found, replaced and deleted
    by the new keys, and long keys fit."""
    old = create_storage(storage_url)
    # as the first release opened it: only the steps it knew
    old.migrate = lambda: old._migrate_steps(MIGRATIONS[:1])  # type: ignore[method-assign, attr-defined]
    async with old:
        assert await old.schema_version() == 1
    conn = await asyncpg.connect(storage_url)
    try:
        for sql, *args in (
            (
                "INSERT INTO roster_items (username, contact, name, subscription, ask, "
                "approved, groups) VALUES ($1, $2, NULL, 'both', false, false, '{}')",
                JULIET,
                ROMEO,
            ),
            (
                "INSERT INTO roster_pending (username, contact, stanza) VALUES ($1, $2, $3)",
                JULIET,
                ROMEO,
                b"<presence type='subscribe'/>",
            ),
            (
                "INSERT INTO private_storage (username, key, data) VALUES ($1, $2, $3)",
                JULIET,
                "{storage:bookmarks}storage",
                b"<storage/>",
            ),
            ("INSERT INTO blocklist (username, jid) VALUES ($1, $2)", JULIET, ROMEO),
            (
                "INSERT INTO muc_rooms (jid, service, config, subject, subject_author) "
                "VALUES ($1, 'chat.example.com', '{}', '', '')",
                ROOM,
            ),
            (
                "INSERT INTO muc_affiliations (room, jid, affiliation, reason, nick) "
                "VALUES ($1, $2, 'owner', '', NULL)",
                ROOM,
                ROMEO,
            ),
        ):
            await conn.execute(sql, *args)
    finally:
        await conn.close()

    async with create_storage(storage_url) as new:
        assert await new.schema_version() == SCHEMA_VERSION >= 2
        item = await new.roster.get_item(JULIET, ROMEO)
        assert item is not None and item.subscription == "both"
        await new.roster.put_item(JULIET, RosterItem(contact=ROMEO, subscription="to"))
        items = (await new.roster.get_roster(JULIET)).items
        assert [(i.contact, i.subscription) for i in items] == [(ROMEO, "to")]
        await new.roster.put_pending(JULIET, ROMEO, b"<presence type='subscribe' id='2'/>")
        assert [p.stanza for p in await new.roster.list_pending(JULIET)] == [
            b"<presence type='subscribe' id='2'/>"
        ]
        assert await new.roster.remove_pending(JULIET, ROMEO) is True
        assert await new.private.get(JULIET, "{storage:bookmarks}storage") == b"<storage/>"
        assert await new.blocklist.add(JULIET, [ROMEO]) == ()
        assert await new.blocklist.remove(JULIET, [ROMEO]) == (ROMEO,)
        owner = await new.muc.get_affiliation(ROOM, ROMEO)
        assert owner is not None and owner.affiliation == "owner"
        assert await new.muc.delete_affiliation(ROOM, ROMEO) is True
        long_contact = _bare(random.Random(2))
        await new.roster.put_item(JULIET, RosterItem(contact=long_contact))
        assert await new.roster.get_item(JULIET, long_contact) is not None
