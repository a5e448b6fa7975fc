"""The client side of a client-to-server XMPP stream, without I/O (RFC 6120 §4–§7).

Driven the hyper-h2 way, like ``xmppx.stream.ServerStream``: ``start()`` queues our
stream header, ``receive_data(bytes)`` (``b""`` is EOF) returns the events the owner must
act on, ``data_to_send()`` returns the bytes to write.  The stream negotiates by itself:
STARTTLS, SASL (the strongest offered mechanism the caller allows, through the client
mechanisms of ``xmppx.auth``), the restarts, resource binding and the RFC 3921 session
when the server does not mark it ``<optional/>``.  The owner only runs the TLS handshake
(``TLSProceed`` → ``tls_established``) and handles stanzas once ``Bound``.

Phases and their rules (h11 ``_state.py`` style):

============  =========================================  ======================================
phase         accepted from the server                   leaves to
============  =========================================  ======================================
IDLE          nothing (``start()`` sends our header)     HEADER
HEADER        the response stream header (§4.7: the      FEATURES
              streams namespace, ``jabber:client``,
              ``version`` 1.x)
FEATURES      ``<stream:features/>``: then we send       STARTTLS (TLS wanted and not active),
              ``<starttls/>``, ``<auth/>`` or the bind   SASL (not authenticated), BIND
              iq, in that order of need                  (authenticated); CLOSING if what we
                                                         need is not offered
STARTTLS      ``<proceed/>`` (``TLSProceed``),           TLS (owner upgrades, calls
              ``<failure/>`` (``TLSFailed``)             ``tls_established``) → HEADER; CLOSING
TLS           nothing: the owner runs the handshake      HEADER
SASL          ``<challenge/>``, ``<success/>``,           SASL; HEADER (``Authenticated``, the
              ``<failure/>`` (RFC 6120 §6.4)             stream restarted); CLOSING
BIND          ``<iq type=result|error>`` with our id     SESSION (session required) or READY
                                                         (``Bound``); CLOSING (``BindFailed``)
SESSION       ``<iq type=result|error>`` with our id     READY (``Bound``); CLOSING
READY         ``<message/>`` ``<presence/>`` ``<iq/>``   CLOSING (``close()``)
              (``StanzaReceived``); other namespaces
              (``NonzaReceived``)
CLOSING       as READY; we sent ``</stream:stream>``     CLOSED
CLOSED        nothing                                    —
============  =========================================  ======================================

In every phase: ``<stream:error/>`` is ``StreamErrorReceived`` (we answer with our closing
tag, RFC 6120 §4.9.1.2), ``</stream:stream>`` is ``Closed`` (answered likewise, §4.4), EOF
is ``ConnectionLost``.  Bad XML from the server, a bad header or an element the phase does
not accept end the stream with ``StreamFailed`` and our stream error: the core parser's
condition for XML, ``invalid-namespace``/``unsupported-version`` for the header,
``unsupported-stanza-type`` for an unknown ``jabber:client`` element and
``policy-violation`` for a negotiation element out of turn (§4.9.3).

Example conversation (RFC 6120 §9.1, shortened)::

    C: <stream:stream to='im.example.com' version='1.0' xml:lang='en' ...>
    S: <stream:stream from='im.example.com' id='t7AMCin9zjMNwQKDnplntZPIDEI=' ...>
    S: <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>
    C: <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>
    S: <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>
       ... TLS handshake, stream restart, SASL, restart ...
    C: <iq id='bind-1' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>
    S: <iq id='bind-1' type='result'><bind ...><jid>juliet@im.example.com/4db0</jid></bind></iq>
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from xmppx import ns
from xmppx.auth import (
    ClientMechanism,
    SASLClientError,
    SASLFailure,
    SASLStateError,
    create_client_mechanism,
    decode_payload,
    encode_payload,
)
from xmppx.client._events import (
    Authenticated,
    AuthFailed,
    BindFailed,
    Bound,
    Closed,
    ConnectionLost,
    Event,
    FeaturesReceived,
    NonzaReceived,
    StanzaReceived,
    StreamErrorReceived,
    StreamFailed,
    StreamOpened,
    TLSFailed,
    TLSProceed,
)
from xmppx.core import (
    Element,
    StreamEnd,
    StreamHeader,
    StreamParser,
    XMLStreamError,
    serialize,
    stream_header,
)
from xmppx.errors import StreamError
from xmppx.stream._escape import escape_attr, escape_text

__all__ = [
    "BIND_IQ_ID",
    "DEFAULT_CLIENT_MAX_STANZA_BYTES",
    "SESSION_IQ_ID",
    "ClientPhase",
    "ClientStream",
    "ClientStreamConfig",
    "MechanismFactory",
]

#: The server limits what *clients* send (256 KiB by default, ``xmppx.stream``), but what
#: it sends us can be larger: a roster result or a MAM page is built by the server, and a
#: routed stanza grows by its stamped ``from``.  A client trusts its server more than the
#: server trusts clients; 1 MiB still bounds what a broken server makes us buffer.
DEFAULT_CLIENT_MAX_STANZA_BYTES: Final = 1024 * 1024
#: Our ``id`` of the bind and session iqs (RFC 6120 §7.6.1, RFC 3921 §3): there is one of
#: each per stream, so fixed values are unique and keep the negotiation reproducible.
BIND_IQ_ID: Final = "bind-1"
SESSION_IQ_ID: Final = "session-1"

_STANZA_NAMES: Final = frozenset({"message", "presence", "iq"})
_BIND_TAG: Final = f"{{{ns.BIND}}}bind"
_JID_TAG: Final = f"{{{ns.BIND}}}jid"
_SESSION_IQ: Final = (
    f"<iq type='set' id='{SESSION_IQ_ID}'><session xmlns='{ns.SESSION}'/></iq>".encode()
)

#: Makes the SASL client mechanism from the offered names the caller allows, in the
#: server's order.  The default runs ``xmppx.auth.create_client_mechanism``; tests inject
#: one with a fixed nonce.
MechanismFactory = Callable[[tuple[str, ...]], ClientMechanism]


class ClientPhase(enum.Enum):
    """Where the stream is in negotiation (see the module table)."""

    IDLE = "idle"
    HEADER = "header"
    FEATURES = "features"
    STARTTLS = "starttls"
    TLS = "tls"
    SASL = "sasl"
    BIND = "bind"
    SESSION = "session"
    READY = "ready"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientStreamConfig:
    """Who we are and what we accept.

    ``domain``: the server's domain (the header's ``to``, RFC 6120 §4.7.2).  ``username``,
    ``password``: the SASL credentials (the JID localpart and its password).
    ``resource``: the resource to request, ``None`` to let the server choose (§7.6).
    ``authzid``: the SASL authorization identity, normally ``None`` (§6.3.8).
    ``starttls``: when TLS is not already active, require STARTTLS (§5); if false, never
    negotiate it (a server that requires it is then refused).  ``mechanisms``: the SASL
    mechanism names allowed, ``None`` for all that ``xmppx.auth`` implements, with
    ``PLAIN`` then only over TLS (naming ``PLAIN`` here allows it without TLS, e.g. in
    tests).  ``mechanism_factory``: see ``MechanismFactory``.  ``lang``: our
    ``xml:lang``.  ``max_*``: parser limits for what the server sends.
    """

    domain: str
    username: str
    password: str = field(repr=False)
    resource: str | None = None
    authzid: str | None = None
    starttls: bool = True
    mechanisms: tuple[str, ...] | None = None
    mechanism_factory: MechanismFactory | None = None
    lang: str = "en"
    max_stanza_bytes: int = DEFAULT_CLIENT_MAX_STANZA_BYTES
    max_depth: int = 32
    max_attributes: int = 64


class _Restart(Exception):
    """Internal: the stream restarted; the rest of the parsed batch is stale."""


class ClientStream:
    """One c2s stream, client side.  See the module docstring for the phase table.

    ``tls_active``: the transport is already TLS (direct TLS, XEP-0368).
    ``channel_bindings``: the channel-binding data of that TLS connection by type
    (``{"tls-server-end-point": ...}``, RFC 5929 §4), for the SCRAM ``-PLUS`` mechanisms.
    """

    __slots__ = (
        "_authenticated",
        "_bindings",
        "_mech",
        "_out",
        "_parser",
        "_restarts",
        "_sent_footer",
        "_session_required",
        "_tls",
        "config",
        "jid",
        "mechanism",
        "phase",
        "stream_id",
    )

    def __init__(
        self,
        config: ClientStreamConfig,
        *,
        tls_active: bool = False,
        channel_bindings: Mapping[str, bytes] | None = None,
    ) -> None:
        self.config = config
        self.phase = ClientPhase.IDLE
        self.stream_id = ""
        self.jid: str | None = None  # the bound full JID, once READY
        self.mechanism: str | None = None  # the SASL mechanism that succeeded
        self._tls = tls_active
        self._bindings: Mapping[str, bytes] = dict(channel_bindings or {})
        self._authenticated = False
        self._restarts = 0
        self._session_required = False
        self._mech: ClientMechanism | None = None
        self._out: list[bytes] = []
        self._sent_footer = False
        self._parser = self._new_parser()

    # -- properties -----------------------------------------------------------------

    @property
    def tls_active(self) -> bool:
        return self._tls

    @property
    def authenticated(self) -> bool:
        return self._authenticated

    # -- commands -------------------------------------------------------------------

    def start(self) -> None:
        """Queue our initial stream header (RFC 6120 §4.7)."""
        if self.phase is not ClientPhase.IDLE:
            raise RuntimeError(f"stream already started (phase {self.phase.value})")
        self._send_header()

    def tls_established(self, channel_bindings: Mapping[str, bytes] | None = None) -> None:
        """The TLS handshake after ``TLSProceed`` succeeded: restart the stream (RFC 6120
        §5.4.3.3).  ``channel_bindings`` as for the constructor."""
        if self.phase is not ClientPhase.TLS:
            raise RuntimeError(f"stream is in phase {self.phase.value}, not tls")
        self._tls = True
        self._bindings = dict(channel_bindings or {})
        self._restart()

    def send_element(self, el: Element) -> None:
        """Queue a stanza (``jabber:client``) or nonza once ``Bound``.  Ignored after our
        closing tag (RFC 6120 §4.4: nothing may follow it)."""
        if self._sent_footer:
            return
        if self.phase is not ClientPhase.READY:
            raise RuntimeError(f"cannot send stanzas in phase {self.phase.value}")
        self._out.append(serialize(el, ns.CLIENT))

    send_stanza = send_element

    def send_raw(self, data: bytes) -> None:
        """Queue bytes already serialized for ``jabber:client``, once ``Bound``."""
        if self._sent_footer:
            return
        if self.phase is not ClientPhase.READY:
            raise RuntimeError(f"cannot send stanzas in phase {self.phase.value}")
        self._out.append(data)

    def close(self, condition: str | None = None, text: str = "") -> None:
        """Start the closing handshake (RFC 6120 §4.4): an optional stream error
        (§4.9.3 ``condition``), then ``</stream:stream>``.  Then wait for ``Closed``."""
        if self._sent_footer or self.phase is ClientPhase.CLOSED:
            return
        if condition is not None and self.phase is not ClientPhase.IDLE:
            self._write_stream_error(condition, text)
        if self.phase is ClientPhase.IDLE:  # nothing sent: nothing to close
            self.phase = ClientPhase.CLOSED
            self._sent_footer = True
            return
        self._write_footer()

    def data_to_send(self) -> bytes:
        """Everything queued for the server since the last call."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    # -- input ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the server (``b""`` for EOF); return the events to act on."""
        phase = self.phase
        if phase is ClientPhase.CLOSED:
            return []
        if not data:
            self.phase = ClientPhase.CLOSED
            return [ConnectionLost()]
        try:
            parsed = self._parser.feed(data)
        except XMLStreamError as exc:
            return self._parse_failed(exc)
        if phase is ClientPhase.READY:
            # The hot path: stanzas between two bound sessions.
            events: list[Event] = []
            append = events.append
            for item in parsed:
                if (
                    type(item) is Element
                    and item.namespace == ns.CLIENT
                    and item.name in _STANZA_NAMES
                    and self.phase is ClientPhase.READY
                ):
                    append(StanzaReceived(stanza=item))
                else:
                    self._dispatch_one(item, events)
            return events
        events = []
        self._dispatch(parsed, events)
        return events

    def _parse_failed(self, exc: XMLStreamError) -> list[Event]:
        events: list[Event] = []
        self._dispatch(exc.events, events)
        if self.phase is not ClientPhase.CLOSED:
            self._fail(exc.condition, exc.text, events)
        self.phase = ClientPhase.CLOSED  # the parser is dead: nothing more can be read
        return events

    def _dispatch(self, parsed: Sequence[object], events: list[Event]) -> None:
        try:
            for item in parsed:
                if self.phase is ClientPhase.CLOSED:
                    break
                self._dispatch_one(item, events)
        except _Restart:
            pass  # the server cannot send anything before our new header: ignore the rest

    def _dispatch_one(self, item: object, events: list[Event]) -> None:
        try:
            if isinstance(item, Element):
                self._on_element(item, events)
            elif isinstance(item, StreamHeader):
                self._on_header(item, events)
            elif isinstance(item, StreamEnd):
                self._write_footer()
                self.phase = ClientPhase.CLOSED
                events.append(Closed())
        except StreamError as exc:
            self._fail(exc.condition, exc.text, events)

    def _on_header(self, header: StreamHeader, events: list[Event]) -> None:
        if self.phase is not ClientPhase.HEADER:
            raise StreamError("bad-format", "a stream header we did not ask for")
        if header.name != "stream" or header.namespace != ns.STREAMS:
            raise StreamError(
                "invalid-namespace",
                "the stream element must be {http://etherx.jabber.org/streams}stream",
            )
        if header.default_ns != ns.CLIENT:
            raise StreamError("invalid-namespace", "the content namespace must be jabber:client")
        version = header.attrs.get("version", "")
        major = version.split(".", 1)[0]
        if not major.isdigit() or int(major) != 1:
            raise StreamError(
                "unsupported-version", f"stream version {version or '(none)'} is not 1.x"
            )
        self.stream_id = header.attrs.get("id", "")
        self.phase = ClientPhase.FEATURES
        events.append(
            StreamOpened(header=header, stream_id=self.stream_id, restart=self._restarts > 0)
        )

    def _on_element(self, el: Element, events: list[Event]) -> None:
        namespace = el.namespace
        if namespace == ns.STREAMS:
            if el.name == "error":
                self._on_stream_error(el, events)
                return
            if el.name == "features" and self.phase is ClientPhase.FEATURES:
                self._on_features(el, events)
                return
            if self.phase is ClientPhase.CLOSING:
                return
            raise StreamError(
                "policy-violation", f"unexpected <stream:{el.name}/> in phase {self.phase.value}"
            )
        phase = self.phase
        if phase is ClientPhase.READY:
            if namespace == ns.CLIENT:
                if el.name not in _STANZA_NAMES:
                    raise StreamError("unsupported-stanza-type", f"<{el.name}/> is not a stanza")
                events.append(StanzaReceived(stanza=el))
            else:
                events.append(NonzaReceived(element=el))
        elif phase is ClientPhase.CLOSING:
            # We sent our closing tag; the server may still send what it had queued
            # (RFC 6120 §4.4).  Stanzas are kept; leftovers of a failed negotiation (the
            # <failure/> answering our <abort/>, ...) are not worth a complaint.
            if namespace == ns.CLIENT and el.name in _STANZA_NAMES:
                events.append(StanzaReceived(stanza=el))
            elif self.jid is not None and namespace != ns.CLIENT:
                events.append(NonzaReceived(element=el))
        elif phase is ClientPhase.SASL and namespace == ns.SASL:
            self._on_sasl(el, events)
        elif phase is ClientPhase.STARTTLS and namespace == ns.TLS:
            self._on_tls(el, events)
        elif (phase is ClientPhase.BIND or phase is ClientPhase.SESSION) and (
            namespace == ns.CLIENT and el.name == "iq"
        ):
            self._on_bind_result(el, events)
        else:
            raise StreamError(
                "policy-violation",
                f"unexpected <{el.name} xmlns='{namespace}'/> in phase {phase.value}",
            )

    # -- negotiation ----------------------------------------------------------------

    def _on_features(self, el: Element, events: list[Event]) -> None:
        starttls = el.find(f"{{{ns.TLS}}}starttls")
        tls_required = starttls is not None and starttls.find(f"{{{ns.TLS}}}required") is not None
        mechs_el = el.find(f"{{{ns.SASL}}}mechanisms")
        mechanisms = tuple(
            (m.text or "").strip()
            for m in (mechs_el.findall(f"{{{ns.SASL}}}mechanism") if mechs_el is not None else ())
        )
        cb_el = el.find(f"{{{ns.SASL_CB}}}sasl-channel-binding")
        cb_types = (
            tuple(c.get("type") or "" for c in cb_el.findall(f"{{{ns.SASL_CB}}}channel-binding"))
            if cb_el is not None
            else None
        )
        bind = el.find(_BIND_TAG) is not None
        session = el.find(f"{{{ns.SESSION}}}session")
        session_required = session is not None and session.find(f"{{{ns.SESSION}}}optional") is None
        events.append(
            FeaturesReceived(
                element=el,
                starttls=starttls is not None,
                tls_required=tls_required,
                mechanisms=mechanisms,
                channel_binding_types=cb_types,
                bind=bind,
                session_required=session_required,
            )
        )
        cfg = self.config
        if not self._authenticated:
            if not self._tls and (cfg.starttls or tls_required):
                if starttls is None:
                    raise StreamError(
                        "policy-violation",
                        "STARTTLS is required by this "
                        "client but the server does not offer it (RFC 6120 §5)",
                    )
                if not cfg.starttls:
                    raise StreamError(
                        "policy-violation",
                        "the server requires STARTTLS, which this client was told not to use",
                    )
                self._write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                self.phase = ClientPhase.STARTTLS
                return
            self._start_sasl(mechanisms, cb_types, events)
            return
        if not bind:
            self._end(
                BindFailed(
                    condition="feature-not-implemented",
                    text="the server offers no resource binding",
                ),
                events,
            )
            return
        self._session_required = session_required
        resource = cfg.resource
        body = f"<resource>{escape_text(resource)}</resource>" if resource else ""
        self._write(
            f"<iq type='set' id='{BIND_IQ_ID}'><bind xmlns='{ns.BIND}'>{body}</bind></iq>".encode()
        )
        self.phase = ClientPhase.BIND

    def _on_tls(self, el: Element, events: list[Event]) -> None:
        if el.name == "proceed":
            self.phase = ClientPhase.TLS
            events.append(TLSProceed())
        elif el.name == "failure":
            self._end(TLSFailed(), events)
        else:
            raise StreamError("policy-violation", f"unexpected <{el.name}/> after <starttls/>")

    def _start_sasl(
        self, offered: tuple[str, ...], cb_types: tuple[str, ...] | None, events: list[Event]
    ) -> None:
        cfg = self.config
        allowed = cfg.mechanisms
        usable = offered if allowed is None else tuple(m for m in offered if m in allowed)
        try:
            if cfg.mechanism_factory is not None:
                mech = cfg.mechanism_factory(usable)
            else:
                mech = create_client_mechanism(
                    usable,
                    username=cfg.username,
                    password=cfg.password,
                    authzid=cfg.authzid,
                    channel_bindings=self._bindings if self._tls else None,
                    server_cb_types=cb_types,
                    allow_plain=self._tls or (allowed is not None and "PLAIN" in allowed),
                )
            initial = mech.start()
        except (SASLClientError, ValueError) as exc:
            self._end(AuthFailed(condition="invalid-mechanism", text=str(exc), local=True), events)
            return
        self._mech = mech
        self._write(
            f"<auth xmlns='{ns.SASL}' mechanism='{escape_attr(mech.name)}'>"
            f"{encode_payload(initial)}</auth>".encode()
        )
        self.phase = ClientPhase.SASL

    def _on_sasl(self, el: Element, events: list[Event]) -> None:
        mech = self._mech
        assert mech is not None
        name = el.name
        if name == "failure":
            condition, text = "not-authorized", ""
            for child in el:
                if child.namespace != ns.SASL:
                    continue
                if child.name == "text":
                    text = child.text
                else:
                    condition = child.name
            self._mech = None
            self._end(AuthFailed(condition=condition, text=text), events)
            return
        if name not in ("challenge", "success"):
            raise StreamError("policy-violation", f"unexpected <{name}/> during SASL")
        try:
            data = decode_payload(el.text.strip())
            if name == "challenge":
                response = mech.respond(data or b"")
                self._write(
                    f"<response xmlns='{ns.SASL}'>{encode_payload(response)}</response>".encode()
                )
                return
            mech.finish(data)
        except (SASLClientError, SASLStateError, SASLFailure) as exc:
            # SASLFailure: decode_payload's "incorrect-encoding" for bad base64.
            self._mech = None
            if name == "challenge":
                self._write(f"<abort xmlns='{ns.SASL}'/>".encode())
            self._end(AuthFailed(condition="aborted", text=str(exc), local=True), events)
            return
        self._mech = None
        self._authenticated = True
        self.mechanism = mech.name
        events.append(Authenticated(mechanism=mech.name))
        self._restart()
        raise _Restart

    def _on_bind_result(self, el: Element, events: list[Event]) -> None:
        binding = self.phase is ClientPhase.BIND
        expected = BIND_IQ_ID if binding else SESSION_IQ_ID
        kind = el.get("type")
        if el.get("id") != expected or kind not in ("result", "error"):
            raise StreamError("policy-violation", "a stanza before resource binding")
        if kind == "error":
            condition, text = _stanza_error(el)
            self._end(BindFailed(condition=condition, text=text), events)
            return
        if binding:
            bind = el.find(_BIND_TAG)
            jid = (bind.findtext(_JID_TAG) or "").strip() if bind is not None else ""
            if not jid or "/" not in jid:
                raise StreamError("invalid-xml", "the bind result has no full <jid/>")
            self.jid = jid
            if self._session_required:
                self._write(_SESSION_IQ)
                self.phase = ClientPhase.SESSION
                return
        self.phase = ClientPhase.READY
        assert self.jid is not None
        events.append(Bound(jid=self.jid))

    def _on_stream_error(self, el: Element, events: list[Event]) -> None:
        condition, text, other = "undefined-condition", "", ""
        for child in el:
            if child.namespace != ns.STREAM_ERRORS:
                continue
            if child.name == "text":
                text = child.text
            else:
                condition = child.name
                other = child.text.strip()
        self._end(StreamErrorReceived(condition=condition, text=text or other), events)

    # -- internals --------------------------------------------------------------------

    def _new_parser(self) -> StreamParser:
        cfg = self.config
        return StreamParser(
            max_stanza_bytes=cfg.max_stanza_bytes,
            max_depth=cfg.max_depth,
            max_attributes=cfg.max_attributes,
        )

    def _send_header(self) -> None:
        cfg = self.config
        # RFC 6120 §4.7.1: over TLS a client SHOULD say who it is, as its bare JID.
        sender = f"{cfg.username}@{cfg.domain}" if self._tls and cfg.username else None
        self._write(stream_header(to=cfg.domain, from_=sender, lang=cfg.lang))
        self.phase = ClientPhase.HEADER

    def _restart(self) -> None:
        """A new stream on the same transport (RFC 6120 §4.3.3): new parser, new header."""
        self._restarts += 1
        self._parser = self._new_parser()
        self._send_header()

    def _end(self, event: Event, events: list[Event]) -> None:
        """Negotiation cannot go on: report ``event`` and close our side."""
        events.append(event)
        self._write_footer()

    def _fail(self, condition: str, text: str, events: list[Event]) -> None:
        if not self._sent_footer:
            self._write_stream_error(condition, text)
            self._write_footer()
        events.append(StreamFailed(condition=condition, text=text))

    def _write_footer(self) -> None:
        if not self._sent_footer:
            self._sent_footer = True
            self._out.append(b"</stream:stream>")
        if self.phase is not ClientPhase.CLOSED:
            self.phase = ClientPhase.CLOSING

    def _write(self, data: bytes) -> None:
        self._out.append(data)

    def _write_stream_error(self, condition: str, text: str) -> None:
        body = f"<{condition} xmlns='{ns.STREAM_ERRORS}'/>"
        if text:
            body += f"<text xmlns='{ns.STREAM_ERRORS}' xml:lang='en'>{escape_text(text)}</text>"
        self._out.append(f"<stream:error>{body}</stream:error>".encode())


def _stanza_error(el: Element) -> tuple[str, str]:
    """The defined condition and text of a stanza's ``<error/>`` (RFC 6120 §8.3.2)."""
    condition, text = "undefined-condition", ""
    err = el.find(f"{{{ns.CLIENT}}}error")
    if err is not None:
        for child in err:
            if child.namespace != ns.STANZAS:
                continue
            if child.name == "text":
                text = child.text
            else:
                condition = child.name
    return condition, text
