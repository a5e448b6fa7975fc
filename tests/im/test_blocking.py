"""XEP-0191 blocking: the list, pushes, and what a block does to stanzas both ways."""

from __future__ import annotations

from typing import Any

import pytest

from tests.im.conftest import (
    Peer,
    befriend,
    is_message,
    is_presence,
    is_push,
    message,
    online,
    roster_set,
    settle,
)
from xmppx import ns
from xmppx.client import IqError
from xmppx.core import Element
from xmppx.server import XMPPServer

BLOCKED = ns.clark("urn:xmpp:blocking:errors", "blocked")


def blocking_iq(kind: str, *jids: str, type_: str = "set") -> Element:
    iq = Element("iq", ns.CLIENT, {"type": type_})
    elem = Element(kind, ns.BLOCKING)
    for jid in jids:
        elem.append(Element("item", ns.BLOCKING, {"jid": jid}))
    iq.append(elem)
    return iq


async def blocklist(peer: Peer) -> list[str]:
    res = await peer.iq(blocking_iq("blocklist", type_="get"))
    elem = res.find(ns.clark(ns.BLOCKING, "blocklist"))
    assert elem is not None
    return [i.get("jid") or "" for i in elem.findall(ns.clark(ns.BLOCKING, "item"))]


def is_block_push(kind: str) -> Any:
    return lambda s: s.name == "iq" and s.find(ns.clark(ns.BLOCKING, kind)) is not None


async def test_block_and_unblock(server: XMPPServer) -> None:
    await befriend(server, "romeo", "juliet")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    chamber = await Peer.connect(server, "juliet@localhost/chamber")
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    for p in (juliet, chamber, romeo):
        p.presence()
    assert await blocklist(juliet) == []
    assert await blocklist(chamber) == []
    await romeo.expect(is_presence("juliet@localhost/balcony"))
    # §3.3: block; both interested resources get the push, Romeo sees her go offline
    await juliet.iq(blocking_iq("block", "romeo@localhost"))
    for p in (juliet, chamber):
        push = await p.expect(is_block_push("block"), "block push")
        item = push.find(ns.clark(ns.BLOCKING, "block"))
        assert item is not None and item[0].get("jid") == "romeo@localhost"
    await romeo.expect(is_presence("juliet@localhost/balcony", "unavailable"), "she vanishes")
    assert await blocklist(juliet) == ["romeo@localhost"]
    await settle(server, juliet, chamber, romeo)
    await juliet.drain()  # what Romeo sent before the block
    await chamber.drain()
    # inbound from Romeo: a message is answered service-unavailable, presence dropped
    romeo.send(message("juliet@localhost", "hello?"))
    err = await romeo.expect(lambda s: s.name == "message" and s.get("type") == "error")
    assert b"service-unavailable" in err.serialize()
    romeo.send_xml("<presence><show>dnd</show></presence>")
    # an iq get to her account, answered by the server for her: service-unavailable too
    vcard = Element("iq", ns.CLIENT, {"type": "get", "to": "juliet@localhost"})
    vcard.append(Element("vCard", ns.VCARD))
    try:
        await romeo.iq(vcard)
        raise AssertionError("an iq from a blocked JID must fail")
    except Exception as exc:  # IqError
        assert getattr(exc, "condition", "") == "service-unavailable"
    # outbound to Romeo: not-acceptable with <blocked/>
    juliet.send(message("romeo@localhost", "you again"))
    bounce = await juliet.expect(lambda s: s.name == "message" and s.get("type") == "error")
    error = bounce.find(ns.clark(ns.CLIENT, "error"))
    assert error is not None
    assert error.find(ns.clark(ns.STANZAS, "not-acceptable")) is not None
    assert error.find(BLOCKED) is not None
    await settle(server, juliet, chamber, romeo)
    got = await juliet.drain() + await chamber.drain()
    assert not [s for s in got if s.get("from", "").startswith("romeo@")], "nothing from Romeo"
    # §3.4: unblock; pushes, and Romeo gets her presence again
    await juliet.iq(blocking_iq("unblock", "romeo@localhost"))
    await juliet.expect(is_block_push("unblock"))
    await chamber.expect(is_block_push("unblock"))
    await romeo.expect(is_presence("juliet@localhost/balcony"), "her presence again")
    romeo.send(message("juliet@localhost/balcony", "at last"))
    await juliet.expect(is_message("at last"))
    for p in (juliet, chamber, romeo):
        await p.close()


async def test_a_blocked_contact_who_cancels_is_taken_off_the_shared_presence(
    server: XMPPServer,
) -> None:
    """Juliet blocks Romeo, then Romeo removes her from his roster (RFC 6121 §2.5.2:
    unsubscribe and unsubscribed on his behalf).  Her server changes her roster as
    §3.2.3 and §3.3.3 require (she is pushed the item, now 'none') without showing her
    the presence from the JID she blocks (XEP-0191 §3.3); once she unblocks him, he
    does not get her presence."""
    await befriend(server, "romeo", "juliet")
    [juliet, romeo] = await online(server, "juliet@localhost/balcony", "romeo@localhost/orchard")
    await juliet.roster()  # interested in roster pushes (RFC 6121 §2.1.6)
    await juliet.iq(blocking_iq("block", "romeo@localhost"))
    await romeo.iq(roster_set({"jid": "juliet@localhost", "subscription": "remove"}))
    await juliet.expect(is_push("romeo@localhost", subscription="none"), "her roster push")
    await settle(server, juliet, romeo)
    got = await juliet.drain()
    assert not [s for s in got if s.name == "presence"], "no presence from Romeo shown"
    await romeo.drain()  # her unavailable presence when she blocked him (§3.3)
    roster = await server.storage.roster.get_roster("juliet@localhost")
    assert [(i.contact, i.subscription) for i in roster.items] == [("romeo@localhost", "none")]
    await juliet.iq(blocking_iq("unblock", "romeo@localhost"))
    juliet.send_xml("<presence><show>chat</show></presence>")
    await settle(server, juliet, romeo)
    assert not [s for s in await romeo.drain() if s.name == "presence"]
    await juliet.close()
    await romeo.close()


async def test_unblock_all_and_domains(server: XMPPServer) -> None:
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await juliet.iq(blocking_iq("block", "tybalt@localhost", "example.org", "localhost/x"))
    assert sorted(await blocklist(juliet)) == ["example.org", "localhost/x", "tybalt@localhost"]
    bounce_to = ["someone@example.org", "a.example.org", "tybalt@localhost/r"]
    for to in bounce_to:
        juliet.send(message(to, "hi"))
        err = await juliet.expect(lambda s, to=to: s.get("type") == "error" and s.get("from") == to)
        assert err.find(ns.clark(ns.CLIENT, "error")).find(BLOCKED) is not None  # type: ignore[union-attr]
    await juliet.iq(blocking_iq("unblock"))  # §3.5: unblock all
    push = await juliet.expect(is_block_push("unblock"))
    assert len(push.find(ns.clark(ns.BLOCKING, "unblock"))) == 0  # type: ignore[arg-type]
    assert await blocklist(juliet) == []
    try:
        await juliet.iq(blocking_iq("block"))
        raise AssertionError("an empty block is a bad request")
    except Exception as exc:
        assert getattr(exc, "condition", "") == "bad-request"
    await juliet.close()


async def test_blocked_sender_to_offline_user(server: XMPPServer) -> None:
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await juliet.iq(blocking_iq("block", "romeo@localhost"))
    await juliet.close()
    await settle(server)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send(message("juliet@localhost", "are you there"))
    err = await romeo.expect(lambda s: s.name == "message" and s.get("type") == "error")
    assert b"service-unavailable" in err.serialize()
    romeo.send_xml("<presence to='juliet@localhost' type='subscribe'/>")
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == 0
    assert await server.storage.roster.list_pending("juliet@localhost") == ()
    await romeo.close()


@pytest.mark.parametrize(
    "payload",
    [
        "<query xmlns='jabber:iq:last'/>",
        "<ping xmlns='urn:xmpp:ping'/>",
        "<vCard xmlns='vcard-temp'/>",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    ],
)
async def test_a_blocked_jid_asks_the_server_about_an_offline_user_in_vain(
    server: XMPPServer, payload: str
) -> None:
    """XEP-0191 §3.3: an iq from a blocked JID gets ``service-unavailable``, also when
    the server answers it for the user (XEP-0012 last activity, ping, vCard, disco)
    and the user has nothing online: its answer would tell when the user left, and that
    the user is offline (a session there would have refused it the same way)."""
    await befriend(server, "romeo", "juliet")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await juliet.iq(blocking_iq("block", "romeo@localhost"))
    await juliet.close()
    await settle(server)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send_xml(f"<iq type='get' id='q1' to='juliet@localhost'>{payload}</iq>")
    answer = await romeo.expect(lambda s: s.name == "iq" and s.get("id") == "q1")
    assert answer.get("type") == "error"
    assert b"<service-unavailable " in answer.serialize()
    await romeo.close()


async def test_blocklist_size_is_configurable(make_server: Any) -> None:
    """``blocking.max_items``: a block beyond it is not-allowed and changes nothing."""
    server = await make_server(blocking__max_items=2)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await romeo.iq(blocking_iq("block", "a@localhost", "b@localhost"))
    with pytest.raises(IqError) as info:
        await romeo.iq(blocking_iq("block", "c@localhost"))
    assert info.value.condition == "not-allowed"
    assert sorted(await blocklist(romeo)) == ["a@localhost", "b@localhost"]
    await romeo.close()


async def test_what_a_jid_sent_before_it_was_blocked_is_not_delivered_later(
    server: XMPPServer,
) -> None:
    """§3.3: "the user's server MUST NOT deliver any XML stanzas from the contact to the
    user", across sessions: neither Romeo's pending subscription request nor his
    message stored while Juliet was offline reaches her once she has blocked him."""
    juliet, romeo = await online(server, "juliet@localhost/balcony", "romeo@localhost/orchard")
    romeo.send_xml("<presence to='juliet@localhost' type='subscribe'/>")
    await juliet.expect(lambda s: s.get("type") == "subscribe", "his request")
    await juliet.iq(blocking_iq("block", "romeo@localhost"))
    await juliet.close()
    await settle(server, romeo)
    # stored while she is away, before she blocks him again (from a new session)
    await server.storage.blocklist.remove("juliet@localhost", ["romeo@localhost"])
    romeo.send(message("juliet@localhost", "stored before the block"))
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == 1
    chamber = await Peer.connect(server, "juliet@localhost/chamber")
    await chamber.iq(blocking_iq("block", "romeo@localhost"))
    chamber.presence()
    await settle(server, chamber, romeo)
    got = await chamber.drain()
    assert not [s for s in got if (s.get("from") or "").startswith("romeo@")], got
    assert await server.storage.offline.count("juliet@localhost") == 0
    await chamber.close()
    await romeo.close()


async def test_blocking_one_resource_hides_presence_from_it_alone(server: XMPPServer) -> None:
    """XEP-0191 §5: ``user@domain/resource`` matches only that resource.  Blocking it
    sends it unavailable presence, keeps her later presence from it while the other
    resource still sees it, and unblocking sends it her presence again (§3.3, §3.4)."""
    await befriend(server, "romeo", "juliet")
    juliet, orchard, garden = await online(
        server, "juliet@localhost/balcony", "romeo@localhost/orchard", "romeo@localhost/garden"
    )
    await juliet.iq(blocking_iq("block", "romeo@localhost/garden"))
    await garden.expect(is_presence("juliet@localhost/balcony", "unavailable"), "she vanishes")
    juliet.send_xml("<presence><show>dnd</show><status>secret</status></presence>")
    seen = await orchard.expect(is_presence("juliet@localhost/balcony"), "her new presence")
    assert seen.findtext("status") == "secret"
    await settle(server, juliet, orchard, garden)
    assert not [s for s in await orchard.drain() if s.get("type") == "unavailable"]
    assert not [s for s in await garden.drain() if s.name == "presence"], "nothing to garden"
    await juliet.iq(blocking_iq("unblock", "romeo@localhost/garden"))
    again = await garden.expect(is_presence("juliet@localhost/balcony"), "her presence again")
    assert again.findtext("status") == "secret"
    for p in (juliet, orchard, garden):
        await p.close()


async def test_blocking_a_directed_presence_recipient_sends_it_unavailable(
    server: XMPPServer,
) -> None:
    """§3.3: the contacts "allowed to receive presence notifications from the user" get
    unavailable presence on a block: those with directed presence too (RFC 6121 §4.6)."""
    juliet, romeo = await online(server, "juliet@localhost/balcony", "romeo@localhost/orchard")
    juliet.send_xml("<presence to='romeo@localhost'><show>chat</show></presence>")
    await romeo.expect(is_presence("juliet@localhost/balcony"), "directed presence")
    await juliet.iq(blocking_iq("block", "romeo@localhost"))
    await romeo.expect(is_presence("juliet@localhost/balcony", "unavailable"), "she vanishes")
    await juliet.close()
    await settle(server, romeo)
    assert not [s for s in await romeo.drain() if s.name == "presence"], "only one unavailable"
    await romeo.close()
