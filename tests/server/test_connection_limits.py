"""Connection limits (``limits.max_connections``, ``limits.max_unauthenticated_per_address``,
``limits.header_timeout``) hold on both ports: a connection to the direct-TLS port
(XEP-0368) counts from its TCP accept, not from the end of its TLS handshake, and a
connection whose TLS handshake never ends gives its place back."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.server.conftest import HEADER, RawConnection, slix_close, slix_connect
from xmppx.server import XMPPServer


async def _none_left(server: XMPPServer, timeout: float = 5.0) -> None:
    """Wait (bounded) until the server counts no connection, as after every test here."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while server.connections or server._unauth_per_address:
        assert loop.time() < deadline, (
            f"still counted: {len(server.connections)} connections, "
            f"{dict(server._unauth_per_address)} unauthenticated"
        )
        await asyncio.sleep(0.02)


async def test_direct_tls_connections_count_before_their_handshake(make_server: Any) -> None:
    """Two TCP connections to the TLS port that never say ClientHello fill
    ``max_connections``: a third, to either port, is closed at once."""
    server = await make_server(limits__max_connections=2)
    waiting: list[RawConnection] = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["c2s_tls"])
        waiting.append(RawConnection(reader, writer))
    for port in ("c2s_tls", "c2s"):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports[port])
        extra = RawConnection(reader, writer)
        assert await extra.read_to_eof(2.0, answer=False) == b"", f"{port} admitted a third"
        await extra.close()
    for conn in waiting:
        await conn.close()
    await _none_left(server)
    # the places are given back: a client logs in over direct TLS
    client = await slix_connect(server, "romeo@localhost", direct_tls=True)
    await slix_close(client)


async def test_handshakes_in_progress_count_as_unauthenticated(make_server: Any) -> None:
    server = await make_server(limits__max_unauthenticated_per_address=2)
    held: list[RawConnection] = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["c2s_tls"])
        held.append(RawConnection(reader, writer))
    refused = await RawConnection.open(server, "c2s")
    assert await refused.read_to_eof(2.0, answer=False) == b""
    await refused.close()
    for conn in held:
        await conn.close()
    await _none_left(server)


async def test_a_peer_silent_on_the_tls_port_is_dropped_at_the_header_timeout(
    make_server: Any,
) -> None:
    server = await make_server(limits__header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["c2s_tls"])
    silent = RawConnection(reader, writer)
    # nothing in the clear on a TLS port: the connection is just closed
    assert await silent.read_to_eof(3.0, answer=False) == b""
    await silent.close()
    await _none_left(server)


async def test_a_peer_silent_after_proceed_is_dropped_and_forgotten(make_server: Any) -> None:
    """RFC 6120 §5.4.3.3: after ``<proceed/>`` the next bytes are TLS.  A peer that
    sends none is cut at the header timeout, and no longer counted."""
    server = await make_server(limits__header_timeout=0.5)
    conn = await RawConnection.open(server)
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    await conn.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await conn.read_until(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    got = await conn.read_to_eof(3.0, answer=False)
    assert got.endswith(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), got[-200:]
    await conn.close()
    await _none_left(server)


async def test_a_failed_handshake_on_the_tls_port_is_forgotten(make_server: Any) -> None:
    server = await make_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["c2s_tls"])
    garbage = RawConnection(reader, writer)
    await garbage.send(HEADER)  # XML where a ClientHello belongs
    await garbage.read_to_eof(3.0, answer=False)
    await garbage.close()
    await _none_left(server)
