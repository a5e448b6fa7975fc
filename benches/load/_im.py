"""The issue-4 (RFC 6121 IM) and issue-5 (XEP-0045 MUC) scenarios, orchestrator side.

Like ``_scenarios``: each function runs one scenario against one started server with one
``Generator`` and returns a plain dict for the JSON result.  The worker side is
``_imgen``; the accounts used are laid out by ``_accounts.ImLayout``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._accounts import DOMAIN, MUC_DOMAIN, Account, ImLayout, chunks
from ._gen import Generator
from ._proc import peak_rss_bytes, reset_peak_rss, sample_tree, tree_pids
from ._scenarios import (
    GEN_BOUND_UTIL,
    GIVE_UP_SHARE,
    SUSTAINED_P99_MS,
    SUSTAINED_SHARE,
    Cores,
    Window,
    percentile,
    wait_quiet,
)
from ._servers import Server

__all__ = [
    "MucPlan",
    "MucRoomSet",
    "parse_rooms",
    "run_muc",
    "run_offline",
    "run_presence_storm",
    "run_roster_fetch",
]

Log = Callable[[str], None]
OnWindow = Callable[[str, float], Callable[[], None] | None] | None

#: Seconds without a presence stanza after the last client completed: the storm is over.
PRESENCE_QUIET_S: Final = 0.5
#: The server is done storing when its CPU stayed below this share for ``IDLE_S``.
IDLE_SHARE: Final = 0.05
IDLE_S: Final = 0.3
#: Sampling period of the server's CPU while it stores offline messages.
SAMPLE_S: Final = 0.01


def _creds(a: Account) -> tuple[str, str]:
    return (a.jid, a.password)


def _login_timeout(n: int) -> float:
    return 60.0 + n * 0.05


def _cpu_fields(m: dict[str, float]) -> dict[str, Any]:
    return {
        "server_cpu_util": round(m["server_cpu_util"], 3),
        "gen_cpu_util": round(m["gen_cpu_util"], 3),
        "other_util_server_core": round(m["other_util_server_cores"], 3),
        "other_util_gen_core": round(m["other_util_gen_cores"], 3),
        "generator_bound": m["gen_cpu_util"] + m["other_util_gen_cores"] > GEN_BOUND_UTIL,
        "server_core_saturated": m["server_cpu_util"] + m["other_util_server_cores"]
        > GEN_BOUND_UTIL,
    }


def _close(gen: Generator, settle: float = 1.0) -> None:
    """Close every generator connection and give the server ``settle`` s to process the
    departures (unavailable presence, leaving rooms) before the next measurement."""
    gen.broadcast("close_all", 180)
    time.sleep(settle)


# --- presence storm --------------------------------------------------------------------


def run_presence_storm(
    server: Server,
    gen: Generator,
    accounts: Sequence[Account],
    layout: ImLayout,
    *,
    users: int,
    concurrency: int,
    cores: Cores,
    log: Log,
    timeout: float = 120.0,
    on_window: OnWindow = None,
) -> dict[str, Any]:
    """``users`` clients (whole cliques) log in without presence; then all send their
    initial presence at once.  Counted: every ``<presence>`` the clients receive, and
    when each has seen all ``clique_size - 1`` contacts available."""
    cliques = max(1, min(layout.cliques, users // layout.clique_size))
    idx = list(layout.clique_users)[: cliques * layout.clique_size]
    contacts = layout.clique_size - 1
    parts = list(chunks([_creds(accounts[i]) for i in idx], len(gen.conns)))
    per = max(1, concurrency // len(parts))
    setup = gen.call(
        [("presence_setup", {"users": p, "contacts": contacts, "concurrency": per}) for p in parts],
        _login_timeout(len(idx)),
    )
    ready = sum(int(s["ok"]) for s in setup)
    failed = sum(int(s["failed"]) for s in setup)
    if ready < len(idx):
        log(f"    presence: {failed} of {len(idx)} logins failed")
    quiet = wait_quiet(server, gen, cores, log)
    start_at = time.monotonic() + 0.3
    gen.send(
        [
            ("presence_go", {"start_at": start_at, "timeout": timeout, "quiet": PRESENCE_QUIET_S})
            for _ in parts
        ]
    )
    time.sleep(max(0.0, start_at - time.monotonic()))
    win = Window(server, gen, cores)
    win.start()
    finish = on_window("presence", 0.0) if on_window is not None else None
    res = gen.collect("presence_go", timeout + 30)
    m = win.stop()
    if finish is not None:
        finish()
    t0 = min(float(r["t_start"]) for r in res)
    t_last = max(float(r["t_last"]) for r in res)
    done = [x for r in res for x in r["complete_s"]]
    complete = [x for x in done if x is not None]
    total = sum(int(r[k]) for r in res for k in ("available", "unavailable", "own", "other"))
    wall = max(t_last - t0, 1e-9)
    out: dict[str, Any] = {
        "clients": ready,
        "contacts_each": contacts,
        "login_failed": failed,
        "presence_received": total,
        "available_from_contacts": sum(int(r["available"]) for r in res),
        "unavailable_received": sum(int(r["unavailable"]) for r in res),
        "own_reflected": sum(int(r["own"]) for r in res),
        "other_received": sum(int(r["other"]) for r in res),
        "expected_minimum": ready * contacts,
        "storm_s": round(wall, 4),
        "presence_per_s": round(total / wall, 1),
        "clients_complete": len(complete),
        "all_seen_s": round(max(complete), 4) if len(complete) == len(done) and done else None,
        "p50_seen_s": round(percentile(complete, 50), 4),
        "p99_seen_s": round(percentile(complete, 99), 4),
        "write_s": round(max(float(r["write_s"]) for r in res), 4),
        "server_cpu_s": round(m["server_cpu_s"], 3),
        "server_cpu_us_per_presence": round(m["server_cpu_s"] / total * 1e6, 2)
        if total
        else math.nan,
        "lost_connections": sum(int(r["lost"]) for r in res),
        **_cpu_fields(m),
        **quiet,
    }
    _close(gen, settle=2.0)
    log(
        f"    presence storm {ready} clients x {contacts} contacts: "
        f"{out['presence_per_s']:.0f} presence/s ({total} in {wall:.2f} s), all seen "
        f"after {_s(out['all_seen_s'])} (p50 {_s(out['p50_seen_s'])}), "
        f"server cpu {out['server_cpu_util']:.0%}, generator {out['gen_cpu_util']:.0%}"
        + (f" INCOMPLETE {len(done) - len(complete)} clients" if len(complete) < len(done) else "")
    )
    return out


def _s(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f} s"


# --- roster fetch --------------------------------------------------------------------


def run_roster_fetch(
    server: Server,
    gen: Generator,
    account: Account,
    *,
    items: int,
    repeats: int,
    log: Log,
) -> dict[str, Any]:
    """One client fetches its ``items``-item roster ``repeats`` times in a row (no
    roster versioning).  Per fetch: seconds from writing the iq to the end of the answer,
    and the server's RSS growth at the peak (``VmHWM`` reset just before) and after."""
    setup = gen.call_one(0, "roster_setup", _login_timeout(1), user=_creds(account))
    if not setup["ok"]:
        _close(gen, settle=0.2)
        return {"error": f"login failed: {setup['errors']}"}
    time.sleep(0.5)
    fetches: list[dict[str, Any]] = []
    peak_ok = True
    first_rss = sample_tree(server.pid).rss_bytes
    for i in range(repeats):
        pids = tree_pids(server.pid)
        before = sample_tree(server.pid, pids).rss_bytes
        peak_ok = reset_peak_rss(pids) and peak_ok
        r = gen.call_one(0, "roster_fetch", 60.0, ident=f"roster-{i}", timeout=30.0)
        peak = peak_rss_bytes(pids)
        after = sample_tree(server.pid, pids).rss_bytes
        fetches.append(
            {
                "ms": round(float(r["seconds"]) * 1000, 3),
                "items": int(r["items"]),
                "bytes": int(r["bytes"]),
                "iq_error": bool(r["iq_error"]),
                "peak_growth_kb": round((peak - before) / 1024, 1) if peak_ok else None,
                "growth_kb": round((after - before) / 1024, 1),
            }
        )
    last_rss = sample_tree(server.pid).rss_bytes
    _close(gen, settle=0.5)
    ms = [f["ms"] for f in fetches]
    peaks = [f["peak_growth_kb"] for f in fetches if f["peak_growth_kb"] is not None]
    out: dict[str, Any] = {
        "items_expected": items,
        "items_received": fetches[0]["items"] if fetches else 0,
        "bytes": fetches[0]["bytes"] if fetches else 0,
        "repeats": len(fetches),
        "median_ms": round(percentile(ms, 50), 3),
        "first_ms": ms[0] if ms else math.nan,
        "min_ms": min(ms) if ms else math.nan,
        "max_ms": max(ms) if ms else math.nan,
        "first_peak_rss_growth_kb": fetches[0]["peak_growth_kb"] if fetches else None,
        "max_peak_rss_growth_kb": max(peaks) if peaks else None,
        "median_peak_rss_growth_kb": round(percentile(peaks, 50), 1) if peaks else None,
        "rss_growth_over_all_kb": round((last_rss - first_rss) / 1024, 1),
        "peak_rss_method": "VmHWM reset via clear_refs" if peak_ok else "unavailable",
        "iq_errors": sum(1 for f in fetches if f["iq_error"]),
        "fetches": fetches,
    }
    log(
        f"    roster fetch {items} items: median {out['median_ms']:.1f} ms "
        f"(first {out['first_ms']:.1f} ms, {out['items_received']} items, "
        f"{out['bytes'] / 1024:.0f} KiB), server RSS peak growth "
        f"{out['first_peak_rss_growth_kb']} KB first, {out['max_peak_rss_growth_kb']} KB max"
    )
    return out


# --- offline messages ------------------------------------------------------------------


class _CpuSampler(threading.Thread):
    """Samples the server's CPU every ``SAMPLE_S`` and remembers when it was last busy
    (more than ``IDLE_SHARE`` of a core over a sample)."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.pids = tree_pids(server.pid)
        self.root = server.pid
        self.stop_at = time.monotonic() + 600
        self.last_busy = 0.0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        prev_t = time.monotonic()
        prev_c = sample_tree(self.root, self.pids).cpu_s
        while not self._halt.is_set() and time.monotonic() < self.stop_at:
            time.sleep(SAMPLE_S)
            t = time.monotonic()
            c = sample_tree(self.root, self.pids).cpu_s
            if c - prev_c > IDLE_SHARE * (t - prev_t):
                self.last_busy = t
            prev_t, prev_c = t, c
            self.samples += 1

    def halt(self) -> None:
        self._halt.set()
        self.join(5)


def run_offline(
    server: Server,
    gen: Generator,
    recipient: Account,
    sender: Account,
    *,
    count: int,
    run: int,
    cores: Cores,
    log: Log,
    timeout: float = 300.0,
    on_window: OnWindow = None,
) -> dict[str, Any]:
    """``sender`` writes ``count`` numbered chat messages to the offline ``recipient``
    (store: until the server answered a ping sent after them and its CPU fell idle);
    then ``recipient`` logs in and sends its initial presence (flush: until all
    ``count`` have arrived, checked in order)."""
    rcpt, snd = _creds(recipient), _creds(sender)
    drained = gen.call_one(0, "offline_drain", 120.0, creds=rcpt, run=run, quiet=1.0, timeout=60.0)
    if drained["messages"]:
        log(f"    offline: {drained['messages']} messages of an earlier round flushed first")
    time.sleep(0.5)
    quiet = wait_quiet(server, gen, cores, log)
    sampler = _CpuSampler(server)
    win = Window(server, gen, cores)
    win.start()
    sampler.start()
    finish = on_window("offline-store", 0.0) if on_window is not None else None
    sent = gen.call_one(
        0,
        "offline_send",
        timeout + 30,
        creds=snd,
        to=recipient.jid,
        count=count,
        run=run,
        domain=DOMAIN,
        timeout=timeout,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if time.monotonic() - max(sampler.last_busy, float(sent["t_pong"])) >= IDLE_S:
            break
    sampler.halt()
    m = win.stop()
    if finish is not None:
        finish()
    t0 = float(sent["t_start"])
    stored_at = max(float(sent["t_pong"]), sampler.last_busy)
    closing = gen.call_one(0, "offline_sender_close", 30.0)
    time.sleep(0.5)
    quiet2 = wait_quiet(server, gen, cores, log)
    win2 = Window(server, gen, cores)
    win2.start()
    finish = on_window("offline-flush", 0.0) if on_window is not None else None
    got = gen.call_one(
        0, "offline_receive", timeout + 60, creds=rcpt, count=count, run=run, timeout=timeout
    )
    m2 = win2.stop()
    if finish is not None:
        finish()
    _close(gen, settle=0.5)
    store_s = stored_at - t0
    flush_s = got["last_s"]
    out: dict[str, Any] = {
        "messages": count,
        "leftover_flushed_first": int(drained["messages"]),
        "store_s": round(store_s, 3),
        "store_per_s": round(count / store_s, 1) if store_s > 0 else math.nan,
        "write_s": round(float(sent["t_written"]) - t0, 3),
        "ping_answered_s": round(float(sent["t_pong"]) - t0, 3),
        "store_bounced": int(closing["errors"]),
        "store_server_cpu_s": round(m["server_cpu_s"], 3),
        "store_server_cpu_us_per_msg": round(m["server_cpu_s"] / count * 1e6, 1),
        "store": _cpu_fields(m),
        "login_s": round(float(got["login_s"]), 4),
        "flush_s": round(float(flush_s), 3) if flush_s is not None else None,
        "first_after_presence_s": round(float(got["first_s"]), 4)
        if got["first_s"] is not None
        else None,
        "flush_per_s": round(int(got["received"]) / float(flush_s), 1) if flush_s else math.nan,
        "received": int(got["received"]),
        "distinct": int(got["distinct"]),
        "in_order": bool(got["in_order"]),
        "out_of_order": int(got["out_of_order"]),
        "stale": int(got["stale"]),
        "recipient_errors": int(got["errors"]),
        "recipient_lost": bool(got["lost"]),
        "flush_server_cpu_s": round(m2["server_cpu_s"], 3),
        "flush": _cpu_fields(m2),
        "complete": int(got["received"]) == count and bool(got["in_order"]),
        **quiet,
        "quiet_wait_flush_s": quiet2["quiet_wait_s"],
    }
    log(
        f"    offline {count}: stored in {store_s:.2f} s (ping after {out['ping_answered_s']:.2f}"
        f" s; {out['store_bounced']} bounced), flushed {out['received']} in "
        f"{_s(out['flush_s'])} after presence (login {out['login_s'] * 1000:.0f} ms), "
        f"in order: {out['in_order']}"
    )
    return out


# --- MUC -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class MucRoomSet:
    """``rooms`` rooms of ``size`` occupants each, at the stepped rates of ``MucPlan``."""

    rooms: int
    size: int

    @property
    def label(self) -> str:
        return f"{self.rooms}x{self.size}"

    @property
    def users(self) -> int:
        return self.rooms * self.size


def parse_rooms(text: str) -> tuple[MucRoomSet, ...]:
    """``"1x50,1x200,100x5"`` -> room sets."""
    out: list[MucRoomSet] = []
    for part in text.replace(" ", "").split(","):
        if part:
            rooms, _, size = part.partition("x")
            out.append(MucRoomSet(rooms=int(rooms), size=int(size)))
    return tuple(out)


@dataclass(frozen=True, kw_only=True, slots=True)
class MucPlan:
    """Offered rates are in delivered stanzas/s (messages/s x room size)."""

    sets: tuple[MucRoomSet, ...]
    rates: tuple[int, ...]
    warmup_s: float
    duration_s: float
    drain_s: float


def _muc_assign(
    rs: MucRoomSet, users: Sequence[Account], workers: int
) -> list[list[tuple[tuple[str, str], str, str]]]:
    """(creds, room, nick) per worker: whole rooms per worker when there are enough
    rooms, else each room's occupants spread over the workers."""
    occupants = [
        (_creds(users[r * rs.size + j]), f"r{rs.label}-{r:03d}@{MUC_DOMAIN}", f"n{j}")
        for r in range(rs.rooms)
        for j in range(rs.size)
    ]
    if rs.rooms >= workers:
        per_room = [occupants[r * rs.size : (r + 1) * rs.size] for r in range(rs.rooms)]
        return [[o for room in part for o in room] for part in chunks(per_room, workers)]
    return [occupants[w::workers] for w in range(workers)]


def run_muc(
    server: Server,
    gen: Generator,
    users: Sequence[Account],
    plan: MucPlan,
    *,
    concurrency: int,
    cores: Cores,
    log: Log,
    on_window: OnWindow = None,
) -> dict[str, Any]:
    """For each room set: log its occupants in (initial presence sent), the creators
    join and accept the default configuration, the others join; then groupchat messages
    at each offered rate, spread round-robin over all occupants, each stamped with its
    send time.  Counted per step as in the chat scenario, per delivered copy."""
    out: dict[str, Any] = {}
    for rs in plan.sets:
        if rs.users > len(users):
            out[rs.label] = {"error": f"needs {rs.users} accounts, {len(users)} provisioned"}
            continue
        try:
            out[rs.label] = _run_room_set(
                server,
                gen,
                users,
                rs,
                plan,
                concurrency=concurrency,
                cores=cores,
                log=log,
                on_window=on_window,
            )
        finally:
            _close(gen, settle=1.0)
    return out


def _run_room_set(
    server: Server,
    gen: Generator,
    users: Sequence[Account],
    rs: MucRoomSet,
    plan: MucPlan,
    *,
    concurrency: int,
    cores: Cores,
    log: Log,
    on_window: OnWindow,
) -> dict[str, Any]:
    parts = _muc_assign(rs, users, len(gen.conns))
    per = max(1, concurrency // len(parts))
    setup = gen.call(
        [("muc_setup", {"occupants": p, "concurrency": per}) for p in parts],
        _login_timeout(rs.users),
    )
    ready = sum(int(s["ok"]) for s in setup)
    t0 = time.monotonic()
    join_timeout = 30.0 + rs.users * 0.05
    creators = gen.call(
        [("muc_join", {"nicks": ["n0"], "configure": True, "timeout": join_timeout})] * len(parts),
        join_timeout + 30,
    )
    others = [f"n{j}" for j in range(1, rs.size)]
    joined = gen.call(
        [("muc_join", {"nicks": others, "configure": False, "timeout": join_timeout})] * len(parts),
        join_timeout + 30,
    )
    join_s = time.monotonic() - t0
    n_joined = sum(int(r["joined"]) for r in creators + joined)
    failures = [f for r in creators + joined for f in r["failures"]]
    res: dict[str, Any] = {
        "rooms": rs.rooms,
        "size": rs.size,
        "logged_in": ready,
        "joined": n_joined,
        "join_s": round(join_s, 3),
        "join_failures": failures[:5],
        "steps": [],
    }
    log(
        f"    muc {rs.label}: {n_joined} of {rs.users} occupants joined in {join_s:.2f} s"
        + (f"; failures: {failures[:2]}" if failures else "")
    )
    if n_joined < rs.users:
        res["error"] = f"only {n_joined} of {rs.users} occupants joined: {failures[:2]}"
        return res
    time.sleep(1.0)  # join presence fan-out settles
    steps: list[dict[str, Any]] = res["steps"]
    for rate in plan.rates:
        step = _muc_step(
            server, gen, rs, plan, rate, [len(p) for p in parts], cores, log, on_window
        )
        steps.append(step)
        if step["delivered_per_s"] < GIVE_UP_SHARE * rate:
            break
        if step["backlog_after_drain"]:
            time.sleep(plan.drain_s)
    sustained = [s["offered_per_s"] for s in steps if s["sustained"]]
    res["peak_delivered_per_s"] = max((s["delivered_per_s"] for s in steps), default=0.0)
    res["saturation_offered_per_s"] = max(sustained) if sustained else 0
    return res


def _muc_step(
    server: Server,
    gen: Generator,
    rs: MucRoomSet,
    plan: MucPlan,
    rate: int,
    shares: list[int],
    cores: Cores,
    log: Log,
    on_window: OnWindow,
) -> dict[str, Any]:
    """One offered rate (delivered copies/s); each worker sends in proportion to its
    occupants (``shares``)."""
    msg_rate = rate / rs.size
    quiet = wait_quiet(server, gen, cores, log)
    start_at = time.monotonic() + 0.3
    w0 = start_at + plan.warmup_s
    w1 = w0 + plan.duration_s
    total_occ = max(1, sum(shares))
    gen.send(
        [
            (
                "muc_step",
                {
                    "rate": msg_rate * n / total_occ,
                    "start_at": start_at,
                    "warmup": plan.warmup_s,
                    "duration": plan.duration_s,
                },
            )
            for n in shares
        ]
    )
    time.sleep(max(0.0, w0 - time.monotonic()))
    win = Window(server, gen, cores)
    win.start()
    finish = on_window(f"muc-{rs.label}-{rate}", plan.duration_s) if on_window else None
    time.sleep(max(0.0, w1 - time.monotonic()))
    m = win.stop()
    sent = gen.collect("muc_step", 30.0 + plan.warmup_s + plan.duration_s)
    by_room: Counter[str] = Counter()
    for s in sent:
        by_room.update({k: int(v) for k, v in s["sent_by_room"].items()})
    expected = [
        sum(by_room[room] * int(n) for room, n in s["occupants_by_room"].items()) for s in sent
    ]
    drained = gen.call(
        [("muc_drain", {"expected": e, "timeout": plan.drain_s}) for e in expected],
        30.0 + plan.drain_s,
    )
    if finish is not None:
        finish()
    delivered = sum(int(d["recv_window"]) for d in drained)
    recv_total = sum(int(d["recv_total"]) for d in drained)
    sent_window = sum(int(s["sent_window"]) for s in sent)
    lat_ms = [x / 1000.0 for d in drained for x in d["lat_us"]]
    errors = sum(int(d["errors"]) for d in drained)
    p99 = percentile(lat_ms, 99)
    backlog = sum(expected) - recv_total
    cpu = m["server_cpu_s"]
    step: dict[str, Any] = {
        "offered_per_s": rate,
        "messages_per_s": round(msg_rate, 2),
        "sent_per_s": round(sent_window / plan.duration_s, 1),
        "delivered_per_s": round(delivered / plan.duration_s, 1),
        "p50_ms": round(percentile(lat_ms, 50), 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(max(lat_ms), 3) if lat_ms else math.nan,
        "server_cpu_us_per_delivery": round(cpu / delivered * 1e6, 2) if delivered else math.nan,
        "backlog_after_drain": backlog,
        "errors": errors,
        "error_sample": next((d["error_sample"] for d in drained if d["error_sample"]), ""),
        "skipped_by_backpressure": sum(int(s["skipped"]) for s in sent),
        "lost_connections": sum(int(d["lost"]) for d in drained),
        "gen_runqueue_wait": round(m["gen_demand"] - m["gen_cpu_util"], 3),
        "server_runqueue_wait": round(m["server_wait_util"], 3),
        **_cpu_fields(m),
        **quiet,
    }
    # One message's copies of slack: at low message rates the window holds a whole
    # number of messages (25 msg/s x 1.5 s = 37 or 38, each 200 copies).
    step["sustained"] = bool(
        delivered >= SUSTAINED_SHARE * rate * plan.duration_s - rs.size
        and backlog <= 0
        and errors == 0
        and p99 <= SUSTAINED_P99_MS
    )
    log(
        f"    muc {rs.label} {rate:>6}/s ({msg_rate:.0f} msg/s): delivered "
        f"{step['delivered_per_s']:>8.0f}/s p50 {step['p50_ms']:.2f} ms p99 "
        f"{step['p99_ms']:.2f} ms cpu {step['server_cpu_us_per_delivery']:.1f} us/copy "
        f"({step['server_cpu_util']:.0%}) gen {step['gen_cpu_util']:.0%} others "
        f"{step['other_util_server_core']:.0%}"
        + (f" errors {errors}" if errors else "")
        + ("" if step["sustained"] else " [not sustained]")
    )
    return step
