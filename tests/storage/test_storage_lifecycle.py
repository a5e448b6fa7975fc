"""Storage lifecycle on both drivers: migrations, reopening, account deletion across every
store, and the errors of a storage that is not open."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from xmppx.storage import (
    SCHEMA_VERSION,
    LastActivity,
    MucAffiliation,
    MucRoom,
    RosterItem,
    SchemaVersionError,
    ScramCredentials,
    Storage,
    StorageError,
    create_storage,
    open_storage,
)
from xmppx.storage._migrations import MIGRATIONS, Migration

pytestmark = pytest.mark.asyncio

JULIET = "juliet@example.com"
ROMEO = "romeo@example.net"
ROOM = "balcony@chat.example.com"
BANNING_ROOM = "capulets@chat.example.com"
STAMP = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

#: A second step, as a future release would add: plain CREATE TABLE (no IF NOT EXISTS),
#: so applying it twice would fail.
EXTRA_STEP = Migration(
    version=SCHEMA_VERSION + 1,
    description="test step",
    sqlite=("CREATE TABLE test_extra (x INTEGER NOT NULL)",),
    postgresql=("CREATE TABLE test_extra (x integer NOT NULL)",),
)


async def _fill(storage: Storage, user: str, creds: ScramCredentials) -> None:
    """Put data for ``user`` in every store."""
    await storage.accounts.create(user, [creds])
    await storage.roster.put_item(user, RosterItem(contact="nurse@example.com", groups=("G",)))
    await storage.roster.put_pending(user, "tybalt@example.com", b"<presence type='subscribe'/>")
    await storage.offline.append(user, b"<message/>", stamp=STAMP, quota=10)
    await storage.private.put(user, "vcard-temp", b"<vCard xmlns='vcard-temp'/>")
    await storage.blocklist.add(user, ["tybalt@example.com"])
    await storage.last_activity.put(user, LastActivity(stamp=STAMP, status="bye"))
    if await storage.muc.get_room(ROOM) is None:
        await storage.muc.put_room(MucRoom(jid=ROOM, config={"public": True}))
    await storage.muc.set_affiliation(MucAffiliation(room=ROOM, user=user, affiliation="member"))
    if await storage.muc.get_room(BANNING_ROOM) is None:
        await storage.muc.put_room(MucRoom(jid=BANNING_ROOM, config={"public": True}))
    await storage.muc.set_affiliation(
        MucAffiliation(room=BANNING_ROOM, user=user, affiliation="outcast", reason="Treason")
    )


async def test_delete_account_removes_data_in_every_store(
    storage: Storage, make_credentials: Callable[..., ScramCredentials]
) -> None:
    creds = make_credentials("pw")
    await _fill(storage, JULIET, creds)
    await _fill(storage, ROMEO, creds)

    assert await storage.accounts.delete(JULIET) is True

    assert not await storage.accounts.exists(JULIET)
    assert await storage.accounts.list_credentials(JULIET) == ()
    assert (await storage.roster.get_roster(JULIET)).items == ()
    assert await storage.roster.list_pending(JULIET) == ()
    assert await storage.offline.count(JULIET) == 0
    assert await storage.private.get(JULIET, "vcard-temp") is None
    assert await storage.blocklist.get(JULIET) == ()
    assert await storage.last_activity.get(JULIET) is None
    assert await storage.muc.get_affiliation(ROOM, JULIET) is None
    # A room's ban of the JID stays (XEP-0045 §9.1): it holds against the next 'juliet'.
    assert (await storage.muc.get_affiliation(BANNING_ROOM, JULIET)) == MucAffiliation(
        room=BANNING_ROOM, user=JULIET, affiliation="outcast", reason="Treason"
    )
    # The room itself and the other user's data stay.
    assert await storage.muc.get_room(ROOM) is not None
    assert await storage.accounts.exists(ROMEO)
    assert len((await storage.roster.get_roster(ROMEO)).items) == 1
    assert len(await storage.roster.list_pending(ROMEO)) == 1
    assert await storage.offline.count(ROMEO) == 1
    assert await storage.private.get(ROMEO, "vcard-temp") is not None
    assert await storage.blocklist.get(ROMEO) == ("tybalt@example.com",)
    assert await storage.last_activity.get(ROMEO) is not None
    assert await storage.muc.get_affiliation(ROOM, ROMEO) is not None


async def test_delete_purges_data_of_a_user_without_account(storage: Storage) -> None:
    """External-auth deployments keep data without an AccountStore record."""
    await storage.private.put(JULIET, "k", b"<x/>")
    assert await storage.accounts.delete(JULIET) is False
    assert await storage.private.get(JULIET, "k") is None


async def test_data_survives_close_and_reopen(
    storage_url: str, make_credentials: Callable[..., ScramCredentials]
) -> None:
    creds = make_credentials("pw")
    async with create_storage(storage_url) as first:
        await _fill(first, JULIET, creds)
        version = await first.roster.get_version(JULIET)
    async with create_storage(storage_url) as second:
        assert await second.schema_version() == SCHEMA_VERSION
        assert await second.accounts.list_credentials(JULIET) == (creds,)
        assert await second.roster.get_version(JULIET) == version
        assert await second.roster.get_item(JULIET, "nurse@example.com") == RosterItem(
            contact="nurse@example.com", groups=("G",)
        )
        assert [m.stamp for m in await second.offline.fetch(JULIET)] == [STAMP]
        assert await second.private.get(JULIET, "vcard-temp") == b"<vCard xmlns='vcard-temp'/>"
        assert await second.blocklist.get(JULIET) == ("tybalt@example.com",)
        assert await second.last_activity.get(JULIET) == LastActivity(stamp=STAMP, status="bye")
        room = await second.muc.get_room(ROOM)
        assert room is not None and room.config == {"public": True}
        # Versions keep growing after a restart: never a repeat.
        new_version = await second.roster.put_item(JULIET, RosterItem(contact="x@example.com"))
        assert int(new_version) > int(version)


async def test_migrate_is_idempotent(storage: Storage) -> None:
    assert await storage.schema_version() == SCHEMA_VERSION
    await storage.private.put(JULIET, "k", b"<kept/>")
    assert await storage.migrate() == SCHEMA_VERSION
    assert await storage.migrate() == SCHEMA_VERSION
    assert await storage.schema_version() == SCHEMA_VERSION
    assert await storage.private.get(JULIET, "k") == b"<kept/>"


async def test_new_step_is_applied_once_then_newer_database_is_refused(storage_url: str) -> None:
    async with create_storage(storage_url) as storage:
        await storage.private.put(JULIET, "k", b"<kept/>")
        upgrade = storage._migrate_steps  # type: ignore[attr-defined]
        assert await upgrade((*MIGRATIONS, EXTRA_STEP)) == SCHEMA_VERSION + 1
        assert await upgrade((*MIGRATIONS, EXTRA_STEP)) == SCHEMA_VERSION + 1  # no-op
        assert await storage.schema_version() == SCHEMA_VERSION + 1
        assert await storage.private.get(JULIET, "k") == b"<kept/>"

    # This code knows only SCHEMA_VERSION: the database is from a newer xmppx.
    with pytest.raises(SchemaVersionError) as info:
        await open_storage(storage_url)
    assert info.value.found == SCHEMA_VERSION + 1
    assert info.value.supported == SCHEMA_VERSION
    assert "newer" in str(info.value)


async def test_closed_storage_raises_storage_error(storage_url: str) -> None:
    storage = create_storage(storage_url)
    with pytest.raises(StorageError, match="not open"):
        await storage.accounts.exists(JULIET)
    await storage.open()
    with pytest.raises(StorageError, match="already open"):
        await storage.open()
    await storage.close()
    await storage.close()  # idempotent
    with pytest.raises(StorageError, match="not open"):
        await storage.roster.get_roster(JULIET)
    # It can be opened again.
    await storage.open()
    assert await storage.accounts.count() == 0
    await storage.close()
