"""Worker side of the issue-4 (RFC 6121 IM) and issue-5 (XEP-0045) scenarios.

As in the chat phase (``_gen``), clients log in through ``xmppx.client.Client`` and their
bound transport is then handed to a raw protocol that writes pre-serialized bytes and
scans what arrives with regular expressions, without building XML trees: what is
measured is the server, not the generator's parser.  Every scan keeps the bytes after the
last ``>`` for the next read, so a tag or a body split across reads is seen once, whole.

- presence storm: ``_PresenceConn`` reads the ``from`` and ``type`` of every
  ``<presence>`` start tag and notes when each contact was first seen available;
- roster fetch: ``_IqConn`` times one ``jabber:iq:roster`` get until its ``</iq>``;
- offline flush: ``_OfflineConn`` sends numbered messages, or reads them back and checks
  their order;
- MUC: ``_MucConn`` joins (waiting for its own occupant presence), configures an instant
  room (creators) and counts the groupchat copies that arrive with their send stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ._gen import CHAT_WRITE_LIMIT, CLOSE_TIMEOUT, Creds, _ChatStats, offer_round_robin

if TYPE_CHECKING:
    from ._gen import _Worker

__all__ = ["ImWorker"]

_PRESENCE_TAG: Final = re.compile(rb"<presence\b([^>]*)>")
_FROM: Final = re.compile(rb"""\sfrom=(?:'([^']*)'|"([^"]*)")""")
_TYPE: Final = re.compile(rb"""\stype=(?:'([^']*)'|"([^"]*)")""")
_ID: Final = re.compile(rb"""\sid=(?:'([^']*)'|"([^"]*)")""")
_IQ_TAG: Final = re.compile(rb"<iq\b([^>]*)>")
_MESSAGE_TAG: Final = re.compile(rb"<message\b([^>]*)>")
_STAMP: Final = re.compile(rb"XB(\d+)E")
_OFFLINE: Final = re.compile(rb"XO(\d+)\.(\d+)E")
_ITEM: Final = re.compile(rb"<item\b")
_SELF_CLOSED_IQ: Final = re.compile(rb"\s*<iq\b[^>]*/>")
_ERROR_TYPE: Final = re.compile(rb"""\stype=['"]error['"]""")
#: Longest incomplete tail kept between reads.
_MAX_PARTIAL: Final = 1 << 20
_MUC_NS: Final = "http://jabber.org/protocol/muc"


def _attr(regex: re.Pattern[bytes], attrs: bytes) -> bytes | None:
    m = regex.search(attrs)
    if m is None:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2)


class _Raw(asyncio.Protocol):
    """A bound stream taken over from ``Client``: ``scan`` sees complete tags only."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.partial = b""
        self.lost = False
        self.bytes_in = 0

    def write(self, data: bytes) -> None:
        if not self.lost and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        buf = self.partial + data if self.partial else data
        end = buf.rfind(b">") + 1
        self.partial = buf[end:] if len(buf) - end <= _MAX_PARTIAL else b""
        if end:
            self.scan(buf[:end], time.monotonic())

    def scan(self, data: bytes, now: float) -> None:
        """Complete tags and text received at ``now``."""

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


# --- presence storm ------------------------------------------------------------------


class _PresenceConn(_Raw):
    """One storm client: which of its contacts it has seen available, and when."""

    def __init__(self, transport: asyncio.Transport, own_bare: str, contacts: int) -> None:
        super().__init__(transport)
        self.own = own_bare.encode()
        self.contacts = contacts
        self.seen: set[bytes] = set()
        self.available = 0  # presence stanzas without a type from others
        self.unavailable = 0
        self.own_presence = 0  # our own presence reflected (RFC 6121 §4.2.2)
        self.other = 0  # any other type (probe answers with errors, subscriptions...)
        self.complete_at: float | None = None
        self.last_at = 0.0

    @property
    def total(self) -> int:
        return self.available + self.unavailable + self.own_presence + self.other

    def scan(self, data: bytes, now: float) -> None:
        for m in _PRESENCE_TAG.finditer(data):
            attrs = m.group(1)
            sender = (_attr(_FROM, attrs) or b"").split(b"/", 1)[0]
            kind = _attr(_TYPE, attrs)
            self.last_at = now
            if sender == self.own:
                self.own_presence += 1
            elif kind is None:
                self.available += 1
                if sender not in self.seen:
                    self.seen.add(sender)
                    if len(self.seen) >= self.contacts and self.complete_at is None:
                        self.complete_at = now
            elif kind == b"unavailable":
                self.unavailable += 1
            else:
                self.other += 1


# --- roster fetch --------------------------------------------------------------------


class _IqConn(_Raw):
    """Sends one iq at a time and notes when its answer's ``</iq>`` (or a self-closed
    ``<iq/>``) has arrived; keeps the answer's bytes to count the items."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__(transport)
        self.waiting: asyncio.Future[float] | None = None
        self.answer = bytearray()

    def request(self, data: bytes) -> asyncio.Future[float]:
        self.answer.clear()
        self.waiting = asyncio.get_running_loop().create_future()
        self.write(data)
        return self.waiting

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self.waiting is None or self.waiting.done():
            return
        start = max(0, len(self.answer) - 4)
        self.answer += data
        if self.answer.find(b"</iq>", start) >= 0 or _SELF_CLOSED_IQ.match(self.answer):
            self.waiting.set_result(now)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(ConnectionError("connection lost"))


# --- offline messages ------------------------------------------------------------------


class _OfflineConn(_Raw):
    """Reads numbered messages ``XO<run>.<seq>E`` (of run ``run``), errors, pings."""

    def __init__(self, transport: asyncio.Transport, run: int) -> None:
        super().__init__(transport)
        self.run = str(run).encode()
        self.seqs: list[int] = []
        self.stale = 0  # numbered messages of an earlier run
        self.errors = 0  # <message type='error'> (a refused store, for instance)
        self.messages = 0
        self.first_at = 0.0
        self.last_at = 0.0
        self.expect = 0
        self.done: asyncio.Future[float] | None = None
        self.pong: dict[bytes, asyncio.Future[float]] = {}

    def scan(self, data: bytes, now: float) -> None:
        if self.pong:
            for m in _IQ_TAG.finditer(data):
                fut = self.pong.pop(_attr(_ID, m.group(1)) or b"", None)
                if fut is not None and not fut.done():
                    fut.set_result(now)
        if b"<message" not in data:
            return
        tags = _MESSAGE_TAG.findall(data)
        self.messages += len(tags)
        self.errors += sum(1 for t in tags if _ERROR_TYPE.search(t))
        found = False
        for run, seq in _OFFLINE.findall(data):
            if run == self.run:
                self.seqs.append(int(seq))
                found = True
            else:
                self.stale += 1
        if found:
            if not self.first_at:
                self.first_at = now
            self.last_at = now
            if self.done is not None and not self.done.done() and len(self.seqs) >= self.expect:
                self.done.set_result(now)
        elif tags:
            self.last_at = now

    def ping(self, ident: str, domain: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.pong[ident.encode()] = fut
        self.write(
            f"<iq type='get' id='{ident}' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>".encode()
        )
        return fut


# --- MUC ---------------------------------------------------------------------------------


class _MucConn(_Raw):
    """One occupant of ``room`` under ``nick``."""

    def __init__(
        self, transport: asyncio.Transport, stats: _ChatStats, room: str, nick: str
    ) -> None:
        super().__init__(transport)
        self.stats = stats
        self.room = room
        self.nick = nick
        self.occupant = f"{room}/{nick}".encode()
        self.joined: asyncio.Future[str] | None = None
        self.iq_answer: dict[bytes, asyncio.Future[str]] = {}
        self.prefix = f"<message to='{room}' type='groupchat' id='g'><body>XB".encode()
        self.suffix = b"E</body></message>"
        self.presences = 0
        self.errors = 0
        self.error_sample = b""

    def scan(self, data: bytes, now: float) -> None:
        if (self.joined is not None and not self.joined.done()) or self.iq_answer:
            self._scan_setup(data)
        if b"<message" not in data:
            return
        if b"error" not in data:  # the usual case: every stamp is a delivered copy
            stamps = _STAMP.findall(data)
            if stamps:
                self.stats.received(time.monotonic_ns(), stamps)
            return
        # Error replies may echo the body (and its stamp): count per message.
        starts = [m.start() for m in _MESSAGE_TAG.finditer(data)] + [len(data)]
        good: list[bytes] = []
        for a, b in itertools.pairwise(starts):
            chunk = data[a:b]
            tag_end = chunk.find(b">") + 1
            if _ERROR_TYPE.search(chunk, 0, tag_end):
                self.errors += 1
                if not self.error_sample:
                    self.error_sample = chunk[:400]
            else:
                good.extend(_STAMP.findall(chunk))
        if good:
            self.stats.received(time.monotonic_ns(), good)

    def _scan_setup(self, data: bytes) -> None:
        for m in _PRESENCE_TAG.finditer(data):
            self.presences += 1
            attrs = m.group(1)
            if _attr(_FROM, attrs) != self.occupant:
                continue
            fut = self.joined
            if fut is not None and not fut.done():
                kind = _attr(_TYPE, attrs)
                if kind == b"error":
                    end = data.find(b"</presence>", m.end())
                    fut.set_result("error: " + data[m.start() : end + 11].decode(errors="replace"))
                else:
                    fut.set_result("")
        if self.iq_answer:
            for m in _IQ_TAG.finditer(data):
                ident = _attr(_ID, m.group(1)) or b""
                fut2 = self.iq_answer.pop(ident, None)
                if fut2 is not None and not fut2.done():
                    kind = _attr(_TYPE, m.group(1)) or b""
                    fut2.set_result(kind.decode())

    def join(self) -> asyncio.Future[str]:
        self.joined = asyncio.get_running_loop().create_future()
        self.write(
            f"<presence to='{self.room}/{self.nick}'><x xmlns='{_MUC_NS}'>"
            "<history maxstanzas='0'/></x></presence>".encode()
        )
        return self.joined

    def configure_instant(self) -> asyncio.Future[str]:
        """XEP-0045 §10.1.2: accept the default configuration (an instant room)."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.iq_answer[b"cfg"] = fut
        self.write(
            f"<iq type='set' to='{self.room}' id='cfg'>"
            f"<query xmlns='{_MUC_NS}#owner'><x xmlns='jabber:x:data' type='submit'/>"
            "</query></iq>".encode()
        )
        return fut


# --- the commands --------------------------------------------------------------------


class ImWorker:
    """The IM and MUC commands of one worker process (see ``_gen._serve``)."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.presence: list[_PresenceConn] = []
        self.iq: _IqConn | None = None
        self.offline: dict[str, _OfflineConn] = {}
        self.muc: list[_MucConn] = []
        self.muc_stats = _ChatStats()

    def _all(self) -> list[_Raw]:
        conns: list[_Raw] = [*self.presence, *self.offline.values(), *self.muc]
        if self.iq is not None:
            conns.append(self.iq)
        return conns

    async def close(self) -> int:
        """Close every raw connection: our closing tag, a short wait, then abort."""
        conns = self._all()
        self.presence, self.iq, self.offline, self.muc = [], None, {}, []
        for c in conns:
            c.write(b"</stream:stream>")
        if conns:
            await asyncio.sleep(min(CLOSE_TIMEOUT, 0.5 + len(conns) / 2000))
        for c in conns:
            c.transport.abort()
        return len(conns)

    async def _logins(
        self, creds: Sequence[Creds], concurrency: int
    ) -> tuple[list[Any], dict[str, int]]:
        clients, _lat, _done, errors = await self.worker._login_many(creds, concurrency, 0.0)
        return clients, errors

    # -- presence storm

    async def cmd_presence_setup(
        self, users: Sequence[Creds], contacts: int, concurrency: int
    ) -> dict[str, Any]:
        """Log ``users`` in (bound, no presence yet) and keep them as storm clients."""
        clients, errors = await self._logins(users, concurrency)
        for c in clients:
            if c is None:
                continue
            conn = _PresenceConn(c._transport, c.jid.split("/", 1)[0], contacts)
            c._transport.set_protocol(conn)
            self.presence.append(conn)
        return {"ok": len(self.presence), "failed": sum(errors.values()), "errors": errors}

    async def cmd_presence_go(
        self, start_at: float, timeout: float, quiet: float
    ) -> dict[str, Any]:
        """At ``start_at`` every client sends its initial presence; then wait until all
        have seen all their contacts and nothing arrived for ``quiet`` s (at most
        ``timeout`` s after the start)."""
        conns = self.presence
        delay = start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.monotonic()
        for c in conns:
            c.write(b"<presence/>")
        sent_at = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            now = time.monotonic()
            last = max((c.last_at for c in conns), default=0.0)
            if all(c.complete_at is not None for c in conns) and now - last >= quiet:
                break
            await asyncio.sleep(0.02)
        return {
            "clients": len(conns),
            "t_start": t0,
            "write_s": sent_at - t0,
            "complete_s": [c.complete_at - t0 if c.complete_at else None for c in conns],
            "seen": [len(c.seen) for c in conns],
            "available": sum(c.available for c in conns),
            "unavailable": sum(c.unavailable for c in conns),
            "own": sum(c.own_presence for c in conns),
            "other": sum(c.other for c in conns),
            "t_last": max((c.last_at for c in conns), default=t0),
            "lost": sum(1 for c in conns if c.lost),
        }

    # -- roster fetch

    async def cmd_roster_setup(self, user: Creds) -> dict[str, Any]:
        clients, errors = await self._logins([user], 1)
        c = clients[0]
        if c is None:
            return {"ok": 0, "errors": errors}
        self.iq = _IqConn(c._transport)
        c._transport.set_protocol(self.iq)
        return {"ok": 1, "errors": errors}

    async def cmd_roster_fetch(self, ident: str, timeout: float) -> dict[str, Any]:
        """One roster get (RFC 6121 §2.1.3, no ``ver``): seconds until the answer ends."""
        conn = self.iq
        assert conn is not None, "roster_setup first"
        t0 = time.monotonic()
        fut = conn.request(
            f"<iq type='get' id='{ident}'><query xmlns='jabber:iq:roster'/></iq>".encode()
        )
        async with asyncio.timeout(timeout):
            t1 = await fut
        answer = bytes(conn.answer)
        return {
            "seconds": t1 - t0,
            "bytes": len(answer),
            "items": len(_ITEM.findall(answer)),
            "iq_error": b"type='error'" in answer[:300] or b'type="error"' in answer[:300],
        }

    # -- offline messages

    async def _offline_conn(self, role: str, creds: Creds, run: int) -> tuple[_OfflineConn, float]:
        t0 = time.monotonic()
        clients, errors = await self._logins([creds], 1)
        c = clients[0]
        if c is None:
            raise RuntimeError(f"offline {role} could not log in: {errors}")
        conn = _OfflineConn(c._transport, run)
        c._transport.set_protocol(conn)
        self.offline[role] = conn
        return conn, time.monotonic() - t0

    async def cmd_offline_drain(
        self, creds: Creds, run: int, quiet: float, timeout: float
    ) -> dict[str, Any]:
        """Log the recipient in with presence and read until ``quiet`` s of silence:
        messages left by an earlier, failed round are flushed before the measurement."""
        conn, _ = await self._offline_conn("drain", creds, run)
        conn.write(b"<presence/>")
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            await asyncio.sleep(0.05)
            if time.monotonic() - max(conn.last_at, t0) >= quiet:
                break
        left = conn.messages
        conn.write(b"</stream:stream>")
        await asyncio.sleep(0.2)
        conn.transport.abort()
        del self.offline["drain"]
        return {"messages": left}

    async def cmd_offline_send(
        self, creds: Creds, to: str, count: int, run: int, domain: str, timeout: float
    ) -> dict[str, Any]:
        """The sender logs in (no presence) and writes ``count`` chat messages numbered
        0..count-1 to the offline ``to``, as fast as TCP takes them, then a ping: the
        server answers it after it has read (and routed) every message before it."""
        conn, _ = await self._offline_conn("sender", creds, run)
        head = f"<message to='{to}' type='chat'><body>XO{run}.".encode()
        t0 = time.monotonic()
        batch = 200
        deadline = t0 + timeout
        for i in range(0, count, batch):
            conn.write(
                b"".join(
                    head + str(k).encode() + b"E</body></message>"
                    for k in range(i, min(i + batch, count))
                )
            )
            while conn.transport.get_write_buffer_size() > CHAT_WRITE_LIMIT:
                if conn.lost or time.monotonic() > deadline:
                    raise RuntimeError("offline sender: the server stopped reading")
                await asyncio.sleep(0.001)
        written = time.monotonic()
        async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
            pong = await conn.ping("done", domain)
        return {"t_start": t0, "t_written": written, "t_pong": pong}

    async def cmd_offline_sender_close(self) -> dict[str, Any]:
        conn = self.offline.pop("sender")
        out = {"errors": conn.errors, "messages": conn.messages}
        conn.write(b"</stream:stream>")
        await asyncio.sleep(0.2)
        conn.transport.abort()
        return out

    async def cmd_offline_receive(
        self, creds: Creds, count: int, run: int, timeout: float
    ) -> dict[str, Any]:
        """The recipient logs in, sends its initial presence and reads until ``count``
        messages of this run have arrived (at most ``timeout`` s)."""
        conn, login_s = await self._offline_conn("recipient", creds, run)
        conn.expect = count
        conn.done = asyncio.get_running_loop().create_future()
        t0 = time.monotonic()
        conn.write(b"<presence/>")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await conn.done
        seqs = conn.seqs
        in_order = seqs == list(range(count))
        out = {
            "login_s": login_s,
            "t_presence": t0,
            "first_s": conn.first_at - t0 if conn.first_at else None,
            "last_s": conn.last_at - t0 if seqs else None,
            "received": len(seqs),
            "distinct": len(set(seqs)),
            "in_order": in_order,
            "out_of_order": sum(1 for a, b in itertools.pairwise(seqs) if b < a),
            "stale": conn.stale,
            "errors": conn.errors,
            "lost": conn.lost,
        }
        await asyncio.sleep(0)
        return out

    # -- MUC

    async def cmd_muc_setup(
        self, occupants: Sequence[tuple[Creds, str, str]], concurrency: int
    ) -> dict[str, Any]:
        """Log ``(creds, room, nick)`` in, send each one's initial presence and keep it
        as an occupant-to-be (``muc_join`` joins)."""
        clients, errors = await self._logins([o[0] for o in occupants], concurrency)
        self.muc_stats = _ChatStats()
        for c, (_creds, room, nick) in zip(clients, occupants, strict=True):
            if c is None:
                continue
            conn = _MucConn(c._transport, self.muc_stats, room, nick)
            c._transport.set_protocol(conn)
            conn.write(b"<presence/>")
            self.muc.append(conn)
        return {"ok": len(self.muc), "failed": sum(errors.values()), "errors": errors}

    async def cmd_muc_join(
        self, nicks: Sequence[str], configure: bool, timeout: float
    ) -> dict[str, Any]:
        """The occupants named ``nicks`` join at once; ``configure``: they are their
        rooms' creators and then accept the default configuration (instant room)."""
        wanted = set(nicks)
        conns = [c for c in self.muc if c.nick in wanted]
        t0 = time.monotonic()
        joins = [c.join() for c in conns]
        failures: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                for r in await asyncio.gather(*joins):
                    if r:
                        failures.append(r)
                if configure:
                    answers = await asyncio.gather(*(c.configure_instant() for c in conns))
                    failures.extend(f"room config: {a}" for a in answers if a != "result")
        except TimeoutError:
            failures.append(
                f"timeout: {sum(1 for j in joins if not j.done())} of {len(joins)} not joined"
            )
        return {
            "joined": sum(1 for j in joins if j.done() and not j.result()),
            "seconds": time.monotonic() - t0,
            "failures": failures[:5],
            "failed": len(failures),
        }

    async def cmd_muc_step(
        self, rate: float, start_at: float, warmup: float, duration: float
    ) -> dict[str, Any]:
        """Send ``rate`` groupchat messages/s (this worker's share), spread round-robin
        over its occupants, from ``start_at`` for ``warmup + duration`` s; the counted
        window is the last ``duration`` s.  ``muc_drain`` then waits for the copies."""
        stats = self.muc_stats
        w0 = start_at + warmup
        stats.reset(int(w0 * 1e9), int((w0 + duration) * 1e9))
        for c in self.muc:
            c.errors = 0
        conns = [c for c in self.muc if not c.lost]
        per_conn: Counter[int] = Counter()
        sent = await offer_round_robin(conns, rate, start_at, w0, w0 + duration, per_conn)
        sent_by_room: Counter[str] = Counter()
        for i, count in per_conn.items():
            sent_by_room[conns[i].room] += count
        return {
            "sent_total": sent.written,
            "sent_window": sent.written_window,
            "sent_by_room": dict(sent_by_room),
            "skipped": sent.skipped,
            "gen_cpu_s": sent.gen_cpu_s,
            "occupants_by_room": dict(Counter(c.room for c in conns)),
        }

    async def cmd_muc_drain(self, expected: int, timeout: float) -> dict[str, Any]:
        """Wait (at most ``timeout`` s) until ``expected`` copies have arrived here."""
        stats = self.muc_stats
        deadline = time.monotonic() + timeout
        while stats.recv_total < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        errors = sum(c.errors for c in self.muc)
        sample = next((c.error_sample for c in self.muc if c.error_sample), b"")
        return {
            "recv_window": stats.recv_window,
            "recv_total": stats.recv_total,
            "lat_us": stats.lat_us,
            "errors": errors,
            "error_sample": sample.decode(errors="replace"),
            "lost": sum(1 for c in self.muc if c.lost),
        }
