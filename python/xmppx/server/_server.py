"""The server: listeners, the session registry, stanza routing and the module loader.

``XMPPServer(config)``; ``await server.start()`` opens storage, makes or loads the TLS
certificate, starts modules and listeners; ``await server.stop()`` shuts down gracefully
(unavailable presence out, every stream closed with ``system-shutdown``, storage
flushed).  Tests start it in-process on ephemeral ports (``c2s.port = 0`` picks one: the
bound ports are in ``server.ports``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import ssl
import time
from asyncio import FIRST_COMPLETED
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from xmppx import ns
from xmppx.core import BareJID, Element, FullJID, JIDError, parse_jid
from xmppx.errors import StanzaError, StreamError, stanza_error_reply
from xmppx.modules._base import ACCOUNT, SERVER, IqGet, IqRequest, IqSet, Module
from xmppx.modules.sm import failed as sm_failed
from xmppx.router import (
    Bounce,
    Deliver,
    Drop,
    HandleForAccount,
    HandlePresence,
    StoreOffline,
    message_type,
    route_to_account,
)
from xmppx.server._connection import C2SConnection
from xmppx.server._throttle import AuthThrottle
from xmppx.server.config import Config
from xmppx.server.tls import (
    ALPN_XMPP_CLIENT,
    HelloRead,
    TLSFiles,
    TLSSetupError,
    ensure_certificate,
    make_server_context,
    peek_client_hello,
    refuse_application_protocol,
)
from xmppx.sessions import Delivery, Session, SessionRegistry
from xmppx.storage import StorageError
from xmppx.stream import PreAuthIq, ServerStreamConfig

if TYPE_CHECKING:
    from xmppx.auth import ServerMechanism
    from xmppx.storage import Storage

__all__ = ["XMPPServer"]

#: A stanza waiting for an account's storage checks: sender session, stanza, kind, type,
#: recipient, and a future told the outcome of its handling (None, or what failed), when
#: one waits.
_Pending = tuple[
    "C2SConnection | None",
    Element,
    str,
    str,
    "BareJID | FullJID",
    "asyncio.Future[BaseException | None] | None",
]


class _Barrier:
    """Work an account's queue runs in its turn (``XMPPServer.hold_account``): the
    stanzas after it wait until it is done."""

    __slots__ = ("abandon", "work")

    def __init__(
        self, work: Callable[[], Awaitable[object]], abandon: Callable[[], object] | None = None
    ) -> None:
        self.work = work
        #: called instead of ``work`` when the queue stops before its turn (shutdown)
        self.abandon = abandon


_Queued = _Pending | _Barrier

log = logging.getLogger("xmppx.server")

#: Seconds ``remove_account`` waits for work the account's sessions began before it
#: (an iq writing the roster, say), so that none of it is written after the account is
#: deleted, where whoever registers the name next would find it.
REMOVAL_WORK_WAIT: Final = 30.0


class _Removal:
    """One account removal in progress (``XMPPServer.remove_account``)."""

    def __init__(self) -> None:
        self.task: asyncio.Future[bool]
        #: the tasks waiting for its outcome (those asking for it: not waited for)
        self.asking: set[asyncio.Task[Any]] = set()
        #: set when one more task asks
        self.joined = asyncio.Event()


_IQ_TYPES: Final = frozenset({"get", "set", "result", "error"})
_PRESENCE_TYPES: Final = frozenset(
    {
        "available",
        "unavailable",
        "subscribe",
        "subscribed",
        "unsubscribe",
        "unsubscribed",
        "probe",
        "error",
    }
)


#: Seconds ``stop()`` waits for in-flight work (e.g. offline stores) before cancelling it.
SHUTDOWN_DRAIN_SECONDS: Final = 5.0

#: Optional methods a module may define; the server calls them at these points:
#:
#: - ``on_session_started(session)``: a resource was bound.
#: - ``session_gone(session)``: a bound session ended (any reason).
#: - ``on_presence_broadcast(session, stanza, stype)``: presence without 'to' (RFC 6121
#:   §4.2, §4.4); the first module defining it handles it.
#: - ``on_presence_to_account(session, stanza, stype, bare)``: presence to a local bare JID
#:   or a subscription stanza (RFC 6121 §3, §4.6); the first module handles it.  It may
#:   return an awaitable for work it started for that account (a subscription waiting on
#:   the roster): stanzas to the account that come later wait for it (RFC 6120 §10.1).
#: - ``store_offline(session, stanza, bare)``: a coroutine storing a message for an account
#:   with no available resource (RFC 6121 §8.5.2.2); the first module handles it.
#: - ``screen_outbound(session, stanza, kind, stype, to)`` and
#:   ``screen_inbound(stanza, kind, stype, sender, recipient)``: return ``True`` to let the
#:   stanza pass, ``False`` to drop it silently, or a ``StanzaError`` to bounce it (e.g.
#:   XEP-0191 blocking).  Every module defining them is asked, in order.
#: - ``screen_inbound_async(stanza, kind, stype, sender, recipient)``: the same, as a
#:   coroutine, for an account with nothing online (whose state the modules do not keep
#:   in memory): it is asked before the stanza is routed to it.
#: - ``on_message_sent(session, stanza, stype, to)``: a client's message, past the outbound
#:   screens, going to another local account or to a service here (XEP-0280 §8).
#: - ``on_message_delivery(sender, stanza, stype, bare, recipients)``: a message to the
#:   local account ``bare``, past the inbound screens, about to be delivered to the
#:   sessions ``recipients`` by RFC 6121 §8.5 (none: it is about to be stored offline);
#:   ``sender`` is the sending session, ``None`` for the server's own (XEP-0280 §7).
#: - ``on_nonza(session, element)``: a top-level element of a bound stream that is not a
#:   stanza (XEP-0352 ``<active/>``); return ``True`` when handled.  Every module defining
#:   it is asked in order; none: ``unsupported-stanza-type`` (RFC 6120 §4.9.3.22).
#: - ``on_resume(conn, element)``: XEP-0198 ``<resume/>`` on an authenticated stream
#:   not yet bound; the first module defining it answers.
#: - ``on_account_removed(user)``: ``remove_account`` deleted ``user`` and everything
#:   stored for it; a module forgets what it keeps in memory for it, so that whoever
#:   registers the name next does not inherit it (a MUC room's affiliations).
#: - ``component_domain`` (attribute) with ``route_component(session, stanza, to)``: a
#:   service on a subdomain (XEP-0045 at ``conference.<domain>`` or ``muc.domain``).
HOOKS: Final = (
    "on_session_started",
    "session_gone",
    "on_presence_broadcast",
    "on_presence_to_account",
    "store_offline",
    "screen_outbound",
    "screen_inbound",
    "screen_inbound_async",
    "on_message_sent",
    "on_message_delivery",
    "on_nonza",
    "on_resume",
    "on_account_removed",
)


#: Modules loaded by default, in order; more are added by the features they implement.
def _default_modules() -> list[type[Module]]:
    from xmppx.modules.admin import AdminCommands
    from xmppx.modules.basic import Disco, EntityTime, Ping, SoftwareVersion
    from xmppx.modules.blocking import Blocking
    from xmppx.modules.carbons import Carbons
    from xmppx.modules.csi import ClientState
    from xmppx.modules.last import LastActivityModule
    from xmppx.modules.legacy_auth import LegacyAuth
    from xmppx.modules.muc import MucService
    from xmppx.modules.offline import OfflineMessages
    from xmppx.modules.presence import Presence
    from xmppx.modules.private import PrivateStorage
    from xmppx.modules.register import Registration
    from xmppx.modules.roster import RosterManager
    from xmppx.modules.session import LegacySession
    from xmppx.modules.sm import StreamManagement
    from xmppx.modules.vcard import VCardTemp

    # RosterManager first: it stops last and so outlives the others' tasks; Blocking
    # before Presence: its screen_outbound must refuse a stanza to a blocked JID first.
    return [
        Disco,
        Ping,
        SoftwareVersion,
        EntityTime,
        LegacySession,
        RosterManager,
        Blocking,
        Presence,
        OfflineMessages,
        Carbons,
        ClientState,
        StreamManagement,
        LastActivityModule,
        VCardTemp,
        PrivateStorage,
        Registration,
        AdminCommands,
        LegacyAuth,
        MucService,
    ]


def _failure_of(task: asyncio.Future[Any]) -> BaseException | None:
    """What a finished task failed with (cancelled counts as a failure), or None."""
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception()


class XMPPServer:
    """One XMPP service for one domain.  See the module docstring."""

    def __init__(
        self,
        config: Config,
        *,
        storage: Storage | None = None,
        modules: Iterable[type[Module]] | None = None,
    ) -> None:
        self.config = config
        self.domain = config.domain
        self.storage: Storage = storage  # type: ignore[assignment]  # opened in start()
        self._own_storage = storage is None
        self.sessions = SessionRegistry()
        if modules is None:
            modules = _default_modules()
            if not config.values.get("muc.enabled", True):
                modules = [m for m in modules if m.__name__ != "MucService"]
        self.modules: list[Module] = [m(self) for m in modules]
        self._iq: dict[IqGet | IqSet, Callable[[IqRequest], Awaitable[Element | None]]] = {}
        for module in self.modules:
            for key, handler in module.bound_handlers().items():
                if key in self._iq:
                    raise ValueError(f"two modules handle {key}")
                self._iq[key] = handler
        self._hooks: dict[str, list[Any]] = {
            name: [getattr(m, name) for m in self.modules if hasattr(m, name)] for name in HOOKS
        }
        self._components: dict[str, Any] = {}
        for module in self.modules:
            domain = getattr(module, "component_domain", None)
            if domain:
                self._components[str(domain)] = module
        self.connections: set[C2SConnection] = set()
        self._unauth_per_address: Counter[str] = Counter()
        self._servers: list[asyncio.AbstractServer] = []
        #: the direct TLS port's sockets, and the tasks accepting on them and shaking
        #: hands (``_accept_direct_tls``)
        self._listeners: list[socket.socket] = []
        self._accepting: set[asyncio.Task[None]] = set()
        self.ports: dict[str, int] = {}
        self.starttls_context: ssl.SSLContext | None = None
        self.direct_tls_context: ssl.SSLContext | None = None
        self.cert_end_point_binding: bytes | None = None
        self.throttle = AuthThrottle(
            base=config["auth.throttle_base_ms"] / 1000.0,
            cap=config["auth.throttle_max_ms"] / 1000.0,
        )
        self.stream_config: ServerStreamConfig = self._stream_config()
        self._secret = b""
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self.started_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Stanzas for accounts with nothing online, waiting on storage, in order.
        self._account_queues: dict[BareJID, deque[_Queued]] = {}
        #: Accounts being removed: the one removal each, shared by whoever asks.
        self._removing: dict[BareJID, _Removal] = {}
        #: Accounts deleted from storage whose sessions have not all ended yet: no
        #: account any more for what is routed to them (``account_deleted``).
        self._deleted: set[BareJID] = set()
        #: The message to an account being delivered now (``delivery``).
        self._delivery: Delivery | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open storage, prepare TLS, start modules and listeners."""
        from xmppx.storage import open_storage

        cfg = self.config
        data_dir = cfg.data_dir
        # the database holds SCRAM keys and messages: a new data dir is the owner's only
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _warn_if_shared(data_dir)
        self._secret = _server_secret(data_dir)
        if self._own_storage:
            self.storage = await open_storage(cfg.storage_url, **cfg.storage_options)
        if cfg["tls.enabled"]:
            self._load_tls()
        self.stream_config = self._stream_config()
        for module in self.modules:
            await module.start()
        loop = asyncio.get_running_loop()
        hosts = list(cfg["c2s.hosts"])
        if cfg["c2s.port"] >= 0:
            socks = _listen(hosts, cfg["c2s.port"])  # (port 0: one port for every host)
            for sock in socks:
                srv = await loop.create_server(
                    lambda: C2SConnection(self, direct_tls=False), sock=sock
                )
                self._servers.append(srv)
            self.ports["c2s"] = socks[0].getsockname()[1]
        if cfg["c2s.tls_port"] >= 0 and self.direct_tls_context is not None:
            self._listeners = _listen(hosts, cfg["c2s.tls_port"])
            self.ports["c2s_tls"] = self._listeners[0].getsockname()[1]
            for sock in self._listeners:
                self._accepting.add(loop.create_task(self._accept_direct_tls(sock)))
        self._sweeper = asyncio.create_task(self._sweep())
        self.started_at = time.time()
        log.info("serving %s on %s", self.domain, self.ports)

    async def _accept_direct_tls(self, listener: socket.socket) -> None:
        """XEP-0368: accept on the direct TLS port.  A connection is admitted within the
        connection limits at its TCP accept (a refused one is closed at once), then its
        TLS handshake runs, within ``limits.header_timeout``; one that fails gives its
        place back."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(listener)
            except OSError as exc:  # out of descriptors and the like: not for long
                log.error("accepting a direct TLS connection: %s", exc)
                await asyncio.sleep(0.5)
                continue
            conn = C2SConnection(self, direct_tls=True)
            conn.address = str(peer[0]) if peer else "?"
            if not self.admit(conn):
                sock.close()
                continue
            conn.admitted_for_tls(self.cert_end_point_binding)
            task = loop.create_task(self._direct_tls_handshake(conn, sock))
            self._accepting.add(task)
            task.add_done_callback(self._accepting.discard)

    async def _direct_tls_handshake(self, conn: C2SConnection, sock: socket.socket) -> None:
        """The ClientHello is read first (``peek_client_hello``): one that offers ALPN
        without ``xmpp-client`` gets a fatal ``no_application_protocol`` alert (RFC 7301
        §3.2).  Reading it and the handshake together take at most
        ``limits.header_timeout``."""
        loop = asyncio.get_running_loop()
        timeout = self.config["limits.header_timeout"]
        deadline = loop.time() + timeout
        try:
            offer = await asyncio.wait_for(peek_client_hello(sock), timeout)
            refused = None
            if isinstance(offer, HelloRead):
                refused = "no ClientHello that can be read"
            elif offer is not None and ALPN_XMPP_CLIENT not in offer:
                names = b", ".join(offer).decode("ascii", "replace") or "nothing"
                refused = f"its ALPN offers {names}, not xmpp-client (RFC 7301 §3.2)"
            if refused is not None:
                log.info("TLS from %s refused: %s", conn.address, refused)
                refuse_application_protocol(sock)
                conn.connection_lost(None)
                return
            await loop.connect_accepted_socket(
                lambda: conn,
                sock,
                ssl=self.direct_tls_context,
                ssl_handshake_timeout=max(deadline - loop.time(), 0.001),
            )
        except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError) as exc:
            if not isinstance(exc, asyncio.CancelledError):  # (cancelled: we are stopping)
                log.info("TLS handshake with %s failed: %r", conn.address, exc)
            sock.close()
            conn.connection_lost(None)  # (never made: asyncio will not say it is lost)
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _load_tls(self) -> None:
        cfg = self.config
        files = (
            TLSFiles(cert=Path(cfg["tls.cert"]), key=Path(cfg["tls.key"]))
            if cfg["tls.cert"]
            else ensure_certificate(cfg.data_dir, self.domain)
        )
        starttls = make_server_context(files)
        direct = make_server_context(files, alpn=True)
        from xmppx.auth import tls_server_end_point

        binding = tls_server_end_point(_first_cert_der(files.cert))
        self.starttls_context, self.direct_tls_context = starttls, direct
        self.cert_end_point_binding = binding

    def reload_tls(self) -> bool:
        """Read ``tls.cert`` and ``tls.key`` again (``xmppx-server`` does on SIGHUP): a
        renewed certificate is used from the next TLS handshake on; connections that have
        TLS keep theirs, and their RFC 5929 channel binding.  If the files cannot be
        used, the certificate in use stays and the reason is logged; returns whether
        the new one was taken."""
        if not self.config["tls.enabled"]:
            return False
        try:
            self._load_tls()
        except (TLSSetupError, OSError, ValueError) as exc:
            log.error("TLS certificate not reloaded, the one in use stays: %s", exc)
            return False
        log.info("TLS certificate reloaded")
        return True

    async def stop(self) -> None:
        """Graceful shutdown: stop accepting, tell every session, close every stream
        with ``system-shutdown``, stop modules, close storage."""
        if self._stopping:
            return
        self._stopping = True
        for srv in self._servers:
            srv.close()
        for task in self._accepting:
            task.cancel()
        for sock in self._listeners:
            sock.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        connections = list(self.connections)
        for conn in connections:
            if conn.bound:
                self.session_ended(conn)
                conn.bound = False
        for conn in connections:
            conn.end("system-shutdown", "the server is shutting down")
            if conn.sm is not None:
                # XEP-0198: what its client did not acknowledge goes to storage now,
                # while storage is open (the transport's end would come too late)
                conn.finish()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_DRAIN_SECONDS)
        for srv in self._servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(srv.wait_closed(), timeout=2)
        for module in reversed(self.modules):
            await module.stop()
        if self._own_storage and self.storage is not None:
            await self.storage.close()

    def spawn(
        self, coro: Coroutine[Any, Any, None], on_behalf_of: C2SConnection | None = None
    ) -> asyncio.Task[None]:
        """Run ``coro`` as a task the server keeps a reference to until it ends; a
        failure is logged (a ``StreamError`` ends the stream of the session in play by
        its caller, so only bugs arrive here).  Work done for a connection counts
        against its ``MAX_PENDING_PER_CONNECTION``: past it, the connection stops being
        read until the work drains (floods meet back-pressure, not queues)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        if on_behalf_of is not None:
            on_behalf_of.work_started()
            on_behalf_of.work_tasks.add(task)
            task.add_done_callback(on_behalf_of.work_tasks.discard)
            task.add_done_callback(lambda _t: on_behalf_of.work_done())
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("internal error in a server task", exc_info=exc)

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` has begun (modules tell their users, e.g. MUC status 332)."""
        return self._stopping

    # -- connections -------------------------------------------------------------------

    def admit(self, conn: C2SConnection) -> bool:
        """Accept a new connection within ``limits.max_connections`` and
        ``limits.max_unauthenticated_per_address``."""
        cfg = self.config
        if self._stopping or len(self.connections) >= cfg["limits.max_connections"]:
            return False
        if self._unauth_per_address[conn.address] >= cfg["limits.max_unauthenticated_per_address"]:
            log.info("refusing %s: too many unauthenticated connections", conn.address)
            return False
        self._unauth_per_address[conn.address] += 1
        self.connections.add(conn)
        return True

    def release(self, conn: C2SConnection) -> None:
        """``conn`` authenticated or went away: it no longer counts as unauthenticated."""
        n = self._unauth_per_address[conn.address] - 1
        if n <= 0:
            del self._unauth_per_address[conn.address]
        else:
            self._unauth_per_address[conn.address] = n

    def session_started(self, session: C2SConnection) -> None:
        if session.jid.bare in self._removing:
            session.freeze()  # bound while its account is being removed
        old = self.sessions.add(session)
        for hook in self._hooks["on_session_started"]:
            hook(session)
        # RFC 6120 §7.7.2.2: the new session replaces the old one, which gets 'conflict'.
        if isinstance(old, C2SConnection) and old is not session:
            old.bound = False
            self._presence_gone(old)
            old.end("conflict", "replaced by a new connection with the same resource")

    def session_ended(self, session: C2SConnection) -> None:
        if self.sessions.remove(session):
            self._presence_gone(session)
        self.connections.discard(session)
        bare = session.jid.bare
        if bare in self._deleted and not self.sessions.resources(bare):
            self._deleted.discard(bare)

    def _presence_gone(self, session: Session) -> None:
        for hook in self._hooks["session_gone"]:
            hook(session)

    async def _sweep(self) -> None:
        """XEP-0199 §4.3 client pings: ping the silent, drop the unanswering."""
        cfg = self.config
        interval, timeout = cfg["ping.interval"], cfg["ping.timeout"]
        period = max(0.05, min(interval, timeout) / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in list(self.connections):
                if not conn.bound or conn.closed:
                    continue
                if conn.reading_paused_for_rate:
                    # not silent: sending faster than its rate; its answer is unread
                    conn.last_active = now
                    conn.ping_sent_at = max(conn.ping_sent_at, now)
                    continue
                if conn.ping_id is not None:
                    if now - conn.ping_sent_at > timeout:
                        conn.end("connection-timeout", "no answer to ping")
                elif now - conn.last_active > interval:
                    conn.send_ping()

    # -- SASL --------------------------------------------------------------------------

    def _stream_config(self) -> ServerStreamConfig:
        cfg = self.config
        tls_on = bool(cfg["tls.enabled"])
        plain = bool(cfg["auth.plain"])

        def mechanisms(tls: bool) -> list[str]:
            mechs = []
            if tls and self.cert_end_point_binding is not None:
                mechs += ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"]
            mechs += ["SCRAM-SHA-256", "SCRAM-SHA-1"]
            if plain and tls:
                mechs.append("PLAIN")
            return mechs

        def cb_types(tls: bool) -> list[str]:
            return ["tls-server-end-point"] if tls and self.cert_end_point_binding else []

        preauth: list[Element] = []
        # read before authentication even when off: the modules answer
        # service-unavailable (XEP-0077 §3.1, XEP-0078 §3 MUST), not a stream error
        pre_ns = {ns.IQ_REGISTER, ns.IQ_AUTH}
        if cfg["register.enabled"]:
            preauth.append(Element("register", ns.IQ_REGISTER_FEATURE))
        if cfg["auth.legacy_iq_auth"]:
            preauth.append(Element("auth", ns.IQ_AUTH_FEATURE))
        postauth: list[Element] = []
        for module in self.modules:
            postauth.extend(getattr(module, "stream_features", ()))
        return ServerStreamConfig(
            domains=frozenset({self.domain}),
            tls_available=tls_on,
            tls_required=tls_on and bool(cfg["tls.required"]),
            mechanisms=mechanisms,
            channel_binding_types=cb_types,
            pre_auth_iq_namespaces=frozenset(pre_ns),
            extra_features_preauth=tuple(preauth),
            extra_features_postauth=tuple(postauth),
            max_auth_attempts=cfg["auth.max_attempts"],
            preauth_stanza_bytes=cfg["limits.preauth_stanza_bytes"],
            stanza_bytes=cfg["limits.stanza_bytes"],
            max_depth=cfg["limits.max_depth"],
            max_attributes=cfg["limits.max_attributes"],
            idle_seconds=int(cfg["ping.interval"]),
        )

    def sasl_mechanism(self, conn: C2SConnection, name: str) -> ServerMechanism:
        """A server mechanism for ``name`` on ``conn`` (``LookupError`` if not offered)."""
        from xmppx.auth import SASLFailure, ServerContext, create_server_mechanism
        from xmppx.core import nodeprep

        bindings: dict[str, bytes] = {}
        cb = conn.channel_binding("tls-server-end-point")
        if cb is not None:
            bindings["tls-server-end-point"] = cb

        def prep_bare(s: str) -> str:
            try:
                return str(parse_jid(s))
            except JIDError as exc:
                raise ValueError(str(exc)) from None

        def prep_user(s: str) -> str:
            try:
                return nodeprep(s)
            except JIDError as exc:
                raise ValueError(str(exc)) from None

        ctx = ServerContext(
            domain=self.domain,
            secret=self._secret,
            tls=conn.stream.tls_active,
            channel_bindings=bindings,
            prep_username=prep_user,
            prep_jid=prep_bare,
        )
        try:
            return create_server_mechanism(name, ctx)
        except SASLFailure as exc:
            raise LookupError(exc.condition) from None

    def decoy_credentials(self, username: str) -> Any:
        """SHA-256 SCRAM credentials that no password matches, for a user that does not
        exist: checking a password against them costs what a real check costs, so the
        answer's timing does not tell whether the account exists (RFC 5802 §9)."""
        from xmppx.auth._credentials import fake_scram_credentials

        return fake_scram_credentials(self._secret, "sha256", username)

    async def auth_turn(self, conn: C2SConnection, account: str) -> bool:
        """Wait for this login's turn to have its password checked (``_throttle``:
        before the check, right or wrong); False when the turn is beyond the cap and the
        password must not be checked at all."""
        wait = self.throttle.turn(account, conn.address)
        if wait is None:
            return False
        if wait > 0:
            await asyncio.sleep(wait)
        return True

    async def sasl_step(
        self, conn: C2SConnection, mech: ServerMechanism, data: bytes | None, *, first: bool
    ) -> tuple[str, bytes, str]:
        """Run the mechanism until it needs the client again.  Returns
        ``("challenge", data, "")``, ``("success", additional, bare_jid)`` or
        ``("failure", text, condition)``."""
        from xmppx.auth import Challenge, NeedCredentials, SASLFailure, Success

        try:
            step = mech.start(data) if first else mech.respond(data or b"")
            while isinstance(step, NeedCredentials):
                user = f"{step.username}@{self.domain}"
                conn.sasl_user = user
                if not await self.auth_turn(conn, user):
                    raise SASLFailure(
                        "temporary-auth-failure", "too many failed logins: try again later"
                    )
                if conn.closed:  # the client gave up while it waited: check nothing
                    raise SASLFailure("aborted", "the client has gone")
                creds = None
                for hash_name in step.hash_names:
                    try:
                        stored = await self.storage.accounts.get_credentials(user, hash_name)
                    except StorageError as exc:  # RFC 6120 §6.5.12: try again later
                        log.error("credentials of %s not read: %s", user, exc)
                        raise SASLFailure("temporary-auth-failure", "storage failed") from None
                    if stored is not None:
                        creds = _to_auth_credentials(stored)
                        break
                # PLAIN checks the password here (PBKDF2, milliseconds): off the loop
                step = await asyncio.get_running_loop().run_in_executor(
                    None, mech.provide_credentials, creds
                )
            if isinstance(step, Challenge):
                return ("challenge", step.data, "")
            assert isinstance(step, Success)
            return ("success", step.additional_data or b"", f"{step.authcid}@{self.domain}")
        except SASLFailure as exc:
            if exc.condition not in ("temporary-auth-failure", "aborted"):  # not checked
                self.throttle.failure(conn.sasl_user, conn.address)
            return ("failure", exc.text.encode(), exc.condition)

    async def handle_preauth_iq(self, conn: C2SConnection, event: PreAuthIq) -> None:
        """XEP-0077 registration and XEP-0078 legacy auth before authentication."""
        for module in self.modules:
            handler = getattr(module, "preauth_iq", None)
            if handler is not None and event.namespace in getattr(module, "preauth_namespaces", ()):
                await handler(conn, event.stanza)
                return
        self.bounce(conn, event.stanza, StanzaError("service-unavailable"))

    # -- routing: the hot path ---------------------------------------------------------

    def handle_stanza(self, session: C2SConnection, stanza: Element) -> None:
        """A stanza from a bound client (RFC 6120 §8.1.2.1, §10): check and stamp
        ``from``, then route by ``to``.  A bug met on the way is logged and answered with
        ``internal-server-error`` (§8.3.3.6); the stream goes on.  Only a ``StreamError``
        ends it."""
        try:
            self._handle_stanza(session, stanza)
        except StreamError:
            raise
        except Exception:
            log.exception("internal error handling a stanza from %s", session.jid)
            self.bounce(session, stanza, StanzaError("internal-server-error"))

    def _handle_stanza(self, session: C2SConnection, stanza: Element) -> None:
        jid = session.jid
        frm = stanza.get("from")
        if frm is not None and frm != str(jid):
            try:
                claimed = parse_jid(frm)
            except JIDError:
                raise StreamError("invalid-from", f"{frm!r} is not a JID") from None
            if claimed != jid and claimed != jid.bare:
                raise StreamError("invalid-from", f"{frm} is not this stream's address")
        stanza.set("from", str(jid))
        lang = session.stream.peer_lang
        if lang and stanza.get(ns.XML_LANG) is None:
            stanza.set(ns.XML_LANG, lang)  # RFC 6120 §4.7.4: the language of its stream
        kind = stanza.name
        stype = stanza.get("type")
        if kind == "iq":
            if stype not in _IQ_TYPES or stanza.get("id") is None:
                self.bounce(
                    session, stanza, StanzaError("bad-request", "iq needs a valid type and id")
                )
                return
            if stype in ("get", "set") and sum(1 for _ in stanza) != 1:
                self.bounce(
                    session,
                    stanza,
                    StanzaError("bad-request", "iq get/set needs exactly one child"),
                )
                return
        elif kind == "message":
            stype = message_type(stanza)
        else:
            if stype == "available":
                # not a value of 'type' (RFC 6121 §4.7.1): availability is its absence;
                # an old client's explicit one is taken as meant, not passed on
                stanza.pop_attr("type")
            stype = stype or "available"
            if stype not in _PRESENCE_TYPES:
                self.bounce(session, stanza, StanzaError("bad-request", f"presence type {stype!r}"))
                return
        to_attr = stanza.get("to")
        if to_attr is None:
            self._to_self(session, stanza, kind, stype)
            return
        try:
            to = parse_jid(to_attr)
        except JIDError as exc:
            self.bounce(session, stanza, StanzaError("jid-malformed", str(exc)))
            return
        for screen in self._hooks["screen_outbound"]:
            verdict = screen(session, stanza, kind, stype, to)
            if verdict is True:
                continue
            if isinstance(verdict, StanzaError):
                self.bounce(session, stanza, verdict)
            return
        if to.domain != self.domain:
            component = self._components.get(to.domain)
            if component is not None:
                if kind == "message":
                    self._message_sent(session, stanza, stype, to)
                component.route_component(session, stanza, to)
                return
            self.bounce(
                session,
                stanza,
                StanzaError("remote-server-not-found", f"{to.domain} is not served here"),
            )
            return
        if not to.local:
            if isinstance(to, FullJID):
                self.bounce(session, stanza, StanzaError("service-unavailable"))
            elif kind == "iq":
                self._spawn_iq(session, stanza, stype, None)
            # message/presence to the server itself: nothing to do (RFC 6120 §10.3)
            return
        if kind == "message" and to.bare != jid.bare:
            self._message_sent(session, stanza, stype, to)
        self._to_account(session, stanza, kind, stype, to)

    def _message_sent(
        self, session: C2SConnection, stanza: Element, stype: str, to: BareJID | FullJID
    ) -> None:
        for hook in self._hooks["on_message_sent"]:
            hook(session, stanza, stype, to)

    def _message_delivery(
        self,
        session: C2SConnection | None,
        stanza: Element,
        stype: str,
        bare: BareJID,
        recipients: tuple[Session, ...],
    ) -> None:
        for hook in self._hooks["on_message_delivery"]:
            hook(session, stanza, stype, bare, recipients)

    @property
    def delivery(self) -> Delivery | None:
        """While a message to an account is delivered (to its sessions, and as carbon
        copies): its record, which every session it reaches takes part in.  ``None``
        otherwise."""
        return self._delivery

    def handle_nonza(self, session: C2SConnection, element: Element) -> None:
        """A top-level element that is not a stanza, from a bound client: the first
        module whose ``on_nonza`` takes it, else ``unsupported-stanza-type``."""
        for hook in self._hooks["on_nonza"]:
            if hook(session, element):
                return
        raise StreamError("unsupported-stanza-type", f"{{{element.namespace}}}{element.name}")

    def handle_resume(self, conn: C2SConnection, element: Element) -> None:
        """XEP-0198 §5 ``<resume/>`` instead of binding: the first module whose
        ``on_resume`` answers it, else ``<failed/>`` (stream management is off)."""
        hooks = self._hooks["on_resume"]
        if hooks:
            hooks[0](conn, element)
            return
        conn.send_nonza(sm_failed("unexpected-request"))

    def _to_self(self, session: C2SConnection, stanza: Element, kind: str, stype: str) -> None:
        if kind == "iq":
            self._spawn_iq(session, stanza, stype, session.jid.bare)
        elif kind == "presence":
            self.presence_broadcast(session, stanza, stype)
        else:
            self._to_account(session, stanza, kind, stype, session.jid.bare)

    def _to_account(
        self,
        session: C2SConnection | None,
        stanza: Element,
        kind: str,
        stype: str,
        to: BareJID | FullJID,
        done: asyncio.Future[BaseException | None] | None = None,
    ) -> None:
        """Route ``stanza`` to a local account; ``done`` (if given) is told the outcome
        of its handling: ``None``, or the exception it failed with."""
        bare = to.bare if isinstance(to, FullJID) else to
        pending = self._account_queues.get(bare)
        if pending is not None:
            # Earlier stanzas for this account are still waiting on storage: keep order.
            self._enqueue_for_account(pending, session, stanza, kind, stype, to, done)
            return
        target = self.sessions.get(to) if isinstance(to, FullJID) else None
        available = self.sessions.available(bare)
        # (an account deleted whose sessions are ending goes to the queue: it finds none)
        if bare not in self._deleted and (
            target is not None or available or (kind == "iq" and isinstance(to, FullJID))
        ):
            decision = route_to_account(
                kind=kind,
                stype=stype,
                full=isinstance(to, FullJID),
                target=target,
                available=available,
                exists=True,
            )
            work = self._carry_out(decision, session, stanza, kind, stype, bare)
            if work is None:
                if done is not None:
                    done.set_result(None)
                return
            # later stanzas for the account wait for it
            started = asyncio.ensure_future(work)
            if done is not None:
                started.add_done_callback(lambda t: done.set_result(_failure_of(t)))
            self._open_account_queue(bare, after=started)
            return
        queue = self._open_account_queue(bare)
        self._enqueue_for_account(queue, session, stanza, kind, stype, to, done)

    def _open_account_queue(
        self, bare: BareJID, after: Awaitable[object] | None = None
    ) -> deque[_Queued]:
        """A new queue for stanzas to ``bare``, drained (once ``after`` is done) by a
        task that starts on the next loop turn: what the caller adds now is in it."""
        queue: deque[_Queued] = deque()
        self._account_queues[bare] = queue
        self.spawn(self._drain_account_queue(bare, queue, after=after))
        return queue

    def _enqueue_for_account(
        self,
        queue: deque[_Queued],
        session: C2SConnection | None,
        stanza: Element,
        kind: str,
        stype: str,
        to: BareJID | FullJID,
        done: asyncio.Future[BaseException | None] | None,
    ) -> None:
        if session is not None:
            session.work_started()
        queue.append((session, stanza, kind, stype, to, done))

    async def _drain_account_queue(
        self, bare: BareJID, queue: deque[_Queued], after: Awaitable[object] | None = None
    ) -> None:
        """Handle the stanzas queued for an account, one at a time in arrival order,
        once ``after`` (work a module started for it) is done: for an account with
        nothing online (XEP-0160 delivers offline messages in order; the storage checks
        and writes must not overtake each other, whatever the driver's concurrency),
        behind a subscription still waiting on the roster (RFC 6120 §10.1), and behind
        the work of ``hold_account`` (offline messages being delivered)."""
        try:
            if after is not None:
                await asyncio.wait([asyncio.ensure_future(after)])
            while queue:
                item = queue.popleft()
                if isinstance(item, _Barrier):
                    try:
                        await item.work()
                    except Exception:
                        log.exception("work held for %s failed", bare)
                    continue
                session, stanza, kind, stype, to, done = item
                failure: BaseException | None = None
                try:
                    failure = await self._to_queued_account(session, stanza, kind, stype, to, bare)
                except StorageError as exc:
                    # not stored, not delivered: the sender must know (RFC 6120 §8.3.3.6)
                    log.error("stanza to %s not handled: %s", bare, exc)
                    self.bounce(
                        session, stanza, StanzaError("internal-server-error", "storage failed")
                    )
                    failure = exc
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    if session is not None:
                        session.work_done()
                    if done is not None:
                        done.set_result(failure)
        finally:
            if self._account_queues.get(bare) is queue:
                del self._account_queues[bare]
            # a drain that ended early (cancelled at shutdown) tells whoever waits
            for left in queue:
                if isinstance(left, _Barrier):
                    if left.abandon is not None:
                        left.abandon()
                    continue
                done = left[5]
                if done is not None and not done.done():
                    done.set_result(RuntimeError("the server stopped before handling it"))

    def hold_account(
        self,
        bare: BareJID,
        work: Callable[[], Awaitable[object]],
        abandon: Callable[[], object] | None = None,
    ) -> None:
        """Run ``work()`` for the account ``bare`` after the stanza for it being handled
        now, if any, and before every other stanza routed to it, which waits until the
        work is done.  The offline module reads stored messages this way when a session
        becomes available, so that it reads the one being stored, if any, and a message
        routed after cannot reach storage or the session before them (XEP-0160 §3,
        RFC 6120 §10.1); giving them to the client waits for nobody else
        (``Session.begin_stored``).  A failure of ``work``
        is logged; the stanzas behind it are handled all the same.  ``abandon`` is
        called instead of ``work`` if the server stops before its turn."""
        queue = self._account_queues.get(bare)
        if queue is None:
            queue = self._open_account_queue(bare)
        queue.appendleft(_Barrier(work, abandon))

    async def _to_queued_account(
        self,
        session: C2SConnection | None,
        stanza: Element,
        kind: str,
        stype: str,
        to: BareJID | FullJID,
        bare: BareJID,
    ) -> BaseException | None:
        """Handle one stanza queued for the account; returns how the work it started
        failed, if it did (that work logs its own failure)."""
        exists = await self.account_exists(bare)
        if exists:
            for screen in self._hooks["screen_inbound_async"]:
                verdict = await screen(stanza, kind, stype, stanza.get("from") or "", bare)
                if not self._passes(session, stanza, verdict):
                    return None
        # The account may have come online while we waited.
        target = self.sessions.get(to) if isinstance(to, FullJID) else None
        decision = route_to_account(
            kind=kind,
            stype=stype,
            full=isinstance(to, FullJID),
            target=target,
            available=self.sessions.available(bare),
            exists=exists,
        )
        stores = self._hooks["store_offline"]
        if isinstance(decision, StoreOffline) and stores:
            # Already in a task counted against the sender: store here, not in a new one.
            if self._inbound_ok(session, stanza, kind, stype, bare):
                self._message_delivery(session, stanza, stype, bare, ())
                await stores[0](session, stanza, bare)
            return None
        work = self._carry_out(decision, session, stanza, kind, stype, bare)
        if work is None:
            return None
        started = asyncio.ensure_future(work)
        await asyncio.wait([started])
        return _failure_of(started)

    def _carry_out(
        self,
        decision: object,
        session: C2SConnection | None,
        stanza: Element,
        kind: str,
        stype: str,
        bare: BareJID,
    ) -> Awaitable[object] | None:
        """Act on a routing decision; returns work a presence handler started for the
        account, which later stanzas to it must wait for."""
        if isinstance(
            decision, Deliver | StoreOffline | HandlePresence | HandleForAccount
        ) and not self._inbound_ok(session, stanza, kind, stype, bare):
            return None
        if isinstance(decision, Deliver):
            # a message's record covers its carbon copies too; a delivery may start
            # inside another (a session ending sends its messages on)
            outer = self._delivery
            self._delivery = Delivery() if kind == "message" else None
            try:
                if kind == "message":
                    self._message_delivery(session, stanza, stype, bare, decision.sessions)
                for target in decision.sessions:
                    target.deliver(stanza)
            finally:
                self._delivery = outer
        elif isinstance(decision, HandleForAccount):
            if session is not None:
                self._spawn_iq(session, stanza, stype, bare)
        elif isinstance(decision, HandlePresence):
            return self.presence_to_account(session, stanza, stype, bare)
        elif isinstance(decision, StoreOffline):
            stores = self._hooks["store_offline"]
            if not stores:
                self.bounce(session, stanza, StanzaError("service-unavailable"))
            else:
                self._message_delivery(session, stanza, stype, bare, ())
                # later stanzas for the account wait for it: in order (XEP-0160), and
                # an account's removal comes after it, not in the middle
                return self.spawn(stores[0](session, stanza, bare), session)
        elif isinstance(decision, Bounce):
            self.bounce(session, stanza, StanzaError(decision.condition))
        elif isinstance(decision, Drop):
            log.debug("dropped %s: %s", kind, decision.reason)
        return None

    def _inbound_ok(
        self,
        session: C2SConnection | None,
        stanza: Element,
        kind: str,
        stype: str,
        bare: BareJID,
    ) -> bool:
        """Ask ``screen_inbound`` hooks whether ``bare`` accepts ``stanza``."""
        return all(
            self._passes(
                session, stanza, screen(stanza, kind, stype, stanza.get("from") or "", bare)
            )
            for screen in self._hooks["screen_inbound"]
        )

    def _passes(
        self, session: C2SConnection | None, stanza: Element, verdict: bool | StanzaError
    ) -> bool:
        """Act on a screen's verdict: pass (``True``), drop, or bounce its error."""
        if verdict is True:
            return True
        if isinstance(verdict, StanzaError):
            self.bounce(session, stanza, verdict)
        return False

    def presence_broadcast(self, session: C2SConnection, stanza: Element, stype: str) -> None:
        """Presence without 'to' (RFC 6121 §4.2, §4.4), to the first module handling it."""
        hooks = self._hooks["on_presence_broadcast"]
        if hooks:
            hooks[0](session, stanza, stype)

    def presence_to_account(
        self, session: C2SConnection | None, stanza: Element, stype: str, bare: BareJID
    ) -> Awaitable[object] | None:
        """Presence to a local account (RFC 6121 §3, §4.6), to the first module handling
        it; returns the work it started for the account, if any (see ``HOOKS``)."""
        hooks = self._hooks["on_presence_to_account"]
        if hooks:
            result: Awaitable[object] | None = hooks[0](session, stanza, stype, bare)
            return result
        return None

    def deliver_to_account(
        self, stanza: Element, bare: BareJID, *, full: FullJID | None = None
    ) -> None:
        """Route a stanza the server itself originates (e.g. a module forwarding on a
        user's behalf, a MUC component) to a local account, by the same rules."""
        kind = stanza.name
        stype = stanza.get("type") or ("normal" if kind == "message" else "available")
        self._to_account(None, stanza, kind, stype, full if full is not None else bare)

    async def remove_account(self, user: BareJID, why: str) -> bool:
        """Delete the account ``user`` and everything stored for it; returns whether it
        existed.  First its presence subscriptions are cancelled (XEP-0077 §3.2): each
        local contact gets ``unsubscribe`` and ``unsubscribed`` from it, as if the user
        had sent them (RFC 6121 §3.2, §3.3), so the contact's roster no longer shares
        presence with whoever registers the name next.  Then its sessions end with
        ``not-authorized`` and ``why``, once the current task has run on (an iq that
        asked for the removal is answered first, XEP-0077 §3.2).

        Each cancellation is handled (after whatever was queued for that contact before
        it, not what comes later) before the account is deleted; if one fails, this
        raises ``StorageError`` and the account is kept, so running it again completes
        the removal.  A contact who blocks ``user`` (XEP-0191) is unsubscribed too, as
        by any cancellation (the blocking module lets them through).

        From the start, ``user``'s sessions are frozen (those bound meanwhile too): what
        they send waits, so that nothing they ask for outlives the account or undoes the
        clean-up; it is handled after all if the removal fails.  The roster is read under
        the roster lock, behind any roster change asked for before; a subscription
        request still on its way to that lock is refused (the presence module).  Work
        they began before (an iq writing the roster or private XML, say) is waited for,
        at most ``REMOVAL_WORK_WAIT`` seconds, except the removal's own requests: two
        asked at once (two sessions, or a session and an admin) share one removal, and
        each is answered before the sessions end."""
        removal = self._removing.get(user)
        if removal is None:
            removal = _Removal()
            self._removing[user] = removal
            self._tell_sessions(user, "freeze")
            task = asyncio.get_running_loop().create_task(self._run_removal(user, removal))
            removal.task = task
            # drained at shutdown; its failure is told to whoever asked, not logged here
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        me = asyncio.current_task()
        if me is not None:
            removal.asking.add(me)
            removal.joined.set()
        try:
            existed = await asyncio.shield(removal.task)
        finally:
            if me is not None:
                removal.asking.discard(me)

        def end_sessions() -> None:
            if user not in self._removing:  # (removed again meanwhile: that one ends them)
                self._tell_sessions(user, "end", "not-authorized", why)

        if not removal.asking:  # the last to be answered
            asyncio.get_running_loop().call_soon(end_sessions)
        return existed

    async def _run_removal(self, user: BareJID, removal: _Removal) -> bool:
        try:
            await self._work_done_before(user, removal)
            return await self._remove_account(user)
        except BaseException:
            self._tell_sessions(user, "thaw")
            raise
        finally:
            del self._removing[user]

    def _tell_sessions(self, user: BareJID, method: str, *args: str) -> None:
        """Call ``method`` of each of ``user``'s sessions that has one (client
        connections do; other ``Session`` kinds may not)."""
        for session in self.sessions.resources(user):
            call = getattr(session, method, None)
            if call is not None:
                call(*args)

    async def _work_done_before(self, user: BareJID, removal: _Removal) -> None:
        """Wait (at most ``REMOVAL_WORK_WAIT`` s) for the tasks ``user``'s sessions
        started before they were frozen, except those asking for this removal."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REMOVAL_WORK_WAIT
        while True:
            busy = {
                task
                for session in self.sessions.resources(user)
                for task in getattr(session, "work_tasks", ())
                if not task.done()
            } - removal.asking
            left = deadline - loop.time()
            if not busy or left <= 0:
                if busy:
                    log.warning("removing %s: %d tasks still running", user, len(busy))
                return
            removal.joined.clear()
            joined = asyncio.ensure_future(removal.joined.wait())
            try:
                await asyncio.wait([*busy, joined], timeout=left, return_when=FIRST_COMPLETED)
            finally:
                joined.cancel()

    async def _remove_account(self, user: BareJID) -> bool:
        loop = asyncio.get_running_loop()
        handled: list[asyncio.Future[BaseException | None]] = []

        def cancel(stype: str, contact_text: str) -> None:
            try:
                contact = parse_jid(contact_text)
            except JIDError:
                return
            if contact.domain != self.domain or isinstance(contact, FullJID):
                return  # no s2s yet: a remote contact cannot be told
            attrs = {"type": stype, "from": str(user), "to": str(contact)}
            stanza = Element("presence", ns.CLIENT, attrs)
            done: asyncio.Future[BaseException | None] = loop.create_future()
            self._to_account(None, stanza, "presence", stype, contact, done)
            handled.append(done)

        # under the roster lock: a subscription the user asked for before is routed
        # first, and its cancellation after it
        async with self._roster_lock(user):
            roster = await self.storage.roster.get_roster(str(user))
            pending = await self.storage.roster.list_pending(str(user))
            for item in roster.items:
                if item.subscription in ("to", "both") or item.ask:
                    cancel("unsubscribe", item.contact)
                if item.subscription in ("from", "both"):
                    cancel("unsubscribed", item.contact)
            for request in pending:
                cancel("unsubscribed", request.contact)  # never answered: refused
        # each cancellation handled (behind what was queued for the contact before it),
        # and none failed, before the account goes
        failures = await asyncio.gather(*handled)
        for failure in failures:
            if failure is not None:
                raise StorageError(
                    f"a contact's roster could not be changed, {user} is kept: {failure}"
                ) from failure
        # the deletion takes its turn in the account's queue: a stanza for the account
        # being handled now (a message being stored, a subscription being applied)
        # is written first, and is deleted with it; those behind find no account
        deleted: asyncio.Future[bool] = loop.create_future()

        async def delete() -> None:
            try:
                existed = await self.storage.accounts.delete(str(user))
            except Exception as exc:
                deleted.set_exception(exc)
                return
            except BaseException:
                deleted.cancel()
                raise
            if self.sessions.resources(user):
                self._deleted.add(user)  # until its sessions, frozen, have ended
            for hook in self._hooks["on_account_removed"]:
                hook(user)
            deleted.set_result(existed)

        def abandon() -> None:
            if not deleted.done():
                deleted.set_exception(StorageError("the server stopped before the deletion"))

        self.hold_account(user, delete, abandon)
        return await deleted

    def _roster_lock(self, user: BareJID) -> contextlib.AbstractAsyncContextManager[None]:
        """The roster module's lock on ``user``'s roster (none without the module)."""
        from xmppx.modules.roster import RosterManager

        for module in self.modules:
            if isinstance(module, RosterManager):
                return module.locked(user)
        return contextlib.nullcontext()

    def is_being_removed(self, bare: BareJID) -> bool:
        """Whether ``remove_account`` is removing ``bare`` now (its sessions are frozen:
        work they asked for before may still be running)."""
        return bare in self._removing

    def account_deleted(self, bare: BareJID) -> bool:
        """Whether ``remove_account`` deleted ``bare`` from storage while sessions of it
        are still ending: nothing may be stored for it (its sessions' last activity,
        say) and nothing routed to it finds an account."""
        return bare in self._deleted

    async def account_exists(self, bare: BareJID) -> bool:
        """Whether ``bare`` is an account here: one with a session bound, else one in
        storage (not one deleted whose sessions are still ending)."""
        if bare in self._deleted:
            return False
        return bool(self.sessions.resources(bare)) or await self.storage.accounts.exists(str(bare))

    def serves_component(self, domain: str) -> bool:
        """Whether ``domain`` is a service hosted here (a ``component_domain``)."""
        return domain in self._components

    def route_to_component(self, session: Session, stanza: Element, to: BareJID | FullJID) -> None:
        """Hand ``stanza``, from ``session``'s account (``from`` already stamped), to the
        service hosted at ``to``'s domain, as if the session had sent it; nothing is sent
        when no service is hosted there.  For what the server says on a session's behalf
        once it is gone (XEP-0198's undelivered iq requests)."""
        component = self._components.get(to.domain)
        if component is not None:
            component.route_component(session, stanza, to)

    def service_items(self) -> list[tuple[str, str]]:
        """(JID, name) of the services hosted here, for disco#items (XEP-0030)."""
        items: list[tuple[str, str]] = []
        for module in self.modules:
            items.extend(getattr(module, "disco_items", ()))
        return items

    def _spawn_iq(
        self, session: C2SConnection, stanza: Element, stype: str, account: BareJID | None
    ) -> None:
        if stype in ("result", "error"):
            return  # answers to our pings and the like: nothing more to do
        self.spawn(self._run_iq(session, stanza, stype, account), session)

    async def _run_iq(
        self, session: C2SConnection, stanza: Element, stype: str, account: BareJID | None
    ) -> None:
        # the one payload (checked by the caller, RFC 6120 §8.2.3) names the request
        request = stanza[0]
        payload_ns, name = request.namespace, request.name
        make = IqGet if stype == "get" else IqSet
        # no 'to' is the sender's own account (RFC 6120 §10.3.3), as its bare JID is
        handler = self._iq.get(make(payload_ns, SERVER if account is None else ACCOUNT, name))
        if handler is None:
            self.bounce(session, stanza, StanzaError("service-unavailable"))
            return
        req = IqRequest(stanza=stanza, sender=session.jid, session=session, account=account)
        try:
            payload = await handler(req)
        except StanzaError as exc:
            # a password change or an admin form holds a password: not echoed (XEP-0077
            # §3.3, XEP-0078 §3 say so of their errors)
            echo = payload_ns not in (ns.IQ_REGISTER, ns.COMMANDS)
            self.bounce(session, stanza, exc, include_original=echo)
            return
        except StreamError:
            raise
        except Exception:
            log.exception("handler for %s failed", payload_ns)
            self.bounce(session, stanza, StanzaError("internal-server-error"))
            return
        result = Element("iq", ns.CLIENT, {"type": "result", "id": stanza.get("id") or ""})
        to = stanza.get("to")
        result.set("from", to if to is not None else str(session.jid.bare))
        result.set("to", str(session.jid))
        if payload is not None:
            result.append(payload)
        session.deliver(result)

    def bounce(
        self,
        session: Session | None,
        stanza: Element,
        error: StanzaError,
        *,
        include_original: bool = True,
    ) -> None:
        """Answer ``stanza`` with ``error`` (RFC 6120 §8.3), unless it is an error or an
        iq result: to ``session``, the stream it came from.  A stanza the server routes
        on its own (``session`` None), such as a message a session ended without
        acknowledging (XEP-0198) sent on to the account, is answered to its ``from`` if
        that is a local account, so that its sender learns it was not delivered; a
        service's (a room's) is only logged."""
        reply = stanza_error_reply(stanza, error, include_original=include_original)
        if reply is None:
            return
        if session is not None:
            session.deliver(reply)
            return
        try:
            sender = parse_jid(reply.get("to") or "")
        except JIDError:
            sender = None
        if sender is not None and sender.local and sender.domain == self.domain:
            full = sender if isinstance(sender, FullJID) else None
            self.deliver_to_account(reply, sender.bare, full=full)
        else:
            log.info(
                "%s from %s to %s not delivered: %s",
                stanza.name,
                stanza.get("from"),
                stanza.get("to"),
                error.condition,
            )


def _listen(hosts: list[str], port: int) -> list[socket.socket]:
    """Listening TCP sockets on ``port`` of each of ``hosts`` (IPv6 ones IPv6 only, so an
    IPv4 and an IPv6 address share the port); port 0 picks one port for all."""
    socks: list[socket.socket] = []
    try:
        for host in hosts:
            for family, kind, proto, _name, addr in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            ):
                sock = socket.socket(family, kind, proto)
                socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(128)
                sock.setblocking(False)
                port = port or sock.getsockname()[1]
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _first_cert_der(path: Path) -> bytes:
    """DER bytes of the first certificate in a PEM file (ours, for RFC 5929)."""
    pem = path.read_text()
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    # text may come before it (openssl's "Bag Attributes", a key in the same file)
    start = pem.index(begin)
    return ssl.PEM_cert_to_DER_cert(pem[start : pem.index(end, start) + len(end)] + "\n")


def _to_auth_credentials(stored: Any) -> Any:
    from xmppx.auth import ScramCredentials

    return ScramCredentials(
        hash_name=stored.hash_name,
        salt=stored.salt,
        iterations=stored.iterations,
        stored_key=stored.stored_key,
        server_key=stored.server_key,
    )


def _warn_if_shared(data_dir: Path) -> None:
    """Log a warning when other users may enter ``data_dir`` (one made before, or by
    hand, with a looser mode than the 0700 the server creates it with): it holds the
    SQLite database (SCRAM keys, rosters, messages), the TLS key and the server secret.
    The mode is the operator's to change; the server does not change it."""
    mode = data_dir.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning(
            "data dir %s has mode %04o: other users may read what it holds (SCRAM keys, "
            "messages, the TLS key); chmod 700 it",
            data_dir,
            mode,
        )


def _server_secret(data_dir: Path) -> bytes:
    """A persistent random secret (fake SCRAM salts for unknown users must not change)."""
    path = data_dir / "server-secret"
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data
