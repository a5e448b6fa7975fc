"""The MUC service around the rooms: persistence across a restart (§10.2, storage),
limits (§7.2.9, §10.1.1, rate), shutdown (§11.2), and interoperability with slixmpp's
XEP-0045 plugin."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slixmpp import JID

from tests.muc.conftest import (
    MUC,
    ServerFactory,
    admin_list,
    admin_set,
    codes,
    configure,
    connect,
    create_instant,
    create_room,
    error_condition,
    form_xml,
    item,
    muc_of,
)
from tests.server.conftest import PASSWORD, slix_close, slix_connect
from xmppx import ns
from xmppx.core import BareJID, Element
from xmppx.server.accounts import create_account

ROOM = f"coven@{MUC}"


def _body_is(text: str) -> Callable[[Element], bool]:
    return lambda s: s.findtext(ns.clark(ns.CLIENT, "body")) == text


async def test_persistent_room_survives_a_restart(servers: ServerFactory) -> None:
    """A persistent room keeps its configuration, subject and affiliations (owner,
    admin, member with reserved nick, outcast) in storage and is restored at start; a
    temporary room is not."""
    server = await servers.start()
    romeo = await connect(server, "romeo")
    await create_room(
        romeo,
        ROOM,
        "firstwitch",
        {
            "muc#roomconfig_persistentroom": "1",
            "muc#roomconfig_roomname": "A Dark Cave",
            "muc#roomconfig_membersonly": "1",
            "muc#roomconfig_roomadmins": "friar@localhost",
        },
    )
    await admin_set(
        romeo,
        ROOM,
        "<item affiliation='admin' jid='juliet@localhost'/>"
        "<item affiliation='member' jid='mercutio@localhost' nick='thirdwitch'/>"
        "<item affiliation='outcast' jid='tybalt@localhost'><reason>Treason</reason></item>",
    )
    romeo.send(f"<message to='{ROOM}' type='groupchat'><subject>Spells</subject></message>")
    await romeo.expect_from(f"{ROOM}/firstwitch", "message")
    await create_instant(romeo, f"temporary@{MUC}", "x")
    await romeo.close()
    await server.stop()

    server = await servers.start()
    assert ROOM in {str(j) for j in muc_of(server).rooms}
    assert f"temporary@{MUC}" not in {str(j) for j in muc_of(server).rooms}
    juliet = await connect(server, "juliet")
    mercutio = await connect(server, "mercutio")
    tybalt = await connect(server, "tybalt")
    benvolio = await connect(server, "benvolio")
    try:
        items = await juliet.iq(f"<iq type='get' to='{MUC}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>")
        assert [(i.get("jid"), i.get("name")) for i in items[0]] == [(ROOM, "A Dark Cave")]
        joined = await juliet.join(ROOM, "secondwitch")
        assert item(joined.self_presence)["affiliation"] == "admin"
        assert item(joined.self_presence)["role"] == "moderator"
        assert joined.subject.findtext(ns.clark(ns.CLIENT, "subject")) == "Spells"
        assert joined.subject.get("from") == f"{ROOM}/firstwitch"
        restored = next(r for j, r in muc_of(server).rooms.items() if str(j) == ROOM)
        assert sorted(restored.users_with("admin")) == ["friar@localhost", "juliet@localhost"]
        bans = await admin_list(juliet, ROOM, "affiliation='outcast'")
        assert bans == [{"affiliation": "outcast", "jid": "tybalt@localhost"}]
        members = await admin_list(juliet, ROOM, "affiliation='member'")
        assert members == [
            {"affiliation": "member", "jid": "mercutio@localhost", "nick": "thirdwitch"}
        ]
        assert await tybalt.join_error(ROOM, "tybalt") == "forbidden"
        assert await benvolio.join_error(ROOM, "ben") == "registration-required"
        joined = await mercutio.join(ROOM, "thirdwitch")
        assert item(joined.self_presence)["affiliation"] == "member"
        # the room stays when everyone leaves (persistent) ...
        await juliet.leave(ROOM, "secondwitch")
        await mercutio.leave(ROOM, "thirdwitch")
        assert ROOM in {str(j) for j in muc_of(server).rooms}
    finally:
        for peer in (juliet, mercutio, tybalt, benvolio):
            await peer.close()
    # ... and when it is made temporary again it leaves storage too
    romeo = await connect(server, "romeo")
    await configure(romeo, ROOM, {"muc#roomconfig_persistentroom": "0"})
    await romeo.close()
    await server.stop()
    server = await servers.start()
    assert ROOM not in {str(j) for j in muc_of(server).rooms}


async def test_destroyed_persistent_room_is_gone_after_restart(servers: ServerFactory) -> None:
    server = await servers.start()
    romeo = await connect(server, "romeo")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_persistentroom": "1"})
    await romeo.iq(
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'><destroy/></query></iq>"
    )
    await romeo.close()
    await server.stop()
    server = await servers.start()
    assert muc_of(server).rooms == {}


async def test_service_domain_is_configurable(servers: ServerFactory) -> None:
    """``muc.domain``: the service answers there and the server lists it (§6.1)."""
    server = await servers.start(muc__domain="rooms.localhost")
    romeo = await connect(server, "romeo")
    try:
        items = await romeo.iq(
            f"<iq type='get' to='localhost'><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
        )
        assert [i.get("jid") for i in items[0]] == ["rooms.localhost"]
        joined = await create_instant(romeo, "coven@rooms.localhost", "firstwitch")
        assert "110" in codes(joined.self_presence)
        assert {str(j) for j in muc_of(server).rooms} == {"coven@rooms.localhost"}
        # conference.<domain> is then just a domain this server does not serve
        condition = await romeo.iq_error(
            f"<iq type='get' to='{MUC}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
        )
        assert condition == "remote-server-not-found"
    finally:
        await romeo.close()


async def test_service_can_be_disabled(servers: ServerFactory) -> None:
    """``muc.enabled = false``: nothing listed, and conference.<domain> is just another
    domain this server does not serve (no s2s: remote-server-not-found)."""
    server = await servers.start(muc__enabled=False)
    romeo = await connect(server, "romeo")
    try:
        items = await romeo.iq(
            f"<iq type='get' to='localhost'><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
        )
        assert MUC not in [i.get("jid") for i in items[0]]
        condition = await romeo.iq_error(
            f"<iq type='get' to='{MUC}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
        )
        assert condition == "remote-server-not-found"
    finally:
        await romeo.close()


async def test_rooms_per_user_limit(servers: ServerFactory) -> None:
    """§10.1.1: creating beyond the limit (``muc.max_rooms_per_user``) is not-allowed,
    never a silent drop."""
    server = await servers.start(muc__max_rooms_per_user=2)
    romeo = await connect(server, "romeo")
    try:
        await create_instant(romeo, f"one@{MUC}", "r")
        await create_instant(romeo, f"two@{MUC}", "r")
        assert await romeo.join_error(f"three@{MUC}", "r") == "not-allowed"
    finally:
        await romeo.close()


async def test_room_full(servers: ServerFactory) -> None:
    """§7.2.9: a full room is service-unavailable (type wait), but admins and owners
    still get in."""
    server = await servers.start(muc__max_occupants=2)
    romeo, juliet, mercutio, benvolio = [
        await connect(server, u) for u in ("romeo", "juliet", "mercutio", "benvolio")
    ]
    try:
        await create_room(romeo, ROOM, "owner", {"muc#roomconfig_maxusers": "none"})
        # "none" means the service's limit; more than that cannot be configured
        assert (
            await romeo.iq_error(
                f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'>"
                f"{form_xml({'muc#roomconfig_maxusers': '10'})}</query></iq>"
            )
            == "not-acceptable"
        )
        await juliet.join(ROOM, "juliet")
        mercutio.send(f"<presence to='{ROOM}/mercutio'><x xmlns='{ns.MUC}'/></presence>")
        err = await mercutio.expect_from(f"{ROOM}/mercutio", "presence", type="error")
        assert error_condition(err) == "service-unavailable"
        e = err.find(ns.clark(ns.CLIENT, "error"))
        assert e is not None and e.get("type") == "wait"
        await admin_set(romeo, ROOM, "<item affiliation='admin' jid='benvolio@localhost'/>")
        await benvolio.join(ROOM, "benvolio")
    finally:
        for peer in (romeo, juliet, mercutio, benvolio):
            await peer.close()


async def test_service_limit_caps_a_restored_room(servers: ServerFactory) -> None:
    """A persistent room keeps its maxusers across a restart, but the service's limit
    (``muc.max_occupants``, lowered meanwhile) still caps it."""
    server = await servers.start()
    romeo = await connect(server, "romeo")
    await create_room(
        romeo,
        ROOM,
        "owner",
        {"muc#roomconfig_persistentroom": "1", "muc#roomconfig_maxusers": "10"},
    )
    await romeo.close()
    await server.stop()
    server = await servers.start(muc__max_occupants=2)
    juliet, mercutio, benvolio = [
        await connect(server, u) for u in ("juliet", "mercutio", "benvolio")
    ]
    try:
        await juliet.join(ROOM, "juliet")
        await mercutio.join(ROOM, "mercutio")
        benvolio.send(f"<presence to='{ROOM}/benvolio'><x xmlns='{ns.MUC}'/></presence>")
        err = await benvolio.expect_from(f"{ROOM}/benvolio", "presence", type="error")
        assert error_condition(err) == "service-unavailable"
    finally:
        for peer in (juliet, mercutio, benvolio):
            await peer.close()


async def test_message_rate_limit(servers: ServerFactory) -> None:
    """Past the burst, a message is refused with policy-violation (wait) and not
    reflected."""
    server = await servers.start(muc__message_burst=3, muc__message_rate=1e-9)
    romeo, juliet = await connect(server, "romeo"), await connect(server, "juliet")
    try:
        await create_instant(romeo, ROOM, "r")
        await juliet.join(ROOM, "j")
        for n in range(4):
            juliet.send(
                f"<message to='{ROOM}' type='groupchat' id='f{n}'><body>{n}</body></message>"
            )
        err = await juliet.expect_from(ROOM, "message", type="error", id="f3")
        assert error_condition(err) == "policy-violation"
        for n in range(3):
            await romeo.expect_from(f"{ROOM}/j", "message", id=f"f{n}")
        await romeo.barrier()
        assert not [s for s in romeo.buffer if s.get("id") == "f3"]
    finally:
        await romeo.close()
        await juliet.close()


async def test_history_size_is_bounded(servers: ServerFactory) -> None:
    server = await servers.start(muc__history_size=3, muc__message_rate=1e6)
    romeo, juliet = await connect(server, "romeo"), await connect(server, "juliet")
    try:
        await create_instant(romeo, ROOM, "r")
        for n in range(6):
            await romeo.say(ROOM, f"m{n}")
        for n in range(6):
            await romeo.expect(_body_is(f"m{n}"))
        joined = await juliet.join(ROOM, "j")
        assert [m.findtext(ns.clark(ns.CLIENT, "body")) for m in joined.history] == [
            "m3",
            "m4",
            "m5",
        ]
    finally:
        await romeo.close()
        await juliet.close()


async def test_shutdown_tells_occupants(servers: ServerFactory) -> None:
    """§11.2: at shutdown every occupant gets unavailable presence with 332."""
    server = await servers.start()
    romeo, juliet = await connect(server, "romeo"), await connect(server, "juliet")
    await create_instant(romeo, ROOM, "r")
    await juliet.join(ROOM, "j")
    await romeo.barrier()
    await juliet.barrier()
    await server.stop()
    for peer, nick in ((romeo, "r"), (juliet, "j")):
        gone = await peer.expect_from(f"{ROOM}/{nick}", "presence", type="unavailable")
        assert codes(gone) == {"110", "332"}
        await peer.close()


async def test_slixmpp_xep_0045_plugin(servers: ServerFactory) -> None:
    """Interoperability: slixmpp's MUC plugin creates, configures, chats and reads the
    subject through this service."""
    server = await servers.start()
    romeo = await slix_connect(server, "romeo@localhost/orchard", plugins=("xep_0045",))
    juliet = await slix_connect(server, "juliet@localhost/balcony", plugins=("xep_0045",))
    try:
        muc_r = romeo.plugin["xep_0045"]
        muc_j = juliet.plugin["xep_0045"]
        pres, _subject, _occupants, _history = await muc_r.join_muc_wait(
            JID(ROOM), "Romeo", timeout=10
        )
        assert 201 in pres["muc"]["status_codes"]
        form = await muc_r.get_room_config(ROOM)
        form["type"] = "submit"
        await muc_r.set_room_config(ROOM, form)
        muc_r.set_subject(ROOM, "Verona")
        pres, subject, occupants, _ = await muc_j.join_muc_wait(JID(ROOM), "Juliet", timeout=10)
        assert 110 in pres["muc"]["status_codes"]
        assert subject["subject"] == "Verona"
        assert f"{ROOM}/Romeo" in [str(o["from"]) for o in occupants]
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_groupchat(m: Any) -> None:
            if not got.done() and m["mucnick"] == "Juliet":
                got.set_result(m)

        romeo.add_event_handler("groupchat_message", on_groupchat)
        juliet.send_message(mto=JID(ROOM), mbody="Wherefore art thou", mtype="groupchat")
        msg = await asyncio.wait_for(got, 10)
        assert msg["body"] == "Wherefore art thou"
        owners = await muc_r.get_affiliation_list(ROOM, "owner")
        assert [str(j) for j in owners] == ["romeo@localhost"]
        await muc_r.set_affiliation(ROOM, "member", jid="juliet@localhost")
        members = await muc_r.get_affiliation_list(ROOM, "member")
        assert [str(j) for j in members] == ["juliet@localhost"]
    finally:
        await slix_close(romeo)
        await slix_close(juliet)


async def test_changes_made_while_storage_is_away_are_written_when_it_is_back(
    servers: ServerFactory,
) -> None:
    """XEP-0045 §10.2: a persistent room keeps its affiliations across restarts.  The
    database goes away (closed here) while Romeo makes Juliet an admin and bans Tybalt;
    the room answers at once, as always, and its storage writes are tried again, in
    order, until the database is back, instead of being dropped (a ban that would have
    lifted itself at the next restart)."""
    server = await servers.start()
    romeo = await connect(server, "romeo")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_persistentroom": "1"})
    muc = muc_of(server)
    assert muc._writes is not None
    await asyncio.wait_for(muc._writes.join(), 10)
    await server.storage.close()
    await admin_set(romeo, ROOM, "<item affiliation='admin' jid='juliet@localhost'/>")
    await admin_set(romeo, ROOM, "<item affiliation='outcast' jid='tybalt@localhost'/>")
    await asyncio.sleep(0.7)  # a first attempt or two failed
    await server.storage.open()
    await asyncio.wait_for(muc._writes.join(), 10)
    await romeo.close()
    await server.stop()
    server = await servers.start()
    restored = next(r for j, r in muc_of(server).rooms.items() if str(j) == ROOM)
    assert restored.users_with("admin") == ["juliet@localhost"]
    assert restored.users_with("outcast") == ["tybalt@localhost"]


async def test_a_removed_accounts_affiliations_are_not_inherited(servers: ServerFactory) -> None:
    """Juliet is an admin of Romeo's persistent room when her account is removed: the
    room forgets her affiliation with the account, in memory as in storage, so whoever
    registers 'juliet' next enters as nobody in particular, before a restart as after.
    A ban is the room's decision about the JID (§9.1) and stays: Tybalt cannot shed it
    by removing his account and registering the name again.

    The room's storage writes lag behind here (a busy database): the grants reach
    storage only after the accounts are gone, and must not bring Juliet's back."""
    server = await servers.start()
    romeo = await connect(server, "romeo")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_persistentroom": "1"})
    busy = asyncio.Event()
    muc_of(server)._write(busy.wait)
    await admin_set(romeo, ROOM, "<item affiliation='admin' jid='juliet@localhost'/>")
    await admin_set(romeo, ROOM, "<item affiliation='outcast' jid='tybalt@localhost'/>")
    assert await server.remove_account(BareJID("juliet@localhost"), "gone") is True
    assert await server.remove_account(BareJID("tybalt@localhost"), "gone") is True
    busy.set()
    assert await admin_list(romeo, ROOM, "affiliation='admin'") == []
    await create_account(server.storage, BareJID("juliet@localhost"), PASSWORD)
    await create_account(server.storage, BareJID("tybalt@localhost"), PASSWORD)
    newcomer = await connect(server, "juliet")
    joined = await newcomer.join(ROOM, "juliet")
    assert (item(joined.self_presence)["affiliation"], item(joined.self_presence)["role"]) == (
        "none",
        "participant",
    )
    tybalt = await connect(server, "tybalt")
    assert await tybalt.join_error(ROOM, "tybalt") == "forbidden"  # §7.2.7
    await tybalt.close()
    await newcomer.close()
    await romeo.close()
    await server.stop()
    server = await servers.start()
    restored = next(r for j, r in muc_of(server).rooms.items() if str(j) == ROOM)
    assert restored.users_with("admin") == []
    assert restored.users_with("outcast") == ["tybalt@localhost"]
