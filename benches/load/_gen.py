"""The load generator: worker processes, each an asyncio loop driven over a pipe.

The main process forks ``procs`` workers pinned to the generator's cores and sends each
one command at a time (``Generator.call``); a worker answers with a dict of numbers.
Logins go through ``xmppx.client.Client`` (SCRAM-SHA-1, plain TCP, SaltedPassword looked
up: ``_accounts.install_salted_cache``).  For the chat phase a bound client's transport
is handed to a raw protocol that writes pre-serialized ``<message/>`` bytes and finds the
send timestamps in what arrives with one regular expression, without parsing XML.

Clocks: ``time.monotonic`` / ``time.monotonic_ns`` are CLOCK_MONOTONIC, one clock for all
processes of the machine, so a timestamp written by one worker is read by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

__all__ = ["Generator", "GeneratorError"]

#: Stop writing to a chat connection whose unsent bytes exceed this (the server is not
#: reading: TCP back-pressure); what is not written counts as offered but not sent.
CHAT_WRITE_LIMIT: Final = 256 * 1024
#: Sender tick: messages due are written every 5 ms (at 20 000 msg/s: 100 per tick).
TICK_S: Final = 0.005
#: One message: the send time in nanoseconds (CLOCK_MONOTONIC) between XB and E.
_STAMP: Final = re.compile(rb"XB(\d+)E")
_MSG_END: Final = b"</message>"
#: Longest partial stanza kept between reads of a chat connection.
_MAX_PARTIAL: Final = 1 << 20
#: How long closing handshakes may take before sockets are dropped.
CLOSE_TIMEOUT: Final = 3.0
#: Login timeout per client (a loaded server answers in well under this).
LOGIN_TIMEOUT: Final = 60.0

Creds = tuple[str, str]  # (bare JID, password)


class GeneratorError(RuntimeError):
    """A worker failed or did not answer in time."""


# --- worker side ---------------------------------------------------------------------


class _ChatConn(asyncio.Protocol):
    """A bound stream taken over from ``Client`` for the chat phase."""

    def __init__(self, transport: asyncio.Transport, stats: _ChatStats, to: str) -> None:
        self.transport = transport
        self.stats = stats
        self.partial = b""
        self.prefix = f"<message to='{to}' type='chat' id='c'><body>XB".encode()
        self.suffix = b"E</body></message>"
        self.lost = False

    def data_received(self, data: bytes) -> None:
        buf = self.partial + data if self.partial else data
        end = buf.rfind(_MSG_END)
        if end < 0:
            self.partial = buf if len(buf) <= _MAX_PARTIAL else b""
            return
        end += len(_MSG_END)
        self.partial = buf[end:]
        stamps = _STAMP.findall(buf, 0, end)
        if stamps:
            self.stats.received(time.monotonic_ns(), stamps)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.stats.lost += 1


class _ChatStats:
    """Counts and latencies of one chat step in one worker."""

    def __init__(self) -> None:
        self.reset(0, 0)
        self.lost = 0

    def reset(self, window_start_ns: int, window_end_ns: int) -> None:
        self.w0 = window_start_ns
        self.w1 = window_end_ns
        self.recv_total = 0
        self.recv_window = 0
        self.lat_us: list[int] = []

    def received(self, now: int, stamps: list[bytes]) -> None:
        n = len(stamps)
        self.recv_total += n
        if self.w0 <= now <= self.w1:
            self.recv_window += n
            # A tick's messages to one peer share one stamp: convert each stamp once.
            lat = self.lat_us
            for stamp, count in Counter(stamps).items():
                lat.extend([(now - int(stamp)) // 1000] * count)


class _Worker:
    def __init__(self, port: int) -> None:
        self.port = port
        self.held: list[Any] = []  # xmppx.client.Client objects kept open
        self.chat: list[_ChatConn] = []
        self.stats = _ChatStats()

    # -- logins

    async def _login(self, creds: Creds) -> Any:
        from xmppx.client import Client

        jid, password = creds
        return await Client.connect(
            jid,
            password,
            host="127.0.0.1",
            port=self.port,
            tls="none",
            mechanisms=["SCRAM-SHA-1"],
            timeout=LOGIN_TIMEOUT,
        )

    async def _login_many(
        self, accounts: Sequence[Creds], concurrency: int, start_at: float
    ) -> tuple[list[Any], list[float], list[float], dict[str, int]]:
        """Log ``accounts`` in, at most ``concurrency`` at once, from ``start_at`` on.
        Returns the clients (in account order, ``None`` for failures), the latencies
        (ms), the times each login finished (monotonic s) and failures by reason."""
        delay = start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sem = asyncio.Semaphore(max(1, concurrency))
        clients: list[Any] = [None] * len(accounts)
        lat: list[float] = []
        done_at: list[float] = []
        errors: dict[str, int] = {}

        async def one(i: int, creds: Creds) -> None:
            async with sem:
                t0 = time.monotonic()
                try:
                    clients[i] = await self._login(creds)
                except Exception as exc:  # counted, never fatal: it is what we measure
                    key = f"{type(exc).__name__}: {exc}"[:120]
                    errors[key] = errors.get(key, 0) + 1
                    return
                t1 = time.monotonic()
                lat.append((t1 - t0) * 1000.0)
                done_at.append(t1)

        await asyncio.gather(*(one(i, c) for i, c in enumerate(accounts)))
        return clients, lat, done_at, errors

    async def cmd_login(
        self, accounts: Sequence[Creds], concurrency: int, start_at: float
    ) -> dict[str, Any]:
        cpu0 = time.process_time()
        t0 = max(time.monotonic(), start_at)
        clients, lat, done_at, errors = await self._login_many(accounts, concurrency, start_at)
        cpu = time.process_time() - cpu0
        self.held.extend(c for c in clients if c is not None)
        return {
            "ok": len(lat),
            "failed": sum(errors.values()),
            "errors": errors,
            "lat_ms": lat,
            "t_start": t0,
            "t_end": max(done_at) if done_at else t0,
            "cpu_s": cpu,
        }

    async def cmd_close_all(self) -> dict[str, Any]:
        held, self.held = self.held, []

        async def close(c: Any) -> None:
            with contextlib.suppress(Exception):
                await c.close(timeout=CLOSE_TIMEOUT)

        await asyncio.gather(*(close(c) for c in held))
        chat, self.chat = self.chat, []
        for conn in chat:
            if not conn.transport.is_closing():
                conn.transport.write(b"</stream:stream>")
        if chat:
            await asyncio.sleep(0.5)
        for conn in chat:
            conn.transport.abort()
        gc.collect()
        return {"closed": len(held) + len(chat)}

    # -- chat

    async def cmd_chat_setup(
        self, pairs: Sequence[tuple[Creds, Creds]], concurrency: int
    ) -> dict[str, Any]:
        flat = [c for pair in pairs for c in pair]
        clients, _lat, _, errors = await self._login_many(flat, concurrency, 0.0)
        ok = 0
        for i in range(0, len(clients), 2):
            a, b = clients[i], clients[i + 1]
            if a is None or b is None:
                for c in (a, b):
                    if c is not None:
                        self.held.append(c)
                continue
            for me, peer in ((a, b), (b, a)):
                transport = me._transport
                conn = _ChatConn(transport, self.stats, peer.jid)
                transport.set_protocol(conn)
                self.chat.append(conn)
            ok += 1
        return {"pairs": ok, "failed": sum(errors.values()), "errors": errors}

    async def cmd_chat_step(
        self, rate: float, start_at: float, warmup: float, duration: float, drain: float
    ) -> dict[str, Any]:
        """Offer ``rate`` msg/s over this worker's connections from ``start_at`` for
        ``warmup + duration`` s; the window counted is the last ``duration`` s.  Then wait
        up to ``drain`` s for what is in flight."""
        stats = self.stats
        w0 = start_at + warmup
        stats.reset(int(w0 * 1e9), int((w0 + duration) * 1e9))
        conns = [c for c in self.chat if not c.lost]
        sent = await offer_round_robin(conns, rate, start_at, w0, w0 + duration)
        deadline = time.monotonic() + drain
        while stats.recv_total < sent.written and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return {
            "rate": rate,
            "offered_window": int(rate * duration),
            "sent_window": sent.written_window,
            "recv_window": stats.recv_window,
            "sent_total": sent.written,
            "recv_total": stats.recv_total,
            "skipped": sent.skipped,
            "backlog_after_drain": sent.written - stats.recv_total,
            "lat_us": stats.lat_us,
            "gen_cpu_s": sent.gen_cpu_s,
            "conns": len(conns),
            "lost": stats.lost,
        }


@dataclass
class Offered:
    """What :func:`offer_round_robin` wrote: messages in all and in the counted window,
    those skipped (connection lost or its write buffer full), and the generator's CPU
    seconds in the window."""

    written: int = 0
    written_window: int = 0
    skipped: int = 0
    gen_cpu_s: float = 0.0


async def offer_round_robin(
    conns: Sequence[Any],
    rate: float,
    start_at: float,
    w0: float,
    w1: float,
    per_conn: Counter[int] | None = None,
) -> Offered:
    """Offer ``rate`` messages/s from ``start_at`` until ``w1``, spread round-robin over
    ``conns`` (each with ``transport``, ``lost``, and ``prefix + stamp + suffix`` as the
    message), every :data:`TICK_S`; a message carries its send time (monotonic ns) as
    the stamp.  The window counted starts at ``w0``.  ``per_conn``, if given, counts
    the messages written per index into ``conns``."""
    out = Offered()
    n = len(conns)
    offered = 0  # messages due so far
    cpu_w0: float | None = None
    delay = start_at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    rr = 0
    while n:
        now = time.monotonic()
        if cpu_w0 is None and now >= w0:
            cpu_w0 = time.process_time()
        if now >= w1:
            break
        due = int(rate * (now - start_at)) - offered
        if due > 0:
            offered += due
            per, extra = divmod(due, n)
            stamp = str(time.monotonic_ns()).encode()
            in_window = now >= w0
            for k in range(n if per else extra):
                i = (rr + k) % n
                conn = conns[i]
                count = per + (1 if k < extra else 0)
                tr = conn.transport
                if conn.lost or tr.get_write_buffer_size() > CHAT_WRITE_LIMIT:
                    out.skipped += count
                    continue
                tr.write((conn.prefix + stamp + conn.suffix) * count)
                out.written += count
                if per_conn is not None:
                    per_conn[i] += count
                if in_window:
                    out.written_window += count
            rr = (rr + extra) % n
        await asyncio.sleep(TICK_S)
    cpu_w1 = time.process_time()
    out.gen_cpu_s = cpu_w1 - (cpu_w0 if cpu_w0 is not None else cpu_w1)
    return out


async def _serve(conn: Connection, port: int) -> None:
    from ._imgen import ImWorker  # it imports this module

    worker = _Worker(port)
    im = ImWorker(worker)
    loop = asyncio.get_running_loop()

    async def close_all() -> dict[str, Any]:
        closed = await im.close()
        res = await worker.cmd_close_all()
        res["closed"] = int(res["closed"]) + closed
        return res

    handlers: dict[str, Callable[..., Any]] = {
        "login": worker.cmd_login,
        "close_all": close_all,
        "chat_setup": worker.cmd_chat_setup,
        "chat_step": worker.cmd_chat_step,
    }
    for name in dir(im):
        if name.startswith("cmd_"):
            handlers[name.removeprefix("cmd_")] = getattr(im, name)
    while True:
        name, kwargs = await loop.run_in_executor(None, conn.recv)
        if name == "exit":
            with contextlib.suppress(Exception):
                await close_all()
            conn.send({"ok": True})
            return
        try:
            result = await handlers[name](**kwargs)
        except Exception:
            result = {"error": traceback.format_exc()}
        conn.send(result)


def _worker_main(conn: Connection, port: int, cpus: list[int]) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        asyncio.run(_serve(conn, port))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        conn.close()


# --- main side -----------------------------------------------------------------------


class Generator:
    """``procs`` worker processes pinned to ``cpus``, all loading 127.0.0.1:``port``."""

    def __init__(self, procs: int, cpus: Sequence[int], port: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conns: list[Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for _ in range(max(1, procs)):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker_main, args=(child, port, list(cpus)), daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def send(self, commands: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Send ``commands[i]`` to worker ``i``; ``collect`` gets the answers."""
        assert len(commands) == len(self.conns)
        for conn, cmd in zip(self.conns, commands, strict=True):
            conn.send(cmd)

    def collect(self, what: str, timeout: float) -> list[dict[str, Any]]:
        """Every worker's answer to the command last sent, within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        results: list[dict[str, Any]] = []
        for i, conn in enumerate(self.conns):
            left = deadline - time.monotonic()
            if left <= 0 or not conn.poll(left):
                raise GeneratorError(f"worker {i} did not answer {what} in {timeout} s")
            res: dict[str, Any] = conn.recv()
            if "error" in res:
                raise GeneratorError(f"worker {i} failed in {what}:\n{res['error']}")
            results.append(res)
        return results

    def call(
        self, commands: Sequence[tuple[str, dict[str, Any]]], timeout: float
    ) -> list[dict[str, Any]]:
        """``send`` then ``collect``."""
        self.send(commands)
        return self.collect(commands[0][0] if commands else "", timeout)

    def call_one(self, index: int, name: str, wait: float, **kwargs: Any) -> dict[str, Any]:
        """Run one command on worker ``index`` only (the others stay idle), waiting at
        most ``wait`` s for its answer."""
        conn = self.conns[index]
        conn.send((name, kwargs))
        if not conn.poll(wait):
            raise GeneratorError(f"worker {index} did not answer {name} in {wait} s")
        res: dict[str, Any] = conn.recv()
        if "error" in res:
            raise GeneratorError(f"worker {index} failed in {name}:\n{res['error']}")
        return res

    def broadcast(self, name: str, timeout: float, **kwargs: Any) -> list[dict[str, Any]]:
        return self.call([(name, kwargs)] * len(self.conns), timeout)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("exit", {}))
        deadline = time.monotonic() + 15
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        for conn in self.conns:
            conn.close()
