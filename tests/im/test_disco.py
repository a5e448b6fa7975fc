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
    """XEP-0030 §8: disco#info to the bare JID of an account that does not share its
    presence with the asker is service-unavailable, node or not, exactly as to one
    that does not exist; disco#items is an empty result in both cases."""
    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    for target in ("juliet@localhost", "nobody@localhost"):
        assert await _answer(romeo, ns.DISCO_INFO, target) == "service-unavailable"
        assert await _answer(romeo, ns.DISCO_INFO, target, "urn:x") == "service-unavailable"
        items = await _answer(romeo, ns.DISCO_ITEMS, target)
        assert isinstance(items, Element) and len(items) == 0, target
        with_node = await _answer(romeo, ns.DISCO_ITEMS, target, "urn:x")
        assert isinstance(with_node, Element) and len(with_node) == 0, target
        assert with_node.get("node") == "urn:x"
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
#: for the account (RFC 6121 §8.5.1), the answer of each pinned below.
_TO_AN_ACCOUNT = {
    "ping": ("get", "<ping xmlns='urn:xmpp:ping'/>"),
    "vcard set": ("set", "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>"),
    "vcard get": ("get", "<vCard xmlns='vcard-temp'/>"),
    "private get": ("get", "<query xmlns='jabber:iq:private'><p xmlns='urn:p'/></query>"),
    "roster get": ("get", "<query xmlns='jabber:iq:roster'/>"),
    "blocklist": ("get", "<blocklist xmlns='urn:xmpp:blocking'/>"),
    "last activity": ("get", "<query xmlns='jabber:iq:last'/>"),
    "register get": ("get", "<query xmlns='jabber:iq:register'/>"),
    "unknown": ("get", "<query xmlns='urn:example:unknown'/>"),
}


async def test_no_answer_tells_whether_an_account_exists(make_server: Any) -> None:
    """XEP-0030 §8: "a server MUST carefully control access to any functionality that
    would enable directory harvesting attacks".  Every request a user may send to the
    bare JID of an account it shares nothing with is answered exactly as the same
    request to an account that does not exist: the same type, error, and payload."""
    from xmppx.core import parse

    server = await make_server()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")

    async def answer(to: str, kind: str, payload: str) -> bytes:
        stanza = Element("iq", ns.CLIENT, {"type": kind, "to": to, "id": "h1"})
        stanza.append(parse(payload.encode()))
        try:
            got = await romeo.iq(stanza)
        except IqError as exc:
            got = exc.stanza
        return got.serialize().replace(to.encode(), b"TARGET")

    for what, (kind, payload) in _TO_AN_ACCOUNT.items():
        existing = await answer("juliet@localhost", kind, payload)
        missing = await answer("nobody@localhost", kind, payload)
        assert existing == missing, what
    await romeo.close()
