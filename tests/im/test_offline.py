"""XEP-0160 offline messages with XEP-0203 stamps, across a server restart."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.im.conftest import Peer, is_message, message, settle, until
from tests.server.conftest import RawConnection
from xmppx import ns
from xmppx.core import Element, FullJID, parse_jid
from xmppx.modules.offline import worth_storing


def _chat_state_only(to: str) -> Element:
    msg = Element("message", ns.CLIENT, {"to": to, "type": "chat"})
    msg.append(Element("composing", "http://jabber.org/protocol/chatstates"))
    return msg


async def test_offline_messages_survive_a_restart(make_server: Any) -> None:
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send(message("juliet@localhost", "first"))
    romeo.send(message("juliet@localhost", "second", "normal"))
    romeo.send(_chat_state_only("juliet@localhost"))  # XEP-0160 §4: not stored
    romeo.send(message("juliet@localhost", "news", "headline"))  # not stored
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == 2
    assert not [s for s in await romeo.drain() if s.get("type") == "error"], "no bounce"
    await romeo.close()
    await server.stop()

    server = await make_server(users=())  # same data dir, accounts already there
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await settle(server, juliet)
    assert not [s for s in await juliet.drain() if s.name == "message"], (
        "nothing before her available presence"
    )
    juliet.presence()
    first = await juliet.expect(is_message(), "the first stored message")
    second = await juliet.expect(is_message(), "the second")
    assert [first.findtext("body"), second.findtext("body")] == ["first", "second"]
    for msg in (first, second):
        assert msg.get("from") == "romeo@localhost/orchard"
        delay = msg.find(ns.clark(ns.DELAY, "delay"))
        assert delay is not None
        assert delay.get("from") == "localhost"
        assert delay.get("stamp", "").endswith("Z")
    await settle(server, juliet)
    assert not [s for s in await juliet.drain() if s.name == "message"]
    assert await server.storage.offline.count("juliet@localhost") == 0
    await juliet.close()


async def test_a_message_sent_as_she_comes_online_follows_the_stored_ones(
    make_server: Any,
) -> None:
    """RFC 6120 §10.1, XEP-0160 §3: Romeo's messages reach Juliet in the order he sent
    them.  Two wait in storage when her initial presence makes her available; the one
    he sends at that moment, while they are still being read from storage, comes after
    them, not before."""
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    for body in ("first", "second"):
        romeo.send(message("juliet@localhost", body))
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == 2
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    balcony = parse_jid("juliet@localhost/balcony")
    assert isinstance(balcony, FullJID)
    for _ in range(500):
        session = server.sessions.get(balcony)
        if session is not None and session.presence is not None:
            break
        await asyncio.sleep(0.002)
    romeo.send(message("juliet@localhost", "third"))
    got = [await juliet.expect(is_message(), f"message {i}") for i in range(3)]
    assert [m.findtext("body") for m in got] == ["first", "second", "third"]
    await romeo.close()
    await juliet.close()


async def test_quota_full_is_service_unavailable(make_server: Any) -> None:
    server = await make_server(offline__quota=2)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    for i in range(3):
        romeo.send(message("juliet@localhost", f"m{i}"))
    err = await romeo.expect(lambda s: s.name == "message" and s.get("type") == "error")
    assert err.findtext("body") == "m2"
    assert b"service-unavailable" in err.serialize()
    await romeo.close()


async def test_negative_priority_keeps_messages_stored(make_server: Any) -> None:
    """XEP-0160 §3: delivery waits for non-negative presence."""
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send(message("juliet@localhost", "wait"))
    await settle(server, romeo)
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.send_xml("<presence><priority>-5</priority></presence>")
    await settle(server, juliet)
    assert not [s for s in await juliet.drain() if s.name == "message"]
    juliet.send_xml("<presence><priority>1</priority></presence>")
    assert (await juliet.expect(is_message("wait"))).findtext("body") == "wait"
    await romeo.close()
    await juliet.close()


def test_what_is_worth_storing() -> None:
    def msg(xml: str) -> Element:
        from xmppx.core import parse

        return parse(xml.encode())

    assert worth_storing(msg("<message><body>hi</body></message>"))
    assert worth_storing(msg("<message type='chat'><body>hi</body></message>"))
    assert not worth_storing(msg("<message type='headline'><body>hi</body></message>"))
    assert not worth_storing(msg("<message type='groupchat'><body>hi</body></message>"))
    assert not worth_storing(msg("<message type='error'><body>hi</body></message>"))
    assert not worth_storing(
        msg(
            "<message type='chat'><thread>t</thread>"
            "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
    )
    assert worth_storing(
        msg(
            "<message type='chat'><body>hi</body>"
            "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
    )
    assert not worth_storing(
        msg("<message><body>otr</body><no-store xmlns='urn:xmpp:hints'/></message>")
    )
    assert worth_storing(msg("<message><received xmlns='urn:xmpp:receipts' id='x'/></message>"))


async def test_a_flood_is_stored_in_order_up_to_the_quota(make_server: Any) -> None:
    """Messages to an offline user arriving faster than they are stored are stored in
    arrival order; past the quota each one is bounced with service-unavailable, and the
    user gets exactly the stored ones, in order (XEP-0160 §3)."""
    server = await make_server(users=("romeo", "juliet", "mercutio"), offline__quota=150)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    mercutio = await Peer.connect(server, "mercutio@localhost/street")
    for i in range(200):
        (romeo if i % 2 else mercutio).send(message("juliet@localhost", f"m{i}"))
    bounced = []
    for peer in (romeo, mercutio):
        await settle(server, peer)
        bounced += [
            s.findtext("body")
            for s in await peer.drain()
            if s.name == "message" and s.get("type") == "error"
        ]
    assert len(bounced) == 50
    stored = [m.stanza for m in await server.storage.offline.fetch("juliet@localhost")]
    assert len(stored) == 150
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    got = [(await juliet.expect(is_message(), f"stored message {n}")) for n in range(150)]
    bodies = [m.findtext("body") for m in got]
    # each sender's messages in the order it sent them
    for parity in (0, 1):
        mine = [int(b[1:]) for b in bodies if b and int(b[1:]) % 2 == parity]
        assert mine == sorted(mine)
    assert sorted(bodies + bounced, key=lambda b: int(b[1:])) == [f"m{i}" for i in range(200)]
    await romeo.close()
    await mercutio.close()
    await juliet.close()


async def test_a_message_of_unknown_type_is_stored_as_normal(make_server: Any) -> None:
    """RFC 6121 §5.2.2: a type the server does not understand "MUST [be considered] to
    be of type 'normal'", so for an offline recipient it is stored (XEP-0160 §4), as it
    would have been delivered to an online one."""
    bogus = message("juliet@localhost", "of a kind unknown", "bogus")
    assert worth_storing(bogus)
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send(bogus)
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == 1
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    stored = await juliet.expect(is_message("of a kind unknown"))
    assert stored.get("type") == "bogus", "passed on as it was sent"
    await juliet.close()
    await romeo.close()


async def test_a_client_cannot_forge_the_offline_stamp(make_server: Any) -> None:
    """Only the server stamps with its own domain (XEP-0203, XEP-0160 §3): a message
    that arrives with such a ``<delay/>`` is stored without it and delivered with the
    server's one real stamp."""
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    forged = message("juliet@localhost", "old news")
    forged.append(
        Element("delay", ns.DELAY, {"from": "localhost", "stamp": "2001-01-01T00:00:00Z"})
    )
    romeo.send(forged)
    await settle(server, romeo)
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    stored = await juliet.expect(is_message("old news"))
    stamps = [d.get("stamp") for d in stored.findall(ns.clark(ns.DELAY, "delay"))]
    assert len(stamps) == 1 and not (stamps[0] or "").startswith("2001"), stamps
    await juliet.close()
    await romeo.close()


async def test_many_large_stored_messages_wait_for_the_client_to_read_them(
    make_server: Any,
) -> None:
    """Stored messages are delivered as the client reads them: 100 of 150 KB (sixty
    times ``limits.write_buffer_bytes``, more than the kernel's socket buffers hold)
    all reach a client that reads, which is not dropped as a slow reader, and storage
    is empty after."""
    server = await make_server(limits__write_buffer_bytes=256 * 1024, limits__c2s_rate=0)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    pad = "x" * 150_000
    for i in range(100):
        romeo.send(message("juliet@localhost", f"m{i} {pad}"))
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == 100
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    got = [(await juliet.expect(is_message(), f"stored message {n}")) for n in range(100)]
    assert [(m.findtext("body") or "").split()[0] for m in got] == [f"m{i}" for i in range(100)]
    await settle(server, juliet)
    assert await server.storage.offline.count("juliet@localhost") == 0
    await romeo.close()
    await juliet.close()


async def test_a_client_that_stops_reading_stored_messages_holds_up_only_itself(
    make_server: Any,
) -> None:
    """XEP-0160 delivery waits for the client to read, and only that client waits: a
    phone that stops reading in the middle of 6 MB of stored messages does not hold up
    its account's desktop session, which gets a message at once.  A message for the
    phone meanwhile waits behind the rest of the stored ones, and comes after them once
    the phone reads again."""
    server = await make_server(limits__c2s_rate=0)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await _stored_for_juliet(server, romeo, 60)

    phone = await _poor_link_phone(server)
    await phone.read_until(b"m0 ")  # the backlog begins; from now on the phone reads no more
    romeo.send(message("juliet@localhost/phone", "late"))

    desktop = await Peer.connect(server, "juliet@localhost/desktop")
    desktop.presence()
    romeo.send(message("juliet@localhost/desktop", "to the desktop"))
    await desktop.expect(is_message("to the desktop"), "the message to the desktop")
    assert not [s for s in desktop.backlog if (s.findtext("body") or "").startswith("m")], (
        "the stored messages are the phone's"
    )

    got = await phone.read_until(b"<body>late</body>", timeout=30)
    bodies = re.findall(rb"<body>(m\d+) |<body>(late)</body>", got)
    assert [a or b for a, b in bodies] == [f"m{i}".encode() for i in range(60)] + [b"late"]
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == 0
    await phone.close()
    await desktop.close()
    await romeo.close()


async def _poor_link_phone(server: Any) -> RawConnection:
    """Juliet's phone, on a poor link (a small receive window, so that what the server
    writes soon fills its buffers): authenticated, bound as ``phone`` and available."""
    phone = await RawConnection.authenticated(server, "juliet", receive_window=16384)
    await phone.send(
        f"<iq type='set' id='b1'><bind xmlns='{ns.BIND}'><resource>phone</resource></bind>"
        "</iq><presence/>".encode()
    )
    return phone


async def _stored_for_juliet(server: Any, romeo: Peer, count: int) -> None:
    """``count`` messages of 100 KB from Romeo, stored for Juliet (``m0 xxx...``)."""
    pad = "x" * 100_000
    for i in range(count):
        romeo.send(message("juliet@localhost", f"m{i} {pad}"))
    await settle(server, romeo)
    assert await server.storage.offline.count("juliet@localhost") == count


async def test_a_client_that_stops_reading_stored_messages_is_dropped_past_the_limit(
    make_server: Any,
) -> None:
    """What waits behind the stored messages for a client that does not read is
    bounded: past ``limits.write_buffer_bytes`` the client is dropped as a slow reader,
    and the messages that waited, and those that came as it was dropped, are stored
    for later, in order, not lost."""
    server = await make_server(limits__c2s_rate=0, limits__write_buffer_bytes=256 * 1024)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await _stored_for_juliet(server, romeo, 60)
    phone = await _poor_link_phone(server)
    await phone.read_until(b"m0 ")
    # in one write: the phone is dropped in the middle of handling them, and what
    # comes after the drop stays behind what came before
    romeo.send_xml(
        "".join(
            f"<message to='juliet@localhost/phone' type='chat'><body>late{i} {'x' * 40_000}"
            "</body></message>"
            for i in range(10)
        )
    )
    jid = parse_jid("juliet@localhost/phone")
    assert isinstance(jid, FullJID)
    await until(lambda: server.sessions.get(jid) is None, "dropped as a slow reader")
    await settle(server, romeo)
    stored = await server.storage.offline.fetch("juliet@localhost")
    late = [m.stanza.split(b"<body>")[1].split(b" ")[0] for m in stored if b"late" in m.stanza]
    assert late == [f"late{i}".encode() for i in range(10)]
    phone.writer.transport.abort()  # (the server cut it: nothing to close cleanly)
    await romeo.close()


async def test_what_a_session_leaves_of_the_stored_messages_goes_to_another(
    make_server: Any,
) -> None:
    """The phone's connection breaks in the middle of its stored messages while the
    desktop is online: the rest go to the desktop at once, in order, rather than wait
    in storage for the next login."""
    server = await make_server(limits__c2s_rate=0)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await _stored_for_juliet(server, romeo, 60)
    phone = await _poor_link_phone(server)
    await phone.read_until(b"m0 ")
    desktop = await Peer.connect(server, "juliet@localhost/desktop")
    desktop.presence()
    romeo.send(message("juliet@localhost/desktop", "to the desktop"))
    await desktop.expect(is_message("to the desktop"), "the message to the desktop")
    phone.writer.transport.abort()
    got = [await desktop.expect(is_message(), f"a stored message {i}") for i in range(1)]
    first = int((got[0].findtext("body") or "").split()[0][1:])
    assert first > 0, "the phone had m0"
    got += [await desktop.expect(is_message(), f"m{i}") for i in range(first + 1, 60)]
    assert [(m.findtext("body") or "").split()[0] for m in got] == [
        f"m{i}" for i in range(first, 60)
    ]
    await settle(server, romeo, desktop)
    assert await server.storage.offline.count("juliet@localhost") == 0
    await desktop.close()
    await romeo.close()
