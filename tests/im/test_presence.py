"""RFC 6121 §4 end to end: initial presence, probes, broadcasts, updates, unavailable
on logout and on connection loss, directed presence, priorities."""

from __future__ import annotations

from typing import Any

from tests.im.conftest import (
    Peer,
    befriend,
    is_message,
    is_presence,
    message,
    online,
    presence,
    settle,
)
from xmppx import ns
from xmppx.core import Element
from xmppx.server import XMPPServer

CAPS = "http://jabber.org/protocol/caps"


def rich_presence() -> Element:
    """§4.7: show, two statuses in different languages, priority, and XEP-0115 caps."""
    p = presence()
    p.append(Element("show", ns.CLIENT, text="away"))
    p.append(Element("status", ns.CLIENT, {"{" + ns.XML + "}lang": "en"}, text="at the ball"))
    p.append(Element("status", ns.CLIENT, {"{" + ns.XML + "}lang": "fr"}, text="au bal"))
    p.append(Element("priority", ns.CLIENT, text="5"))
    p.append(
        Element(
            "c",
            CAPS,
            {"hash": "sha-1", "node": "https://example.org", "ver": "QgayPKawpkPSDYmwT/WM94uAlu0="},
        )
    )
    return p


def assert_rich(p: Element) -> None:
    assert p.findtext("show") == "away"
    langs = {
        s.get("{" + ns.XML + "}lang"): s.text for s in p.findall(ns.clark(ns.CLIENT, "status"))
    }
    assert langs == {"en": "at the ball", "fr": "au bal"}
    assert p.findtext("priority") == "5"
    caps = p.find(ns.clark(CAPS, "c"))
    assert caps is not None and caps.get("ver") == "QgayPKawpkPSDYmwT/WM94uAlu0="


async def test_initial_presence_probes_and_broadcast(server: XMPPServer) -> None:
    """§4.2: Juliet is online first; Romeo's initial presence reaches her, and her
    server answers his probe with her full presence (show, statuses, caps intact)."""
    await befriend(server, "romeo", "juliet")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.send(rich_presence())
    own = await juliet.expect(is_presence("juliet@localhost/balcony"), "her own presence")
    assert_rich(own)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    assert_rich(await romeo.expect(is_presence("juliet@localhost/balcony"), "the probe answer"))
    await juliet.expect(is_presence("romeo@localhost/orchard"), "his initial presence")
    # §4.4: an update reaches the contact
    romeo.send_xml("<presence><show>chat</show></presence>")
    update = await juliet.expect(
        lambda s: is_presence("romeo@localhost/orchard")(s) and s.findtext("show") == "chat"
    )
    assert update.get("to") == "juliet@localhost"
    await romeo.close()
    await juliet.close()


async def test_a_type_available_is_taken_as_availability_and_not_passed_on(
    server: XMPPServer,
) -> None:
    """§4.7.1: 'available' is no value of 'type' (availability is its absence).  An old
    client's ``<presence type='available'/>`` is its initial presence, and contacts
    get it without the invalid attribute, as broadcast and as directed presence."""
    await befriend(server, "romeo", "juliet")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    await juliet.expect(is_presence("juliet@localhost/balcony"), "her own presence")
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send_xml("<presence type='available'><status>typed</status></presence>")
    broadcast = await juliet.expect(is_presence("romeo@localhost/orchard"), "his presence")
    assert broadcast.get("type") is None and broadcast.findtext("status") == "typed"
    romeo.send_xml(
        "<presence type='available' to='juliet@localhost/balcony'><show>dnd</show></presence>"
    )
    directed = await juliet.expect(
        lambda s: is_presence("romeo@localhost/orchard")(s) and s.findtext("show") == "dnd"
    )
    assert directed.get("type") is None
    await romeo.close()
    await juliet.close()


async def test_probe_of_an_offline_contact_gives_last_activity(make_server: Any) -> None:
    """§4.3.2: an offline contact answers with unavailable presence, the time and status
    of her last logout (XEP-0203 delay)."""
    server = await make_server()
    await befriend(server, "romeo", "juliet")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    await settle(server, juliet)
    juliet.send_xml("<presence type='unavailable'><status>Gone to bed</status></presence>")
    await juliet.expect(is_presence("juliet@localhost/balcony", "unavailable"))
    await juliet.close()
    await settle(server)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    gone = await romeo.expect(is_presence("juliet@localhost", "unavailable"), "her last presence")
    assert gone.get("from") == "juliet@localhost"
    assert gone.findtext("status") == "Gone to bed"
    delay = gone.find(ns.clark(ns.DELAY, "delay"))
    assert delay is not None and delay.get("stamp", "").endswith("Z")
    await romeo.close()


async def test_contacts_coming_and_going_in_any_order(make_server: Any) -> None:
    """Three users: whoever comes second sees the first, whoever leaves (cleanly or by
    a dropped connection) is seen going; 'from'-only contacts get presence one way."""
    server = await make_server(users=("romeo", "juliet", "nurse"))
    await befriend(server, "romeo", "juliet")
    await befriend(server, "nurse", "juliet", "to")  # the nurse sees Juliet, not back
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    nurse = await Peer.connect(server, "nurse@localhost/kitchen")
    nurse.presence()
    juliet.presence()
    await nurse.expect(is_presence("juliet@localhost/balcony"), "Juliet, to the nurse")
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    await romeo.expect(is_presence("juliet@localhost/balcony"), "Juliet, to Romeo")
    await juliet.expect(is_presence("romeo@localhost/orchard"), "Romeo, to Juliet")
    # Romeo leaves cleanly with a status
    romeo.send_xml("<presence type='unavailable'><status>parting</status></presence>")
    gone = await juliet.expect(is_presence("romeo@localhost/orchard", "unavailable"))
    assert gone.findtext("status") == "parting"
    await romeo.close()
    # Romeo again, then Juliet's connection drops without a word
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    await romeo.expect(is_presence("juliet@localhost/balcony"))
    juliet.abort()
    await romeo.expect(is_presence("juliet@localhost/balcony", "unavailable"), "drop seen")
    await nurse.expect(is_presence("juliet@localhost/balcony", "unavailable"), "by both")
    # Juliet back: Romeo and the nurse see her; she is probed back by Romeo only
    juliet = await Peer.connect(server, "juliet@localhost/chamber")
    juliet.presence()
    await romeo.expect(is_presence("juliet@localhost/chamber"))
    await nurse.expect(is_presence("juliet@localhost/chamber"))
    await juliet.expect(is_presence("romeo@localhost/orchard"), "probe answer from Romeo")
    await settle(server, juliet, nurse, romeo)
    assert not [s for s in await juliet.drain() if is_presence("nurse@localhost")(s)], (
        "the nurse has no subscription from Juliet: her presence is not sent to Juliet"
    )
    await romeo.close()
    await nurse.close()
    await juliet.close()


async def test_own_resources_see_each_other(server: XMPPServer) -> None:
    """§4.2.2: initial presence goes to the user's other resources, and (the user being
    implicitly subscribed to itself) the new resource gets theirs."""
    first = await Peer.connect(server, "romeo@localhost/orchard")
    first.send(rich_presence())
    await first.expect(is_presence("romeo@localhost/orchard"), "own presence reflected")
    second = await Peer.connect(server, "romeo@localhost/garden")
    second.presence()
    await first.expect(is_presence("romeo@localhost/garden"))
    await second.expect(is_presence("romeo@localhost/garden"))
    theirs = await second.expect(is_presence("romeo@localhost/orchard"), "the other resource")
    assert theirs.get("to") == "romeo@localhost/garden"
    assert_rich(theirs)
    # only the initial presence brings them: an update of the new resource does not
    second.send_xml("<presence><show>chat</show></presence>")
    await first.expect(is_presence("romeo@localhost/garden"))
    await settle(server, first, second)
    again = [s for s in await second.drain() if is_presence("romeo@localhost/orchard")(s)]
    assert not again, [s.serialize() for s in again]
    second.abort()
    await first.expect(is_presence("romeo@localhost/garden", "unavailable"))
    await first.close()


async def test_directed_presence_is_cleaned_up(server: XMPPServer) -> None:
    """§4.6: no subscription; directed presence reaches Juliet, and when Romeo's
    connection is lost her client learns he is gone."""
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    romeo.presence()
    romeo.presence(to="juliet@localhost")
    await juliet.expect(is_presence("romeo@localhost/orchard"), "directed presence")
    romeo.abort()
    await juliet.expect(is_presence("romeo@localhost/orchard", "unavailable"), "the cleanup")
    # a directed unavailable ends the tracking: nothing more when the session ends later
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence(to="juliet@localhost/balcony")
    await juliet.expect(is_presence("romeo@localhost/orchard"))
    romeo.presence(to="juliet@localhost/balcony", type_="unavailable")
    await juliet.expect(is_presence("romeo@localhost/orchard", "unavailable"))
    await romeo.close()
    await settle(server, juliet)
    left = [s.serialize() for s in await juliet.drain() if is_presence("romeo@localhost")(s)]
    assert not left, left
    await juliet.close()


async def test_directed_presence_to_a_subscribers_quiet_resource_is_ended_too(
    server: XMPPServer,
) -> None:
    """§4.6.3: Juliet is Romeo's subscriber; her balcony is available, her chamber is
    connected without having sent presence.  Romeo sends the chamber directed presence,
    then goes offline: the balcony learns it from the broadcast, the chamber, which the
    broadcast to her bare JID does not reach, from the directed unavailable."""
    await befriend(server, "romeo", "juliet")
    [balcony] = await online(server, "juliet@localhost/balcony")
    chamber = await Peer.connect(server, "juliet@localhost/chamber")
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    await balcony.expect(is_presence("romeo@localhost/orchard"), "his broadcast")
    romeo.presence(to="juliet@localhost/chamber")
    await chamber.expect(is_presence("romeo@localhost/orchard"), "directed presence")
    romeo.presence(type_="unavailable")
    await balcony.expect(is_presence("romeo@localhost/orchard", "unavailable"), "broadcast")
    await chamber.expect(is_presence("romeo@localhost/orchard", "unavailable"), "directed")
    await settle(server, balcony, romeo)
    left = [s for s in await balcony.drain() if is_presence("romeo@localhost/orchard")(s)]
    assert not left, "the balcony is told once"
    for peer in (romeo, balcony, chamber):
        await peer.close()


async def test_directed_presence_is_bounded_per_session(make_server: Any) -> None:
    """``presence.max_directed``: each JID given directed presence is remembered until
    the session ends (§4.6.3); one more than the limit is refused with
    policy-violation, while those already remembered, and unavailable presence, go on."""
    server = await make_server(presence__max_directed=2)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    romeo.presence()
    romeo.presence(to="juliet@localhost/balcony")
    romeo.presence(to="nurse@localhost")
    romeo.presence(to="tybalt@localhost")
    refused = await romeo.expect(lambda s: s.get("type") == "error", "the refusal")
    assert refused.get("from") == "tybalt@localhost"
    assert b"policy-violation" in refused.serialize()
    romeo.send_xml("<presence to='juliet@localhost/balcony'><show>away</show></presence>")
    await juliet.expect(is_presence("romeo@localhost/orchard"), "directed presence")
    got = await juliet.expect(is_presence("romeo@localhost/orchard"), "the update")
    assert got.findtext("show") == "away"
    romeo.presence(to="juliet@localhost/balcony", type_="unavailable")
    await juliet.expect(is_presence("romeo@localhost/orchard", "unavailable"))
    romeo.presence(to="tybalt@localhost")  # a place again
    await settle(server, romeo)
    assert not [s for s in await romeo.drain() if s.get("type") == "error"]
    await romeo.close()
    await juliet.close()


async def test_priority_routing_with_two_resources(server: XMPPServer) -> None:
    """§4.7.2.3, §8.5.2.1.1: a message to the bare JID goes to the highest non-negative
    priority; all resources negative means offline storage."""
    juliet = await Peer.connect(server, "juliet@localhost/nurse")
    a = await Peer.connect(server, "romeo@localhost/a")
    b = await Peer.connect(server, "romeo@localhost/b")
    a.send_xml("<presence><priority>5</priority></presence>")
    b.send_xml("<presence><priority>1</priority></presence>")
    await settle(server, a, b)
    juliet.send(message("romeo@localhost", "one"))
    await a.expect(is_message("one"), "to the priority-5 resource")
    b.send_xml("<presence><priority>10</priority></presence>")
    await settle(server, a, b)
    juliet.send(message("romeo@localhost", "two"))
    await b.expect(is_message("two"), "now to b")
    a.send_xml("<presence><priority>-1</priority></presence>")
    b.send_xml("<presence><priority>-1</priority></presence>")
    await settle(server, a, b)
    juliet.send(message("romeo@localhost", "three"))
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 1, "stored offline"
    a.send_xml("<presence><priority>0</priority></presence>")
    stored = await a.expect(is_message("three"), "delivered when a priority goes >= 0")
    assert stored.find(ns.clark(ns.DELAY, "delay")) is not None
    for p in (a, b, juliet):
        await p.close()


async def test_probe_from_a_stranger_is_refused(server: XMPPServer) -> None:
    """§4.3.2: no subscription, no presence: the probe is answered 'unsubscribed'."""
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    romeo.presence(to="juliet@localhost", type_="probe")
    await settle(server, romeo, juliet)
    got = await romeo.drain()
    assert not [s for s in got if is_presence("juliet@localhost/balcony")(s)]
    await romeo.close()
    await juliet.close()


async def test_presence_error_reaches_the_sender(server: XMPPServer) -> None:
    """§4.6, RFC 6120 §8.3: a presence error from a contact's client is delivered."""
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    juliet.send_xml(
        "<presence to='romeo@localhost' type='error'><error type='cancel'>"
        "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    )
    err = await romeo.expect(is_presence("juliet@localhost/balcony", "error"))
    assert b"not-acceptable" in err.serialize()
    await romeo.close()
    await juliet.close()


async def test_message_to_a_resource_that_is_not_there(server: XMPPServer) -> None:
    """§8.5.3.2.1: a chat message to a full JID with no such resource goes to the
    account (here its one available resource); a normal one is bounced with
    service-unavailable, also when nobody is online (not stored offline), and a headline
    is dropped."""
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.presence()
    await settle(server, romeo)
    juliet.send(message("romeo@localhost/gone", "chat"))
    await romeo.expect(is_message("chat"), "the chat message, at the other resource")
    juliet.send(message("romeo@localhost/gone", "normal", "normal"))
    err = await juliet.expect(lambda s: s.name == "message" and s.get("type") == "error")
    assert err.get("from") == "romeo@localhost/gone"
    assert b"service-unavailable" in err.serialize()
    juliet.send(message("romeo@localhost/gone", "headline", "headline"))
    await settle(server, juliet, romeo)
    assert not [s for s in await romeo.drain() if is_message()(s)]
    assert not [s for s in await juliet.drain() if s.name == "message"]
    await romeo.close()
    await settle(server, juliet)
    untyped = Element("message", ns.CLIENT, {"to": "romeo@localhost/gone"})
    untyped.append(Element("body", ns.CLIENT, text="no type: normal"))
    juliet.send(untyped)
    await juliet.expect(lambda s: s.name == "message" and s.get("type") == "error", "a bounce")
    assert await server.storage.offline.count("romeo@localhost") == 0
    await juliet.close()
