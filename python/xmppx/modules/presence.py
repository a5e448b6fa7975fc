"""Presence state of the account's own sessions (RFC 6121 §4.2, §4.4, §4.7).

Tracks each session's availability and priority (used by the router's bare-JID rules,
RFC 6121 §8.5.2.1.1) and reflects a session's broadcast presence to all of the account's
available resources, the sender included (§4.2.2, §4.4.2).  Directed presence to another
account is delivered to its available resources (§4.6).

Roster-based broadcast to contacts, probes and the subscription state machine belong to
the roster module (RFC 6121 §3, §4.2–4.3) and are not here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from xmppx.core import BareJID, Element
from xmppx.modules._base import Module

if TYPE_CHECKING:
    from xmppx.sessions import Session

__all__ = ["MAX_PRIORITY", "MIN_PRIORITY", "BasicPresence"]

#: RFC 6121 §4.7.2.3: priority is an integer from -128 to +127.
MIN_PRIORITY = -128
MAX_PRIORITY = 127


def priority_of(stanza: Element) -> int:
    """The ``<priority/>`` of a presence, 0 when absent or malformed (§4.7.2.3)."""
    text = stanza.findtext("priority")
    if not text:
        return 0
    try:
        value = int(text.strip())
    except ValueError:
        return 0
    return max(MIN_PRIORITY, min(MAX_PRIORITY, value))


class BasicPresence(Module):
    def on_presence_broadcast(self, session: Session, stanza: Element, stype: str) -> None:
        if stype == "available":
            if session.presence is None:
                session.available_since = time.monotonic()
            session.presence = stanza
            session.priority = priority_of(stanza)
        elif stype == "unavailable":
            session.presence = None
            session.priority = 0
        else:
            return  # probes and subscriptions need a 'to'
        for other in self.server.sessions.resources(session.jid.bare):
            if other.presence is not None or other is session:
                copy = stanza.copy()
                copy.set("to", str(other.jid))
                other.deliver(copy)

    def on_presence_to_account(
        self, session: Session | None, stanza: Element, stype: str, bare: BareJID
    ) -> None:
        for target in self.server.sessions.available(bare):
            target.deliver(stanza)
