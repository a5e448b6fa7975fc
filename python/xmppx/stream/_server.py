"""The server side of a client-to-server XMPP stream, without I/O (RFC 6120 §4–§7).

Driven the hyper-h2 way: ``receive_data(bytes)`` (``b""`` is EOF) returns the events the
owner must act on, the owner answers through methods (``auth_challenge``,
``bind_success``, ``send_stanza``, ...), and ``data_to_send()`` returns the bytes to write.
The stream answers on its own whatever RFC 6120 fixes: our header and features, TLS
``<proceed/>``, SASL framing, stream errors and the closing tag.  After an event whose
answer decides how what follows is read (``AuthRequested``, ``AuthResponse``,
``BindRequested``, ``ResumeRequested``), the stream keeps the rest of the input until
the owner has answered and calls ``take_deferred()``, which returns its events: a
client may pipeline its first stanzas behind the bind request, and SASL goes one step
at a time.  Before authentication that rest is kept as bytes, not yet parsed: after
``<success/>`` it belongs to the restarted stream (RFC 6120 §6.4.6), whose new parser
reads it, header and all, however the bytes were split in TCP segments.

Phases and their rules (h11 ``_state.py`` style).  ``tls`` and ``authenticated`` are flags
that select the features offered; each phase says which top-level elements are legal:

=============  ===========================================  ==============================
phase          accepted from the peer                       leaves to
=============  ===========================================  ==============================
HEADER         the stream header (validated: §4.7, §4.8)    FEATURES (header + features
                                                            sent)
FEATURES       not authenticated: ``<starttls/>`` (if TLS   HEADER after TLS (owner calls
               offered and not active), ``<auth/>``         ``tls_established``); SASL;
               (if TLS active or not required), ``<iq/>``   CLOSED
               of an allowed pre-auth namespace
               authenticated: ``<iq type=set><bind/>``       READY after ``bind_success``
SASL           ``<response/>``, ``<abort/>``                HEADER after ``auth_success``;
                                                            FEATURES after a failure
READY          ``<message/>``, ``<presence/>``, ``<iq/>``;   CLOSED
               other namespaces as nonzas
CLOSED         nothing: data after our or their closing     —
               tag is ignored
=============  ===========================================  ==============================

Anything else ends the stream with the RFC 6120 §4.9.3 condition that names it:
``not-authorized`` for stanzas before authentication/binding (§6.4.1, §7.1),
``policy-violation`` for too many failed SASL attempts (§6.4.5 leaves the number to us:
``max_auth_attempts``), ``unsupported-stanza-type`` for unknown elements in
``jabber:client``, ``invalid-namespace``/``host-unknown``/``unsupported-version`` for bad
headers, and the core parser's condition for bad XML.  The header is always answered with
ours before any stream error (§4.9.1.2); ours has no ``version`` when the peer's had none,
else the lower of the peer's and ours (§4.7.5).  A language the peer's header declares
other than ours is kept as ``peer_lang``, for the owner to put on the peer's stanzas that
have no ``xml:lang`` (§4.7.4).
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from xmppx import ns
from xmppx.auth import SASLFailure, decode_payload, encode_payload
from xmppx.core import (
    Element,
    StreamEnd,
    StreamHeader,
    StreamParser,
    XMLStreamError,
    serialize,
)
from xmppx.errors import StreamError
from xmppx.stream._escape import escape_attr, escape_text
from xmppx.stream._events import (
    AuthAborted,
    AuthRequested,
    AuthResponse,
    BindRequested,
    ConnectionLost,
    Event,
    NonzaReceived,
    PeerClosed,
    PeerStreamError,
    PreAuthIq,
    ResumeRequested,
    StanzaReceived,
    StreamFailed,
    StreamOpened,
    TLSRequested,
)

__all__ = [
    "DEFAULT_MAX_AUTH_ATTEMPTS",
    "DEFAULT_PREAUTH_STANZA_BYTES",
    "DEFAULT_STANZA_BYTES",
    "Phase",
    "ServerStream",
    "ServerStreamConfig",
]

#: RFC 6120 §6.4.5: "a configurable but reasonable number of retries (at least 2 and no
#: more than 5)"; we allow 3 failures, then end the stream.
DEFAULT_MAX_AUTH_ATTEMPTS: Final = 3
#: Before authentication a client needs only small negotiation elements; 10 KB is what
#: ejabberd and Prosody allow unauthenticated peers and is announced by XEP-0478.
DEFAULT_PREAUTH_STANZA_BYTES: Final = 10_000
#: After authentication, the core's default (256 KiB, see xmppx.core._api).
DEFAULT_STANZA_BYTES: Final = 256 * 1024

_STANZA_NAMES: Final = frozenset({"message", "presence", "iq"})
#: A language tag's shape (BCP 47 subtags: letters and digits, 1-8 each, hyphenated).
_LANGUAGE_TAG: Final = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


class Phase(enum.Enum):
    """Where the stream is in negotiation (see the module table)."""

    HEADER = "header"
    FEATURES = "features"
    SASL = "sasl"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerStreamConfig:
    """What a listener tells each of its streams.

    ``domains``: the hosts served (``to`` must name one, else ``host-unknown``).
    ``tls_available``: STARTTLS can be offered.  ``tls_required``: authentication is refused
    until TLS is active (RFC 6120 §5.3.1; on by default).  ``mechanisms``: a function from
    ``tls active`` to the SASL mechanism names to offer, strongest first.  ``pre_auth_iq_
    namespaces``: ``<iq/>`` payload namespaces allowed before authentication (XEP-0077,
    XEP-0078).  ``extra_features_*``: further feature children (XEP-0077 ``<register/>``,
    roster versioning, ...).  ``idle_seconds``: announced in XEP-0478 limits.
    """

    domains: frozenset[str]
    tls_available: bool = True
    tls_required: bool = True
    mechanisms: Callable[[bool], Sequence[str]] = lambda tls: ("SCRAM-SHA-256", "SCRAM-SHA-1")
    channel_binding_types: Callable[[bool], Sequence[str]] = lambda tls: ()
    pre_auth_iq_namespaces: frozenset[str] = frozenset()
    extra_features_preauth: Sequence[Element] = ()
    extra_features_postauth: Sequence[Element] = ()
    max_auth_attempts: int = DEFAULT_MAX_AUTH_ATTEMPTS
    preauth_stanza_bytes: int = DEFAULT_PREAUTH_STANZA_BYTES
    stanza_bytes: int = DEFAULT_STANZA_BYTES
    max_depth: int = 32
    max_attributes: int = 64
    idle_seconds: int = 300
    lang: str = "en"


@dataclass(slots=True)
class _Flags:
    tls: bool = False
    authenticated: bool = False
    restarts: int = 0
    failed_auth: int = 0
    sasl_failed: bool = False
    domain: str = ""
    mechanism: str = ""
    offered: tuple[str, ...] = field(default_factory=tuple)


class ServerStream:
    """One c2s stream, server side.  See the module docstring for the phase table."""

    def __init__(self, config: ServerStreamConfig, *, tls_active: bool = False) -> None:
        self.config = config
        self.phase = Phase.HEADER
        self.stream_id = ""
        self.jid: str | None = None  # the bound full JID, once READY
        self.authzid_user: str | None = None  # the authenticated bare JID
        #: The language the client's stream header declared when it is not the one ours
        #: declares (``""`` otherwise): its stanzas without ``xml:lang`` are in it, and
        #: say so when they leave this stream (RFC 6120 §4.7.4).
        self.peer_lang = ""
        self._flags = _Flags(tls=tls_active)
        self._out: list[bytes] = []
        self._parser = self._new_parser()
        self._sent_header = False
        self._sent_footer = False
        #: XEP-0198: what the peer sent after ``<resume/>``, read once it is answered
        self._deferred: tuple[list[object], XMLStreamError | None] | None = None
        #: Before authentication: the bytes after the element awaiting an answer.
        self._deferred_bytes = b""

    # -- properties -----------------------------------------------------------------

    @property
    def tls_active(self) -> bool:
        return self._flags.tls

    @property
    def authenticated(self) -> bool:
        return self._flags.authenticated

    @property
    def domain(self) -> str:
        """The served domain the client named in ``to``."""
        return self._flags.domain

    @property
    def failed_auth_attempts(self) -> int:
        return self._flags.failed_auth

    @property
    def sasl_failed(self) -> bool:
        """Whether a SASL attempt on this stream failed (XEP-0078 §7 then refuses
        ``jabber:iq:auth``)."""
        return self._flags.sasl_failed

    def legacy_auth_failed(self) -> bool:
        """Count a failed XEP-0078 login with the SASL ones; true when the stream has
        reached ``max_auth_attempts`` (RFC 6120 §6.4.5) and must end."""
        self._flags.failed_auth += 1
        return self._flags.failed_auth >= self.config.max_auth_attempts

    def in_phase(self, phase: Phase) -> bool:
        """Whether the stream is in ``phase`` (a method, so callers re-read it after
        calls that move the stream on)."""
        return self.phase is phase

    # -- input ------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer (``b""`` for EOF); return the events to act on."""
        if self.phase is Phase.CLOSED:
            return [ConnectionLost()] if not data else []
        if not data:
            self.phase = Phase.CLOSED
            return [ConnectionLost()]
        events: list[Event] = []
        if not self._flags.authenticated:
            self._receive_before_auth(data, events)
            return events
        parsed, error = self._parse(data)
        if self._deferred is not None:  # the owner has not answered <resume/> yet
            items, _ = self._deferred
            self._deferred = (items + parsed, error)
            return events
        self._read(parsed, error, events)
        return events

    def _parse(self, data: bytes) -> tuple[list[object], XMLStreamError | None]:
        """What the parser makes of ``data``: the items, and the error that stopped it
        (with the items before it), if any."""
        try:
            return list(self._parser.feed(data)), None
        except XMLStreamError as exc:
            return list(exc.events), exc

    def _receive_before_auth(self, data: bytes, events: list[Event]) -> None:
        """Parse ``data`` one tag at a time (each piece ends with a ``>``; negotiation
        is a few hundred bytes), so that the bytes after an element awaiting the owner's
        answer are kept unparsed (module docstring)."""
        if self._deferred is not None:
            self._hold(data, events)
            return
        pos = 0
        while pos < len(data) and not self.in_phase(Phase.CLOSED):
            end = data.find(b">", pos)
            stop = len(data) if end < 0 else end + 1
            parsed, error = self._parse(data[pos:stop])
            pos = stop
            self._read(parsed, error, events)
            if self._deferred is not None:
                self._hold(data[pos:], events)
                return

    def _hold(self, data: bytes, events: list[Event]) -> None:
        """Keep ``data`` unparsed until the owner answers; more than
        ``preauth_stanza_bytes`` held (a restarted stream's header and first requests are
        a few hundred, while a login may wait its turn for seconds) ends the stream."""
        self._deferred_bytes += data
        if len(self._deferred_bytes) > self.config.preauth_stanza_bytes:
            self._deferred_bytes = b""
            self._fail(
                "policy-violation", "too much sent before authentication was answered", events
            )

    def _read(
        self, parsed: list[object], error: XMLStreamError | None, events: list[Event]
    ) -> None:
        try:
            for i, item in enumerate(parsed):
                if self.in_phase(Phase.CLOSED):
                    break
                self._dispatch(item, events)
                if self._deferred is not None:
                    # <resume/>: what follows is read in the phase the answer leaves
                    self._deferred = (parsed[i + 1 :], error)
                    return
            if error is not None and not self.in_phase(Phase.CLOSED):
                raise StreamError(error.condition, error.text)
        except StreamError as exc:
            self._fail(exc.condition, exc.text, events)

    def _await_answer(self) -> None:
        """The event just emitted needs the owner's answer before anything after it can
        be read (it decides the phase that reads it): keep the rest until
        ``take_deferred``."""
        self._deferred = ([], None)

    def take_deferred(self) -> list[Event]:
        """After the owner answered a ``ResumeRequested`` (``resumed()``, or a
        ``<failed/>`` that leaves the stream to bind), a ``BindRequested``
        (``bind_success``/``bind_failure``), an ``AuthRequested`` or an
        ``AuthResponse`` (a challenge, success or failure): the events of what the peer
        sent after it, read in the phase that answer left (a client may pipeline, RFC
        6120 §7.1 and XEP-0198: its stanzas after the bind request are read as bound)."""
        if self._deferred is None:
            return []
        parsed, error = self._deferred
        self._deferred = None
        events: list[Event] = []
        self._read(parsed, error, events)
        if self._deferred_bytes and self._deferred is None and not self.in_phase(Phase.CLOSED):
            held, self._deferred_bytes = self._deferred_bytes, b""
            events += self.receive_data(held)
        return events

    def _dispatch(self, item: object, events: list[Event]) -> None:
        if isinstance(item, StreamHeader):
            self._on_header(item, events)
        elif isinstance(item, StreamEnd):
            self._close_handshake()
            events.append(PeerClosed())
        elif isinstance(item, Element):
            self._on_element(item, events)

    def _on_header(self, header: StreamHeader, events: list[Event]) -> None:
        if self.phase is not Phase.HEADER:  # pragma: no cover - the parser prevents it
            raise StreamError("bad-format", "a second stream header")
        to = (header.attrs.get("to") or "").strip().lower().rstrip(".")
        self._flags.domain = to if to in self.config.domains else ""
        lang = header.attrs.get(ns.XML_LANG, "")
        self.peer_lang = (
            lang
            if _LANGUAGE_TAG.fullmatch(lang) and lang.lower() != self.config.lang.lower()
            else ""
        )
        self._send_header(header)
        if header.name != "stream" or header.namespace != ns.STREAMS:
            raise StreamError(
                "invalid-namespace",
                "the stream element must be {http://etherx.jabber.org/streams}stream",
            )
        if header.default_ns != ns.CLIENT:
            raise StreamError("invalid-namespace", "the content namespace must be jabber:client")
        if not to:
            raise StreamError("host-unknown", "the stream header has no 'to' address")
        if not self._flags.domain:
            raise StreamError("host-unknown", f"this server does not serve {to!r}")
        version = header.attrs.get("version", "")
        parsed = _version(version)
        if parsed is None or parsed[0] != 1:
            raise StreamError(
                "unsupported-version", f"stream version {version or '(none)'} is not 1.x"
            )
        self._send_features()
        restart = self._flags.restarts > 0
        self.phase = Phase.FEATURES
        events.append(StreamOpened(header=header, restart=restart))

    def _on_element(self, el: Element, events: list[Event]) -> None:
        if el.namespace == ns.STREAMS:
            if el.name == "error":
                cond, text = "undefined-condition", ""
                for child in el:
                    if child.namespace == ns.STREAM_ERRORS:
                        if child.name == "text":
                            text = child.text
                        else:
                            cond = child.name
                self._close_handshake()
                events.append(PeerStreamError(condition=cond, text=text))
                return
            raise StreamError("unsupported-stanza-type", f"unexpected stream:{el.name}")
        phase = self.phase
        if phase is Phase.READY:
            if el.namespace == ns.CLIENT:
                if el.name not in _STANZA_NAMES:
                    raise StreamError("unsupported-stanza-type", f"<{el.name}/> is not a stanza")
                events.append(StanzaReceived(stanza=el))
            else:
                events.append(NonzaReceived(element=el))
        elif phase is Phase.FEATURES:
            self._on_negotiation(el, events)
        elif phase is Phase.SASL:
            self._on_sasl(el, events)

    def _on_negotiation(self, el: Element, events: list[Event]) -> None:
        flags = self._flags
        if el.namespace == ns.TLS and el.name == "starttls" and not flags.authenticated:
            if flags.tls or not self.config.tls_available:
                self._write(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                self._close_handshake()
                self.phase = Phase.CLOSED
                events.append(StreamFailed(condition="tls-failure", text="TLS not available"))
                return
            self._write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self.phase = Phase.HEADER
            events.append(TLSRequested())
            return
        if el.namespace == ns.SASL and el.name == "auth" and not flags.authenticated:
            if self._tls_missing():
                self._sasl_refuse("encryption-required", "TLS is required before authentication")
                return
            mech = el.get("mechanism") or ""
            if mech not in flags.offered:
                if not flags.tls and mech in self.config.mechanisms(True):
                    # RFC 6120 §6.4.5: usable only once the stream is protected (PLAIN)
                    self._sasl_refuse("encryption-required", f"{mech} needs TLS first")
                else:
                    self._sasl_refuse("invalid-mechanism", f"{mech or '(none)'} is not offered")
                return
            try:
                initial = decode_payload(el.text)
            except SASLFailure:
                self._sasl_refuse("incorrect-encoding", "the initial response is not base64")
                return
            flags.mechanism = mech
            self.phase = Phase.SASL
            events.append(AuthRequested(mechanism=mech, initial_response=initial))
            self._await_answer()
            return
        if el.namespace == ns.SM and flags.authenticated:
            # XEP-0198: resumption takes the place of binding (§5); enabling needs a
            # bound resource first (§3)
            if el.name == "resume":
                events.append(ResumeRequested(element=el))
                self._await_answer()
            else:
                self._write(
                    f"<failed xmlns='{ns.SM}'><unexpected-request xmlns='{ns.STANZAS}'/>"
                    "</failed>".encode()
                )
            return
        if el.namespace == ns.CLIENT and el.name == "iq":
            payload = el.first_child_namespace()
            if flags.authenticated:
                bind = el.find(ns.clark(ns.BIND, "bind"))
                if bind is not None and el.get("type") == "set":
                    if el.get("id") is None or len(el) != 1:
                        # RFC 6120 §8.2.3: an iq has an id, and a set exactly one child;
                        # the error keeps the id it has (§8.3.1)
                        self.bind_failure(el.get("id") or "", "bad-request", "modify")
                        return
                    resource = bind.findtext(ns.clark(ns.BIND, "resource"))
                    events.append(
                        BindRequested(iq_id=el.get("id") or "", resource=resource or None)
                    )
                    self._await_answer()
                    return
                raise StreamError("not-authorized", "bind a resource first (RFC 6120 §7)")
            if payload in self.config.pre_auth_iq_namespaces and not self._tls_missing():
                events.append(PreAuthIq(stanza=el, namespace=payload or ""))
                return
        raise StreamError(
            "not-authorized",
            f"<{el.name}/> is not allowed before "
            + ("resource binding" if flags.authenticated else "authentication"),
        )

    def _on_sasl(self, el: Element, events: list[Event]) -> None:
        if el.namespace != ns.SASL:
            raise StreamError("not-authorized", "authentication is in progress")
        if el.name == "abort":
            self._sasl_refuse("aborted", "")
            events.append(AuthAborted(attempts=self._flags.failed_auth))
            return
        if el.name == "response":
            try:
                data = decode_payload(el.text)
            except SASLFailure:
                self._sasl_refuse("incorrect-encoding", "the response is not base64")
                return
            events.append(AuthResponse(data=data or b""))
            self._await_answer()
            return
        raise StreamError("policy-violation", f"<{el.name}/> during a SASL exchange")

    # -- answers from the owner ---------------------------------------------------------

    def tls_established(self) -> None:
        """TLS is up on the transport: the stream restarts (RFC 6120 §5.4.3.3)."""
        self._flags.tls = True
        self._restart()

    def auth_challenge(self, data: bytes) -> None:
        """Send ``<challenge/>`` (RFC 6120 §6.4.3)."""
        self._require(Phase.SASL)
        self._write(f"<challenge xmlns='{ns.SASL}'>{encode_payload(data)}</challenge>".encode())

    def auth_success(self, user_bare_jid: str, additional_data: bytes | None = None) -> None:
        """Send ``<success/>`` and expect a restarted stream (RFC 6120 §6.4.6)."""
        self._require(Phase.SASL)
        body = encode_payload(additional_data)
        self._write(f"<success xmlns='{ns.SASL}'>{body}</success>".encode())
        self._flags.authenticated = True
        self.authzid_user = user_bare_jid
        self._restart()

    def auth_failure(self, condition: str, text: str = "") -> None:
        """Send ``<failure/>`` (RFC 6120 §6.5); at ``max_auth_attempts`` the stream ends
        with ``policy-violation`` (check ``phase is Phase.CLOSED``)."""
        self._require(Phase.SASL)
        if self._sasl_failure(condition, text):
            self.close("policy-violation", "too many failed authentication attempts")

    def bind_success(self, iq_id: str, full_jid: str) -> None:
        """Answer the bind iq (RFC 6120 §7.6.1) and open the stream for stanzas."""
        self._require(Phase.FEATURES)
        self._write(
            f"<iq type='result' id='{escape_attr(iq_id)}'><bind xmlns='{ns.BIND}'>"
            f"<jid>{escape_text(full_jid)}</jid></bind></iq>".encode()
        )
        self.jid = full_jid
        self.phase = Phase.READY

    def resumed(self, full_jid: str) -> None:
        """XEP-0198 §5: the owner wrote ``<resumed/>`` for the session of ``full_jid``,
        which this stream now carries: stanzas flow as after binding."""
        self._require(Phase.FEATURES)
        if not self._flags.authenticated:
            raise RuntimeError("resumption needs an authenticated stream")
        self.jid = full_jid
        self.phase = Phase.READY

    def bind_failure(self, iq_id: str, condition: str, error_type: str = "cancel") -> None:
        """Answer the bind iq with an error (RFC 6120 §7.6.2)."""
        self._require(Phase.FEATURES)
        self._write(
            f"<iq type='error' id='{escape_attr(iq_id)}'><error type='{error_type}'>"
            f"<{condition} xmlns='{ns.STANZAS}'/></error></iq>".encode()
        )

    def legacy_auth_success(self, full_jid: str) -> None:
        """XEP-0078: the ``jabber:iq:auth`` set both authenticated and bound the session."""
        self._require(Phase.FEATURES)
        self._flags.authenticated = True
        self.authzid_user = full_jid.split("/", 1)[0]
        self.jid = full_jid
        self.phase = Phase.READY

    def send_element(self, el: Element) -> None:
        """Queue a stanza or nonza for the peer (any phase after the header)."""
        if self.phase is Phase.CLOSED or not self._sent_header:
            return
        self._out.append(serialize(el, ns.CLIENT))

    send_stanza = send_element

    def send_raw(self, data: bytes) -> None:
        """Queue bytes already serialized for ``jabber:client`` (a forwarded stanza)."""
        if self.phase is not Phase.CLOSED:
            self._out.append(data)

    def close(
        self, condition: str | None = None, text: str = "", app: Element | None = None
    ) -> None:
        """End the stream: an optional stream error (with ``app``, an application-
        specific condition, RFC 6120 §4.9.4), then ``</stream:stream>`` (RFC 6120 §4.4).
        The owner closes the transport after a grace period."""
        if self.phase is Phase.CLOSED and self._sent_footer:
            return
        if not self._sent_header:
            self._send_header(None)
        if condition is not None:
            self._write_stream_error(condition, text, app)
        self._close_handshake()
        self.phase = Phase.CLOSED

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    # -- internals --------------------------------------------------------------------

    def _new_parser(self) -> StreamParser:
        cfg = self.config
        size = cfg.stanza_bytes if self._flags.authenticated else cfg.preauth_stanza_bytes
        return StreamParser(
            max_stanza_bytes=size,
            max_depth=cfg.max_depth,
            max_attributes=cfg.max_attributes,
        )

    def _restart(self) -> None:
        self._flags.restarts += 1
        self._sent_header = False
        self.phase = Phase.HEADER
        self._parser = self._new_parser()

    def _require(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise RuntimeError(f"stream is in phase {self.phase.value}, not {phase.value}")

    def _tls_missing(self) -> bool:
        return self.config.tls_required and not self._flags.tls

    def _sasl_failure(self, condition: str, text: str) -> bool:
        """Write ``<failure/>``; true when the attempt limit is reached."""
        flags = self._flags
        flags.failed_auth += 1
        flags.sasl_failed = True
        body = f"<{condition}/>"
        if text:
            body += f"<text xml:lang='en'>{escape_text(text)}</text>"
        self._write(f"<failure xmlns='{ns.SASL}'>{body}</failure>".encode())
        self.phase = Phase.FEATURES
        return flags.failed_auth >= self.config.max_auth_attempts

    def _sasl_refuse(self, condition: str, text: str) -> None:
        """A failure detected while reading: past the limit the stream ends."""
        if self._sasl_failure(condition, text):
            raise StreamError("policy-violation", "too many failed authentication attempts")

    def _fail(self, condition: str, text: str, events: list[Event]) -> None:
        if not self._sent_header:
            self._send_header(None)
        self._write_stream_error(condition, text)
        self._close_handshake()
        self.phase = Phase.CLOSED
        events.append(StreamFailed(condition=condition, text=text))

    def _close_handshake(self) -> None:
        if not self._sent_footer:
            self._sent_footer = True
            self._write(b"</stream:stream>")
        self.phase = Phase.CLOSED

    def _write(self, data: bytes) -> None:
        self._out.append(data)

    def _write_stream_error(self, condition: str, text: str, app: Element | None = None) -> None:
        body = f"<{condition} xmlns='{ns.STREAM_ERRORS}'/>"
        if text:
            body += f"<text xmlns='{ns.STREAM_ERRORS}' xml:lang='en'>{escape_text(text)}</text>"
        extra = serialize(app, ns.CLIENT).decode() if app is not None else ""
        self._write(f"<stream:error>{body}{extra}</stream:error>".encode())

    def _send_header(self, header: StreamHeader | None) -> None:
        self.stream_id = secrets.token_urlsafe(12)
        domain = self._flags.domain or next(iter(sorted(self.config.domains)), "")
        attrs = [
            f"from='{escape_attr(domain)}'",
            f"id='{self.stream_id}'",
            f"xml:lang='{escape_attr(self.config.lang)}'",
        ]
        if header is None or "version" in header.attrs:
            # §4.7.5: to a header without one, none (the peer speaks 0.9, refused next);
            # else the lower of the peer's version and ours
            ours = (1, 0)
            peer_version = _version(header.attrs["version"]) if header is not None else None
            major, minor = min(peer_version, ours) if peer_version is not None else ours
            attrs.insert(2, f"version='{major}.{minor}'")
        if header is not None:
            peer = header.attrs.get("from")
            if peer:
                attrs.insert(0, f"to='{escape_attr(peer)}'")
        prolog = b"<?xml version='1.0'?>" if self._flags.restarts == 0 else b""
        self._write(
            prolog
            + (
                f"<stream:stream xmlns='{ns.CLIENT}' xmlns:stream='{ns.STREAMS}' "
                + " ".join(attrs)
                + ">"
            ).encode()
        )
        self._sent_header = True

    def _send_features(self) -> None:
        cfg, flags = self.config, self._flags
        parts: list[bytes] = []
        if not flags.authenticated:
            if cfg.tls_available and not flags.tls:
                required = "<required/>" if cfg.tls_required else ""
                parts.append(f"<starttls xmlns='{ns.TLS}'>{required}</starttls>".encode())
            if not self._tls_missing():
                flags.offered = tuple(cfg.mechanisms(flags.tls))
                mechs = "".join(f"<mechanism>{m}</mechanism>" for m in flags.offered)
                parts.append(f"<mechanisms xmlns='{ns.SASL}'>{mechs}</mechanisms>".encode())
                cb = cfg.channel_binding_types(flags.tls)
                if cb:
                    types = "".join(f"<channel-binding type='{escape_attr(t)}'/>" for t in cb)
                    parts.append(
                        f"<sasl-channel-binding xmlns='{ns.SASL_CB}'>{types}"
                        "</sasl-channel-binding>".encode()
                    )
                parts.extend(serialize(f, ns.CLIENT) for f in cfg.extra_features_preauth)
            limit = cfg.preauth_stanza_bytes
        else:
            parts.append(f"<bind xmlns='{ns.BIND}'/>".encode())
            parts.append(f"<session xmlns='{ns.SESSION}'><optional/></session>".encode())
            parts.extend(serialize(f, ns.CLIENT) for f in cfg.extra_features_postauth)
            limit = cfg.stanza_bytes
        parts.append(
            f"<limits xmlns='{ns.STREAM_LIMITS}'><max-bytes>{limit}</max-bytes>"
            f"<idle-seconds>{cfg.idle_seconds}</idle-seconds></limits>".encode()
        )
        self._write(b"<stream:features>" + b"".join(parts) + b"</stream:features>")


def _version(text: str) -> tuple[int, int] | None:
    """A stream header's ``version`` as (major, minor) integers (RFC 6120 §4.7.5: each
    part compared as a number, leading zeros ignored); ``None`` when it is not one."""
    major, dot, minor = text.partition(".")
    if not (dot and major.isdigit() and minor.isdigit() and major.isascii() and minor.isascii()):
        return None
    return int(major), int(minor)
