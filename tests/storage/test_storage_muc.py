"""MucStore on both drivers (XEP-0045 persistent rooms and affiliations)."""

from __future__ import annotations

import pytest

from xmppx.storage import JsonValue, MucAffiliation, MucRoom, RoomNotFound, Storage

pytestmark = pytest.mark.asyncio

ROOM = "coven@chat.shakespeare.lit"
CONFIG: dict[str, JsonValue] = {
    "muc#roomconfig_roomname": "The Coven ☾",
    "muc#roomconfig_persistentroom": True,
    "muc#roomconfig_maxusers": 30,
    "muc#roomconfig_roomadmins": ["wiccarocks@shakespeare.lit", "hecate@shakespeare.lit"],
    "history": {"maxstanzas": 20, "seconds": None, "ratio": 0.5},
}


async def test_room_round_trip_and_replace(storage: Storage) -> None:
    assert await storage.muc.get_room(ROOM) is None
    room = MucRoom(
        jid=ROOM,
        config=CONFIG,
        subject="Fire Burn and Cauldron Bubble!",
        subject_author="secondwitch",
    )
    await storage.muc.put_room(room)
    assert await storage.muc.get_room(ROOM) == room

    renamed = MucRoom(jid=ROOM, config={"muc#roomconfig_roomname": "Coven"})
    await storage.muc.put_room(renamed)
    assert await storage.muc.get_room(ROOM) == renamed


async def test_list_rooms_sorted_and_by_service(storage: Storage) -> None:
    jids = ["zeta@chat.example", "alpha@chat.example", "ümlaut@chat.example", "b@muc.other"]
    for jid in jids:
        await storage.muc.put_room(MucRoom(jid=jid, config={}))
    assert [r.jid for r in await storage.muc.list_rooms()] == sorted(jids)
    assert [r.jid for r in await storage.muc.list_rooms(service="chat.example")] == sorted(jids[:3])
    assert await storage.muc.list_rooms(service="none.example") == ()


async def test_affiliations(storage: Storage) -> None:
    await storage.muc.put_room(MucRoom(jid=ROOM, config=CONFIG))
    owner = MucAffiliation(room=ROOM, user="crone1@shakespeare.lit", affiliation="owner")
    member = MucAffiliation(
        room=ROOM, user="hag66@shakespeare.lit", affiliation="member", nick="thirdwitch"
    )
    banned = MucAffiliation(
        room=ROOM, user="earlofcambridge@shakespeare.lit", affiliation="outcast", reason="Treason"
    )
    for affiliation in (owner, member, banned):
        await storage.muc.set_affiliation(affiliation)

    assert await storage.muc.get_affiliation(ROOM, "hag66@shakespeare.lit") == member
    assert await storage.muc.get_affiliation(ROOM, "nobody@shakespeare.lit") is None
    assert await storage.muc.list_affiliations(ROOM) == (owner, banned, member)  # by user JID
    assert await storage.muc.list_affiliations(ROOM, affiliation="outcast") == (banned,)
    assert await storage.muc.list_affiliations(ROOM, affiliation="admin") == ()

    promoted = MucAffiliation(room=ROOM, user="hag66@shakespeare.lit", affiliation="admin")
    await storage.muc.set_affiliation(promoted)
    assert await storage.muc.get_affiliation(ROOM, "hag66@shakespeare.lit") == promoted

    assert await storage.muc.delete_affiliation(ROOM, "hag66@shakespeare.lit") is True
    assert await storage.muc.delete_affiliation(ROOM, "hag66@shakespeare.lit") is False
    assert await storage.muc.list_affiliations(ROOM) == (owner, banned)


async def test_put_room_keeps_affiliations(storage: Storage) -> None:
    await storage.muc.put_room(MucRoom(jid=ROOM, config=CONFIG))
    owner = MucAffiliation(room=ROOM, user="crone1@shakespeare.lit", affiliation="owner")
    await storage.muc.set_affiliation(owner)
    await storage.muc.put_room(MucRoom(jid=ROOM, config={}, subject="new subject"))
    assert await storage.muc.list_affiliations(ROOM) == (owner,)


async def test_affiliation_needs_a_stored_room(storage: Storage) -> None:
    with pytest.raises(RoomNotFound) as info:
        await storage.muc.set_affiliation(
            MucAffiliation(room=ROOM, user="crone1@shakespeare.lit", affiliation="owner")
        )
    assert info.value.room == ROOM
    assert await storage.muc.list_affiliations(ROOM) == ()


async def test_delete_room_removes_its_affiliations(storage: Storage) -> None:
    other = "other@chat.shakespeare.lit"
    for jid in (ROOM, other):
        await storage.muc.put_room(MucRoom(jid=jid, config={}))
        await storage.muc.set_affiliation(
            MucAffiliation(room=jid, user="crone1@shakespeare.lit", affiliation="owner")
        )
    assert await storage.muc.delete_room(ROOM) is True
    assert await storage.muc.delete_room(ROOM) is False
    assert await storage.muc.get_room(ROOM) is None
    # Re-creating the room does not resurrect old affiliations.
    await storage.muc.put_room(MucRoom(jid=ROOM, config={}))
    assert await storage.muc.list_affiliations(ROOM) == ()
    assert len(await storage.muc.list_affiliations(other)) == 1
