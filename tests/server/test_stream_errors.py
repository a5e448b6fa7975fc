"""Hostile and malformed input over raw TCP (RFC 6120 §4.9, §11): each case gets its
stream error (after our stream header, RFC 6120 §4.9.1.2), the connection is closed, and
the server goes on serving a fresh client normally."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.server.conftest import (
    HEADER,
    RawConnection,
    client_tls_context,
    slix_close,
    slix_connect,
)
from xmppx.server import XMPPServer

NS_STREAM = "http://etherx.jabber.org/streams"


def stream_error(data: bytes) -> str:
    """The defined condition of the stream error in ``data``."""
    m = re.search(rb"<stream:error><([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>", data)
    assert m, f"no stream error in {data!r}"
    assert data.rstrip().endswith(b"</stream:stream>"), "stream not closed after the error"
    return m.group(1).decode()


CASES: list[tuple[str, bytes, str]] = [
    ("malformed", HEADER + b"<message><body></message>", "not-well-formed"),
    ("doctype", b"<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>", "restricted-xml"),
    ("comment", HEADER + b"<!-- hello -->", "restricted-xml"),
    ("pi", HEADER + b"<?php echo 1; ?>", "restricted-xml"),
    ("entity", HEADER + b"<message><body>&xxe;</body></message>", "restricted-xml"),
    # RFC 6120 §11.6: U+FEFF is a ZERO WIDTH NO-BREAK SPACE, here before the header
    ("utf8-bom", b"\xef\xbb\xbf" + HEADER, "not-well-formed"),
    ("utf16-bom", b"\xff\xfe" + HEADER.decode().encode("utf-16-le"), "unsupported-encoding"),
    (
        "latin1",
        b"<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER[21:],
        "unsupported-encoding",
    ),
    ("bad-utf8", HEADER + b"<message><body>\xc3\x28</body></message>", "unsupported-encoding"),
    ("nul", HEADER + b"<message><body>\x00</body></message>", "not-well-formed"),
    ("control", HEADER + b"<message><body>\x07</body></message>", "not-well-formed"),
    ("content-namespace", HEADER.replace(b"jabber:client", b"jabber:server"), "invalid-namespace"),
    (
        "stream-namespace",
        HEADER.replace(NS_STREAM.encode(), b"urn:example:streams"),
        "invalid-namespace",
    ),
    ("unknown-host", HEADER.replace(b"to='localhost'", b"to='example.org'"), "host-unknown"),
    ("no-to", HEADER.replace(b"to='localhost' ", b""), "host-unknown"),
    (
        "version",
        HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost' version='2.0'"),
        "unsupported-version",
    ),
    (
        "xml-version",
        HEADER.replace(b"<?xml version='1.0'?>", b"<?xml version='1.1'?>"),
        "not-well-formed",
    ),
    (
        "stanza-before-auth",
        HEADER + b"<message to='juliet@localhost'><body>hi</body></message>",
        "not-authorized",
    ),
    # RFC 6120 §4.3.3: no restart without STARTTLS or SASL; refused at once, not held open
    ("header-inside-stream", HEADER + HEADER[21:], "bad-format"),
    ("depth", HEADER + b"<iq type='get' id='1'>" + b"<a>" * 40, "policy-violation"),
    (
        "attributes",
        HEADER + b"<iq " + b" ".join(b"a%d='1'" % i for i in range(70)) + b">",
        "policy-violation",
    ),
]


@pytest.mark.parametrize(("name", "data", "condition"), CASES, ids=[c[0] for c in CASES])
async def test_stream_error(server: XMPPServer, name: str, data: bytes, condition: str) -> None:
    conn = await RawConnection.open(server)
    await conn.send(data)
    received = await conn.read_to_eof()
    assert b"<stream:stream" in received, "the error must follow our stream header"
    assert stream_error(received) == condition
    await conn.close()
    client = await slix_connect(server, "romeo@localhost")
    await slix_close(client)


async def test_oversize_preauth_stanza_rejected_before_it_completes(server: XMPPServer) -> None:
    """10 KB before authentication: the error comes while the stanza is still open."""
    conn = await RawConnection.open(server)
    await conn.send(HEADER + b"<iq type='get' id='big'><query xmlns='jabber:iq:register'>")
    await conn.send(b"x" * 10_100)  # never closed: the limit must trigger on its own
    assert stream_error(await conn.read_to_eof()) == "policy-violation"
    await conn.close()


async def test_whitespace_keepalive_then_closing_handshake(server: XMPPServer) -> None:
    conn = await RawConnection.open(server)
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    await conn.send(b" \n \t ")
    await conn.send(b"</stream:stream>")
    received = await conn.read_to_eof()
    assert received.endswith(b"</stream:stream>")
    assert b"stream:error" not in received
    await conn.close()


async def test_after_its_stream_error_the_server_waits_for_the_clients_close(
    make_server: Any,
) -> None:
    """RFC 6120 §4.4, §4.9.1.1: the server that closes first keeps the connection open
    for the client's ``</stream:stream>`` (which must not meet a reset), then closes it;
    a client that stays silent is cut off after ``limits.close_timeout``."""
    server = await make_server(limits__close_timeout=30.0)
    conn = await RawConnection.open(server)
    await conn.send(HEADER + b"<message><body></message>")
    await conn.read_until(b"</stream:stream>")
    assert stream_error(conn.received) == "not-well-formed"
    with pytest.raises(TimeoutError):  # still open: nothing more, no EOF
        await asyncio.wait_for(conn.reader.read(1), 0.3)
    await conn.send(b"<message/>")  # void, and ignored
    await conn.send(b"</stream:stream>")
    tail = await conn.read_to_eof(timeout=10, answer=False)
    assert tail.rstrip().endswith(b"</stream:stream>"), "closed without sending more"
    await conn.close()
    await server.stop()

    server = await make_server(limits__close_timeout=0.3)
    silent = await RawConnection.open(server)
    await silent.send(HEADER + b"<message><body></message>")
    assert stream_error(await silent.read_to_eof(timeout=10, answer=False)) == "not-well-formed"
    await silent.close()


async def test_a_header_without_version_gets_none_back(server: XMPPServer) -> None:
    """RFC 6120 §4.7.5: with no 'version' the peer speaks 0.9, and the response header
    SHOULD NOT include one; 0.9 is not supported here (unsupported-version)."""
    conn = await RawConnection.open(server)
    await conn.send(HEADER.replace(b"to='localhost' version='1.0'", b"to='localhost'"))
    received = await conn.read_to_eof()
    header = received[: received.index(b">", received.index(b"<stream:stream")) + 1]
    assert b"version=" not in header.replace(b"<?xml version='1.0'?>", b"")
    assert stream_error(received) == "unsupported-version"
    await conn.close()


@pytest.mark.parametrize(
    ("theirs", "ours", "condition"),
    [
        ("0.9", "0.9", "unsupported-version"),
        ("1.10", "1.0", None),
        ("01.00", "1.0", None),
        # §4.7.5: "major.minor", each an integer: neither is a version
        ("1.x", "1.0", "unsupported-version"),
        ("\u0661.0", "1.0", "unsupported-version"),
    ],
)
async def test_the_response_header_has_the_lower_version(
    server: XMPPServer, theirs: str, ours: str, condition: str | None
) -> None:
    """RFC 6120 §4.7.5: the response's 'version' is "the value supplied by the initiating
    entity or the highest version number supported by the receiving entity, whichever
    is lower", major and minor compared as integers."""
    conn = await RawConnection.open(server)
    await conn.send(
        HEADER.replace(
            b"to='localhost' version='1.0'", f"to='localhost' version='{theirs}'".encode()
        )
    )
    received = await conn.read_until(
        b"</stream:features>" if condition is None else b"</stream:stream>"
    )
    header = received[received.index(b"<stream:stream") :]
    header = header[: header.index(b">") + 1]
    assert f"version='{ours}'".encode() in header, header
    if condition is not None:
        assert stream_error(received) == condition
    await conn.close()


async def test_header_timeout(make_server: Any) -> None:
    server = await make_server(limits__header_timeout=0.3)
    conn = await RawConnection.open(server)
    assert stream_error(await conn.read_to_eof()) == "connection-timeout"
    await conn.close()


async def test_negotiation_timeout(make_server: Any) -> None:
    server = await make_server(limits__negotiation_timeout=0.5)
    conn = await RawConnection.open(server)
    await conn.send(HEADER)
    assert stream_error(await conn.read_to_eof()) == "connection-timeout"
    await conn.close()


async def test_unauthenticated_connections_per_address_capped(make_server: Any) -> None:
    server = await make_server(limits__max_unauthenticated_per_address=3)
    conns = [await RawConnection.open(server) for _ in range(3)]
    for c in conns:
        await c.send(HEADER)
        await c.read_until(b"</stream:features>")
    extra = await RawConnection.open(server)
    assert await extra.read_to_eof() == b"", "the fourth connection must be refused"
    for c in conns:
        await c.close()
    await extra.close()


async def test_auth_refused_without_tls(server: XMPPServer) -> None:
    """TLS is required by default: no mechanisms offered and <auth/> refused."""
    conn = await RawConnection.open(server)
    await conn.send(HEADER)
    features = await conn.read_until(b"</stream:features>")
    assert b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" in features
    assert b"<mechanisms" not in features
    await conn.send(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHJvbWVvAHg=</auth>"
    )
    got = await conn.read_until(b"</failure>")
    assert b"<encryption-required/>" in got
    await conn.close()


async def test_plain_without_tls_is_encryption_required(make_server: Any) -> None:
    """TLS optional (``tls.required = false``): SCRAM is offered in the clear, PLAIN is
    not, and asking for it is ``encryption-required`` (RFC 6120 §6.4.5), where a
    mechanism the server has not at all is ``invalid-mechanism``."""
    server = await make_server(tls__required=False)
    conn = await RawConnection.open(server)
    await conn.send(HEADER)
    features = await conn.read_until(b"</stream:features>")
    assert b"<mechanism>SCRAM-SHA-256</mechanism>" in features
    assert b"<mechanism>PLAIN</mechanism>" not in features
    for mechanism, condition in (
        (b"PLAIN", b"<encryption-required/>"),
        (b"X-UNHEARD-OF", b"<invalid-mechanism/>"),
    ):
        seen = len(conn.received)
        await conn.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='"
            + mechanism
            + b"'>AHJvbWVvAHg=</auth>"
        )
        await conn.read_until(b"</failure>")
        answer = conn.received[seen:]
        assert condition in answer, answer
        conn.received = b""
    await conn.close()


async def test_ipv4_and_ipv6_on_one_port(make_server: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = await make_server(c2s__hosts=["127.0.0.1", "::1"], c2s__port=port, c2s__tls_port=-1)
    for host in ("127.0.0.1", "::1"):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(HEADER)
        got = b""
        while b"</stream:features>" not in got:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk, f"no features over {host}"
            got += chunk
        writer.close()
    assert server.ports["c2s"] == port


async def test_port_zero_is_one_port_for_every_host(make_server: Any) -> None:
    """Port 0 picks a free port, the same one on each address listened on (both
    listeners), so the one number in ``server.ports`` reaches every host."""
    server = await make_server(c2s__hosts=["127.0.0.1", "::1"], c2s__port=0, c2s__tls_port=0)
    for host in ("127.0.0.1", "::1"):
        reader, writer = await asyncio.open_connection(host, server.ports["c2s"])
        writer.write(HEADER)
        assert b"<stream:features>" in await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
        ctx = client_tls_context(server.config.data_dir)
        _r, tls = await asyncio.open_connection(
            host, server.ports["c2s_tls"], ssl=ctx, server_hostname="localhost"
        )
        assert tls.get_extra_info("ssl_object") is not None, host
        tls.close()
