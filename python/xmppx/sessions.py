"""Who is online: bare JID → resource → session (DESIGN.md §1; ejabberd's ``ejabberd_sm``).

The registry owns sessions, their priorities and presence state; it never routes by
itself (``xmppx.router`` decides, the server delivers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from xmppx.core import BareJID, Element, FullJID

__all__ = ["Delivery", "Session", "SessionRegistry"]


class Delivery:
    """One message delivered to an account: to one or more of its sessions, and as
    XEP-0280 carbon copies to others.  A session *holds* it while XEP-0352 keeps it
    back for an inactive client, and with XEP-0198 stream management until its client
    acknowledges it; a session without counts as having had it once it is written.
    When a holder ends without having had it, the message is undelivered only if no
    session had it (acknowledged it, or was written it without stream management) and
    no other session holds it still: the last holder decides (``xmppx.modules.sm``)."""

    __slots__ = ("had", "holders")

    def __init__(self) -> None:
        #: Some session got it for sure (acknowledged, or written without stream
        #: management).
        self.had = False
        #: The sessions holding it, unacknowledged.
        self.holders: set[object] = set()

    def acknowledged(self, holder: object) -> None:
        """``holder``'s client acknowledged its copy."""
        self.had = True
        self.holders.discard(holder)

    def lost_by(self, holder: object) -> bool:
        """``holder`` ended without an acknowledgement: True when the message is
        undelivered (nobody had it, and ``holder`` was the last to hold it)."""
        self.holders.discard(holder)
        return not self.had and not self.holders


class Session(Protocol):
    """A bound resource (RFC 6120 §7) as the router and modules see it."""

    jid: FullJID
    #: RFC 6121 §4.7.2.3 priority of the last available presence (0 before any).
    priority: int
    #: The last available presence broadcast (RFC 6121 §4.2), ``None`` when unavailable.
    presence: Element | None
    #: When the session sent initial presence (monotonic seconds), for tie-breaking.
    available_since: float

    @property
    def hibernating(self) -> bool:
        """The connection broke and the session waits to be resumed (XEP-0198 §5),
        still available."""

    def deliver(self, stanza: Element) -> None:
        """Queue ``stanza`` for the client (already addressed and stamped)."""

    def deliver_raw(self, data: bytes) -> None:
        """Queue bytes already serialized for ``jabber:client``."""

    async def room(self, size: int = 0) -> bool:
        """Wait until the client has read (and, with XEP-0198, acknowledged) enough of
        what was queued for it that a stanza of ``size`` bytes more may be queued (a
        sender of many stanzas at once paces itself by this, rather than filling the
        queue until the client is dropped as a slow reader); False once the session
        ended.  A session waiting to be resumed is waited for."""

    def begin_stored(self) -> None:
        """Stored messages are about to be given to this session (``deliver_stored``,
        XEP-0160 §3): until the matching ``end_stored``, every other stanza for it
        waits, in order, behind them (RFC 6120 §10.1).  Calls nest.  The wait is this
        session's alone: the account's other sessions are served meanwhile."""

    def deliver_stored(self, stanza: Element) -> None:
        """``deliver``, ahead of what waits behind the stored messages."""

    def end_stored(self) -> None:
        """The stored messages are given (or the session ended first): what waited
        behind them follows, in order."""


class SessionRegistry:
    """Online sessions by bare JID and resource."""

    def __init__(self) -> None:
        self._by_bare: dict[BareJID, dict[str, Session]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, session: Session) -> Session | None:
        """Register ``session``; return the session it replaces on a resource conflict
        (the caller ends that one with ``conflict``, RFC 6120 §7.7.2.2)."""
        bare = session.jid.bare
        resources = self._by_bare.setdefault(bare, {})
        old = resources.get(session.jid.resource)
        resources[session.jid.resource] = session
        if old is None:
            self._count += 1
        return old

    def remove(self, session: Session) -> bool:
        """Unregister ``session`` if it is still the one bound to its JID."""
        bare = session.jid.bare
        resources = self._by_bare.get(bare)
        if not resources or resources.get(session.jid.resource) is not session:
            return False
        del resources[session.jid.resource]
        if not resources:
            del self._by_bare[bare]
        self._count -= 1
        return True

    def get(self, jid: FullJID) -> Session | None:
        resources = self._by_bare.get(jid.bare)
        return resources.get(jid.resource) if resources else None

    def resources(self, bare: BareJID) -> list[Session]:
        """All bound sessions of an account, available or not."""
        resources = self._by_bare.get(bare)
        return list(resources.values()) if resources else []

    def available(self, bare: BareJID) -> list[Session]:
        """Sessions of ``bare`` that have sent available presence (RFC 6121 §1.4)."""
        resources = self._by_bare.get(bare)
        if not resources:
            return []
        return [s for s in resources.values() if s.presence is not None]

    def has_resource_named(self, bare: BareJID, resource: str) -> bool:
        resources = self._by_bare.get(bare)
        return bool(resources) and resource in resources  # type: ignore[operator]

    def __iter__(self) -> Iterator[Session]:
        for resources in list(self._by_bare.values()):
            yield from list(resources.values())
