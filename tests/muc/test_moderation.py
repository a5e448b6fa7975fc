"""XEP-0045 moderator, admin and owner use cases end to end: voice (§8.3–§8.6, §7.13),
kicks (§8.2), bans and the ban list (§9.1–§9.2), membership and members-only rooms
(§7.2.6, §9.3–§9.5, §10.2), the admin and owner lists (§9.8, §10.5, §10.8) and
invitations (§7.8)."""

from __future__ import annotations

from typing import Any

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
    item,
    muc_x,
)
from xmppx import ns

ROOM = f"coven@{MUC}"
DATA = "jabber:x:data"


async def test_moderated_room_voice(peers: Any) -> None:
    """§5.1.2: in a moderated room an unaffiliated user enters as a visitor; §7.4 a
    visitor's groupchat is forbidden; §8.3 a moderator grants voice; §8.4 revokes it;
    §8.5 the voice list."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_moderatedroom": "1"})
    joined = await juliet.join(ROOM, "thirdwitch")
    assert item(joined.self_presence)["role"] == "visitor"
    await juliet.say(ROOM, "may I?")
    err = await juliet.expect_from(ROOM, "message", type="error")
    assert error_condition(err) == "forbidden"
    await romeo.nothing_from(f"{ROOM}/thirdwitch", "message")
    romeo.clear()
    await admin_set(
        romeo,
        ROOM,
        "<item nick='thirdwitch' role='participant'><reason>A worthy witch!</reason></item>",
    )
    update = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert item(update)["role"] == "participant"
    x = muc_x(update)
    assert x is not None
    it = x.find(ns.clark(ns.MUC_USER, "item"))
    assert it is not None
    assert it.findtext(ns.clark(ns.MUC_USER, "reason")) == "A worthy witch!"
    voice = await admin_list(romeo, ROOM, "role='participant'")
    assert [(i["nick"], i["jid"]) for i in voice] == [("thirdwitch", juliet.jid)]
    assert (
        await juliet.iq_error(
            f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            "<item role='participant'/></query></iq>"
        )
        == "forbidden"
    )
    await juliet.say(ROOM, "thank you")
    await romeo.expect_from(f"{ROOM}/thirdwitch", "message")
    await admin_set(romeo, ROOM, "<item nick='thirdwitch' role='visitor'/>")
    update = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert item(update)["role"] == "visitor"
    # §8.4: nobody revokes an owner's voice — not even another moderator
    joined = await mercutio.join(ROOM, "fourth")
    await admin_set(romeo, ROOM, "<item nick='fourth' role='moderator'/>")
    assert (
        await mercutio.iq_error(
            f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            "<item nick='firstwitch' role='visitor'/></query></iq>"
        )
        == "not-allowed"
    )


async def test_unmoderating_a_room_gives_its_visitors_voice(peers: Any) -> None:
    """§4: in an unmoderated room any occupant may speak to all, so a room made
    unmoderated (§10.2) turns its visitors into participants, announced by presence."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_moderatedroom": "1"})
    joined = await juliet.join(ROOM, "thirdwitch")
    assert item(joined.self_presence)["role"] == "visitor"
    await romeo.expect_from(f"{ROOM}/thirdwitch", "presence")  # her entrance
    await configure(romeo, ROOM, {"muc#roomconfig_moderatedroom": "0"})
    update = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert item(update)["role"] == "participant"
    seen = await romeo.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert item(seen)["role"] == "participant"
    await juliet.say(ROOM, "can I talk now?")
    await romeo.expect_from(f"{ROOM}/thirdwitch", "message")


async def test_a_new_affiliation_outweighs_a_remembered_voice_decision(peers: Any) -> None:
    """§5.1: a moderator's revocation of voice is kept for the next visit, until the
    user is given an affiliation: a member enters a moderated room as a participant
    (§5.1.2), as a member already inside becomes one."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_moderatedroom": "1"})
    await juliet.join(ROOM, "thirdwitch")
    await admin_set(romeo, ROOM, "<item nick='thirdwitch' role='participant'/>")
    await admin_set(romeo, ROOM, "<item nick='thirdwitch' role='visitor'/>")
    await juliet.leave(ROOM, "thirdwitch")
    juliet.clear()  # (the two role changes' presence)
    joined = await juliet.join(ROOM, "thirdwitch")
    assert item(joined.self_presence)["role"] == "visitor"  # the revocation holds
    await juliet.leave(ROOM, "thirdwitch")
    juliet.clear()
    await admin_set(romeo, ROOM, f"<item affiliation='member' jid='{juliet.bare}'/>")
    joined = await juliet.join(ROOM, "thirdwitch")
    assert item(joined.self_presence)["role"] == "participant"


async def test_voice_request_and_approval(peers: Any) -> None:
    """§7.13 a visitor requests voice; §8.6 the moderator gets the approval form and
    submits it; the visitor becomes a participant."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_moderatedroom": "1"})
    await juliet.join(ROOM, "thirdwitch")
    juliet.send(
        f"<message to='{ROOM}'><x xmlns='{DATA}' type='submit'>"
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>"
        "<field var='muc#role' type='list-single'><value>participant</value></field></x>"
        "</message>"
    )
    form_msg = await romeo.expect(
        lambda s: s.get("from") == ROOM and s.find(ns.clark(DATA, "x")) is not None,
        "approval form",
    )
    form = form_msg.find(ns.clark(DATA, "x"))
    assert form is not None
    values = {
        f.get("var"): f.findtext(ns.clark(DATA, "value"))
        for f in form.findall(ns.clark(DATA, "field"))
    }
    assert values["muc#roomnick"] == "thirdwitch" and values["muc#jid"] == juliet.jid
    romeo.send(
        f"<message to='{ROOM}'><x xmlns='{DATA}' type='submit'>"
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>"
        "<field var='muc#role'><value>participant</value></field>"
        f"<field var='muc#jid'><value>{juliet.jid}</value></field>"
        "<field var='muc#roomnick'><value>thirdwitch</value></field>"
        "<field var='muc#request_allow'><value>true</value></field></x></message>"
    )
    update = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence")
    assert item(update)["role"] == "participant"
    # §5.1: the role survives leaving and entering again in a moderated room
    await juliet.leave(ROOM, "thirdwitch")
    joined = await juliet.join(ROOM, "thirdwitch")
    assert item(joined.self_presence)["role"] == "participant"


async def test_occupant_jids_the_room_ends_free_their_directed_presence(
    servers: ServerFactory,
) -> None:
    """RFC 6121 §4.6.3 keeps every JID a session sent presence to, within
    ``presence.max_directed``; an occupant JID the room says is gone (unavailable after
    a kick, §8.2, or a nick change, §7.6.3) is no longer kept, so a session kicked or
    renamed more times than the limit still enters and changes nick."""
    server = await servers.start(presence__max_directed=2)
    romeo, juliet = await connect(server, "romeo"), await connect(server, "juliet")
    await create_instant(romeo, ROOM, "fluellen")
    for n in range(3):
        await juliet.join(ROOM, f"pistol{n}")
        await admin_set(romeo, ROOM, f"<item nick='pistol{n}' role='none'/>")
        await juliet.expect_from(f"{ROOM}/pistol{n}", "presence", type="unavailable")
    await juliet.join(ROOM, "nym0")
    for n in range(1, 4):
        juliet.send(f"<presence to='{ROOM}/nym{n}'/>")
        renamed = await juliet.expect_from(f"{ROOM}/nym{n}", "presence")
        assert renamed.get("type") is None, renamed.serialize()
    for peer in (romeo, juliet):
        await peer.close()


async def test_kick(peers: Any) -> None:
    """§8.2: the kicked occupant gets 307 with actor and reason, then the moderator the
    result, then the others 307; kicking someone of higher affiliation is not-allowed."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "fluellen")
    await juliet.join(ROOM, "pistol")
    await mercutio.join(ROOM, "gower")
    await admin_set(
        romeo, ROOM, "<item nick='pistol' role='none'><reason>Avaunt, you cullion!</reason></item>"
    )
    kicked = await juliet.expect_from(f"{ROOM}/pistol", "presence", type="unavailable")
    assert codes(kicked) == {"110", "307"}
    x = muc_x(kicked)
    assert x is not None
    it = x.find(ns.clark(ns.MUC_USER, "item"))
    assert it is not None and it.get("role") == "none"
    actor = it.find(ns.clark(ns.MUC_USER, "actor"))
    assert actor is not None and actor.get("nick") == "fluellen"
    assert it.findtext(ns.clark(ns.MUC_USER, "reason")) == "Avaunt, you cullion!"
    seen = await mercutio.expect_from(f"{ROOM}/pistol", "presence", type="unavailable")
    assert codes(seen) == {"307"}
    # a participant cannot kick; a moderator cannot kick the owner
    assert (
        await mercutio.iq_error(
            f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            "<item nick='fluellen' role='none'/></query></iq>"
        )
        == "forbidden"
    )
    await admin_set(romeo, ROOM, "<item nick='gower' role='moderator'/>")
    assert (
        await mercutio.iq_error(
            f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            "<item nick='fluellen' role='none'/></query></iq>"
        )
        == "not-allowed"
    )
    # the kicked user may come back (§4 "Kick")
    await juliet.join(ROOM, "pistol")


async def test_a_kicked_occupant_gets_nothing_after_its_own_removal(peers: Any) -> None:
    """§8.2 with §7.14: one muc#admin request gives Benvolio voice and kicks Tybalt.
    Tybalt's own unavailable presence (110, 307) is the last he hears from the room:
    the broadcast of Benvolio's new role, deferred by the same request, goes to those
    still in it."""
    romeo, benvolio, tybalt = await peers("romeo", "benvolio", "tybalt")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_moderatedroom": "1"})
    await benvolio.join(ROOM, "ben")
    await tybalt.join(ROOM, "tyb")
    tybalt.clear()
    await admin_set(
        romeo,
        ROOM,
        "<item nick='ben' role='participant'/><item nick='tyb' role='none'/>",
    )
    kicked = await tybalt.expect_from(f"{ROOM}/tyb", "presence", type="unavailable")
    assert codes(kicked) == {"110", "307"}
    voiced = await benvolio.expect_from(f"{ROOM}/ben", "presence")
    assert item(voiced)["role"] == "participant"
    await tybalt.nothing_from(ROOM)


async def test_ban_and_ban_list(peers: Any) -> None:
    """§9.1: 301 to the banned occupant and the room; a banned user gets forbidden on
    entering (§7.2.7); §9.2 the ban list carries the reason and can be edited; an admin
    cannot ban the owner (not-allowed) nor himself (conflict)."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "kinghenryv")
    await juliet.join(ROOM, "cambridge")
    await mercutio.join(ROOM, "exeter")
    await admin_set(
        romeo,
        ROOM,
        f"<item affiliation='outcast' jid='{juliet.bare}'><reason>Treason</reason></item>",
    )
    banned = await juliet.expect_from(f"{ROOM}/cambridge", "presence", type="unavailable")
    assert codes(banned) == {"110", "301"}
    assert item(banned)["affiliation"] == "outcast"
    seen = await mercutio.expect_from(f"{ROOM}/cambridge", "presence", type="unavailable")
    assert codes(seen) == {"301"}
    assert await juliet.join_error(ROOM, "cambridge") == "forbidden"
    bans = await admin_list(romeo, ROOM, "affiliation='outcast'")
    assert bans == [{"affiliation": "outcast", "jid": juliet.bare}]
    result = await romeo.iq(
        f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
        "<item affiliation='outcast'/></query></iq>"
    )
    ban_item = result[0][0]
    assert ban_item.findtext(ns.clark(ns.MUC_ADMIN, "reason")) == "Treason"
    assert (
        await mercutio.iq_error(
            f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            "<item affiliation='outcast'/></query></iq>"
        )
        == "forbidden"
    )
    # an admin may not ban the owner, nor himself
    await admin_set(romeo, ROOM, f"<item affiliation='admin' jid='{mercutio.bare}'/>")
    ban_owner = (
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
        f"<item affiliation='outcast' jid='{romeo.bare}'/></query></iq>"
    )
    assert await mercutio.iq_error(ban_owner) == "not-allowed"
    ban_self = (
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
        f"<item affiliation='outcast' jid='{mercutio.bare}'/></query></iq>"
    )
    assert await mercutio.iq_error(ban_self) == "conflict"
    # lifting the ban (§9.2): the user may enter again
    await admin_set(mercutio, ROOM, f"<item affiliation='none' jid='{juliet.bare}'/>")
    assert await admin_list(romeo, ROOM, "affiliation='outcast'") == []
    await juliet.join(ROOM, "cambridge")


async def test_an_item_names_its_occupant_or_user(peers: Any) -> None:
    """§8 names an occupant whose role changes by 'nick', §9 a user whose affiliation
    changes by 'jid': a role item without a nick is bad-request; an affiliation item
    with only an occupant's nick takes that occupant's bare JID; with neither, or a
    nick nobody has, it is bad-request."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "kinghenryv")
    await juliet.join(ROOM, "cambridge")

    def admin_iq(attrs: str) -> str:
        return (
            f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'><item {attrs}/></query></iq>"
        )

    assert await romeo.iq_error(admin_iq(f"jid='{juliet.jid}' role='visitor'")) == "bad-request"
    assert await romeo.iq_error(admin_iq("affiliation='member'")) == "bad-request"
    assert await romeo.iq_error(admin_iq("nick='nobody' affiliation='member'")) == "bad-request"
    await admin_set(romeo, ROOM, "<item nick='cambridge' affiliation='member'/>")
    assert await admin_list(romeo, ROOM, "affiliation='member'") == [
        {"affiliation": "member", "jid": juliet.bare, "nick": "cambridge"}
    ]


async def test_members_only_room(peers: Any) -> None:
    """§7.2.6: a non-member gets registration-required; §9.3 an admin grants membership
    (with a reserved nick, §7.12); §9.4 revoking it in a members-only room removes the
    occupant with 321; §10.2 turning a room members-only removes non-members with 322."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await mercutio.join(ROOM, "visitor")
    await configure(romeo, ROOM, {"muc#roomconfig_membersonly": "1"})
    removed = await mercutio.expect_from(f"{ROOM}/visitor", "presence", type="unavailable")
    assert codes(removed) == {"110", "322"}
    assert await juliet.join_error(ROOM, "thirdwitch") == "registration-required"
    await admin_set(
        romeo, ROOM, f"<item affiliation='member' jid='{juliet.bare}' nick='thirdwitch'/>"
    )
    members = await admin_list(romeo, ROOM, "affiliation='member'")
    assert members == [{"affiliation": "member", "jid": juliet.bare, "nick": "thirdwitch"}]
    nick = await juliet.iq(
        f"<iq type='get' to='{ROOM}'><query xmlns='{ns.DISCO_INFO}' node='x-roomuser-item'/></iq>"
    )
    ident = nick[0].find(ns.clark(ns.DISCO_INFO, "identity"))
    assert ident is not None and ident.get("name") == "thirdwitch"
    # the reserved nick is refused to others (§7.2.8)
    await admin_set(romeo, ROOM, f"<item affiliation='member' jid='{mercutio.bare}'/>")
    assert await mercutio.join_error(ROOM, "thirdwitch") == "conflict"
    joined = await juliet.join(ROOM, "thirdwitch")
    assert item(joined.self_presence)["affiliation"] == "member"
    # members may not read the member list of a semi-anonymous room (§5.2.1 "***")
    assert (
        await juliet.iq_error(
            f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            "<item affiliation='member'/></query></iq>"
        )
        == "forbidden"
    )
    await admin_set(romeo, ROOM, f"<item affiliation='none' jid='{juliet.bare}'/>")
    gone = await juliet.expect_from(f"{ROOM}/thirdwitch", "presence", type="unavailable")
    assert codes(gone) == {"110", "321"}


async def test_admin_and_owner_lists(peers: Any) -> None:
    """§10.3–§10.8: owners edit the admin and owner lists; an admin may not (forbidden);
    the last owner cannot step down (conflict); lists come back by bare JID."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await admin_set(romeo, ROOM, f"<item affiliation='admin' jid='{juliet.jid}'/>")
    assert await admin_list(romeo, ROOM, "affiliation='admin'") == [
        {"affiliation": "admin", "jid": juliet.bare}
    ]
    grant_owner = (
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
        f"<item affiliation='owner' jid='{mercutio.bare}'/></query></iq>"
    )
    assert await juliet.iq_error(grant_owner) == "forbidden"
    assert (
        await juliet.iq_error(
            f"<iq type='get' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            "<item affiliation='owner'/></query></iq>"
        )
        == "forbidden"
    )
    step_down = (
        f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
        f"<item affiliation='admin' jid='{romeo.bare}'/></query></iq>"
    )
    assert await romeo.iq_error(step_down) == "conflict"
    await romeo.iq(grant_owner)
    assert [i["jid"] for i in await admin_list(romeo, ROOM, "affiliation='owner'")] == [
        mercutio.bare,
        romeo.bare,
    ]
    await romeo.iq(step_down)  # another owner exists now
    assert [i["jid"] for i in await admin_list(mercutio, ROOM, "affiliation='admin'")] == [
        juliet.bare,
        romeo.bare,
    ]
    # both an affiliation and a role in one item is a bad-request (§17.4 rule 4)
    assert (
        await mercutio.iq_error(
            f"<iq type='set' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
            f"<item affiliation='member' role='participant' jid='{juliet.bare}'/></query></iq>"
        )
        == "bad-request"
    )
    # the moderator list (§9.8): admins and owners entering are moderators
    await juliet.join(ROOM, "secondwitch")
    mods = await admin_list(mercutio, ROOM, "role='moderator'")
    assert {m["nick"] for m in mods} == {"firstwitch", "secondwitch"}


async def test_the_configuration_forms_lists_step_users_down_not_out(peers: Any) -> None:
    """§10.2 with §10.7 and §10.9: in a members-only room, an owner whom the form moves
    from the owner list to the admin list becomes an admin and stays (presence with
    affiliation 'admin', no 321), and one then taken off the admin list becomes a
    member and stays; neither ends up with no affiliation, which would eject them."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_membersonly": "1"})
    await admin_set(romeo, ROOM, f"<item affiliation='owner' jid='{juliet.bare}'/>")
    await juliet.join(ROOM, "secondwitch")
    romeo.clear()
    juliet.clear()
    await configure(
        romeo,
        ROOM,
        {"muc#roomconfig_roomowners": [romeo.bare], "muc#roomconfig_roomadmins": [juliet.bare]},
    )
    seen = await juliet.expect_from(f"{ROOM}/secondwitch", "presence")
    assert seen.get("type") is None and item(seen)["affiliation"] == "admin"
    assert "321" not in codes(seen)
    assert await admin_list(romeo, ROOM, "affiliation='admin'") == [
        {"affiliation": "admin", "jid": juliet.bare}
    ]
    await configure(
        romeo,
        ROOM,
        {"muc#roomconfig_roomowners": [romeo.bare], "muc#roomconfig_roomadmins": []},
    )
    seen = await juliet.expect_from(f"{ROOM}/secondwitch", "presence")
    assert seen.get("type") is None and item(seen)["affiliation"] == "member"
    assert [m["jid"] for m in await admin_list(romeo, ROOM, "affiliation='member'")] == [
        juliet.bare
    ]
    await juliet.nothing_from(f"{ROOM}/secondwitch")  # still in the room: no unavailable


async def test_a_nick_reserved_through_the_member_list_holds_in_every_spelling(
    peers: Any,
) -> None:
    """§9.3 with §7.12: an admin reserves 'René' for Juliet, written with a combining
    accent ('Rene' + U+0301).  Nicks compare as occupant JID resources (Resourceprep
    composes the accent), so Mercutio's 'René' is a ``conflict``, Juliet enters with
    it, and the member list shows the reservation in its prepared form."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    await admin_set(
        romeo, ROOM, f"<item affiliation='member' jid='{juliet.bare}' nick='Rene\u0301'/>"
    )
    assert await mercutio.join_error(ROOM, "Ren\u00e9") == "conflict"
    joined = await juliet.join(ROOM, "Ren\u00e9")
    assert item(joined.self_presence)["affiliation"] == "member"
    assert await admin_list(romeo, ROOM, "affiliation='member'") == [
        {"affiliation": "member", "jid": juliet.bare, "nick": "Ren\u00e9"}
    ]


async def test_mediated_invitation_and_decline(peers: Any) -> None:
    """§7.8.2: the room sends the invitation on the inviter's behalf (with the password);
    the invitee's decline goes back to the inviter through the room; an unknown invitee
    is item-not-found."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_room(
        romeo,
        ROOM,
        "firstwitch",
        {"muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "cauldron"},
    )
    romeo.send(
        f"<message to='{ROOM}' id='inv1'><x xmlns='{ns.MUC_USER}'><invite to='{juliet.bare}'>"
        "<reason>Hey Hecate, this is the place for all good witches!</reason></invite></x>"
        "</message>"
    )
    invitation = await juliet.expect_from(ROOM, "message")
    x = muc_x(invitation)
    assert x is not None
    invite = x.find(ns.clark(ns.MUC_USER, "invite"))
    assert invite is not None and invite.get("from") == romeo.bare
    assert invite.findtext(ns.clark(ns.MUC_USER, "reason")).startswith("Hey Hecate")  # type: ignore[union-attr]
    assert x.findtext(ns.clark(ns.MUC_USER, "password")) == "cauldron"
    juliet.send(
        f"<message to='{ROOM}'><x xmlns='{ns.MUC_USER}'><decline to='{romeo.bare}'>"
        "<reason>Sorry, I'm too busy right now.</reason></decline></x></message>"
    )
    declined = await romeo.expect_from(ROOM, "message")
    d = muc_x(declined)
    assert d is not None
    decline = d.find(ns.clark(ns.MUC_USER, "decline"))
    assert decline is not None and decline.get("from") == juliet.bare
    # one decline per invitation; nobody else's "decline" is carried by the room
    for decliner in (juliet, mercutio):
        decliner.send(
            f"<message to='{ROOM}' id='dec'><x xmlns='{ns.MUC_USER}'><decline to='{romeo.bare}'>"
            "<reason>no</reason></decline></x></message>"
        )
        err = await decliner.expect_from(ROOM, "message", type="error")
        assert error_condition(err) == "not-acceptable"
    romeo.send(
        f"<message to='{ROOM}'><x xmlns='{ns.MUC_USER}'><invite to='nobody@localhost'/></x>"
        "</message>"
    )
    err = await romeo.expect_from(ROOM, "message", type="error")
    assert error_condition(err) == "item-not-found"
    await juliet.join(ROOM, "thirdwitch", password="cauldron")


async def test_invitations_into_members_only_rooms(peers: Any) -> None:
    """§9.5: a mere member may not invite into a members-only room (forbidden) unless
    allowinvites is on; an invitation there adds the invitee to the member list."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_room(romeo, ROOM, "firstwitch", {"muc#roomconfig_membersonly": "1"})
    romeo.send(
        f"<message to='{ROOM}'><x xmlns='{ns.MUC_USER}'><invite to='{juliet.bare}'/></x></message>"
    )
    await juliet.expect_from(ROOM, "message")
    await juliet.join(ROOM, "thirdwitch")  # the invitation made her a member
    invite_mercutio = (
        f"<message to='{ROOM}'><x xmlns='{ns.MUC_USER}'><invite to='{mercutio.bare}'/></x>"
        "</message>"
    )
    juliet.send(invite_mercutio)
    err = await juliet.expect_from(ROOM, "message", type="error")
    assert error_condition(err) == "forbidden"
    await configure(romeo, ROOM, {"muc#roomconfig_allowinvites": "1"})
    juliet.send(invite_mercutio)
    await mercutio.expect_from(ROOM, "message")
    await mercutio.join(ROOM, "fourth")
    # §7.8.2: an invitation to an account that does not exist is item-not-found, and
    # makes no member
    romeo.send(
        f"<message to='{ROOM}'><x xmlns='{ns.MUC_USER}'><invite to='nobody@localhost'/></x>"
        "</message>"
    )
    err = await romeo.expect_from(ROOM, "message", type="error")
    assert error_condition(err) == "item-not-found"
    members = [i.get("jid") for i in await admin_list(romeo, ROOM, "affiliation='member'")]
    assert "nobody@localhost" not in members and juliet.bare in members


async def test_direct_invitation_passes_through(peers: Any) -> None:
    """§7.8.1 / XEP-0249: a direct invitation goes from user to user unchanged."""
    romeo, juliet = await peers("romeo", "juliet")
    await create_instant(romeo, ROOM, "firstwitch")
    romeo.send(
        f"<message to='{juliet.jid}'><x xmlns='jabber:x:conference' jid='{ROOM}' "
        "reason='Hey Hecate'/></message>"
    )
    got = await juliet.expect_from(romeo.jid, "message")
    x = got.find(ns.clark("jabber:x:conference", "x"))
    assert x is not None and x.get("jid") == ROOM
    await juliet.join(ROOM, "thirdwitch")


async def test_registration_with_an_open_room(peers: Any) -> None:
    """§7.10: the registration form, a submitted nick makes a member with that nick
    reserved; a second user asking for the same nick gets conflict."""
    romeo, juliet, mercutio = await peers("romeo", "juliet", "mercutio")
    await create_instant(romeo, ROOM, "firstwitch")
    form = await juliet.iq(f"<iq type='get' to='{ROOM}'><query xmlns='jabber:iq:register'/></iq>")
    assert form[0].find(ns.clark(DATA, "x")) is not None
    submit = (
        f"<iq type='set' to='{ROOM}'><query xmlns='jabber:iq:register'>"
        f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE'>"
        "<value>http://jabber.org/protocol/muc#register</value></field>"
        "<field var='muc#register_roomnick'><value>thirdwitch</value></field></x></query></iq>"
    )
    await juliet.iq(submit)
    again = await juliet.iq(f"<iq type='get' to='{ROOM}'><query xmlns='jabber:iq:register'/></iq>")
    assert again[0].find(ns.clark("jabber:iq:register", "registered")) is not None
    assert again[0].findtext(ns.clark("jabber:iq:register", "username")) == "thirdwitch"
    assert await mercutio.iq_error(submit) == "conflict"
