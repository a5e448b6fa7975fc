"""The XEP-0045 multi-user chat service at ``conference.<domain>`` (or ``muc.domain``).

``MucService`` is a server module with a ``component_domain``: the server hands it every
stanza addressed to that domain (``route_component``).  It owns the rooms by JID, creates
a room when someone enters one that does not exist (§7.2.11, §10.1), answers the
service's own disco (§6.1, §6.2), forgets a session's occupancies when the session ends
(``session_gone``), tells occupants the service is going away at shutdown (§11.2, 332),
and persists persistent rooms and their affiliations in ``storage.muc`` (write-behind,
one ordered queue, flushed at ``stop``; restored at ``start``).

Limits come from the ``muc.*`` configuration keys (``xmppx.server.config``); the module
constants below are their defaults, each with the reason for its number.  Every refusal is
the error the spec names, never a silent drop: creating a room beyond
``max_rooms_per_user`` is ``not-allowed`` (§10.1.1), a full room ``service-unavailable``
(§7.2.9), a fast sender ``policy-violation`` (RFC 6120 §8.3.3.12).

Example (XEP-0045 §6.2)::

    <iq from='hag66@shakespeare.lit/pda' id='zb8q41f4' to='chat.shakespeare.lit' type='get'>
      <query xmlns='http://jabber.org/protocol/disco#items'/>
    </iq>
    <iq from='chat.shakespeare.lit' id='zb8q41f4' to='hag66@shakespeare.lit/pda' type='result'>
      <query xmlns='http://jabber.org/protocol/disco#items'>
        <item jid='coven@chat.shakespeare.lit' name='A Dark Cave'/>
      </query>
    </iq>
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, cast

from xmppx import ns
from xmppx.core import BareJID, Element, FullJID, JIDError, parse_jid
from xmppx.errors import StanzaError
from xmppx.modules._base import Module
from xmppx.modules.muc import _stanzas as st
from xmppx.modules.muc._config import RoomConfig
from xmppx.modules.muc._room import _PING, AffiliationRecord, Limits, Room
from xmppx.modules.roster import find_module
from xmppx.modules.vcard import VCardTemp
from xmppx.storage import RoomNotFound, StorageError

if TYPE_CHECKING:
    from xmppx.server._server import XMPPServer
    from xmppx.sessions import Session
    from xmppx.storage import Affiliation

__all__ = [
    "ADMIN_EXTRA_OCCUPANTS",
    "HISTORY_BYTES",
    "HISTORY_SIZE",
    "MAX_OCCUPANTS",
    "MAX_ROOMS_PER_USER",
    "MAX_SUBJECT_CHARS",
    "MESSAGE_BURST",
    "MESSAGE_RATE",
    "PENDING_IQS",
    "MucService",
]

log = logging.getLogger("xmppx.muc")


def _is_ping(stanza: Element) -> bool:
    """An XEP-0199 ping request: an iq get whose one child is ``<ping/>``."""
    return stanza.get("type") == "get" and len(stanza) == 1 and stanza[0].tag == _PING


#: Rooms one user may own at once: enough for any person or team bot, while one account
#: cannot fill the service's memory and storage with rooms (§14.5 "limiting the number
#: of rooms that any given non-administrative user can own").
MAX_ROOMS_PER_USER: Final = 50
#: Occupants of one room when its ``maxusers`` is "none", and the highest ``maxusers``
#: an owner may set: a fan-out of 500 copies per message is still a few milliseconds.
MAX_OCCUPANTS: Final = 500
#: §7.2.9: a full room "MUST allow the admin or owner to join, up to some reasonable
#: number of additional occupants" — 10 is enough for the moderation team to get in.
ADMIN_EXTRA_OCCUPANTS: Final = 10
#: Groupchat messages kept per room for history on entering (and the largest
#: ``muc#maxhistoryfetch``): a screenful of context, bounded memory per room.
HISTORY_SIZE: Final = 50
#: Serialized bytes of history kept per room by default (``muc.history_max_bytes``):
#: fifty messages of any sensible size, but not fifty stanzas of the 256 KiB limit
#: (12.5 MiB) in each of a user's rooms.
HISTORY_BYTES: Final = 1_048_576
#: Characters of a room's subject by default (``muc.max_subject_chars``); a longer one
#: is ``not-acceptable``.  Prosody's and ejabberd's subjects are a line or two.
MAX_SUBJECT_CHARS: Final = 1024
#: Messages per second one occupant may send, sustained, and the burst above it: people
#: type far slower, a paste of a few lines fits in the burst, a flood does not.
MESSAGE_RATE: Final = 2.0
MESSAGE_BURST: Final = 10
#: Iqs between occupants (§17.4) awaiting an answer, per room; the oldest is answered
#: with ``remote-server-timeout`` when more are sent, so a silent target cannot grow it.
PENDING_IQS: Final = 256
#: Seconds ``stop`` waits for queued storage writes before giving up on them.
FLUSH_TIMEOUT: Final = 10.0
#: A storage write that fails (the database restarting, say) is tried again after this
#: many seconds, doubling up to ``WRITE_RETRY_MAX``, for ``WRITE_RETRY_FOR`` seconds in
#: all; the writes behind it wait, in order.
WRITE_RETRY_FIRST: Final = 0.5
WRITE_RETRY_MAX: Final = 30.0
WRITE_RETRY_FOR: Final = 600.0


class MucService(Module):
    """XEP-0045 multi-user chat; see the module docstring."""

    def __init__(self, server: XMPPServer) -> None:
        super().__init__(server)
        self.domain: str = str(self.setting("muc.domain", "") or f"conference.{server.domain}")
        #: The server routes every stanza to this domain to ``route_component``.
        self.component_domain = self.domain
        #: Listed in the server's disco#items (XEP-0030, XEP-0045 §6.1).
        self.disco_items: list[tuple[str, str]] = [(self.domain, "Chatrooms")]
        self.max_rooms_per_user = int(self.setting("muc.max_rooms_per_user", MAX_ROOMS_PER_USER))
        self.limits = Limits(
            max_occupants=int(self.setting("muc.max_occupants", MAX_OCCUPANTS)),
            admin_extra=ADMIN_EXTRA_OCCUPANTS,
            history_size=int(self.setting("muc.history_size", HISTORY_SIZE)),
            history_bytes=int(self.setting("muc.history_max_bytes", HISTORY_BYTES)),
            message_rate=float(self.setting("muc.message_rate", MESSAGE_RATE)),
            message_burst=int(self.setting("muc.message_burst", MESSAGE_BURST)),
            pending_iqs=PENDING_IQS,
            subject_chars=int(self.setting("muc.max_subject_chars", MAX_SUBJECT_CHARS)),
        )
        self.rooms: dict[BareJID, Room] = {}
        self._joined: dict[FullJID, set[Room]] = {}
        self._writes: asyncio.Queue[Callable[[], Awaitable[object]]] | None = None
        #: the server's vCards, for requests to occupant JIDs (``load_vcard``)
        self._vcards: VCardTemp | None = None
        self._writer: asyncio.Task[None] | None = None
        self._shut_down = False
        self._direct: dict[FullJID, Session] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the persistent rooms of this service (§10.2) and start the writer."""
        self._vcards = find_module(self.server, VCardTemp)
        store = self.server.storage.muc
        for record in await store.list_rooms(service=self.domain):
            try:
                jid = BareJID(record.jid)
            except JIDError:
                log.warning("skipping stored room with a bad JID %r", record.jid)
                continue
            config = RoomConfig.from_json(record.config)
            if not config.persistent:
                config = RoomConfig.from_json({**config.to_json(), "persistent": True})
            affiliations = {
                a.user: AffiliationRecord(affiliation=a.affiliation, reason=a.reason, nick=a.nick)
                for a in await store.list_affiliations(record.jid)
            }
            stamp: datetime.datetime | None = None
            stamp_text = record.config.get("subject_stamp")
            if isinstance(stamp_text, str):
                try:
                    stamp = datetime.datetime.fromisoformat(stamp_text)
                except ValueError:
                    stamp = None
            self.rooms[jid] = Room(
                self,
                jid,
                config,
                affiliations=affiliations,
                subject=record.subject,
                subject_author=record.subject_author,
                subject_stamp=stamp,
            )
        self._writes = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        log.info("MUC service %s: %d persistent rooms", self.domain, len(self.rooms))

    async def stop(self) -> None:
        """Tell remaining occupants (332), then flush the storage queue."""
        self._shutdown_rooms()
        if self._writes is not None:
            try:
                await asyncio.wait_for(self._writes.join(), FLUSH_TIMEOUT)
            except TimeoutError:
                log.error("MUC storage writes still pending at shutdown")
        if self._writer is not None:
            self._writer.cancel()

    def _shutdown_rooms(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        for room in list(self.rooms.values()):
            room.shutdown()
        for jid, room in list(self.rooms.items()):
            if not room.config.persistent:
                del self.rooms[jid]

    # -- RoomHost ----------------------------------------------------------------------

    def send(self, stanza: Element, to: BareJID | FullJID) -> None:
        stanza.set("to", str(to))
        if isinstance(to, FullJID):
            direct = self._direct.get(to)
            if direct is not None:  # a session being torn down at shutdown
                direct.deliver(stanza)
                return
        if to.domain != self.server.domain:
            log.debug("no route to %s (no server-to-server yet)", to)
            return
        self.server.deliver_to_account(
            stanza, to.bare, full=to if isinstance(to, FullJID) else None
        )

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def clock(self) -> float:
        return time.monotonic()

    def session_joined(self, jid: FullJID, room: Room) -> None:
        self._joined.setdefault(jid, set()).add(room)

    def session_left(self, jid: FullJID, room: Room) -> None:
        rooms = self._joined.get(jid)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._joined[jid]

    def room_closed(self, room: Room) -> None:
        if self.rooms.get(room.jid) is room:
            del self.rooms[room.jid]

    def save_room(self, room: Room, *, affiliations: bool = False) -> None:
        if not room.config.persistent or room.locked:
            return
        from xmppx.storage import MucAffiliation, MucRoom

        config = room.config.to_json()
        if room.subject_stamp is not None:
            config["subject_stamp"] = room.subject_stamp.isoformat()
        record = MucRoom(
            jid=str(room.jid),
            config=config,
            subject=room.subject,
            subject_author=room.subject_author,
        )
        affs = (
            [
                MucAffiliation(
                    room=str(room.jid),
                    user=user,
                    affiliation=cast("Affiliation", rec.affiliation),
                    reason=rec.reason,
                    nick=rec.nick,
                )
                for user, rec in room.affiliations.items()
            ]
            if affiliations
            else []
        )
        store = self.server.storage.muc

        async def write() -> None:
            await store.put_room(record)
            for aff in affs:
                await store.set_affiliation(aff)

        self._write(write)

    def save_affiliation(self, room: Room, user: str) -> None:
        if not room.config.persistent or room.locked:
            return
        from xmppx.storage import MucAffiliation

        store = self.server.storage.muc
        rec = room.affiliations.get(user)
        if rec is None:
            self._write(lambda: store.delete_affiliation(str(room.jid), user))
            return
        aff = MucAffiliation(
            room=str(room.jid),
            user=user,
            affiliation=cast("Affiliation", rec.affiliation),
            reason=rec.reason,
            nick=rec.nick,
        )
        self._write(lambda: store.set_affiliation(aff))

    def delete_room(self, room: Room) -> None:
        store = self.server.storage.muc
        jid = str(room.jid)
        self._write(lambda: store.delete_room(jid))

    def invite(
        self, room: Room, invitee: BareJID | FullJID, message: Element, original: Element
    ) -> None:
        """§7.8.2: deliver if the invitee exists ("If the inviter supplies a non-existent
        JID, the room SHOULD return an item-not-found error"), after the room admits it
        (§9.5)."""
        if invitee.domain != self.server.domain:
            self._bounce_error(original, StanzaError("remote-server-not-found"), room.jid)
            return

        def deliver() -> None:
            room.admit_invitee(invitee.bare)
            self.send(message, invitee)

        if self.server.sessions.resources(invitee.bare):
            deliver()
            return

        async def check() -> None:
            if invitee.local and await self.server.storage.accounts.exists(str(invitee.bare)):
                deliver()
            else:
                self._bounce_error(original, StanzaError("item-not-found"), room.jid)

        self.server.spawn(check())

    def load_vcard(
        self, user: BareJID, asker: BareJID, answer: Callable[[Element | StanzaError], None]
    ) -> bool:
        vcards = self._vcards
        if vcards is None:
            return False

        async def load() -> None:
            try:
                card: Element | StanzaError = await vcards.card_for(user, asker)
            except StanzaError as exc:
                card = exc
            except Exception:
                log.exception("reading the vCard of %s failed", user)
                card = StanzaError("internal-server-error", type="wait")
            answer(card)

        self.server.spawn(load())
        return True

    # -- storage queue -----------------------------------------------------------------

    def _write(self, op: Callable[[], Awaitable[object]]) -> None:
        if self._writes is None:
            log.error("MUC storage write before start; dropped")
            return
        self._writes.put_nowait(op)

    async def _write_loop(self) -> None:
        """Write what rooms changed, in order.  A room answers its occupants before
        storage has the change (rooms are sans-I/O), so a write that fails is not
        dropped: it is tried again (``WRITE_RETRY_FIRST`` .. ``WRITE_RETRY_MAX``) for
        ``WRITE_RETRY_FOR`` seconds, the later writes waiting behind it, so a database
        that restarts loses no ban, grant or configuration (XEP-0045 §10.2).  What
        cannot be written however often it is tried (a room no longer stored) is
        logged and dropped at once."""
        assert self._writes is not None
        while True:
            op = await self._writes.get()
            try:
                await self._write_retrying(op)
            finally:
                self._writes.task_done()

    async def _write_retrying(self, op: Callable[[], Awaitable[object]]) -> None:
        """Run ``op`` until it succeeds, storage refuses it, or ``WRITE_RETRY_FOR`` has
        passed (``_write_loop``)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + WRITE_RETRY_FOR
        delay = WRITE_RETRY_FIRST
        while True:
            try:
                await op()
                return
            except (RoomNotFound, ValueError):
                log.exception("MUC storage write refused; dropped")
                return
            except StorageError as exc:
                if loop.time() + delay > give_up:
                    log.error(
                        "MUC storage write failed for %.0f s; dropped: %s", WRITE_RETRY_FOR, exc
                    )
                    return
                log.warning("MUC storage write failed, trying again in %.1f s: %s", delay, exc)
            except Exception:
                log.exception("MUC storage write failed; dropped")
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, WRITE_RETRY_MAX)

    # -- server hooks ------------------------------------------------------------------

    def _stopping(self, session: Session | None) -> bool:
        """At server shutdown the sessions end one by one and the presence module sends
        their unavailable presence to the rooms (RFC 6121 §4.6.3); the first sign of it,
        through either path, sends every occupant the §11.2 notice (332) instead, while
        all sessions can still be reached (the ending one directly: it is already
        unregistered)."""
        if self._shut_down or not self.server.stopping:
            return False
        if session is not None:
            self._direct[session.jid] = session
        try:
            self._shutdown_rooms()
        finally:
            self._direct.clear()
        return True

    def on_account_removed(self, user: BareJID) -> None:
        """The account ``user`` was deleted, with its stored affiliations: every room
        forgets its affiliation too, so that whoever registers the name next is not an
        owner, admin or member of the rooms it was (a room whose only owner it was is
        left without one, as in storage).  A ban stays, as in storage: it is the room's
        decision about the JID (§9.1), not a privilege of the account.

        The account's deletion removed the stored affiliations, but a grant made just
        before may still wait in this service's write queue: the deletion is queued
        again behind it, so that storage ends as memory does."""
        for room in self.rooms.values():
            record = room.affiliations.get(str(user))
            if record is not None and record.affiliation != "outcast":
                del room.affiliations[str(user)]
                self.save_affiliation(room, str(user))

    def session_gone(self, session: Session) -> None:
        """The session ended: it leaves every room it was in (§7.14).  (With a presence
        module that sends unavailable presence for directed presence, §4.6.3, the rooms
        have usually seen it leave already; then there is nothing left to do.)"""
        if self._stopping(session):
            return
        rooms = self._joined.pop(session.jid, None)
        for room in list(rooms or ()):
            room.session_gone(session.jid)

    def route_component(self, session: Session, stanza: Element, to: BareJID | FullJID) -> None:
        """Every stanza a local user sends to the service domain (``from`` stamped)."""
        self._stopping(session)
        sender = session.jid
        kind = stanza.name
        stype = stanza.get("type") or ("available" if kind == "presence" else "normal")
        if not to.local:
            self._to_service(sender, stanza, kind, stype, to)
            return
        nick = to.resource or None
        raw_nick: str | None = None
        if nick is not None:
            raw_nick = (stanza.get("to") or "").partition("/")[2]
        room = self.rooms.get(to.bare)
        if room is None:
            room = self._no_room(sender, stanza, kind, stype, to.bare, nick)
            if room is None:
                return
            room.on_presence(sender, stanza, nick, stype, raw_nick=raw_nick, created=True)
            room.close_if_empty()  # the creator's entry failed: no empty locked room stays
            return
        if kind == "presence":
            room.on_presence(sender, stanza, nick, stype, raw_nick=raw_nick)
        elif kind == "message":
            room.on_message(sender, stanza, nick, stype)
        else:
            room.on_iq(sender, stanza, nick, stype)

    def _no_room(
        self,
        sender: FullJID,
        stanza: Element,
        kind: str,
        stype: str,
        room_jid: BareJID,
        nick: str | None,
    ) -> Room | None:
        """A stanza for a room that does not exist: entering creates it (§10.1.1);
        anything else is ``item-not-found`` (§17.2 rule 3, §7.10)."""
        if kind == "presence":
            if stype != "available":
                return None
            if nick is None:
                self._bounce_error(stanza, StanzaError("jid-malformed"), room_jid)
                return None
            if stanza.find(ns.clark(ns.MUC, "x")) is None:
                self.send(st.not_in_room(f"{room_jid}/{nick}", "none"), sender)
                return None
            owned = sum(
                1
                for r in self.rooms.values()
                if (a := r.affiliations.get(str(sender.bare))) is not None
                and a.affiliation == "owner"
            )
            if owned >= self.max_rooms_per_user:
                self._bounce_error(
                    stanza,
                    StanzaError("not-allowed", f"you own {owned} rooms, the most allowed here"),
                    room_jid,
                )
                return None
            room = Room(
                self,
                room_jid,
                RoomConfig(history_fetch=min(RoomConfig().history_fetch, self.limits.history_size)),
                locked=True,
                affiliations={str(sender.bare): AffiliationRecord(affiliation="owner")},
            )
            self.rooms[room_jid] = room
            return room
        if stype in ("error", "result"):
            return None
        if kind == "iq" and nick is not None and _is_ping(stanza):
            # XEP-0410 §3.2: item-not-found would tell a self-pinging client it is still
            # in the room (under another nick), not-acceptable that it must join again
            self._bounce_error(stanza, StanzaError("not-acceptable", "no such room"), room_jid)
            return None
        self._bounce_error(stanza, StanzaError("item-not-found", "no such room"), room_jid)
        return None

    def _bounce_error(self, stanza: Element, error: StanzaError, room_jid: BareJID) -> None:
        sender = stanza.get("from")
        if sender is None:
            return
        if stanza.name == "presence":
            reply: Element | None = st.presence_error(stanza, error, room=str(room_jid))
        else:
            reply = st.reply_error(stanza, error, room=str(room_jid))
        if reply is not None:
            self.send(reply, parse_jid(sender))

    def _to_service(
        self, sender: FullJID, stanza: Element, kind: str, stype: str, to: BareJID | FullJID
    ) -> None:
        """The service itself (§6.1, §6.2): disco#info and disco#items; ping."""
        if kind != "iq" or stype not in ("get", "set") or isinstance(to, FullJID):
            if kind != "presence" and stype not in ("error", "result"):
                self._bounce_error(stanza, StanzaError("service-unavailable"), to.bare)
            return
        payload = stanza[0] if len(stanza) else None
        # a request is its payload's namespace and name (RFC 6120 §8.4)
        key = (stype, "", "") if payload is None else (stype, payload.namespace, payload.name)
        if payload is not None and payload.get("node"):
            self._bounce_error(stanza, StanzaError("item-not-found"), to.bare)
            return
        if key == ("get", ns.DISCO_INFO, "query"):
            q = Element("query", ns.DISCO_INFO)
            q.append(
                Element(
                    "identity",
                    ns.DISCO_INFO,
                    {"category": "conference", "type": "text", "name": "Chatrooms"},
                )
            )
            for feature in (
                ns.DISCO_INFO,
                ns.DISCO_ITEMS,
                ns.MUC,
                "http://jabber.org/protocol/muc#stable_id",
                ns.PING,
            ):
                q.append(Element("feature", ns.DISCO_INFO, {"var": feature}))
        elif key == ("get", ns.DISCO_ITEMS, "query"):
            q = Element("query", ns.DISCO_ITEMS)
            for jid in sorted(self.rooms, key=str):
                room = self.rooms[jid]
                if room.config.public and not room.locked:
                    q.append(
                        Element(
                            "item",
                            ns.DISCO_ITEMS,
                            {"jid": str(jid), "name": room.config.name or jid.local},
                        )
                    )
        elif key == ("get", ns.PING, "ping"):
            self.send(st.iq_result(stanza), sender)
            return
        else:
            self._bounce_error(stanza, StanzaError("service-unavailable"), to.bare)
            return
        self.send(st.iq_result(stanza, q), sender)
