"""XEP-0030 service discovery on accounts' bare JIDs, which the server answers for the
account (RFC 6121 §8.5.1), and the privacy rules of XEP-0030 §8: an account tells
only those it shares presence with what it is, and whether it exists at all is not
told by the answer."""

from __future__ import annotations

from typing import Any

from tests.im.conftest import Peer, befriend
from xmppx import ns
from xmppx.client import IqError
from xmppx.core import Element

INFO_Q = ns.clark(ns.DISCO_INFO, "query")
ITEMS_Q = ns.clark(ns.DISCO_ITEMS, "query")


def _disco(kind: str, to: str, node: str | None = None) -> Element:
    iq = Element("iq", ns.CLIENT, {"type": "get", "to": to})
    iq.append(Element("query", kind, {"node": node} if node else {}))
    return iq


async def _answer(peer: Peer, kind: str, to: str, node: str | None = None) -> Element | str:
    """The query of the result, or the error condition."""
    try:
        result = await peer.iq(_disco(kind, to, node))
    except IqError as exc:
        return exc.condition
    query = result.find(ns.clark(kind, "query"))
    assert query is not None, result.serialize()
    return query


async def test_an_account_answers_only_those_it_shares_presence_with(make_server: Any) -> None:
    """XEP-0030 §8: disco#info and disco#items to the bare JID of an account that does
    not share its presence with the asker are service-unavailable, node or not, exactly
    as to one that does not exist (RFC 6121 §8.5.1: an iq to no account is
    service-unavailable)."""
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    for target in ("juliet@localhost", "nobody@localhost"):
        for kind in (ns.DISCO_INFO, ns.DISCO_ITEMS):
            assert await _answer(romeo, kind, target) == "service-unavailable", (kind, target)
            assert await _answer(romeo, kind, target, "urn:x") == "service-unavailable"
    # a subscription from romeo to juliet ('to' on romeo's side) is not enough: she
    # must share her presence with him ('from' or 'both' on hers)
    await befriend(server, "romeo", "juliet", "from")
    assert await _answer(romeo, ns.DISCO_INFO, "juliet@localhost") == "service-unavailable"
    await romeo.close()


async def test_a_contact_sharing_presence_sees_the_account(make_server: Any) -> None:
    server = await make_server()
    await befriend(server, "juliet", "romeo", "from")  # juliet shares hers with romeo
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    info = await _answer(romeo, ns.DISCO_INFO, "juliet@localhost")
    assert isinstance(info, Element)
    identity = info.find(ns.clark(ns.DISCO_INFO, "identity"))
    assert identity is not None
    assert (identity.get("category"), identity.get("type")) == ("account", "registered")
    assert await _answer(romeo, ns.DISCO_INFO, "juliet@localhost", "urn:x") == "item-not-found"
    await romeo.close()


async def test_an_account_lists_what_it_answers_for_itself(make_server: Any) -> None:
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    info = await _answer(romeo, ns.DISCO_INFO, "romeo@localhost")
    assert isinstance(info, Element)
    features = {f.get("var") for f in info.findall(ns.clark(ns.DISCO_INFO, "feature"))}
    assert {ns.DISCO_INFO, ns.DISCO_ITEMS, ns.PING, ns.LAST} <= features
    # each feature listed is answered on the bare JID
    ping = Element("iq", ns.CLIENT, {"type": "get", "to": "romeo@localhost"})
    ping.append(Element("ping", ns.PING))
    assert (await romeo.iq(ping)).get("type") == "result"
    items = await _answer(romeo, ns.DISCO_ITEMS, "romeo@localhost")
    assert isinstance(items, Element) and len(items) == 0
    await romeo.close()


#: Requests a user may send to another account's bare JID, each answered by the server
#: for the account (RFC 6121 §8.5.2), and what an account that the asker shares nothing
#: with answers: where a specification wants ``forbidden`` for someone else's data
#: (RFC 6121 §2.3.3, XEP-0049, XEP-0012), otherwise ``service-unavailable``.
_TO_AN_ACCOUNT = {
    "ping": ("get", "<ping xmlns='urn:xmpp:ping'/>", "service-unavailable"),
    "disco#info": (
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
        "service-unavailable",
    ),
    "disco#items": (
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#items'/>",
        "service-unavailable",
    ),
    "vcard set": ("set", "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>", "forbidden"),
    "vcard get": ("get", "<vCard xmlns='vcard-temp'/>", "service-unavailable"),
    "private get": (
        "get",
        "<query xmlns='jabber:iq:private'><p xmlns='urn:p'/></query>",
        "forbidden",
    ),
    "roster get": ("get", "<query xmlns='jabber:iq:roster'/>", "forbidden"),
    "blocklist": ("get", "<blocklist xmlns='urn:xmpp:blocking'/>", "forbidden"),
    "last activity": ("get", "<query xmlns='jabber:iq:last'/>", "forbidden"),
    "register get": ("get", "<query xmlns='jabber:iq:register'/>", "service-unavailable"),
    "unknown": ("get", "<query xmlns='urn:example:unknown'/>", "service-unavailable"),
}


async def test_an_iq_to_no_account_is_service_unavailable(make_server: Any) -> None:
    """RFC 6121 §8.5.1: "For an IQ stanza, the server MUST return a
    <service-unavailable/> stanza error to the sender" when the account does not exist,
    whatever the request.  An existing account the asker shares nothing with answers
    the same where no specification asks for ``forbidden`` (XEP-0030 §8: no directory
    harvesting), and nothing of it is revealed either way."""
    from xmppx.core import parse

    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")

    async def condition(to: str, kind: str, payload: str) -> str:
        stanza = Element("iq", ns.CLIENT, {"type": kind, "to": to, "id": "h1"})
        stanza.append(parse(payload.encode()))
        try:
            got = await romeo.iq(stanza)
        except IqError as exc:
            return exc.condition
        return "result: " + got.serialize().decode()

    for what, (kind, payload, stranger) in _TO_AN_ACCOUNT.items():
        assert await condition("nobody@localhost", kind, payload) == "service-unavailable", what
        assert await condition("juliet@localhost", kind, payload) == stranger, what
    await romeo.close()
