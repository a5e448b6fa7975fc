"""Events a sans-I/O stream reports to the code driving it (wsproto ``events.py`` style).

Every event is a frozen, keyword-only dataclass.  The stream has already written whatever
the protocol answers by itself (headers, features, ``<proceed/>``, stream errors); events
are only what the owner must decide or act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from xmppx.core import Element, StreamHeader

__all__ = [
    "AuthAborted",
    "AuthRequested",
    "AuthResponse",
    "BindRequested",
    "ConnectionLost",
    "Event",
    "NonzaReceived",
    "PeerClosed",
    "PeerStreamError",
    "PreAuthIq",
    "ResumeRequested",
    "StanzaReceived",
    "StreamFailed",
    "StreamOpened",
    "TLSRequested",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamOpened:
    """A valid stream header arrived and was answered with ours and the features
    (RFC 6120 §4.3.2).  ``restart`` is true after STARTTLS or SASL."""

    header: StreamHeader
    restart: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class TLSRequested:
    """``<starttls/>`` was answered with ``<proceed/>`` (RFC 6120 §5.4.2.3): write what is
    pending, wrap the socket in TLS, then call ``ServerStream.tls_established``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthRequested:
    """``<auth mechanism=...>`` (RFC 6120 §6.4.2).  ``initial_response`` is ``None`` when
    absent, ``b""`` for the empty response ``=``.  Answer with ``auth_challenge``,
    ``auth_success`` or ``auth_failure``, then call ``take_deferred``: what the client
    sent after it is read only then, one SASL step at a time."""

    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthResponse:
    """``<response/>`` to the last challenge (RFC 6120 §6.4.3).  Answered as
    ``AuthRequested``, then ``take_deferred``."""

    data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthAborted:
    """The client sent ``<abort/>``; the stream answered ``<failure><aborted/>``
    (RFC 6120 §6.4.4).  ``attempts`` counts failed attempts on this stream so far."""

    attempts: int


@dataclass(frozen=True, kw_only=True, slots=True)
class BindRequested:
    """Resource binding (RFC 6120 §7.5/7.6): ``resource`` is ``None`` when the client asks
    the server to generate one.  Answer with ``bind_success`` or ``bind_failure``, then
    call ``take_deferred`` for what the client sent after it (read as bound or not)."""

    iq_id: str
    resource: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class PreAuthIq:
    """An ``<iq/>`` before authentication in a namespace the server allows there
    (XEP-0077 registration, XEP-0078 legacy auth).  Answer with ``send_element``."""

    stanza: Element
    namespace: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ResumeRequested:
    """XEP-0198 §5: an authenticated client asks, instead of binding, to resume the
    session ``previd``, having handled ``h`` of our stanzas.  The owner answers with
    ``ServerStream.resumed`` (after writing ``<resumed/>``) or writes ``<failed/>``."""

    element: Element


@dataclass(frozen=True, kw_only=True, slots=True)
class StanzaReceived:
    """A ``<message/>``, ``<presence/>`` or ``<iq/>`` from a bound session (RFC 6120 §8).
    Its ``from`` has not been checked or stamped yet: that is the router's job."""

    stanza: Element


@dataclass(frozen=True, kw_only=True, slots=True)
class NonzaReceived:
    """A top-level element of another namespace after binding (stream management,
    client state indication, ...).  The owner decides; unknown ones should end the
    stream with ``unsupported-stanza-type``."""

    element: Element


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerClosed:
    """The peer sent ``</stream:stream>`` (RFC 6120 §4.4); the stream answered with its own
    closing tag if it had not yet.  Close the connection after writing."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerStreamError:
    """The peer sent ``<stream:error/>`` (RFC 6120 §4.9); the stream is closing."""

    condition: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamFailed:
    """The peer broke a rule; the stream error and closing tag are queued in
    ``data_to_send()`` (RFC 6120 §4.9.1.1).  Write them, then close the connection."""

    condition: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionLost:
    """The transport ended (EOF) without a closing handshake."""


Event = (
    StreamOpened
    | TLSRequested
    | AuthRequested
    | AuthResponse
    | AuthAborted
    | BindRequested
    | ResumeRequested
    | PreAuthIq
    | StanzaReceived
    | NonzaReceived
    | PeerClosed
    | PeerStreamError
    | StreamFailed
    | ConnectionLost
)
