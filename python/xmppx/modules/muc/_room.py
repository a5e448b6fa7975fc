"""One multi-user chat room (XEP-0045 §7–§10), sans-I/O.

A ``Room`` holds the occupants (by nick, each with one or more real sessions), the
long-lived affiliations, the discussion history and the subject.  It is driven by three
entry points — ``on_presence``, ``on_message``, ``on_iq`` — called by the service with
the stanza (``from`` already stamped by the server) and the sender's full JID; it answers
by calling ``RoomHost.send`` with stanzas addressed to real JIDs, and asks the host to
persist what changed (write-behind, in order).  Permission decisions are lookups in
``_privileges``; nothing here awaits, so every stanza is handled completely, in arrival
order, before the next.

Rules worth knowing (each cites the spec):

* Entering (§7.2): the error checks run in this order: locked room (``item-not-found``,
  §7.2.10), banned (``forbidden``, §7.2.7), members-only (``registration-required``,
  §7.2.6), password (``not-authorized``, §7.2.5), nick in use or reserved by another
  user (``conflict``, §7.2.8), room full (``service-unavailable``, §7.2.9; admins and
  owners get ``admin_extra`` more places).  Then, in the §7.1 order: the other
  occupants' presence, the self-presence (110, and 100/201/210 where they apply), the
  history with ``<delay/>`` from the room (§7.2.13), the subject (§7.2.15).
* A user already in the room under the same nick from another resource joins the same
  occupant (§7.2.8 "two or more in-room sessions"); room traffic and private messages
  go to every session.  A join presence (with ``<x xmlns='…muc'/>``) from a session
  already in the room is a resynchronisation request (§7.2.1, §17.3 rule 3).
* Presence without ``<x xmlns='…muc'/>`` from a non-occupant is answered with the
  §7.2.18 kick (110, 307, 333) instead of a join.
* Non-anonymous rooms (``whois`` anyone) show real JIDs to all, semi-anonymous rooms to
  moderators only (§7.2.3, §7.2.4); an occupant always sees its own.
* Roles and affiliations change only as ``_privileges`` allows; all items of one
  ``muc#admin`` set are checked before any is applied (§9.2: "SHOULD NOT apply any of
  the requested changes").  In a moderated room a moderator's voice decision is
  remembered for the user's next visit (§5.1, in memory, ``ROLE_MEMORY`` users).
* Leaving: the owner of a room still locked (not configured) who leaves, by presence or
  by its session ending, takes the room along, told with ``<destroy/>`` (§10.1.3).  A
  delivery-related error (``gone``, ``item-not-found``, ``recipient-unavailable``,
  ``redirect``, ``remote-server-*``) from an occupant's session removes it as a ghost,
  with 333 to the others (§18.1.2).
* History: an owner's message that carries its own ``<delay/>`` (prior history of a
  one-to-one chat, §7.9) gets no second one from the room; another occupant's
  ``<delay/>`` (or XEP-0091 ``jabber:x:delay``) is removed from its message, which would
  otherwise pass for one the room stamped (§7.2.13); so is a muc#user ``<x/>`` from any
  occupant, whose status codes would pass for the room's (§10.2.1).

Example (XEP-0045 §7.2.2, what a new occupant receives last before history)::

    <presence from='coven@chat.shakespeare.lit/thirdwitch' id='n13mt3l'
              to='hag66@shakespeare.lit/pda'>
      <x xmlns='http://jabber.org/protocol/muc#user'>
        <item affiliation='member' role='participant'/>
        <status code='110'/>
      </x>
    </presence>
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import unicodedata
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from xmppx import ns
from xmppx.core import BareJID, Element, FullJID, JIDError, parse_jid
from xmppx.errors import StanzaError
from xmppx.forms import form_values
from xmppx.modules.muc import _stanzas as st
from xmppx.modules.muc._config import RoomConfig, apply_form, config_form, room_features
from xmppx.modules.muc._config import roominfo_form as _roominfo_form
from xmppx.modules.muc._privileges import (
    AFFILIATION_RANK,
    LIST_ACCESS,
    ROLE_PRIVILEGES,
    ROLE_RANK,
    ListAccess,
    RolePrivilege,
    affiliation_change_error,
    default_role,
    role_change_error,
)

__all__ = ["AffiliationRecord", "HistoryEntry", "Limits", "Occupant", "Room", "RoomHost"]

NS_REQUEST: Final = "http://jabber.org/protocol/muc#request"
NS_REGISTER_FORM: Final = "http://jabber.org/protocol/muc#register"
#: §7.12: the disco node for discovering one's reserved nickname.
NODE_RESERVED_NICK: Final = "x-roomuser-item"
#: Voice grants and revocations remembered per moderated room (§5.1: roles "SHOULD"
#: persist across visits in moderated rooms), oldest forgotten first: a busy room's
#: regulars fit, a stream of drive-by visitors cannot grow it without bound.
ROLE_MEMORY: Final = 1000
#: Invitations in one message (§7.8.2 allows several): a team at once, not a spam run
#: multiplying one rate-limit token into thousands of messages.
MAX_INVITES: Final = 20
#: Invitations a room remembers until they are declined (§7.8.2), the oldest forgotten
#: first: a decline is passed on only to someone who invited the decliner.
MAX_OPEN_INVITATIONS: Final = 1000


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Service limits a room enforces (the service reads them from configuration)."""

    #: Occupants of one room when its ``max_users`` is "none", and the highest
    #: ``max_users`` an owner may set.
    max_occupants: int
    #: §7.2.9: admins and owners may still enter a full room, up to this many more.
    admin_extra: int
    #: Groupchat messages kept per room for history on entering (§7.2.13), and their
    #: serialized bytes at most (the oldest go first).
    history_size: int
    history_bytes: int
    #: Messages per second per occupant (sustained), and the burst allowed.
    message_rate: float
    message_burst: int
    #: Forwarded iqs (§17.4 rule 3) awaiting an answer, per room.
    pending_iqs: int
    #: Characters of a subject (§8.1), which every entrant is sent and disco#info shows.
    subject_chars: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AffiliationRecord:
    """A stored affiliation (§5.2): ``owner``/``admin``/``member``/``outcast``, the
    reason given when it was set and a reserved nickname (§7.12, never for outcasts)."""

    affiliation: str
    reason: str = ""
    nick: str | None = None


_PING: Final = ns.clark(ns.PING, "ping")
_VCARD: Final = ns.clark(ns.VCARD, "vCard")
_DELAY: Final = ns.clark(ns.DELAY, "delay")
#: XEP-0091's legacy delay, which clients still read as a date
_LEGACY_DELAY: Final = ns.clark("jabber:x:delay", "x")
#: what only the room says in a groupchat message (status codes, §10.2.1)
_MUC_USER_X: Final = ns.clark(ns.MUC_USER, "x")
#: Stanza errors that say a stanza could not be delivered (§18.1.2).
_DELIVERY_ERRORS: Final = frozenset(
    {
        "gone",
        "item-not-found",
        "recipient-unavailable",
        "redirect",
        "remote-server-not-found",
        "remote-server-timeout",
    }
)


@dataclass(frozen=True, kw_only=True, slots=True)
class HistoryEntry:
    """A groupchat message as reflected (``from`` the occupant JID, no ``to``).
    ``dated``: an owner's message that carries its own ``<delay/>`` (prior history of a
    one-to-one chat turned into a room, §7.9), which gets no second one from the room."""

    stanza: Element
    stamp: datetime.datetime
    dated: bool = False
    #: serialized bytes, counted against ``Limits.history_bytes``
    size: int = 0


@dataclass(eq=False, kw_only=True, slots=True)
class Occupant:
    """Someone in the room (§4 "occupant"): a nick, a role, and the real sessions that
    joined under this nick, each with its last presence (``to``/``from`` and MUC
    extensions removed).  The most recently active session is ``jid``."""

    nick: str
    bare: BareJID
    role: str
    sessions: OrderedDict[FullJID, Element] = field(default_factory=OrderedDict)
    tokens: float = 0.0
    refilled: float = 0.0

    @property
    def jid(self) -> FullJID:
        return next(reversed(self.sessions))

    @property
    def presence(self) -> Element:
        return self.sessions[self.jid]


class RoomHost(Protocol):
    """What a room needs from the service around it."""

    domain: str
    limits: Limits

    def send(self, stanza: Element, to: BareJID | FullJID) -> None:
        """Deliver ``stanza`` (``from`` set) to a real JID; ``to`` is set here."""

    def now(self) -> datetime.datetime:
        """The wall-clock time (UTC) for history and subject stamps."""

    def clock(self) -> float:
        """Monotonic seconds, for rate limits."""

    def save_room(self, room: Room, *, affiliations: bool = False) -> None:
        """Persist the room (config, subject) if it is persistent; with
        ``affiliations`` also every affiliation (a room that just became persistent)."""

    def save_affiliation(self, room: Room, user: str) -> None:
        """Persist the current affiliation record of ``user`` (or its removal)."""

    def delete_room(self, room: Room) -> None:
        """Remove the room and its affiliations from storage."""

    def room_closed(self, room: Room) -> None:
        """The room no longer exists (destroyed, or temporary and empty)."""

    def session_joined(self, jid: FullJID, room: Room) -> None: ...

    def session_left(self, jid: FullJID, room: Room) -> None: ...

    def invite(
        self, room: Room, invitee: BareJID | FullJID, message: Element, original: Element
    ) -> None:
        """Send a mediated invitation (§7.8.2) if ``invitee`` exists, after
        ``room.admit_invitee``, else answer ``original`` with ``item-not-found``."""

    def load_vcard(
        self, user: BareJID, asker: BareJID, answer: Callable[[Element | StanzaError], None]
    ) -> bool:
        """Look up the vCard of the account ``user`` as ``asker`` may see it (XEP-0054
        §3.1) and call ``answer`` with it or with the error to return; ``False`` (and
        no call) when the server keeps no vCards."""


def _nick_visible(nick: str) -> bool:
    """§17.1: no empty or invisible nicknames (only spaces, controls, format chars)."""
    return any(unicodedata.category(c)[0] not in ("Z", "C") for c in nick)


def _clean_presence(stanza: Element) -> Element:
    """The presence content to reflect: no addressing, no MUC extensions (§17.3 rule 6:
    "If a MUC service receives such extended presence information from an occupant, it
    MUST NOT reflect it")."""
    clean = Element("presence", ns.CLIENT)
    lang = stanza.get(ns.XML_LANG)
    if lang:
        clean.set(ns.XML_LANG, lang)
    for child in stanza:
        if child.namespace not in (ns.MUC, ns.MUC_USER):
            clean.append(child.copy())
    return clean


def _int_attr(el: Element, name: str) -> int | None:
    text = el.get(name)
    if text is None:
        return None
    try:
        return max(0, int(text))
    except ValueError:
        return None


class Room:
    """See the module docstring."""

    def __init__(
        self,
        host: RoomHost,
        jid: BareJID,
        config: RoomConfig,
        *,
        locked: bool = False,
        affiliations: dict[str, AffiliationRecord] | None = None,
        subject: str = "",
        subject_author: str = "",
        subject_stamp: datetime.datetime | None = None,
    ) -> None:
        self.host = host
        self.jid = jid
        self.config = config
        self.locked = locked
        self.affiliations: dict[str, AffiliationRecord] = dict(affiliations or {})
        self.subject = subject
        self.subject_author = subject_author
        self.subject_stamp = subject_stamp
        self.occupants: dict[str, Occupant] = {}
        self.by_session: dict[FullJID, Occupant] = {}
        self.history: deque[HistoryEntry] = deque(maxlen=max(0, host.limits.history_size))
        self._history_bytes = 0
        self.closed = False
        self._iq_ids = itertools.count(1)
        #: forwarded iq id → (requester session, its id, target session)
        #: iqs passed on to an occupant, by the id they went with: (requester, its id,
        #: the occupant's real JID, its occupant JID then)
        self._pending_iqs: OrderedDict[str, tuple[FullJID, str, FullJID, str]] = OrderedDict()
        #: bare JID → "participant"/"visitor" set by a moderator (in memory only)
        self._voice: OrderedDict[str, str] = OrderedDict()
        #: (invitee, inviter) bare JIDs of invitations sent and not declined (in memory)
        self._invited: OrderedDict[tuple[BareJID, BareJID], None] = OrderedDict()

    # -- queries ------------------------------------------------------------------------

    def affiliation(self, bare: BareJID) -> str:
        """The affiliation of ``bare`` (§5.2), counting a ban of its whole domain (§9.2:
        "the domain itself matches, as does any user@domain")."""
        record = self.affiliations.get(str(bare))
        if record is not None:
            return record.affiliation
        domain_record = self.affiliations.get(bare.domain)
        if domain_record is not None and domain_record.affiliation == "outcast":
            return "outcast"
        return "none"

    def users_with(self, affiliation: str) -> list[str]:
        return sorted(k for k, r in self.affiliations.items() if r.affiliation == affiliation)

    def owners_of(self) -> list[str]:
        return self.users_with("owner")

    def _nick_reserved_by(self, nick: str) -> str | None:
        for user, record in self.affiliations.items():
            if record.nick == nick and record.affiliation != "outcast":
                return user
        return None

    def _occupant_jid(self, nick: str) -> str:
        return f"{self.jid}/{nick}"

    def _role_of_user(self, sender: FullJID) -> str:
        occ = self.by_session.get(sender)
        return occ.role if occ is not None else "none"

    def _may(self, occ: Occupant, privilege: RolePrivilege) -> bool:
        """§5.1.1 with the starred cells adjusted by configuration (``CONFIGURABLE``)."""
        has = privilege in ROLE_PRIVILEGES[occ.role]
        cfg = self.config
        if privilege is RolePrivilege.MODIFY_SUBJECT:
            return occ.role == "moderator" or (cfg.change_subject and has)
        if privilege is RolePrivilege.SEND_PRIVATE_MESSAGES:
            needed = {
                "anyone": "visitor",
                "participants": "participant",
                "moderators": "moderator",
            }.get(cfg.allow_pm)
            return has and needed is not None and ROLE_RANK[occ.role] >= ROLE_RANK[needed]
        if privilege is RolePrivilege.INVITE_OTHER_USERS and cfg.members_only:
            admin = AFFILIATION_RANK[self.affiliation(occ.bare)] >= AFFILIATION_RANK["admin"]
            return admin or (cfg.allow_invites and has)
        return has

    # -- sending helpers ----------------------------------------------------------------

    def _item(
        self,
        occ: Occupant,
        recipient: Occupant | None,
        *,
        role: str | None = None,
        affiliation: str | None = None,
        nick: str = "",
    ) -> dict[str, str]:
        attrs = {
            "affiliation": affiliation if affiliation is not None else self.affiliation(occ.bare),
            "role": role if role is not None else occ.role,
        }
        if (
            recipient is occ
            or self.config.non_anonymous
            or (recipient is not None and recipient.role == "moderator")
        ):
            attrs["jid"] = str(occ.jid)
        if nick:
            attrs["nick"] = nick
        return attrs

    def _presence(
        self,
        occ: Occupant,
        recipient: Occupant,
        *,
        sessions: Iterable[FullJID] | None = None,
        base: Element | None = None,
        unavailable: bool = False,
        codes: Sequence[str] = (),
        self_codes: Sequence[str] = (),
        role: str | None = None,
        affiliation: str | None = None,
        nick: str = "",
        actor: str = "",
        reason: str = "",
        destroy: st.Destroy | None = None,
        ident: str | None = None,
        out: list[tuple[Element, FullJID]] | None = None,
    ) -> None:
        """Presence of ``occ`` as ``recipient`` may see it, to the recipient's sessions
        (or ``sessions``); queued on ``out`` instead of sent when given."""
        own = recipient is occ
        p = (base if base is not None else occ.presence).copy()
        p.pop_attr("type")
        p.pop_attr("id")
        if unavailable:
            p.set("type", "unavailable")
        p.set("from", self._occupant_jid(occ.nick))
        all_codes = [*codes, *(self_codes if own else ())]
        if own:
            all_codes.append(st.SELF)
        p.append(
            st.muc_user_x(
                self._item(occ, recipient, role=role, affiliation=affiliation, nick=nick),
                codes=all_codes,
                actor_nick=actor,
                reason=reason,
                destroy=destroy,
            )
        )
        if own and ident:
            p.set("id", ident)
        for session in list(sessions if sessions is not None else recipient.sessions):
            if out is not None:
                out.append((p.copy(), session))
            else:
                self.host.send(p.copy(), session)

    def _broadcast(self, occ: Occupant) -> None:
        """``occ``'s presence to every occupant (itself included, with 110)."""
        for recipient in list(self.occupants.values()):
            self._presence(occ, recipient)

    def _flush(self, out: list[tuple[Element, FullJID]]) -> None:
        """Send the presences one request deferred (§8.2's order), except to sessions
        the same request took out of the room: after its own unavailable presence an
        occupant gets nothing more from the room (§7.14)."""
        for stanza, to in out:
            if to in self.by_session:
                self.host.send(stanza, to)
        out.clear()

    def _error(
        self, stanza: Element, condition: str, text: str = "", *, type: str | None = None
    ) -> None:
        self._send_error(stanza, StanzaError(condition, text, type=type))

    def _send_error(self, stanza: Element, error: StanzaError) -> None:
        sender = stanza.get("from")
        if sender is None:
            return
        if stanza.name == "presence":
            if stanza.get("type") == "error":
                return
            reply: Element | None = st.presence_error(stanza, error, room=str(self.jid))
        else:
            reply = st.reply_error(stanza, error, room=str(self.jid))
        if reply is not None:
            self.host.send(reply, parse_jid(sender))

    def _result(self, stanza: Element, payload: Element | None = None) -> None:
        sender = stanza.get("from")
        if sender is not None:
            self.host.send(st.iq_result(stanza, payload), parse_jid(sender))

    def _send_to_occupants(self, stanza: Element, occupants: Iterable[Occupant]) -> None:
        for occ in list(occupants):
            for session in list(occ.sessions):
                self.host.send(stanza.copy(), session)

    # -- presence (§7.2, §7.6, §7.7, §7.14) ---------------------------------------------

    def on_presence(
        self,
        sender: FullJID,
        stanza: Element,
        nick: str | None,
        stype: str,
        *,
        raw_nick: str | None = None,
        created: bool = False,
    ) -> None:
        """Presence to the room (``nick`` None) or to an occupant JID."""
        occ = self.by_session.get(sender)
        if stype == "unavailable":
            if occ is not None:  # §17.3 rule 5: from a non-occupant it is ignored
                self._leave(occ, sender, stanza)
            return
        if stype == "error":
            self._delivery_failed(sender, stanza)
            return
        if stype != "available":
            return  # §17.3 rules 1–2: probes and subscriptions neither join nor leave
        if nick is None:
            self._error(stanza, "jid-malformed", "a room nickname is required")  # §7.2.1
            return
        if not _nick_visible(nick):
            self._error(stanza, "jid-malformed", "the nickname must be visible")  # §17.1
            return
        muc_x = stanza.find(ns.clark(ns.MUC, "x"))
        if occ is None:
            if muc_x is None:
                self._not_in_room(sender, nick)
                return
            self._join(sender, stanza, nick, muc_x, raw_nick=raw_nick, created=created)
        elif occ.nick != nick:
            self._change_nick(occ, sender, stanza, nick, raw_nick=raw_nick)
        else:
            self._update_presence(occ, sender, stanza, resync=muc_x)

    def _not_in_room(self, sender: FullJID, nick: str) -> None:
        p = st.not_in_room(self._occupant_jid(nick), self.affiliation(sender.bare))
        self.host.send(p, sender)

    def _join(
        self,
        sender: FullJID,
        stanza: Element,
        nick: str,
        muc_x: Element,
        *,
        raw_nick: str | None,
        created: bool,
    ) -> None:
        cfg = self.config
        aff = self.affiliation(sender.bare)
        privileged = AFFILIATION_RANK[aff] >= AFFILIATION_RANK["admin"]
        existing = self.occupants.get(nick)
        error: StanzaError | None = None
        if self.locked and aff != "owner":
            error = StanzaError("item-not-found", "the room is locked until it is configured")
        elif aff == "outcast":
            error = StanzaError("forbidden", "you are banned from this room")
        elif cfg.members_only and AFFILIATION_RANK[aff] < AFFILIATION_RANK["member"]:
            error = StanzaError("registration-required", "this room is members-only")
        elif cfg.password_protected and muc_x.findtext(ns.clark(ns.MUC, "password")) != (
            cfg.password
        ):
            error = StanzaError("not-authorized", "a password is required to enter")
        elif existing is not None and existing.bare != sender.bare:
            error = StanzaError("conflict", "that nickname is in use")
        elif (owner := self._nick_reserved_by(nick)) is not None and owner != str(sender.bare):
            error = StanzaError("conflict", "that nickname is reserved")
        elif existing is None:
            limits = self.host.limits
            # a stored room keeps its maxusers; the service's limit still caps it
            cap = min(cfg.max_users or limits.max_occupants, limits.max_occupants)
            count = len(self.occupants)
            if count >= cap and (not privileged or count >= cap + limits.admin_extra):
                error = StanzaError("service-unavailable", "the room is full", type="wait")
        if error is not None:
            self._send_error(stanza, error)
            return
        history_request = muc_x.find(ns.clark(ns.MUC, "history"))
        presence = _clean_presence(stanza)
        self_codes = []
        if cfg.non_anonymous:
            self_codes.append(st.NON_ANONYMOUS)
        if created:
            self_codes.append(st.ROOM_CREATED)
        if raw_nick is not None and raw_nick != nick:
            self_codes.append(st.NICK_MODIFIED)
        if existing is not None:  # another resource of the same user (§7.2.8)
            occ = existing
            occ.sessions[sender] = presence
            self.by_session[sender] = occ
            self.host.session_joined(sender, self)
            for recipient in list(self.occupants.values()):
                sessions = [s for s in recipient.sessions if s != sender]
                self._presence(occ, recipient, sessions=sessions)
        else:
            role = default_role(aff, moderated=cfg.moderated) or "visitor"
            if cfg.moderated and role != "moderator":
                role = self._voice.get(str(sender.bare), role)
            limits = self.host.limits
            occ = Occupant(
                nick=nick,
                bare=sender.bare,
                role=role,
                tokens=float(limits.message_burst),
                refilled=self.host.clock(),
            )
            occ.sessions[sender] = presence
            for recipient in list(self.occupants.values()):
                self._presence(occ, recipient)
            self.occupants[nick] = occ
            self.by_session[sender] = occ
            self.host.session_joined(sender, self)
        self._sync(
            occ,
            sender,
            self_codes=self_codes,
            ident=stanza.get("id"),
            history_request=history_request,
        )

    def _sync(
        self,
        occ: Occupant,
        session: FullJID,
        *,
        self_codes: Sequence[str],
        ident: str | None,
        history_request: Element | None,
    ) -> None:
        """§7.1 order for one session: others' presence, self-presence, history, subject."""
        for other in list(self.occupants.values()):
            if other is not occ:
                self._presence(other, occ, sessions=[session])
        self._presence(occ, occ, sessions=[session], self_codes=self_codes, ident=ident)
        self._send_history(session, history_request)
        self._send_subject(session)

    def _send_history(self, session: FullJID, request: Element | None) -> None:
        """§7.2.13–§7.2.14: at most ``muc#maxhistoryfetch`` messages, narrowed by the
        request's ``maxstanzas``, ``seconds``, ``since`` and ``maxchars`` (complete
        stanzas only, counted as serialized XML)."""
        limit = min(self.config.history_fetch, len(self.history))
        entries = list(self.history)
        max_chars: int | None = None
        if request is not None:
            cutoff: datetime.datetime | None = None
            seconds = _int_attr(request, "seconds")
            if seconds is not None:
                try:
                    cutoff = self.host.now() - datetime.timedelta(seconds=seconds)
                except OverflowError:
                    cutoff = None  # further back than any date: no limit
            since_text = request.get("since")
            if since_text:
                try:
                    since = datetime.datetime.fromisoformat(since_text)
                except ValueError:
                    since = None
                if since is not None:
                    if since.tzinfo is None:
                        since = since.replace(tzinfo=datetime.UTC)
                    cutoff = since if cutoff is None else max(cutoff, since)
            if cutoff is not None:
                entries = [e for e in entries if e.stamp >= cutoff]
            max_stanzas = _int_attr(request, "maxstanzas")
            if max_stanzas is not None:
                limit = min(limit, max_stanzas)
            max_chars = _int_attr(request, "maxchars")
        entries = entries[max(0, len(entries) - limit) :] if limit > 0 else []
        messages: list[Element] = []
        for entry in entries:
            m = entry.stanza.copy()
            m.set("to", str(session))
            if not entry.dated:
                m.append(st.delay(entry.stamp, by=str(self.jid)))
            messages.append(m)
        if max_chars is not None:
            kept: list[Element] = []
            total = 0
            for m in reversed(messages):
                size = len(m.serialize().decode())
                if total + size > max_chars:
                    break
                total += size
                kept.append(m)
            messages = kept[::-1]
        for m in messages:
            self.host.send(m, session)

    def _subject_message(self) -> Element:
        sender = self._occupant_jid(self.subject_author) if self.subject_author else str(self.jid)
        m = Element(
            "message", ns.CLIENT, {"type": "groupchat", "from": sender, "id": uuid.uuid4().hex}
        )
        m.append(Element("subject", ns.CLIENT, text=self.subject))
        if self.subject_stamp is not None:
            m.append(st.delay(self.subject_stamp, by=str(self.jid)))
        return m

    def _send_subject(self, session: FullJID) -> None:
        """§7.2.15: the subject, an empty ``<subject/>`` if none was ever set."""
        self.host.send(self._subject_message(), session)

    def _update_presence(
        self, occ: Occupant, sender: FullJID, stanza: Element, *, resync: Element | None
    ) -> None:
        """§7.7 availability change, or a §7.2.1 resynchronisation request."""
        presence = _clean_presence(stanza)
        changed = presence != occ.sessions.get(sender)
        if resync is None:
            if not self._may(occ, RolePrivilege.CHANGE_AVAILABILITY):
                self._error(stanza, "forbidden")
                return
            if not self._rate_ok(occ, stanza):
                return  # the others keep seeing the presence before
        occ.sessions[sender] = presence
        occ.sessions.move_to_end(sender)
        if resync is not None:
            codes = [st.NON_ANONYMOUS] if self.config.non_anonymous else []
            if changed:
                for recipient in list(self.occupants.values()):
                    sessions = [s for s in recipient.sessions if s != sender]
                    self._presence(occ, recipient, sessions=sessions)
            self._sync(
                occ,
                sender,
                self_codes=codes,
                ident=stanza.get("id"),
                history_request=resync.find(ns.clark(ns.MUC, "history")),
            )
            return
        for recipient in list(self.occupants.values()):
            self._presence(occ, recipient, ident=stanza.get("id"))

    def _change_nick(
        self, occ: Occupant, sender: FullJID, stanza: Element, nick: str, *, raw_nick: str | None
    ) -> None:
        """§7.6: unavailable from the old nick with 303 and the new nick, then available
        from the new one (210 if the service changed what was asked)."""
        existing = self.occupants.get(nick)
        reserved = self._nick_reserved_by(nick)
        if not self._may(occ, RolePrivilege.CHANGE_NICKNAME):
            self._error(stanza, "forbidden", "you may not change your nickname")
            return
        if (existing is not None and existing.bare != occ.bare) or (
            reserved is not None and reserved != str(occ.bare)
        ):
            self._error(stanza, "conflict", "that nickname is in use or reserved")
            return
        if existing is not None or len(occ.sessions) > 1:
            # Merging two in-room sessions, or moving one of several: refused rather
            # than guessing which presence the others should see.
            self._error(stanza, "not-acceptable", "leave with your other resources first")
            return
        if not self._rate_ok(occ, stanza):
            return
        old = occ.nick
        for recipient in list(self.occupants.values()):
            self._presence(occ, recipient, unavailable=True, nick=nick, codes=[st.NEW_NICK])
        del self.occupants[old]
        occ.nick = nick
        self.occupants[nick] = occ
        occ.sessions[sender] = _clean_presence(stanza)
        modified = [st.NICK_MODIFIED] if raw_nick is not None and raw_nick != nick else []
        for recipient in list(self.occupants.values()):
            self._presence(occ, recipient, self_codes=modified, ident=stanza.get("id"))

    def _leave(self, occ: Occupant, sender: FullJID, stanza: Element | None) -> None:
        """§7.14: one session leaves; the occupant leaves with its last session."""
        base = _clean_presence(stanza) if stanza is not None else Element("presence", ns.CLIENT)
        if len(occ.sessions) > 1:
            shown = occ.jid
            self._presence(occ, occ, sessions=[sender], base=base, unavailable=True, role="none")
            del occ.sessions[sender]
            self.by_session.pop(sender, None)
            self.host.session_left(sender, self)
            if sender == shown:
                # the occupant now shows another session's presence, and to those who
                # see real JIDs (§5.1.3, §7.2.3–4) that session's JID
                for recipient in list(self.occupants.values()):
                    if recipient is not occ:
                        self._presence(occ, recipient)
            return
        if self.locked and len(self.occupants) == 1:
            # §10.1.3: the owner left before configuring the room: it is destroyed, and
            # the owner is told with <destroy/>
            self.destroy(st.Destroy())
            return
        self._remove(occ, base=base)

    def _remove(
        self,
        occ: Occupant,
        *,
        base: Element | None = None,
        codes: Sequence[str] = (),
        actor: str = "",
        reason: str = "",
        affiliation: str | None = None,
        destroy: st.Destroy | None = None,
        deferred: list[tuple[Element, FullJID]] | None = None,
        close: bool = True,
    ) -> None:
        """Take ``occ`` out of the room: unavailable (role none) to itself, then to the
        others (onto ``deferred`` when given, §8.2's order).  Closes a temporary room
        that became empty (§7.14 "the service is responsible for destroying the room")."""
        base = base if base is not None else Element("presence", ns.CLIENT)
        kw: dict[str, object] = {
            "base": base,
            "unavailable": True,
            "role": "none",
            "codes": codes,
            "actor": actor,
            "reason": reason,
            "affiliation": affiliation,
            "destroy": destroy,
        }
        self._presence(occ, occ, **kw)  # type: ignore[arg-type]
        self.occupants.pop(occ.nick, None)
        for session in list(occ.sessions):
            self.by_session.pop(session, None)
            self.host.session_left(session, self)
        if destroy is None:
            for recipient in list(self.occupants.values()):
                self._presence(occ, recipient, out=deferred, **kw)  # type: ignore[arg-type]
        if close:
            self._close_if_empty()

    def close_if_empty(self) -> None:
        """Close a room nobody is in unless it is persistent (and configured)."""
        self._close_if_empty()

    def _close_if_empty(self) -> None:
        if not self.occupants and (self.locked or not self.config.persistent) and not self.closed:
            self.closed = True
            self.host.room_closed(self)

    def admit_invitee(self, invitee: BareJID) -> None:
        """§9.5: an invitation into a members-only room, about to be delivered (the
        invitee exists), makes the invitee a member."""
        if not self.closed and self.config.members_only and self.affiliation(invitee) == "none":
            self._set_affiliation(str(invitee), "member", reason="", nick=None)

    def _delivery_failed(self, sender: FullJID, stanza: Element) -> None:
        """§18.1.2 "ghost users": a delivery-related error from an occupant's session
        about what the room sent it takes that session out (the occupant, with status 333
        to the others, when it was the last one)."""
        occ = self.by_session.get(sender)
        error = stanza.find(ns.clark(ns.CLIENT, "error"))
        if occ is None or error is None:
            return
        if not any(c.namespace == ns.STANZAS and c.name in _DELIVERY_ERRORS for c in error):
            return
        if len(occ.sessions) > 1 or self.locked:
            self._leave(occ, sender, None)
        else:
            self._remove(occ, codes=[st.ERROR_REMOVAL])

    def session_gone(self, session: FullJID) -> None:
        """The user's session ended (``session_gone``): it leaves as if it had sent
        unavailable presence (§7.14, RFC 6121 §4.6)."""
        occ = self.by_session.get(session)
        if occ is not None:
            self._leave(occ, session, None)

    def shutdown(self) -> None:
        """§11.2: the service is shutting down — every occupant gets 332."""
        for occ in list(self.occupants.values()):
            self._remove(occ, codes=[st.SHUTDOWN], close=False)

    # -- messages (§7.4, §7.5, §7.8, §7.13, §8.1, §8.6) ---------------------------------

    def on_message(self, sender: FullJID, stanza: Element, nick: str | None, stype: str) -> None:
        if stype == "error":
            # never answered (RFC 6120 §8.3.1); one about a private message goes back to
            # the occupant that sent it, as the message went (§7.5)
            if nick is not None:
                self._private_error(self.by_session.get(sender), stanza, nick)
            self._delivery_failed(sender, stanza)
            return
        occ = self.by_session.get(sender)
        if self.locked and self.affiliation(sender.bare) != "owner":
            self._error(stanza, "item-not-found", "the room is locked")  # §17.2 rule 3
            return
        if nick is not None:
            self._private_message(occ, stanza, nick, stype)
        elif stype == "groupchat":
            self._groupchat(occ, stanza)
        else:
            self._room_message(occ, sender, stanza)

    def _rate_ok(self, occ: Occupant, stanza: Element) -> bool:
        """A token bucket per occupant, for what the room copies to every occupant
        (groupchat messages, subjects, availability changes, nick changes); a refusal is
        a ``policy-violation`` of type ``wait`` (RFC 6120 §8.3.3.12), never a silent
        drop."""
        limits = self.host.limits
        now = self.host.clock()
        occ.tokens = min(
            float(limits.message_burst), occ.tokens + (now - occ.refilled) * limits.message_rate
        )
        occ.refilled = now
        if occ.tokens < 1.0:
            self._error(
                stanza, "policy-violation", "too much sent to the room; slow down", type="wait"
            )
            return False
        occ.tokens -= 1.0
        return True

    def _groupchat(self, occ: Occupant | None, stanza: Element) -> None:
        if occ is None:
            self._error(stanza, "not-acceptable", "only occupants may send to the room")  # §7.4
            return
        body = stanza.find(ns.clark(ns.CLIENT, "body"))
        subject = stanza.find(ns.clark(ns.CLIENT, "subject"))
        is_subject = (
            subject is not None
            and body is None
            and stanza.find(ns.clark(ns.CLIENT, "thread")) is None
        )
        if is_subject:
            if not self._may(occ, RolePrivilege.MODIFY_SUBJECT):
                self._error(stanza, "forbidden", "you may not change the subject")  # §8.1
                return
            assert subject is not None
            cap = self.host.limits.subject_chars
            if len(subject.text) > cap:
                self._error(stanza, "not-acceptable", f"a subject has at most {cap} characters")
                return
        elif not self._may(occ, RolePrivilege.SEND_MESSAGES_TO_ALL):
            self._error(stanza, "forbidden", "you have no voice in this room")  # §7.4
            return
        if not self._rate_ok(occ, stanza):
            return
        m = stanza.copy()
        m.pop_attr("to")
        m.set("from", self._occupant_jid(occ.nick))
        if not m.get("id"):
            m.set("id", uuid.uuid4().hex)  # §7.4: one id for all reflections
        owner = self.affiliation(occ.bare) == "owner"
        if not owner:
            # the room dates its history (§7.2.13); only an owner's prior history comes
            # with dates of its own (§7.9): another occupant's would pass for the room's,
            # in XEP-0203's form as in XEP-0091's
            for delay in [*m.findall(_DELAY), *m.findall(_LEGACY_DELAY)]:
                m.remove(delay)
        # status codes in a groupchat message are the room's (§10.2.1): an occupant's
        # would pass for them
        for x in m.findall(_MUC_USER_X):
            m.remove(x)
        if is_subject:
            assert subject is not None
            self.subject = subject.text
            self.subject_author = occ.nick
            self.subject_stamp = self.host.now()
            self.host.save_room(self)
        elif body is not None:
            dated = owner and m.find(_DELAY) is not None
            self._remember(m.copy(), dated)
        self._send_to_occupants(m, self.occupants.values())

    def _remember(self, m: Element, dated: bool) -> None:
        """Keep ``m`` in the history (§7.2.13) within ``Limits.history_size`` messages
        and ``Limits.history_bytes`` bytes, dropping the oldest; a message larger than
        the byte limit by itself is not kept."""
        history = self.history
        if history.maxlen == 0:
            return
        entry = HistoryEntry(stanza=m, stamp=self.host.now(), dated=dated, size=len(m.serialize()))
        if len(history) == history.maxlen:
            self._history_bytes -= history.popleft().size
        history.append(entry)
        self._history_bytes += entry.size
        while self._history_bytes > self.host.limits.history_bytes and history:
            self._history_bytes -= history.popleft().size

    def _private_message(
        self, occ: Occupant | None, stanza: Element, nick: str, stype: str
    ) -> None:
        """§7.5: from an occupant to another's occupant JID, ``from`` rewritten."""
        if stype == "groupchat":
            self._error(stanza, "bad-request", "private messages must not be groupchat")
            return
        if occ is None:
            self._error(stanza, "not-acceptable", "only occupants may send private messages")
            return
        target = self.occupants.get(nick)
        if target is None:
            self._error(stanza, "item-not-found", f"no occupant {nick!r}")
            return
        if not self._may(occ, RolePrivilege.SEND_PRIVATE_MESSAGES):
            self._error(stanza, "forbidden", "private messages are not allowed to you here")
            return
        if not self._rate_ok(occ, stanza):
            return
        m = stanza.copy()
        m.set("from", self._occupant_jid(occ.nick))
        # §7.5: an empty muc#user <x/> marks it for XEP-0280 carbons; what a client put
        # in its own (an <invite/>, status codes) would pass for the room's
        for x in m.findall(_MUC_USER_X):
            m.remove(x)
        m.append(Element("x", ns.MUC_USER))
        self._send_to_occupants(m, [target])

    def _private_error(self, occ: Occupant | None, stanza: Element, nick: str) -> None:
        """An occupant's error about a private message (§7.5), addressed to the sender's
        occupant JID: passed to that occupant, ``from`` rewritten.  Only as a private
        message could pass (an occupant, to an occupant, allowed private messages);
        otherwise dropped, since an error is never answered (RFC 6120 §8.3.1)."""
        target = self.occupants.get(nick)
        if occ is None or target is None:
            return
        if not self._may(occ, RolePrivilege.SEND_PRIVATE_MESSAGES):
            return
        m = stanza.copy()
        m.set("from", self._occupant_jid(occ.nick))
        self._send_to_occupants(m, [target])

    def _room_message(self, occ: Occupant | None, sender: FullJID, stanza: Element) -> None:
        """A non-groupchat message to the room: invitations and declines (§7.8.2), voice
        requests and their approval (§7.13, §8.6); anything else is a ``bad-request``
        (§17.2 rule 1)."""
        x = stanza.find(ns.clark(ns.MUC_USER, "x"))
        if x is not None and (
            x.find(ns.clark(ns.MUC_USER, "invite")) is not None
            or x.find(ns.clark(ns.MUC_USER, "decline")) is not None
        ):
            self._invitations(occ, sender, stanza, x)
            return
        form = stanza.find(ns.clark(ns.DATA_FORMS, "x"))
        if form is not None and form_values(form).get("FORM_TYPE") == [NS_REQUEST]:
            self._voice_form(occ, stanza, form)
            return
        self._error(stanza, "bad-request", "messages to the room must be of type groupchat")

    def _invitations(
        self, occ: Occupant | None, sender: FullJID, stanza: Element, x: Element
    ) -> None:
        invites = x.findall(ns.clark(ns.MUC_USER, "invite"))
        if invites:
            aff = self.affiliation(sender.bare)
            admin = AFFILIATION_RANK[aff] >= AFFILIATION_RANK["admin"]
            if occ is None and not admin:
                self._error(stanza, "not-acceptable", "only occupants may invite")
                return
            allowed = admin if occ is None else self._may(occ, RolePrivilege.INVITE_OTHER_USERS)
            if not allowed:
                self._error(stanza, "forbidden", "you may not invite others here")  # §9.5
                return
            if len(invites) > MAX_INVITES:
                self._error(stanza, "policy-violation", f"at most {MAX_INVITES} invitations")
                return
            if occ is not None and not self._rate_ok(occ, stanza):
                return
            targets: list[tuple[Element, BareJID | FullJID]] = []
            for invite in invites:
                try:
                    invitee = parse_jid(invite.get("to") or "")
                except JIDError:
                    self._error(stanza, "jid-malformed", "invite 'to' is not a JID")
                    return
                targets.append((invite, invitee))
            for invite, invitee in targets:
                self._remember_invitation(invitee.bare, sender.bare)
                self.host.invite(self, invitee, self._invitation(stanza, invite, sender), stanza)
        for decline in x.findall(ns.clark(ns.MUC_USER, "decline")):
            try:
                inviter = parse_jid(decline.get("to") or "")
            except JIDError:
                self._error(stanza, "jid-malformed", "decline 'to' is not a JID")
                return
            invitation = (sender.bare, inviter.bare)
            if invitation not in self._invited:
                # not invited by them: the room does not carry messages for anyone
                self._error(stanza, "not-acceptable", "no invitation from them to decline")
                return
            del self._invited[invitation]
            m = Element("message", ns.CLIENT, {"from": str(self.jid)})
            if stanza.get("id"):
                m.set("id", stanza.get("id") or "")
            out_x = Element("x", ns.MUC_USER)
            d = Element("decline", ns.MUC_USER, {"from": str(sender.bare)})
            reason = decline.findtext(ns.clark(ns.MUC_USER, "reason"))
            if reason:
                d.append(Element("reason", ns.MUC_USER, text=reason))
            out_x.append(d)
            m.append(out_x)
            self.host.send(m, inviter)

    def _remember_invitation(self, invitee: BareJID, inviter: BareJID) -> None:
        key = (invitee, inviter)
        self._invited[key] = None
        self._invited.move_to_end(key)
        while len(self._invited) > MAX_OPEN_INVITATIONS:
            self._invited.popitem(last=False)

    def _invitation(self, stanza: Element, invite: Element, sender: FullJID) -> Element:
        """§7.8.2 "Room Sends Invitation to Invitee on Behalf of Invitor"."""
        m = Element("message", ns.CLIENT, {"from": str(self.jid)})
        if stanza.get("id"):
            m.set("id", stanza.get("id") or "")
        x = Element("x", ns.MUC_USER)
        inv = Element("invite", ns.MUC_USER, {"from": str(sender.bare)})
        reason = invite.findtext(ns.clark(ns.MUC_USER, "reason"))
        if reason:
            inv.append(Element("reason", ns.MUC_USER, text=reason))
        cont = invite.find(ns.clark(ns.MUC_USER, "continue"))
        if cont is not None:
            inv.append(cont.copy())
        x.append(inv)
        if self.config.password_protected:
            x.append(Element("password", ns.MUC_USER, text=self.config.password))
        m.append(x)
        return m

    def _voice_form(self, occ: Occupant | None, stanza: Element, form: Element) -> None:
        """§7.13 a visitor asks for voice: the moderators get the §8.6 approval form;
        §8.6 a moderator submits it with ``muc#request_allow`` true: voice granted."""
        if occ is None:
            self._error(stanza, "not-acceptable", "only occupants may request voice")
            return
        values = form_values(form)
        if occ.role == "moderator" and "muc#request_allow" in values:
            allow = (values.get("muc#request_allow") or [""])[0].lower() in ("1", "true")
            target = self.occupants.get((values.get("muc#roomnick") or [""])[0])
            if not allow or target is None or target.role != "visitor":
                return  # denied, or already handled: nothing to do
            condition = role_change_error(
                actor_role=occ.role,
                actor_affiliation=self.affiliation(occ.bare),
                target_role=target.role,
                target_affiliation=self.affiliation(target.bare),
                new_role="participant",
            )
            if condition is not None:
                self._error(stanza, condition)
                return
            target.role = "participant"
            self._remember_voice(target)
            self._broadcast(target)
            return
        if occ.role != "visitor":
            self._error(stanza, "not-acceptable", "you already have voice")
            return
        if not self._rate_ok(occ, stanza):
            return
        approval = Element("message", ns.CLIENT, {"from": str(self.jid), "id": uuid.uuid4().hex})
        x = Element("x", ns.DATA_FORMS, {"type": "form"})
        x.append(Element("title", ns.DATA_FORMS, text="Voice request"))
        x.append(
            Element(
                "instructions",
                ns.DATA_FORMS,
                text='To approve this request for voice, select the "Grant voice '
                'to this person?" checkbox and submit.',
            )
        )
        fields: list[tuple[str, str, str, str]] = [
            ("FORM_TYPE", "hidden", "", NS_REQUEST),
            ("muc#role", "list-single", "Requested role", "participant"),
            ("muc#jid", "jid-single", "User ID", str(occ.jid)),
            ("muc#roomnick", "text-single", "Room Nickname", occ.nick),
            ("muc#request_allow", "boolean", "Grant voice to this person?", "false"),
        ]
        for var, ftype, label, value in fields:
            attrs = {"var": var, "type": ftype}
            if label:
                attrs["label"] = label
            f = Element("field", ns.DATA_FORMS, attrs)
            f.append(Element("value", ns.DATA_FORMS, text=value))
            x.append(f)
        approval.append(x)
        moderators = [o for o in self.occupants.values() if o.role == "moderator"]
        self._send_to_occupants(approval, moderators)

    # -- iq (§6.3, §6.4, §7.10, §7.12, §8, §9, §10, §17.4) ------------------------------

    def on_iq(self, sender: FullJID, stanza: Element, nick: str | None, stype: str) -> None:
        if nick is not None:
            self._occupant_iq(sender, stanza, nick, stype)
            return
        if stype not in ("get", "set"):
            return
        payload = stanza[0] if len(stanza) else None
        if payload is None:
            self._error(stanza, "bad-request")
            return
        if self.locked and self.affiliation(sender.bare) != "owner":
            self._error(stanza, "item-not-found", "the room is locked")  # §7.2.10
            return
        # a request is its payload's namespace and name (RFC 6120 §8.4)
        key = (stype, payload.namespace, payload.name)
        try:
            if key == ("get", ns.DISCO_INFO, "query"):
                self._result(stanza, self._disco_info(sender, payload))
            elif key == ("get", ns.DISCO_ITEMS, "query"):
                # §6.4: occupant lists are private by default ("advised to turn off").
                self._result(stanza, Element("query", ns.DISCO_ITEMS))
            elif key == ("get", ns.PING, "ping"):
                self._result(stanza)
            elif key == ("get", ns.MUC_ADMIN, "query"):
                self._result(stanza, self._admin_get(sender, payload))
            elif key == ("set", ns.MUC_ADMIN, "query"):
                self._admin_set(sender, stanza, payload)
            elif key == ("get", ns.MUC_OWNER, "query"):
                self._owner_get(sender, stanza)
            elif key == ("set", ns.MUC_OWNER, "query"):
                self._owner_set(sender, stanza, payload)
            elif key == ("get", ns.IQ_REGISTER, "query"):
                self._result(stanza, self._register_get(sender))
            elif key == ("set", ns.IQ_REGISTER, "query"):
                self._register_set(sender, stanza, payload)
            else:
                raise StanzaError("service-unavailable")
        except StanzaError as exc:
            self._send_error(stanza, exc)

    def _occupant_iq(self, sender: FullJID, stanza: Element, nick: str, stype: str) -> None:
        """§17.4 rules 2–3: an occupant's iq to another occupant JID is forwarded to that
        occupant's real JID with ids rewritten, neither side learning the other's real
        JID; the answer comes back the same way, also when the occupant left meanwhile
        (its session ended without answering: the server's recipient-unavailable).
        XEP-0410 self-pings are answered."""
        occ = self.by_session.get(sender)
        if stype in ("result", "error"):
            key = stanza.get("id") or ""
            entry = self._pending_iqs.get(key)
            if entry is None or entry[2] != sender:
                return
            del self._pending_iqs[key]
            requester, original_id, _, occupant_jid = entry
            answer = stanza.copy()
            answer.set("id", original_id)
            answer.set("from", occupant_jid)
            self.host.send(answer, requester)
            return
        payload = stanza[0] if len(stanza) else None
        if occ is None:
            if payload is not None and payload.tag == _PING:
                # XEP-0410 §3.3: a self-ping from a session not (any more) in the room
                self._error(stanza, "not-acceptable", "you are not in this room")
            else:
                self._error(stanza, "bad-request", "only occupants may query occupants")  # §6.5
            return
        target = self.occupants.get(nick)
        if target is None:
            self._error(stanza, "item-not-found", f"no occupant {nick!r}")
            return
        if target is occ and payload is not None and payload.tag == _PING:
            self._result(stanza)  # XEP-0410 §3.1: the service answers self-pings
            return
        if (
            payload is not None
            and payload.tag == _VCARD
            and self._occupant_vcard(sender, stanza, target, stype)
        ):
            return
        new_id = f"muc{next(self._iq_ids)}"
        self._pending_iqs[new_id] = (
            sender,
            stanza.get("id") or "",
            target.jid,
            self._occupant_jid(nick),
        )
        while len(self._pending_iqs) > self.host.limits.pending_iqs:
            _, (requester, original_id, _, asked) = self._pending_iqs.popitem(last=False)
            timeout = Element(
                "iq",
                ns.CLIENT,
                {"type": "get", "id": original_id, "from": str(requester), "to": asked},
            )
            self._send_error(timeout, StanzaError("remote-server-timeout", type="wait"))
        forwarded = stanza.copy()
        forwarded.set("id", new_id)
        forwarded.set("from", self._occupant_jid(occ.nick))
        self.host.send(forwarded, target.jid)

    def _occupant_vcard(
        self, sender: FullJID, stanza: Element, target: Occupant, stype: str
    ) -> bool:
        """A vCard request to an occupant JID is answered by the room from the
        occupant's account, as the occupant's server answers one to the bare JID
        (XEP-0054 §3.1: "MUST respond on behalf of the requestor and not forward the IQ
        to the requestee's connected resource"), which is where XEP-0153 §2.2 clients
        look up the avatar that an occupant's presence announces.  Neither side learns
        the other's real JID (§17.4 rule 3): the answer comes from the occupant JID.
        What a vCard itself says is public by XEP-0054's design.  A set is ``forbidden``
        (§3.2: only the owner changes a vCard).  ``False`` when the server keeps no
        vCards: the request is then forwarded like any other."""
        if stype == "set":
            self._error(stanza, "forbidden", "only the owner may change a vCard")
            return True

        def answer(card: Element | StanzaError) -> None:
            if isinstance(card, StanzaError):
                self._send_error(stanza, card)
            else:
                self._result(stanza, card)

        return self.host.load_vcard(target.jid.bare, sender.bare, answer)

    def _disco_info(self, sender: FullJID, payload: Element) -> Element:
        node = payload.get("node")
        if node == NODE_RESERVED_NICK:  # §7.12
            q = Element("query", ns.DISCO_INFO, {"node": node})
            record = self.affiliations.get(str(sender.bare))
            if record is not None and record.nick and record.affiliation != "outcast":
                q.append(
                    Element(
                        "identity",
                        ns.DISCO_INFO,
                        {"category": "conference", "type": "text", "name": record.nick},
                    )
                )
            return q
        if node:
            raise StanzaError("item-not-found", f"no disco node {node!r}")
        q = Element("query", ns.DISCO_INFO)
        q.append(
            Element(
                "identity",
                ns.DISCO_INFO,
                {
                    "category": "conference",
                    "type": "text",
                    "name": self.config.name or self.jid.local,
                },
            )
        )
        for feature in [
            *room_features(self.config),
            ns.DISCO_INFO,
            ns.DISCO_ITEMS,
            ns.IQ_REGISTER,
            ns.PING,
        ]:
            q.append(Element("feature", ns.DISCO_INFO, {"var": feature}))
        contacts = self.owners_of() if self.config.non_anonymous else []
        q.append(
            _roominfo_form(
                self.config, subject=self.subject, occupants=len(self.occupants), contacts=contacts
            )
        )
        return q

    # muc#admin ----------------------------------------------------------------------------

    def _may_read(self, access: ListAccess, sender: FullJID) -> bool:
        aff = AFFILIATION_RANK[self.affiliation(sender.bare)]
        admin = aff >= AFFILIATION_RANK["admin"]
        occupant = sender in self.by_session
        if access is ListAccess.MODERATORS:
            return admin or self._role_of_user(sender) == "moderator"
        if access is ListAccess.ADMINS:
            return admin
        if access is ListAccess.MEMBERS:
            return admin or (
                self.config.non_anonymous and (aff >= AFFILIATION_RANK["member"] or occupant)
            )
        return aff >= AFFILIATION_RANK["owner"] or (
            self.config.non_anonymous and (aff >= AFFILIATION_RANK["member"] or occupant)
        )

    def _admin_get(self, sender: FullJID, query: Element) -> Element:
        """§8.5, §9.2, §9.5, §9.8, §10.5, §10.8: one list, by role or by affiliation."""
        items = query.findall(ns.clark(ns.MUC_ADMIN, "item"))
        if len(items) != 1:
            raise StanzaError("bad-request", "ask for one list")
        role, affiliation = items[0].get("role"), items[0].get("affiliation")
        if (role is None) == (affiliation is None):
            raise StanzaError("bad-request", "give either a role or an affiliation")
        key = ("role", role) if role is not None else ("affiliation", affiliation or "")
        access = LIST_ACCESS.get(key)
        if access is None:
            raise StanzaError("bad-request", f"no list for {key[0]} {key[1]!r}")
        if not self._may_read(access, sender):
            raise StanzaError("forbidden", "you may not read that list")
        out = Element("query", ns.MUC_ADMIN)
        if role is not None:
            for occ in sorted(self.occupants.values(), key=lambda o: o.nick):
                if occ.role == role:
                    out.append(
                        Element(
                            "item",
                            ns.MUC_ADMIN,
                            {
                                "affiliation": self.affiliation(occ.bare),
                                "jid": str(occ.jid),
                                "nick": occ.nick,
                                "role": occ.role,
                            },
                        )
                    )
            return out
        for user in self.users_with(affiliation or ""):
            record = self.affiliations[user]
            attrs = {"affiliation": record.affiliation, "jid": user}
            if record.nick and record.affiliation != "outcast":
                attrs["nick"] = record.nick
            item = Element("item", ns.MUC_ADMIN, attrs)
            if record.reason:
                item.append(Element("reason", ns.MUC_ADMIN, text=record.reason))
            out.append(item)
        return out

    def _actor(self, sender: FullJID) -> tuple[str, str, str]:
        """(role, affiliation, nick) of the user making an admin request; admins and
        owners act as moderators even from outside the room (§5.2.1)."""
        occ = self.by_session.get(sender)
        return (
            occ.role if occ is not None else "none",
            self.affiliation(sender.bare),
            occ.nick if occ is not None else "",
        )

    def _admin_set(self, sender: FullJID, stanza: Element, query: Element) -> None:
        """§8.2–§8.5, §9.1–§9.8, §10.3–§10.8: role and affiliation changes, all checked
        before any is applied; the result goes out after the removed occupants were told
        and before the rest of the room is (§8.2)."""
        actor_role, actor_aff, actor_nick = self._actor(sender)
        roles: list[tuple[Occupant, str, str]] = []
        affiliations: list[tuple[str, str, str, str | None]] = []
        for item in query.findall(ns.clark(ns.MUC_ADMIN, "item")):
            role, affiliation = item.get("role"), item.get("affiliation")
            reason = item.findtext(ns.clark(ns.MUC_ADMIN, "reason")) or ""
            if (role is None) == (affiliation is None):
                raise StanzaError(
                    "bad-request", "an item changes either a role or an affiliation"
                )  # §17.4 rule 4
            nick = self._nick_key(item.get("nick"))
            if role is not None:
                if nick is None:
                    raise StanzaError("bad-request", "a role change names its occupant by 'nick'")
                target = self.occupants.get(nick)
                if target is None:
                    raise StanzaError("item-not-found", f"no occupant {nick!r}")
                condition = role_change_error(
                    actor_role=actor_role,
                    actor_affiliation=actor_aff,
                    target_role=target.role,
                    target_affiliation=self.affiliation(target.bare),
                    new_role=role,
                )
                if condition is not None:
                    raise StanzaError(condition)
                roles.append((target, role, reason))
            else:
                jid = item.get("jid")
                if jid is None:
                    # §9, §10 name the user by 'jid'; an occupant's nick is as good
                    occupant = self.occupants.get(nick) if nick is not None else None
                    if occupant is None:
                        raise StanzaError(
                            "bad-request", "an affiliation change names its user by 'jid'"
                        )
                    jid = str(occupant.bare)
                user = self._affiliation_key(jid)
                affiliations.append((user, affiliation or "", reason, nick))
        self._check_affiliations(sender, actor_aff, affiliations)
        deferred: list[tuple[Element, FullJID]] = []
        for target, role, reason in roles:
            self._apply_role(target, role, actor_nick, reason, deferred)
        for user, affiliation, reason, nick in affiliations:
            self._apply_affiliation(
                user, affiliation, reason, nick, actor_nick, deferred, inviter=sender.bare
            )
        self._result(stanza)
        self._flush(deferred)
        self._close_if_empty()

    def _nick_key(self, nick: str | None) -> str | None:
        """A nickname as the room compares it: an occupant JID's resource, after
        Resourceprep (§7.2.1, RFC 7622 §3.4), so that a reservation made by muc#admin
        holds against every spelling of the nick (§7.12); ``jid-malformed`` for one
        that cannot be a resource."""
        if nick is None:
            return None
        try:
            return self.jid.with_resource(nick).resource
        except JIDError:
            raise StanzaError("jid-malformed", f"{nick!r} is not a nickname") from None

    def _affiliation_key(self, jid: str) -> str:
        """§9, §10: affiliations are by bare JID (a full JID is reduced to it); a bare
        domain bans the whole domain (§9.2)."""
        try:
            parsed = parse_jid(jid)
        except JIDError:
            raise StanzaError("jid-malformed", f"{jid!r} is not a JID") from None
        return str(parsed.bare)

    def _check_affiliations(
        self,
        sender: FullJID,
        actor_aff: str,
        changes: Sequence[tuple[str, str, str, str | None]],
    ) -> None:
        """Raise the first ``StanzaError`` among ``changes``; none is applied if any
        fails (§9.2).  Includes §10.4's "MUST NOT allow an owner to revoke his or her own
        owner status if there are no other owners" (``conflict``)."""
        owners = set(self.owners_of())
        for user, affiliation, _, nick in changes:
            condition = affiliation_change_error(
                actor_affiliation=actor_aff,
                target_affiliation=self.affiliations[user].affiliation
                if user in self.affiliations
                else "none",
                new_affiliation=affiliation,
                is_self=user == str(sender.bare),
            )
            if condition is not None:
                raise StanzaError(condition)
            if "@" not in user and affiliation != "outcast" and affiliation != "none":
                raise StanzaError("bad-request", "only bans may name a whole domain")
            if nick:
                try:
                    self.jid.with_resource(nick)
                except JIDError:
                    raise StanzaError("jid-malformed", f"{nick!r} is not a nickname") from None
                holder = self._nick_reserved_by(nick)
                in_use = self.occupants.get(nick)
                if (holder is not None and holder != user) or (
                    in_use is not None and str(in_use.bare) != user
                ):
                    raise StanzaError("conflict", f"the nickname {nick!r} is taken")
            if affiliation == "owner":
                owners.add(user)
            else:
                owners.discard(user)
        if not owners:
            raise StanzaError("conflict", "the room must keep at least one owner")

    def _apply_role(
        self,
        occ: Occupant,
        role: str,
        actor_nick: str,
        reason: str,
        deferred: list[tuple[Element, FullJID]],
    ) -> None:
        if occ.nick not in self.occupants:
            return  # removed by an earlier item
        if role == "none":  # §8.2 kick
            self._remove(
                occ,
                codes=[st.KICKED],
                actor=actor_nick,
                reason=reason,
                deferred=deferred,
                close=False,
            )
            return
        if role == occ.role:
            return
        occ.role = role
        self._remember_voice(occ)
        for recipient in list(self.occupants.values()):
            self._presence(occ, recipient, reason=reason, out=deferred)

    def _remember_voice(self, occ: Occupant) -> None:
        """Keep a moderator's voice decision for the user's next visit (§5.1)."""
        if occ.role not in ("participant", "visitor"):
            return
        key = str(occ.bare)
        self._voice[key] = occ.role
        self._voice.move_to_end(key)
        while len(self._voice) > ROLE_MEMORY:
            self._voice.popitem(last=False)

    def _set_affiliation(
        self, user: str, affiliation: str, *, reason: str, nick: str | None
    ) -> None:
        current = self.affiliations.get(user)
        if affiliation == "none":
            if current is None:
                return
            del self.affiliations[user]
        else:
            if nick is None and current is not None:
                nick = current.nick
            if affiliation == "outcast" or nick == "":
                nick = None  # §9.1: a ban removes the reserved nickname
            self.affiliations[user] = AffiliationRecord(
                affiliation=affiliation, reason=reason, nick=nick
            )
        self.host.save_affiliation(self, user)

    def _apply_affiliation(
        self,
        user: str,
        affiliation: str,
        reason: str,
        nick: str | None,
        actor_nick: str,
        deferred: list[tuple[Element, FullJID]],
        *,
        inviter: BareJID | None = None,
    ) -> None:
        """Record the change, then its effect on occupants: a ban removes them (301,
        §9.1); losing membership of a members-only room removes them (321, §9.4);
        otherwise the new affiliation, and the role it implies (§5.1.3 note, §10.2),
        is broadcast."""
        affected = [
            o
            for o in self.occupants.values()
            if str(o.bare) == user or ("@" not in user and o.bare.domain == user)
        ]
        before = {o.nick: self.affiliation(o.bare) for o in affected}
        old_record = self.affiliations.get(user)
        self._set_affiliation(user, affiliation, reason=reason, nick=nick)
        if (old_record.affiliation if old_record else "none") != affiliation:
            # a new affiliation sets the role anew (§5.1.2), at the next visit too: a
            # voice decision remembered from before it no longer holds
            self._voice.pop(user, None)
        for occ in affected:
            new = self.affiliation(occ.bare)
            old = before[occ.nick]
            if new == "outcast":
                self._remove(
                    occ,
                    codes=[st.BANNED],
                    actor=actor_nick,
                    reason=reason,
                    deferred=deferred,
                    close=False,
                )
            elif self.config.members_only and AFFILIATION_RANK[new] < AFFILIATION_RANK["member"]:
                self._remove(
                    occ,
                    codes=[st.AFFILIATION_CHANGED],
                    actor=actor_nick,
                    reason=reason,
                    deferred=deferred,
                    close=False,
                )
            elif new != old:
                admin_rank = AFFILIATION_RANK["admin"]
                if AFFILIATION_RANK[new] >= admin_rank:
                    occ.role = "moderator"
                elif AFFILIATION_RANK[old] >= admin_rank or occ.role == "visitor":
                    occ.role = default_role(new, moderated=self.config.moderated) or occ.role
                for recipient in list(self.occupants.values()):
                    self._presence(occ, recipient, reason=reason, out=deferred)
        if (
            not affected
            and self.config.members_only
            and old_record is None
            and affiliation == "member"
            and "@" in user
        ):
            # §9.5: "SHOULD send an invitation to any user who has been added to the
            # member list of a members-only room".
            m = Element("message", ns.CLIENT, {"from": str(self.jid), "id": uuid.uuid4().hex})
            x = Element("x", ns.MUC_USER)
            attrs = {"from": str(inviter)} if inviter is not None else {}
            x.append(Element("invite", ns.MUC_USER, attrs))
            if self.config.password_protected:
                x.append(Element("password", ns.MUC_USER, text=self.config.password))
            m.append(x)
            self.host.send(m, parse_jid(user))

    # muc#owner ----------------------------------------------------------------------------

    def _require_owner(self, sender: FullJID) -> None:
        if self.affiliation(sender.bare) != "owner":
            raise StanzaError("forbidden", "only owners may do this")  # §10.2, §10.9

    def _owner_get(self, sender: FullJID, stanza: Element) -> None:
        """§10.1.3, §10.2: the configuration form with the current values."""
        self._require_owner(sender)
        q = Element("query", ns.MUC_OWNER)
        q.append(
            config_form(
                self.config,
                room=str(self.jid),
                admins=self.users_with("admin"),
                owners=self.owners_of(),
                history_cap=self.host.limits.history_size,
            )
        )
        self._result(stanza, q)

    def _owner_set(self, sender: FullJID, stanza: Element, query: Element) -> None:
        self._require_owner(sender)
        destroy = query.find(ns.clark(ns.MUC_OWNER, "destroy"))
        if destroy is not None:
            self.destroy(
                st.Destroy(
                    jid=destroy.get("jid") or "",
                    reason=destroy.findtext(ns.clark(ns.MUC_OWNER, "reason")) or "",
                    password=destroy.findtext(ns.clark(ns.MUC_OWNER, "password")) or "",
                )
            )
            self._result(stanza)
            return
        form = query.find(ns.clark(ns.DATA_FORMS, "x"))
        if form is None:
            raise StanzaError("bad-request", "expected a data form or <destroy/>")
        ftype = form.get("type")
        if ftype == "cancel":
            if self.locked:  # §10.1.3: cancelling the initial configuration destroys it
                self.destroy(st.Destroy())
            self._result(stanza)
            return
        if ftype != "submit":
            raise StanzaError("bad-request", "the form must be submitted or cancelled")
        self._configure(sender, stanza, form_values(form))

    def _configure(self, sender: FullJID, stanza: Element, values: dict[str, list[str]]) -> None:
        form_type = values.get("FORM_TYPE")
        if form_type is not None and form_type != ["http://jabber.org/protocol/muc#roomconfig"]:
            raise StanzaError("bad-request", "not a muc#roomconfig form")
        limits = self.host.limits
        old = self.config
        new = apply_form(
            old, values, max_users_cap=limits.max_occupants, history_cap=limits.history_size
        )
        changes = [
            (user, affiliation, "", None)
            for user, affiliation in sorted(self._listed_affiliations(values).items())
            if self.affiliations.get(user) is None
            or self.affiliations[user].affiliation != affiliation
        ]
        self._check_affiliations(sender, "owner", changes)
        was_locked = self.locked
        self.config = new
        self.locked = False
        # Storage first: a room that just became persistent is written with its
        # affiliations before the changes below are written one by one.
        if new.persistent and not old.persistent:
            self.host.save_room(self, affiliations=True)
        elif old.persistent and not new.persistent:
            self.host.delete_room(self)
        else:
            self.host.save_room(self)
        deferred: list[tuple[Element, FullJID]] = []
        actor_nick = self._actor(sender)[2]
        for user, affiliation, reason, nick in changes:
            self._apply_affiliation(user, affiliation, reason, nick, actor_nick, deferred)
        if old.moderated and not new.moderated:
            # §4: in an unmoderated room "any occupant [may send] messages to all
            # occupants", so nobody stays a visitor (§5.1.2); the voice decisions kept
            # for the moderated room's next visits go too
            self._voice.clear()
            for occ in list(self.occupants.values()):
                if occ.role == "visitor":
                    occ.role = "participant"
                    for recipient in list(self.occupants.values()):
                        self._presence(occ, recipient, out=deferred)
        if new.members_only and not old.members_only:
            for occ in list(self.occupants.values()):  # §10.2: 322 for non-members
                if AFFILIATION_RANK[self.affiliation(occ.bare)] < AFFILIATION_RANK["member"]:
                    self._remove(occ, codes=[st.MEMBERS_ONLY], deferred=deferred, close=False)
        self._result(stanza)
        self._flush(deferred)
        if not was_locked and new != old:
            self._announce_config(old, new)
        self._close_if_empty()

    def _listed_affiliations(self, values: dict[str, list[str]]) -> dict[str, str]:
        """The affiliations the configuration form's owner and admin lists ask for
        (§10.2), one per user: listed as an owner, owner; else as an admin, admin.  One
        taken off a list steps down, not out: an owner to admin (§10.7), or to member
        when the form lists the admins without them; an admin to member (§10.9).  A
        form sent back without the owner list (or with it empty) changes no owner."""

        def listed(var: str) -> set[str] | None:
            if var not in values:
                return None
            return {self._affiliation_key(v) for v in values[var] if v.strip()}

        owners = listed("muc#roomconfig_roomowners") or None
        admins = listed("muc#roomconfig_roomadmins")
        current_owners = set(self.users_with("owner"))
        wanted: dict[str, str] = {}
        if admins is not None:
            for user in set(self.users_with("admin")) - admins:
                wanted[user] = "member"
            for user in admins:
                if user not in current_owners or owners is not None:
                    wanted[user] = "admin"
        if owners is not None:
            for user in current_owners - owners:
                wanted[user] = "admin" if admins is None or user in admins else "member"
            for user in owners:
                wanted[user] = "owner"
        return wanted

    def _announce_config(self, old: RoomConfig, new: RoomConfig) -> None:
        """§10.2.1: 172/173 when the anonymity changed, 104 for any other change."""
        codes = []
        if new.non_anonymous != old.non_anonymous:
            codes.append(st.NOW_NON_ANONYMOUS if new.non_anonymous else st.NOW_SEMI_ANONYMOUS)
        if dataclasses.replace(old, whois=new.whois) != new:
            codes.append(st.CONFIG_CHANGED)
        m = Element(
            "message",
            ns.CLIENT,
            {"type": "groupchat", "from": str(self.jid), "id": uuid.uuid4().hex},
        )
        x = Element("x", ns.MUC_USER)
        for code in codes:
            x.append(Element("status", ns.MUC_USER, {"code": code}))
        m.append(x)
        self._send_to_occupants(m, self.occupants.values())

    def destroy(self, notice: st.Destroy) -> None:
        """§10.9: one unavailable presence to each occupant with ``<destroy/>``, then the
        room is gone (from storage too)."""
        for occ in list(self.occupants.values()):
            self._remove(occ, affiliation="none", destroy=notice, close=False)
        if self.config.persistent:
            self.host.delete_room(self)
        if not self.closed:
            self.closed = True
            self.host.room_closed(self)

    # jabber:iq:register (§7.10) ---------------------------------------------------------

    def _register_get(self, sender: FullJID) -> Element:
        aff = self.affiliation(sender.bare)
        q = Element("query", ns.IQ_REGISTER)
        record = self.affiliations.get(str(sender.bare))
        if AFFILIATION_RANK[aff] >= AFFILIATION_RANK["member"]:
            q.append(Element("registered", ns.IQ_REGISTER))
            if record is not None and record.nick:
                q.append(Element("username", ns.IQ_REGISTER, text=record.nick))
            return q
        self._check_may_register(aff)
        x = Element("x", ns.DATA_FORMS, {"type": "form"})
        x.append(Element("title", ns.DATA_FORMS, text=f"Registration with {self.jid}"))
        for var, ftype, label, value in (
            ("FORM_TYPE", "hidden", "", NS_REGISTER_FORM),
            ("muc#register_roomnick", "text-single", "Desired Nickname", ""),
        ):
            attrs = {"var": var, "type": ftype}
            if label:
                attrs["label"] = label
            f = Element("field", ns.DATA_FORMS, attrs)
            if value:
                f.append(Element("value", ns.DATA_FORMS, text=value))
            if var != "FORM_TYPE":
                f.append(Element("required", ns.DATA_FORMS))
            x.append(f)
        q.append(x)
        return q

    def _check_may_register(self, aff: str) -> None:
        if aff == "outcast":
            raise StanzaError("forbidden", "you are banned from this room")
        if self.config.members_only:
            # Registering would bypass the member list: §7.10 "MAY restrict".
            raise StanzaError("not-allowed", "only admins add members to this room")

    def _register_set(self, sender: FullJID, stanza: Element, query: Element) -> None:
        """§7.10: the submitted nickname is reserved and the user becomes a member."""
        form = query.find(ns.clark(ns.DATA_FORMS, "x"))
        if form is None or form.get("type") != "submit":
            raise StanzaError("bad-request", "submit the registration form")
        values = form_values(form)
        nick = (values.get("muc#register_roomnick") or [""])[0]
        if not nick or not _nick_visible(nick):
            raise StanzaError("bad-request", "a nickname is required")
        try:
            nick = self.jid.with_resource(nick).resource
        except JIDError:
            raise StanzaError("bad-request", f"{nick!r} is not a valid nickname") from None
        user = str(sender.bare)
        aff = self.affiliation(sender.bare)
        if AFFILIATION_RANK[aff] < AFFILIATION_RANK["member"]:
            self._check_may_register(aff)
        holder = self._nick_reserved_by(nick)
        in_use = self.occupants.get(nick)
        if (holder is not None and holder != user) or (
            in_use is not None and in_use.bare != sender.bare
        ):
            raise StanzaError("conflict", "that nickname is reserved or in use")
        deferred: list[tuple[Element, FullJID]] = []
        new_aff = aff if AFFILIATION_RANK[aff] >= AFFILIATION_RANK["member"] else "member"
        self._apply_affiliation(user, new_aff, "", nick, "", deferred)
        self._result(stanza)
        self._flush(deferred)
