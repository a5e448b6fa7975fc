"""XEP-0191 blocking command: the blocklist (get, block, unblock, unblock all), pushes to
the resources that asked for it, and the blocking itself (§3.3 "User Blocks Contact").

Effects of a block, as the XEP says:

* Inbound from a blocked JID (``screen_inbound``): presence (notifications,
  subscriptions, probes) is dropped without an answer; a message is answered with
  ``service-unavailable`` (an error message is dropped); an iq get/set is answered with
  ``service-unavailable`` and an iq result/error dropped.  The user appears offline.
* Outbound to a blocked JID (``screen_outbound``): not routed; the sender gets
  ``not-acceptable`` with ``<blocked xmlns='urn:xmpp:blocking:errors'/>``.
* Blocking a contact that may see the user's presence (subscription ``from``/``both``,
  or directed presence) sends it unavailable presence from each available resource;
  unblocking sends a subscriber the current presence again.  Only the resource named
  when the item is a full JID.  The presence module does this
  (``Presence.blocklist_changed``), leaves blocked JIDs and resources out of broadcasts
  and probes, and does not replay a blocked JID's pending subscription request; the
  offline module does not deliver a message from a JID blocked since it was stored.

JIDs match as XEP-0191 §5 (JID matching) says: ``user@domain/resource`` only that
resource, ``user@domain`` any resource, ``domain/resource`` only that resource, and
``domain`` the domain itself, anyone at it and its subdomains.

The blocklist of a user with a session is kept in memory (the screens run on every
stanza and must not wait for storage); for a user without one, the asynchronous paths
(offline storage, subscription requests) read it with :meth:`Blocking.blocks_async`.

Example (XEP-0191 §3.3)::

    <iq from='juliet@capulet.com/chamber' type='set' id='block1'>
      <block xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></block>
    </iq>
    <iq type='result' id='block1'/>
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from xmppx import ns
from xmppx.core import JID, BareJID, Element, JIDError, parse_jid
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, IqGet, IqRequest, IqSet
from xmppx.modules.roster import KeyedLocks, RosterDependent, find_module, own_account

if TYPE_CHECKING:
    from xmppx.sessions import Session

__all__ = [
    "BLOCKING_ERRORS",
    "CANCELLATIONS",
    "MAX_BLOCKED",
    "Blocking",
    "blocked_error",
    "matches",
]

#: XEP-0191 application error namespace (``<blocked/>``).
BLOCKING_ERRORS: Final = "urn:xmpp:blocking:errors"
#: JIDs on one blocklist by default (configuration key ``blocking.max_items``): far
#: above what a person blocks by hand, and it bounds the memory a user holds and the
#: size of the blocklist result.
MAX_BLOCKED: Final = 1000
#: Presence types that take a subscription away (RFC 6121 §3.2, §3.3): they pass a
#: blocklist (``_inbound_verdict``).
CANCELLATIONS: Final = frozenset({"unsubscribe", "unsubscribed"})

_ITEM = ns.clark(ns.BLOCKING, "item")


def blocked_error() -> StanzaError:
    """The error for a stanza sent to a blocked JID (XEP-0191 §3.3)."""
    return StanzaError(
        "not-acceptable",
        "you have blocked this address",
        type="cancel",
        app_condition=(BLOCKING_ERRORS, "blocked"),
    )


def matches(blocked: frozenset[str], jid: JID) -> bool:
    """Whether ``jid`` is covered by a blocklist (XEP-0191 §5)."""
    if not blocked:
        return False
    domain = jid.domain
    if jid.local:
        bare = f"{jid.local}@{domain}"
        if bare in blocked or (jid.resource and f"{bare}/{jid.resource}" in blocked):
            return True
    elif jid.resource and f"{domain}/{jid.resource}" in blocked:
        return True
    while True:
        if domain in blocked:
            return True
        dot = domain.find(".")
        if dot < 0:
            return False
        domain = domain[dot + 1 :]


class Blocking(RosterDependent):
    features = (ns.BLOCKING,)

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        #: JIDs per blocklist (``blocking.max_items``, default :data:`MAX_BLOCKED`).
        self.max_items = int(self.setting("blocking.max_items", MAX_BLOCKED))
        self._lists: dict[BareJID, frozenset[str]] = {}
        self._locks: KeyedLocks[BareJID] = KeyedLocks()
        #: Sessions that requested the blocklist: they get the pushes (§3.3).
        self._interested: set[Session] = set()
        self._push_ids = itertools.count(1)

    # -- the list -----------------------------------------------------------------------

    def blocks(self, user: BareJID, jid: JID) -> bool:
        """Whether ``user`` (with a session) blocks ``jid``; ``False`` when the list is
        not in memory (use :meth:`blocks_async` where that matters)."""
        return matches(self._lists.get(user, frozenset()), jid)

    async def blocks_async(self, user: BareJID, jid: JID) -> bool:
        return matches(await self._load(user), jid)

    def loaded(self, user: BareJID) -> bool:
        """Whether ``user``'s blocklist is in memory (:meth:`blocks` can answer)."""
        return user in self._lists

    async def load(self, user: BareJID) -> None:
        """Read ``user``'s blocklist into memory (kept while the user has a session)."""
        await self._load(user)

    def blocks_someone(self, user: BareJID) -> bool:
        """Whether ``user``'s blocklist is in memory and not empty."""
        return bool(self._lists.get(user))

    async def _load(self, user: BareJID) -> frozenset[str]:
        hit = self._lists.get(user)
        if hit is not None:
            return hit
        items = frozenset(await self.server.storage.blocklist.get(str(user)))
        if self.server.sessions.resources(user):
            self._lists.setdefault(user, items)
        return self._lists.get(user, items)

    def on_session_started(self, session: Session) -> None:
        if session.jid.bare not in self._lists:
            self.tasks.spawn(self._preload(session.jid.bare))

    async def _preload(self, user: BareJID) -> None:
        await self._load(user)

    def session_gone(self, session: Session) -> None:
        self._interested.discard(session)
        asyncio.get_running_loop().call_soon(self._evict, session.jid.bare)

    def _evict(self, user: BareJID) -> None:
        if not self.server.sessions.resources(user):
            self._lists.pop(user, None)

    # -- screens ------------------------------------------------------------------------

    def screen_inbound(
        self, stanza: Element, kind: str, stype: str, sender: str, recipient: BareJID
    ) -> bool | StanzaError:
        return _inbound_verdict(self._lists.get(recipient), kind, stype, sender)

    async def screen_inbound_async(
        self, stanza: Element, kind: str, stype: str, sender: str, recipient: BareJID
    ) -> bool | StanzaError:
        """For an account with nothing online, whose list is not kept in memory: an iq
        to it (answered by the server on its behalf: last activity, vCard, disco, ping)
        must not tell a blocked JID more than a message would (§3.3)."""
        if recipient in self._lists:
            return True  # screen_inbound decides
        return _inbound_verdict(await self._load(recipient), kind, stype, sender)

    def screen_outbound(
        self, session: Session, stanza: Element, kind: str, stype: str, to: JID
    ) -> bool | StanzaError:
        blocked = self._lists.get(session.jid.bare)
        if not blocked or not matches(blocked, to):
            return True
        return False if stype == "error" else blocked_error()

    # -- iq handlers --------------------------------------------------------------------

    async def on_get(self, req: IqRequest) -> Element | None:
        user = own_account(req, "a blocklist")
        if req.session is not None:
            self._interested.add(req.session)
        q = Element("blocklist", ns.BLOCKING)
        for jid in sorted(await self._load(user)):
            q.append(Element("item", ns.BLOCKING, {"jid": jid}))
        return q

    async def on_set(self, req: IqRequest) -> Element | None:
        user = own_account(req, "a blocklist")
        payload = req.payload
        jids = _item_jids(payload.findall(_ITEM))
        store = self.server.storage.blocklist
        async with self._locks.hold(user):
            current = await self._load(user)
            if payload.name == "block":
                if not jids:
                    raise StanzaError("bad-request", "<block/> needs at least one item")
                if len(current | set(jids)) > self.max_items:
                    raise StanzaError("not-allowed", f"at most {self.max_items} blocked JIDs")
                changed = await store.add(str(user), jids)
                now = current | set(changed)
            elif jids:
                changed = await store.remove(str(user), jids)
                now = current - set(changed)
            else:
                changed = await store.clear(str(user))
                now = frozenset()
            if self.server.sessions.resources(user):
                self._lists[user] = frozenset(now)
        if payload.name == "block":
            if changed:
                self._push(user, "block", changed)
            await self._presence_change(user, frozenset(changed), now_blocked=True)
        elif changed or not jids:
            self._push(user, "unblock", changed if jids else ())
            await self._presence_change(user, frozenset(changed), now_blocked=False)
        return None

    async def _presence_change(
        self, user: BareJID, changed: frozenset[str], *, now_blocked: bool
    ) -> None:
        from xmppx.modules.presence import Presence  # it imports this module

        presence = find_module(self.server, Presence)
        if presence is not None and changed:
            await presence.blocklist_changed(user, changed, now_blocked=now_blocked)

    def _push(self, user: BareJID, what: str, jids: Iterable[str]) -> None:
        for session in self.server.sessions.resources(user):
            if session not in self._interested:
                continue
            iq = Element(
                "iq",
                ns.CLIENT,
                {"type": "set", "id": f"block-push{next(self._push_ids)}", "to": str(session.jid)},
            )
            elem = Element(what, ns.BLOCKING)
            for jid in jids:
                elem.append(Element("item", ns.BLOCKING, {"jid": jid}))
            iq.append(elem)
            session.deliver(iq)

    handlers = {
        IqGet(ns.BLOCKING, ACCOUNT, name="blocklist"): on_get,
        IqSet(ns.BLOCKING, ACCOUNT, name="block"): on_set,
        IqSet(ns.BLOCKING, ACCOUNT, name="unblock"): on_set,
    }


def _item_jids(items: Iterable[Element]) -> list[str]:
    out: list[str] = []
    for item in items:
        try:
            jid = str(parse_jid(item.get("jid") or ""))
        except JIDError as exc:
            raise StanzaError("jid-malformed", str(exc)) from None
        if jid not in out:
            out.append(jid)
    return out


def _inbound_verdict(
    blocked: frozenset[str] | None, kind: str, stype: str, sender: str
) -> bool | StanzaError:
    """XEP-0191 §3.3 for a stanza from ``sender`` to a user blocking ``blocked``: pass
    (``True``), drop (presence, an iq result or error: ``False``) or bounce.  A
    cancellation (``unsubscribe``, ``unsubscribed``) passes: the presence module changes
    the user's roster as RFC 6121 §3.2.3 and §3.3.3 require, showing her sessions
    nothing from the blocked JID; dropped, it would leave her sharing presence with a
    contact who cancelled, once she unblocks it."""
    if not blocked or (kind == "presence" and stype in CANCELLATIONS):
        return True
    try:
        jid = parse_jid(sender)
    except JIDError:
        return True
    if not matches(blocked, jid):
        return True
    if kind == "presence" or stype in ("error", "result"):
        return False
    return StanzaError("service-unavailable")
