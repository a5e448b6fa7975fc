"""Medians over rounds, the ratios of issue 3, and the Markdown rendering."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["RATIO_ROWS", "markdown", "ratios", "summarize"]

#: The rate at which CPU per message and p99 are compared (issue 3).
REFERENCE_RATE: Final = 5000

#: (key in the summary, label, better when "higher"/"lower", target text, target check)
RATIO_ROWS: Final = (
    ("logins_per_s", "logins/s (login storm)", "higher", "≥ 1.5× ejabberd"),
    ("peak_delivered_per_s", "delivered msg/s at peak", "higher", "≥ 1.5× ejabberd"),
    ("cpu_us_per_msg_ref", f"server CPU µs/msg at {REFERENCE_RATE} msg/s", "lower", "≤ 40 µs"),
    ("p99_ms_ref", f"p99 latency ms at {REFERENCE_RATE} msg/s", "lower", "≤ ejabberd's"),
    ("kb_per_idle_conn", "KB per idle connection", "lower", "≤ 20 KB"),
    (
        "login_capacity_per_s",
        "derived: logins per server CPU-second (10⁶ / CPU µs per login)",
        "higher",
        "≥ 1.5× ejabberd",
    ),
    (
        "chat_capacity_per_s",
        "derived: msg per server CPU-second at the highest sustained step",
        "higher",
        "≥ 1.5× ejabberd",
    ),
)


def _median(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(statistics.median(vals)) if vals else math.nan


def _ref_step(steps: Sequence[dict[str, Any]], rate: int) -> dict[str, Any] | None:
    for s in steps:
        if s["offered_per_s"] == rate:
            return s
    return None


def summarize(rounds: Sequence[dict[str, Any]], servers: Sequence[str]) -> dict[str, Any]:
    """Per server: medians over rounds of every headline number, plus flags."""
    out: dict[str, Any] = {}
    for name in servers:
        runs = [r["results"][name] for r in rounds if name in r.get("results", {})]
        runs = [r for r in runs if "error" not in r]
        if not runs:
            out[name] = {"error": "no successful round"}
            continue
        s: dict[str, Any] = {"rounds": len(runs)}
        logins = [r["login"] for r in runs if "login" in r]
        if logins:
            s["logins_per_s"] = _median([x["logins_per_s"] for x in logins])
            s["login_p50_ms"] = _median([x["p50_ms"] for x in logins])
            s["login_p99_ms"] = _median([x["p99_ms"] for x in logins])
            s["login_server_cpu_util"] = _median([x["server_cpu_util"] for x in logins])
            s["login_server_cpu_us"] = _median([x["server_cpu_us_per_login"] for x in logins])
            s["login_gen_cpu_util"] = _median([x["gen_cpu_util"] for x in logins])
            s["login_other_util_server_core"] = _median(
                [x.get("other_util_server_core", math.nan) for x in logins]
            )
            s["login_other_util_gen_core"] = _median(
                [x.get("other_util_gen_core", math.nan) for x in logins]
            )
            s["login_generator_bound_rounds"] = sum(1 for x in logins if x["generator_bound"])
            s["login_generator_bound"] = any(x["generator_bound"] for x in logins)
            s["login_failed"] = sum(int(x["failed"]) for x in logins)
            s["login_capacity_per_s"] = _median(
                [
                    1e6 / x["server_cpu_us_per_login"]
                    for x in logins
                    if x["server_cpu_us_per_login"] and x["ok"] > 0
                ]
            )
        idles = [r["idle"] for r in runs if "idle" in r]
        if idles:
            by_level: dict[int, list[float]] = {}
            for x in idles:
                for p in x["points"]:
                    by_level.setdefault(int(p["connections"]), []).append(p["kb_per_conn"])
            s["idle_kb_per_conn"] = {str(k): _median(v) for k, v in sorted(by_level.items())}
            top = max(by_level)
            s["kb_per_idle_conn"] = _median(by_level[top])
            s["kb_per_idle_conn_at"] = top
        chats = [r["chat"] for r in runs if "chat" in r and r["chat"].get("steps")]
        if chats:
            rates = sorted({st["offered_per_s"] for c in chats for st in c["steps"]})
            steps: dict[str, Any] = {}
            for rate in rates:
                sts = [st for c in chats for st in c["steps"] if st["offered_per_s"] == rate]
                steps[str(rate)] = {
                    "rounds": len(sts),
                    "delivered_per_s": _median([x["delivered_per_s"] for x in sts]),
                    "p50_ms": _median([x["p50_ms"] for x in sts]),
                    "p99_ms": _median([x["p99_ms"] for x in sts]),
                    "server_cpu_us_per_msg": _median([x["server_cpu_us_per_msg"] for x in sts]),
                    "server_cpu_util": _median([x["server_cpu_util"] for x in sts]),
                    "gen_cpu_util": _median([x["gen_cpu_util"] for x in sts]),
                    "other_util_server_core": _median(
                        [x.get("other_util_server_core", math.nan) for x in sts]
                    ),
                    "other_util_gen_core": _median(
                        [x.get("other_util_gen_core", math.nan) for x in sts]
                    ),
                    "sustained_rounds": sum(1 for x in sts if x["sustained"]),
                    "generator_bound_rounds": sum(1 for x in sts if x["generator_bound"]),
                }
            s["chat_steps"] = steps
            s["peak_delivered_per_s"] = _median([c["peak_delivered_per_s"] for c in chats])
            s["saturation_offered_per_s"] = _median([c["saturation_offered_per_s"] for c in chats])
            ref = [_ref_step(c["steps"], REFERENCE_RATE) for c in chats]
            refs = [x for x in ref if x is not None]
            s["cpu_us_per_msg_ref"] = _median([x["server_cpu_us_per_msg"] for x in refs])
            s["p99_ms_ref"] = _median([x["p99_ms"] for x in refs])
            caps = []
            for c in chats:
                ok = [st for st in c["steps"] if st["sustained"] and st["server_cpu_us_per_msg"]]
                if ok:
                    top = max(ok, key=lambda st: st["offered_per_s"])
                    caps.append(1e6 / top["server_cpu_us_per_msg"])
            s["chat_capacity_per_s"] = _median(caps)
            s["chat_generator_bound"] = any(
                st["generator_bound"] for c in chats for st in c["steps"]
            )
        out[name] = s
    return out


def ratios(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """xmppx / other for every headline number (NaN when either side is missing)."""
    x = summary.get("xmppx", {})
    out: dict[str, dict[str, float]] = {}
    for other in ("ejabberd", "prosody"):
        o = summary.get(other)
        if not o or "error" in o:
            continue
        row: dict[str, float] = {}
        for key, *_ in RATIO_ROWS:
            a, b = x.get(key, math.nan), o.get(key, math.nan)
            row[key] = a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan
        out[other] = row
    return out


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def _target(key: str, summary: dict[str, Any], rat: dict[str, dict[str, float]]) -> str:
    x = summary.get("xmppx", {})
    ej = rat.get("ejabberd", {})
    if key in (
        "logins_per_s",
        "peak_delivered_per_s",
        "login_capacity_per_s",
        "chat_capacity_per_s",
    ):
        r = ej.get(key, math.nan)
        return "–" if math.isnan(r) else ("met" if r >= 1.5 else "not met")
    if key == "cpu_us_per_msg_ref":
        v = x.get(key, math.nan)
        return "–" if math.isnan(v) else ("met" if v <= 40 else "not met")
    if key == "p99_ms_ref":
        r = ej.get(key, math.nan)
        return "–" if math.isnan(r) else ("met" if r <= 1.0 else "not met")
    if key == "kb_per_idle_conn":
        v = x.get(key, math.nan)
        return "–" if math.isnan(v) else ("met" if v <= 20 else "not met")
    return "–"


def markdown(result: dict[str, Any]) -> str:
    """The summary as Markdown: ratios first, then each server's figures and the notes."""
    summary: dict[str, Any] = result["summary"]
    rat = ratios(summary)
    names = [n for n in ("xmppx", "ejabberd", "prosody") if n in summary]
    meta = result["meta"]
    lines: list[str] = []
    lines.append(
        f"### xmppx vs ejabberd vs Prosody: load ({meta['mode']}, {meta['rounds']} rounds)"
    )
    lines.append("")
    lines.append(f"Reproduce: `{meta['command']}`")
    tree = meta.get("xmppx_tree") or {}
    if tree:
        changed = tree.get("changed") or []
        lines.append("")
        lines.append(
            f"xmppx tree: HEAD {tree.get('head', '?')}"
            + (f" with {len(changed)} changed files under python/ and rust/" if changed else "")
        )
    lines.append("")
    head = ["metric", *names, "xmppx / ejabberd", "xmppx / Prosody", "issue-3 target", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, better, target in RATIO_ROWS:
        cells = [label]
        for n in names:
            v = summary[n].get(key, math.nan)
            cells.append(_fmt(v, 2 if key.endswith("_ref") or key.startswith("kb") else 1))
        for other in ("ejabberd", "prosody"):
            cells.append(_fmt(rat.get(other, {}).get(key, math.nan), 2) + "×")
        cells.append(f"{target} ({better} is better)")
        cells.append(_target(key, summary, rat))
        lines.append("| " + " | ".join(c.replace("–×", "–") for c in cells) + " |")
    lines.append("")
    lines.append("Medians over rounds.  Per server:")
    lines.append("")
    for n in names:
        s = summary[n]
        if "error" in s:
            lines.append(f"- **{n}**: {s['error']}")
            continue
        ver = meta["versions"].get(n, "")
        lines.append(f"- **{n}** {ver}:")
        if "logins_per_s" in s:
            lines.append(
                f"  login storm {meta['login_clients']} clients, {meta['login_concurrency']} at "
                f"once: {_fmt(s['logins_per_s'])}/s, p50 {_fmt(s['login_p50_ms'], 2)} ms, "
                f"p99 {_fmt(s['login_p99_ms'], 2)} ms, server CPU "
                f"{_fmt(s['login_server_cpu_us'], 0)} µs/login "
                f"({_fmt(100 * s['login_server_cpu_util'], 0)}% of its core), generator "
                f"{_fmt(100 * s['login_gen_cpu_util'], 0)}% of its core; other processes "
                f"took {_fmt(100 * s['login_other_util_server_core'], 0)}% of the server core "
                f"and {_fmt(100 * s['login_other_util_gen_core'], 0)}% of the generator core"
                + (
                    f" **(generator-bound in {s['login_generator_bound_rounds']} of "
                    f"{s['rounds']} rounds)**"
                    if s["login_generator_bound"]
                    else ""
                )
                + (f", {s['login_failed']} failed" if s["login_failed"] else "")
            )
        if "idle_kb_per_conn" in s:
            pts = ", ".join(f"{k}: {_fmt(v, 1)} KB" for k, v in s["idle_kb_per_conn"].items())
            lines.append(f"  idle connections (RSS growth per connection): {pts}")
        if "chat_steps" in s:
            lines.append(
                f"  chat, {meta['chat_pairs']} pairs: peak {_fmt(s['peak_delivered_per_s'])} "
                f"msg/s delivered, sustained up to {_fmt(s['saturation_offered_per_s'])} msg/s "
                "offered"
            )
            lines.append("")
            lines.append(
                "  | offered/s | delivered/s | p50 ms | p99 ms | server µs/msg | server core "
                "| others on it | generator core | others on it | sustained |"
            )
            lines.append("  |---|---|---|---|---|---|---|---|---|---|")
            for rate, st in s["chat_steps"].items():
                lines.append(
                    f"  | {rate} | {_fmt(st['delivered_per_s'])} | {_fmt(st['p50_ms'], 2)} | "
                    f"{_fmt(st['p99_ms'], 2)} | {_fmt(st['server_cpu_us_per_msg'], 1)} | "
                    f"{_fmt(100 * st['server_cpu_util'], 0)}% | "
                    f"{_fmt(100 * st['other_util_server_core'], 0)}% | "
                    f"{_fmt(100 * st['gen_cpu_util'], 0)}% | "
                    f"{_fmt(100 * st['other_util_gen_core'], 0)}% | "
                    f"{st['sustained_rounds']}/{st['rounds']} |"
                )
            lines.append("")
    if meta.get("skipped"):
        for n, why in meta["skipped"].items():
            lines.append(f"- **{n}** not run: {why}")
    lines.append("")
    return "\n".join(lines)
