"""Which mechanisms to offer and to pick, and the factories for both sides.

The server offers, strongest first (RFC 6120 §6.3.3 leaves the order to the server; the
client picks)::

    SCRAM-SHA-256-PLUS  SCRAM-SHA-1-PLUS     only with channel-binding data (TLS)
    SCRAM-SHA-256       SCRAM-SHA-1
    PLAIN                                    only over TLS (RFC 4616 §6)

Channel binding ranks above the hash: it defeats a man in the middle who holds a
certificate the client accepts, which no hash does.  A ``SCRAM-SHA-1`` mechanism is only
offered when the server stores SHA-1 keys (``ServerContext.scram_hashes``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from xmppx.auth._base import (
    ClientMechanism,
    SASLClientError,
    SASLFailure,
    ServerContext,
    ServerMechanism,
)
from xmppx.auth._channel_binding import CHANNEL_BINDING_TYPES
from xmppx.auth._credentials import HASH_NAMES, SCRAM_MECHANISM_NAMES
from xmppx.auth._plain import PlainClient, PlainServer
from xmppx.auth._scram import ChannelBinding, ScramClient, ScramServer

__all__ = ["create_client_mechanism", "create_server_mechanism", "mechanisms_for"]

_SCRAM_BY_NAME = {
    SCRAM_MECHANISM_NAMES[h] + suffix: (h, bool(suffix))
    for h in HASH_NAMES
    for suffix in ("-PLUS", "")
}


def mechanisms_for(
    tls: bool,
    cb_types: Collection[str] = (),
    *,
    hashes: Collection[str] = HASH_NAMES,
) -> tuple[str, ...]:
    """The mechanism names for the ``<mechanisms/>`` feature (RFC 6120 §6.4.1), strongest
    first: the -PLUS variants when ``cb_types`` (the channel-binding types the server has
    data for on this stream) is non-empty, then plain SCRAM, then PLAIN when ``tls``;
    SCRAM only for ``hashes`` the server stores keys for.

    >>> mechanisms_for(True, ["tls-exporter"])
    ('SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN')
    >>> mechanisms_for(False)
    ('SCRAM-SHA-256', 'SCRAM-SHA-1')
    """
    if cb_types and not tls:
        raise ValueError("channel bindings exist only on a TLS stream")
    scram = [SCRAM_MECHANISM_NAMES[h] for h in HASH_NAMES if h in hashes]
    names = [n + "-PLUS" for n in scram] if cb_types else []
    names += scram
    if tls:
        names.append("PLAIN")
    return tuple(names)


def create_server_mechanism(name: str, context: ServerContext) -> ServerMechanism:
    """The server mechanism for the client's ``<auth mechanism='name'>``.

    Raises ``SASLFailure("encryption-required")`` for PLAIN on an unencrypted stream and
    ``SASLFailure("invalid-mechanism")`` for a name not offered on this stream (RFC 6120
    §6.4.5), including a -PLUS variant without channel-binding data.
    """
    if name == "PLAIN" and not context.tls:
        raise SASLFailure("encryption-required", "PLAIN needs an encrypted stream")
    offered = mechanisms_for(context.tls, context.channel_bindings, hashes=context.scram_hashes)
    if name not in offered:
        raise SASLFailure("invalid-mechanism", "mechanism not offered")
    if name == "PLAIN":
        return PlainServer(context)
    hash_name, plus = _SCRAM_BY_NAME[name]
    return ScramServer(hash_name, context, plus=plus)


def create_client_mechanism(
    offered: Iterable[str],
    *,
    username: str,
    password: str,
    authzid: str | None = None,
    channel_bindings: Mapping[str, bytes] | None = None,
    server_cb_types: Collection[str] | None = None,
    allow_plain: bool = False,
) -> ClientMechanism:
    """Pick the strongest of the server's ``offered`` mechanisms and make its client.

    ``channel_bindings`` is the data the client computed for its TLS connection, by type.
    ``server_cb_types`` are the types the server announced (XEP-0440), ``None`` if it
    announced none, in which case ``tls-exporter`` is tried first (RFC 9266 makes it the
    TLS 1.3 default).  When the server offers no -PLUS variant, a client that could bind
    sends the ``y`` flag, so a server that does support binding sees the downgrade (RFC
    5802 §6); when it offers -PLUS but no type both sides have, the flag is ``n``.
    ``allow_plain`` permits PLAIN as the last resort; allow it only over TLS.

    Raises ``SASLClientError`` if no offered mechanism is acceptable.
    """
    names = set(offered)
    bindings = channel_bindings or {}
    usable = [
        t
        for t in CHANNEL_BINDING_TYPES
        if t in bindings and (server_cb_types is None or t in server_cb_types)
    ]
    if usable:
        for hash_name in HASH_NAMES:
            if SCRAM_MECHANISM_NAMES[hash_name] + "-PLUS" in names:
                binding = ChannelBinding(type=usable[0], data=bindings[usable[0]])
                return ScramClient(
                    hash_name,
                    username=username,
                    password=password,
                    authzid=authzid,
                    channel_binding=binding,
                )
    server_plus = any(name.endswith("-PLUS") for name in names)
    for hash_name in HASH_NAMES:
        if SCRAM_MECHANISM_NAMES[hash_name] in names:
            return ScramClient(
                hash_name,
                username=username,
                password=password,
                authzid=authzid,
                channel_binding_capable=bool(bindings) and not server_plus,
            )
    if allow_plain and "PLAIN" in names:
        return PlainClient(username=username, password=password, authzid=authzid)
    raise SASLClientError(f"no acceptable mechanism among {sorted(names)}")
