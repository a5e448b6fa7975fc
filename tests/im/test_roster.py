"""RFC 6121 §2 roster management and §2.6 versioning."""

from __future__ import annotations

from typing import Any

import pytest

from tests.im.conftest import ROSTER_Q, Peer, is_push, roster_set, settle
from xmppx import ns
from xmppx.client import IqError
from xmppx.core import Element
from xmppx.modules import roster as roster_module
from xmppx.server import XMPPServer


async def condition(peer: Peer, stanza: Element) -> str:
    with pytest.raises(IqError) as info:
        await peer.iq(stanza)
    return info.value.condition


async def test_add_update_and_push_to_interested_resources(server: XMPPServer) -> None:
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    other = await Peer.connect(server, "romeo@localhost/garden")  # never asks for the roster
    await romeo.roster()
    await romeo.iq(roster_set({"jid": "nurse@localhost", "name": "Nurse"}, groups=("Servants",)))
    push = await romeo.expect(is_push("nurse@localhost", name="Nurse", subscription="none"))
    q = push.find(ROSTER_Q)
    assert q is not None and q.get("ver"), "pushes carry the version (§2.6)"
    await romeo.iq(roster_set({"jid": "nurse@localhost", "name": "Angelica"}, groups=("A", "B")))
    await romeo.expect(is_push("nurse@localhost", name="Angelica"))
    items = await romeo.items()
    assert items["nurse@localhost"]["name"] == "Angelica"
    res = await romeo.roster()
    item = res.find(ROSTER_Q).find(ns.clark(ns.ROSTER, "item"))  # type: ignore[union-attr]
    assert [g.text for g in item.findall(ns.clark(ns.ROSTER, "group"))] == ["A", "B"]  # type: ignore[union-attr]
    await settle(server, other)
    assert not [s for s in await other.drain() if s.name == "iq"], "not interested, no push"
    await romeo.close()
    await other.close()


async def test_versioning(server: XMPPServer) -> None:
    """§2.6.3: same version, empty result; else the whole roster with the new one."""
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    first = await romeo.roster(ver="")
    ver = first.find(ROSTER_Q).get("ver")  # type: ignore[union-attr]
    assert ver
    same = await romeo.roster(ver=ver)
    assert len(same) == 0, "an unchanged roster is an empty result"
    await romeo.iq(roster_set({"jid": "nurse@localhost"}))
    push = await romeo.expect(is_push("nurse@localhost"))
    new_ver = push.find(ROSTER_Q).get("ver")  # type: ignore[union-attr]
    assert new_ver and new_ver != ver
    changed = await romeo.roster(ver=ver)
    q = changed.find(ROSTER_Q)
    assert q is not None and q.get("ver") == new_ver and len(q) == 1
    assert len(await romeo.roster(ver=new_ver)) == 0
    await romeo.close()


async def test_roster_size_limit(make_server: Any) -> None:
    """``roster.max_items``: a new item beyond it is not-allowed; updating one is fine."""
    server = await make_server(roster__max_items=2)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    await romeo.iq(roster_set({"jid": "a@localhost"}))
    await romeo.iq(roster_set({"jid": "b@localhost"}))
    await romeo.iq(roster_set({"jid": "b@localhost", "name": "updating is fine"}))
    assert await condition(romeo, roster_set({"jid": "c@localhost"})) == "not-allowed"
    assert set(await romeo.items()) == {"a@localhost", "b@localhost"}
    await romeo.close()


async def test_validation(server: XMPPServer) -> None:
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    two = roster_set({"jid": "a@localhost"}, {"jid": "b@localhost"})
    assert await condition(romeo, two) == "bad-request"
    assert await condition(romeo, roster_set()) == "bad-request"
    assert (
        await condition(romeo, roster_set({"jid": "a@localhost"}, groups=("",))) == "not-acceptable"
    )
    assert (
        await condition(romeo, roster_set({"jid": "a@localhost"}, groups=("g", "g")))
        == "bad-request"
    )
    long_name = "x" * (roster_module.MAX_NAME_BYTES + 1)
    assert (
        await condition(romeo, roster_set({"jid": "a@localhost", "name": long_name}))
        == "not-acceptable"
    )
    long_group = "g" * (roster_module.MAX_GROUP_BYTES + 1)
    assert (
        await condition(romeo, roster_set({"jid": "a@localhost"}, groups=(long_group,)))
        == "not-acceptable"
    )
    assert await condition(romeo, roster_set({"jid": "romeo@localhost"})) == "not-allowed"
    assert await condition(romeo, roster_set({"jid": "a@localhost/res"})) == "bad-request"
    remove = roster_set({"jid": "nobody@localhost", "subscription": "remove"})
    assert await condition(romeo, remove) == "item-not-found"
    other = Element("iq", ns.CLIENT, {"type": "get", "to": "juliet@localhost"})
    other.append(Element("query", ns.ROSTER))
    assert await condition(romeo, other) == "forbidden"
    # a client cannot set the subscription itself
    await romeo.iq(roster_set({"jid": "a@localhost", "subscription": "both", "ask": "subscribe"}))
    assert (await romeo.items())["a@localhost"]["subscription"] == "none"
    await romeo.close()
