"""Events the sans-I/O ``ClientStream`` reports to the code driving it (wsproto
``events.py`` style, mirroring ``xmppx.stream._events`` on the server side).

Every event is a frozen, keyword-only dataclass.  The stream has already written what the
protocol answers by itself (our headers, ``<starttls/>``, ``<auth/>`` and its responses,
the bind and session iqs, our closing tag); events are what the owner must act on or may
want to know.  The ones that end the stream say what the owner does next:

* ``TLSFailed``, ``AuthFailed``, ``BindFailed``, ``StreamErrorReceived``: our closing tag
  is queued; wait (with a timeout) for ``Closed`` or ``ConnectionLost``.
* ``StreamFailed``: write ``data_to_send()`` and close the transport now.
* ``Closed``, ``ConnectionLost``: the stream is over; close the transport.
"""

from __future__ import annotations

from dataclasses import dataclass

from xmppx.core import Element, StreamHeader

__all__ = [
    "AuthFailed",
    "Authenticated",
    "BindFailed",
    "Bound",
    "Closed",
    "ConnectionLost",
    "Event",
    "FeaturesReceived",
    "NonzaReceived",
    "StanzaReceived",
    "StreamErrorReceived",
    "StreamFailed",
    "StreamOpened",
    "TLSFailed",
    "TLSProceed",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamOpened:
    """The server's response stream header arrived and passed the checks of RFC 6120
    §4.7 (namespaces, ``version`` 1.x).  ``stream_id`` is its ``id``; ``restart`` is true
    after STARTTLS or SASL."""

    header: StreamHeader
    stream_id: str
    restart: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class FeaturesReceived:
    """``<stream:features/>`` (RFC 6120 §4.3.2), with the parts this stream acts on
    already read out; ``element`` keeps the rest (XEP-0077 ``<register/>``, stream
    management, ...).  The stream has already answered it (``<starttls/>``, ``<auth/>``
    or the bind iq)."""

    element: Element
    starttls: bool  # RFC 6120 §5.4.1
    tls_required: bool
    mechanisms: tuple[str, ...]  # RFC 6120 §6.4.1, in the server's order
    channel_binding_types: tuple[str, ...] | None  # XEP-0440; None when not announced
    bind: bool  # RFC 6120 §7.4
    session_required: bool  # RFC 3921 §3 ``<session/>`` without ``<optional/>``


@dataclass(frozen=True, kw_only=True, slots=True)
class TLSProceed:
    """The server answered ``<starttls/>`` with ``<proceed/>`` (RFC 6120 §5.4.2.3): write
    what is pending, run the TLS handshake on the transport, then call
    ``ClientStream.tls_established`` (which restarts the stream)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TLSFailed:
    """The server answered ``<starttls/>`` with ``<failure/>`` (RFC 6120 §5.4.2.2); it
    closes the stream, and so do we."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Authenticated:
    """``<success/>`` arrived and the mechanism accepted it (for SCRAM: the server
    signature is correct, RFC 5802 §5).  The stream has restarted (RFC 6120 §6.4.6)."""

    mechanism: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthFailed:
    """SASL did not succeed; the stream is closing.

    ``local`` false: the server sent ``<failure/>`` and ``condition`` is its RFC 6120
    §6.5 condition (``not-authorized``, ...).  ``local`` true: we gave up — no offered
    mechanism was acceptable (``invalid-mechanism``), or the server could not prove it
    knows the keys (a malformed challenge or a wrong SCRAM server signature: ``aborted``,
    as RFC 6120 §6.4.4; we sent ``<abort/>`` when the exchange was still open).
    """

    condition: str
    text: str
    local: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Bound:
    """A resource is bound (RFC 6120 §7.6.1) and, if the server required it, the RFC 3921
    session established: stanzas can flow.  ``jid`` is the full JID the server assigned
    (it may differ from the requested resource, RFC 6120 §7.7.2.2)."""

    jid: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BindFailed:
    """The bind (or RFC 3921 session) iq returned an error (RFC 6120 §7.6.2): its stanza
    error ``condition`` (``conflict``, ``not-allowed``, ...) and ``text``, or the server
    offered no ``<bind/>`` at all (``condition`` ``feature-not-implemented``).  The
    stream is closing."""

    condition: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StanzaReceived:
    """A ``<message/>``, ``<presence/>`` or ``<iq/>`` in ``jabber:client`` (RFC 6120 §8)
    after binding."""

    stanza: Element


@dataclass(frozen=True, kw_only=True, slots=True)
class NonzaReceived:
    """A top-level element of another namespace after binding (XEP-0198 stream
    management, ...): the owner decides."""

    element: Element


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamErrorReceived:
    """The server sent ``<stream:error/>`` (RFC 6120 §4.9): ``condition`` is the defined
    condition (§4.9.3, ``undefined-condition`` if none was given) and ``text`` the
    ``<text/>`` or, for ``see-other-host``, the host named in the condition.  Our closing
    tag is queued."""

    condition: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamFailed:
    """The server broke a rule (bad XML, a bad header, an element the current phase does
    not allow), or lacks something we require (STARTTLS): ``condition`` is the RFC 6120
    §4.9.3 condition, and when the stream was still open our ``<stream:error/>`` and
    closing tag are queued.  Write them and close the transport."""

    condition: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Closed:
    """The server sent ``</stream:stream>`` (RFC 6120 §4.4); ours is queued if we had not
    sent it.  Write, then close the transport."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionLost:
    """The transport reached EOF without the server's closing tag."""


Event = (
    StreamOpened
    | FeaturesReceived
    | TLSProceed
    | TLSFailed
    | Authenticated
    | AuthFailed
    | Bound
    | BindFailed
    | StanzaReceived
    | NonzaReceived
    | StreamErrorReceived
    | StreamFailed
    | Closed
    | ConnectionLost
)
