"""ALPN on the direct TLS port (XEP-0368 §3, RFC 7301 §3.2).

A client that names protocols in its ClientHello and not ``xmpp-client`` (an HTTP/2
client sent to the XMPP port, or ``xmpp-server``, which this server does not serve) gets
a fatal ``no_application_protocol`` alert and no handshake: the defence against
cross-protocol attacks such as ALPACA, which Python's ``ssl`` does not make on its own
(it finishes the handshake without ALPN, as for a client that offered none).  A client
that offers no ALPN at all is served, as before XEP-0368 named the protocol.

The ClientHellos here are the ones Python's ``ssl`` (OpenSSL) writes, taken out of a
memory BIO, so the reader is tested on what clients send."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

import pytest

from tests.server.conftest import DOMAIN, HEADER, client_tls_context
from tests.server.test_connection_limits import _none_left
from xmppx.server import XMPPServer
from xmppx.server.tls import CLIENT_HELLO_MAX_BYTES, NEED_MORE, UNREADABLE, client_hello_alpn


def _client_hello(alpn: list[str] | None, ctx: ssl.SSLContext | None = None) -> bytes:
    """The bytes of the ClientHello a Python client with these ALPN names sends first."""
    if ctx is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=DOMAIN)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _in_records(hello: bytes, size: int) -> bytes:
    """The handshake message of ``hello`` (one record) framed again in records of at
    most ``size`` bytes each: RFC 8446 §5.1 lets a handshake message span records."""
    assert hello[0] == 22
    message = hello[5 : 5 + int.from_bytes(hello[3:5], "big")]
    out = b""
    for i in range(0, len(message), size):
        part = message[i : i + size]
        out += hello[:3] + len(part).to_bytes(2, "big") + part
    return out


# -- reading the ClientHello ------------------------------------------------------------
@pytest.mark.parametrize(
    ("offered", "read"),
    [
        (["xmpp-client"], (b"xmpp-client",)),
        (["h2", "http/1.1"], (b"h2", b"http/1.1")),
        (["xmpp-server", "xmpp-client"], (b"xmpp-server", b"xmpp-client")),
        (None, None),
    ],
)
def test_the_alpn_names_are_read_from_a_client_hello(
    offered: list[str] | None, read: tuple[bytes, ...] | None
) -> None:
    hello = _client_hello(offered)
    assert client_hello_alpn(hello) == read
    assert client_hello_alpn(hello + b"\x17\x03\x03") == read, "what follows is not read"


def test_a_client_hello_cut_anywhere_needs_more() -> None:
    hello = _client_hello(["h2"])
    for cut in range(len(hello)):
        assert client_hello_alpn(hello[:cut]) is NEED_MORE, cut


def test_a_client_hello_across_records() -> None:
    """RFC 8446 §5.1: a handshake message may be split over several records."""
    hello = _client_hello(["h2", "xmpp-client"])
    for size in (1, 3, 40, 200):
        framed = _in_records(hello, size)
        assert client_hello_alpn(framed) == (b"h2", b"xmpp-client"), size
        assert client_hello_alpn(framed[:-1]) is NEED_MORE, size


def test_an_empty_record_is_read_as_nothing() -> None:
    """RFC 8446 §5.1 forbids empty handshake records, but OpenSSL reads one as
    nothing; so does the check, or a man in the middle could add one to hide the list
    (the cutting of a handshake message into records is not covered by the handshake)."""
    hello = _client_hello(["http/1.1"])
    empty = hello[:3] + b"\x00\x00"
    assert client_hello_alpn(empty + hello) == (b"http/1.1",)
    framed = _in_records(hello, 100)
    split = framed[: 5 + 100] + empty + framed[5 + 100 :]
    assert client_hello_alpn(split) == (b"http/1.1",)
    assert client_hello_alpn(empty * 10) is NEED_MORE
    assert client_hello_alpn(empty * (CLIENT_HELLO_MAX_BYTES // 5 + 1)) is UNREADABLE


@pytest.mark.parametrize(
    "data",
    [
        HEADER,  # XML where a ClientHello belongs
        b"\x80\x2e\x01\x00\x02",  # an SSL 2 ClientHello header
        b"\x15\x03\x03\x00\x02\x02\x28",  # an alert record
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",  # a ServerHello, not a ClientHello
        b"\x16\x03\x01\x40\x01",  # a record longer than TLS allows
        b"\x16\x03\x01\x00\x04\x01\x00\x80\x00",  # a ClientHello of 32 KiB
    ],
)
def test_what_is_not_a_readable_client_hello_is_unreadable(data: bytes) -> None:
    assert client_hello_alpn(data) is UNREADABLE


def test_a_malformed_alpn_list_is_unreadable() -> None:
    """The list's length or a name's length running past the extension."""
    hello = _client_hello(["h2"])
    at = hello.find(b"\x00\x10\x00\x05\x00\x03\x02h2")  # type 16, sizes 5, 3, 2
    assert at > 0
    broken = hello[: at + 6] + b"\x09" + hello[at + 7 :]  # "h2" said to be 9 bytes
    assert client_hello_alpn(broken) is UNREADABLE


# -- the server --------------------------------------------------------------------------
def _alpn_context(server: XMPPServer, alpn: list[str] | None) -> ssl.SSLContext:
    ctx = client_tls_context(server.config.data_dir)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


async def _open(
    server: XMPPServer, alpn: list[str] | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection(
            "127.0.0.1",
            server.ports["c2s_tls"],
            ssl=_alpn_context(server, alpn),
            server_hostname=DOMAIN,
        ),
        5,
    )


@pytest.mark.parametrize("alpn", [["h2"], ["http/1.1", "h2"], ["xmpp-server"]])
async def test_an_alpn_list_without_xmpp_client_is_refused_with_the_alert(
    make_server: Any, alpn: list[str]
) -> None:
    server = await make_server()
    with pytest.raises(ssl.SSLError) as refused:
        await _open(server, alpn)
    assert "alert no application protocol" in str(refused.value), refused.value
    await _none_left(server)


@pytest.mark.parametrize(
    ("alpn", "selected"),
    [(["xmpp-client"], "xmpp-client"), (["h2", "xmpp-client"], "xmpp-client"), (None, None)],
)
async def test_xmpp_client_or_no_alpn_is_served(
    make_server: Any, alpn: list[str] | None, selected: str | None
) -> None:
    server = await make_server()
    reader, writer = await _open(server, alpn)
    tls = writer.get_extra_info("ssl_object")
    assert tls.selected_alpn_protocol() == selected
    writer.write(HEADER)
    got = b""
    async with asyncio.timeout(5):
        while b"</stream:features>" not in got:
            chunk = await reader.read(65536)
            assert chunk, got
            got += chunk
    assert b"<mechanisms" in got
    writer.close()
    await _none_left(server)


async def _raw_tls(
    server: XMPPServer, alpn: list[str], pieces: list[int], *, prefix: bytes = b""
) -> bytes:
    """A handshake over a plain socket, its ClientHello (after ``prefix``, bytes a man in
    the middle adds) written in ``pieces`` (byte counts) 50 ms apart; returns the ALPN
    protocol selected, or raises the ``SSLError`` the server's answer gives."""
    ctx = _alpn_context(server, alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=DOMAIN)
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", server.ports["c2s_tls"]), timeout=5)
    sock.setblocking(False)
    try:
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = prefix + outgoing.read()
        assert sum(pieces) < len(hello)
        at = 0
        for n in [*pieces, len(hello)]:
            await loop.sock_sendall(sock, hello[at : at + n])
            at += n
            await asyncio.sleep(0.05)
        async with asyncio.timeout(5):
            while True:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    raise ConnectionError("closed without an answer")
                incoming.write(data)
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                else:
                    return (tls.selected_alpn_protocol() or "").encode()
                await loop.sock_sendall(sock, outgoing.read())
    finally:
        sock.close()


async def test_a_client_hello_in_pieces_is_waited_for(make_server: Any) -> None:
    """TCP may deliver the ClientHello in pieces: the server waits for all of it, for
    the refusal and for the handshake alike."""
    server = await make_server()
    with pytest.raises(ssl.SSLError) as refused:
        await _raw_tls(server, ["h2"], [3, 60])
    assert "alert no application protocol" in str(refused.value), refused.value
    assert await _raw_tls(server, ["xmpp-client"], [1, 5, 100]) == b"xmpp-client"
    await _none_left(server)


async def test_an_empty_record_does_not_hide_the_alpn_list(make_server: Any) -> None:
    """A man in the middle inserting an empty handshake record before the ClientHello
    (OpenSSL reads it as nothing) gets the alert all the same."""
    server = await make_server()
    with pytest.raises(ssl.SSLError) as refused:
        await _raw_tls(server, ["http/1.1"], [], prefix=b"\x16\x03\x01\x00\x00")
    assert "alert no application protocol" in str(refused.value), refused.value
    await _none_left(server)


async def test_what_is_not_a_client_hello_is_closed(make_server: Any) -> None:
    server = await make_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["c2s_tls"])
    writer.write(b"\x15\x03\x03\x00\x02\x01\x00")  # a warning alert first
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b"\x15\x03\x03\x00\x02\x02\x78"
    writer.close()
    await _none_left(server)


async def test_a_client_hello_never_finished_is_dropped_at_the_header_timeout(
    make_server: Any,
) -> None:
    server = await make_server(limits__header_timeout=0.4)
    hello = _client_hello(["xmpp-client"])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["c2s_tls"])
    writer.write(hello[:20])
    # closed with the hello unread: a reset or an end of file, and nothing else
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""
    writer.close()
    await _none_left(server)
