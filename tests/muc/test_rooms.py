"""XEP-0045 rooms end to end: discovery (§6), creation (§10.1), entering and leaving
(§7.2, §7.14), messages (§7.4, §7.5), nick changes (§7.6), history (§7.2.13–14), the
subject (§7.2.15, §8.1), configuration (§10.2) and destruction (§10.9).  Each test is the
spec's conversation between real clients and the server."""

from __future__ import annotations

from typing import Any

from tests.muc.conftest import (
    MUC,
    admin_set,
    codes,
    configure,
    create_instant,
    create_room,
    error_condition,
    item,
    muc_x,
)
from xmppx import ns
from xmppx.core import Element
from xmppx.server import XMPPServer

ROOM = f"coven@{MUC}"
DATA = "jabber:x:data"


def fields_of(x: Element) -> dict[str, list[str]]:
    return {
        f.get("var") or "": [v.text for v in f.findall(ns.clark(DATA, "value"))]
        for f in x.findall(ns.clark(DATA, "field"))
    }


async def test_service_discovery(peers: Any) -> None:
    """§6.1: the server lists the service; the service is conference/text with muc."""
    (romeo,) = await peers("romeo")
    items = await romeo.iq(f"<iq type='get' to='localhost'><query xmlns='{ns.DISCO_ITEMS}'/></iq>")
    jids = [i.get("jid") for i in items[0]]
    assert MUC in jids
    info = await romeo.iq(f"<iq type='get' to='{MUC}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
    ident = info[0].find(ns.clark(ns.DISCO_INFO, "identity"))
    assert ident is not None and (ident.get("category"), ident.get("type")) == (
        "conference",
        "text",
    )
    features = {f.get("var") for f in info[0].findall(ns.clark(ns.DISCO_INFO, "feature"))}
    assert ns.MUC in features


async def test_instant_room_locked_until_configured(peers: Any) -> None:
    """§10.1.1–§10.1.2: the creator is owner/moderator with 110+201; the room is locked
    (others get item-not-found, §7.2.10) until the owner accepts the default form."""
    romeo, juliet = await peers("romeo", "juliet")
    joined = await romeo.join(ROOM, "firstwitch")
    assert joined.others == []
    assert {"110", "201"} <= codes(joined.self_presence)
    assert item(joined.self_presence)["affiliation"] == "owner"
    assert item(joined.self_presence)["role"] == "moderator"
    assert joined.subject.findtext(ns.clark(ns.CLIENT, "subject")) == ""
    assert await juliet.join_error(ROOM, "thirdwitch") == "item-not-found"
    # the owner submits an empty form: an instant room
    await romeo.iq(
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'>"
        f"<x xmlns='{DATA}' type='submit'/></query></iq>"
    )
    joined = await juliet.join(ROOM, "thirdwitch")
    assert [p.get("from") for p in joined.others] == [f"{ROOM}/firstwitch"]
    assert item(joined.others[0])["affiliation"] == "owner"
    assert "jid" not in item(joined.others[0]), "semi-anonymous: no real JIDs to participants"
    assert codes(joined.self_presence) == {"110"}
    assert item(joined.self_presence) == {
        "affiliation": "none",
        "role": "participant",
        "jid": juliet.jid,
    }
    # the owner (a moderator) sees the newcomer's real JID (§7.2.4)
    seen = await romeo.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert item(seen)["jid"] == juliet.jid and "110" not in codes(seen)


async def test_reserved_room_config_form_round_trip(peers: Any) -> None:
    """§10.1.3: fetch the form, submit it, fetch it again with the values set; the
    room's disco#info (§6.3) and the service's disco#items (§6.2) show the result."""
    romeo, juliet = await peers("romeo", "juliet")
    await romeo.join(ROOM, "firstwitch")
    form = await romeo.iq(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'/></iq>")
    x = form[0].find(ns.clark(DATA, "x"))
    assert x is not None and x.get("type") == "form"
    fields = fields_of(x)
    assert fields["FORM_TYPE"] == ["http://jabber.org/protocol/muc#roomconfig"]
    for var in (
        "muc#roomconfig_roomname",
        "muc#roomconfig_roomdesc",
        "muc#roomconfig_persistentroom",
        "muc#roomconfig_publicroom",
        "muc#roomconfig_membersonly",
        "muc#roomconfig_moderatedroom",
        "muc#roomconfig_passwordprotectedroom",
        "muc#roomconfig_roomsecret",
        "muc#roomconfig_maxusers",
        "muc#roomconfig_whois",
        "muc#maxhistoryfetch",
        "muc#roomconfig_changesubject",
        "muc#roomconfig_allowinvites",
        "muc#roomconfig_roomowners",
    ):
        assert var in fields, var
    assert fields["muc#roomconfig_roomowners"] == ["romeo@localhost"]
    await configure(
        romeo,
        ROOM,
        {
            "muc#roomconfig_roomname": "A Dark Cave",
            "muc#roomconfig_roomdesc": "The place for all good witches!",
            "muc#roomconfig_whois": "anyone",
            "muc#roomconfig_maxusers": "20",
            "muc#maxhistoryfetch": "10",
        },
    )
    fields = fields_of(
        (await romeo.iq(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'/></iq>"))[0][0]
    )
    assert fields["muc#roomconfig_roomname"] == ["A Dark Cave"]
    assert fields["muc#roomconfig_whois"] == ["anyone"]
    assert fields["muc#roomconfig_maxusers"] == ["20"]
    assert fields["muc#maxhistoryfetch"] == ["10"]
    info = await juliet.iq(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
    ident = info[0].find(ns.clark(ns.DISCO_INFO, "identity"))
    assert ident is not None and ident.get("name") == "A Dark Cave"
    features = {f.get("var") for f in info[0].findall(ns.clark(ns.DISCO_INFO, "feature"))}
    assert {
        ns.MUC,
        "muc_public",
        "muc_temporary",
        "muc_open",
        "muc_unmoderated",
        "muc_nonanonymous",
        "muc_unsecured",
    } <= features
    roominfo = info[0].find(ns.clark(DATA, "x"))
    assert roominfo is not None
    info_fields = fields_of(roominfo)
    assert info_fields["FORM_TYPE"] == ["http://jabber.org/protocol/muc#roominfo"]
    assert info_fields["muc#roominfo_description"] == ["The place for all good witches!"]
    assert info_fields["muc#roominfo_occupants"] == ["1"]
    items = await juliet.iq(f"<iq type='get' to='{MUC}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>")
    assert [(i.get("jid"), i.get("name")) for i in items[0]] == [(ROOM, "A Dark Cave")]
    # non-anonymous: 100 on entering, and everyone sees real JIDs (§7.2.3)
    joined = await juliet.join(ROOM, "thirdwitch")
    assert {"100", "110"} <= codes(joined.self_presence)
    assert item(joined.others[0])["jid"] == romeo.jid


async def test_non_owner_may_not_configure_and_bad_values_are_refused(peers: Any) -> None:
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "thirdwitch")
    assert (
        await juliet.iq_error(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'/></iq>")
        == "forbidden"
    )
    bad = (
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'><x xmlns='{DATA}' "
        "type='submit'><field var='muc#roomconfig_passwordprotectedroom'><value>1</value>"
        "</field></x></query></iq>"
    )
    assert await romeo.iq_error(bad) == "not-acceptable", "§10.1.3: no password given"


async def test_join_leave_and_presence(peers: Any) -> None:
    """§7.2.2 presence broadcast, §7.7 availability change, §7.14 exit (role none, 110)."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    joined = await mercutio.join(ROOM, "thirdwitch")
    assert {p.get("from") for p in joined.others} == {f"{ROOM}/firstwitch", f"{ROOM}/secondwitch"}
    for peer in (romeo, juliet):
        await peer.expect_from(f"{ROOM}/thirdwitch", "presence")
    mercutio.send(
        f"<presence to='{ROOM}/thirdwitch'><show>xa</show><status>away</status></presence>"
    )
    update = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert update.findtext(ns.clark(ns.CLIENT, "show")) == "xa"
    assert item(update)["role"] == "participant"
    own = await mercutio.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert "110" in codes(own)
    mercutio.send(
        f"<presence to='{ROOM}/thirdwitch' type='unavailable'><status>gone</status></presence>"
    )
    gone = await mercutio.expect_from(f"{ROOM}/thirdwitch", "presence", type="unavailable")
    assert codes(gone) == {"110"} and item(gone)["role"] == "none"
    seen = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence", type="unavailable")
    assert item(seen)["role"] == "none" and "110" not in codes(seen)
    assert seen.findtext(ns.clark(ns.CLIENT, "status")) == "gone"


async def test_temporary_room_disappears_with_its_last_occupant(
    server: XMPPServer, peers: Any
) -> None:
    (romeo,) = await peers("romeo")
    await create_instant(romeo, ROOM, "firstwitch")
    await romeo.leave(ROOM, "firstwitch")
    items = await romeo.iq(f"<iq type='get' to='{MUC}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>")
    assert len(items[0]) == 0
    assert (
        await romeo.iq_error(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
        == "item-not-found"
    )
    joined = await romeo.join(ROOM, "firstwitch")
    assert "201" in codes(joined.self_presence), "entering again creates a new room"


async def test_groupchat_fan_out_and_history(peers: Any) -> None:
    """§7.4: reflected to every occupant from the sender's occupant JID with its id;
    §7.2.13: a newcomer gets the history with <delay/> from the room, then the subject;
    §7.2.14: maxstanzas and maxchars narrow it."""
    romeo, juliet, mercutio, benvolio = await peers("romeo", "juliet", "mercutio", "benvolio")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    for n in range(3):
        juliet.send(
            f"<message to='{ROOM}' type='groupchat' id='m{n}'><body>line {n}</body></message>"
        )
    for peer in (romeo, juliet):
        for n in range(3):
            msg = await peer.expect_from(f"{ROOM}/secondwitch", "message", id=f"m{n}")
            assert msg.findtext(ns.clark(ns.CLIENT, "body")) == f"line {n}"
            assert msg.get("type") == "groupchat"
    joined = await mercutio.join(ROOM, "thirdwitch")
    bodies = [m.findtext(ns.clark(ns.CLIENT, "body")) for m in joined.history]
    assert bodies == ["line 0", "line 1", "line 2"]
    for m in joined.history:
        assert m.get("from") == f"{ROOM}/secondwitch"
        d = m.find(ns.clark(ns.DELAY, "delay"))
        assert d is not None and d.get("from") == ROOM and d.get("stamp")
    joined = await benvolio.join(ROOM, "fourth", history="<history maxstanzas='2'/>")
    assert [m.findtext(ns.clark(ns.CLIENT, "body")) for m in joined.history] == [
        "line 1",
        "line 2",
    ]
    await benvolio.leave(ROOM, "fourth")
    joined = await benvolio.join(ROOM, "fourth", history="<history maxchars='0'/>")
    assert joined.history == []
    await benvolio.leave(ROOM, "fourth")
    joined = await benvolio.join(
        ROOM, "fourth", history="<history since='1970-01-01T00:00:00Z' seconds='3600'/>"
    )
    assert len(joined.history) == 3


async def test_owners_prior_history_keeps_its_own_delay(peers: Any) -> None:
    """§7.9: a one-to-one chat turned into a room; the owner sends the prior messages
    with their own <delay/>, to which "the service SHOULD NOT add its own delay
    elements" in the history.  A participant's message loses a <delay/> of its own (it
    would pass for the room's, which dates history, §7.2.13), live and in the history,
    where it gets the room's stamp as usual."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    romeo.send(
        f"<message to='{ROOM}' type='groupchat' id='old1'><body>Thrice the brinded cat"
        f" hath mew'd.</body><delay xmlns='{ns.DELAY}' from='romeo@localhost/res'"
        " stamp='2004-09-29T01:54:37Z'/></message>"
    )
    juliet.send(
        f"<message to='{ROOM}' type='groupchat' id='new1'><body>Thrice and once"
        f" the hedge-pig whined.</body><delay xmlns='{ns.DELAY}' from='juliet@localhost'"
        " stamp='2004-09-29T01:55:21Z'/></message>"
    )
    await romeo.expect_from(f"{ROOM}/firstwitch", "message", id="old1")
    live = await romeo.expect_from(f"{ROOM}/secondwitch", "message", id="new1")
    assert live.find(ns.clark(ns.DELAY, "delay")) is None
    joined = await mercutio.join(ROOM, "thirdwitch")
    delays = {
        m.get("id"): [d.get("from") for d in m.findall(ns.clark(ns.DELAY, "delay"))]
        for m in joined.history
    }
    assert delays == {"old1": ["romeo@localhost/res"], "new1": [ROOM]}


async def test_an_occupant_cannot_forge_what_only_the_room_says(peers: Any) -> None:
    """A participant's groupchat message loses a XEP-0091 ``jabber:x:delay`` as it loses
    a ``<delay/>`` (§7.2.13: it would pass for the room's date), and any muc#user
    ``<x/>``, whose status codes would pass for the room's (§10.2.1: 104, 170, ...)."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    juliet.send(
        f"<message to='{ROOM}' type='groupchat' id='f1'><body>the room is logged</body>"
        "<x xmlns='jabber:x:delay' stamp='20040929T01:55:21'/>"
        f"<x xmlns='{ns.MUC_USER}'><status code='170'/></x></message>"
    )
    live = await romeo.expect_from(f"{ROOM}/secondwitch", "message", id="f1")
    assert live.findtext(ns.clark(ns.CLIENT, "body")) == "the room is logged"
    assert live.find(ns.clark("jabber:x:delay", "x")) is None
    assert muc_x(live) is None


async def test_message_refusals(peers: Any) -> None:
    """§7.4: a non-occupant gets not-acceptable; §17.2: a non-groupchat message to the
    room is a bad-request; a message to a room that does not exist item-not-found."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.say(ROOM, "let me in")
    err = await juliet.expect_from(ROOM, "message", type="error")
    assert error_condition(err) == "not-acceptable"
    await romeo.nothing_from(ROOM + "/")
    juliet.send(f"<message to='nowhere@{MUC}' type='groupchat'><body>x</body></message>")
    err = await juliet.expect_from(f"nowhere@{MUC}", "message", type="error")
    assert error_condition(err) == "item-not-found"
    romeo.send(f"<message to='{ROOM}'><body>no type</body></message>")
    err = await romeo.expect_from(ROOM, "message", type="error")
    assert error_condition(err) == "bad-request"


async def test_nick_conflict_and_same_user_two_resources(server: XMPPServer, peers: Any) -> None:
    """§7.2.8: another user's nick is a conflict; the same bare JID from another
    resource joins the same occupant and both resources get the room's traffic."""
    from tests.muc.conftest import connect

    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    assert await juliet.join_error(ROOM, "firstwitch") == "conflict"
    second = await connect(server, "romeo", "laptop")
    try:
        joined = await second.join(ROOM, "firstwitch")
        assert "110" in codes(joined.self_presence)
        await juliet.join(ROOM, "thirdwitch")
        await juliet.say(ROOM, "hello both")
        for peer in (romeo, second):
            await peer.expect_from(f"{ROOM}/thirdwitch", "message")
    finally:
        await second.close()


async def test_one_of_two_sessions_leaving_shows_the_other(server: XMPPServer, peers: Any) -> None:
    """A nick joined from two resources shows its latest session's presence, and to a
    moderator that session's JID (§7.2.4); when that session leaves, the others see the
    nick again as the remaining session is."""
    from tests.muc.conftest import connect

    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "thirdwitch", extra="<show>away</show>")
    second = await connect(server, "juliet", "laptop")
    try:
        await second.join(ROOM, "thirdwitch")
        shown = await romeo.expect(
            lambda s: s.get("from") == f"{ROOM}/thirdwitch" and item(s).get("jid") == second.jid,
            "the laptop's presence",
        )
        assert shown.findtext(ns.clark(ns.CLIENT, "show")) is None
        for peer in (romeo, juliet):
            await peer.barrier()
            peer.clear()
        await second.leave(ROOM, "thirdwitch")
        again = await romeo.expect_from(f"{ROOM}/thirdwitch", "presence")
        assert again.get("type") is None
        assert item(again)["jid"] == juliet.jid
        assert again.findtext(ns.clark(ns.CLIENT, "show")) == "away"
        await juliet.nothing_from(f"{ROOM}/thirdwitch")
    finally:
        await second.close()


async def test_nickname_rules(peers: Any) -> None:
    """§7.2.1 no nick: jid-malformed; §17.1 invisible nick refused; §7.6 change (303)."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    juliet.send(f"<presence to='{ROOM}'><x xmlns='{ns.MUC}'/></presence>")
    err = await juliet.expect_from(ROOM, "presence", type="error")
    assert error_condition(err) == "jid-malformed"
    assert await juliet.join_error(ROOM, "\u200b") == "jid-malformed"
    await juliet.join(ROOM, "thirdwitch")
    await romeo.expect_from(f"{ROOM}/thirdwitch", "presence")
    juliet.send(f"<presence to='{ROOM}/oldhag'/>")
    for peer, own in ((romeo, False), (juliet, True)):
        old = await peer.expect_from(f"{ROOM}/thirdwitch", "presence", type="unavailable")
        assert "303" in codes(old) and item(old)["nick"] == "oldhag"
        assert ("110" in codes(old)) == own
        new = await peer.expect_from(f"{ROOM}/oldhag", "presence")
        assert ("110" in codes(new)) == own
    juliet.send(f"<presence to='{ROOM}/firstwitch'/>")
    err = await juliet.expect_from(f"{ROOM}/firstwitch", "presence", type="error")
    assert error_condition(err) == "conflict"


async def test_presence_without_muc_extension_from_non_occupant(peers: Any) -> None:
    """§7.2.18: not a join — an explicit kick with 110, 307 and 333."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    juliet.send(f"<presence to='{ROOM}/thirdwitch'/>")
    kick = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence", type="unavailable")
    assert codes(kick) == {"110", "307", "333"}
    await romeo.nothing_from(f"{ROOM}/thirdwitch")


async def test_subject(peers: Any) -> None:
    """§8.1: moderators change the subject; a participant gets forbidden unless
    changesubject is on; newcomers get it after history, with <delay/> (§7.2.15)."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    juliet.send(f"<message to='{ROOM}' type='groupchat'><subject>Mine</subject></message>")
    err = await juliet.expect_from(ROOM, "message", type="error")
    assert error_condition(err) == "forbidden"
    romeo.send(
        f"<message to='{ROOM}' type='groupchat'><subject>Fire Burn and Cauldron Bubble!"
        "</subject></message>"
    )
    for peer in (romeo, juliet):
        s = await peer.expect_from(f"{ROOM}/firstwitch", "message")
        assert s.findtext(ns.clark(ns.CLIENT, "subject")) == "Fire Burn and Cauldron Bubble!"
    joined = await mercutio.join(ROOM, "thirdwitch")
    assert joined.subject.get("from") == f"{ROOM}/firstwitch"
    assert (
        joined.subject.findtext(ns.clark(ns.CLIENT, "subject")) == "Fire Burn and Cauldron Bubble!"
    )
    d = joined.subject.find(ns.clark(ns.DELAY, "delay"))
    assert d is not None and d.get("from") == ROOM
    await configure(romeo, ROOM, {"muc#roomconfig_changesubject": "1"})
    juliet.send(f"<message to='{ROOM}' type='groupchat'><subject>Ours</subject></message>")
    s = await mercutio.expect_from(f"{ROOM}/secondwitch", "message")
    assert s.findtext(ns.clark(ns.CLIENT, "subject")) == "Ours"


async def test_private_messages(peers: Any) -> None:
    """§7.5: delivered from the sender's occupant JID with <x xmlns='…muc#user'/>;
    groupchat type is a bad-request, an unknown nick item-not-found, a non-occupant
    not-acceptable."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    juliet.send(
        f"<message to='{ROOM}/firstwitch' type='chat' id='pm1'><body>I'll give thee a wind."
        "</body></message>"
    )
    pm = await romeo.expect_from(f"{ROOM}/secondwitch", "message", id="pm1")
    assert pm.get("to") == romeo.jid and pm.get("type") == "chat"
    assert muc_x(pm) is not None
    # what a client writes into its muc#user <x/> would pass for the room's: an
    # invitation in another's name, status codes; the mark stays, empty
    juliet.send(
        f"<message to='{ROOM}/firstwitch' type='chat' id='pm2'><body>come</body>"
        f"<x xmlns='{ns.MUC_USER}'><invite from='hecate@localhost'/><status code='100'/></x>"
        f"<x xmlns='{ns.MUC_USER}'/></message>"
    )
    pm = await romeo.expect_from(f"{ROOM}/secondwitch", "message", id="pm2")
    marks = pm.findall(ns.clark(ns.MUC_USER, "x"))
    assert len(marks) == 1 and len(marks[0]) == 0
    juliet.send(f"<message to='{ROOM}/firstwitch' type='groupchat'><body>x</body></message>")
    err = await juliet.expect_from(f"{ROOM}/firstwitch", "message", type="error")
    assert error_condition(err) == "bad-request"
    juliet.send(f"<message to='{ROOM}/nobody' type='chat'><body>x</body></message>")
    err = await juliet.expect_from(f"{ROOM}/nobody", "message", type="error")
    assert error_condition(err) == "item-not-found"
    mercutio.send(f"<message to='{ROOM}/firstwitch' type='chat'><body>x</body></message>")
    err = await mercutio.expect_from(f"{ROOM}/firstwitch", "message", type="error")
    assert error_condition(err) == "not-acceptable"


async def test_an_error_about_a_private_message_goes_back_to_its_sender(peers: Any) -> None:
    """§7.5 and RFC 6120 §8.3.1: the recipient's client refuses a private message with
    an error to the sender's occupant JID; the room passes it on, from the recipient's
    occupant JID, and the recipient stays in the room."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    juliet.send(f"<message to='{ROOM}/firstwitch' type='chat' id='pm2'><body>hi</body></message>")
    await romeo.expect_from(f"{ROOM}/secondwitch", "message", id="pm2")
    romeo.send(
        f"<message to='{ROOM}/secondwitch' type='error' id='pm2'><body>hi</body>"
        "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></message>"
    )
    err = await juliet.expect_from(f"{ROOM}/firstwitch", "message", type="error")
    assert err.get("id") == "pm2"
    assert error_condition(err) == "not-acceptable"
    # still an occupant: a groupchat message of hers reaches him
    juliet.send(f"<message to='{ROOM}' type='groupchat' id='g1'><body>still here</body></message>")
    await romeo.expect_from(f"{ROOM}/secondwitch", "message", id="g1")


async def test_iq_between_occupants_is_forwarded(peers: Any) -> None:
    """§17.4 rule 3: an iq to an occupant JID reaches the occupant from the sender's
    occupant JID, and the answer comes back from the target's occupant JID."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "thirdwitch")
    juliet.send(
        f"<iq type='get' id='v1' to='{ROOM}/firstwitch'><query xmlns='jabber:iq:version'/></iq>"
    )
    req = await romeo.expect_from(f"{ROOM}/thirdwitch", "iq", type="get")
    assert req.get("id") != "v1"
    romeo.send(
        f"<iq type='result' id='{req.get('id')}' to='{ROOM}/thirdwitch'>"
        "<query xmlns='jabber:iq:version'><name>x</name></query></iq>"
    )
    answer = await juliet.expect_from(f"{ROOM}/firstwitch", "iq", type="result")
    assert answer.get("id") == "v1" and answer.get("to") == juliet.jid
    # XEP-0410: the room answers self-pings itself (§3.3, advertised), and a session
    # that is not in the room gets not-acceptable ("not joined"); a non-occupant's
    # other queries to an occupant stay bad-request (XEP-0045 §6.5)
    info = await juliet.iq(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
    features = {f.get("var") for f in info[0].findall(ns.clark(ns.DISCO_INFO, "feature"))}
    assert "http://jabber.org/protocol/muc#self-ping-optimization" in features
    ping = f"<iq type='get' to='{ROOM}/thirdwitch'><ping xmlns='urn:xmpp:ping'/></iq>"
    await juliet.iq(ping)
    await juliet.leave(ROOM, "thirdwitch")
    assert await juliet.iq_error(ping) == "not-acceptable"
    version = f"<iq type='get' to='{ROOM}/firstwitch'><query xmlns='jabber:iq:version'/></iq>"
    assert await juliet.iq_error(version) == "bad-request"
    # a room that no longer exists (a temporary one after a restart) answers a self-ping
    # with not-acceptable too: item-not-found would mean "joined, under another nick"
    gone = f"<iq type='get' to='gone@{MUC}/thirdwitch'><ping xmlns='urn:xmpp:ping'/></iq>"
    assert await juliet.iq_error(gone) == "not-acceptable"
    version = f"<iq type='get' to='gone@{MUC}/thirdwitch'><query xmlns='jabber:iq:version'/></iq>"
    assert await juliet.iq_error(version) == "item-not-found"


async def test_a_vcard_request_to_an_occupant_is_answered_from_the_account(
    peers: Any,
) -> None:
    """XEP-0054 §3.1 through XEP-0045 §17.4: a client that sees an occupant's avatar
    announced (XEP-0153) asks the occupant JID for the vCard; the room answers from the
    occupant's account, as a server answers for a bare JID, and the occupant's client
    is not asked.  The answer comes from the occupant JID, so neither side learns a
    real JID.  No vCard stored: service-unavailable, as for an account without one.
    Nobody changes an occupant's vCard through the room (§3.2)."""
    romeo, juliet = await peers("romeo", "juliet")
    await romeo.iq(f"<iq type='set'><vCard xmlns='{ns.VCARD}'><FN>Romeo Montague</FN></vCard></iq>")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "thirdwitch")
    romeo.clear()
    card = await juliet.iq(
        f"<iq type='get' id='vc1' to='{ROOM}/firstwitch'><vCard xmlns='{ns.VCARD}'/></iq>"
    )
    assert (card.get("from"), card.get("id")) == (f"{ROOM}/firstwitch", "vc1")
    assert card[0].findtext(ns.clark(ns.VCARD, "FN")) == "Romeo Montague"
    await romeo.nothing_from(f"{ROOM}/thirdwitch", "iq")
    no_card = f"<iq type='get' to='{ROOM}/thirdwitch'><vCard xmlns='{ns.VCARD}'/></iq>"
    assert await romeo.iq_error(no_card) == "service-unavailable"
    own = await juliet.iq(no_card)  # one's own, none stored: an empty one
    assert own[0].tag == ns.clark(ns.VCARD, "vCard") and len(own[0]) == 0
    change = (
        f"<iq type='set' to='{ROOM}/firstwitch'><vCard xmlns='{ns.VCARD}'><FN>Tybalt</FN>"
        "</vCard></iq>"
    )
    assert await juliet.iq_error(change) == "forbidden"
    await romeo.nothing_from(f"{ROOM}/thirdwitch", "iq")
    mine = await romeo.iq(f"<iq type='get'><vCard xmlns='{ns.VCARD}'/></iq>")
    assert mine[0].findtext(ns.clark(ns.VCARD, "FN")) == "Romeo Montague"


async def test_destroy(peers: Any) -> None:
    """§10.9: each occupant gets one unavailable presence with <destroy/> (alternate
    venue, reason); the room is gone; a non-owner gets forbidden."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "thirdwitch")
    destroy = (
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'>"
        f"<destroy jid='heath@{MUC}'><reason>Macbeth doth come.</reason></destroy></query></iq>"
    )
    assert await juliet.iq_error(destroy) == "forbidden"
    romeo.clear()
    juliet.clear()
    await romeo.iq(destroy)
    for peer, nick in ((romeo, "firstwitch"), (juliet, "thirdwitch")):
        gone = await peer.expect_from(f"{ROOM}/{nick}", "presence", type="unavailable")
        x = muc_x(gone)
        assert x is not None
        d = x.find(ns.clark(ns.MUC_USER, "destroy"))
        assert d is not None and d.get("jid") == f"heath@{MUC}"
        assert d.findtext(ns.clark(ns.MUC_USER, "reason")) == "Macbeth doth come."
        assert item(gone)["role"] == "none"
    await juliet.nothing_from(f"{ROOM}/firstwitch")
    assert (
        await juliet.iq_error(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
        == "item-not-found"
    )


async def test_cancelled_initial_configuration_destroys_the_room(peers: Any) -> None:
    """§10.1.3: "If the room owner cancels the initial configuration, the service MUST
    destroy the room"."""
    (romeo,) = await peers("romeo")
    await romeo.join(ROOM, "firstwitch")
    await romeo.iq(
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_OWNER}'>"
        f"<x xmlns='{DATA}' type='cancel'/></query></iq>"
    )
    gone = await romeo.expect_from(f"{ROOM}/firstwitch", "presence", type="unavailable")
    x = muc_x(gone)
    assert x is not None and x.find(ns.clark(ns.MUC_USER, "destroy")) is not None
    joined = await romeo.join(ROOM, "firstwitch")
    assert "201" in codes(joined.self_presence)


async def test_owner_leaving_before_configuring_destroys_the_room(
    server: XMPPServer, peers: Any
) -> None:
    """§10.1.3: "If the room owner becomes unavailable for any reason before submitting
    the form (e.g., a lost connection) ... the service MUST then destroy the room,
    sending a presence stanza of type unavailable from the room to the owner including a
    <destroy/> element"; by leaving, or by the session ending."""
    (romeo,) = await peers("romeo")
    await romeo.join(ROOM, "firstwitch")
    romeo.send(f"<presence to='{ROOM}/firstwitch' type='unavailable'/>")
    gone = await romeo.expect_from(f"{ROOM}/firstwitch", "presence", type="unavailable")
    x = muc_x(gone)
    assert x is not None and x.find(ns.clark(ns.MUC_USER, "destroy")) is not None
    assert (
        await romeo.iq_error(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
        == "item-not-found"
    )
    await romeo.join(ROOM, "firstwitch")
    await romeo.close()
    (juliet,) = await peers("juliet")
    joined = await juliet.join(ROOM, "secondwitch")
    assert "201" in codes(joined.self_presence), "the locked room went with its owner"


async def test_occupant_removed_when_its_session_ends(server: XMPPServer, peers: Any) -> None:
    """A user's stream ending is an implicit exit (§7.14, RFC 6121 §4.6)."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "thirdwitch")
    await romeo.expect_from(f"{ROOM}/thirdwitch", "presence")
    await juliet.close()
    gone = await romeo.expect_from(f"{ROOM}/thirdwitch", "presence", type="unavailable")
    assert item(gone)["role"] == "none"
    joined = await romeo.join(ROOM, "firstwitch")  # resync (§7.2.1): juliet is not listed
    assert joined.others == []


async def test_delivery_errors_remove_ghost_occupants(peers: Any) -> None:
    """§18.1.2: a delivery-related error from an occupant's session about what the room
    sent it removes the occupant, and the others see it leave with status 333; another
    error condition changes nothing."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    await mercutio.join(ROOM, "thirdwitch")
    stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
    juliet.send(
        f"<message to='{ROOM}' type='error' id='g1'><error type='cancel'>"
        f"<feature-not-implemented xmlns='{stanzas}'/></error></message>"
    )
    resync = await romeo.join(ROOM, "firstwitch")  # §7.2.1: who is in
    assert {o.get("from") for o in resync.others} == {f"{ROOM}/secondwitch", f"{ROOM}/thirdwitch"}
    juliet.send(
        f"<message to='{ROOM}/firstwitch' type='error' id='g1'><error type='cancel'>"
        f"<recipient-unavailable xmlns='{stanzas}'/></error></message>"
    )
    gone = await romeo.expect_from(f"{ROOM}/secondwitch", "presence", type="unavailable")
    assert "333" in codes(gone) and item(gone)["role"] == "none"
    mercutio.send(
        f"<presence to='{ROOM}/thirdwitch' type='error'><error type='cancel'>"
        f"<gone xmlns='{stanzas}'/></error></presence>"
    )
    gone = await romeo.expect_from(f"{ROOM}/thirdwitch", "presence", type="unavailable")
    assert "333" in codes(gone)
    joined = await romeo.join(ROOM, "firstwitch")  # resync (§7.2.1): nobody else is in
    assert joined.others == []


async def test_password_protected_room(peers: Any) -> None:
    """§7.2.5: no or a wrong password is not-authorized; the right one enters."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_room(
        romeo,
        ROOM,
        "firstwitch",
        {
            "muc#roomconfig_passwordprotectedroom": "1",
            "muc#roomconfig_roomsecret": "cauldronburn",
        },
    )
    assert await juliet.join_error(ROOM, "thirdwitch") == "not-authorized"
    assert await juliet.join_error(ROOM, "thirdwitch", password="wrong") == "not-authorized"
    await juliet.join(ROOM, "thirdwitch", password="cauldronburn")


async def test_admin_list_edits_change_presence(peers: Any) -> None:
    """§10.6: an owner grants admin — the occupant becomes a moderator, seen by all."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "secondwitch")
    await romeo.expect_from(f"{ROOM}/secondwitch", "presence")
    await admin_set(romeo, ROOM, f"<item affiliation='admin' jid='{juliet.bare}'/>")
    update = await romeo.expect_from(f"{ROOM}/secondwitch", "presence")
    assert item(update)["affiliation"] == "admin" and item(update)["role"] == "moderator"


async def test_service_modified_nick_is_flagged_210(peers: Any) -> None:
    """§7.2.2: when the service changes the requested nick (here Resourceprep's NFKC
    turns U+FB01 into "fi") the self-presence carries 210."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    joined = await juliet.join(ROOM, "\ufb01fth")
    assert joined.self_presence.get("from") == f"{ROOM}/fifth"
    assert codes(joined.self_presence) == {"110", "210"}


async def test_configuration_change_notifications(peers: Any) -> None:
    """§10.2.1: 172 when the room becomes non-anonymous, 173 back to semi-anonymous,
    104 for any other change; a hidden room (§6.2) is not listed."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    await juliet.join(ROOM, "thirdwitch")

    async def notice() -> set[str]:
        m = await juliet.expect(
            lambda s: s.get("from") == ROOM and s.name == "message" and muc_x(s) is not None,
            "configuration notice",
        )
        return codes(m)

    await configure(romeo, ROOM, {"muc#roomconfig_whois": "anyone"})
    assert await notice() == {"172"}
    await configure(romeo, ROOM, {"muc#roomconfig_whois": "moderators"})
    assert await notice() == {"173"}
    await configure(romeo, ROOM, {"muc#roomconfig_publicroom": "0"})
    assert await notice() == {"104"}
    items = await juliet.iq(f"<iq type='get' to='{MUC}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>")
    assert len(items[0]) == 0
    info = await juliet.iq(f"<iq type='get' to='{ROOM}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
    features = {f.get("var") for f in info[0].findall(ns.clark(ns.DISCO_INFO, "feature"))}
    assert "muc_hidden" in features and "muc_public" not in features


async def test_failed_creation_leaves_no_room(server: XMPPServer, peers: Any) -> None:
    from tests.muc.conftest import muc_of

    (romeo,) = await peers("romeo")
    assert await romeo.join_error(ROOM, "\u200b") == "jid-malformed"
    assert muc_of(server).rooms == {}
