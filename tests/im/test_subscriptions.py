"""RFC 6121 §3 end to end: the subscription handshake, cancellations, pre-approval,
requests kept for offline users, and Appendix A rows over real streams."""

from __future__ import annotations

from typing import Any

from tests.im.conftest import Peer, is_presence, is_push, roster_set, settle
from xmppx.server import XMPPServer


async def _online_pair(server: XMPPServer) -> tuple[Peer, Peer]:
    """Romeo and Juliet connected, their rosters requested, available."""
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await romeo.roster()
    await juliet.roster()
    romeo.presence()
    juliet.presence()
    return romeo, juliet


async def _mutual(server: XMPPServer, romeo: Peer, juliet: Peer) -> None:
    """The §3.1 handshake both ways, ending in 'both' on both rosters."""
    await romeo.roster()
    await juliet.roster()
    romeo.presence()
    juliet.presence()
    # §3.1.1-3.1.2: Romeo asks; his roster shows ask='subscribe'
    romeo.presence(to="juliet@localhost", type_="subscribe")
    await romeo.expect(
        is_push("juliet@localhost", subscription="none", ask="subscribe"), "ask push"
    )
    # §3.1.3: Juliet's server delivers the request from Romeo's bare JID
    req = await juliet.expect(is_presence("romeo@localhost", "subscribe"), "the request")
    assert req.get("from") == "romeo@localhost"
    # §3.1.5: Juliet approves; her roster gets 'from', Romeo's 'to', and he gets her presence
    juliet.presence(to="romeo@localhost", type_="subscribed")
    await juliet.expect(is_push("romeo@localhost", subscription="from"), "from push")
    await romeo.expect(is_push("juliet@localhost", subscription="to", ask=None), "to push")
    await romeo.expect(is_presence("juliet@localhost", "subscribed"), "the approval")
    await romeo.expect(is_presence("juliet@localhost/balcony"), "her presence (§3.1.5)")
    # and the other way round
    juliet.presence(to="romeo@localhost", type_="subscribe")
    await romeo.expect(is_presence("juliet@localhost", "subscribe"), "her request")
    romeo.presence(to="juliet@localhost", type_="subscribed")
    await romeo.expect(is_push("juliet@localhost", subscription="both"), "both push (Romeo)")
    await juliet.expect(is_push("romeo@localhost", subscription="both"), "both push (Juliet)")
    await juliet.expect(is_presence("romeo@localhost/orchard"), "his presence")
    await settle(server, romeo, juliet)


async def test_handshake_ends_in_both_on_both_rosters(server: XMPPServer) -> None:
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await _mutual(server, romeo, juliet)
    assert (await romeo.items())["juliet@localhost"]["subscription"] == "both"
    assert (await juliet.items())["romeo@localhost"]["subscription"] == "both"
    await romeo.close()
    await juliet.close()


async def test_approval_arrives_before_the_contacts_presence(server: XMPPServer) -> None:
    """§3.1.5-3.1.6 and RFC 6120 §10.1: Juliet's server sends her approval and then her
    presence; Romeo gets them in that order (a client that sees presence from someone
    not yet on its roster as 'to' may drop it)."""
    romeo, juliet = await _online_pair(server)
    romeo.presence(to="juliet@localhost", type_="subscribe")
    await juliet.expect(is_presence("romeo@localhost", "subscribe"), "the request")
    await settle(server, romeo, juliet)
    await romeo.drain()
    juliet.presence(to="romeo@localhost", type_="subscribed")
    await settle(server, romeo, juliet)
    got = await romeo.drain()
    approval = [i for i, s in enumerate(got) if is_presence("juliet@localhost", "subscribed")(s)]
    presence = [i for i, s in enumerate(got) if is_presence("juliet@localhost/balcony")(s)]
    assert approval and presence and approval[0] < presence[0], [s.serialize() for s in got]
    await romeo.close()
    await juliet.close()


async def test_cancelling_both_ways(server: XMPPServer) -> None:
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await _mutual(server, romeo, juliet)
    # §3.3: Romeo unsubscribes from Juliet's presence: he gets 'from', she gets 'to', and
    # her server sends him unavailable presence from her resources (§3.3.3)
    romeo.presence(to="juliet@localhost", type_="unsubscribe")
    await romeo.expect(is_push("juliet@localhost", subscription="from"), "from push")
    await juliet.expect(is_presence("romeo@localhost", "unsubscribe"), "his unsubscribe")
    await juliet.expect(is_push("romeo@localhost", subscription="to"), "to push")
    await romeo.expect(is_presence("juliet@localhost/balcony", "unavailable"), "unavailable")
    # §3.2: Juliet cancels his subscription to her... she has 'to' only now: Romeo
    # cancels hers instead (unsubscribed), ending in 'none' on both sides
    romeo.presence(to="juliet@localhost", type_="unsubscribed")
    await romeo.expect(is_push("juliet@localhost", subscription="none"), "none push")
    await juliet.expect(is_presence("romeo@localhost", "unsubscribed"), "unsubscribed")
    await juliet.expect(is_push("romeo@localhost", subscription="none"), "none push (Juliet)")
    await juliet.expect(is_presence("romeo@localhost/orchard", "unavailable"), "unavailable")
    await settle(server, romeo, juliet)
    assert (await romeo.items())["juliet@localhost"]["subscription"] == "none"
    assert (await juliet.items())["romeo@localhost"]["subscription"] == "none"
    await romeo.close()
    await juliet.close()


async def test_request_to_offline_user_waits_for_her_presence(server: XMPPServer) -> None:
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await romeo.roster()
    romeo.presence()
    romeo.presence(to="juliet@localhost", type_="subscribe")
    await romeo.expect(is_push("juliet@localhost", ask="subscribe"), "ask push")
    await settle(server, romeo)
    # §3.1.3: kept for her; not yet delivered to a session without presence...
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await settle(server, juliet)
    assert not [s for s in await juliet.drain() if s.name == "presence"]
    # ...delivered at her initial presence, and again at the next one while unanswered
    juliet.presence()
    await juliet.expect(is_presence("romeo@localhost", "subscribe"), "the stored request")
    await juliet.close()
    juliet = await Peer.connect(server, "juliet@localhost/chamber")
    juliet.presence()
    await juliet.expect(is_presence("romeo@localhost", "subscribe"), "again, unanswered")
    juliet.presence(to="romeo@localhost", type_="subscribed")
    await romeo.expect(is_push("juliet@localhost", subscription="to", ask=None), "to push")
    await romeo.expect(is_presence("juliet@localhost/chamber"), "her presence")
    await juliet.close()
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    await settle(server, juliet)
    assert not [s for s in await juliet.drain() if s.get("type") == "subscribe"], (
        "an answered request is not delivered again"
    )
    await romeo.close()
    await juliet.close()


async def test_an_approval_her_full_roster_refuses_keeps_the_request(
    make_server: Any,
) -> None:
    """Juliet's roster is full (``roster.max_items``) when she approves Romeo's request:
    the approval is refused (not-allowed) and the request stays stored (§3.1.3), so
    that once she has made room it is delivered to her again and she can approve it."""
    server = await make_server(roster__max_items=1)
    romeo, juliet = await _online_pair(server)
    juliet.send_xml(
        "<iq type='set' id='n1'><query xmlns='jabber:iq:roster'>"
        "<item jid='nurse@localhost'/></query></iq>"
    )
    await juliet.expect(lambda s: s.get("id") == "n1", "the nurse added")
    romeo.presence(to="juliet@localhost", type_="subscribe")
    await juliet.expect(is_presence("romeo@localhost", "subscribe"), "his request")
    juliet.presence(to="romeo@localhost", type_="subscribed")
    refused = await juliet.expect(lambda s: s.get("type") == "error", "the refusal")
    assert b"not-allowed" in refused.serialize()
    await settle(server, romeo, juliet)
    pending = await server.storage.roster.list_pending("juliet@localhost")
    assert [p.contact for p in pending] == ["romeo@localhost"]
    await juliet.close()
    chamber = await Peer.connect(server, "juliet@localhost/chamber")
    chamber.presence()
    await chamber.expect(is_presence("romeo@localhost", "subscribe"), "his request again")
    await chamber.close()
    await romeo.close()


async def test_pre_approval(server: XMPPServer) -> None:
    """§3.4: Juliet approves before Romeo asks; his request is answered by her server."""
    romeo, juliet = await _online_pair(server)
    juliet.presence(to="romeo@localhost", type_="subscribed")
    await juliet.expect(is_push("romeo@localhost", subscription="none", approved="true"))
    romeo.presence(to="juliet@localhost", type_="subscribe")
    await romeo.expect(is_presence("juliet@localhost", "subscribed"), "the automatic approval")
    await romeo.expect(is_push("juliet@localhost", subscription="to", ask=None), "to push")
    await romeo.expect(is_presence("juliet@localhost/balcony"), "her presence")
    await juliet.expect(is_push("romeo@localhost", subscription="from", approved=None))
    await settle(server, romeo, juliet)
    assert not [s for s in await juliet.drain() if s.get("type") == "subscribe"], (
        "a pre-approved request is not delivered"
    )
    await romeo.close()
    await juliet.close()


async def test_request_from_a_subscriber_is_answered_by_the_server(server: XMPPServer) -> None:
    """§A.3.1 '*': Juliet's roster already gives Romeo a subscription (his side lost
    track, say a lost stanza); her server answers 'subscribed' for her, without
    bothering her, and Romeo's roster catches up."""
    from xmppx.storage import RosterItem

    await server.storage.roster.put_item(
        "juliet@localhost", RosterItem(contact="romeo@localhost", subscription="from")
    )
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await romeo.roster()
    romeo.presence()
    romeo.presence(to="juliet@localhost", type_="subscribe")
    await romeo.expect(is_presence("juliet@localhost", "subscribed"), "the server's answer")
    await romeo.expect(is_push("juliet@localhost", subscription="to", ask=None))
    await romeo.expect(is_presence("juliet@localhost/balcony"), "her presence")
    await settle(server, romeo, juliet)
    assert not [s for s in await juliet.drain() if s.get("type") == "subscribe"]
    await romeo.close()
    await juliet.close()


async def test_roster_remove_cancels_both_ways(server: XMPPServer) -> None:
    """§2.5.2: removing the item unsubscribes and unsubscribeds the contact."""
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await _mutual(server, romeo, juliet)
    await romeo.iq(roster_set({"jid": "juliet@localhost", "subscription": "remove"}))
    await romeo.expect(is_push("juliet@localhost", subscription="remove"), "remove push")
    await juliet.expect(is_presence("romeo@localhost", "unsubscribe"))
    await juliet.expect(is_presence("romeo@localhost", "unsubscribed"))
    await juliet.expect(is_presence("romeo@localhost/orchard", "unavailable"))
    await juliet.expect(is_push("romeo@localhost", subscription="none"))
    await settle(server, romeo, juliet)
    assert "juliet@localhost" not in await romeo.items()
    assert (await juliet.items())["romeo@localhost"]["subscription"] == "none"
    await romeo.close()
    await juliet.close()


async def test_subscription_to_unknown_and_remote_contacts(server: XMPPServer) -> None:
    """§3.1.2: the user's roster changes first; then a request that cannot be delivered
    (no such local account, or a domain we cannot reach: no s2s yet) gets an error."""
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await romeo.roster()
    romeo.send_xml("<presence to='nobody@localhost' type='subscribe' id='sub1'/>")
    await romeo.expect(is_push("nobody@localhost", ask="subscribe"))
    err = await romeo.expect(is_presence("nobody@localhost", "error"), "the bounce")
    assert err.get("id") == "sub1" and err.get("to") == "romeo@localhost/orchard"
    assert b"service-unavailable" in err.serialize()
    # the other subscription stanzas to nobody are ignored, as before
    romeo.presence(to="nobody@localhost", type_="unsubscribe")
    await romeo.expect(is_push("nobody@localhost", ask=None), "the ask withdrawn")
    await settle(server, romeo)
    assert not [s for s in await romeo.drain() if is_presence("nobody@localhost", "error")(s)]
    romeo.presence(to="mercutio@example.org", type_="subscribe")
    await romeo.expect(is_push("mercutio@example.org", ask="subscribe"))
    err = await romeo.expect(is_presence("mercutio@example.org", "error"), "the bounce")
    assert b"remote-server-not-found" in err.serialize()
    await romeo.close()


async def _second_resource(server: XMPPServer, jid: str) -> Peer:
    """A resource that requested the roster but sent no presence: interested, not
    available (§2.2)."""
    peer = await Peer.connect(server, jid)
    await peer.roster()
    return peer


async def _delivered_before(
    server: XMPPServer, peers: tuple[Peer, ...], watched: tuple[Peer, ...], first: Any, then: Any
) -> None:
    """Once the server is done, each of ``watched`` got a stanza matching ``first``
    before one matching ``then``."""
    await settle(server, *peers)
    for peer in watched:
        got = await peer.drain()
        a = [i for i, s in enumerate(got) if first(s)]
        b = [i for i, s in enumerate(got) if then(s)]
        assert a and b and a[0] < b[0], (peer.jid, [s.serialize() for s in got])


async def test_approval_reaches_interested_resources_before_the_push(
    server: XMPPServer,
) -> None:
    """§3.1.6: Juliet's approval goes to every resource of Romeo that asked for the
    roster, the one that sent no presence too, before the roster push that records it."""
    romeo, juliet = await _online_pair(server)
    quiet = await _second_resource(server, "romeo@localhost/quiet")
    romeo.presence(to="juliet@localhost", type_="subscribe")
    await juliet.expect(is_presence("romeo@localhost", "subscribe"), "the request")
    await settle(server, romeo, juliet, quiet)
    await romeo.drain()
    await quiet.drain()
    juliet.presence(to="romeo@localhost", type_="subscribed")
    await _delivered_before(
        server,
        (romeo, juliet, quiet),
        (romeo, quiet),
        is_presence("juliet@localhost", "subscribed"),
        is_push("juliet@localhost", subscription="to"),
    )
    for peer in (romeo, juliet, quiet):
        await peer.close()


async def test_cancellation_reaches_interested_resources_before_the_push(
    server: XMPPServer,
) -> None:
    """§3.2.3 and §3.3.3: a cancellation (unsubscribed) and an unsubscribe are delivered
    to every interested resource before the roster push."""
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    await _mutual(server, romeo, juliet)
    quiet = await _second_resource(server, "romeo@localhost/quiet")
    await settle(server, romeo, juliet, quiet)
    await romeo.drain()
    await quiet.drain()
    peers = (romeo, juliet, quiet)
    for stype, left in (("unsubscribed", "from"), ("unsubscribe", "none")):
        juliet.presence(to="romeo@localhost", type_=stype)
        await _delivered_before(
            server,
            peers,
            (romeo, quiet),
            is_presence("juliet@localhost", stype),
            is_push("juliet@localhost", subscription=left),
        )
    for peer in (romeo, juliet, quiet):
        await peer.close()


def _e2e_rows() -> list[tuple[str, str, str, bool, str]]:
    from tests.im.test_appendix_a import ROWS

    return [(d, t, s, f, n) for d, t, s, f, n, _ in ROWS]


async def test_appendix_a_rows_end_to_end(server: XMPPServer) -> Any:
    """Every row of §A.2 and §A.3 against the running server.  The user's item is set up
    in storage; outbound rows are sent to a remote contact (a routed stanza comes back
    as a remote-server-not-found bounce, so 'route?' is visible); inbound rows arrive
    through the server's delivery path for server-made stanzas."""
    from tests.im.conftest import PASSWORD
    from xmppx import ns
    from xmppx.core import BareJID, Element
    from xmppx.modules.roster import item_state, state_parts
    from xmppx.server.accounts import create_account
    from xmppx.storage import RosterItem

    failures = []
    for i, (direction, stype, state, forward, new) in enumerate(_e2e_rows()):
        user = f"user{i}@localhost"
        contact = f"peer{i}@example.org" if direction == "outbound" else f"peer{i}@localhost"
        await create_account(server.storage, BareJID(user), PASSWORD)
        sub, ask, pending_in = state_parts(state)
        if sub != "none" or ask:
            await server.storage.roster.put_item(
                user, RosterItem(contact=contact, subscription=sub, ask=ask)
            )
        if pending_in:
            await server.storage.roster.put_pending(user, contact, b"<presence/>")
        peer = await Peer.connect(server, user + "/r")
        await peer.roster()
        peer.presence()
        await settle(server, peer)
        await peer.drain()
        stanza = Element(
            "presence",
            ns.CLIENT,
            {"to": user if direction == "inbound" else contact, "type": stype},
        )
        if direction == "outbound":
            peer.send(stanza)
        else:
            stanza.set("from", contact)
            server.deliver_to_account(stanza, BareJID(user))
        await settle(server, peer)
        got = await peer.drain()
        if direction == "outbound":
            forwarded = any(s.name == "presence" and s.get("type") == "error" for s in got)
        else:
            forwarded = any(s.name == "presence" and s.get("type") == stype for s in got)
        item = await server.storage.roster.get_item(user, contact)
        pending = {p.contact for p in await server.storage.roster.list_pending(user)}
        after = item_state(item, contact in pending)
        if (forwarded, after) != (forward, new):
            failures.append(
                f"{direction} {stype} in {state!r}: got {(forwarded, after)}, "
                f"the RFC says {(forward, new)}"
            )
        await peer.close()
    assert not failures, "\n".join(failures)


async def test_slixmpp_clients_subscribe_to_each_other(server: XMPPServer) -> None:
    """Interop: slixmpp's roster follows our pushes; its auto-authorize and
    auto-subscribe answer the requests, and both rosters end in 'both'."""
    import asyncio

    from tests.server.conftest import slix_close, slix_connect

    romeo = await slix_connect(server, "romeo@localhost/orchard")
    juliet = await slix_connect(server, "juliet@localhost/balcony")
    for client in (romeo, juliet):
        client.auto_authorize = True
        client.auto_subscribe = True
        await client.get_roster(timeout=5)
        client.send_presence()
    juliet.send_presence_subscription(pto="romeo@localhost")

    def sub(client: Any, contact: str) -> str:
        roster = client.client_roster
        return str(roster[contact]["subscription"]) if contact in roster else "-"

    for _ in range(200):  # bounded: 200 short waits for the exchange to finish
        if (sub(romeo, "juliet@localhost"), sub(juliet, "romeo@localhost")) == ("both", "both"):
            break
        await asyncio.sleep(0.05)
    assert (sub(romeo, "juliet@localhost"), sub(juliet, "romeo@localhost")) == ("both", "both")
    await settle(server)
    stored = await server.storage.roster.get_item("romeo@localhost", "juliet@localhost")
    assert stored is not None and stored.subscription == "both" and not stored.ask
    await slix_close(romeo)
    await slix_close(juliet)
