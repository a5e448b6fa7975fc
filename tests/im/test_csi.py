"""XEP-0352 Client State Indication: an inactive client is sent what is urgent at once
and the rest (presence updates, chat states) later, in order; over real TLS
connections, and with slixmpp's ``xep_0352`` plugin."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.im.conftest import Peer, befriend, message, online, settle
from tests.server.conftest import slix_close, slix_connect
from xmppx import ns
from xmppx.client import StreamClosedError
from xmppx.core import Element, parse
from xmppx.modules.csi import urgent
from xmppx.server import XMPPServer

INACTIVE = "<inactive xmlns='urn:xmpp:csi:0'/>"
ACTIVE = "<active xmlns='urn:xmpp:csi:0'/>"
COMPOSING = (
    "<message to='romeo@localhost' type='chat'>"
    "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
)


async def friends(server: XMPPServer) -> tuple[Peer, Peer]:
    await befriend(server, "romeo", "juliet")
    romeo, juliet = await online(server, "romeo@localhost/orchard", "juliet@localhost/balcony")
    return romeo, juliet


async def nothing_arrives(server: XMPPServer, peer: Peer, sender: Peer) -> None:
    """Once everything ``sender`` sent is handled (and a moment for the bytes to
    travel), ``peer`` has received nothing."""
    await settle(server, sender)
    await asyncio.sleep(0.2)
    assert not peer.client.queued and not peer.backlog


def summary(stanzas: list[Element]) -> list[str]:
    out = []
    for s in stanzas:
        if s.name == "presence":
            out.append(f"presence:{s.findtext('show') or s.get('type') or 'available'}")
        else:
            out.append(f"message:{s.findtext('body') or s[0].name}")
    return out


async def test_an_inactive_client_gets_only_what_is_urgent(server: XMPPServer) -> None:
    """§5: presence updates and a chat state wait; a message with a body brings them,
    in their order, before itself."""
    romeo, juliet = await friends(server)
    romeo.send_xml(INACTIVE)
    await settle(server, romeo)
    juliet.send_xml("<presence><show>away</show></presence>")
    juliet.send_xml(COMPOSING)
    await nothing_arrives(server, romeo, juliet)
    juliet.send(message("romeo@localhost", "Art thou not Romeo?"))
    await romeo.expect(lambda s: s.findtext("body") == "Art thou not Romeo?")
    await settle(server, juliet)
    got = [*await romeo.drain()]
    # expect() kept what came before the body in the backlog, in arrival order
    assert summary(got) == ["presence:away", "message:composing"]


async def test_active_again_sends_what_waited(server: XMPPServer) -> None:
    romeo, juliet = await friends(server)
    romeo.send_xml(INACTIVE)
    await settle(server, romeo)
    juliet.send_xml("<presence><show>xa</show></presence>")
    juliet.send_xml("<presence type='unavailable'/>")
    await nothing_arrives(server, romeo, juliet)
    romeo.send_xml(ACTIVE)
    first = await romeo.expect(lambda s: s.name == "presence", "the held presence")
    second = await romeo.expect(lambda s: s.name == "presence", "the next one")
    assert summary([first, second]) == ["presence:xa", "presence:unavailable"]
    # and active means at once again
    juliet.presence()
    await romeo.expect(lambda s: s.name == "presence" and s.get("type") is None)


async def test_an_iq_answer_is_urgent(server: XMPPServer) -> None:
    """The client's own request is answered at once, after what waited."""
    romeo, juliet = await friends(server)
    romeo.send_xml(INACTIVE)
    await settle(server, romeo)
    juliet.send_xml("<presence><show>dnd</show></presence>")
    await nothing_arrives(server, romeo, juliet)
    ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    ping.append(Element("ping", ns.PING))
    await romeo.iq(ping)
    [held] = await romeo.drain()
    assert summary([held]) == ["presence:dnd"]


async def test_the_queue_is_bounded(make_server: Any) -> None:
    """``csi.queue_size``: past it, what waits is sent anyway."""
    server = await make_server(csi__queue_size=3)
    romeo, juliet = await friends(server)
    romeo.send_xml(INACTIVE)
    await settle(server, romeo)
    for _ in range(5):
        juliet.send_xml(COMPOSING)
    await settle(server, juliet)
    await asyncio.sleep(0.2)
    got = await romeo.drain()
    assert len(got) == 4  # three held, the fourth sent them all; the fifth waits


async def test_queue_size_zero_holds_nothing(make_server: Any) -> None:
    server = await make_server(csi__queue_size=0)
    romeo, juliet = await friends(server)
    romeo.send_xml(INACTIVE)
    await settle(server, romeo)
    juliet.send_xml(COMPOSING)
    await romeo.expect(lambda s: s.name == "message", "the chat state, at once")


@pytest.mark.parametrize(
    "ending",
    ["</stream:stream>", "<nap xmlns='urn:example:none'/>", "<message><body></message>"],
    ids=["close", "unsupported", "malformed"],
)
async def test_what_waits_is_sent_before_the_stream_ends(server: XMPPServer, ending: str) -> None:
    """Bytes from the client release what waits before they are read: its closing the
    stream, or a stream error for what it sent, does not drop it (RFC 6120 §4.4)."""
    romeo, juliet = await friends(server)
    romeo.send_xml(INACTIVE)
    await settle(server, romeo)
    juliet.send_xml(
        "<message to='romeo@localhost' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/>"
        "</message>"
    )
    await nothing_arrives(server, romeo, juliet)
    romeo.send_xml(ending)
    got: list[Element] = []
    with pytest.raises(StreamClosedError):
        for _ in range(20):  # bounded: the stream ends within a few reads
            got.append(await romeo.client.recv(timeout=10))
    assert [s.get("id") for s in got if s.name == "message"] == ["r1"]


async def test_an_unknown_csi_element_is_a_stream_error(server: XMPPServer) -> None:
    """Anything but <active/> and <inactive/> in the namespace is not a stanza:
    unsupported-stanza-type (RFC 6120 §4.9.3.22)."""
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send_xml("<sleepy xmlns='urn:xmpp:csi:0'/>")
    with pytest.raises(StreamClosedError) as info:
        for _ in range(20):  # bounded: the stream ends within a few reads
            await romeo.client.recv(timeout=10)
    assert "unsupported-stanza-type" in str(info.value)


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        ("<iq type='result' id='1'/>", True),
        ("<presence/>", False),
        ("<presence type='unavailable'/>", False),
        ("<presence type='subscribe'/>", True),
        ("<message><body>hi</body></message>", True),
        ("<message type='groupchat'><subject>news</subject></message>", True),
        ("<message><active xmlns='http://jabber.org/protocol/chatstates'/></message>", False),
        ("<message><received xmlns='urn:xmpp:receipts' id='a'/></message>", False),
        ("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='a'/></message>", False),
        ("<message><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>", True),
        (
            "<message><x xmlns='http://jabber.org/protocol/muc#user'>"
            "<invite from='a@b'/></x></message>",
            True,
        ),
        (
            "<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
            "<message xmlns='jabber:client'><body>hi</body></message></forwarded></received>"
            "</message>",
            True,
        ),
        (
            "<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
            "<message xmlns='jabber:client'><gone xmlns='http://jabber.org/protocol/chatstates'/>"
            "</message></forwarded></received></message>",
            False,
        ),
        # the user read the chat on another device: this one stops notifying at once
        (
            "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
            "<message xmlns='jabber:client'><displayed xmlns='urn:xmpp:chat-markers:0' id='a'/>"
            "</message></forwarded></sent></message>",
            True,
        ),
        ("<message><received xmlns='urn:xmpp:carbons:2'/><body>hi</body></message>", True),
        ("<message type='error'><error type='cancel'/></message>", True),
        ("<message><retract xmlns='urn:xmpp:jingle-message:0' id='c'/></message>", True),
        ("<message><encrypted xmlns='urn:xmpp:omemo:2'/></message>", True),
        ("<presence type='error'/>", True),
        (
            "<presence type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'>"
            "<status code='110'/><status code='307'/></x></presence>",
            True,
        ),
        (
            "<presence><x xmlns='http://jabber.org/protocol/muc#user'>"
            "<item affiliation='none' role='participant'/></x></presence>",
            False,
        ),
    ],
)
def test_what_is_urgent(xml: str, expected: bool) -> None:
    assert urgent(parse(xml.encode())) is expected


async def test_slixmpp_sees_the_feature_and_goes_inactive(server: XMPPServer) -> None:
    """Interop: slixmpp's xep_0352 plugin finds the stream feature and its
    <inactive/> and <active/> are accepted (the stream stays up, chat states wait)."""
    await befriend(server, "romeo", "juliet")
    romeo = await slix_connect(server, "romeo@localhost/orchard", plugins=("xep_0352",))
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    try:
        assert romeo.plugin["xep_0352"].enabled  # it saw <csi/> among the features
        got: asyncio.Queue[str] = asyncio.Queue()
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import StanzaPath

        # every message (slixmpp's "message" event skips those without a body)
        romeo.register_handler(
            Callback("all", StanzaPath("message"), lambda m: got.put_nowait(str(m["body"])))
        )
        romeo.send_presence()
        romeo.plugin["xep_0352"].send_inactive()
        await asyncio.sleep(0.2)
        await settle(server, juliet)
        juliet.send_xml(COMPOSING.replace("type='chat'", "type='chat' id='c1'"))
        await settle(server, juliet)
        await asyncio.sleep(0.2)
        assert got.empty()
        romeo.plugin["xep_0352"].send_active()
        juliet.send(message("romeo@localhost", "awake?"))
        assert await asyncio.wait_for(got.get(), 10) == ""  # the chat state, no body
        assert await asyncio.wait_for(got.get(), 10) == "awake?"
    finally:
        await slix_close(romeo)
        await juliet.close()
