"""The three scenarios, run against one started server with one ``Generator``.

Each returns a plain dict (it goes into the JSON result as is).  Server CPU and RSS come
from ``/proc`` of the server's process tree; the generator's CPU from its workers.  A
measurement is flagged ``generator_bound`` when the generator's cores were more than 90%
busy: then the number is a lower bound of what the server can do, not the server's.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._accounts import Account, chunks
from ._gen import Generator
from ._proc import cores_busy_s, sample_tree
from ._servers import Server

__all__ = [
    "ChatPlan",
    "Cores",
    "Window",
    "percentile",
    "run_chat",
    "run_idle",
    "run_login_storm",
    "wait_quiet",
    "warm_up",
]

#: Generator cores busier than this: the measurement is generator-bound.
GEN_BOUND_UTIL: Final = 0.9
#: A chat step is sustained when this share of the offered rate is delivered ...
SUSTAINED_SHARE: Final = 0.95
#: ... with a p99 below this (ms) and nothing left in flight after the drain.
SUSTAINED_P99_MS: Final = 500.0
#: Stop stepping up once less than this share of the offered rate is delivered.
GIVE_UP_SHARE: Final = 0.5
#: Seconds for the server to settle before an RSS reading.
SETTLE_S: Final = 2.0

Log = Callable[[str], None]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def _creds(accounts: Sequence[Account]) -> list[tuple[str, str]]:
    return [(a.jid, a.password) for a in accounts]


def _split_login(
    gen: Generator, accounts: Sequence[Account], concurrency: int, start_at: float
) -> list[tuple[str, dict[str, Any]]]:
    parts = list(chunks(list(accounts), len(gen.conns)))
    per = max(1, concurrency // len(parts))
    return [
        ("login", {"accounts": _creds(p), "concurrency": per, "start_at": start_at}) for p in parts
    ]


def _login_timeout(n: int) -> float:
    return 60.0 + n * 0.05  # bounded: 20 logins/s at the very least


def warm_up(server: Server, gen: Generator, accounts: Sequence[Account]) -> None:
    """A few logins and closes, so first-use costs (code loading, caches) are paid."""
    gen.call(_split_login(gen, accounts, 10, 0.0), _login_timeout(len(accounts)))
    gen.broadcast("close_all", 60)


@dataclass(frozen=True, kw_only=True, slots=True)
class Cores:
    """Where things run, and how long to wait for other processes to leave the server's
    cores before a measurement (``quiet_wait`` s at most, until they take less than
    ``quiet_below`` of them)."""

    server: tuple[int, ...]
    gen: tuple[int, ...]
    quiet_below: float = 0.25
    quiet_wait: float = 20.0


class Window:
    """CPU of the server, of the generator (workers and this process) and of everything
    else on each side's cores, between ``start()`` and ``stop()``."""

    def __init__(self, server: Server, gen: Generator, cores: Cores) -> None:
        self.server = server
        self.gen_pids = (os.getpid(), *gen.pids)
        self.cores = cores

    def _gen_cpu(self) -> tuple[float, float]:
        samples = [sample_tree(p, (p,)) for p in self.gen_pids]
        return sum(x.cpu_s for x in samples), sum(x.wait_s for x in samples)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.s0 = sample_tree(self.server.pid)
        self.g0 = self._gen_cpu()
        self.bs0 = cores_busy_s(self.cores.server)
        self.bg0 = cores_busy_s(self.cores.gen)

    def stop(self) -> dict[str, float]:
        bs1 = cores_busy_s(self.cores.server)
        bg1 = cores_busy_s(self.cores.gen)
        s1 = sample_tree(self.server.pid, self.s0.pids)
        g1 = self._gen_cpu()
        wall = max(time.monotonic() - self.t0, 1e-9)
        server_cpu = s1.cpu_s - self.s0.cpu_s
        server_wait = s1.wait_s - self.s0.wait_s
        gen_cpu = g1[0] - self.g0[0]
        gen_wait = g1[1] - self.g0[1]
        ns, ng = max(len(self.cores.server), 1), max(len(self.cores.gen), 1)
        return {
            "wall_s": wall,
            "server_cpu_s": server_cpu,
            "gen_cpu_s": gen_cpu,
            "server_cpu_util": server_cpu / wall / ns,
            "gen_cpu_util": gen_cpu / wall / ng,
            # Runnable but not running, summed over threads (so it can exceed 1).
            "server_wait_util": server_wait / wall / ns,
            "gen_demand": (gen_cpu + gen_wait) / wall / ng,
            "other_util_server_cores": max(0.0, bs1 - self.bs0 - server_cpu) / wall / ns,
            "other_util_gen_cores": max(0.0, bg1 - self.bg0 - gen_cpu) / wall / ng,
        }


def wait_quiet(server: Server, gen: Generator, cores: Cores, log: Log) -> dict[str, float]:
    """Wait, at most ``cores.quiet_wait`` s, until other processes take less than
    ``cores.quiet_below`` of the server's cores over a 0.5 s sample (the machine is
    shared: builds and test runs come and go).  Returns the waited seconds and the last
    share seen."""
    t0 = time.monotonic()
    deadline = t0 + cores.quiet_wait
    other = 0.0
    while True:
        w = Window(server, gen, cores)
        w.start()
        time.sleep(0.5)
        other = w.stop()["other_util_server_cores"]
        if other < cores.quiet_below or time.monotonic() >= deadline:
            break
    waited = time.monotonic() - t0 - 0.5
    if waited > 1.0:
        log(f"    (waited {waited:.0f} s for other load on the server core: {other:.0%} now)")
    return {"quiet_wait_s": round(waited, 1), "other_util_before": round(other, 3)}


def run_login_storm(
    server: Server,
    gen: Generator,
    accounts: Sequence[Account],
    *,
    concurrency: int,
    cores: Cores,
    log: Log,
    on_window: Callable[[str, float], Callable[[], None] | None] | None = None,
) -> dict[str, Any]:
    """``len(accounts)`` clients connect, authenticate (SCRAM-SHA-1) and bind, at most
    ``concurrency`` at once; all stay connected until the last is bound."""
    quiet = wait_quiet(server, gen, cores, log)
    start_at = time.monotonic() + 0.3
    gen.send(_split_login(gen, accounts, concurrency, start_at))
    time.sleep(max(0.0, start_at - time.monotonic()))
    win = Window(server, gen, cores)
    win.start()
    finish = on_window("login", 0.0) if on_window is not None else None
    res = gen.collect("login", _login_timeout(len(accounts)))
    m = win.stop()
    if finish is not None:
        finish()
    ok = sum(int(r["ok"]) for r in res)
    t0 = min(float(r["t_start"]) for r in res)
    t1 = max(float(r["t_end"]) for r in res)
    wall = max(t1 - t0, 1e-9)
    lat = [x for r in res for x in r["lat_ms"]]
    errors: dict[str, int] = {}
    for r in res:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + int(v)
    gen.broadcast("close_all", 120)
    out = {
        "clients": len(accounts),
        "concurrency": concurrency,
        "ok": ok,
        "failed": sum(errors.values()),
        "errors": errors,
        "wall_s": round(wall, 3),
        "logins_per_s": round(ok / wall, 1),
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "server_cpu_util": round(m["server_cpu_util"], 3),
        "server_cpu_us_per_login": round(m["server_cpu_s"] / ok * 1e6, 1) if ok else math.nan,
        "gen_cpu_util": round(m["gen_cpu_util"], 3),
        "other_util_server_core": round(m["other_util_server_cores"], 3),
        "other_util_gen_core": round(m["other_util_gen_cores"], 3),
        "server_runqueue_wait": round(m["server_wait_util"], 3),
        "gen_runqueue_wait": round(m["gen_demand"] - m["gen_cpu_util"], 3),
        "generator_bound": m["gen_cpu_util"] + m["other_util_gen_cores"] > GEN_BOUND_UTIL,
        "server_core_saturated": m["server_cpu_util"] + m["other_util_server_cores"]
        > GEN_BOUND_UTIL,
        **quiet,
    }
    log(
        f"    login storm: {out['logins_per_s']:.0f}/s p50 {out['p50_ms']:.1f} ms "
        f"p99 {out['p99_ms']:.1f} ms (server cpu {out['server_cpu_util']:.0%}, "
        f"generator {out['gen_cpu_util']:.0%}; others on server core "
        f"{out['other_util_server_core']:.0%})"
        + (f" FAILED {out['failed']}" if out["failed"] else "")
    )
    return out


def run_idle(
    server: Server,
    gen: Generator,
    accounts: Sequence[Account],
    *,
    levels: Sequence[int],
    concurrency: int,
    log: Log,
) -> dict[str, Any]:
    """Open authenticated, bound, silent connections up to each of ``levels`` and read
    the server's RSS after ``SETTLE_S``; KB per connection = RSS growth / connections."""
    time.sleep(SETTLE_S)
    base = sample_tree(server.pid)
    points: list[dict[str, Any]] = []
    opened = 0
    for level in sorted(levels):
        batch = accounts[opened:level]
        if batch:
            res = gen.call(_split_login(gen, batch, concurrency, 0.0), _login_timeout(len(batch)))
            failed = sum(int(r["failed"]) for r in res)
            opened = level
            if failed:
                log(f"    idle: {failed} of {len(batch)} logins failed at level {level}")
        time.sleep(SETTLE_S)
        now = sample_tree(server.pid, base.pids)
        points.append(
            {
                "connections": level,
                "rss_mb": round(now.rss_bytes / 2**20, 1),
                "kb_per_conn": round((now.rss_bytes - base.rss_bytes) / 1024 / level, 2),
            }
        )
        log(
            f"    idle {level:>6}: {points[-1]['kb_per_conn']:.1f} KB/conn "
            f"(RSS {now.rss_bytes / 2**20:.0f} MB)"
        )
    gen.broadcast("close_all", 300)
    return {"base_rss_mb": round(base.rss_bytes / 2**20, 1), "points": points}


@dataclass(frozen=True, kw_only=True, slots=True)
class ChatPlan:
    pairs: int
    rates: tuple[int, ...]
    warmup_s: float
    duration_s: float
    drain_s: float


def run_chat(
    server: Server,
    gen: Generator,
    accounts: Sequence[Account],
    plan: ChatPlan,
    *,
    concurrency: int,
    cores: Cores,
    log: Log,
    on_window: Callable[[str, float], Callable[[], None] | None] | None = None,
) -> dict[str, Any]:
    """``plan.pairs`` pairs of bound clients send each other chat messages at each
    offered total rate in ``plan.rates``; both ends of a pair live in one worker."""
    users = list(accounts[: 2 * plan.pairs])
    pairs = [(users[i], users[i + 1]) for i in range(0, len(users) - 1, 2)]
    parts = list(chunks(pairs, len(gen.conns)))
    setup = gen.call(
        [
            (
                "chat_setup",
                {
                    "pairs": [((a.jid, a.password), (b.jid, b.password)) for a, b in part],
                    "concurrency": max(1, concurrency // len(parts)),
                },
            )
            for part in parts
        ],
        _login_timeout(len(users)),
    )
    ready = [int(s["pairs"]) for s in setup]
    total_pairs = sum(ready)
    steps: list[dict[str, Any]] = []
    if total_pairs == 0:
        gen.broadcast("close_all", 60)
        return {"pairs": 0, "steps": steps, "error": "no pair could log in"}
    for rate in plan.rates:
        quiet = wait_quiet(server, gen, cores, log)
        start_at = time.monotonic() + 0.3
        w0 = start_at + plan.warmup_s
        w1 = w0 + plan.duration_s
        cmds = [
            (
                "chat_step",
                {
                    "rate": rate * n / total_pairs,
                    "start_at": start_at,
                    "warmup": plan.warmup_s,
                    "duration": plan.duration_s,
                    "drain": plan.drain_s,
                },
            )
            for n in ready
        ]
        gen.send(cmds)
        # Server CPU over exactly the counted window, read while the workers run.
        time.sleep(max(0.0, w0 - time.monotonic()))
        win = Window(server, gen, cores)
        win.start()
        finish = on_window(str(rate), plan.duration_s) if on_window is not None else None
        time.sleep(max(0.0, w1 - time.monotonic()))
        m = win.stop()
        res = gen.collect("chat_step", 30.0 + plan.warmup_s + plan.duration_s + plan.drain_s)
        delivered = sum(int(r["recv_window"]) for r in res)
        sent = sum(int(r["sent_window"]) for r in res)
        backlog = sum(int(r["backlog_after_drain"]) for r in res)
        lat_ms = [x / 1000.0 for r in res for x in r["lat_us"]]
        if finish is not None:
            finish()
        cpu = m["server_cpu_s"]
        p99 = percentile(lat_ms, 99)
        step = {
            "offered_per_s": rate,
            "sent_per_s": round(sent / plan.duration_s, 1),
            "delivered_per_s": round(delivered / plan.duration_s, 1),
            "p50_ms": round(percentile(lat_ms, 50), 3),
            "p99_ms": round(p99, 3),
            "max_ms": round(max(lat_ms), 3) if lat_ms else math.nan,
            "server_cpu_util": round(m["server_cpu_util"], 3),
            "server_cpu_us_per_msg": round(cpu / delivered * 1e6, 2) if delivered else math.nan,
            "other_util_server_core": round(m["other_util_server_cores"], 3),
            "other_util_gen_core": round(m["other_util_gen_cores"], 3),
            "backlog_after_drain": backlog,
            "skipped_by_backpressure": sum(int(r["skipped"]) for r in res),
            "lost_connections": sum(int(r["lost"]) for r in res),
            "gen_cpu_util": round(m["gen_cpu_util"], 3),
            "server_runqueue_wait": round(m["server_wait_util"], 3),
            "gen_runqueue_wait": round(m["gen_demand"] - m["gen_cpu_util"], 3),
            "generator_bound": m["gen_cpu_util"] + m["other_util_gen_cores"] > GEN_BOUND_UTIL,
            "server_core_saturated": m["server_cpu_util"] + m["other_util_server_cores"]
            > GEN_BOUND_UTIL,
            **quiet,
        }
        step["sustained"] = bool(
            delivered >= SUSTAINED_SHARE * rate * plan.duration_s
            and backlog == 0
            and p99 <= SUSTAINED_P99_MS
        )
        steps.append(step)
        log(
            f"    chat {rate:>6}/s: delivered {step['delivered_per_s']:>8.0f}/s "
            f"p50 {step['p50_ms']:.2f} ms p99 {step['p99_ms']:.2f} ms "
            f"cpu {step['server_cpu_us_per_msg']:.1f} us/msg ({step['server_cpu_util']:.0%}) "
            f"gen {step['gen_cpu_util']:.0%} others {step['other_util_server_core']:.0%}"
            f"{'' if step['sustained'] else ' [not sustained]'}"
        )
        if delivered < GIVE_UP_SHARE * rate * plan.duration_s:
            break
        if backlog:
            time.sleep(plan.drain_s)  # let the server empty its queues before the next step
    gen.broadcast("close_all", 120)
    sustained = [s["offered_per_s"] for s in steps if s["sustained"]]
    return {
        "pairs": total_pairs,
        "steps": steps,
        "peak_delivered_per_s": max(s["delivered_per_s"] for s in steps),
        "saturation_offered_per_s": max(sustained) if sustained else 0,
    }
