"""Addressing rules as pure decisions (RFC 6120 §10, RFC 6121 §8).  No I/O here.

``route`` answers "where does this stanza go" for a stanza from a local session whose
``from`` is already stamped; the server carries the decision out.

Local-domain rules implemented (RFC 6121 §8.5):

=========  =======================================  ======================================
kind       to a bare JID                            to a full JID with no such resource
=========  =======================================  ======================================
message    normal/chat: the available resources     chat: as to the bare JID; normal
           with the highest non-negative priority   and groupchat: service-unavailable;
           (all of them on a tie, RFC 6121 §8.5.2.1  headline and error: dropped
           .1 lets us choose); headline: all        (§8.5.3.2.1)
           non-negative; groupchat: error; none
           available: offline storage (normal/chat)
presence   the account's presence logic (roster     subscription types as to the bare
           module): subscriptions, probes, else     JID; others dropped (§8.5.3.2.2)
           all available resources
iq         handled by the server for the account    service-unavailable (§8.5.3.2.1)
=========  =======================================  ======================================

An account that does not exist (§8.5.1): an iq request gets ``service-unavailable`` (a
MUST there, so it differs from what an existing account's handlers tell an asker they
share nothing with where a specification wants ``forbidden``: another's roster, private
data, last activity); a message too, but a headline, which an existing account with no
available resource silently ignores (§8.5.2.2.1), is dropped as well, so that it does
not tell the two apart; presence is dropped.  An error is never answered with an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from xmppx.core import Element
from xmppx.sessions import Session

__all__ = [
    "Bounce",
    "Decision",
    "Deliver",
    "Drop",
    "HandleForAccount",
    "HandlePresence",
    "StoreOffline",
    "best_resources",
    "message_type",
    "route_to_account",
]

#: The values of a message's 'type' (RFC 6121 §5.2.2).
MESSAGE_TYPES: Final = frozenset({"normal", "chat", "groupchat", "headline", "error"})


def message_type(stanza: Element) -> str:
    """A message's type as RFC 6121 §5.2.2 says to read it: no 'type', or one the
    application does not understand, "MUST [be considered] to be of type 'normal'"."""
    stype = stanza.get("type")
    return stype if stype in MESSAGE_TYPES else "normal"


@dataclass(frozen=True, kw_only=True, slots=True)
class Deliver:
    sessions: tuple[Session, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class StoreOffline:
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class HandleForAccount:
    """An iq the server answers on the account's behalf (RFC 6120 §10.5.4)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class HandlePresence:
    """Presence to a bare JID: the presence/roster logic decides (RFC 6121 §3, §4)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Bounce:
    condition: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Drop:
    reason: str


Decision = Deliver | StoreOffline | HandleForAccount | HandlePresence | Bounce | Drop

_SUBSCRIPTION_TYPES = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed"})


def best_resources(available: Sequence[Session], *, headline: bool = False) -> tuple[Session, ...]:
    """RFC 6121 §8.5.2.1.1: the non-negative-priority resources with the highest priority
    (all of them on a tie); for headlines every non-negative one."""
    eligible = [s for s in available if s.priority >= 0]
    if headline or not eligible:
        return tuple(eligible)
    top = max(s.priority for s in eligible)
    return tuple(s for s in eligible if s.priority == top)


def route_to_account(
    *,
    kind: str,
    stype: str,
    full: bool,
    target: Session | None,
    available: Sequence[Session],
    exists: bool,
) -> Decision:
    """Decide for a stanza to a local account.

    ``full``: the ``to`` has a resource; ``target``: the session bound to that resource,
    if any; ``available``: the account's available sessions; ``exists``: whether the
    account exists (only consulted when nothing is online).
    """
    if full and target is not None:
        if kind == "presence" and stype in _SUBSCRIPTION_TYPES:
            return HandlePresence()
        return Deliver(sessions=(target,))
    if kind == "iq":
        if full:
            return (
                Bounce(condition="service-unavailable")
                if stype in ("get", "set")
                else Drop(reason="iq result/error to an unavailable resource")
            )
        return HandleForAccount() if exists or available else _unknown(kind, stype)
    if kind == "presence":
        if full and stype not in _SUBSCRIPTION_TYPES:
            return Drop(reason="presence to an unavailable resource (RFC 6121 §8.5.3.2.2)")
        return HandlePresence() if exists or available else _unknown(kind, stype)
    # message
    if stype == "error" and (full or available):
        # §8.5.2.1.1 and §8.5.3.2.1: an error message to a bare JID, or to a full JID
        # whose resource is gone, is silently ignored.
        return Drop(reason="error message not to a bound resource")
    if stype == "groupchat":
        return Bounce(condition="service-unavailable")
    if full and stype != "chat":
        # §8.5.3.2.1: only a chat message to a resource that is not there goes to the
        # account; normal (like groupchat) is bounced, headline ignored.
        if stype == "headline":
            return Drop(reason="headline to an unavailable resource")
        return Bounce(condition="service-unavailable")
    chosen = best_resources(available, headline=stype == "headline")
    if chosen:
        return Deliver(sessions=chosen)
    if not exists:
        return _unknown(kind, stype)
    if stype == "headline" or stype == "error":
        return Drop(reason=f"{stype} message with no available resource")
    return StoreOffline()


def _unknown(kind: str, stype: str) -> Decision:
    if kind == "presence" or stype in ("error", "result", "headline"):
        return Drop(reason="no such account")
    return Bounce(condition="service-unavailable")
