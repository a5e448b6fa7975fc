"""vcard-temp (XEP-0054), private XML storage (XEP-0049), last activity (XEP-0012) and
the features the server lists for them (XEP-0030)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.im.conftest import Peer, befriend, settle
from tests.server.conftest import slix_close, slix_connect
from xmppx import ns
from xmppx.client import IqError
from xmppx.core import Element, parse
from xmppx.server import XMPPServer


def iq(type_: str, payload: str, to: str | None = None) -> Element:
    attrs = {"type": type_}
    if to:
        attrs["to"] = to
    stanza = Element("iq", ns.CLIENT, attrs)
    stanza.append(parse(payload.encode()))
    return stanza


async def condition(peer: Peer, stanza: Element) -> str:
    with pytest.raises(IqError) as info:
        await peer.iq(stanza)
    return info.value.condition


async def test_vcard_round_trip_with_slixmpp(server: XMPPServer) -> None:
    juliet = await slix_connect(server, "juliet@localhost/balcony", plugins=("xep_0054",))
    vcard = juliet.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Juliet Capulet"
    vcard["NICKNAME"] = "Jules"
    await juliet.plugin["xep_0054"].publish_vcard(vcard, timeout=5)
    own = await juliet.plugin["xep_0054"].get_vcard(cached=False, local=False, timeout=5)
    assert own["vcard_temp"]["FN"] == "Juliet Capulet"
    romeo = await slix_connect(server, "romeo@localhost/orchard", plugins=("xep_0054",))
    theirs = await romeo.plugin["xep_0054"].get_vcard(
        "juliet@localhost", cached=False, local=False, timeout=5
    )
    assert "Jules" in theirs["vcard_temp"]["NICKNAME"]
    await slix_close(romeo)
    await slix_close(juliet)


async def test_vcard_rules(server: XMPPServer) -> None:
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    empty = await romeo.iq(iq("get", "<vCard xmlns='vcard-temp'/>"))
    card = empty.find(ns.clark(ns.VCARD, "vCard"))
    assert card is not None and len(card) == 0, "no vCard yet: an empty one"
    # XEP-0054 §3.1: an account without a vCard answers as one that does not exist
    for who in ("juliet@localhost", "nobody@localhost"):
        get = iq("get", "<vCard xmlns='vcard-temp'/>", who)
        assert await condition(romeo, get) == "service-unavailable", who
    assert (
        await condition(
            romeo, iq("set", "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>", "juliet@localhost")
        )
        == "forbidden"
    )
    big = "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + "A" * 140_000 + "</BINVAL></PHOTO></vCard>"
    assert await condition(romeo, iq("set", big)) == "not-acceptable"
    await romeo.close()


async def test_private_storage(server: XMPPServer) -> None:
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await romeo.iq(
        iq(
            "set",
            "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'>"
            "<defaultnick>Hamlet</defaultnick></exodus></query>",
        )
    )
    res = await romeo.iq(
        iq("get", "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query>")
    )
    assert b"<defaultnick>Hamlet</defaultnick>" in res.serialize()
    none = await romeo.iq(
        iq("get", "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>")
    )
    assert b"<storage xmlns='storage:bookmarks'/>" in none.serialize()
    for reserved in ("jabber:x:data", "vcard-temp", "http://jabber.org/protocol/muc"):
        payload = f"<query xmlns='jabber:iq:private'><x xmlns='{reserved}'/></query>"
        assert await condition(romeo, iq("set", payload)) == "not-acceptable", reserved
    assert (
        await condition(romeo, iq("get", "<query xmlns='jabber:iq:private'/>")) == "not-acceptable"
    )
    other = "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query>"
    assert await condition(romeo, iq("get", other, "juliet@localhost")) == "forbidden"
    await romeo.close()


async def test_last_activity(make_server: Any) -> None:
    server = await make_server(users=("romeo", "juliet", "tybalt"))
    await befriend(server, "romeo", "juliet")
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    uptime = await romeo.iq(iq("get", "<query xmlns='jabber:iq:last'/>", "localhost"))
    assert int(uptime.find(ns.clark(ns.LAST, "query")).get("seconds")) >= 0  # type: ignore[union-attr,arg-type]
    last = "<query xmlns='jabber:iq:last'/>"
    assert await condition(romeo, iq("get", last, "juliet@localhost")) == "item-not-found"
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    juliet.presence()
    await settle(server, juliet)
    online = await romeo.iq(iq("get", last, "juliet@localhost"))
    assert online.find(ns.clark(ns.LAST, "query")).get("seconds") == "0"  # type: ignore[union-attr]
    juliet.send_xml("<presence type='unavailable'><status>Heading Home</status></presence>")
    await juliet.close()
    await settle(server)
    res = await romeo.iq(iq("get", last, "juliet@localhost"))
    q = res.find(ns.clark(ns.LAST, "query"))
    assert q is not None and q.text == "Heading Home" and int(q.get("seconds") or "-1") >= 0
    # a stranger may not know
    tybalt = await Peer.connect(server, "tybalt@localhost/street")
    assert await condition(tybalt, iq("get", last, "juliet@localhost")) == "forbidden"
    await tybalt.close()
    await romeo.close()


async def test_disco_features_and_stream_features(server: XMPPServer) -> Any:
    client = await slix_connect(server, "romeo@localhost", plugins=("xep_0030",))
    info = await client.plugin["xep_0030"].get_info(jid="localhost", timeout=5)
    features = set(info["disco_info"]["features"])
    assert {
        "urn:xmpp:blocking",
        "vcard-temp",
        "jabber:iq:private",
        "jabber:iq:last",
        "msgoffline",
    } <= features
    # an account's own (XEP-0030 §8 answers others only if it shares presence with them)
    account = await client.plugin["xep_0030"].get_info(jid="romeo@localhost", timeout=5)
    assert {"vcard-temp", "jabber:iq:last"} <= set(account["disco_info"]["features"])
    # RFC 6121 §2.6.1 roster versioning and §3.4 pre-approval stream features
    assert "rosterver" in client.features
    assert "preapproval" in client.features
    await slix_close(client)
    await asyncio.sleep(0)


async def test_size_limits_are_configurable(make_server: Any) -> None:
    """``vcard.max_bytes`` and ``private.max_bytes``: larger is not-acceptable, up to
    the limit is stored."""
    server = await make_server(vcard__max_bytes=200, private__max_bytes=200)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    small = "<vCard xmlns='vcard-temp'><FN>" + "x" * 100 + "</FN></vCard>"
    await romeo.iq(iq("set", small))
    large = "<vCard xmlns='vcard-temp'><FN>" + "x" * 200 + "</FN></vCard>"
    assert await condition(romeo, iq("set", large)) == "not-acceptable"
    fits = "<query xmlns='jabber:iq:private'><n xmlns='urn:n'>" + "y" * 100 + "</n></query>"
    await romeo.iq(iq("set", fits))
    over = "<query xmlns='jabber:iq:private'><n xmlns='urn:n'>" + "y" * 200 + "</n></query>"
    assert await condition(romeo, iq("set", over)) == "not-acceptable"
    await romeo.close()


async def test_private_storage_has_a_quota_per_account(make_server: Any) -> None:
    """``private.quota_bytes``: all of one account's fragments together; a set beyond
    it is not-acceptable and stores none of its fragments, while replacing a fragment
    counts only its new size."""
    server = await make_server(private__max_bytes=300, private__quota_bytes=500)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")

    def fragment(ns_: str, size: int) -> str:
        return f"<f xmlns='urn:{ns_}'>" + "y" * size + "</f>"

    for name in ("a", "b", "c"):
        await romeo.iq(iq("set", f"<query xmlns='jabber:iq:private'>{fragment(name, 130)}</query>"))
    refused = f"<query xmlns='jabber:iq:private'>{fragment('a', 10)}{fragment('d', 180)}</query>"
    assert await condition(romeo, iq("set", refused)) == "not-acceptable"
    got = await romeo.iq(iq("get", "<query xmlns='jabber:iq:private'><f xmlns='urn:a'/></query>"))
    stored = got.serialize()
    assert b">" + b"y" * 130 + b"</f>" in stored, "the refused set stored nothing"
    await romeo.iq(iq("set", f"<query xmlns='jabber:iq:private'>{fragment('a', 140)}</query>"))
    juliet = await Peer.connect(server, "juliet@localhost/balcony")  # her own quota
    await juliet.iq(iq("set", f"<query xmlns='jabber:iq:private'>{fragment('d', 130)}</query>"))
    await romeo.close()
    await juliet.close()


async def test_a_lowered_private_quota_still_lets_an_account_shrink(make_server: Any) -> None:
    """An operator lowers ``private.quota_bytes`` below what an account keeps: a set
    that makes its fragments smaller still passes (XEP-0049 has no delete, so this is how
    it gets back under), one that makes them larger does not."""
    server = await make_server(private__max_bytes=300, private__quota_bytes=500)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")

    def query(name: str, size: int) -> str:
        fragment = f"<f xmlns='urn:{name}'>" + "y" * size + "</f>"
        return f"<query xmlns='jabber:iq:private'>{fragment}</query>"

    for name in ("a", "b", "c"):
        await romeo.iq(iq("set", query(name, 130)))
    await romeo.close()
    await server.stop()

    server = await make_server(users=(), private__max_bytes=300, private__quota_bytes=400)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await romeo.iq(iq("set", query("a", 80)))  # over the quota still, but smaller
    assert await condition(romeo, iq("set", query("a", 90))) == "not-acceptable"
    await romeo.close()
