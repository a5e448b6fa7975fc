"""Sans-I/O XMPP streams (RFC 6120 §4–§7): no sockets, no asyncio, no timers here.

``ServerStream`` is the server side of a client-to-server stream.  The owner feeds it the
bytes it reads, acts on the events it returns, and writes ``data_to_send()``.
"""

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
from xmppx.stream._server import (
    DEFAULT_MAX_AUTH_ATTEMPTS,
    DEFAULT_PREAUTH_STANZA_BYTES,
    DEFAULT_STANZA_BYTES,
    Phase,
    ServerStream,
    ServerStreamConfig,
)

__all__ = [
    "DEFAULT_MAX_AUTH_ATTEMPTS",
    "DEFAULT_PREAUTH_STANZA_BYTES",
    "DEFAULT_STANZA_BYTES",
    "AuthAborted",
    "AuthRequested",
    "AuthResponse",
    "BindRequested",
    "ConnectionLost",
    "Event",
    "NonzaReceived",
    "PeerClosed",
    "PeerStreamError",
    "Phase",
    "PreAuthIq",
    "ResumeRequested",
    "ServerStream",
    "ServerStreamConfig",
    "StanzaReceived",
    "StreamFailed",
    "StreamOpened",
    "TLSRequested",
]
