"""Fixtures for end-to-end server tests: a real ``XMPPServer`` in-process on ephemeral
loopback ports with a temp data dir and SQLite, reached over real TCP and TLS by slixmpp
(the reference client) and by raw sockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import slixmpp

from xmppx import ns
from xmppx.client import Client
from xmppx.core import parse_jid
from xmppx.server import XMPPServer, load_config
from xmppx.server.accounts import create_account

DOMAIN = "localhost"
PASSWORD = "correct horse battery staple"


def make_config(tmp_path: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "c2s__hosts": ["127.0.0.1"],
        "c2s__port": 0,
        "c2s__tls_port": 0,
        "log__level": "debug",
    }
    values.update(overrides)
    return load_config(None, **values)


@pytest.fixture
def server_storage_url() -> str | None:
    """The storage servers use: ``None`` for the default (SQLite in the data dir).  The
    IM and MUC suites override it to run on both drivers."""
    return None


@pytest.fixture
async def make_server(
    tmp_path: Path, server_storage_url: str | None
) -> AsyncIterator[Callable[..., Any]]:
    """Start servers with config overrides; all are stopped at the end of the test.  A
    server started again in the same test finds the same data (dir and database)."""
    servers: list[XMPPServer] = []

    async def start(users: tuple[str, ...] = ("romeo", "juliet"), **overrides: Any) -> XMPPServer:
        if server_storage_url is not None:
            overrides.setdefault("storage", server_storage_url)
        server = XMPPServer(make_config(tmp_path, **overrides))
        await server.start()
        servers.append(server)
        for user in users:
            if not await server.storage.accounts.exists(f"{user}@{DOMAIN}"):
                await create_account(server.storage, parse_jid(f"{user}@{DOMAIN}"), PASSWORD)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(make_server: Callable[..., Any]) -> XMPPServer:
    result: XMPPServer = await make_server()
    return result


def client_tls_context(data_dir: Path) -> ssl.SSLContext:
    """Trust exactly the self-signed certificate the server made in ``data_dir``."""
    ctx = ssl.create_default_context(cafile=str(data_dir / f"{DOMAIN}.crt"))
    ctx.check_hostname = True
    return ctx


async def slix_connect(
    server: XMPPServer,
    jid: str,
    password: str = PASSWORD,
    *,
    direct_tls: bool = False,
    plugins: tuple[str, ...] = (),
    timeout: float = 10.0,
    expect_failure: bool = False,
) -> slixmpp.ClientXMPP:
    """A slixmpp client logged in (``session_start`` seen), or, with
    ``expect_failure``, one whose authentication failed."""
    client = slixmpp.ClientXMPP(jid, password)
    client.ssl_context = client_tls_context(server.config.data_dir)
    for plugin in plugins:
        client.register_plugin(plugin)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def finish(result: str) -> None:
        if not done.done():
            done.set_result(result)

    client.add_event_handler("session_start", lambda _: finish("session_start"))
    client.add_event_handler("failed_all_auth", lambda _: finish("failed_auth"))
    client.add_event_handler("disconnected", lambda _: finish("disconnected"))
    if direct_tls:
        client.enable_direct_tls = True
        client.enable_starttls = False
        port = server.ports["c2s_tls"]
    else:
        port = server.ports["c2s"]
    client.connect("127.0.0.1", port)
    result = await asyncio.wait_for(done, timeout)
    if expect_failure:
        assert result != "session_start", "authentication unexpectedly succeeded"
    else:
        assert result == "session_start", f"login of {jid} ended with {result}"
    return client


async def xmppx_login(server: XMPPServer, jid: str, password: str = PASSWORD, **kw: Any) -> Client:
    """An ``xmppx.client.Client`` logged in over STARTTLS (``kw``: ``Client.connect``'s
    options, e.g. ``lang``, ``queue_size``)."""
    return await Client.connect(
        jid,
        password,
        host=kw.pop("host", "127.0.0.1"),
        port=server.ports["c2s"],
        ssl_context=client_tls_context(server.config.data_dir),
        **kw,
    )


async def slix_close(client: slixmpp.ClientXMPP) -> None:
    client.disconnect()
    try:
        await asyncio.wait_for(client.disconnected, 5)
    except TimeoutError:
        client.abort()


class RawConnection:
    """A raw TCP connection for stream-level tests: send bytes, read what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = b""

    @classmethod
    async def open(
        cls, server: XMPPServer, port_name: str = "c2s", *, receive_window: int | None = None
    ) -> RawConnection:
        """Plain TCP to ``port_name``; ``c2s_tls`` opens a direct TLS connection.
        ``receive_window``: the socket's receive buffer, in bytes (a client on a poor
        link, whose server soon has its own buffers full)."""
        ctx = client_tls_context(server.config.data_dir) if port_name == "c2s_tls" else None
        sock = socket.socket()
        if receive_window is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_window)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.ports[port_name]))
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=ctx, server_hostname=DOMAIN if ctx is not None else None
        )
        return cls(reader, writer)

    @classmethod
    async def authenticated(
        cls, server: XMPPServer, user: str = "romeo", *, receive_window: int | None = None
    ) -> RawConnection:
        """``user`` over direct TLS, past SASL PLAIN and the stream restart (RFC 6120
        §6.4.6), at the features that offer binding."""
        raw = await cls.open(server, "c2s_tls", receive_window=receive_window)
        await raw.send(HEADER)
        await raw.read_until(b"</stream:features>")
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
        await raw.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode())
        await raw.read_until(b"<success")
        raw.received = b""
        await raw.send(HEADER)
        await raw.read_until(b"</stream:features>")
        raw.received = b""
        return raw

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Read until ``marker`` has been received (or EOF); return everything so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while marker not in self.received:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{marker!r} not received; got {self.received!r}")
            chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
            if not chunk:
                break
            self.received += chunk
        return self.received

    async def read_to_eof(self, timeout: float = 5.0, *, answer: bool = True) -> bytes:
        """Read until the server closes the connection.  With ``answer``, behave as a
        client should (RFC 6120 §4.4): answer the server's ``</stream:stream>`` with
        ours, which is what the server waits for before it closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        answered = not answer
        while True:
            if not answered and b"</stream:stream>" in self.received:
                answered = True
                with contextlib.suppress(ConnectionError):
                    await self.send(b"</stream:stream>")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"connection not closed; got {self.received!r}")
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
            except ConnectionResetError:
                return self.received
            if not chunk:
                return self.received
            self.received += chunk

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


HEADER = (
    b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
