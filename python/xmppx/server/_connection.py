"""One client connection: socket, TLS, timers and flow control around a ``ServerStream``.

This is the only place (with ``_server``) that touches transports.  hypercorn's
``tcp_server.py`` is the model: the protocol object owns the transport, feeds the
sans-I/O stream and writes what it returns.

Flow control (RFC 6120 §13.12 leaves it to us):

* A slow reader: the transport's write buffer is watched; above a quarter of
  ``limits.write_buffer_bytes`` we stop *reading* from that client (it cannot make us
  answer more), and above the full limit the connection is dropped — a queue towards a
  reader never grows past a named bound.
* A flooding sender: stanzas are handled as they are parsed, and the parser never holds
  more than one stanza, so a flood is met by TCP back-pressure, not by queues.  Work a
  client's stanzas started and that waits on storage is bounded
  (``MAX_PENDING_PER_CONNECTION``), and so is the rate: a token bucket of
  ``limits.c2s_rate`` bytes a second, holding up to ``limits.c2s_burst``, is charged for
  every read; in debt, reading pauses until the debt is paid (ejabberd's shapers and
  Prosody's mod_limits do the same).

Reading pauses for any of these reasons and resumes when none holds (``_set_reading``).

Closing (RFC 6120 §4.4): when the peer closes first, our ``</stream:stream>`` answers it
and the connection is closed.  When we close first (a stream error, a conflict), the
session ends at once, but the connection stays open, read only for the peer's closing
tag or EOF, for at most ``limits.close_timeout`` seconds; a connection that timed out,
or a server that stops, does not wait.

Timers: the stream header must arrive within ``limits.header_timeout`` and a resource be
bound within ``limits.negotiation_timeout`` (else ``connection-timeout``); a silent client
is pinged after ``ping.interval`` and dropped if it does not answer within
``ping.timeout`` (XEP-0199 §4.3).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, cast

from xmppx import ns
from xmppx.core import Element, FullJID, JIDError, parse_jid, resourceprep, serialize
from xmppx.errors import StreamError
from xmppx.modules.sm import undelivered
from xmppx.stream import (
    AuthAborted,
    AuthRequested,
    AuthResponse,
    BindRequested,
    ConnectionLost,
    Event,
    NonzaReceived,
    PeerClosed,
    PeerStreamError,
    Phase,
    PreAuthIq,
    ResumeRequested,
    ServerStream,
    StanzaReceived,
    StreamFailed,
    StreamOpened,
    TLSRequested,
)

if TYPE_CHECKING:
    from xmppx.auth import ServerMechanism
    from xmppx.modules.sm import SMState
    from xmppx.server._server import XMPPServer
    from xmppx.sessions import Delivery

__all__ = ["MAX_PENDING_PER_CONNECTION", "C2SConnection"]

#: Stanzas of one connection whose handling is waiting on storage (offline stores, iq
#: handlers, existence checks).  Past this we stop reading the connection until half have
#: finished: a client cannot make us queue unbounded work (issue 3 §10).
MAX_PENDING_PER_CONNECTION = 256
#: The peer's closing tag, whatever prefix its stream header bound (RFC 6120 §4.4).
_PEER_CLOSE: Final = re.compile(rb"</(?:[^\s<>:]+:)?stream\s*>")

log = logging.getLogger("xmppx.c2s")


class C2SConnection(asyncio.Protocol):
    """A client-to-server connection, and once bound, the ``Session`` the router sees."""

    def __init__(self, server: XMPPServer, *, direct_tls: bool) -> None:
        self.server = server
        cfg = server.config
        self.stream = ServerStream(server.stream_config, tls_active=direct_tls)
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.direct_tls = direct_tls
        # Session state (xmppx.sessions.Session protocol)
        self.jid: FullJID = None  # type: ignore[assignment]  # set when bound
        self.priority = 0
        self.presence: Element | None = None
        self.available_since = 0.0
        self.bound = False
        self.closed = False
        self.last_active = time.monotonic()
        self.ping_id: str | None = None
        self.ping_sent_at = 0.0
        self._mech: ServerMechanism | None = None
        #: The account named in the current SASL exchange (for the failure throttle).
        self.sasl_user: str | None = None
        self._mech_name = ""
        self._sasl_pending = False
        self._counted_unauth = False
        #: whether the transport is reading, and the reasons it must not (``_set_reading``)
        self._reading = True
        self._paused_for_writes = False
        self._pending_work = 0
        self._paused_for_work = False
        self._paused_for_rate = False
        #: a SASL step is being worked out (``_auth_waiting``)
        self._paused_for_auth = False
        #: the account is being removed: what the client sends waits (``freeze``)
        self._frozen = False
        #: server tasks doing work this connection asked for (``XMPPServer.spawn``)
        self.work_tasks: set[asyncio.Task[None]] = set()
        #: the token bucket (``_spend``)
        self._rate = float(cfg["limits.c2s_rate"])
        self._burst = float(cfg["limits.c2s_burst"])
        self._tokens = self._burst
        self._tokens_at = time.monotonic()
        self._rate_timer: asyncio.TimerHandle | None = None
        self._backlog: list[Event] = []
        #: Decrypted bytes that arrived over TLS before ``start_tls()`` returned (asyncio may
        #: deliver them first); fed to the restarted stream once TLS is established.
        self._tls_pending: list[bytes] | None = None
        self._write_limit = int(cfg["limits.write_buffer_bytes"])
        self._timers: list[asyncio.TimerHandle] = []
        self._close_timer: asyncio.TimerHandle | None = None
        #: We closed our stream first: reading on only for the peer's closing tag (§4.4).
        self._awaiting_peer = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: XEP-0352 (``hold``): while set, stanzas it does not call urgent wait, serialized
        self._urgent: Callable[[Element], bool] | None = None
        #: (bytes, the record of the message to the account they are) held by XEP-0352
        self._held: list[tuple[bytes, Delivery | None]] = []
        self._held_bytes = 0
        self._hold_max = int(cfg["csi.queue_size"])
        #: XEP-0160 (``begin_stored``): while stored messages are being given, what else
        #: is delivered waits here, serialized, with its record (``None``: nothing waits)
        self._behind: list[tuple[bytes, Delivery | None]] | None = None
        self._behind_bytes = 0
        self._stored_runs = 0
        #: XEP-0198, once the client enabled it (``xmppx.modules.sm``)
        self.sm: SMState | None = None
        #: the stream ended by a closing handshake, a stream error or ``end()``: a
        #: resumable session ends with it instead of waiting for a resume
        self._ended_cleanly = False
        self._finished = False
        self._lost = False
        #: ``tls-server-end-point`` of the certificate this connection's TLS presents
        self._cert_binding: bytes | None = None
        #: stanzas written to the stream (not those XEP-0352 holds back until written)
        self.stanzas_out = 0
        #: set while writing is not paused, and once the connection is lost (``room``)
        self._writable = asyncio.Event()
        self._writable.set()
        #: set whenever what ``room`` waits for may have changed
        self._room_changed = asyncio.Event()
        self._overflowing: asyncio.Handle | None = None
        #: the session this connection's stream resumed (it took the transport over)
        self._successor: C2SConnection | None = None

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast("asyncio.Transport", transport)
        transport = self.transport
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "?"
        transport.set_write_buffer_limits(high=max(self._write_limit // 4, 16384))
        server = self.server
        if not self._counted_unauth:  # (direct TLS: admitted before its handshake)
            if not server.admit(self):
                transport.abort()
                self.closed = True
                return
            self._counted_unauth = True
        loop = asyncio.get_running_loop()
        cfg = server.config
        self._timers.append(loop.call_later(cfg["limits.header_timeout"], self._header_timeout))
        self._timers.append(
            loop.call_later(cfg["limits.negotiation_timeout"], self._negotiation_timeout)
        )

    def admitted_for_tls(self, cert_binding: bytes | None) -> None:
        """XEP-0368: this connection was admitted (``XMPPServer.admit``) at its TCP
        accept, before its TLS handshake, which presents the certificate whose RFC 5929
        binding is ``cert_binding``."""
        self._counted_unauth = True
        self._cert_binding = cert_binding

    def data_received(self, data: bytes) -> None:
        if self.closed:
            # RFC 6120 §4.4: after our </stream:stream> the peer's stream is void, but
            # its closing tag ends the wait for it
            if self._awaiting_peer and _PEER_CLOSE.search(data):
                self._close_transport()
            return
        if self._tls_pending is not None:
            self._tls_pending.append(data)
            return
        self.last_active = time.monotonic()
        if self._rate:
            self._spend(len(data))
        self.ping_id = None
        if self._held:
            # XEP-0352: the client is awake, so what waited costs it nothing now (and a
            # close, a stream error or bad input in these bytes must not lose it); with
            # XEP-0198 as far as it fits before the acknowledgement these bytes may
            # carry is read (the rest is not lost either: it joins the queue at the end)
            if self.sm is not None:
                self._release_fitting(self.sm)
            else:
                self._release()
                self._flush()
        self._process(self.stream.receive_data(data))

    def _process(self, events: list[Event]) -> None:
        """Act on events in order; when too much work is pending, keep the rest (at most
        one read's worth: reading is paused) until it drains."""
        try:
            for i, event in enumerate(events):
                if self._frozen:
                    self._backlog = events[i:]
                    break
                self._handle(event)
                if isinstance(event, ResumeRequested | BindRequested):
                    # answered: what came after it is read only now, bound (or not), or
                    # after <resumed/> the resumed session's (XEP-0198 §5)
                    successor, self._successor = self._successor, None
                    (successor or self)._process(self.stream.take_deferred())
                    return
                if self._paused_for_work and i + 1 < len(events):
                    self._backlog = events[i + 1 :]
                    break
        except StreamError as exc:
            self._ended_cleanly = True
            self._release()
            self.stream.close(exc.condition, exc.text)
            self._flush()
            self._shutdown(wait_for_peer=True)
            return
        self._flush()

    def eof_received(self) -> bool | None:
        if self.closed:
            self._close_transport()
            return None
        self._release()
        self._flush()
        self.stream.receive_data(b"")
        self._shutdown(abort=False)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self.closed = True
        self._writable.set()
        self._room_changed.set()
        for t in self._timers:
            t.cancel()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self._rate_timer is not None:
            self._rate_timer.cancel()
        self._release_unauth()
        self._tls_pending = None
        sm = self.sm
        if (
            self.bound
            and sm is not None
            and sm.resumable
            and not self._ended_cleanly
            and not self.server.stopping
        ):
            # XEP-0198 §5: the session waits for a resume; what CSI held waits with the
            # stanzas not acknowledged, after them
            self.transport = None
            sm.module.hibernate(self)
            # what waits behind stored messages still waits: their delivery goes on
            # once the session is resumed (``room``)
            self._unhold(sm, behind=False)
            return
        self.finish()

    def finish(self) -> None:
        """The session ends for good: unbound, forgotten, and with XEP-0198 what the
        client did not acknowledge is undelivered (``xmppx.modules.sm``)."""
        if self._finished:
            return
        self._finished = True
        self.closed = True
        self._writable.set()
        self._room_changed.set()
        if self.bound:
            self.bound = False
            log.info("session %s ended", self.jid)
            self.server.session_ended(self)
        self.server.connections.discard(self)
        sm = self.sm
        if sm is not None:
            self._unhold(sm)  # a reset, a stream failure: never written
            sm.module.ended(self)
        elif self._held or self._behind:
            # what XEP-0352 held, or what waited behind stored messages, was never
            # written: undelivered, as with XEP-0198
            undelivered(self.server, self, [*self._take_held(), *self._take_behind()])

    def _unhold(self, sm: SMState, *, behind: bool = True) -> None:
        """What XEP-0352 held (and, with ``behind``, what waited behind stored messages)
        was never written: it joins, in order, what the client has not acknowledged
        (XEP-0198), with the records of the messages among it."""
        waiting = self._take_held()
        if behind:
            waiting += self._take_behind()
        for data, delivery in waiting:
            sm.module.sent(self, sm, data, delivery)

    def _take_held(self) -> list[tuple[bytes, Delivery | None]]:
        """What XEP-0352 holds, in order, no longer held."""
        held, self._held, self._held_bytes = self._held, [], 0
        return held

    @property
    def reading_paused_for_rate(self) -> bool:
        """Reading is paused until the client is back within ``limits.c2s_rate``, or
        while its account is being removed (``freeze``): what it sent (an answer to a
        ping, say) waits unread."""
        return self._paused_for_rate or self._frozen

    def pause_writing(self) -> None:
        # The client reads slower than we write: stop reading what it sends.
        self._paused_for_writes = True
        self._writable.clear()
        self._set_reading()

    def resume_writing(self) -> None:
        self._paused_for_writes = False
        self._writable.set()
        self._room_changed.set()
        self._set_reading()

    async def room(self, size: int = 0) -> bool:
        """``Session.room``: True once ``size`` more bytes may be written: writing is not
        paused (the transport's buffer is under its high-water mark, a quarter of
        ``limits.write_buffer_bytes``) and, with XEP-0198, a stanza of ``size`` fits in
        what the client may leave unacknowledged (``sm.max_queue``; an ``<r/>`` asks for
        the ``<a/>`` that makes room), with what XEP-0352 holds for it (written all at
        once when it is released).  A session whose connection broke is waited for
        while it may still be resumed (XEP-0198 §5).  False once the session ended."""
        changed = self._room_changed
        while not self._finished:
            changed.clear()
            if self.transport is not None and not self.closed and not self._paused_for_writes:
                sm = self.sm
                held = len(self._held) + 1
                if sm is None or not sm.module.full(sm, size + self._held_bytes, held):
                    return True
                sm.module.ask(self, sm)
                self._flush()
            await changed.wait()
        return False

    @property
    def hibernating(self) -> bool:
        """``Session.hibernating``: the connection broke and the session waits for a
        XEP-0198 resume."""
        return self.sm is not None and self.sm.detached

    def room_changed(self) -> None:
        """What ``room`` waits for may have changed (an acknowledgement, a resume): and
        what waited behind stored messages may go on."""
        self._room_changed.set()
        self._drain_behind()

    # -- flow control ------------------------------------------------------------------

    def _set_reading(self) -> None:
        """Read from the client unless it reads our output too slowly, too much of its
        work is pending, or it is over its rate (module docstring)."""
        transport = self.transport
        if transport is None or self.closed or self._tls_pending is not None:
            return  # (a TLS upgrade applies the reasons to the new transport)
        want = not (
            self._paused_for_writes
            or self._paused_for_work
            or self._paused_for_rate
            or self._paused_for_auth
            or self._frozen
        )
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def _spend(self, nbytes: int) -> None:
        """Charge ``nbytes`` read to the token bucket (``limits.c2s_rate`` bytes a second,
        at most ``limits.c2s_burst`` saved); in debt, pause reading until it is paid."""
        now = time.monotonic()
        tokens = min(self._burst, self._tokens + (now - self._tokens_at) * self._rate) - nbytes
        self._tokens = tokens
        self._tokens_at = now
        over = tokens < 0
        if over and self._rate_timer is None:
            loop = asyncio.get_running_loop()
            self._rate_timer = loop.call_later(-tokens / self._rate, self._rate_refilled)
        if over != self._paused_for_rate:
            self._paused_for_rate = over
            self._set_reading()

    def _rate_refilled(self) -> None:
        self._rate_timer = None
        if not self.closed:
            self._spend(0)

    # -- events ------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        if isinstance(event, StanzaReceived):
            if self.sm is not None:
                self.sm.received()
            self.server.handle_stanza(self, event.stanza)
        elif isinstance(event, StreamOpened):
            if not event.restart:
                self._cancel_timer(0)
        elif isinstance(event, TLSRequested):
            self._start_tls()
        elif isinstance(event, AuthRequested):
            self._auth_start(event)
        elif isinstance(event, AuthResponse):
            self._auth_step(event.data)
        elif isinstance(event, AuthAborted):
            self._mech = None
        elif isinstance(event, BindRequested):
            self._bind(event)
        elif isinstance(event, PreAuthIq):
            # counted as a bound session's work is: a client pipelining requests before
            # it authenticates (registrations, each hashing a password) is read no
            # faster than they are answered
            self.work_started()
            self._spawn(self._preauth_iq(event))
        elif isinstance(event, NonzaReceived):
            self.server.handle_nonza(self, event.element)
        elif isinstance(event, ResumeRequested):
            self.server.handle_resume(self, event.element)
        elif isinstance(event, PeerClosed | PeerStreamError):
            self._ended_cleanly = True
            self._flush()
            self._shutdown()
            # the session is over now (not resumable, XEP-0198 §7), not once the
            # transport is: a TLS close waits for the peer's close_notify, and what is
            # routed to the session meanwhile would be lost
            self.finish()
        elif isinstance(event, StreamFailed):
            self._ended_cleanly = True
            log.info("stream from %s failed: %s %s", self.address, event.condition, event.text)
            self._flush()
            self._shutdown(wait_for_peer=True)
        elif isinstance(event, ConnectionLost):
            self._shutdown(abort=True)

    # -- TLS ---------------------------------------------------------------------------

    def _start_tls(self) -> None:
        """RFC 6120 §5.4.3.3: ``<proceed/>`` is written; TLS, then a restarted stream."""
        self._flush()
        ctx = self.server.starttls_context
        # the certificate this handshake presents, for RFC 5929 (a reload does not
        # change what this connection's client saw)
        self._cert_binding = self.server.cert_end_point_binding
        transport = self.transport
        if ctx is None or transport is None:  # pragma: no cover - features prevent it
            self._shutdown(abort=True)
            return
        # Stop reading now: the client's TLS ClientHello may already be on its way, and
        # it is for the TLS layer, not our parser.  start_tls() takes the transport over
        # and resumes reading once the TLS protocol is in place.
        transport.pause_reading()
        self._reading = False
        self._tls_pending = []
        # start_tls() begins now, not a loop turn later (what the client sends
        # after <proceed/> is for the TLS layer)
        loop = asyncio.get_running_loop()
        handshake = loop.create_task(loop.start_tls(transport, self, ctx, server_side=True))
        self._spawn(self._upgrade(transport, handshake))

    async def _upgrade(
        self,
        transport: asyncio.Transport,
        handshake: asyncio.Task[asyncio.BaseTransport | None],
    ) -> None:
        try:
            async with asyncio.timeout(self.server.config["limits.header_timeout"]):
                new = await handshake
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            log.info("TLS handshake with %s failed: %s", self.address, exc)
            transport.abort()
            # asyncio does not tell the protocol of a connection lost during a
            # handshake; connection_lost() is once only
            self.connection_lost(exc)
            return
        if new is None:  # pragma: no cover - the connection closed meanwhile
            return
        self.transport = cast("asyncio.Transport", new)
        self.transport.set_write_buffer_limits(high=max(self._write_limit // 4, 16384))
        self.stream.tls_established()
        early, self._tls_pending = self._tls_pending or [], None
        self._reading = True  # start_tls() leaves the new transport reading
        self._set_reading()
        if early:
            self.data_received(b"".join(early))

    def channel_binding(self, cb_type: str) -> bytes | None:
        """RFC 5929 ``tls-server-end-point`` data for this connection, if TLS is up."""
        if cb_type != "tls-server-end-point" or not self.stream.tls_active:
            return None
        return self._cert_binding

    # -- SASL --------------------------------------------------------------------------

    def _auth_start(self, event: AuthRequested) -> None:
        self.sasl_user = None
        self._mech_name = event.mechanism
        try:
            self._mech = self.server.sasl_mechanism(self, event.mechanism)
        except LookupError as exc:
            condition = str(exc.args[0]) if exc.args else "invalid-mechanism"
            log.info(
                "authentication failure from %s: %s %s", self.address, condition, event.mechanism
            )
            self.stream.auth_failure(condition, event.mechanism)
            self._auth_answered()
            return
        self._auth_waiting(True)
        self._spawn(self._auth_run(event.initial_response, first=True))

    def _auth_step(self, data: bytes) -> None:
        self._auth_waiting(True)
        self._spawn(self._auth_run(data, first=False))

    def _auth_waiting(self, waiting: bool) -> None:
        """Stop reading while a SASL step is worked out (what the client sends meanwhile
        is read after the answer, RFC 6120 §6.4: one step at a time)."""
        self._paused_for_auth = waiting
        self._set_reading()

    def _auth_answered(self) -> None:
        """A SASL step is answered: read on, from what the client sent after it."""
        self._flush()
        if self.stream.in_phase(Phase.CLOSED):
            self._shutdown()
            return
        self._auth_waiting(False)
        self._process(self.stream.take_deferred())

    async def _auth_run(self, data: bytes | None, *, first: bool) -> None:
        mech = self._mech
        if mech is None or self.closed:
            return
        outcome = await self.server.sasl_step(self, mech, data, first=first)
        if self.closed or not self.stream.in_phase(Phase.SASL):
            return
        kind, payload, user = outcome
        if kind == "challenge":
            self.stream.auth_challenge(payload)
        elif kind == "success":
            self._mech = None
            self._release_unauth()
            log.info("%s authenticated as %s (%s)", self.address, user, self._mech_name)
            self.stream.auth_success(user, payload or None)
        else:
            self._mech = None
            text = payload.decode("utf-8", "replace") if payload else ""
            # one line per failure, with the address (what fail2ban and the like match)
            log.info(
                "authentication failure from %s for %s: %s (%s)",
                self.address,
                self.sasl_user or "?",
                user,
                self._mech_name,
            )
            self.stream.auth_failure(user, text)
        self._auth_answered()

    # -- binding -----------------------------------------------------------------------

    def _bind(self, event: BindRequested) -> None:
        user = self.stream.authzid_user or ""
        resource = event.resource
        if resource is None:
            resource = secrets.token_urlsafe(9)
        try:
            resource = resourceprep(resource)
            jid = parse_jid(f"{user}/{resource}")
        except JIDError:
            self.stream.bind_failure(event.iq_id, "bad-request", "modify")
            return
        assert isinstance(jid, FullJID)
        self.stream.bind_success(event.iq_id, str(jid))
        log.info("%s bound %s", self.address, jid)
        self.jid = jid
        self._cancel_timer(1)
        self.bound = True
        self.server.session_started(self)

    def legacy_bound(self, jid: FullJID, reply: Element) -> None:
        """XEP-0078 authenticated and bound the session in one step."""
        self._release_unauth()
        log.info("%s authenticated and bound %s (XEP-0078)", self.address, jid)
        self.jid = jid
        self.stream.legacy_auth_success(str(jid))
        self._cancel_timer(1)
        self.bound = True
        self.stream.send_element(reply)
        self._flush()
        self.server.session_started(self)

    def work_started(self) -> None:
        """The server began async work for one of our stanzas."""
        self._pending_work += 1
        if self._pending_work >= MAX_PENDING_PER_CONNECTION and not self._paused_for_work:
            self._paused_for_work = True
            self._set_reading()

    def work_done(self) -> None:
        self._pending_work -= 1
        if self._paused_for_work and self._pending_work <= MAX_PENDING_PER_CONNECTION // 2:
            self._paused_for_work = False
            self._resume()

    def freeze(self) -> None:
        """Handle nothing more the client sends, and stop reading it, until ``thaw``:
        its account is being removed (``XMPPServer.remove_account``), and what it asks
        for now would outlive the account or undo the removal's clean-up.  What the
        server sends it still goes out.  What was read waits, in order."""
        self._frozen = True
        self._set_reading()

    def thaw(self) -> None:
        """The removal failed: handle what waited, and read on."""
        if self._frozen:
            self._frozen = False
            self._resume()

    def _resume(self) -> None:
        """Handle the events that waited for one of the reasons reading paused (unless
        another still holds them), and read on."""
        if not (self._paused_for_work or self._frozen):
            backlog, self._backlog = self._backlog, []
            if backlog and not self.closed:
                self._process(backlog)
        self._set_reading()

    # -- Session protocol --------------------------------------------------------------

    def deliver(self, stanza: Element) -> None:
        if self._behind is not None and not self._finished:
            # serialized now: the sender may change the element once it is delivered
            self._wait_behind(serialize(stanza, ns.CLIENT), self.server.delivery)
            return
        self.deliver_stored(stanza)

    def deliver_stored(self, stanza: Element) -> None:
        # a message to the account: its record follows the stanza into the XEP-0198
        # queue; a session without acknowledgements has it once it is written
        delivery = self.server.delivery
        if self.closed or self.transport is None:
            if not self._finished:
                self._after_close(serialize(stanza, ns.CLIENT), delivery)
            return
        urgent = self._urgent
        if urgent is not None and not urgent(stanza):
            # serialized now: the sender may change the element once it is delivered
            data = serialize(stanza, ns.CLIENT)
            sm = self.sm
            if (
                sm is not None
                and self._held
                and sm.module.full(sm, self._held_bytes + len(data), len(self._held) + 1)
            ):
                # with this one, more would wait than XEP-0198 lets the client leave
                # unacknowledged: what is held goes out as far as it fits (released all
                # at once later, it would end the stream of a client that acknowledges)
                self._release_fitting(sm)
            if delivery is not None:
                delivery.holders.add(self)  # until it is written
            self._held.append((data, delivery))
            self._held_bytes += len(data)
            if len(self._held) > self._hold_max or self._held_bytes > self._write_limit // 2:
                self._release()
                self._flush()
            return
        self._release()  # (anything held goes first, in order)
        self._emit(serialize(stanza, ns.CLIENT), delivery)
        self._flush()

    def deliver_raw(self, data: bytes) -> None:
        if self._behind is not None and not self._finished:
            self._wait_behind(data, None)
            return
        if self.closed or self.transport is None:
            if not self._finished:
                self._after_close(data, None)
            return
        self._release()
        self._emit(data)
        self._flush()

    def begin_stored(self) -> None:
        self._stored_runs += 1
        if self._behind is None:
            self._behind = []

    def end_stored(self) -> None:
        self._stored_runs -= 1
        if self._stored_runs > 0 or self._behind is None:
            return
        if self._finished:
            behind, self._behind, self._behind_bytes = self._behind, None, 0
            undelivered(self.server, self, behind)  # (``finish`` took none: it came after)
        elif self.closed and (self.sm is None or not self.sm.resumable):
            behind, self._behind, self._behind_bytes = self._behind, None, 0
            for data, delivery in behind:
                self._after_close(data, delivery)
        else:
            self._drain_behind()

    def _drain_behind(self) -> None:
        """Once the stored messages are given: write what waited behind them, in order,
        as far as XEP-0198 lets the client be given stanzas unacknowledged (the rest
        goes with the next ``<a/>``, ``room_changed``); from then on deliveries go out
        as usual.  Nothing is written while the session hibernates."""
        behind = self._behind
        if behind is None or self._stored_runs > 0 or self.closed or self.transport is None:
            return
        self._release()
        sm = self.sm
        sent = 0
        for data, delivery in behind:
            if sm is not None and sm.module.full(sm, len(data)):
                sm.module.ask(self, sm)
                break
            self._emit(data, delivery)
            self._behind_bytes -= len(data)
            sent += 1
        del behind[:sent]
        if not behind:
            self._behind, self._behind_bytes = None, 0
        self._flush()

    def _wait_behind(self, data: bytes, delivery: Delivery | None) -> None:
        """A stanza for this session while stored messages are being given: it waits
        behind them, also while the connection is closing or the session hibernates
        (so that, whatever happens next, it stays behind them).  A client that stops
        reading them cannot make the server keep more for it than
        ``limits.write_buffer_bytes``: it is dropped as a slow reader, as for a write
        buffer that full (``_flush``); a hibernating session ends, as when its XEP-0198
        queue overflows."""
        assert self._behind is not None
        if delivery is not None:
            delivery.holders.add(self)  # until it is written
        self._behind.append((data, delivery))
        self._behind_bytes += len(data)
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        if self._behind_bytes + buffered > self._write_limit:
            if transport is not None and not self.closed:
                self._drop_slow_reader(transport)
            elif self.hibernating:
                self.overflowed()
        elif self._stored_runs == 0:
            self._drain_behind()  # the stored messages are given: only XEP-0198 holds it

    def _take_behind(self) -> list[tuple[bytes, Delivery | None]]:
        """What waits behind stored messages, in order, no longer waiting (the session
        ends or hibernates: it was never written)."""
        behind = self._behind or []
        if self._behind is not None:
            self._behind, self._behind_bytes = [], 0
        return behind

    def _after_close(self, data: bytes, delivery: Delivery | None) -> None:
        """A stanza routed to this session after its connection closed, before the
        session ended (asyncio reports a closed connection a loop turn later): with
        XEP-0198 it is kept for a resume; either way, if the session ends it is
        undelivered (``finish``), not lost."""
        sm = self.sm
        if sm is not None:
            sm.module.sent(self, sm, data, delivery)
            return
        if delivery is not None:
            delivery.holders.add(self)
        self._held.append((data, delivery))
        self._held_bytes += len(data)

    def _emit(self, data: bytes, delivery: Delivery | None = None) -> None:
        """Write a stanza to the stream; with XEP-0198 it waits for an acknowledgement
        (with ``delivery``, the record of the message to the account it is).  Once the
        XEP-0198 queue is full it is queued without being written, and the stream ends
        (``overflowed``): what was not acknowledged, written or not, is undelivered."""
        sm = self.sm
        if sm is not None and (self._overflowing is not None or sm.module.full(sm, len(data))):
            sm.module.sent(self, sm, data, delivery)  # (over the limit: it ends the stream)
            return
        self.stream.send_raw(data)
        self.stanzas_out += 1
        if sm is not None:
            sm.module.sent(self, sm, data, delivery)
        elif delivery is not None:
            delivery.acknowledged(self)  # written: had, as far as the server can tell

    def send_nonza(self, element: Element) -> None:
        """Queue a top-level element that is not a stanza (XEP-0198 ``<a/>``); it is
        written with the next flush."""
        self.stream.send_element(element)

    def send_raw_nonza(self, data: bytes) -> None:
        self.stream.send_raw(data)

    def flush(self) -> None:
        """Write what the stream has queued."""
        self._flush()

    def resend(self, stanzas: list[bytes]) -> None:
        """XEP-0198 §5: stanzas sent before, unacknowledged, on a resumed stream."""
        for data in stanzas:
            self.stream.send_raw(data)

    def overflowed(self) -> None:
        """More stanzas wait for an acknowledgement than ``sm.max_queue``: the stream
        ends (``resource-constraint``), or a hibernating session (soon, outside the
        delivery in progress)."""
        if self._overflowing is None:
            self._overflowing = asyncio.get_running_loop().call_soon(self._overflow_end)

    def _overflow_end(self) -> None:
        self._overflowing = None
        if self.hibernating:
            self.finish()
        else:
            self.end("resource-constraint", "too many stanzas not acknowledged (XEP-0198)")

    def take_over(self, new: C2SConnection) -> None:
        """XEP-0198 §5: this session goes on over ``new``'s transport and stream
        (authenticated as the same account); a transport of its own still open is cut."""
        transport = new.transport
        assert transport is not None
        if self.sm is not None and self._held:
            # XEP-0352 held these for the client of the connection still open (one that
            # broke gave them up already): never written, they go with what the client
            # did not acknowledge, in order, and are resent (on the old stream an <r/>
            # may go out for them, before its conflict error)
            self._unhold(self.sm, behind=False)
        old = self.transport
        if old is not None:
            # its end must not end the session: it no longer reports to us
            old.set_protocol(asyncio.Protocol())
            if old.is_closing() or self._tls_pending is not None:
                old.abort()
            else:
                # §5: the stream still open gets a 'conflict' stream error and is closed;
                # what it had queued is not waited for longer than close_timeout
                self.stream.close("conflict", "the session was resumed on another connection")
                data = self.stream.data_to_send()
                if data:
                    old.write(data)
                old.close()
                asyncio.get_running_loop().call_later(
                    self.server.config["limits.close_timeout"], old.abort
                )
        for handle in (
            *new._timers,
            new._rate_timer,
            self._rate_timer,
            self._close_timer,
            self._overflowing,
        ):
            if handle is not None:
                handle.cancel()
        new._successor = self
        new.closed = True
        new.transport = None
        self.server.connections.discard(new)
        transport.set_protocol(self)
        self.transport = transport
        self.stream = new.stream
        self.stream.resumed(str(self.jid))
        self.address = new.address
        self.direct_tls = new.direct_tls
        self._cert_binding = new._cert_binding
        self.closed = False
        self._lost = False
        self._ended_cleanly = False
        self._overflowing = None
        self._close_timer = None
        self._awaiting_peer = False
        self._rate_timer = None
        self._reading = new._reading
        self._paused_for_writes = new._paused_for_writes
        if self._paused_for_writes:
            self._writable.clear()
        else:
            self._writable.set()
        self._room_changed.set()
        self._paused_for_rate = False
        self._tokens, self._tokens_at = new._tokens, new._tokens_at
        self._tls_pending = None
        self._backlog = []
        # XEP-0352 §4.2: a stream begins active, a resumed one too (what was held went
        # into the XEP-0198 queue, above or when the connection broke, and is resent)
        self._urgent = None
        self.last_active = time.monotonic()
        self.ping_id = None
        self.server.connections.add(self)
        self._set_reading()

    def hold(self, urgent: Callable[[Element], bool] | None) -> None:
        """XEP-0352 client state: with ``urgent`` (the client is inactive), a stanza it
        does not call urgent waits, until an urgent one comes (which goes after them, in
        order), ``csi.queue_size`` stanzas or half of ``limits.write_buffer_bytes`` wait,
        or the stream ends; ``None`` (active again) sends what waits at once."""
        if urgent is None or self._hold_max <= 0:
            self._urgent = None
            if self._held:
                self._release()
                self._flush()
        else:
            self._urgent = urgent

    def _release_fitting(self, sm: SMState) -> None:
        """Write what XEP-0352 holds, in order, as far as it fits in what XEP-0198 lets
        the client leave unacknowledged, and ask the client to make room."""
        written = 0
        for data, delivery in self._held:
            if sm.module.full(sm, len(data)):
                break
            self._emit(data, delivery)
            self._held_bytes -= len(data)
            written += 1
        del self._held[:written]
        sm.module.ask(self, sm)
        self._flush()

    def _release(self) -> None:
        if self._held:  # on every delivery: nothing to do is the common case
            for data, delivery in self._take_held():
                self._emit(data, delivery)

    def end(self, condition: str | None, text: str = "", app: Element | None = None) -> None:
        """End the stream (with a stream error if ``condition``, and ``app``, an
        application-specific condition) and the connection.  A session hibernating
        (XEP-0198) ends at once; a timed-out one may still be resumed."""
        if self.hibernating:
            self.finish()
            return
        if self.closed:
            return
        if condition != "connection-timeout":
            self._ended_cleanly = True
        peer_done = False
        if self._frozen:
            # what waited is not handled now; the peer's closing tag is read again,
            # unless it was among what waited
            peer_done = any(isinstance(e, PeerClosed | PeerStreamError) for e in self._backlog)
            self._frozen = False
            self._backlog = []
            self._set_reading()
        self._release()
        self.stream.close(condition, text, app)
        self._flush()
        # a silent peer is not waited for, nor, when the server stops, anyone
        self._shutdown(
            wait_for_peer=not peer_done
            and condition not in ("connection-timeout", "system-shutdown")
        )

    # -- internals ---------------------------------------------------------------------

    def _flush(self) -> None:
        data = self.stream.data_to_send()
        transport = self.transport
        if not data or transport is None or transport.is_closing():
            return
        if self._tls_pending is not None:
            return  # TLS is being negotiated: nothing can be said in the clear now
        transport.write(data)
        if transport.get_write_buffer_size() > self._write_limit:
            self._drop_slow_reader(transport)

    def _drop_slow_reader(self, transport: asyncio.Transport) -> None:
        """More than ``limits.write_buffer_bytes`` wait for a client that does not read
        them: the connection is cut (a resumable XEP-0198 session hibernates)."""
        log.info(
            "dropping %s (%s): more than %d bytes queued, %d stanzas written",
            self.address,
            self.jid,
            self._write_limit,
            self.stanzas_out,
        )
        self.closed = True
        transport.abort()
        if self.sm is None or not self.sm.resumable:
            # the session ends now, not when asyncio reports the abort: what the
            # router has for it meanwhile goes to the account (``_after_close``)
            asyncio.get_running_loop().call_soon(self.finish)

    def _shutdown(self, *, abort: bool = False, wait_for_peer: bool = False) -> None:
        """End the connection once our ``</stream:stream>`` is queued (RFC 6120 §4.4).

        ``wait_for_peer``: we closed first, so the session ends now but the connection
        stays open, read only for the peer's closing tag (or its EOF), for at most
        ``limits.close_timeout`` seconds; otherwise (the peer closed first) it is closed
        at once.  Either way, what is queued is written out, within ``close_timeout``."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if abort:
            transport.abort()
            return
        if wait_for_peer:
            if not self._awaiting_peer:
                self._awaiting_peer = True
                self.closed = True
                self._close_timer = asyncio.get_running_loop().call_later(
                    self.server.config["limits.close_timeout"], self._close_transport
                )
                self.finish()
            return
        self._close_transport()

    def _close_transport(self) -> None:
        """Close the TCP/TLS connection after writing what is queued; cut it if that
        takes more than ``limits.close_timeout``."""
        transport = self.transport
        self._awaiting_peer = False
        if transport is None or transport.is_closing():
            return
        if self._close_timer is not None:
            self._close_timer.cancel()
        self._close_timer = asyncio.get_running_loop().call_later(
            self.server.config["limits.close_timeout"], transport.abort
        )
        self.closed = True
        transport.close()

    def _release_unauth(self) -> None:
        if self._counted_unauth:
            self._counted_unauth = False
            self.server.release(self)

    def _cancel_timer(self, index: int) -> None:
        if index < len(self._timers):
            self._timers[index].cancel()

    def _header_timeout(self) -> None:
        if self.stream.phase is Phase.HEADER and self.stream.stream_id == "":
            self.end("connection-timeout", "no stream header in time")

    def _negotiation_timeout(self) -> None:
        if not self.bound:
            self.end("connection-timeout", "stream negotiation took too long")

    def send_ping(self) -> None:
        """XEP-0199 §4.3: ping a silent client; the answer is any data from it."""
        self.ping_id = "ping-" + secrets.token_hex(4)
        self.ping_sent_at = time.monotonic()
        iq = Element(
            "iq",
            ns.CLIENT,
            {"type": "get", "id": self.ping_id, "from": self.server.domain, "to": str(self.jid)},
        )
        iq.append(Element("ping", ns.PING))
        self.deliver(iq)

    async def _preauth_iq(self, event: PreAuthIq) -> None:
        try:
            await self.server.handle_preauth_iq(self, event)
        finally:
            self.work_done()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            if isinstance(exc, StreamError):
                self.end(exc.condition, exc.text)
            else:
                log.error("internal error on %s", self.address, exc_info=exc)
                self.end("internal-server-error")
