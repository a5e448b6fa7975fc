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
from typing import Any, Final

from ._proc import raise_nofile_limit
from ._servers import REPO, SERVER_TYPES, Detected, Server, free_port

__all__ = ["main"]

ALL_SERVERS: Final = ("xmppx", "prosody", "ejabberd")


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
    },
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benches.load",
        description="Issue-3 load comparison of xmppx, Prosody and ejabberd on loopback.",
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
        default="idle,login,chat",
        help="comma-separated subset of idle,login,chat (run in this order)",
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


class _Stop(Exception):
    """SIGTERM: unwind through ``finally`` like Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _py_spy_hook(
    server: Server, out_dir: Path, rate: int, log: Callable[[str], None]
) -> Callable[[str, float], Callable[[], None] | None]:
    """An ``on_window`` hook recording py-spy on the xmppx server during the login storm
    and the chat step at ``rate`` msg/s (stopped with SIGINT when the window ends)."""
    exe = shutil.which("py-spy")

    def hook(label: str, duration: float) -> Callable[[], None] | None:
        if label not in ("login", str(rate)):
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
    unknown = set(scenarios) - {"idle", "login", "chat"}
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
    if max(levels, default=0) + 1000 > nofile:
        _log(f"warning: open-files limit {nofile} is low for {max(levels)} idle connections")

    # Imported here: the generator's xmppx (this checkout's python/ unless installed).
    src = str(REPO / "python")
    if src not in sys.path:
        sys.path.insert(0, src)
    from ._accounts import install_salted_cache, make_accounts
    from ._gen import Generator
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
        for n in names:
            srv = SERVER_TYPES[n](workdir / n, port=free_port(), cpus=args.server_cpus, log=_log)
            servers[n] = srv
            srv.configure()
            srv.provision(accounts)
            _log(f"{n}: port {srv.port}, provisioned: {srv.provision_info}")
        plan = ChatPlan(
            pairs=preset["chat_pairs"],
            rates=tuple(preset["chat_rates"]),
            warmup_s=preset["chat_warmup"],
            duration_s=preset["chat_duration"],
            drain_s=preset["chat_drain"],
        )
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
