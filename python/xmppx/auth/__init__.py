"""SASL for XMPP (RFC 6120 §6): mechanisms as sans-I/O state machines, credentials as
SCRAM keys.

No sockets, no asyncio: a mechanism takes the bytes of one SASL message and returns what
to do next, so it runs on the RFCs' test vectors without a server.

- Mechanisms: ``SCRAM-SHA-256(-PLUS)``, ``SCRAM-SHA-1(-PLUS)`` (RFC 5802, RFC 7677; channel
  binding ``tls-exporter`` RFC 9266, ``tls-server-end-point`` RFC 5929) and ``PLAIN``
  (RFC 4616), each with a server class and a client class.
- Credentials: ``derive_scram_credentials`` turns a password into the ``ScramCredentials``
  the server stores; the password itself is never stored.  ``PLAIN`` is checked against
  the same keys (``verify_password``).
- The server offers ``mechanisms_for(tls, cb_types)`` and runs
  ``create_server_mechanism(name, context)``; a failure is a ``SASLFailure`` carrying its
  RFC 6120 §6.5 condition.  Unknown users fail exactly like wrong passwords.

A whole exchange, without a network::

    >>> from xmppx.auth import *
    >>> creds = derive_scram_credentials("pencil", "sha256", iterations=4096)
    >>> ctx = ServerContext(domain="example.com", secret=b"s" * 32)
    >>> server = create_server_mechanism("SCRAM-SHA-256", ctx)
    >>> client = ScramClient("sha256", username="user", password="pencil")
    >>> step = server.start(client.start())
    >>> step
    NeedCredentials(username='user', hash_names=('sha256',))
    >>> step = server.provide_credentials(creds)
    >>> step = server.respond(client.respond(step.data))
    >>> step.authcid, step.authzid
    ('user', None)
    >>> client.finish(step.additional_data)   # checks the server signature
"""

from xmppx.auth._base import (
    MAX_SASL_MESSAGE_BYTES,
    MAX_USERNAME_BYTES,
    MIN_SERVER_SECRET_BYTES,
    NONCE_BYTES,
    SASL_FAILURE_CONDITIONS,
    Challenge,
    ClientMechanism,
    NeedCredentials,
    SASLClientError,
    SASLFailure,
    SASLStateError,
    ServerContext,
    ServerMechanism,
    Step,
    Success,
    decode_payload,
    encode_payload,
    make_nonce,
)
from xmppx.auth._channel_binding import (
    CB_TLS_EXPORTER,
    CB_TLS_SERVER_END_POINT,
    CHANNEL_BINDING_TYPES,
    TLS_EXPORTER_LABEL,
    TLS_EXPORTER_LENGTH,
    tls_server_end_point,
)
from xmppx.auth._credentials import (
    DEFAULT_SALT_BYTES,
    DEFAULT_SCRAM_ITERATIONS,
    HASH_NAMES,
    ScramCredentials,
    derive_scram_credentials,
    verify_password,
)
from xmppx.auth._mechanisms import (
    create_client_mechanism,
    create_server_mechanism,
    mechanisms_for,
)
from xmppx.auth._plain import MAX_PLAIN_FIELD_BYTES, PlainClient, PlainServer
from xmppx.auth._saslprep import SASLPREP_RULES, SASLprepError, saslprep
from xmppx.auth._scram import (
    MAX_SCRAM_ITERATIONS,
    MIN_SCRAM_ITERATIONS,
    ChannelBinding,
    ScramClient,
    ScramServer,
)

__all__ = [
    "CB_TLS_EXPORTER",
    "CB_TLS_SERVER_END_POINT",
    "CHANNEL_BINDING_TYPES",
    "DEFAULT_SALT_BYTES",
    "DEFAULT_SCRAM_ITERATIONS",
    "HASH_NAMES",
    "MAX_PLAIN_FIELD_BYTES",
    "MAX_SASL_MESSAGE_BYTES",
    "MAX_SCRAM_ITERATIONS",
    "MAX_USERNAME_BYTES",
    "MIN_SCRAM_ITERATIONS",
    "MIN_SERVER_SECRET_BYTES",
    "NONCE_BYTES",
    "SASLPREP_RULES",
    "SASL_FAILURE_CONDITIONS",
    "TLS_EXPORTER_LABEL",
    "TLS_EXPORTER_LENGTH",
    "Challenge",
    "ChannelBinding",
    "ClientMechanism",
    "NeedCredentials",
    "PlainClient",
    "PlainServer",
    "SASLClientError",
    "SASLFailure",
    "SASLStateError",
    "SASLprepError",
    "ScramClient",
    "ScramCredentials",
    "ScramServer",
    "ServerContext",
    "ServerMechanism",
    "Step",
    "Success",
    "create_client_mechanism",
    "create_server_mechanism",
    "decode_payload",
    "derive_scram_credentials",
    "encode_payload",
    "make_nonce",
    "mechanisms_for",
    "saslprep",
    "tls_server_end_point",
    "verify_password",
]
