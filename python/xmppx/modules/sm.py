"""XEP-0198 Stream Management: acknowledgements and resumption of client streams.

What the server does (XEP-0198 1.6):

* It offers ``<sm xmlns='urn:xmpp:sm:3'/>`` after authentication (§3).  ``<enable/>`` on a
  bound stream turns stream management on, once: before binding it is
  ``<failed><unexpected-request/></failed>``, and a second one ends the stream
  (``policy-violation``; §3: "it SHOULD respond with a stream error").  With
  ``resume='true'`` (or ``'1'``) and ``sm.resume_timeout`` above zero the session is
  resumable: ``<enabled id resume max/>``, ``max`` the smaller of the client's wish and
  ``sm.resume_timeout``.  With ``sm.enabled`` off nothing is offered, and an
  ``<enable/>`` or ``<resume/>`` sent all the same is
  ``<failed><feature-not-implemented/></failed>``.
* From then on it counts the client's stanzas and answers each ``<r/>`` with ``<a h/>``
  (§4).  It keeps every stanza it sends, in order, until the client acknowledges it, and
  asks with ``<r/>`` whenever stanzas wait and no request is outstanding (also after an
  ``<a/>`` that leaves waiting stanzas sent after the last ``<r/>``).  An ``<a/>``
  acknowledging more than was sent ends the stream (``undefined-condition`` with
  ``<handled-count-too-high/>``, §4); one behind the last (a serial number, RFC 1982)
  is stale and acknowledges nothing new.  The client is given at most ``sm.max_queue``
  stanzas unacknowledged (and ``limits.write_buffer_bytes``): one more is not written,
  and the stream ends with ``resource-constraint``.
* When the connection of a resumable session breaks, or stops answering pings, the
  session *hibernates* for ``sm.resume_timeout`` seconds: still bound and available, the
  stanzas for it queue up.  ``<resume previd h/>`` on a new stream authenticated as the
  same account takes it over (§5): ``<resumed previd h/>``, then every stanza the client
  had not acknowledged, in order; an old connection still open gets a ``conflict``
  stream error and is closed.  An unknown or expired ``previd``, or another account's, is
  ``<failed><item-not-found/></failed>``, and the client may bind a new session.  An
  ``h`` acknowledging more than was sent ends the stream that sent it, as on ``<a/>``;
  the session it named goes on as it was.
* A session that ends for good (its client closed the stream, the wait ran out, a stream
  error, a new session bound the same resource) treats what was not acknowledged as
  undelivered (§4 leaves this to the server): a ``chat`` or ``normal`` message goes to the
  account's bare JID again (an available resource, else offline storage, XEP-0160),
  with a XEP-0203 ``<delay/>`` stamped when it was first given to the session (§4:
  "the original (failed) delivery timestamp"), except messages from a MUC room and
  those another session had: a message delivered to several of the account's
  sessions, itself or as XEP-0280 carbon copies, is kept by all of them as one
  ``xmppx.sessions.Delivery``, and only when the last one ends
  without an acknowledgement and none had it (acknowledged it, or wrote it without
  stream management) does it go to the account again (for a ``<received/>`` carbon
  copy, the message forwarded in it); a ``<sent/>`` carbon copy never does.  An ``iq``
  get or set gets ``recipient-unavailable`` (RFC 6120 §8.3.3.16) when its sender is a
  local account or a service hosted here (a MUC room passing on an occupant's request
  waits for the answer); the rest is dropped.  Ejabberd's ``resend_on_timeout`` and Prosody's
  ``mod_smacks`` also send such messages on; Prosody only from the account's last
  session, which avoids duplicates but loses a message no other session had.

Sequence numbers wrap at 2**32 (§4).  Detached sessions count against
``limits.max_connections`` until they end.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar, Final

from xmppx import ns
from xmppx.core import Element, FullJID, JIDError, parse, parse_jid
from xmppx.errors import StanzaError, StreamError, stanza_error_reply
from xmppx.modules._base import Module
from xmppx.modules.carbons import forwarded_message
from xmppx.modules.presence import delay_element, stamped_by
from xmppx.router import message_type

if TYPE_CHECKING:
    from xmppx.server._connection import C2SConnection
    from xmppx.server._server import XMPPServer
    from xmppx.sessions import Delivery

__all__ = ["SMState", "StreamManagement", "failed", "undelivered"]

log = logging.getLogger("xmppx.sm")

_WRAP: Final = 1 << 32
#: Half the counter's range: how far behind an acknowledgement may be (``SMState.ack``).
_HALF: Final = 1 << 31
_REQUEST: Final = f"<r xmlns='{ns.SM}'/>".encode()
#: Message types that go to the account again when undelivered (RFC 6121 §8.5.2.1.1)
_SENT_ON: Final = frozenset({"normal", "chat"})
_CARBON_WRAPPERS: Final = frozenset(
    {ns.clark(ns.CARBONS, "received"), ns.clark(ns.CARBONS, "sent")}
)


class SMState:
    """One session's stream management: counters and what waits for an acknowledgement.

    ``sent`` counts the stanzas given to the stream since ``<enable/>`` (``acked`` +
    ``len(queue)``); ``acked`` is the client's last ``h``; ``inbound`` is our ``h``."""

    __slots__ = (
        "acked",
        "asked_at",
        "deliveries",
        "detached",
        "id",
        "inbound",
        "max",
        "module",
        "queue",
        "queued_bytes",
        "requested",
        "resumable",
        "sent",
        "since",
        "timer",
    )

    def __init__(self, module: StreamManagement, sm_id: str, resumable: bool, max_: int) -> None:
        self.module = module
        self.id = sm_id
        self.resumable = resumable
        self.max = max_
        self.inbound = 0
        self.sent = 0
        self.acked = 0
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        #: for each stanza in ``queue``: the record of the message to the account it is
        #: (``xmppx.sessions.Delivery``), ``None`` for any other stanza
        self.deliveries: deque[Delivery | None] = deque()
        #: for each stanza in ``queue``: when it was given to the stream (wall-clock
        #: seconds), the stamp it gets if it is sent on undelivered (§4)
        self.since: deque[float] = deque()
        self.requested = False
        #: ``sent`` when the last ``<r/>`` went out
        self.asked_at = 0
        self.detached = False
        self.timer: asyncio.TimerHandle | None = None

    def received(self) -> None:
        """The client sent a stanza (it counts, §4)."""
        self.inbound = (self.inbound + 1) % _WRAP

    def ack(self, h: int, holder: object) -> bool:
        """The client of session ``holder`` handled ``h`` stanzas: forget those; False if
        it claims more than were sent.  Counts compare as serial numbers (RFC 1982 §3.2,
        the counter wraps at 2**32, §4): an ``h`` up to 2**31 behind the last one is a
        stale acknowledgement, which acknowledges nothing new and is not an error (a
        client's counter cannot go back, but ending its stream for it, as Prosody does,
        helps nobody); further ahead than what was sent is too high."""
        n = (h - self.acked) % _WRAP
        if n > _HALF:
            return True  # behind the last acknowledgement: nothing new
        if n > len(self.queue):
            return False
        for _ in range(n):
            self.queued_bytes -= len(self.queue.popleft())
            self.since.popleft()
            delivery = self.deliveries.popleft()
            if delivery is not None:
                delivery.acknowledged(holder)
        self.acked = h
        return True


def _count(value: str | None) -> int | None:
    """An ``h`` attribute (xs:unsignedInt), or None when it is not one."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    n = int(value)
    return n if n < _WRAP else None


def failed(condition: str) -> Element:
    """``<failed/>`` with an RFC 6120 stanza error ``condition`` (XEP-0198 §3, §5)."""
    el = Element("failed", ns.SM)
    el.append(Element(condition, ns.STANZAS))
    return el


class StreamManagement(Module):
    """XEP-0198 (see the module docstring)."""

    features: ClassVar[tuple[str, ...]] = ()

    def __init__(self, server: XMPPServer) -> None:
        super().__init__(server)
        self.enabled = bool(self.setting("sm.enabled", True))
        self.resume_timeout = float(self.setting("sm.resume_timeout", 300.0))
        self.max_queue = int(self.setting("sm.max_queue", 1000))
        #: the queue's bytes: at most what one connection may have waiting to be written,
        #: so that a resume can send it all
        self.max_queue_bytes = int(self.setting("limits.write_buffer_bytes", 1 << 20))
        self.stream_features: tuple[Element, ...] = (Element("sm", ns.SM),) if self.enabled else ()
        #: resumable sessions by id, attached or hibernating
        self._resumable: dict[str, C2SConnection] = {}

    # -- on a bound stream ----------------------------------------------------------

    def on_nonza(self, session: C2SConnection, element: Element) -> bool:
        if element.namespace != ns.SM:
            return False
        name = element.name
        if not self.enabled:
            if name != "enable":
                return False
            # §3: an <enable/> "MUST" get <enabled/> or <failed/> (none was offered)
            session.send_nonza(failed("feature-not-implemented"))
            return True
        sm = session.sm
        if name in ("r", "a") and sm is None:
            raise StreamError("unsupported-stanza-type", f"<{name}/> before <enable/> (XEP-0198)")
        if name == "r" and sm is not None:
            session.send_nonza(Element("a", ns.SM, {"h": str(sm.inbound)}))
        elif name == "a" and sm is not None:
            h = _count(element.get("h"))
            if h is None:
                raise StreamError("bad-format", "<a/> needs h, a 32-bit unsigned count")
            sm.requested = False
            if not sm.ack(h, session):
                _too_high(session, h, sm)
                return True
            if sm.queue and sm.sent != sm.asked_at:
                # stanzas went out after the last <r/>: this <a/> cannot cover them, and
                # unasked they would wait for the next stanza (or be sent on again,
                # §4, if the client left first)
                self.ask(session, sm)
            session.room_changed()
        elif name == "enable":
            self._enable(session, element)
        elif name == "resume":
            # §5: resumption replaces binding; this stream is bound already
            session.send_nonza(failed("unexpected-request"))
        else:
            return False
        return True

    def _enable(self, session: C2SConnection, element: Element) -> None:
        if session.sm is not None:
            raise StreamError(
                "policy-violation", "stream management is enabled already (XEP-0198 §3)"
            )
        want = (element.get("resume") or "").lower() in ("true", "1")
        resumable = want and self.resume_timeout > 0
        max_ = int(self.resume_timeout)
        asked = _count(element.get("max"))
        if asked is not None and 0 < asked < max_:
            max_ = asked
        sm_id = secrets.token_urlsafe(18)
        session.sm = SMState(self, sm_id, resumable, max_)
        attrs = {"id": sm_id}
        if resumable:
            attrs["resume"] = "true"
            attrs["max"] = str(max_)
            self._resumable[sm_id] = session
        session.send_nonza(Element("enabled", ns.SM, attrs))

    # -- called by the connection ---------------------------------------------------

    def full(self, sm: SMState, size: int, count: int = 1) -> bool:
        """Whether ``count`` more stanzas of ``size`` bytes in all would put more than
        ``sm.max_queue`` stanzas, or more than ``limits.write_buffer_bytes`` (unless one
        stanza alone), in the queue: the connection then does not write one
        (``C2SConnection._emit``), so the client is never given more than the limit
        unacknowledged."""
        n = len(sm.queue) + count
        return n > self.max_queue or (n > 1 and sm.queued_bytes + size > self.max_queue_bytes)

    def ask(self, session: C2SConnection, sm: SMState) -> None:
        """Send ``<r/>`` unless a request is outstanding: the sender of stored messages
        waits for room in the queue (``C2SConnection.room``), which only an ``<a/>``
        makes."""
        if not sm.requested and not session.closed:
            sm.requested = True
            sm.asked_at = sm.sent
            session.send_raw_nonza(_REQUEST)

    def sent(
        self, session: C2SConnection, sm: SMState, data: bytes, delivery: Delivery | None = None
    ) -> None:
        """A stanza went to the stream (or, hibernating, waits for one); ``delivery``:
        the record of the message to the account it is, which it now holds."""
        sm.queue.append(data)
        sm.queued_bytes += len(data)
        sm.deliveries.append(delivery)
        sm.since.append(time.time())
        if delivery is not None:
            delivery.holders.add(session)
        sm.sent = (sm.sent + 1) % _WRAP
        if self.full(sm, 0, 0):  # over the limit already
            session.overflowed()
        else:
            self.ask(session, sm)

    def hibernate(self, session: C2SConnection) -> None:
        """The resumable session's connection broke: wait ``max`` seconds for a resume."""
        sm = session.sm
        assert sm is not None
        sm.detached = True
        sm.requested = False
        loop = asyncio.get_running_loop()
        sm.timer = loop.call_later(sm.max, session.finish)
        log.info("%s hibernates for %d s (%d unacknowledged)", session.jid, sm.max, len(sm.queue))

    def ended(self, session: C2SConnection) -> None:
        """The session ended for good (after ``session_ended``): forget it, and treat
        what the client did not acknowledge as undelivered."""
        sm = session.sm
        if sm is None:
            return
        if sm.timer is not None:
            sm.timer.cancel()
            sm.timer = None
        if self._resumable.get(sm.id) is session:
            del self._resumable[sm.id]
        queue, sm.queue, sm.queued_bytes = sm.queue, deque(), 0
        deliveries, sm.deliveries = sm.deliveries, deque()
        since, sm.since = sm.since, deque()
        undelivered(self.server, session, zip(queue, deliveries, strict=True), since)

    # -- resumption (before binding, on a new stream) ----------------------------------

    def on_resume(self, conn: C2SConnection, element: Element) -> None:
        if not self.enabled:
            conn.send_nonza(failed("feature-not-implemented"))
            return
        previd = element.get("previd") or ""
        h = _count(element.get("h"))
        if h is None:
            conn.send_nonza(failed("bad-request"))
            return
        old = self._resumable.get(previd)
        user = conn.stream.authzid_user or ""
        if (
            old is None
            or old is conn
            or old.sm is None
            or str(old.jid.bare) != user
            or not old.bound
        ):
            conn.send_nonza(failed("item-not-found"))
            return
        sm = old.sm
        if not sm.ack(h, old):
            # the stream that said so ends; the session it named is left as it was
            _too_high(conn, h, sm)
            return
        if sm.timer is not None:
            sm.timer.cancel()
            sm.timer = None
        sm.detached = False
        old.take_over(conn)
        old.send_nonza(Element("resumed", ns.SM, {"previd": previd, "h": str(sm.inbound)}))
        old.resend(list(sm.queue))
        # a request to the old connection died with it: ask again for what was resent
        sm.requested = False
        if sm.queue:
            self.ask(old, sm)
        old.flush()
        old.room_changed()  # stored messages being given, and what waits behind, go on
        log.info("%s resumed (%d stanzas sent again)", old.jid, len(sm.queue))


def _too_high(stream: C2SConnection, h: int, sm: SMState) -> None:
    """``stream``'s client acknowledged ``h`` stanzas, more than ``sm`` sent (§4, Error
    Handling): ``undefined-condition`` with ``<handled-count-too-high/>`` ends it."""
    app = Element("handled-count-too-high", ns.SM, {"h": str(h), "send-count": str(sm.sent)})
    stream.end("undefined-condition", "more stanzas acknowledged than sent", app)


def undelivered(
    server: XMPPServer,
    holder: C2SConnection,
    stanzas: Iterable[tuple[bytes, Delivery | None]],
    since: Sequence[float] = (),
) -> None:
    """``holder`` ended and its client never had ``stanzas`` (serialized, each with the
    record of the message to the account it is, if it is one): not acknowledged with
    XEP-0198, or held by XEP-0352 and never written.  Each is undelivered unless another
    session had it or holds it still (module docstring).  ``since``: when each was
    given to the stream (wall-clock seconds), if known: a message sent on carries it as
    a XEP-0203 ``<delay/>`` from this server (XEP-0198 §4: "servers SHOULD add a delay
    element with the original (failed) delivery timestamp"), which offline storage
    keeps."""
    for n, (data, delivery) in enumerate(stanzas):
        if delivery is not None and not delivery.lost_by(holder):
            continue  # another session had it, or may still acknowledge it
        try:
            stanza = parse(data)
        except Exception:
            log.exception("an undelivered stanza did not parse again")
            continue
        stamp = since[n] if n < len(since) else None
        _send_on(server, holder, stanza, last_holder=delivery is not None, since=stamp)


def _send_on(
    server: XMPPServer,
    holder: C2SConnection,
    stanza: Element,
    *,
    last_holder: bool,
    since: float | None = None,
) -> None:
    owner = holder.jid
    kind = stanza.name
    stype = stanza.get("type")
    sender = stanza.get("from") or ""
    if kind == "message":
        if message_type(stanza) not in _SENT_ON:
            return
        wrapper = next((c for c in stanza if c.tag in _CARBON_WRAPPERS), None)
        if wrapper is not None:
            # a copy of the user's own message, or one another session was given
            # itself and may have had: only the last holder of a received copy,
            # with nobody having had it, sends the message in it on.  Only this
            # server's copies (from the account itself: a client's 'from' is always
            # stamped) are opened, or anyone could send on a message forged inside.
            if not last_holder or wrapper.name != "received":
                return
            if stanza.get("from") != str(owner.bare):
                return
            inner = forwarded_message(wrapper)
            if inner is None or message_type(inner) not in _SENT_ON:
                return
            stanza = inner
        if stanza.find(ns.clark(ns.MUC_USER, "x")) is not None:
            return  # from a room (a private message or an invitation)
        domain = server.domain
        if since is not None and not stamped_by(stanza, domain):
            # one stamp from this server, the first: a stored message given again keeps
            # the one offline storage gave it (XEP-0203 §3)
            when = datetime.datetime.fromtimestamp(since, datetime.UTC)
            stanza.append(delay_element(when, domain, "Not acknowledged"))
        stanza.set("to", str(owner.bare))
        server.deliver_to_account(stanza, owner.bare)
    elif kind == "iq" and stype in ("get", "set"):
        try:
            frm = parse_jid(sender)
        except JIDError:
            return
        reply = stanza_error_reply(stanza, StanzaError("recipient-unavailable"))
        if reply is None:
            return
        if frm.domain == server.domain and frm.local:
            to = frm if isinstance(frm, FullJID) else None
            server.deliver_to_account(reply, frm.bare, full=to)
        else:  # a service hosted here (a room waits for it), else dropped
            server.route_to_component(holder, reply, frm)
