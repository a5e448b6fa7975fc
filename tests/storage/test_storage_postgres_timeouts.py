"""A PostgreSQL server that stops answering (``storage.timeout``): a store call fails with
a ``StorageError`` that says so, within the timeout, instead of hanging the server; once
the database answers again, so does the storage.  The database is the test cluster,
reached through a loopback relay that can stop passing bytes on, as a frozen or
unreachable server would."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio

from xmppx.storage import StorageConfigError, StorageError, open_storage

pytestmark = pytest.mark.asyncio


class Relay:
    """A loopback TCP relay to ``host:port``; while ``held``, nothing passes on."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                await self.flowing.wait()
                dst.write(data)
                await dst.drain()
        dst.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest_asyncio.fixture
async def relayed(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Relay, str]]:
    """The relay, and the test cluster's URL through it."""
    server = request.getfixturevalue("postgres_server")
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    relay = Relay(parts.hostname, parts.port)
    port = await relay.start()
    netloc = f"{parts.username}@127.0.0.1:{port}"
    try:
        yield relay, urlunsplit(parts._replace(netloc=netloc))
    finally:
        relay.flowing.set()
        await relay.stop()


async def test_a_database_that_stops_answering_fails_calls_within_the_timeout(
    relayed: tuple[Relay, str],
) -> None:
    relay, url = relayed
    storage = await open_storage(url, timeout=1.0, pool_size=1)
    try:
        assert await storage.accounts.exists("nobody@localhost") is False
        relay.flowing.clear()
        started = time.monotonic()
        with pytest.raises(StorageError, match="did not answer within 1 s"):
            await storage.accounts.exists("nobody@localhost")
        assert time.monotonic() - started < 10
        relay.flowing.set()
        # answering again: the next calls work (the pool replaces what it must)
        for _ in range(50):  # bounded: a few tries while a connection is replaced
            try:
                assert await storage.accounts.exists("nobody@localhost") is False
                break
            except StorageError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the storage did not recover once the database answered")
    finally:
        await storage.close()


async def test_a_server_that_never_answers_at_start_is_named_with_the_wait() -> None:
    """Startup against an address that accepts connections and says nothing."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(StorageConfigError) as info:
            await open_storage(f"postgresql://xmppx:hunter2@127.0.0.1:{port}/xmppx", timeout=0.5)
        message = str(info.value)
        assert "no answer within 0.5 s" in message
        assert "hunter2" not in message
    finally:
        server.close()
        await server.wait_closed()


async def test_closing_does_not_wait_for_a_database_that_stopped_answering(
    relayed: tuple[Relay, str],
) -> None:
    relay, url = relayed
    storage = await open_storage(url, timeout=1.0, pool_size=2)
    assert await storage.accounts.exists("nobody@localhost") is False
    relay.flowing.clear()
    started = time.monotonic()
    await asyncio.wait_for(storage.close(), 10)
    assert time.monotonic() - started < 5
