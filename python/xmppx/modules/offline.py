"""Offline messages (XEP-0160) with delayed-delivery stamps (XEP-0203).

A message for an account with no available resource of non-negative priority reaches
``store_offline`` (the router's RFC 6121 §8.5.2.2 decision).  What is stored
(XEP-0160 §4 "Handling of Message Types"):

* ``normal`` (or no type, or one RFC 6121 §5.2.2 does not define: read as ``normal``)
  and ``chat``: stored, except messages carrying only XEP-0085
  chat states (no body, subject or other payload besides ``<thread/>``) and messages
  with a XEP-0334 ``<no-store/>`` or ``<no-permanent-store/>`` hint: dropped silently.
* ``groupchat`` (bounced by the router), ``headline`` and ``error``: never stored.

The message is committed to storage before this coroutine returns (the storage
contract: ``append`` returns once durable), with the time it arrived.  When the
per-user quota (configuration key ``offline.quota``, default 100) is full the
sender gets ``service-unavailable`` (XEP-0160 §3).  A message from a JID the recipient
blocks (XEP-0191) is answered with ``service-unavailable`` and not stored.

Delivery: when a session becomes available with a non-negative priority (its initial
presence, or a later one raising a negative priority), every stored message is
delivered to it in arrival order, before any other stanza for that session from then on
(which waits behind them, ``Session.begin_stored``; RFC 6120 §10.1), each with
``<delay xmlns='urn:xmpp:delay' from='domain' stamp='...'>Offline Storage</delay>``
(XEP-0160 §3), then deleted from storage.  Delivery waits for the client to read
(``Session.room``): a client that reads slowly is not dropped for it, and what a
session that ends midway was not given goes to another available session of the
account, if any, or stays stored; a session waiting to be resumed (XEP-0198) is waited
for.  With XEP-0198 delivery also waits for acknowledgements, so that a backlog larger
than ``sm.max_queue`` or ``limits.write_buffer_bytes`` goes through.  Only that session
waits for its client: the account's other sessions, and the messages for them, go on (a
phone that stops reading mid-backlog does not hold up the desktop); a client that stops
reading is dropped once more than ``limits.write_buffer_bytes`` wait for it.

A message stored again (one a session was given and never acknowledged, XEP-0198) keeps
the one stamp it got the first time (XEP-0203).  A message from a JID the user has
blocked since it was stored is deleted without being delivered (XEP-0191 §3.3).  A
message being given to one session is left out of what another reads meanwhile, so two
resources coming online together never both get a message.

Example (XEP-0160 §3)::

    <message from='romeo@montague.net/orchard' to='juliet@capulet.com'>
      <body>O blessed, blessed night!</body>
      <delay xmlns='urn:xmpp:delay' from='capulet.com'
             stamp='2002-09-10T23:08:25.000Z'>Offline Storage</delay>
    </message>
"""

from __future__ import annotations

import asyncio
import datetime
from typing import TYPE_CHECKING, Any, Final

from xmppx import ns
from xmppx.core import BareJID, Element, JIDError, parse, parse_jid, serialize
from xmppx.errors import StanzaError
from xmppx.modules.blocking import Blocking
from xmppx.modules.presence import delay_element, stamped_by
from xmppx.modules.roster import KeyedLocks, RosterDependent, find_module
from xmppx.router import message_type

if TYPE_CHECKING:
    from xmppx.sessions import Session
    from xmppx.storage import OfflineMessage

__all__ = ["MSGOFFLINE", "OFFLINE_QUOTA", "OfflineMessages", "worth_storing"]

#: Messages kept per user by default (configuration key ``offline.quota``), as ejabberd's
#: default for ordinary users: an absent user's backlog of real conversation, while a
#: flood towards them is refused early (XEP-0160 §3 service-unavailable).
OFFLINE_QUOTA: Final = 100
#: XEP-0160 §5: the service discovery feature.
MSGOFFLINE: Final = "msgoffline"

_CHATSTATES: Final = "http://jabber.org/protocol/chatstates"
_HINTS: Final = "urn:xmpp:hints"
_NO_STORE: Final = frozenset({"no-store", "no-permanent-store"})
_STORED_TYPES: Final = frozenset({"normal", "chat"})
_FULL: Final = "the recipient's offline storage is full"
_DELAY: Final = ns.clark(ns.DELAY, "delay")


def worth_storing(stanza: Element) -> bool:
    """XEP-0160 §4 (and XEP-0334 hints): whether an offline message is kept."""
    if message_type(stanza) not in _STORED_TYPES:
        return False
    chat_state = False
    payload = False
    for child in stanza:
        namespace = child.namespace
        if namespace == _HINTS and child.name in _NO_STORE:
            return False
        if namespace == _CHATSTATES:
            chat_state = True
        elif not (namespace == ns.CLIENT and child.name == "thread"):
            payload = True
    return payload or not chat_state


class OfflineMessages(RosterDependent):
    features = (MSGOFFLINE,)

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        #: The per-user quota (messages): ``offline.quota``, default :data:`OFFLINE_QUOTA`.
        self.quota: int = int(self.setting("offline.quota", OFFLINE_QUOTA))
        #: Per user, the ids of the stored messages a session is being given now.
        self._claimed: dict[BareJID, set[int]] = {}
        self._write_locks: KeyedLocks[BareJID] = KeyedLocks()
        #: Appends under way per recipient (a flood is refused before it queues up).
        self._in_flight: dict[BareJID, int] = {}
        self._blocking: Blocking | None = None

    async def start(self) -> None:
        await super().start()
        self._blocking = find_module(self.server, Blocking)

    async def store_offline(self, session: Session | None, stanza: Element, bare: BareJID) -> None:
        if not worth_storing(stanza):
            return
        in_flight = self._in_flight.get(bare, 0)
        if in_flight >= self.quota:
            # A flood: more writes under way than could ever fit; refuse without queueing
            # another one behind them (the quota check would refuse it anyway).
            self.server.bounce(session, stanza, StanzaError("service-unavailable", _FULL))
            return
        self.tasks.adopt(asyncio.current_task())
        self._in_flight[bare] = in_flight + 1
        try:
            # One append per recipient at a time, in arrival order: the storage's own
            # queue then never holds a flood of slow durable writes that other reads
            # (routing, bounces) would wait behind.
            async with self._write_locks.hold(bare):
                await self._store(session, stanza, bare)
        finally:
            left = self._in_flight[bare] - 1
            if left:
                self._in_flight[bare] = left
            else:
                del self._in_flight[bare]

    async def _store(self, session: Session | None, stanza: Element, bare: BareJID) -> None:
        if self._blocking is not None:
            try:
                sender = parse_jid(stanza.get("from") or "")
            except JIDError:
                return
            if await self._blocking.blocks_async(bare, sender):
                self.server.bounce(session, stanza, StanzaError("service-unavailable"))
                return
        if session is not None:
            # only this server stamps with its own domain: a client's such <delay/>
            # would pass for our first stamp (stamped_by) and hide the real one
            domain = self.server.domain
            for delay in stanza.findall(_DELAY):
                if delay.get("from") == domain:
                    stanza.remove(delay)
        stamp = datetime.datetime.now(datetime.UTC)
        stored = await self.server.storage.offline.append(
            str(bare), stanza.serialize(), stamp=stamp, quota=self.quota
        )
        if not stored:
            self.server.bounce(session, stanza, StanzaError("service-unavailable", _FULL))
            return
        # The recipient may have come online while we were storing: hand it over now.
        self._hand_over(bare)

    def _hand_over(self, user: BareJID) -> None:
        """Give what is stored for ``user`` to an available session of non-negative
        priority, if there is one (it is online already: its presence will not ask)."""
        # one whose client is connected first: one waiting for a resume may wait long
        candidates = sorted(self.server.sessions.available(user), key=lambda s: s.hibernating)
        for target in candidates:
            if target.priority >= 0:
                self.on_presence_available(target)
                break

    def on_presence_available(self, session: Session) -> None:
        """The presence module: ``session`` is now available with priority >= 0.  The
        stored messages go to it before any other stanza for it from now on
        (``Session.begin_stored``).  They are read after the message being stored, if
        any, and before any other routed to the account (``XMPPServer.hold_account``);
        the account waits for that read only, not for the client to read them."""
        session.begin_stored()
        self.server.hold_account(session.jid.bare, lambda: self._take(session))

    async def _take(self, session: Session) -> None:
        """Read the stored messages no other session of the account is being given
        (two coming online together never both get one), and start giving them."""
        user = session.jid.bare
        try:
            messages = await self.server.storage.offline.fetch(str(user))
            claimed = self._claimed.get(user, ())
            mine = [m for m in messages if m.id not in claimed]
            if not mine or self.server.sessions.get(session.jid) is not session:
                session.end_stored()  # none, or gone meanwhile: the next session gets them
                return
            self._claimed.setdefault(user, set()).update(m.id for m in mine)
        except BaseException:
            session.end_stored()
            raise
        self.tasks.spawn(self._deliver(session, mine))

    async def _deliver(self, session: Session, messages: list[OfflineMessage]) -> None:
        user = session.jid.bare
        domain = self.server.domain
        done: list[int] = []
        ended = gone = False
        try:
            for message in messages:
                stanza = parse(message.stanza)
                if await self._blocked(user, stanza):
                    done.append(message.id)
                    continue  # blocked since it was stored: never delivered (XEP-0191 §3.3)
                if not stamped_by(stanza, domain):
                    # one stamp, the first time it was stored: a message stored again
                    # (undelivered by a session, XEP-0198) keeps it (XEP-0203 §3)
                    stanza.append(delay_element(message.stamp, domain, "Offline Storage"))
                # paced by the client's reading (and acknowledging): stored messages can
                # be many and large, and a client dropped as a slow reader would lose
                # what was written
                if not await session.room(len(serialize(stanza, ns.CLIENT))):
                    gone = True  # the rest go to another session, or wait for one
                    break
                done.append(message.id)
                session.deliver_stored(stanza)
            ended = True
            session.end_stored()
            if done:
                await self.server.storage.offline.delete(str(user), done)
        finally:
            if not ended:
                session.end_stored()
            claimed = self._claimed.get(user)
            if claimed is not None:
                claimed.difference_update(m.id for m in messages)
                if not claimed:
                    del self._claimed[user]
            if gone:
                self._hand_over(user)

    async def _blocked(self, user: BareJID, stanza: Element) -> bool:
        if self._blocking is None:
            return False
        try:
            sender = parse_jid(stanza.get("from") or "")
        except JIDError:
            return False
        return await self._blocking.blocks_async(user, sender)
