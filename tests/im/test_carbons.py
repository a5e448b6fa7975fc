"""XEP-0280 Message Carbons: enabling, the received and sent copies, and the messages
that make none (§6 eligibility, §9 private, MUC), over real TLS connections; and
slixmpp's ``xep_0280`` plugin against the server."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.im.conftest import Peer, is_message, message, online, settle
from xmppx import ns
from xmppx.client import IqError
from xmppx.core import Element
from xmppx.server import XMPPServer

RECEIVED = ns.clark(ns.CARBONS, "received")
SENT = ns.clark(ns.CARBONS, "sent")
FORWARDED = ns.clark(ns.FORWARD, "forwarded")
MESSAGE = ns.clark(ns.CLIENT, "message")
PRIVATE = ns.clark(ns.CARBONS, "private")


def carbons_iq(action: str, **attrs: str) -> Element:
    iq = Element("iq", ns.CLIENT, {"type": "set", **attrs})
    iq.append(Element(action, ns.CARBONS))
    return iq


async def enable(*peers: Peer) -> None:
    for peer in peers:
        result = await peer.iq(carbons_iq("enable"))
        assert result.get("type") == "result" and len(result) == 0


def carbon(which: str, body: str) -> Any:
    """A ``<received/>`` or ``<sent/>`` carbon of a message with ``body``."""
    tag = RECEIVED if which == "received" else SENT

    def match(s: Element) -> bool:
        inner = _inner(s, tag)
        return inner is not None and inner.findtext("body") == body

    return match


def _inner(s: Element, tag: str) -> Element | None:
    if s.name != "message":
        return None
    wrapper = s.find(tag)
    forwarded = wrapper.find(FORWARDED) if wrapper is not None else None
    return forwarded.find(MESSAGE) if forwarded is not None else None


async def nothing_more(server: XMPPServer, *peers: Peer) -> None:
    """After everything sent so far is handled, none of ``peers`` got a carbon."""
    await settle(server, *peers)
    for peer in peers:
        got = await peer.drain()
        stray = [s.serialize() for s in got if _inner(s, RECEIVED) or _inner(s, SENT)]
        assert not stray, f"{peer.jid} unexpectedly got {stray}"


async def test_the_server_announces_carbons(server: XMPPServer) -> None:
    """§3: urn:xmpp:carbons:2 among the server's disco#info features."""
    [romeo] = await online(server, "romeo@localhost/garden")
    iq = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    iq.append(Element("query", ns.DISCO_INFO))
    info = await romeo.iq(iq)
    query = info.find(ns.clark(ns.DISCO_INFO, "query"))
    assert query is not None
    features = [f.get("var") for f in query.findall(ns.clark(ns.DISCO_INFO, "feature"))]
    assert ns.CARBONS in features


async def test_enable_and_disable_any_number_of_times(server: XMPPServer) -> None:
    """§4, §5, §10.1: each request answered with an empty result; another account's
    carbons are not this client's to change."""
    [romeo] = await online(server, "romeo@localhost/garden")
    for action in ("enable", "enable", "disable", "disable", "enable"):
        result = await romeo.iq(carbons_iq(action))
        assert result.get("type") == "result" and result.get("from") == "romeo@localhost"
    result = await romeo.iq(carbons_iq("disable", to="romeo@localhost"))
    assert result.get("type") == "result"
    try:
        await romeo.iq(carbons_iq("enable", to="juliet@localhost"))
        raise AssertionError("enabling another account's carbons must fail")
    except IqError as exc:
        assert exc.condition == "not-allowed"
    try:
        await romeo.iq(carbons_iq("toggle"))
        raise AssertionError("an unknown request must fail")
    except IqError as exc:
        assert exc.condition == "service-unavailable"  # not understood (RFC 6120 §8.4)


async def test_a_directed_message_is_copied_to_the_other_enabled_resources(
    server: XMPPServer,
) -> None:
    """§7, its example: Juliet writes to Romeo's garden; his other carbons-enabled
    client gets a <received/> copy from his bare JID; a client that did not enable
    carbons gets nothing."""
    garden, home, orchard, juliet = await online(
        server,
        "romeo@localhost/garden",
        "romeo@localhost/home",
        "romeo@localhost/orchard",
        "juliet@localhost/balcony",
    )
    await enable(garden, home)
    juliet.send_xml(
        "<message to='romeo@localhost/garden' type='chat'>"
        "<body>What man art thou?</body><thread>0e3141cd</thread></message>"
    )
    original = await garden.expect(is_message("What man art thou?"), "the message")
    assert original.get("from") == "juliet@localhost/balcony"
    copy = await home.expect(carbon("received", "What man art thou?"), "the carbon")
    assert copy.get("from") == "romeo@localhost"
    assert copy.get("to") == "romeo@localhost/home"
    assert copy.get("type") == "chat"
    inner = _inner(copy, RECEIVED)
    assert inner is not None
    assert inner.get("from") == "juliet@localhost/balcony"
    assert inner.get("to") == "romeo@localhost/garden"
    assert inner.findtext("thread") == "0e3141cd"
    await nothing_more(server, garden, home, orchard)


async def test_a_sent_message_is_copied_to_the_senders_other_resources(
    server: XMPPServer,
) -> None:
    """§8, its example: Romeo answers from home; garden (carbons on) gets a <sent/>
    copy, home itself none, whether or not home enabled carbons."""
    garden, home, juliet = await online(
        server, "romeo@localhost/garden", "romeo@localhost/home", "juliet@localhost/balcony"
    )
    await enable(garden)
    home.send_xml(
        "<message to='juliet@localhost/balcony' type='chat'>"
        "<body>Neither, fair saint.</body></message>"
    )
    await juliet.expect(is_message("Neither, fair saint."), "the message")
    copy = await garden.expect(carbon("sent", "Neither, fair saint."), "the carbon")
    assert (copy.get("from"), copy.get("to"), copy.get("type")) == (
        "romeo@localhost",
        "romeo@localhost/garden",
        "chat",
    )
    inner = _inner(copy, SENT)
    assert inner is not None
    assert inner.get("from") == "romeo@localhost/home"
    assert inner.get("to") == "juliet@localhost/balcony"
    await enable(home)
    await nothing_more(server, garden, home, juliet)


async def test_a_message_to_the_bare_jid_reaches_the_others_as_a_carbon(
    server: XMPPServer,
) -> None:
    """RFC 6121 §8.5.2.1.1 delivers to the highest priority; the other enabled
    resource gets a carbon, the ones that got the message none."""
    garden, home, juliet = await online(
        server, "romeo@localhost/garden", "romeo@localhost/home", "juliet@localhost/balcony"
    )
    await enable(garden, home)
    garden.send_xml("<presence><priority>5</priority></presence>")
    home.send_xml("<presence><priority>1</priority></presence>")
    await settle(server, garden, home, juliet)
    for peer in (garden, home, juliet):
        await peer.drain()
    juliet.send(message("romeo@localhost", "To the bare JID"))
    await garden.expect(is_message("To the bare JID"))
    await home.expect(carbon("received", "To the bare JID"))
    # a tie: both get the message, and no carbons
    home.send_xml("<presence><priority>5</priority></presence>")
    await settle(server, garden, home, juliet)
    await garden.drain()
    await home.drain()
    juliet.send(message("romeo@localhost", "To both"))
    await garden.expect(is_message("To both"))
    await home.expect(is_message("To both"))
    await nothing_more(server, garden, home)


async def test_messages_that_make_no_carbons(server: XMPPServer) -> None:
    """§6: headline, normal without a body (a receipt), error; §9: <private/> and the
    XEP-0334 no-copy hint, with <private/> removed before delivery; and a message with
    a MUC user <x/> (a private message from a room occupant)."""
    garden, home, juliet, chamber = await online(
        server,
        "romeo@localhost/garden",
        "romeo@localhost/home",
        "juliet@localhost/balcony",
        "juliet@localhost/chamber",
    )
    await enable(garden, home, juliet, chamber)
    juliet.send_xml(
        "<message to='romeo@localhost/garden' type='headline'><body>news</body></message>"
    )
    juliet.send_xml(
        "<message to='romeo@localhost/garden'>"
        "<received xmlns='urn:xmpp:receipts' id='x1'/></message>"
    )
    juliet.send_xml(
        "<message to='romeo@localhost/garden' type='chat'><body>secret</body>"
        "<private xmlns='urn:xmpp:carbons:2'/></message>"
    )
    juliet.send_xml(
        "<message to='romeo@localhost/garden' type='chat'><body>hinted</body>"
        "<no-copy xmlns='urn:xmpp:hints'/></message>"
    )
    juliet.send_xml(
        "<message to='romeo@localhost/garden' type='chat'><body>from a room</body>"
        f"<x xmlns='{ns.MUC_USER}'/></message>"
    )
    secret = await garden.expect(is_message("secret"))
    assert secret.find(PRIVATE) is None  # §9: removed before delivery
    for body in ("news", "hinted", "from a room"):
        await garden.expect(is_message(body))
    # only the receiving side judges by the <x/>: what Juliet sent is a sent carbon
    await chamber.expect(carbon("sent", "from a room"))
    await nothing_more(server, garden, home, juliet, chamber)
    # a type-less message with a body is normal, and eligible: its copy has no type
    juliet.send_xml("<message to='romeo@localhost/garden'><body>plain</body></message>")
    copy = await home.expect(carbon("received", "plain"))
    assert copy.get("type") is None
    await chamber.expect(carbon("sent", "plain"))


async def test_room_messages_make_no_received_carbons(server: XMPPServer) -> None:
    """§6: nothing sent by a MUC room is copied, not even a private message from an
    occupant; Romeo's own private message to an occupant is a sent carbon."""
    garden, home, juliet = await online(
        server, "romeo@localhost/garden", "romeo@localhost/home", "juliet@localhost/balcony"
    )
    await enable(garden, home)
    room = "verona@conference.localhost"
    for peer, nick in ((garden, "romeo"), (juliet, "juliet")):
        peer.send_xml(f"<presence to='{room}/{nick}'><x xmlns='{ns.MUC}'/></presence>")
        await peer.expect(
            lambda s: s.name == "message" and s.find(ns.clark(ns.CLIENT, "subject")) is not None,
            "the subject at the end of the join",
        )
        if peer is garden:  # XEP-0045 §10.1.2: the creator accepts an instant room
            instant = Element("iq", ns.CLIENT, {"type": "set", "to": room})
            query = Element("query", ns.MUC_OWNER)
            query.append(Element("x", ns.DATA_FORMS, {"type": "submit"}))
            instant.append(query)
            await garden.iq(instant)
    juliet.send_xml(f"<message to='{room}' type='groupchat'><body>all of you</body></message>")
    await garden.expect(is_message("all of you"))
    juliet.send_xml(f"<message to='{room}/romeo' type='chat'><body>only you</body></message>")
    pm = await garden.expect(is_message("only you"))
    assert pm.get("from") == f"{room}/juliet"
    await nothing_more(server, garden, home)
    garden.send_xml(f"<message to='{room}/juliet' type='chat'><body>and you</body></message>")
    await juliet.expect(is_message("and you"))
    await home.expect(carbon("sent", "and you"))


async def test_a_message_stored_offline_makes_no_carbon(server: XMPPServer) -> None:
    """A message for an account with no available resource is stored (XEP-0160) and
    makes no carbon, not even for a bound resource with carbons on: that resource gets
    it once, from storage, when it becomes available."""
    home = await Peer.connect(server, "romeo@localhost/home")  # bound, no presence
    [juliet] = await online(server, "juliet@localhost/balcony")
    await enable(home)
    juliet.send(message("romeo@localhost", "while you sleep"))
    await settle(server, home, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 1
    await nothing_more(server, home)
    home.presence()
    await home.expect(is_message("while you sleep"), "the stored message")
    await settle(server, home)
    assert [s for s in await home.drain() if s.name == "message"] == []


async def test_every_private_element_is_removed(server: XMPPServer) -> None:
    """§9: the server SHOULD remove <private/> before delivering: all of them, on every
    resource the message reaches."""
    garden, home, juliet = await online(
        server, "romeo@localhost/garden", "romeo@localhost/home", "juliet@localhost/balcony"
    )
    await enable(garden, home)
    private = "<private xmlns='urn:xmpp:carbons:2'/>"
    juliet.send_xml(
        f"<message to='romeo@localhost' type='chat'>{private}<body>twice</body>{private}</message>"
    )
    for peer in (garden, home):
        got = await peer.expect(is_message("twice"))
        assert got.find(PRIVATE) is None, got.serialize()
    await nothing_more(server, garden, home)


async def test_carbons_end_with_the_session(server: XMPPServer) -> None:
    """Enabling lasts as long as the session: a new session with the same resource
    starts without carbons."""
    garden, home, juliet = await online(
        server, "romeo@localhost/garden", "romeo@localhost/home", "juliet@localhost/balcony"
    )
    await enable(home)
    await home.close()
    [home] = await online(server, "romeo@localhost/home")
    juliet.send(message("romeo@localhost/garden", "again"))
    await garden.expect(is_message("again"))
    await nothing_more(server, home)


async def test_slixmpp_clients_receive_both_kinds_of_carbon(server: XMPPServer) -> None:
    """Interop: slixmpp's xep_0280 plugin enables carbons and raises carbon_received and
    carbon_sent for our copies (it checks they come from its own bare JID)."""
    from tests.server.conftest import slix_close, slix_connect

    garden = await slix_connect(
        server, "romeo@localhost/garden", plugins=("xep_0030", "xep_0297", "xep_0280")
    )
    home = await slix_connect(server, "romeo@localhost/home")
    juliet = await slix_connect(server, "juliet@localhost/balcony")
    events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def on_carbon(kind: str) -> Any:
        def handler(msg: Any) -> None:
            events.put_nowait((kind, str(msg[f"carbon_{kind}"]["body"])))

        return handler

    garden.add_event_handler("carbon_received", on_carbon("received"))
    garden.add_event_handler("carbon_sent", on_carbon("sent"))
    for client in (garden, home, juliet):
        client.send_presence()
    await garden.plugin["xep_0280"].enable(timeout=10)
    juliet.send_message(mto="romeo@localhost/home", mbody="hello home", mtype="chat")
    assert await asyncio.wait_for(events.get(), 10) == ("received", "hello home")
    home.send_message(mto="juliet@localhost/balcony", mbody="hello juliet", mtype="chat")
    assert await asyncio.wait_for(events.get(), 10) == ("sent", "hello juliet")
    for client in (garden, home, juliet):
        await slix_close(client)


async def test_a_request_that_outlives_its_session_enables_nothing(server: XMPPServer) -> None:
    """An enable request can wait behind other work for the account; if its session
    has ended by then, nothing is enabled (the module would keep the dead session)."""
    from xmppx.core import parse_jid
    from xmppx.errors import StanzaError
    from xmppx.modules._base import IqRequest
    from xmppx.modules.carbons import Carbons

    [romeo] = await online(server, "romeo@localhost/garden")
    [session] = server.sessions.resources(parse_jid("romeo@localhost"))
    await romeo.close()
    for _ in range(200):  # bounded: the server ends the session once it reads the close
        if not server.sessions.resources(session.jid.bare):
            break
        await asyncio.sleep(0.05)
    assert not server.sessions.resources(session.jid.bare)
    carbons = next(m for m in server.modules if isinstance(m, Carbons))
    request = IqRequest(
        stanza=carbons_iq("enable"), sender=session.jid, session=session, account=None
    )
    try:
        carbons.on_set(request)
        raise AssertionError("a request of an ended session must fail")
    except StanzaError as exc:
        assert exc.condition == "not-allowed"
    assert not carbons.enabled(session)
