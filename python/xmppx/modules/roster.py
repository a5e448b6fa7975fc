"""Rosters (RFC 6121 §2) with versioning (§2.6, XEP-0237), and the subscription state
machine of RFC 6121 Appendix A as data.

The roster module owns every roster item: the ``jabber:iq:roster`` get/set handlers,
roster pushes (§2.1.6) to the user's *interested* resources (those that requested the
roster in this session), a per-user cache of the roster and the pending inbound
subscription requests (§3.1.3) while the user has a session, and a per-user lock that
serializes every change of one user's roster.  The presence module (``presence.py``)
runs the subscription state machine below and stores its outcome through
:meth:`RosterManager.put` and :meth:`RosterManager.set_pending`.

Rules, with their sections:

* get (§2.1.3, §2.6.3): the whole roster with ``ver``; if the client sent the current
  ``ver``, an empty result and no items.  Every push carries the new ``ver``.
* set (§2.1.5, §2.3.3): exactly one ``<item/>`` (else ``bad-request``); ``name`` and
  ``<group/>`` are replaced, the subscription fields are the server's and are kept;
  ``subscription``/``ask`` sent by the client are ignored (except ``remove``).  An empty
  group is ``not-acceptable``, a repeated one ``bad-request``; names and groups over
  :data:`MAX_NAME_BYTES` / :data:`MAX_GROUP_BYTES` or more than :data:`MAX_GROUPS`
  groups are ``not-acceptable``; a new item beyond ``roster.max_items`` (configuration) is
  ``not-allowed``; adding oneself is ``not-allowed``.
* remove (§2.5.2): ``subscription='remove'`` deletes the item and cancels the
  subscriptions both ways (``unsubscribe`` if the user was subscribed to the contact or
  asked to be, ``unsubscribed`` if the contact was subscribed or asked), and sends
  unavailable presence to a contact that had a subscription to the user.  Removing an
  unknown item is ``item-not-found``.
* Only the user's own roster: a get/set addressed to another account is ``forbidden``.

Appendix A: a state is one of the nine names of §A.1 (``"None + Pending Out"``, ...);
:data:`OUTBOUND` and :data:`INBOUND` map a subscription stanza type and a state to
(route or deliver?, new state), row by row as the RFC's tables.  :func:`outbound` and
:func:`inbound` add the pre-approval rules of §3.4 and the auto-replies of §A.3.1 and
return a :class:`Transition`; they are pure functions, unit-tested row by row.

Example (RFC 6121 §2.1.3, §2.6.3)::

    <iq from='juliet@example.com/balcony' id='bv1bs71f' type='get'>
      <query xmlns='jabber:iq:roster' ver='ver14'/>
    </iq>
    <iq id='bv1bs71f' to='juliet@example.com/balcony' type='result'>
      <query xmlns='jabber:iq:roster' ver='ver15'>
        <item jid='romeo@example.net' name='Romeo' subscription='both'>
          <group>Friends</group>
        </item>
      </query>
    </iq>
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from xmppx import ns
from xmppx.core import BareJID, Element, JIDError, parse_jid
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, IqGet, IqRequest, IqSet, Module
from xmppx.storage import RosterItem, Subscription

if TYPE_CHECKING:
    from xmppx.sessions import Session

__all__ = [
    "BOTH",
    "FROM",
    "FROM_PO",
    "INBOUND",
    "MAX_GROUPS",
    "MAX_GROUP_BYTES",
    "MAX_NAME_BYTES",
    "MAX_ROSTER_ITEMS",
    "NONE",
    "NONE_PI",
    "NONE_PO",
    "NONE_POI",
    "OUTBOUND",
    "STATES",
    "TO",
    "TO_PI",
    "BackgroundTasks",
    "KeyedLocks",
    "RosterManager",
    "Transition",
    "find_module",
    "inbound",
    "item_state",
    "outbound",
    "own_account",
]

log = logging.getLogger("xmppx.roster")

#: Items per roster by default (configuration key ``roster.max_items``): 1000 items of
#: ~200 bytes make a ~200 KiB roster result, which still fits the common 256 KiB stanza
#: limit of clients' parsers (``limits.stanza_bytes``); real rosters stay in the hundreds.
MAX_ROSTER_ITEMS: Final = 1000
#: UTF-8 bytes of an item's ``name``: the bound RFC 7622 §3 puts on each JID part,
#: plenty for a human handle (RFC 6121 §2.3.3 lets servers limit it).
MAX_NAME_BYTES: Final = 1023
#: UTF-8 bytes of one ``<group/>`` name, for the same reason.
MAX_GROUP_BYTES: Final = 1023
#: Groups per item: people file a contact under a handful; 64 leaves room and keeps a
#: malicious item small.
MAX_GROUPS: Final = 64

_Q = ns.clark(ns.ROSTER, "query")
_ITEM = ns.clark(ns.ROSTER, "item")
_GROUP = ns.clark(ns.ROSTER, "group")

# -- Appendix A -------------------------------------------------------------------------

#: RFC 6121 §A.1 subscription states, by their names in the RFC.
NONE: Final = "None"
NONE_PO: Final = "None + Pending Out"
NONE_PI: Final = "None + Pending In"
NONE_POI: Final = "None + Pending Out/In"
TO: Final = "To"
TO_PI: Final = "To + Pending In"
FROM: Final = "From"
FROM_PO: Final = "From + Pending Out"
BOTH: Final = "Both"
STATES: Final = (NONE, NONE_PO, NONE_PI, NONE_POI, TO, TO_PI, FROM, FROM_PO, BOTH)

#: (subscription, pending out, pending in) of each state.
_PARTS: Final[Mapping[str, tuple[Subscription, bool, bool]]] = {
    NONE: ("none", False, False),
    NONE_PO: ("none", True, False),
    NONE_PI: ("none", False, True),
    NONE_POI: ("none", True, True),
    TO: ("to", False, False),
    TO_PI: ("to", False, True),
    FROM: ("from", False, False),
    FROM_PO: ("from", True, False),
    BOTH: ("both", False, False),
}
_BY_PARTS: Final = {v: k for k, v in _PARTS.items()}

#: RFC 6121 §A.2: the user's server processing an *outbound* subscription stanza:
#: ``OUTBOUND[type][state] = (route it to the contact?, new state)``.
OUTBOUND: Final[Mapping[str, Mapping[str, tuple[bool, str]]]] = {
    "subscribe": {  # §A.2.1
        NONE: (True, NONE_PO),
        NONE_PO: (True, NONE_PO),
        NONE_PI: (True, NONE_POI),
        NONE_POI: (True, NONE_POI),
        TO: (True, TO),
        TO_PI: (True, TO_PI),
        FROM: (True, FROM_PO),
        FROM_PO: (True, FROM_PO),
        BOTH: (True, BOTH),
    },
    "unsubscribe": {  # §A.2.2
        NONE: (True, NONE),
        NONE_PO: (True, NONE),
        NONE_PI: (True, NONE_PI),
        NONE_POI: (True, NONE_PI),
        TO: (True, NONE),
        TO_PI: (True, NONE_PI),
        FROM: (True, FROM),
        FROM_PO: (True, FROM),
        BOTH: (True, FROM),
    },
    "subscribed": {  # §A.2.3
        NONE: (False, NONE),
        NONE_PO: (False, NONE_PO),
        NONE_PI: (True, FROM),
        NONE_POI: (True, FROM_PO),
        TO: (False, TO),
        TO_PI: (True, BOTH),
        FROM: (False, FROM),
        FROM_PO: (False, FROM_PO),
        BOTH: (False, BOTH),
    },
    "unsubscribed": {  # §A.2.4
        NONE: (False, NONE),
        NONE_PO: (False, NONE_PO),
        NONE_PI: (True, NONE),
        NONE_POI: (True, NONE_PO),
        TO: (False, TO),
        TO_PI: (True, TO),
        FROM: (True, NONE),
        FROM_PO: (True, NONE_PO),
        BOTH: (True, TO),
    },
}

#: RFC 6121 §A.3: the contact's server processing an *inbound* subscription stanza:
#: ``INBOUND[type][state] = (deliver it to the contact?, new state)``.
INBOUND: Final[Mapping[str, Mapping[str, tuple[bool, str]]]] = {
    "subscribe": {  # §A.3.1 (no delivery in From/From + Pending Out/Both: auto-reply)
        NONE: (True, NONE_PI),
        NONE_PO: (True, NONE_POI),
        NONE_PI: (False, NONE_PI),
        NONE_POI: (False, NONE_POI),
        TO: (True, TO_PI),
        TO_PI: (False, TO_PI),
        FROM: (False, FROM),
        FROM_PO: (False, FROM_PO),
        BOTH: (False, BOTH),
    },
    "unsubscribe": {  # §A.3.2
        NONE: (False, NONE),
        NONE_PO: (False, NONE_PO),
        NONE_PI: (True, NONE),
        NONE_POI: (True, NONE_PO),
        TO: (False, TO),
        TO_PI: (True, TO),
        FROM: (True, NONE),
        FROM_PO: (True, NONE_PO),
        BOTH: (True, TO),
    },
    "subscribed": {  # §A.3.3
        NONE: (False, NONE),
        NONE_PO: (True, TO),
        NONE_PI: (False, NONE_PI),
        NONE_POI: (True, TO_PI),
        TO: (False, TO),
        TO_PI: (False, TO_PI),
        FROM: (False, FROM),
        FROM_PO: (True, BOTH),
        BOTH: (False, BOTH),
    },
    "unsubscribed": {  # §A.3.4
        NONE: (False, NONE),
        NONE_PO: (True, NONE),
        NONE_PI: (False, NONE_PI),
        NONE_POI: (True, NONE_PI),
        TO: (True, NONE),
        TO_PI: (True, NONE_PI),
        FROM: (False, FROM),
        FROM_PO: (True, FROM),
        BOTH: (True, FROM),
    },
}

#: States from which an outbound ``subscribed`` pre-approves instead (§3.4): no pending
#: inbound request and no subscription from the contact yet.
_PREAPPROVABLE: Final = frozenset({NONE, NONE_PO, TO})
#: Pre-approved state + inbound ``subscribe`` → the state after the automatic approval.
_APPROVE: Final = {NONE: FROM, NONE_PO: FROM_PO, TO: BOTH}


@dataclass(frozen=True, kw_only=True, slots=True)
class Transition:
    """What the server does for one subscription stanza (Appendix A plus §3.4).

    ``forward``: route it to the contact (outbound) or deliver it to the user's
    resources (inbound); ``state``/``approved``: the item's new state and pre-approval;
    ``reply``: a subscription type the server answers with on the user's behalf
    (``"subscribed"`` for a request that is already or pre-approved, §3.4, §A.3.1)."""

    forward: bool
    state: str
    approved: bool
    reply: str | None = None


def outbound(stype: str, state: str, approved: bool = False) -> Transition:
    """The user sent a ``stype`` subscription stanza to a contact in ``state``."""
    if stype == "subscribed" and state in _PREAPPROVABLE:
        return Transition(forward=False, state=state, approved=True)  # §3.4 pre-approval
    if stype == "unsubscribed" and state in _PREAPPROVABLE:
        return Transition(forward=False, state=state, approved=False)  # cancels it
    route, new = OUTBOUND[stype][state]
    return Transition(forward=route, state=new, approved=approved and not _has_from(new))


def inbound(stype: str, state: str, approved: bool = False) -> Transition:
    """A contact sent the user a ``stype`` subscription stanza; the user's item for the
    contact is in ``state``."""
    if stype == "subscribe":
        if approved and state in _APPROVE:  # §3.4: approve automatically
            return Transition(
                forward=False, state=_APPROVE[state], approved=False, reply="subscribed"
            )
        if _has_from(state):  # §A.3.1 footnote: already subscribed, answer for the user
            return Transition(forward=False, state=state, approved=False, reply="subscribed")
    deliver, new = INBOUND[stype][state]
    return Transition(forward=deliver, state=new, approved=approved and not _has_from(new))


def _has_from(state: str) -> bool:
    return _PARTS[state][0] in ("from", "both")


def item_state(item: RosterItem | None, pending_in: bool) -> str:
    """The Appendix A state of an item (``None`` for no item) and a pending request."""
    if item is None:
        return NONE_PI if pending_in else NONE
    return _BY_PARTS[(item.subscription, item.ask, pending_in)]


def state_parts(state: str) -> tuple[Subscription, bool, bool]:
    """``(subscription, ask, pending_in)`` of a state."""
    return _PARTS[state]


# -- helpers shared by the IM modules -----------------------------------------------------

M = TypeVar("M", bound=Module)


def own_account(req: IqRequest, what: str) -> BareJID:
    """The requesting user's bare JID, for data only its owner may read or change (a
    roster, RFC 6121 §2.1.5; a blocklist; private XML, XEP-0049 §2.3): ``forbidden``
    when the iq is addressed to another account."""
    if req.to_another_account:
        raise StanzaError("forbidden", f"{what} belongs to its own account only")
    return req.sender.bare


async def shares_presence(roster: RosterManager | None, user: BareJID, asker: BareJID) -> bool:
    """Whether ``asker`` may receive ``user``'s presence: it is ``user``, or ``user``'s
    roster (``roster``, the loaded roster module, if any) has it with subscription
    'from' or 'both' (RFC 6121 §3).  What an account answers on its own behalf about its
    presence (XEP-0012 last activity, XEP-0030 §8 service discovery) is for these askers
    only."""
    if asker == user:
        return True
    if roster is None:
        return False
    async with roster.locked(user):
        item = (await roster.load(user)).items.get(str(asker))
    return item is not None and item.subscription in ("from", "both")


def find_module(server: Any, cls: type[M]) -> M | None:
    """The loaded module instance of class ``cls`` (or a subclass), if any."""
    for module in server.modules:
        if isinstance(module, cls):
            return module
    return None


class BackgroundTasks:
    """Tasks the IM modules start from synchronous hooks, kept referenced, their
    failures logged, and awaited at shutdown so that their writes reach storage before
    it closes.  The IM modules share the roster module's set (it stops last), so a task
    one module starts from another's task is still awaited."""

    #: Seconds ``drain`` waits for the tasks at shutdown.
    DRAIN_TIMEOUT: Final = 5.0

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def __len__(self) -> int:
        """Tasks not finished yet."""
        return len(self._tasks)

    def adopt(self, task: asyncio.Task[Any] | None) -> None:
        """Also wait for ``task`` (started elsewhere, e.g. by the server) at shutdown."""
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("internal error in an IM task", exc_info=exc)

    async def drain(self) -> None:
        """Wait for the tasks (those they start too) up to :attr:`DRAIN_TIMEOUT`, then
        cancel what is left, so a stuck task cannot hold up a shutdown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.DRAIN_TIMEOUT
        while self._tasks and (left := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._tasks), timeout=left)
        left_over = list(self._tasks)
        for task in left_over:
            log.warning("cancelling an IM task still running at shutdown: %r", task)
            task.cancel()
        if left_over:
            await asyncio.wait(left_over, timeout=1.0)


K = TypeVar("K")


class KeyedLocks(Generic[K]):
    """One FIFO ``asyncio.Lock`` per key (a user), created on demand and forgotten when
    nobody holds or waits for it, so memory follows the users active right now."""

    def __init__(self) -> None:
        self._locks: dict[K, asyncio.Lock] = {}
        self._users: dict[K, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            n = self._users[key] - 1
            if n:
                self._users[key] = n
            else:
                del self._users[key]
                del self._locks[key]

    def busy(self, key: K) -> bool:
        """Whether someone holds or waits for the lock of ``key``."""
        return key in self._users


@dataclass(kw_only=True, slots=True)
class CachedRoster:
    """A user's roster held while they have a session: items by contact, the version,
    and the pending inbound subscription requests (contact → serialized stanza)."""

    version: str
    items: dict[str, RosterItem]
    pending: dict[str, bytes] = field(default_factory=dict)


class RosterManager(Module):
    """RFC 6121 §2: the roster of each account.  See the module docstring.

    RFC 6121 defines no service discovery feature for rosters: support is the
    ``<ver/>`` stream feature (§2.6.1), so ``features`` stays empty."""

    stream_features = (Element("ver", ns.ROSTER_VER),)

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        #: Items per roster (``roster.max_items``, default :data:`MAX_ROSTER_ITEMS`).
        self.max_items = int(self.setting("roster.max_items", MAX_ROSTER_ITEMS))
        self.tasks = BackgroundTasks()
        self._cache: dict[BareJID, CachedRoster] = {}
        self._locks: KeyedLocks[BareJID] = KeyedLocks()
        #: Sessions that asked for the roster (RFC 6121 §2.1.6 "interested resources").
        self._interested: set[Session] = set()
        self._push_ids = itertools.count(1)

    async def stop(self) -> None:
        await self.tasks.drain()

    # -- cache and locks ----------------------------------------------------------------

    def locked(self, user: BareJID) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the user's roster lock: changes to one roster happen one at a time, in
        the order they were asked for (``asyncio.Lock`` is FIFO)."""
        return self._locks.hold(user)

    def is_busy(self, user: BareJID) -> bool:
        """Whether a roster operation of ``user`` is running or waiting."""
        return self._locks.busy(user)

    def cached(self, user: BareJID) -> CachedRoster | None:
        return self._cache.get(user)

    async def load(self, user: BareJID) -> CachedRoster:
        """The user's roster, from the cache or storage; kept in the cache while the
        user has a bound session."""
        hit = self._cache.get(user)
        if hit is not None:
            return hit
        loaded = await self._fetch(user)
        hit = self._cache.get(user)  # another task may have loaded it meanwhile
        if hit is not None:
            return hit
        if self.server.sessions.resources(user):
            self._cache[user] = loaded
        return loaded

    async def _fetch(self, user: BareJID) -> CachedRoster:
        """Roster and pending requests in one storage call (one snapshot)."""
        state = await self.server.storage.roster.get_roster_state(str(user))
        return CachedRoster(
            version=state.roster.version,
            items={item.contact: item for item in state.roster.items},
            pending={p.contact: p.stanza for p in state.pending},
        )

    def on_session_started(self, session: Session) -> None:
        user = session.jid.bare
        if user not in self._cache:
            self.tasks.spawn(self._preload(user))

    async def _preload(self, user: BareJID) -> None:
        """Warm the cache at bind: every login needs the roster for its presence."""
        async with self.locked(user):
            if user in self._cache:
                return
            loaded = await self._fetch(user)
            if user not in self._cache and self.server.sessions.resources(user):
                self._cache[user] = loaded

    def session_gone(self, session: Session) -> None:
        self._interested.discard(session)
        # After the other hooks (the presence broadcast still reads the roster).
        asyncio.get_running_loop().call_soon(self._evict, session.jid.bare)

    def _evict(self, user: BareJID) -> None:
        if not self.server.sessions.resources(user):
            self._cache.pop(user, None)

    # -- changes ------------------------------------------------------------------------

    async def put(self, user: BareJID, roster: CachedRoster, item: RosterItem) -> None:
        """Store ``item`` (caller holds the lock and got ``roster`` from :meth:`load`)
        and push it to the interested resources.  A new item beyond
        :attr:`max_items` raises ``not-allowed``."""
        if item.contact not in roster.items and len(roster.items) >= self.max_items:
            raise StanzaError("not-allowed", f"the roster is full ({self.max_items} items at most)")
        roster.version = await self.server.storage.roster.put_item(str(user), item)
        roster.items[item.contact] = item
        self.push(user, item, roster.version)

    async def delete(self, user: BareJID, roster: CachedRoster, contact: str) -> None:
        version = await self.server.storage.roster.delete_item(str(user), contact)
        if version is not None:
            roster.version = version
            roster.items.pop(contact, None)
            self.push(user, RosterItem(contact=contact), version, removed=True)

    async def set_pending(
        self, user: BareJID, roster: CachedRoster, contact: str, stanza: bytes | None
    ) -> None:
        """Keep (``stanza``) or forget (``None``) the pending request from ``contact``."""
        store = self.server.storage.roster
        if stanza is None:
            if roster.pending.pop(contact, None) is not None:
                await store.remove_pending(str(user), contact)
        else:
            roster.pending[contact] = stanza
            await store.put_pending(str(user), contact, stanza)

    def interested(self, user: BareJID) -> list[Session]:
        """RFC 6121 §2.2: the sessions of ``user`` that requested the roster."""
        return [s for s in self.server.sessions.resources(user) if s in self._interested]

    def push(self, user: BareJID, item: RosterItem, version: str, *, removed: bool = False) -> None:
        """RFC 6121 §2.1.6: a roster push to each interested resource of ``user``."""
        for session in self.interested(user):
            iq = Element(
                "iq",
                ns.CLIENT,
                {"type": "set", "id": f"push{next(self._push_ids)}", "to": str(session.jid)},
            )
            q = Element("query", ns.ROSTER, {"ver": version})
            q.append(_item_element(item, removed=removed))
            iq.append(q)
            session.deliver(iq)

    # -- iq handlers --------------------------------------------------------------------

    async def on_get(self, req: IqRequest) -> Element | None:
        user = own_account(req, "a roster")
        if req.session is not None:
            self._interested.add(req.session)
        async with self.locked(user):
            roster = await self.load(user)
        ver = req.payload.get("ver")
        if ver is not None and ver == roster.version:
            return None  # §2.6.3: nothing changed, the pushes follow (none pending here)
        q = Element("query", ns.ROSTER, {"ver": roster.version})
        for item in sorted(roster.items.values(), key=lambda i: i.contact):
            q.append(_item_element(item))
        return q

    async def on_set(self, req: IqRequest) -> Element | None:
        user = own_account(req, "a roster")
        items = req.payload.findall(_ITEM)
        if len(items) != 1 or len(req.payload) != 1:
            raise StanzaError("bad-request", "a roster set carries exactly one item")
        elem = items[0]
        try:
            contact = parse_jid(elem.get("jid") or "")
        except JIDError as exc:
            raise StanzaError("jid-malformed", str(exc)) from None
        if not isinstance(contact, BareJID):
            raise StanzaError("bad-request", "a roster item is a bare JID")
        if contact == user:
            raise StanzaError("not-allowed", "one's own JID is not a roster item")
        if elem.get("subscription") == "remove":
            await self.remove(user, contact)
            return None
        name = elem.get("name")
        groups = tuple(g.text for g in elem.findall(_GROUP))
        _check_item(name, groups)
        async with self.locked(user):
            roster = await self.load(user)
            old = roster.items.get(str(contact))
            base = old if old is not None else RosterItem(contact=str(contact))
            await self.put(user, roster, replace(base, name=name, groups=groups))
        return None

    async def remove(self, user: BareJID, contact: BareJID) -> None:
        """RFC 6121 §2.5.2: delete the item and cancel the subscriptions both ways."""
        key = str(contact)
        async with self.locked(user):
            roster = await self.load(user)
            old = roster.items.get(key)
            pending_in = key in roster.pending
            if old is None and not pending_in:
                raise StanzaError("item-not-found", f"{contact} is not in the roster")
            await self.set_pending(user, roster, key, None)
            if old is not None:
                await self.delete(user, roster, key)
        if contact.domain != self.server.domain:
            return  # no server-to-server yet: nothing to tell a remote contact
        sub = old.subscription if old is not None else "none"
        if sub in ("to", "both") or (old is not None and old.ask):
            self._send_subscription(user, contact, "unsubscribe")
        if sub in ("from", "both") or pending_in:
            self._send_subscription(user, contact, "unsubscribed")
        if sub in ("from", "both"):
            for session in self.server.sessions.available(user):
                gone = Element(
                    "presence",
                    ns.CLIENT,
                    {"type": "unavailable", "from": str(session.jid), "to": key},
                )
                self.server.deliver_to_account(gone, contact)

    def _send_subscription(self, user: BareJID, contact: BareJID, stype: str) -> None:
        stanza = Element(
            "presence", ns.CLIENT, {"type": stype, "from": str(user), "to": str(contact)}
        )
        self.server.deliver_to_account(stanza, contact)

    handlers = {
        IqGet(ns.ROSTER, ACCOUNT): on_get,
        IqSet(ns.ROSTER, ACCOUNT): on_set,
    }


def _check_item(name: str | None, groups: Iterable[str]) -> None:
    if name is not None and len(name.encode()) > MAX_NAME_BYTES:
        raise StanzaError("not-acceptable", f"the name is over {MAX_NAME_BYTES} bytes")
    seen: set[str] = set()
    for group in groups:
        if not group:
            raise StanzaError("not-acceptable", "a group name must not be empty")
        if len(group.encode()) > MAX_GROUP_BYTES:
            raise StanzaError("not-acceptable", f"a group name is over {MAX_GROUP_BYTES} bytes")
        if group in seen:
            raise StanzaError("bad-request", f"group {group!r} is given twice")
        seen.add(group)
    if len(seen) > MAX_GROUPS:
        raise StanzaError("not-acceptable", f"more than {MAX_GROUPS} groups")


def _item_element(item: RosterItem, *, removed: bool = False) -> Element:
    attrs = {"jid": item.contact}
    if removed:
        attrs["subscription"] = "remove"
        return Element("item", ns.ROSTER, attrs)
    if item.name is not None:
        attrs["name"] = item.name
    attrs["subscription"] = item.subscription
    if item.ask:
        attrs["ask"] = "subscribe"
    if item.approved:
        attrs["approved"] = "true"
    elem = Element("item", ns.ROSTER, attrs)
    for group in item.groups:
        elem.append(Element("group", ns.ROSTER, text=group))
    return elem


class RosterDependent(Module):
    """Base of the IM modules that work next to the roster module: their background
    tasks join its set (it stops last, so they are awaited before storage closes), or
    a set of their own without it.  ``roster_module`` is the loaded roster module, if
    any."""

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.tasks = BackgroundTasks()
        self.roster_module: RosterManager | None = None

    async def start(self) -> None:
        self.roster_module = find_module(self.server, RosterManager)
        if self.roster_module is not None:
            self.tasks = self.roster_module.tasks

    async def stop(self) -> None:
        await self.tasks.drain()
