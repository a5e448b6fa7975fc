"""Presence (RFC 6121 §4) and presence subscriptions (RFC 6121 §3) for local accounts.

Presence broadcast (``on_presence_broadcast``, presence without ``to``):

* Available (§4.2, §4.4): the session's last presence and priority are kept on the
  session (``session.presence``, ``session.priority`` feed the router's §8.5 rules) and
  the stanza is broadcast to the user's available resources (the sender included) and
  to the contacts with a subscription ``from``/``both``, unblocked.  The *initial*
  presence also gets the new resource the last presence of each of the user's other
  available resources (§4.2.2: a user is implicitly subscribed to itself), probes the
  contacts with ``to``/``both`` (§4.3: answered here with the last presence of each of
  their available resources, or unavailable presence with the last-activity time and
  status when they are offline, XEP-0203 stamp) and redelivers the pending subscription
  requests (§3.1.3).  Becoming available with a non-negative priority is announced to
  modules with ``on_presence_available(session)`` at once, before the roster is read
  (offline messages, XEP-0160).
  ``<show/>``, every ``<status xml:lang/>``, ``<priority/>`` and extensions such as
  XEP-0115 caps travel untouched: broadcasts are copies.
* Unavailable (§4.5), sent by the client or made by the server when a connection ends
  in any way (``session_gone``): broadcast like available presence, plus to every
  entity that got directed presence from that session (§4.6.3).  When the account's
  last available resource goes, modules with ``on_account_unavailable(user, stanza)``
  hear of it (XEP-0012 last activity).

Directed presence (§4.6): presence with a ``to`` is routed by the server; this module
remembers, per session, whom directed available presence went to (``screen_outbound``).

Presence to a local account (``on_presence_to_account``): probes are answered on the
account's behalf (only to the subscribed: others get ``unsubscribed``, §4.3.2);
available/unavailable/error presence reaches all available resources.

Subscriptions (§3, Appendix A): the user's outbound subscription stanzas are taken out
of normal routing in ``screen_outbound`` so that the user's roster changes even when the
contact does not exist or is remote (§3.1.2: outbound processing happens at the user's
server first); then, if Appendix A says so, the stanza is routed with the user's bare
JID as ``from``, and the contact's server (here, if local) does the inbound processing.
The transitions are the tables in ``roster.py``; effects:

* every change of a visible item is stored and pushed (§2.1.6); an inbound
  ``subscribed``, ``unsubscribed`` or ``unsubscribe`` that is delivered reaches every
  interested resource (those that requested the roster) and every available one
  before that push (§3.1.6, §3.2.3, §3.3.3);
* an inbound ``subscribe`` that is delivered is also kept pending and redelivered at
  each initial presence until answered (§3.1.3);
* approving (outbound ``subscribed``, or a pre-approval §3.4, or an already approved
  request §A.3.1) sends the approver's current presence to the new subscriber (§3.1.5);
* whoever loses a subscription ``from`` (outbound ``unsubscribed`` §3.2.2, inbound
  ``unsubscribe`` §3.3.3) sends unavailable presence from each available resource to
  the former subscriber.

Contacts on other domains stay in rosters, but no stanza reaches them until s2s exists:
outbound subscription stanzas to them bounce with ``remote-server-not-found`` (as the
server does for any stanza), broadcasts and probes skip them.  A subscription request to
an address of this domain with no account bounces with ``service-unavailable`` (§3.1.2)
after the roster push that records it.

Example (RFC 6121 §3.1.1, §4.2.1)::

    <presence id='xk3h1v69' to='juliet@example.com' type='subscribe'/>
    <presence><show>away</show><status xml:lang='en'>be right back</status>
      <priority>5</priority></presence>
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from xmppx import ns
from xmppx.core import JID, BareJID, Element, FullJID, JIDError, parse_jid
from xmppx.errors import StanzaError, stanza_error_reply
from xmppx.modules.blocking import CANCELLATIONS, Blocking, matches
from xmppx.modules.roster import (
    CachedRoster,
    RosterDependent,
    RosterManager,
    Transition,
    find_module,
    inbound,
    item_state,
    outbound,
    state_parts,
)
from xmppx.storage import RosterItem

if TYPE_CHECKING:
    from xmppx.sessions import Session

__all__ = [
    "MAX_DIRECTED",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "PRE_APPROVAL",
    "Presence",
    "delay_element",
    "priority_of",
    "stamped_by",
]

log = logging.getLogger("xmppx.presence")

_DELAY_TAG: Final = ns.clark(ns.DELAY, "delay")
#: RFC 6121 §4.7.2.3: priority is an integer from -128 to +127.
MIN_PRIORITY: Final = -128
MAX_PRIORITY: Final = 127
#: JIDs one session may have sent directed presence to by default (configuration key
#: ``presence.max_directed``): each is remembered until the session ends, to be told
#: then (§4.6.3); far more than the rooms and contacts a person is in touch with.
MAX_DIRECTED: Final = 1000
#: RFC 6121 §3.4.1: the stream feature announcing subscription pre-approval.
PRE_APPROVAL: Final = "urn:xmpp:features:pre-approval"

_SUBSCRIPTION_TYPES: Final = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed"})
_FROM: Final = frozenset({"from", "both"})
_TO: Final = frozenset({"to", "both"})


def _subscribers(roster: CachedRoster) -> Iterator[tuple[str, JID]]:
    """The contacts that may see the user's presence (subscription ``from`` or
    ``both``): each roster key with its JID."""
    for item in list(roster.items.values()):
        if item.subscription in _FROM:
            try:
                yield item.contact, parse_jid(item.contact)
            except JIDError:
                continue


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


def delay_element(stamp: datetime.datetime, by: str, text: str = "") -> Element:
    """XEP-0203 ``<delay xmlns='urn:xmpp:delay' from=... stamp=.../>`` (XEP-0082 UTC)."""
    utc = stamp.astimezone(datetime.UTC)
    value = utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return Element("delay", ns.DELAY, {"from": by, "stamp": value}, text=text)


def stamped_by(stanza: Element, domain: str) -> bool:
    """Whether ``stanza`` carries a XEP-0203 ``<delay/>`` from ``domain`` (a server
    stamps a message once, the first time it is held back: XEP-0203 §3)."""
    return any(d.get("from") == domain for d in stanza.findall(_DELAY_TAG))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Presence(RosterDependent):
    """RFC 6121 §3 and §4.  See the module docstring."""

    stream_features = (Element("sub", PRE_APPROVAL),)

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        #: Per session, the JIDs (strings) that got directed available presence (§4.6).
        self._directed: dict[Session, set[str]] = {}
        #: ``presence.max_directed``, default :data:`MAX_DIRECTED`.
        self.max_directed = int(self.setting("presence.max_directed", MAX_DIRECTED))
        self._roster: RosterManager = None  # type: ignore[assignment]  # set in start()
        self._blocking: Blocking | None = None
        self._on_available: list[Callable[[Session], None]] = []
        self._on_account_unavailable: list[Callable[[BareJID, Element], None]] = []

    async def start(self) -> None:
        await super().start()
        if self.roster_module is None:
            raise RuntimeError("the presence module needs the roster module")
        self._roster = self.roster_module
        self._blocking = find_module(self.server, Blocking)
        modules = self.server.modules
        self._on_available = [
            m.on_presence_available for m in modules if hasattr(m, "on_presence_available")
        ]
        self._on_account_unavailable = [
            m.on_account_unavailable for m in modules if hasattr(m, "on_account_unavailable")
        ]

    # -- helpers ------------------------------------------------------------------------

    def _blocks(self, user: BareJID, jid: JID) -> bool:
        return self._blocking is not None and self._blocking.blocks(user, jid)

    def _when_ready(
        self,
        user: BareJID,
        work: Callable[[CachedRoster], None],
        *,
        done: Callable[[], None] | None = None,
    ) -> None:
        """Run ``work`` with the user's roster and blocklist: at once when both are in
        memory and no roster change is under way, else after the changes queued before
        it (a broadcast must not reach a JID the user blocks, XEP-0191 §3.3).  ``done``
        is called afterwards, whether ``work`` ran, failed or could not run."""
        roster = self._roster
        blocking = self._blocking
        cached = roster.cached(user)
        if (
            cached is not None
            and not roster.is_busy(user)
            and (blocking is None or blocking.loaded(user))
        ):
            try:
                work(cached)
            finally:
                if done is not None:
                    done()
            return

        async def later() -> None:
            try:
                async with roster.locked(user):
                    if blocking is not None:
                        await blocking.load(user)
                    work(await roster.load(user))
            finally:
                if done is not None:
                    done()

        self.tasks.spawn(later())

    def _component(self, domain: str) -> Any:
        for module in self.server.modules:
            if getattr(module, "component_domain", None) == domain:
                return module
        return None

    def _route(self, stanza: Element, to: JID, session: Session | None) -> None:
        """Send a stanza the server made on a user's behalf: local accounts by the
        server's rules, a hosted service (component) through it; other domains are
        unreachable without s2s (bounced to ``session`` if given)."""
        if to.domain == self.server.domain:
            if to.local:
                full = to if isinstance(to, FullJID) else None
                self.server.deliver_to_account(stanza, to.bare, full=full)
            return
        component = self._component(to.domain)
        if component is not None:
            if session is not None:
                component.route_component(session, stanza, to)
            return
        if session is not None:
            _answer_error(
                session,
                stanza,
                StanzaError("remote-server-not-found", f"{to.domain} is not served here"),
            )

    def _to_contact(self, stanza: Element, contact: str) -> None:
        """Presence to a contact's bare JID, skipped when nobody is there to see it."""
        try:
            jid = parse_jid(contact)
        except JIDError:
            return
        if jid.domain != self.server.domain or not jid.local:
            return  # no s2s yet
        if self.server.sessions.available(jid.bare):
            self.server.deliver_to_account(stanza, jid.bare)

    def _send_current_presence(self, user: BareJID, contact: BareJID) -> None:
        """§3.1.5: the user's presence from each available resource to a new subscriber."""
        for session in self.server.sessions.available(user):
            if session.presence is None:
                continue
            stanza = session.presence.copy()
            stanza.set("from", str(session.jid))
            stanza.set("to", str(contact))
            self._route(stanza, contact, None)

    def _send_unavailable(self, user: BareJID, contact: BareJID) -> None:
        """§3.2.2, §3.3.3: unavailable from each available resource to a former
        subscriber."""
        for session in self.server.sessions.available(user):
            stanza = Element(
                "presence",
                ns.CLIENT,
                {"type": "unavailable", "from": str(session.jid), "to": str(contact)},
            )
            self._route(stanza, contact, None)

    # -- presence without 'to' (broadcast) ------------------------------------------------

    def on_presence_broadcast(self, session: Session, stanza: Element, stype: str) -> None:
        user = session.jid.bare
        if stype == "available":
            initial = session.presence is None
            was_eligible = not initial and session.priority >= 0
            if initial:
                session.available_since = time.monotonic()
            session.presence = stanza
            session.priority = priority_of(stanza)
            if session.priority >= 0 and not was_eligible:
                # from here on messages to the account reach this session: they wait
                # until the presence is handled and the modules are told (the stored
                # messages are then delivered first, XEP-0160)
                told: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self.server.hold_account(user, lambda: told)

                def available(roster: CachedRoster) -> None:
                    self._available(session, stanza, roster, initial)
                    for hook in self._on_available:
                        hook(session)

                self._when_ready(user, available, done=lambda: _settle(told))
            else:
                self._when_ready(
                    user, lambda roster: self._available(session, stanza, roster, initial)
                )
        elif stype == "unavailable":
            was_available = session.presence is not None
            if not was_available and not self._directed.get(session):
                return
            session.presence = None
            session.priority = 0
            self._when_ready(
                user,
                lambda roster: self._unavailable(session, stanza, roster, broadcast=was_available),
            )
        # Probes and subscription stanzas need a 'to'; an error without one goes nowhere.

    def session_gone(self, session: Session) -> None:
        was_available = session.presence is not None
        if not was_available and not self._directed.get(session):
            self._directed.pop(session, None)
            return
        session.presence = None
        session.priority = 0
        stanza = Element("presence", ns.CLIENT, {"type": "unavailable", "from": str(session.jid)})
        self._when_ready(
            session.jid.bare,
            lambda roster: self._unavailable(session, stanza, roster, broadcast=was_available),
        )

    def _available(
        self,
        session: Session,
        stanza: Element,
        roster: CachedRoster,
        initial: bool,
    ) -> None:
        user = session.jid.bare
        for own in self.server.sessions.resources(user):
            if own.presence is not None or own is session:
                copy = stanza.copy()
                copy.set("to", str(own.jid))
                own.deliver(copy)
            if initial and own is not session and own.presence is not None:
                # §4.2.2: the user is implicitly subscribed to itself, so the new
                # resource learns of the others as it would of a contact's
                theirs = own.presence.copy()
                theirs.set("from", str(own.jid))
                theirs.set("to", str(session.jid))
                session.deliver(theirs)
        probe: list[BareJID] = []
        for item in list(roster.items.values()):
            if item.subscription in _FROM or (initial and item.subscription in _TO):
                try:
                    contact = parse_jid(item.contact)
                except JIDError:
                    continue
                if self._blocks(user, contact):
                    continue
                if item.subscription in _FROM:
                    copy = stanza.copy()
                    copy.set("to", item.contact)
                    self._to_contact(copy, item.contact)
                if initial and item.subscription in _TO and contact.domain == self.server.domain:
                    probe.append(contact.bare)
        if initial:
            if probe:
                self.tasks.spawn(self._probe_contacts(session, probe))
            for contact_key, data in list(roster.pending.items()):
                try:
                    requester = parse_jid(contact_key)
                except JIDError:
                    continue
                if not self._blocks(user, requester):  # XEP-0191 §3.3, across sessions
                    session.deliver_raw(data)

    def _unavailable(
        self, session: Session, stanza: Element, roster: CachedRoster, *, broadcast: bool
    ) -> None:
        user = session.jid.bare
        covered: set[str] = set()
        if broadcast:
            for own in self.server.sessions.resources(user):
                if own.presence is not None or own is session:
                    copy = stanza.copy()
                    copy.set("to", str(own.jid))
                    own.deliver(copy)
            for key, contact in _subscribers(roster):
                if self._blocks(user, contact):
                    continue
                covered.add(key)
                copy = stanza.copy()
                copy.set("to", key)
                self._to_contact(copy, key)
        for target in sorted(self._directed.pop(session, ())):
            try:
                jid = parse_jid(target)
            except JIDError:
                continue
            if self._blocks(user, jid) or (
                str(jid.bare) in covered and not self._missed_broadcast(jid)
            ):
                continue
            copy = stanza.copy()
            copy.set("to", target)
            self._route(copy, jid, session)
        if broadcast and not self.server.sessions.available(user):
            for hook in self._on_account_unavailable:
                hook(user, stanza)

    def _missed_broadcast(self, jid: JID) -> bool:
        """Whether a subscriber's full JID that got directed presence is a session
        the broadcast to its bare JID did not reach, having sent no presence itself
        (§4.6.3: it must still learn the user went offline)."""
        if not isinstance(jid, FullJID):
            return False
        target = self.server.sessions.get(jid)
        return target is not None and target.presence is None

    # -- probes (§4.3) --------------------------------------------------------------------

    async def _probe_contacts(self, session: Session, contacts: list[BareJID]) -> None:
        for contact in contacts:
            await self._answer_probe(session.jid, contact)

    async def _answer_probe(self, requester: JID, contact: BareJID) -> None:
        """The contact's server answering a probe from ``requester`` (§4.3.2)."""
        asker = requester.bare
        if asker == contact:
            authorized = True
        else:
            if self._blocking is not None and await self._blocking.blocks_async(contact, requester):
                return  # XEP-0191: no answer at all
            roster = self._roster.cached(contact)
            if roster is None:
                if not await self.server.storage.accounts.exists(str(contact)):
                    return  # §8.5.1: no such account, the probe is ignored
                async with self._roster.locked(contact):
                    roster = await self._roster.load(contact)
            item = roster.items.get(str(asker))
            authorized = item is not None and item.subscription in _FROM
        if not authorized:
            reply = Element(
                "presence",
                ns.CLIENT,
                {"type": "unsubscribed", "from": str(contact), "to": str(asker)},
            )
            self._route(reply, asker, None)
            return
        available = self.server.sessions.available(contact)
        if available:
            for other in available:
                if other.presence is None:
                    continue
                answer = other.presence.copy()
                answer.set("from", str(other.jid))
                answer.set("to", str(requester))
                self._route(answer, requester, None)
            return
        answer = Element(
            "presence",
            ns.CLIENT,
            {"type": "unavailable", "from": str(contact), "to": str(requester)},
        )
        last = await self.server.storage.last_activity.get(str(contact))
        if last is not None:
            if last.status:
                answer.append(Element("status", ns.CLIENT, text=last.status))
            answer.append(delay_element(last.stamp, str(contact)))
        self._route(answer, requester, None)

    # -- presence with 'to' ---------------------------------------------------------------

    def screen_outbound(
        self, session: Session, stanza: Element, kind: str, stype: str, to: JID
    ) -> bool | StanzaError:
        if kind != "presence":
            return True
        if stype in _SUBSCRIPTION_TYPES:
            if not to.local and to.domain == self.server.domain:
                return True  # to the server itself: nothing to subscribe to
            self.tasks.spawn(self._outbound_subscription(session, stanza, stype, to.bare))
            return False
        if stype == "probe":
            if to.domain == self.server.domain and to.local:
                self.tasks.spawn(self._answer_probe(session.jid, to.bare))
                return False
            return True
        if to.bare != session.jid.bare:
            if stype == "available":
                directed = self._directed.setdefault(session, set())
                if str(to) not in directed and len(directed) >= self.max_directed:
                    return StanzaError(
                        "policy-violation",
                        f"directed presence to more than {self.max_directed} JIDs",
                    )
                directed.add(str(to))
            elif stype == "unavailable":
                self._directed.get(session, set()).discard(str(to))
        return True

    def screen_inbound(
        self, stanza: Element, kind: str, stype: str, sender: str, recipient: BareJID
    ) -> bool | StanzaError:
        """Passes everything; bookkeeping for §4.6.3: an entity a session sent directed
        presence to that says it is gone (unavailable presence from that JID to the
        session: a MUC occupant JID after a kick, a nick change or the room's end) is
        not told again when the session ends, and no longer counts against
        ``presence.max_directed``."""
        if kind == "presence" and stype == "unavailable" and self._directed:
            try:
                to = parse_jid(stanza.get("to") or "")
            except JIDError:
                return True
            session = self.server.sessions.get(to) if isinstance(to, FullJID) else None
            if session is not None:
                directed = self._directed.get(session)
                if directed:
                    directed.discard(sender)
        return True

    def on_presence_to_account(
        self, session: Session | None, stanza: Element, stype: str, bare: BareJID
    ) -> asyncio.Task[None] | None:
        """Presence to ``bare``.  A subscription stanza needs the roster first: the task
        doing it is returned, and the server holds later stanzas to ``bare`` until it is
        done (the contact's approval before her presence, RFC 6121 §3.1.5)."""
        if stype in _SUBSCRIPTION_TYPES:
            return self.tasks.spawn(self._inbound_subscription(stanza, stype, bare))
        if stype == "probe":
            try:
                requester = parse_jid(stanza.get("from") or "")
            except JIDError:
                return None
            self.tasks.spawn(self._answer_probe(requester, bare))
            return None
        sender = self._blocking_sender(stanza) if stype == "available" else None
        for target in self.server.sessions.available(bare):
            if sender is not None and self._blocks(sender, target.jid):
                continue  # a resource the sender blocks does not see it (XEP-0191 §3.3)
            target.deliver(stanza)
        return None

    def _blocking_sender(self, stanza: Element) -> BareJID | None:
        """The local account that sent ``stanza``, when it blocks anyone."""
        if self._blocking is None:
            return None
        try:
            sender = parse_jid(stanza.get("from") or "").bare
        except JIDError:
            return None
        return sender if self._blocking.blocks_someone(sender) else None

    async def blocklist_changed(
        self, user: BareJID, changed: frozenset[str], *, now_blocked: bool
    ) -> None:
        """XEP-0191 §3.3 and §3.4: the blocklist items ``changed`` were blocked
        (``now_blocked``) or unblocked.  A block sends unavailable presence from each
        available resource to the contacts the items cover that may see the user's
        presence: subscribers (``from``/``both``), and the JIDs that got directed
        presence (§4.6, they are then forgotten).  An unblock sends subscribers the
        current presence again.  An item that is a full JID covers that resource only."""
        async with self._roster.locked(user):
            roster = await self._roster.load(user)
        available = [s for s in self.server.sessions.available(user) if s.presence is not None]
        domain = self.server.domain
        covered: set[str] = set()
        # the full-JID items by their bare JID (one pass, whatever the roster's size)
        resources: dict[str, list[JID]] = {}
        for entry in sorted(changed):
            bare, slash, _ = entry.partition("/")
            if slash and "@" in bare:
                with contextlib.suppress(JIDError):
                    resources.setdefault(bare, []).append(parse_jid(entry))
        for key, contact in _subscribers(roster):
            if contact.domain != domain or not contact.local:
                continue
            assert isinstance(contact, BareJID)
            if matches(changed, contact):
                targets: list[JID] = [contact]
                covered.add(key)
            else:
                targets = resources.get(key, [])
            for target in targets:
                full = target if isinstance(target, FullJID) else None
                for session in available:
                    if now_blocked:
                        stanza = Element("presence", ns.CLIENT, {"type": "unavailable"})
                    else:
                        assert session.presence is not None
                        stanza = session.presence.copy()
                    stanza.set("from", str(session.jid))
                    stanza.set("to", str(target))
                    self.server.deliver_to_account(stanza, contact, full=full)
        if not now_blocked:
            return
        for session in self.server.sessions.resources(user):
            directed = self._directed.get(session)
            if not directed:
                continue
            for jid_text in sorted(directed):
                try:
                    jid = parse_jid(jid_text)
                except JIDError:
                    continue
                if not matches(changed, jid):
                    continue
                directed.discard(jid_text)
                if str(jid.bare) in covered:
                    continue
                stanza = Element(
                    "presence",
                    ns.CLIENT,
                    {"type": "unavailable", "from": str(session.jid), "to": jid_text},
                )
                self._route(stanza, jid, session)

    # -- subscriptions (§3, Appendix A) ---------------------------------------------------

    async def _apply(
        self,
        user: BareJID,
        roster: CachedRoster,
        contact: str,
        t: Transition,
        pending_stanza: bytes | None = None,
    ) -> None:
        """Store the state ``t`` leads to (caller holds the user's roster lock).  The
        item first: a roster that cannot take it (``roster.max_items``, 'not-allowed')
        refuses the change before a pending request is forgotten, so an approval that
        fails leaves the request to be answered later (§3.1.3)."""
        sub, ask, pending_in = state_parts(t.state)
        old = roster.items.get(contact)
        # "None" / "None + Pending In" without an item: nothing to show
        if old is not None or sub != "none" or ask or t.approved:
            base = old if old is not None else RosterItem(contact=contact)
            new = replace(base, subscription=sub, ask=ask, approved=t.approved)
            if new != old:
                await self._roster.put(user, roster, new)
        if not pending_in:
            await self._roster.set_pending(user, roster, contact, None)
        elif pending_stanza is not None and contact not in roster.pending:
            await self._roster.set_pending(user, roster, contact, pending_stanza)

    async def _outbound_subscription(
        self, session: Session, stanza: Element, stype: str, contact: BareJID
    ) -> None:
        """§3.1.2, §3.2.2, §3.3.2 and the tables of §A.2, at the user's server.  The
        stanza is routed under the user's roster lock, so that it reaches the contact
        before anything a later roster operation of the user sends (the cancellations of
        ``XMPPServer.remove_account``, which reads the roster under the same lock)."""
        user = session.jid.bare
        if contact == user:
            return
        key = str(contact)
        async with self._roster.locked(user):
            if self.server.is_being_removed(user):
                # read before the removal froze the session, run after it read the
                # roster: it would outlive the account
                _answer_error(
                    session, stanza, StanzaError("not-allowed", "the account is being removed")
                )
                return
            roster = await self._roster.load(user)
            item = roster.items.get(key)
            state = item_state(item, key in roster.pending)
            t = outbound(stype, state, item.approved if item is not None else False)
            try:
                await self._apply(user, roster, key, t)
            except StanzaError as exc:
                _answer_error(session, stanza, exc)
                return
            if not t.forward:
                return
            out = stanza.copy()
            out.set("from", str(user))
            out.set("to", key)
            if stype == "subscribe" and not await self._local_account_exists(contact):
                # §3.1.2: a request that cannot be delivered gets an error (the account's
                # server would ignore it, §8.5.1); the roster keeps the pending 'ask'
                _answer_error(
                    session, out, StanzaError("service-unavailable", f"{key} has no account here")
                )
                return
            self._route(out, contact, session)
        had_from = state_parts(state)[0] in _FROM
        has_from = state_parts(t.state)[0] in _FROM
        if has_from and not had_from:
            self._send_current_presence(user, contact)
        elif had_from and not has_from:
            self._send_unavailable(user, contact)

    async def _local_account_exists(self, contact: BareJID) -> bool:
        """False only for a JID of this domain with no account (a service's is True)."""
        if contact.domain != self.server.domain or not contact.local:
            return True
        return await self.server.account_exists(contact)

    async def _inbound_subscription(self, stanza: Element, stype: str, user: BareJID) -> None:
        """§3.1.3, §3.1.6, §3.2.3, §3.3.3 and the tables of §A.3, at the contact's
        server (``user`` is the recipient)."""
        try:
            sender_jid = parse_jid(stanza.get("from") or "")
        except JIDError:
            return
        sender = sender_jid.bare
        if sender == user:
            return
        # XEP-0191: nothing from a JID the user blocks, except a cancellation, which
        # changes the roster (and pushes it, RFC 6121 §3.2.3, §3.3.3) but shows the
        # user's sessions no presence from that JID
        blocked = self._blocking is not None and await self._blocking.blocks_async(user, sender_jid)
        if blocked and stype not in CANCELLATIONS:
            return
        key = str(sender)
        clean = stanza.copy()
        clean.set("from", key)
        clean.set("to", str(user))
        async with self._roster.locked(user):
            roster = await self._roster.load(user)
            item = roster.items.get(key)
            state = item_state(item, key in roster.pending)
            t = inbound(stype, state, item.approved if item is not None else False)
            if t.forward and stype != "subscribe" and not blocked:
                # §3.1.6, §3.2.3, §3.3.3: to every interested resource (and every available
                # one), before the roster push that the change makes
                targets = self._roster.interested(user)
                targets += [s for s in self.server.sessions.available(user) if s not in targets]
                for target in targets:
                    target.deliver(clean)
            pending = clean.serialize() if stype == "subscribe" and t.forward else None
            await self._apply(user, roster, key, t, pending)
        if t.forward and stype == "subscribe":
            # §3.1.3: a request goes to the available resources (and is kept pending)
            for target in self.server.sessions.available(user):
                target.deliver(clean)
        if t.reply is not None and not blocked:
            reply = Element("presence", ns.CLIENT, {"type": t.reply, "from": str(user), "to": key})
            self._route(reply, sender, None)
            self._send_current_presence(user, sender)
        elif (
            stype == "unsubscribe"
            and not blocked
            and t.forward
            and state_parts(state)[0] in _FROM
            and state_parts(t.state)[0] not in _FROM
        ):
            self._send_unavailable(user, sender)


def _answer_error(session: Session, stanza: Element, error: StanzaError) -> None:
    """Answer ``stanza``, which ``session`` sent (or the server sent on its behalf), with
    ``error`` (RFC 6120 §8.3), to that session."""
    reply = stanza_error_reply(stanza, error)
    if reply is not None:
        reply.set("to", str(session.jid))
        session.deliver(reply)
