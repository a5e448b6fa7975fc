"""An asyncio XMPP client around ``ClientStream`` (RFC 6120), for tests, benchmarks and
load tools that open thousands of connections.

One ``Client`` is one ``asyncio.Protocol``: no thread and no task per connection (a task
runs only for the STARTTLS handshake), one receive queue, one dict of pending iqs.

* Connecting (RFC 6120 §4.2, §5, §6, §7): ``await Client.connect(jid, password, ...)``
  opens TCP to ``host:port`` (default: the JID's domain, 5222, or 5223 for direct TLS),
  then STARTTLS (``tls="starttls"``, required), direct TLS (``tls="direct"``, XEP-0368,
  ALPN ``xmpp-client``) or none (``tls="none"``); SASL, binding, and returns once a
  resource is bound.  The TLS certificate is verified against the JID's domain (RFC 6125)
  unless ``verify=False`` is passed explicitly or an ``ssl_context`` says otherwise.
  ``SCRAM-*-PLUS`` is used when offered, bound to the server certificate
  (``tls-server-end-point``, RFC 5929 §4; Python's ``ssl`` has no TLS exporter).
* Receiving (RFC 6120 §8): stanzas other than answers to our ``iq()`` calls go to a
  queue read by ``await recv()`` or ``async for stanza in client``.  The queue is bounded:
  when it holds ``queue_size`` stanzas the client stops reading from the socket, so a
  fast server meets TCP back-pressure instead of growing our memory; reading resumes when
  the queue is half empty.  While an ``iq()`` waits for its answer the client reads on
  past the bound (the answer may be behind what fills the queue).  Server pings
  (XEP-0199 §4.3) are answered automatically as they are read: a client that leaves its
  queue full reads nothing, pings included, and its server may treat it as gone.
* Sending: ``send(element)`` writes at once; ``await drain()`` waits while the transport's
  write buffer is above its high-water mark.  ``await iq(element)`` returns the result
  stanza or raises ``IqError`` (a ``StanzaError`` with the RFC 6120 §8.3.3 condition).
* Closing (RFC 6120 §4.4): ``await close()`` sends ``</stream:stream>`` and waits, up to a
  timeout, for the server's before closing the socket.  A stream error from the server,
  bad XML or a lost connection ends the client: pending ``iq()`` and ``recv()`` calls raise
  ``StreamClosedError`` with the condition.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections import deque
from collections.abc import Sequence
from types import EllipsisType
from typing import Final, Literal, Self

from xmppx import ns
from xmppx.auth import CB_TLS_SERVER_END_POINT, tls_server_end_point
from xmppx.client._events import (
    AuthFailed,
    BindFailed,
    Bound,
    Closed,
    ConnectionLost,
    Event,
    StanzaReceived,
    StreamErrorReceived,
    StreamFailed,
    TLSFailed,
    TLSProceed,
)
from xmppx.client._stream import ClientStream, ClientStreamConfig
from xmppx.core import Element, prep_jid
from xmppx.errors import STANZA_ERROR_CONDITIONS, StanzaError
from xmppx.stream._escape import escape_attr

__all__ = [
    "ALPN_XMPP_CLIENT",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_PORT",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TIMEOUT",
    "DIRECT_TLS_PORT",
    "AuthenticationError",
    "BindError",
    "Client",
    "ClientError",
    "IqError",
    "StreamClosedError",
    "TLSMode",
]

log = logging.getLogger("xmppx.client")

#: RFC 6120 §3.2.1: the registered c2s port; XEP-0368 §3: the usual direct-TLS port.
DEFAULT_PORT: Final = 5222
DIRECT_TLS_PORT: Final = 5223
#: XEP-0368 §4: the ALPN protocol identifier for direct TLS.
ALPN_XMPP_CLIENT: Final = "xmpp-client"
#: Connect and iq timeout: a local server answers in milliseconds, a loaded one in well
#: under a second; 10 s only trips on a dead or wedged server.
DEFAULT_TIMEOUT: Final = 10.0
#: How long ``close()`` waits for the server's closing tag (RFC 6120 §4.4 asks to wait "a
#: reasonable amount of time"); past it the socket is closed anyway.
DEFAULT_CLOSE_TIMEOUT: Final = 5.0
#: Stanzas held for the reader before we stop reading the socket.  1024 absorbs a roster
#: push burst or a MUC join history, at about 1 KiB each 1 MiB per connection at worst;
#: a load tool with thousands of idle connections holds nothing.
DEFAULT_QUEUE_SIZE: Final = 1024

TLSMode = Literal["starttls", "direct", "none"]


class ClientError(Exception):
    """The client could not connect or the stream failed: ``condition`` is the protocol
    condition (RFC 6120 §4.9.3 stream error, §6.5 SASL failure, §8.3.3 stanza error of
    the bind iq, or ``tls-failure``) and ``text`` the explanation."""

    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(condition, text)
        self.condition = condition
        self.text = text

    def __str__(self) -> str:
        return f"{self.condition}: {self.text}" if self.text else self.condition


class AuthenticationError(ClientError):
    """SASL failed (RFC 6120 §6.5): the server's condition, or ``aborted`` /
    ``invalid-mechanism`` when we refused (see ``xmppx.client.AuthFailed``)."""


class BindError(ClientError):
    """Resource binding or the RFC 3921 session failed (RFC 6120 §7.6.2)."""


class StreamClosedError(ClientError):
    """The stream is over.  ``condition`` is the stream error that ended it (sent by the
    server, or by us for a server that broke the protocol), or ``""`` for a closing
    handshake or a lost connection (then ``text`` says which)."""


class IqError(StanzaError):
    """An ``iq()`` was answered with ``type='error'`` (RFC 6120 §8.3): ``condition``,
    ``type`` and ``text`` as in ``StanzaError`` (an undefined condition is reported as
    ``undefined-condition``), and ``stanza`` the whole answer."""

    def __init__(self, stanza: Element) -> None:
        condition, etype, text = "undefined-condition", None, ""
        err = stanza.find(f"{{{ns.CLIENT}}}error")
        if err is not None:
            etype = err.get("type")
            for child in err:
                if child.namespace != ns.STANZAS:
                    continue
                if child.name == "text":
                    text = child.text
                elif child.name in STANZA_ERROR_CONDITIONS:
                    condition = child.name
        if etype not in ("auth", "cancel", "continue", "modify", "wait"):
            etype = None
        super().__init__(condition, text, type=etype)
        self.stanza = stanza


_CONTEXTS: dict[tuple[bool, bool], ssl.SSLContext] = {}


def _default_context(*, verify: bool, alpn: bool) -> ssl.SSLContext:
    """A shared context per kind: loading the system CAs once, not per connection."""
    key = (verify, alpn)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols([ALPN_XMPP_CLIENT])
        _CONTEXTS[key] = ctx
    return ctx


def _channel_bindings(ssl_object: object) -> dict[str, bytes]:
    """RFC 5929 §4 ``tls-server-end-point`` data for the certificate the server showed."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return {}
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return {}
    try:
        data = tls_server_end_point(der)
    except ValueError:
        return {}
    return {CB_TLS_SERVER_END_POINT: data} if data is not None else {}


def _same_jid(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return prep_jid(a) == prep_jid(b)
    except ValueError:
        return False


class Client(asyncio.Protocol):
    """One XMPP client connection; make it with ``await Client.connect(...)``.  The
    ``asyncio.Protocol`` methods are internal."""

    __slots__ = (
        "_answer_pings",
        "_closing",
        "_done",
        "_error",
        "_finished",
        "_ids",
        "_iqs",
        "_queue",
        "_queue_size",
        "_readable",
        "_reading_paused",
        "_ready",
        "_resume_at",
        "_ssl_context",
        "_stream",
        "_timeout",
        "_tls_task",
        "_transport",
        "_upgrading",
        "_writable",
        "config",
        "jid",
    )

    def __init__(
        self,
        config: ClientStreamConfig,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        queue_size: int,
        answer_pings: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.config = config
        self.jid: str = ""  # the bound full JID
        self._stream: ClientStream
        self._transport: asyncio.Transport | None = None
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._queue: deque[Element] = deque()
        self._queue_size = queue_size
        self._resume_at = queue_size // 2
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False
        self._iqs: dict[str, tuple[str | None, asyncio.Future[Element]]] = {}
        self._ids = itertools.count(1)
        self._answer_pings = answer_pings
        self._ready: asyncio.Future[None] = loop.create_future()
        self._done: asyncio.Future[None] = loop.create_future()
        self._error: BaseException | None = None
        self._closing = False
        self._finished = False
        self._tls_task: asyncio.Task[None] | None = None
        self._upgrading: list[bytes] | None = None

    # -- connecting ---------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        jid: str,
        password: str,
        *,
        host: str | None = None,
        port: int | None = None,
        tls: TLSMode = "starttls",
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        mechanisms: Sequence[str] | None = None,
        resource: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        answer_pings: bool = True,
        lang: str = "en",
        local_addr: tuple[str, int] | None = None,
    ) -> Self:
        """Connect, negotiate and bind; return the ready client (RFC 6120 §4–§7).

        ``jid``: the account (``user@domain``; a resource in it is requested unless
        ``resource`` is given; with neither the server picks one).  ``ssl_context``:
        used as is for STARTTLS and direct TLS (for direct TLS it gets the ALPN protocol
        ``xmpp-client``); without it the system's CAs verify the server certificate for
        the JID's domain, and ``verify=False`` turns all checks off (tests only).
        ``mechanisms``: the SASL mechanisms allowed (default: all, ``PLAIN`` only over
        TLS).  ``timeout``: for the whole connection and negotiation, and the default of
        ``iq()``.  ``local_addr``: the local (source) address to connect from, e.g.
        ``("127.0.0.2", 0)`` for tests that need distinct client addresses.

        Raises ``ValueError`` (``JIDError``) for a bad ``jid``, ``AuthenticationError``,
        ``BindError``, ``StreamClosedError`` (a stream error, or the connection closed
        during negotiation), ``ClientError``
        (``tls-failure``), ``ssl.SSLError`` (e.g. a certificate that does not verify),
        ``OSError`` (connection refused) and ``TimeoutError``.
        """
        if tls not in ("starttls", "direct", "none"):
            raise ValueError(f"tls must be 'starttls', 'direct' or 'none', not {tls!r}")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        local, domain, jid_resource = prep_jid(jid)
        if not local:
            raise ValueError(f"{jid!r} has no localpart: a client logs in as user@domain")
        ctx: ssl.SSLContext | None = None
        if tls != "none":
            if ssl_context is None:
                ctx = _default_context(verify=verify, alpn=tls == "direct")
            else:
                ctx = ssl_context
                if tls == "direct":
                    ctx.set_alpn_protocols([ALPN_XMPP_CLIENT])
        config = ClientStreamConfig(
            domain=domain,
            username=local,
            password=password,
            resource=resource or jid_resource or None,
            starttls=tls == "starttls",
            mechanisms=tuple(mechanisms) if mechanisms is not None else None,
            lang=lang,
        )
        client = cls(
            config,
            ssl_context=ctx,
            timeout=timeout,
            queue_size=queue_size,
            answer_pings=answer_pings,
        )
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                if tls == "direct":
                    await loop.create_connection(
                        lambda: client,
                        host or domain,
                        port or DIRECT_TLS_PORT,
                        ssl=ctx,
                        server_hostname=domain,
                        ssl_handshake_timeout=timeout,
                        local_addr=local_addr,
                    )
                else:
                    await loop.create_connection(
                        lambda: client, host or domain, port or DEFAULT_PORT, local_addr=local_addr
                    )
                await client._ready
        except BaseException:
            client._abort()
            raise
        return client

    # -- public API ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The stream is over (closed by either side, failed, or the connection lost)."""
        return self._finished

    @property
    def error(self) -> BaseException | None:
        """Why the stream ended, if not by a clean closing handshake."""
        return self._error

    @property
    def stream_id(self) -> str:
        return self._stream.stream_id

    @property
    def queued(self) -> int:
        """Stanzas waiting in the receive queue."""
        return len(self._queue)

    def send(self, element: Element) -> None:
        """Send a stanza (``message``, ``presence`` or ``iq`` in ``jabber:client``) or a
        nonza now.  Raises ``StreamClosedError`` once the stream is closing or over."""
        if self._finished or self._closing:
            raise self._closed_error()
        self._stream.send_element(element)
        self._flush()

    def send_raw(self, data: bytes) -> None:
        """Send bytes already serialized for ``jabber:client`` (benchmarks)."""
        if self._finished or self._closing:
            raise self._closed_error()
        self._stream.send_raw(data)
        self._flush()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if not self._writable.is_set() and not self._finished:
            await self._writable.wait()

    async def iq(self, element: Element, timeout: float | EllipsisType | None = ...) -> Element:
        """Send an ``<iq type='get'|'set'>`` and return the ``result`` answer (RFC 6120
        §8.2.3).  An ``id`` is added if missing.  Raises ``IqError`` for an ``error``
        answer, ``TimeoutError`` after ``timeout`` seconds (by default the ``timeout``
        given to ``connect()``; ``None``: wait forever) and ``StreamClosedError`` if the
        stream ends first.  The answer must come from the address the iq was sent to
        (for an iq without ``to``, from our account or the server; without ``from`` when
        sent to no one, our bare JID or the server, which RFC 6120 §8.1.2.1 lets the
        server leave out), else it is an ordinary incoming stanza.  The receive queue's
        bound does not stop the answer from being read."""
        if timeout is ...:
            timeout = self._timeout
        kind = element.get("type")
        if kind not in ("get", "set"):
            raise ValueError(f"iq() sends type 'get' or 'set', not {kind!r}")
        ident = element.get("id")
        if not ident:
            ident = f"xmppx-{next(self._ids)}"
            element.set("id", ident)
        if ident in self._iqs:
            raise ValueError(f"an iq with id {ident!r} is already waiting for its answer")
        future: asyncio.Future[Element] = asyncio.get_running_loop().create_future()
        self._iqs[ident] = (element.get("to"), future)
        if self._reading_paused and not self._closing:
            self._resume_reading()  # the answer may be behind a full queue
        try:
            self.send(element)
            async with asyncio.timeout(timeout):
                reply = await future
        finally:
            entry = self._iqs.get(ident)
            if entry is not None and entry[1] is future:
                del self._iqs[ident]
        if reply.get("type") == "error":
            raise IqError(reply)
        return reply

    async def recv(self, timeout: float | None = None) -> Element:
        """The next incoming stanza.  Raises ``TimeoutError`` after ``timeout`` seconds
        (``None``: wait forever) and ``StreamClosedError`` once the stream is over and
        the queue is empty."""
        queue = self._queue
        if not queue:
            async with asyncio.timeout(timeout):
                while not queue:
                    if self._finished:
                        raise self._closed_error()
                    self._readable.clear()
                    await self._readable.wait()
        stanza = queue.popleft()
        if self._reading_paused and len(queue) <= self._resume_at:
            self._resume_reading()
        return stanza

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Element:
        """Incoming stanzas until the stream ends: iteration stops after a closing
        handshake and raises ``StreamClosedError`` after a failure."""
        try:
            return await self.recv()
        except StreamClosedError:
            if self._error is None:
                raise StopAsyncIteration from None
            raise

    async def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """The closing handshake (RFC 6120 §4.4): send ``</stream:stream>``, wait up to
        ``timeout`` seconds for the server's, then close the socket.  Stanzas the server
        sends meanwhile still reach the queue while it has room."""
        if not self._finished:
            self._closing = True
            self._stream.close()
            self._flush()
            if self._reading_paused:
                self._resume_reading()  # we must read to see the server's closing tag
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._done)
            except TimeoutError:
                log.debug("no closing tag from the server within %s s", timeout)
                self._finish(None)
        if self._tls_task is not None and not self._tls_task.done():
            self._tls_task.cancel()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        self._stream = ClientStream(
            self.config,
            tls_active=ssl_object is not None,
            channel_bindings=_channel_bindings(ssl_object),
        )
        self._stream.start()
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self._finished:
            return
        if self._upgrading is not None:
            # asyncio may deliver the first bytes read over TLS before start_tls()
            # returns; they belong to the restarted stream, so they wait for it.
            self._upgrading.append(data)
            return
        for event in self._stream.receive_data(data):
            if type(event) is StanzaReceived:
                self._on_stanza(event.stanza)
            else:
                self._on_event(event)
        self._flush()
        if self._finished:
            self._close_transport()

    def eof_received(self) -> bool | None:
        if not self._finished:
            for event in self._stream.receive_data(b""):
                self._on_event(event)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._finished:
            text = f"connection lost: {exc}" if exc else "connection lost"
            self._finish(StreamClosedError("", text))
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- events -------------------------------------------------------------------------

    def _on_stanza(self, stanza: Element) -> None:
        if stanza.name == "iq":
            kind = stanza.get("type")
            if kind == "result" or kind == "error":
                ident = stanza.get("id") or ""
                entry = self._iqs.get(ident)
                if entry is not None and self._iq_answer_from_ok(entry[0], stanza.get("from")):
                    del self._iqs[ident]
                    if not entry[1].done():
                        entry[1].set_result(stanza)
                    return
            elif kind == "get" and self._answer_pings and stanza.first_child_namespace() == ns.PING:
                self._pong(stanza)
                return
        queue = self._queue
        if self._closing and len(queue) >= self._queue_size:
            return  # closing: nobody is going to read past the bound
        queue.append(stanza)
        if not self._readable.is_set():
            self._readable.set()
        if (
            len(queue) >= self._queue_size
            and not self._reading_paused
            and not self._closing
            and not self._iqs  # an answer is awaited: read on
        ):
            self._reading_paused = True
            if self._transport is not None:
                self._transport.pause_reading()

    def _iq_answer_from_ok(self, to: str | None, sender: str | None) -> bool:
        """RFC 6120 §8.1.2.1, §10.3.3: the answer comes from whom we asked; an iq to no
        one is answered by our account (bare or full JID) or the server.  The server may
        leave ``from`` out of what it says for itself or for our account (§8.1.2.1 rules
        2 and 3), so an answer without one is taken for an iq to no one, to our bare
        JID or to the server."""
        bare = self.jid.split("/", 1)[0]
        if sender is None:
            return to is None or any(_same_jid(to, own) for own in (bare, self.config.domain))
        if to is None:
            return any(_same_jid(sender, own) for own in (bare, self.config.domain, self.jid))
        return _same_jid(to, sender)

    def _pong(self, ping: Element) -> None:
        """XEP-0199 §4.2/§4.3: answer a ping with an empty result."""
        to = ping.get("from")
        ident = ping.get("id") or ""
        addr = f" to='{escape_attr(to)}'" if to else ""
        self._stream.send_raw(f"<iq type='result' id='{escape_attr(ident)}'{addr}/>".encode())

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StanzaReceived):
            self._on_stanza(event.stanza)
        elif isinstance(event, Bound):
            self.jid = event.jid
            if not self._ready.done():
                self._ready.set_result(None)
        elif isinstance(event, TLSProceed):
            self._flush()
            self._upgrading = []
            self._tls_task = asyncio.get_running_loop().create_task(self._starttls())
        # The failures: our closing tag is queued; it is written and the socket closed
        # at the end of data_received(), which fails whoever waits.
        elif isinstance(event, AuthFailed):
            self._finish(AuthenticationError(event.condition, event.text))
        elif isinstance(event, BindFailed):
            self._finish(BindError(event.condition, event.text))
        elif isinstance(event, TLSFailed):
            self._finish(ClientError("tls-failure", "the server refused STARTTLS"))
        elif isinstance(event, StreamErrorReceived):
            self._finish(StreamClosedError(event.condition, event.text))
        elif isinstance(event, StreamFailed):
            log.info("server broke the stream: %s %s", event.condition, event.text)
            self._finish(StreamClosedError(event.condition, event.text))
        elif isinstance(event, Closed):
            clean = self._closing and self._error is None
            self._finish(None if clean else StreamClosedError("", "the server closed the stream"))
        elif isinstance(event, ConnectionLost):
            self._finish(StreamClosedError("", "connection lost"))
        # StreamOpened, FeaturesReceived, Authenticated, NonzaReceived: nothing to do.

    # -- internals ------------------------------------------------------------------------

    async def _starttls(self) -> None:
        """RFC 6120 §5.4.3: the TLS handshake after ``<proceed/>``, then the restart."""
        transport = self._transport
        assert transport is not None and self._ssl_context is not None
        loop = asyncio.get_running_loop()
        try:
            new = await loop.start_tls(
                transport,
                self,
                self._ssl_context,
                server_hostname=self.config.domain,
                ssl_handshake_timeout=self._timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ssl.SSLError, OSError, TimeoutError: all fatal here
            self._finish(exc)
            transport.abort()
            return
        if new is None or self._finished:  # pragma: no cover - closed meanwhile
            self._finish(StreamClosedError("", "connection lost during the TLS handshake"))
            return
        self._transport = new
        self._stream.tls_established(_channel_bindings(new.get_extra_info("ssl_object")))
        self._flush()
        pending, self._upgrading = self._upgrading or [], None
        for data in pending:
            self.data_received(data)

    def _finish(self, error: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        if self._error is None:
            self._error = error
        err = self._error or StreamClosedError("", "the stream is closed")
        if not self._ready.done():
            self._ready.set_exception(err)
            self._ready.exception()
        self._fail_waiters(err)
        if not self._done.done():
            self._done.set_result(None)
        self._readable.set()
        self._writable.set()

    def _fail_waiters(self, error: BaseException) -> None:
        iqs, self._iqs = self._iqs, {}
        for _, future in iqs.values():
            if not future.done():
                future.set_exception(error)
                future.exception()

    def _closed_error(self) -> StreamClosedError:
        err = self._error
        if isinstance(err, StreamClosedError):
            return err
        if err is not None:
            return StreamClosedError(getattr(err, "condition", ""), str(err))
        return StreamClosedError("", "the stream is closed")

    def _flush(self) -> None:
        data = self._stream.data_to_send()
        transport = self._transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def _resume_reading(self) -> None:
        self._reading_paused = False
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _close_transport(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _abort(self) -> None:
        """``connect()`` failed, timed out or was cancelled: end the stream and close the
        socket (after our closing tag, if a failed negotiation queued one)."""
        self._finish(self._error or StreamClosedError("", "connect failed"))
        if self._tls_task is not None and not self._tls_task.done():
            self._tls_task.cancel()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
