"""Command line and orchestration: ``python -m benches.load --help``.

One run: detect the servers, make the accounts, configure and provision each server in
its own directory under a temporary directory, then for every round start all servers
side by side (each pinned to the server core), run the scenarios against each in turn
(the order alternates between rounds), and stop them.  Everything started is stopped in
``finally`` (also on Ctrl-C and SIGTERM).  The result goes to a JSON file and a Markdown
file under ``--out``; the Markdown is printed too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from ._proc import raise_nofile_limit
from ._servers import (
    MUC_MAX_USERS,
    MUC_MESSAGE_BURST,
    MUC_MESSAGE_RATE,
    OFFLINE_LIMIT,
    REPO,
    SERVER_TYPES,
    Detected,
    Server,
    free_port,
)

if TYPE_CHECKING:
    from ._accounts import Account, ImLayout
    from ._gen import Generator
    from ._im import MucPlan
    from ._scenarios import Cores

__all__ = ["main"]

ALL_SERVERS: Final = ("xmppx", "prosody", "ejabberd")
ALL_SCENARIOS: Final = ("idle", "login", "chat", "presence", "roster", "offline", "muc")
IM_SCENARIOS: Final = frozenset({"presence", "roster", "offline", "muc"})
ISSUE3_SCENARIOS: Final = frozenset({"idle", "login", "chat"})
#: Issue 4: 510 users in cliques of 51 mutual contacts.
CLIQUES: Final = 10
CLIQUE_SIZE: Final = 51


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.replace(" ", "").split(",") if x)


def _cpus(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return tuple(out)


#: Settings of the two modes; any of them can be overridden by its flag.
PRESETS: Final[dict[str, dict[str, Any]]] = {
    "quick": {
        "login_clients": 1000,
        "idle_levels": (1000, 2000),
        "chat_pairs": 50,
        "chat_rates": (1000, 2000, 5000, 10000, 20000, 40000, 80000),
        "chat_warmup": 0.5,
        "chat_duration": 2.0,
        "chat_drain": 2.0,
        "quiet_wait": 3.0,
        "presence_users": 510,
        "roster_items": 1000,
        "roster_repeats": 10,
        "offline_messages": 10000,
        "muc_rooms": "1x50,1x200,100x5",
        "muc_rates": (5000, 10000, 20000, 40000, 80000),
        "muc_warmup": 0.5,
        "muc_duration": 1.5,
        "muc_drain": 2.0,
    },
    "full": {
        "login_clients": 3000,
        "idle_levels": (1000, 5000, 10000),
        "chat_pairs": 100,
        "chat_rates": (1000, 2000, 5000, 10000, 20000, 40000, 60000, 80000),
        "chat_warmup": 2.0,
        "chat_duration": 8.0,
        "chat_drain": 3.0,
        "quiet_wait": 20.0,
        "presence_users": 510,
        "roster_items": 1000,
        "roster_repeats": 30,
        "offline_messages": 10000,
        "muc_rooms": "1x50,1x200,100x5",
        "muc_rates": (5000, 10000, 20000, 30000, 40000, 60000, 80000),
        "muc_warmup": 2.0,
        "muc_duration": 6.0,
        "muc_drain": 3.0,
    },
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benches.load",
        description="Load comparison of xmppx, Prosody and ejabberd on loopback (issues 3, "
        "4 and 5).",
    )
    p.add_argument(
        "--servers",
        default=",".join(ALL_SERVERS),
        help="comma-separated subset of xmppx,prosody,ejabberd (default: all; those not "
        "installed are skipped with the reason)",
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    p.add_argument("--quick", action="store_true", help="smaller settings: a few minutes")
    p.add_argument(
        "--scenarios",
        default=",".join(ALL_SCENARIOS),
        help=f"comma-separated subset of {','.join(ALL_SCENARIOS)} (run in this order; "
        "default: all)",
    )
    p.add_argument("--login-clients", type=int, help="clients in the login storm")
    p.add_argument(
        "--login-concurrency",
        type=int,
        default=100,
        help="logins in flight at once (default 100: the listen backlog of all three)",
    )
    p.add_argument("--idle-levels", type=_ints, help="idle connection counts, e.g. 1000,5000")
    p.add_argument("--chat-pairs", type=int, help="pairs of chatting clients")
    p.add_argument("--chat-rates", type=_ints, help="offered msg/s steps, e.g. 1000,5000")
    p.add_argument("--chat-warmup", type=float, help="seconds per step not counted")
    p.add_argument("--chat-duration", type=float, help="seconds per step counted")
    p.add_argument("--chat-drain", type=float, help="seconds to wait for in-flight messages")
    p.add_argument(
        "--presence-users",
        type=int,
        help=f"presence storm clients, whole cliques of {CLIQUE_SIZE} (default {CLIQUES} "
        f"cliques: {CLIQUES * CLIQUE_SIZE})",
    )
    p.add_argument("--roster-items", type=int, help="items of the roster fetched (default 1000)")
    p.add_argument("--roster-repeats", type=int, help="roster fetches (quick 10, full 30)")
    p.add_argument("--offline-messages", type=int, help="messages sent to the offline user (10000)")
    p.add_argument(
        "--muc-rooms",
        help="room sets ROOMSxOCCUPANTS, comma-separated (default 1x50,1x200,100x5)",
    )
    p.add_argument(
        "--muc-rates",
        type=_ints,
        help="offered MUC steps in delivered stanzas/s (messages/s x occupants), e.g. 5000,20000",
    )
    p.add_argument("--muc-warmup", type=float, help="seconds per MUC step not counted")
    p.add_argument("--muc-duration", type=float, help="seconds per MUC step counted")
    p.add_argument("--muc-drain", type=float, help="seconds to wait for MUC copies in flight")
    p.add_argument("--server-cpus", default="0", help="cores for the servers (taskset list)")
    p.add_argument("--gen-cpus", default="1", help="cores for the load generator")
    p.add_argument("--gen-procs", type=int, default=2, help="generator processes")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers and generator at this nice value (e.g. -5 as root) so that other "
        "processes on a shared machine disturb less; it slows those processes (default 0)",
    )
    p.add_argument(
        "--quiet-below",
        type=float,
        default=0.25,
        help="before each measurement wait until other processes take less than this "
        "share of the server core (default 0.25) ...",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="... but at most this many seconds (quick: 3, full: 20)",
    )
    p.add_argument(
        "--profile-xmppx",
        type=int,
        metavar="RATE",
        default=0,
        help="record py-spy (if installed) on xmppx during the login storm and the chat "
        "step at RATE msg/s of the last round; writes collapsed stacks and a summary",
    )
    p.add_argument(
        "--profile-xmppx-im",
        metavar="LABELS",
        default="",
        help="record py-spy on xmppx (last round) during these IM/MUC windows, "
        "comma-separated: presence, offline-store, offline-flush, muc-<set>-<rate> "
        "(e.g. muc-1x200-20000)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / ".benchmarks" / "load",
        help="directory for the JSON and Markdown results (default .benchmarks/load)",
    )
    p.add_argument("--keep", action="store_true", help="keep the servers' temporary directory")
    p.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print the Markdown of a saved result (recomputing medians) and exit",
    )
    return p


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _command_line(argv: Sequence[str]) -> str:
    prefix = ""
    if "PYTHONPATH" in os.environ:
        prefix = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} "
    return prefix + "python -m benches.load " + " ".join(shlex.quote(a) for a in argv)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_state() -> dict[str, object]:
    """HEAD and the files changed in the work tree (read-only git commands): the xmppx
    measured is the code in the tree, which may hold uncommitted work."""
    out: dict[str, object] = {}
    for key, argv in (
        ("head", ["git", "rev-parse", "--short", "HEAD"]),
        ("changed", ["git", "status", "--porcelain", "--", "python", "rust"]),
    ):
        try:
            res = subprocess.run(
                argv, cwd=REPO, capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if res.returncode == 0:
            text = res.stdout.strip()
            out[key] = text if key == "head" else text.splitlines()
    return out


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    except OSError:
        return "?"


def _event_loop(srv: Server) -> str:
    """The event loop an xmppx server says it runs on ("asyncio" or "uvloop")."""
    if srv.name != "xmppx":
        return ""
    try:
        text = (srv.workdir / "stdout.log").read_text(errors="replace")
    except OSError:
        return ""
    found = re.findall(r"event loop (\w+)", text)
    return found[-1] if found else ""


class _Stop(Exception):
    """SIGTERM: unwind through ``finally`` like Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _py_spy_hook(
    server: Server,
    out_dir: Path,
    rate: int,
    log: Callable[[str], None],
    *,
    labels: set[str] | None = None,
) -> Callable[[str, float], Callable[[], None] | None]:
    """An ``on_window`` hook recording py-spy on the xmppx server during the login storm
    and the chat step at ``rate`` msg/s, or the windows named in ``labels`` (stopped with
    SIGINT when the window ends)."""
    exe = shutil.which("py-spy")
    wanted = labels if labels is not None else {"login", str(rate)}

    def hook(label: str, duration: float) -> Callable[[], None] | None:
        if label not in wanted:
            return None
        if exe is None:
            log("    py-spy is not installed: no profile (pip install py-spy)")
            return None
        raw = out_dir / f"xmppx-profile-{label}.txt"
        proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(server.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def finish() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            if raw.exists():
                summary = _profile_summary(raw)
                (out_dir / f"xmppx-profile-{label}-top.txt").write_text(summary)
                log(f"    py-spy profile: {raw}\n" + summary)

        return finish

    return hook


def _py_spy_labels_hook(
    server: Server, out_dir: Path, labels: set[str], log: Callable[[str], None]
) -> Callable[[str, float], Callable[[], None] | None]:
    """Like ``_py_spy_hook`` for the IM and MUC windows named in ``labels``."""
    inner = _py_spy_hook(server, out_dir, -1, log, labels=labels)
    return inner


def _run_im(
    srv: Server,
    gen: Generator,
    accounts: Sequence[Account],
    layout: ImLayout,
    scenarios: Sequence[str],
    preset: dict[str, Any],
    muc_plan: MucPlan,
    *,
    concurrency: int,
    cores: Cores,
    run: int,
    on_window: Callable[[str, float], Callable[[], None] | None] | None,
    fresh: bool,
) -> dict[str, Any]:
    """The issue-4 and issue-5 scenarios selected, each on a fresh server process (the
    server is restarted and warmed up before each, unless ``fresh`` says the first one
    already has one: Prosody runs 2-3x slower after having served many sessions) and
    isolated: one failing is recorded in its own result and the next one still runs."""
    from ._im import run_muc, run_offline, run_presence_storm, run_roster_fetch
    from ._scenarios import warm_up

    out: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    if "presence" in scenarios:
        steps.append(
            (
                "presence",
                lambda: run_presence_storm(
                    srv,
                    gen,
                    accounts,
                    layout,
                    users=preset["presence_users"],
                    concurrency=concurrency,
                    cores=cores,
                    log=_log,
                    on_window=on_window,
                ),
            )
        )
    if "roster" in scenarios:
        steps.append(
            (
                "roster",
                lambda: run_roster_fetch(
                    srv,
                    gen,
                    accounts[layout.roster_user],
                    items=layout.big_roster,
                    repeats=preset["roster_repeats"],
                    log=_log,
                ),
            )
        )
    if "offline" in scenarios:
        steps.append(
            (
                "offline",
                lambda: run_offline(
                    srv,
                    gen,
                    accounts[layout.offline_recipient],
                    accounts[layout.offline_sender],
                    count=preset["offline_messages"],
                    run=run,
                    cores=cores,
                    log=_log,
                    on_window=on_window,
                ),
            )
        )
    if "muc" in scenarios:
        muc_users = [accounts[i] for i in layout.muc_users_range]
        steps.append(
            (
                "muc",
                lambda: run_muc(
                    srv,
                    gen,
                    muc_users,
                    muc_plan,
                    concurrency=concurrency,
                    cores=cores,
                    log=_log,
                    on_window=on_window,
                ),
            )
        )
    pids: dict[str, int] = {}
    for name, step in steps:
        try:
            if not fresh:
                srv.stop()
                srv.start()
                warm_up(srv, gen, accounts[:20])
            fresh = False
            pids[name] = srv.pid
            time.sleep(1.0)
            out[name] = step()
        except Exception as exc:  # recorded; the other scenarios still run
            _log(f"  {srv.name} {name} failed: {type(exc).__name__}: {exc}")
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(Exception):
                gen.broadcast("close_all", 120)
            if not srv.running:  # the next scenario restarts it
                out[name]["error"] += " (the server died; see its log)"
    out["im_pids"] = pids
    return out


def _profile_summary(raw: Path, top: int = 25) -> str:
    """Self time and inclusive time per function from py-spy's collapsed stacks."""
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        if frames:
            self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        for f in set(frames):
            incl_n[f] = incl_n.get(f, 0) + n
    if not total:
        return "(no samples)\n"
    out = [f"{total} samples; self time:"]
    for f, n in sorted(self_n.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {f}")
    out.append("inclusive time:")
    for f, n in sorted(incl_n.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {f}")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    if args.render is not None:
        from ._report import markdown, ratios, summarize

        saved = json.loads(args.render.read_text())
        names = [n for n in ALL_SERVERS if n in saved["meta"]["versions"]]
        saved["summary"] = summarize(saved["rounds"], names)
        saved["ratios"] = ratios(saved["summary"])
        print(markdown(saved))
        return 0
    preset = dict(PRESETS["quick" if args.quick else "full"])
    for key in preset:
        val = getattr(args, key, None)
        if val is not None:
            preset[key] = val
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(ALL_SCENARIOS)
    if unknown:
        _log(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        return 2
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in wanted if s not in SERVER_TYPES]
    if bad:
        _log(f"unknown server(s): {', '.join(bad)} (choose from {', '.join(ALL_SERVERS)})")
        return 2
    server_cpus = _cpus(args.server_cpus)
    gen_cpus = _cpus(args.gen_cpus)
    if set(server_cpus) & set(gen_cpus):
        _log("warning: server and generator cores overlap; the numbers will mix their loads")

    nofile = raise_nofile_limit()
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.sched_setaffinity(0, gen_cpus)
    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
        except OSError as exc:
            _log(f"cannot set nice {args.nice}: {exc}")

    detected: dict[str, Detected] = {n: SERVER_TYPES[n].detect() for n in wanted}
    skipped = {n: d.reason for n, d in detected.items() if d.version is None}
    names = [n for n in wanted if n not in skipped]
    for n, why in skipped.items():
        _log(f"skipping {n}: {why}")
    if not names:
        _log("no server to run")
        return 1
    versions = {n: detected[n].version or "" for n in names}
    git_state = _git_state()
    _log("servers: " + ", ".join(f"{n} {versions[n]}" for n in names))

    levels = tuple(sorted(preset["idle_levels"])) if "idle" in scenarios else ()
    n_users = max(
        preset["login_clients"] if "login" in scenarios else 0,
        max(levels) if levels else 0,
        2 * preset["chat_pairs"] if "chat" in scenarios else 0,
        20,
    )
    layout = None
    if IM_SCENARIOS & set(scenarios):
        from ._accounts import ImLayout
        from ._im import parse_rooms

        muc_sets = parse_rooms(preset["muc_rooms"]) if "muc" in scenarios else ()
        layout = ImLayout(
            base=n_users,
            cliques=CLIQUES,
            clique_size=CLIQUE_SIZE,
            big_roster=preset["roster_items"] if "roster" in scenarios else 0,
            muc_users=max((rs.users for rs in muc_sets), default=0),
        )
        n_users = layout.total
    if max(levels, default=0) + 1000 > nofile:
        _log(f"warning: open-files limit {nofile} is low for {max(levels)} idle connections")

    # Imported here: the generator's xmppx (this checkout's python/ unless installed).
    src = str(REPO / "python")
    if src not in sys.path:
        sys.path.insert(0, src)
    from ._accounts import install_salted_cache, make_accounts
    from ._gen import Generator
    from ._im import MucPlan, parse_rooms
    from ._scenarios import ChatPlan, Cores, run_chat, run_idle, run_login_storm, warm_up

    cores = Cores(
        server=server_cpus,
        gen=gen_cpus,
        quiet_below=args.quiet_below,
        quiet_wait=preset["quiet_wait"],
    )

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="xmppx-load-"))
    servers: dict[str, Server] = {}
    rounds: list[dict[str, Any]] = []
    started = time.time()
    try:
        t0 = time.monotonic()
        accounts = make_accounts(n_users, args.out / "cache")
        _log(f"{len(accounts)} accounts ready in {time.monotonic() - t0:.1f} s")
        install_salted_cache(accounts)
        rosters = layout.rosters(accounts) if layout is not None else None
        for n in names:
            srv = SERVER_TYPES[n](workdir / n, port=free_port(), cpus=args.server_cpus, log=_log)
            servers[n] = srv
            srv.configure()
            srv.provision(accounts, rosters)
            _log(f"{n}: port {srv.port}, provisioned: {srv.provision_info}")
        plan = ChatPlan(
            pairs=preset["chat_pairs"],
            rates=tuple(preset["chat_rates"]),
            warmup_s=preset["chat_warmup"],
            duration_s=preset["chat_duration"],
            drain_s=preset["chat_drain"],
        )
        muc_plan = MucPlan(
            sets=parse_rooms(preset["muc_rooms"]),
            rates=tuple(preset["muc_rates"]),
            warmup_s=preset["muc_warmup"],
            duration_s=preset["muc_duration"],
            drain_s=preset["muc_drain"],
        )
        im_labels = {x for x in args.profile_xmppx_im.split(",") if x}
        for rnd in range(args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            if rnd % 2:
                order.reverse()
            _log(f"round {rnd + 1}/{args.rounds}: order {', '.join(order)}; load {_loadavg()}")
            for n in names:
                servers[n].start()
            results: dict[str, Any] = {}
            try:
                for n in order:
                    srv = servers[n]
                    _log(f"  {n} (pid {srv.pid})")
                    res: dict[str, Any] = {"pid": srv.pid}
                    loop = _event_loop(srv)
                    if loop:
                        res["event_loop"] = loop
                    gen = Generator(args.gen_procs, gen_cpus, srv.port)
                    try:
                        warm_up(srv, gen, accounts[:20])
                        if "idle" in scenarios:
                            res["idle"] = run_idle(
                                srv,
                                gen,
                                accounts,
                                levels=levels,
                                concurrency=args.login_concurrency,
                                log=_log,
                            )
                        hook = None
                        if n == "xmppx" and args.profile_xmppx and rnd == args.rounds - 1:
                            hook = _py_spy_hook(srv, args.out, args.profile_xmppx, _log)
                        if "login" in scenarios:
                            time.sleep(1.0)
                            res["login"] = run_login_storm(
                                srv,
                                gen,
                                accounts[: preset["login_clients"]],
                                concurrency=args.login_concurrency,
                                cores=cores,
                                log=_log,
                                on_window=hook,
                            )
                        if "chat" in scenarios:
                            time.sleep(1.0)
                            res["chat"] = run_chat(
                                srv,
                                gen,
                                accounts,
                                plan,
                                concurrency=args.login_concurrency,
                                cores=cores,
                                log=_log,
                                on_window=hook,
                            )
                        im_hook = None
                        if n == "xmppx" and im_labels and rnd == args.rounds - 1:
                            im_hook = _py_spy_labels_hook(srv, args.out, im_labels, _log)
                        if layout is not None:
                            res.update(
                                _run_im(
                                    srv,
                                    gen,
                                    accounts,
                                    layout,
                                    scenarios,
                                    preset,
                                    muc_plan,
                                    concurrency=args.login_concurrency,
                                    cores=cores,
                                    run=rnd + 1,
                                    on_window=im_hook,
                                    fresh=not ISSUE3_SCENARIOS & set(scenarios),
                                )
                            )
                    except Exception as exc:  # one server failing must not lose the others
                        _log(f"  {n} failed: {type(exc).__name__}: {exc}")
                        res["error"] = f"{type(exc).__name__}: {exc}"
                    finally:
                        gen.close()
                    if not srv.running:
                        res["error"] = res.get("error", "") + " (server died; see its log)"
                        _log(f"  {n} is not running any more: {srv.workdir}")
                    results[n] = res
            finally:
                for n in names:
                    servers[n].stop()
            rounds.append({"round": rnd + 1, "order": order, "results": results})
    except (KeyboardInterrupt, _Stop):
        _log("interrupted: stopping the servers")
        return 130
    finally:
        for srv in servers.values():
            srv.close()
        if args.keep:
            _log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    from ._report import markdown, ratios, summarize

    summary = summarize(rounds, names)
    result = {
        "meta": {
            "command": _command_line(args_list),
            "mode": "quick" if args.quick else "full",
            "rounds": args.rounds,
            "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
            "seconds": round(time.time() - started, 1),
            "versions": versions,
            "xmppx_tree": git_state,
            "skipped": skipped,
            "provisioning": {n: s.provision_info for n, s in servers.items()},
            "machine": {
                "cpus": os.cpu_count(),
                "model": _cpu_model(),
                "python": sys.version.split()[0],
                "server_cpus": list(server_cpus),
                "gen_cpus": list(gen_cpus),
                "gen_procs": args.gen_procs,
                "nofile": nofile,
                "nice": os.getpriority(os.PRIO_PROCESS, 0),
                "quiet_below": args.quiet_below,
                "quiet_wait_s": preset["quiet_wait"],
            },
            "accounts": n_users,
            "login_clients": preset["login_clients"],
            "login_concurrency": args.login_concurrency,
            "idle_levels": list(levels),
            "chat_pairs": preset["chat_pairs"],
            "chat_rates": list(preset["chat_rates"]),
            "chat_warmup_s": preset["chat_warmup"],
            "chat_duration_s": preset["chat_duration"],
            "chat_drain_s": preset["chat_drain"],
            "scenarios": scenarios,
            "im_layout": None
            if layout is None
            else {
                "first_account": layout.base,
                "cliques": layout.cliques,
                "clique_size": layout.clique_size,
                "roster_user": accounts[layout.roster_user].user,
                "roster_items": layout.big_roster,
                "offline_recipient": accounts[layout.offline_recipient].user,
                "muc_users": layout.muc_users,
            },
            "presence_users": preset["presence_users"],
            "roster_repeats": preset["roster_repeats"],
            "offline_messages": preset["offline_messages"],
            "muc_rooms": preset["muc_rooms"],
            "muc_rates": list(preset["muc_rates"]),
            "muc_warmup_s": preset["muc_warmup"],
            "muc_duration_s": preset["muc_duration"],
            "muc_drain_s": preset["muc_drain"],
            "muc_settings": {
                "history": "off (xmppx muc.history_size 0, Prosody max_history_messages 0, "
                "ejabberd history_size 0); joins ask maxstanzas=0",
                "per_occupant_rate_limit": "none on Prosody and ejabberd; xmppx "
                f"muc.message_rate {MUC_MESSAGE_RATE:g}/s, burst {MUC_MESSAGE_BURST}",
                "max_occupants": MUC_MAX_USERS,
                "rooms": "non-persistent, open, instant (default configuration accepted)",
            },
            "offline_limit_per_user": OFFLINE_LIMIT,
        },
        "rounds": rounds,
        "summary": summary,
        "ratios": ratios(summary),
    }
    js = args.out / f"load-{stamp}.json"
    md = args.out / f"load-{stamp}.md"
    js.write_text(json.dumps(_clean(result), indent=1) + "\n")
    text = markdown(result)
    md.write_text(text)
    print(text)
    _log(f"wrote {js} and {md}")
    return 0


def _clean(o: Any) -> Any:
    """NaN (a missing number) as null, so the file is strict JSON."""
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o
