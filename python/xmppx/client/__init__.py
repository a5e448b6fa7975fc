"""A small asyncio XMPP client on the same core as the server (RFC 6120).

Two layers, like the server's:

- ``ClientStream``: the client side of a c2s stream without I/O (``xmppx.client._stream``):
  bytes in, events out, bytes to send.  It negotiates STARTTLS, SASL and binding by itself.
- ``Client``: an ``asyncio.Protocol`` around it (``xmppx.client._client``) for tests,
  benchmarks and load tools: no thread or task per connection, a bounded receive queue
  that stops reading from the socket when full.

Example::

    client = await Client.connect("juliet@localhost", "r0m30", host="127.0.0.1",
                                  ssl_context=ctx)
    pong = await client.iq(Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"}))
    await client.close()
"""

from xmppx.client._client import (
    ALPN_XMPP_CLIENT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_TIMEOUT,
    DIRECT_TLS_PORT,
    AuthenticationError,
    BindError,
    Client,
    ClientError,
    IqError,
    StreamClosedError,
    TLSMode,
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
from xmppx.client._stream import (
    BIND_IQ_ID,
    DEFAULT_CLIENT_MAX_STANZA_BYTES,
    SESSION_IQ_ID,
    ClientPhase,
    ClientStream,
    ClientStreamConfig,
    MechanismFactory,
)

__all__ = [
    "ALPN_XMPP_CLIENT",
    "BIND_IQ_ID",
    "DEFAULT_CLIENT_MAX_STANZA_BYTES",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_PORT",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TIMEOUT",
    "DIRECT_TLS_PORT",
    "SESSION_IQ_ID",
    "AuthFailed",
    "Authenticated",
    "AuthenticationError",
    "BindError",
    "BindFailed",
    "Bound",
    "Client",
    "ClientError",
    "ClientPhase",
    "ClientStream",
    "ClientStreamConfig",
    "Closed",
    "ConnectionLost",
    "Event",
    "FeaturesReceived",
    "IqError",
    "MechanismFactory",
    "NonzaReceived",
    "StanzaReceived",
    "StreamClosedError",
    "StreamErrorReceived",
    "StreamFailed",
    "StreamOpened",
    "TLSFailed",
    "TLSMode",
    "TLSProceed",
]
