"""The addressing rules of RFC 6121 §8.5 as pure decisions (xmppx.router)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from xmppx.core import Element, FullJID, parse_jid
from xmppx.router import (
    Bounce,
    Deliver,
    Drop,
    HandleForAccount,
    HandlePresence,
    StoreOffline,
    best_resources,
    route_to_account,
)


@dataclass
class Res:
    """A bound resource as the router sees one (the Session protocol's fields)."""

    name: str
    priority: int = 0
    presence: Element | None = field(default_factory=lambda: Element("presence", "jabber:client"))
    available_since: float = 0.0

    @property
    def jid(self) -> FullJID:
        jid = parse_jid(f"juliet@example.com/{self.name}")
        assert isinstance(jid, FullJID)
        return jid

    hibernating = False

    def deliver(self, stanza: Element) -> None:
        raise AssertionError("the router never delivers")

    def deliver_raw(self, data: bytes) -> None:
        raise AssertionError("the router never delivers")

    async def room(self, size: int = 0) -> bool:
        raise AssertionError("the router never delivers")

    def begin_stored(self) -> None:
        raise AssertionError("the router never delivers")

    def deliver_stored(self, stanza: Element) -> None:
        raise AssertionError("the router never delivers")

    def end_stored(self) -> None:
        raise AssertionError("the router never delivers")


def route(
    kind: str,
    stype: str,
    *,
    full: bool = False,
    target: Res | None = None,
    available: tuple[Res, ...] = (),
    exists: bool = True,
) -> object:
    return route_to_account(
        kind=kind, stype=stype, full=full, target=target, available=available, exists=exists
    )


def test_highest_priority_wins_and_ties_go_to_all() -> None:
    a, b, c = Res("a", 5), Res("b", 5), Res("c", 1)
    assert best_resources([a, b, c]) == (a, b)
    assert best_resources([Res("neg", -1)]) == ()
    assert best_resources([a, c, Res("neg", -1)], headline=True) == (a, c)


@pytest.mark.parametrize("stype", ["normal", "chat"])
def test_message_to_bare_jid(stype: str) -> None:
    top, low = Res("top", 10), Res("low", 0)
    assert route("message", stype, available=(top, low)) == Deliver(sessions=(top,))
    assert route("message", stype, available=(Res("neg", -5),)) == StoreOffline()
    assert route("message", stype) == StoreOffline()
    assert route("message", stype, exists=False) == Bounce(condition="service-unavailable")


def test_message_types_with_special_rules() -> None:
    on = (Res("a", 1), Res("b", 0))
    assert route("message", "headline", available=on) == Deliver(sessions=on)
    assert isinstance(route("message", "headline"), Drop)
    # §8.5.1 lets a missing account ignore it too, as an existing one with no available
    # resource must (§8.5.2.2.1): the two answer alike
    assert isinstance(route("message", "headline", exists=False), Drop)
    assert isinstance(route("message", "headline", full=True, exists=False), Drop)
    assert route("message", "groupchat", available=on) == Bounce(condition="service-unavailable")
    assert isinstance(route("message", "error", available=on), Drop)  # §8.5.2.1.1
    assert isinstance(route("message", "error", full=True, available=on), Drop)  # §8.5.3.2.1
    assert isinstance(route("message", "error", exists=False), Drop)  # never error an error


def test_full_jid() -> None:
    there = Res("balcony")
    for kind, stype in (("message", "chat"), ("iq", "get"), ("presence", "available")):
        assert route(kind, stype, full=True, target=there) == Deliver(sessions=(there,))
    assert route("presence", "subscribe", full=True, target=there) == HandlePresence()
    other = Res("orchard", 3)
    assert route("message", "chat", full=True, available=(other,)) == Deliver(sessions=(other,))
    assert route("message", "chat", full=True) == StoreOffline()
    # §8.5.3.2.1: a normal message to a resource that is not there is not the account's
    for available in ((other,), ()):
        assert route("message", "normal", full=True, available=available) == Bounce(
            condition="service-unavailable"
        )
    assert isinstance(route("message", "headline", full=True, available=(other,)), Drop)
    assert route("iq", "get", full=True, available=(other,)) == Bounce(
        condition="service-unavailable"
    )
    assert isinstance(route("iq", "result", full=True), Drop)
    assert isinstance(route("presence", "available", full=True), Drop)  # §8.5.3.2.2
    assert route("presence", "subscribed", full=True) == HandlePresence()


def test_iq_and_presence_to_bare_jid() -> None:
    assert route("iq", "get") == HandleForAccount()
    assert route("iq", "set", exists=False) == Bounce(condition="service-unavailable")
    assert route("presence", "probe") == HandlePresence()
    assert isinstance(route("presence", "subscribe", exists=False), Drop)  # §8.5.1
