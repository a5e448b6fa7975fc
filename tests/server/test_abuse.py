"""Abuse (issue 3 §10): password guessing is slowed, slow readers and silent clients are
dropped, floods meet back-pressure instead of growing queues, and after each the server
serves a fresh client normally with its memory back where it was."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import tracemalloc
from typing import Any

from tests.server.conftest import HEADER, PASSWORD, RawConnection, xmppx_login
from xmppx import ns
from xmppx.client import StreamClosedError
from xmppx.core import Element, parse
from xmppx.server import XMPPServer
from xmppx.server._throttle import AuthThrottle


class _Clock:
    """Time for the throttle's schedule, moved on by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_hundred_guesses_take_over_a_minute_however_parallel() -> None:
    """The schedule, computed: 20 guessers at once against one account, each trying
    again as soon as it may.  A password is checked only in its turn, the turns are
    spaced by the growing delays, and a guess whose turn is more than ``cap`` away is
    not checked at all."""
    clock = _Clock()
    throttle = AuthThrottle(base=0.1, cap=5.0, clock=clock)
    checked = refused = 0
    while checked < 200:
        turns = [throttle.turn("romeo@localhost", f"192.0.2.{i}") for i in range(20)]
        refused += turns.count(None)
        waits = sorted(w for w in turns if w is not None)
        assert waits, "at least the next turn is within the cap"
        # each one checked in its turn, every one a wrong password
        for _ in waits:
            throttle.failure("romeo@localhost", "192.0.2.1")
            checked += 1
        clock.now += waits[-1] + 0.001
    assert clock.now - 1000.0 >= 60.0, f"200 guesses took {clock.now - 1000.0:.0f} s"
    assert refused > checked, "most parallel guesses are turned away unchecked"
    # another account from another address is checked at once
    assert throttle.turn("juliet@localhost", "198.51.100.7") == 0.0


def test_a_correct_password_waits_its_turn_too() -> None:
    """The turn comes before the check, whatever the password: a guesser learns nothing
    from an answer that comes at once."""
    clock = _Clock()
    throttle = AuthThrottle(base=0.5, cap=2.0, clock=clock)
    assert throttle.turn("romeo@localhost", "192.0.2.1") == 0.0
    throttle.failure("romeo@localhost", "192.0.2.1")
    # the account's next check is half a second away, from any address, and each
    # one after it is another delay later
    waits = [throttle.turn("romeo@localhost", f"198.51.100.{i}") for i in range(5)]
    assert waits == [0.5, 1.0, 1.5, 2.0, None], "beyond the cap: not checked at all"
    clock.now += 1000.0  # a quarter of an hour later the account starts afresh
    assert throttle.turn("romeo@localhost", "198.51.100.9") == 0.0


def test_throttle_memory_is_bounded() -> None:
    from xmppx.server import _throttle

    throttle = AuthThrottle(base=0.1, cap=1.0)
    for i in range(_throttle.MAX_TRACKED + 500):
        throttle.failure(None, f"addr{i}")
    assert len(throttle._keys) <= _throttle.MAX_TRACKED


connect = xmppx_login


async def _plain(server: XMPPServer, password: str, patience: float) -> bytes | None:
    """One SASL PLAIN login for juliet over direct TLS: the answer, or None when none
    came within ``patience`` seconds (the guesser gives up and tries again)."""
    raw = await RawConnection.open(server, "c2s_tls")
    try:
        await raw.send(HEADER)
        await raw.read_until(b"</stream:features>")
        raw.received = b""
        token = base64.b64encode(f"\0juliet\0{password}".encode()).decode()
        await raw.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode())
        try:
            return await raw.read_until(b"</", timeout=patience)
        except (AssertionError, TimeoutError):
            return None
    finally:
        raw.writer.transport.abort()  # as a guesser does: no goodbye


async def test_a_guesser_that_gives_up_on_slow_answers_gains_nothing(make_server: Any) -> None:
    """Eight guessers at once, each giving up after 0.1 s and trying again: in 2.5 s
    they learn one wrong password, the first; every later one waits its turn (or is
    turned away with ``temporary-auth-failure``, RFC 6120 §6.5.12) before it is checked,
    so giving up early tells nothing.  The real owner, during the attack, either gets in after
    waiting its turn or is told to try later, never told the password is wrong; after
    the attack it gets in."""
    server = await make_server(auth__throttle_base_ms=400, auth__throttle_max_ms=1000)
    loop = asyncio.get_running_loop()
    stop = loop.time() + 2.5
    tried = learned = 0

    async def guesser(n: int) -> None:
        nonlocal tried, learned
        while loop.time() < stop:
            tried += 1
            answer = await _plain(server, f"guess{n}-{tried}", patience=0.1)
            assert answer is None or b"<success" not in answer
            learned += answer is not None and b"<not-authorized/>" in answer

    guessers = [asyncio.create_task(guesser(n)) for n in range(8)]
    await asyncio.sleep(1.0)
    owner = await _plain(server, PASSWORD, patience=3.0)
    assert owner is not None
    assert b"<success" in owner or b"<temporary-auth-failure/>" in owner, owner
    await asyncio.gather(*guessers)
    # only the first guess is answered within 0.1 s: every later turn is 0.4 s or more
    # away, and the server does not check a password for a client that has gone
    assert learned <= 1, f"the guessers learned {learned} wrong passwords in 2.5 s"
    assert tried >= 20, tried
    await asyncio.sleep(1.1)  # past the last turn taken
    owner = await _plain(server, PASSWORD, patience=3.0)
    assert owner is not None and b"<success" in owner, owner


async def test_silent_client_is_dropped_after_ping_timeout(make_server: Any) -> None:
    server = await make_server(ping__interval=0.3, ping__timeout=0.4)
    silent = await connect(server, "romeo@localhost", answer_pings=False)
    deadline = asyncio.get_running_loop().time() + 10
    while not silent.closed and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert silent.closed
    assert isinstance(silent.error, StreamClosedError)
    assert "connection-timeout" in str(silent.error)


def _body(message: Element) -> str | None:
    return message.findtext(ns.clark(ns.CLIENT, "body"))


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


async def test_what_is_routed_to_a_dropped_reader_meanwhile_is_not_lost(make_server: Any) -> None:
    """A slow reader's connection is cut the moment our queue for it passes
    ``write_buffer_bytes``; asyncio reports that a loop turn later.  The messages routed
    to it in between go where messages to an account without that session go (offline
    storage here), as every later one does: the messages that never reach storage are
    only those written before the cut (which, without XEP-0198, nobody can know the
    client never read)."""
    limit = 256 * 1024
    server = await make_server(
        limits__write_buffer_bytes=limit, limits__c2s_rate=0, offline__quota=100_000
    )
    reader = await connect(server, "juliet@localhost/slow", queue_size=1)
    sender = await connect(server, "romeo@localhost/flood")
    body = "x" * 2000
    (slow,) = (c for c in server.connections if c.bound and c.jid.resource == "slow")
    written_at_start = slow.stanzas_out

    def slow_gone() -> bool:
        return not any(
            c.bound and c.jid.resource == "slow" and not c.closed for c in server.connections
        )

    sent = 0
    after_drop = 0
    while after_drop < 50:
        assert sent < 20000, "the slow reader was never dropped"
        # one write of many stanzas: the server reads them in large chunks, so the cut
        # falls among stanzas read together
        for _ in range(200):
            sender.send(_message("juliet@localhost/slow", f"{sent} {body}"))
            sent += 1
        await sender.drain()
        if slow_gone():
            after_drop += 200
    # the server has read and routed every message once it answers a ping sent after them
    ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    ping.append(Element("ping", ns.PING))
    assert (await sender.iq(ping, timeout=30)).get("type") == "result"
    bounced: set[int] = set()
    with contextlib.suppress(TimeoutError):
        while True:
            got = await sender.recv(timeout=1.0)
            if got.name == "message" and (text := _body(got)) is not None:
                bounced.add(int(text.split()[0]))
    # and once storage has stopped growing, every message sent on is there
    stored: set[int] = set()
    for _ in range(50):
        records = await server.storage.offline.fetch("juliet@localhost")
        now = {int((_body(parse(r.stanza)) or "-1").split()[0]) for r in records}
        if now and now == stored:
            break
        stored = now
        await asyncio.sleep(0.2)
    assert stored, "no message after the cut reached storage"
    assert not stored & bounced
    # the cut came after the message that overflowed the queue was written
    written = slow.stanzas_out - written_at_start
    assert 0 < written < sent
    lost = set(range(written, sent)) - stored - bounced
    assert not lost, f"{len(lost)} lost after the cut, the first {min(lost)}"
    assert not (stored | bounced) & set(range(written)), "written and also sent on"
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


async def test_a_client_read_slowly_is_not_taken_for_a_silent_one(make_server: Any) -> None:
    """While reading is paused for its rate, a client's answer to a ping waits unread:
    the server must not drop it as silent (``connection-timeout``); it is read on and
    answered, the stream open."""
    server = await make_server(
        limits__c2s_rate=2048, limits__c2s_burst=2048, ping__interval=0.3, ping__timeout=0.3
    )
    flooder = await connect(server, "romeo@localhost/flood")
    conn = next(c for c in server.connections if c.bound and c.jid.resource == "flood")
    for i in range(4):  # 8 KB against a 2 KB burst at 2 KB/s: about 3 s in debt
        msg = Element("message", ns.CLIENT, {"to": "romeo@localhost/flood", "id": str(i)})
        msg.append(Element("body", ns.CLIENT, text="x" * 2000))
        flooder.send(msg)
    echoed = [await flooder.recv(timeout=30) for _ in range(4)]
    assert [m.get("id") for m in echoed] == ["0", "1", "2", "3"]
    ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
    ping.append(Element("ping", ns.PING))
    assert (await flooder.iq(ping, timeout=30)).get("type") == "result"
    assert not conn.closed and not flooder.closed, "dropped while it was only read slowly"
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
