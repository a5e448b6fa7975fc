"""Abuse (issue 3 §10): password guessing is slowed, slow readers and silent clients are
dropped, floods meet back-pressure instead of growing queues, and after each the server
serves a fresh client normally with its memory back where it was."""

from __future__ import annotations

import asyncio
import gc
import itertools
import tracemalloc
from typing import Any

import pytest

from tests.server.conftest import HEADER, PASSWORD, RawConnection, client_tls_context
from xmppx import ns
from xmppx.client import AuthenticationError, Client, StreamClosedError
from xmppx.core import Element
from xmppx.server import XMPPServer
from xmppx.server._throttle import AuthThrottle


def test_two_hundred_wrong_passwords_take_over_a_minute() -> None:
    """The schedule, computed: failures from one address (or against one account) are
    answered no earlier than the growing delays add up to."""
    throttle = AuthThrottle(base=0.1, cap=5.0)
    waits = [throttle.failure("romeo@localhost", "192.0.2.1") for _ in range(200)]
    assert waits[0] >= 0.099
    assert all(b >= a for a, b in itertools.pairwise(waits)), "delays only grow"
    assert waits[-1] >= 60.0, f"the 200th failure is answered after {waits[-1]:.0f} s"
    # another account from another address starts from the first delay
    assert throttle.failure("juliet@localhost", "198.51.100.7") < 0.2


def test_throttle_memory_is_bounded() -> None:
    from xmppx.server import _throttle

    throttle = AuthThrottle(base=0.1, cap=1.0)
    for i in range(_throttle.MAX_TRACKED + 500):
        throttle.failure(None, f"addr{i}")
    assert len(throttle._keys) <= _throttle.MAX_TRACKED


async def connect(server: XMPPServer, jid: str, password: str = PASSWORD, **kw: Any) -> Client:
    return await Client.connect(
        jid,
        password,
        host=kw.pop("host", "127.0.0.1"),
        port=server.ports["c2s"],
        ssl_context=client_tls_context(server.config.data_dir),
        **kw,
    )


async def test_guessing_is_slowed_but_the_right_password_elsewhere_works_at_once(
    make_server: Any,
) -> None:
    server = await make_server(auth__throttle_base_ms=3000, auth__throttle_max_ms=3000)
    loop = asyncio.get_running_loop()
    attacker_done: asyncio.Future[float] = loop.create_future()

    async def attack() -> None:
        started = loop.time()
        with pytest.raises(AuthenticationError):
            await connect(server, "juliet@localhost", "guess", mechanisms=["SCRAM-SHA-256"])
        attacker_done.set_result(loop.time() - started)

    attack_task = asyncio.create_task(attack())
    await asyncio.sleep(0.3)  # the attacker's failure is now being held back
    owner = await connect(server, "juliet@localhost", local_addr=("127.0.0.2", 0))
    assert not attacker_done.done(), "the real owner must not wait behind the attacker"
    await owner.close()
    assert await asyncio.wait_for(attacker_done, 10) >= 3.0
    await attack_task


async def test_silent_client_is_dropped_after_ping_timeout(make_server: Any) -> None:
    server = await make_server(ping__interval=0.3, ping__timeout=0.4)
    silent = await connect(server, "romeo@localhost", answer_pings=False)
    deadline = asyncio.get_running_loop().time() + 10
    while not silent.closed and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert silent.closed
    assert isinstance(silent.error, StreamClosedError)
    assert "connection-timeout" in str(silent.error)


def _message(to: str, body: str) -> Element:
    msg = Element("message", ns.CLIENT, {"to": to, "type": "chat"})
    msg.append(Element("body", ns.CLIENT, text=body))
    return msg


async def test_slow_reader_is_dropped_and_its_queue_stays_bounded(make_server: Any) -> None:
    limit = 256 * 1024
    # the sender is not rate-limited here: this is about the reader
    server = await make_server(limits__write_buffer_bytes=limit, limits__c2s_rate=0)
    reader = await connect(server, "juliet@localhost/slow", queue_size=1)
    sender = await connect(server, "romeo@localhost/flood")
    bounced = 0

    async def read_bounces() -> None:  # once the reader is gone, messages bounce
        nonlocal bounced
        while True:
            await sender.recv()
            bounced += 1

    reading = asyncio.create_task(read_bounces())
    body = "x" * 2000
    peak = 0
    # enough to fill the kernel's socket buffers (several MB on loopback) and then ours
    for i in range(12000):
        sender.send(_message("juliet@localhost/slow", f"{i} {body}"))
        if i % 50 == 0:
            await sender.drain()
            for conn in server.connections:
                if conn.transport is not None and conn.bound and conn.jid.resource == "slow":
                    peak = max(peak, conn.transport.get_write_buffer_size())
    await sender.drain()
    await asyncio.sleep(0.5)
    assert peak <= limit + 64 * 1024, f"queue towards the slow reader reached {peak} bytes"
    assert all(c.jid is None or c.jid.resource != "slow" or c.closed for c in server.connections), (
        "the slow reader must have been dropped"
    )
    ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    ping.append(Element("ping", ns.PING))
    assert (await sender.iq(ping, timeout=10)).get("type") == "result"
    assert bounced > 0, "messages to the dropped reader bounce (RFC 6121 §8.5.2)"
    reading.cancel()
    await sender.close()
    await reader.close()


async def test_hostile_connections_leave_memory_where_it_was(server: XMPPServer) -> None:
    async def hostile_round() -> None:
        conns = [await RawConnection.open(server) for _ in range(20)]
        for i, c in enumerate(conns):
            payload = [
                HEADER + b"<iq>" + b"<a>" * 40,  # depth
                HEADER + b"<message>" + b"x" * 20_000,  # size
                b"<!DOCTYPE x>",  # restricted
                HEADER + b"<message><body>\xff</body></message>",
            ][i % 4]
            await c.send(payload)
        for c in conns:
            await c.read_to_eof()
            await c.close()
        await asyncio.sleep(0.1)

    await hostile_round()  # warm caches (certificate contexts, parser tables, ...)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(3):
            await hostile_round()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 200_000, f"memory grew by {grown} bytes over 60 hostile connections"
    assert not server.connections, "every hostile connection is gone"
    fresh = await connect(server, "romeo@localhost")
    await fresh.close()


async def test_flood_of_storage_bound_stanzas_is_met_by_pausing_reads(server: XMPPServer) -> None:
    """Stanzas whose handling waits on storage count against the connection; past
    MAX_PENDING_PER_CONNECTION it is no longer read, so the pending work stays bounded."""
    from xmppx.server._connection import MAX_PENDING_PER_CONNECTION

    flooder = await connect(server, "romeo@localhost/flood")
    conn = next(c for c in server.connections if c.bound and c.jid.resource == "flood")
    peak = 0
    for i in range(3 * MAX_PENDING_PER_CONNECTION):
        msg = Element("message", ns.CLIENT, {"to": "juliet@localhost", "type": "chat"})
        msg.append(Element("body", ns.CLIENT, text=f"while you were away {i}"))
        flooder.send(msg)  # juliet is offline: each one is stored
        if i % 16 == 0:
            await asyncio.sleep(0)
            peak = max(peak, conn._pending_work)
    ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    ping.append(Element("ping", ns.PING))
    assert (await flooder.iq(ping, timeout=30)).get("type") == "result"
    assert peak <= MAX_PENDING_PER_CONNECTION
    await flooder.close()


async def test_a_client_over_its_byte_rate_is_read_more_slowly(make_server: Any) -> None:
    """limits.c2s_rate / limits.c2s_burst: a token bucket per connection.  A client that
    sends 60 KB at 20 KB/s with a 10 KB burst is read no faster than the bucket allows
    (its ping after the 60 KB is read at least 2.5 s after it connected), loses nothing,
    and meanwhile another client is served at once."""
    server = await make_server(limits__c2s_rate=20_000, limits__c2s_burst=10_000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    flooder = await connect(server, "romeo@localhost/flood")
    conn = next(c for c in server.connections if c.bound and c.jid.resource == "flood")
    for i in range(30):  # 30 messages of 2 KB to itself
        msg = Element("message", ns.CLIENT, {"to": "romeo@localhost/flood", "id": str(i)})
        msg.append(Element("body", ns.CLIENT, text=f"{i:04d}" + "x" * 2000))
        flooder.send(msg)
    echoed = [await flooder.recv(timeout=30) for _ in range(30)]
    assert [m.get("id") for m in echoed] == [str(i) for i in range(30)]
    assert conn._paused_for_rate, "60 KB against a 10 KB burst: in debt"

    ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    ping.append(Element("ping", ns.PING))
    flooder_ping = asyncio.create_task(flooder.iq(ping, timeout=30))
    other = await connect(server, "juliet@localhost")
    other_ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    other_ping.append(Element("ping", ns.PING))
    assert (await other.iq(other_ping, timeout=30)).get("type") == "result"
    assert not flooder_ping.done(), "the other client is not held back by the flooder's debt"
    assert (await flooder_ping).get("type") == "result"
    # every byte before the ping was read first: 60 KB - 10 KB burst at 20 KB/s
    assert loop.time() - started >= 2.5
    for _ in range(100):  # the last read put it in debt again, for a few milliseconds
        if not conn._paused_for_rate:
            break
        await asyncio.sleep(0.05)
    assert not conn._paused_for_rate and conn._reading
    await other.close()
    await flooder.close()


async def test_no_rate_limit_with_c2s_rate_zero(make_server: Any) -> None:
    server = await make_server(limits__c2s_rate=0, limits__c2s_burst=1)
    flooder = await connect(server, "romeo@localhost/flood")
    conn = next(c for c in server.connections if c.bound and c.jid.resource == "flood")
    for i in range(30):
        msg = Element("message", ns.CLIENT, {"to": "romeo@localhost/flood", "id": str(i)})
        msg.append(Element("body", ns.CLIENT, text="x" * 2000))
        flooder.send(msg)
    echoed = [await flooder.recv(timeout=30) for _ in range(30)]
    assert len(echoed) == 30
    assert not conn._paused_for_rate and conn._rate_timer is None
    await flooder.close()
