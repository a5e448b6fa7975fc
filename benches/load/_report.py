"""Medians over rounds, the ratios of issue 3, and the Markdown rendering."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["IM_ROWS", "RATIO_ROWS", "markdown", "ratios", "summarize"]

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


#: The MUC rate (delivered copies/s) at which p99 latency is compared.
MUC_REFERENCE_RATE: Final = 5000
#: The room sets of the issue-5 table (others are in the JSON and the details).
MUC_SETS: Final = ("1x50", "1x200", "100x5")


def _im_rows() -> tuple[tuple[str, str, str], ...]:
    rows: list[tuple[str, str, str]] = [
        ("presence_per_s", "presence storm: presence stanzas delivered/s", "higher"),
        ("presence_all_seen_s", "presence storm: s until every client saw all contacts", "lower"),
        ("roster_median_ms", "roster fetch, 1 000 items: ms (median of repeats)", "lower"),
        (
            "roster_peak_rss_kb",
            "roster fetch: server RSS growth at peak, KB (first fetch)",
            "lower",
        ),
        ("offline_store_s", "offline: s to store the messages", "lower"),
        ("offline_flush_s", "offline: s from initial presence to the last message", "lower"),
    ]
    for label in MUC_SETS:
        rows += [
            (f"muc_{label}_peak", f"MUC {label}: delivered stanzas/s at peak", "higher"),
            (
                f"muc_{label}_saturation",
                f"MUC {label}: highest sustained offered stanzas/s",
                "higher",
            ),
            (f"muc_{label}_p99_ref", f"MUC {label}: p99 ms at {MUC_REFERENCE_RATE}/s", "lower"),
            (
                f"muc_{label}_capacity",
                f"MUC {label}: derived, copies per server CPU-second (highest sustained step)",
                "higher",
            ),
        ]
    return tuple(rows)


#: (key in the summary, label, better when) of the issue-4 and issue-5 table.
IM_ROWS: Final = _im_rows()


def _median(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(statistics.median(vals)) if vals else math.nan


def _ref_step(steps: Sequence[dict[str, Any]], rate: int) -> dict[str, Any] | None:
    for s in steps:
        if s["offered_per_s"] == rate:
            return s
    return None


def _steps_by_rate(
    rounds: Sequence[Sequence[dict[str, Any]]],
    medians: Sequence[str],
    *,
    optional: Sequence[str] = (),
    first: Sequence[str] = (),
    total: Sequence[str] = (),
) -> dict[str, Any]:
    """The offered-rate steps of several rounds (chat or one MUC set), one entry per
    rate: how many rounds ran it, the first round's value of each key in ``first``, the
    median of each in ``medians`` (and in ``optional``, NaN where a round lacks it), the
    sum of each in ``total``, and how many rounds sustained the rate and how many were
    generator-bound."""
    rates = sorted({st["offered_per_s"] for steps in rounds for st in steps})
    out: dict[str, Any] = {}
    for rate in rates:
        sts = [st for steps in rounds for st in steps if st["offered_per_s"] == rate]
        entry: dict[str, Any] = {"rounds": len(sts)}
        entry.update((k, sts[0][k]) for k in first)
        entry.update((k, _median([x[k] for x in sts])) for k in medians)
        entry.update((k, _median([x.get(k, math.nan) for x in sts])) for k in optional)
        entry.update((k, sum(int(x[k]) for x in sts)) for k in total)
        entry["sustained_rounds"] = sum(1 for x in sts if x["sustained"])
        entry["generator_bound_rounds"] = sum(1 for x in sts if x["generator_bound"])
        out[str(rate)] = entry
    return out


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
        loops = sorted({str(r["event_loop"]) for r in runs if r.get("event_loop")})
        if loops:
            s["event_loop"] = ", ".join(loops)
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
            s["chat_steps"] = _steps_by_rate(
                [c["steps"] for c in chats],
                (
                    "delivered_per_s",
                    "p50_ms",
                    "p99_ms",
                    "server_cpu_us_per_msg",
                    "server_cpu_util",
                    "gen_cpu_util",
                ),
                optional=("other_util_server_core", "other_util_gen_core"),
            )
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
        _summarize_im(runs, s)
        out[name] = s
    return out


def _int_or_float(v: float) -> float | int:
    return int(v) if not math.isnan(v) and v == int(v) else v


def _ok(runs: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r[key] for r in runs if key in r and "error" not in r[key]]


def _summarize_im(runs: Sequence[dict[str, Any]], s: dict[str, Any]) -> None:
    """Medians of the issue-4 and issue-5 figures into ``s``."""
    errors = {
        k: r[k]["error"]
        for r in runs
        for k in ("presence", "roster", "offline", "muc")
        if k in r and isinstance(r[k], dict) and "error" in r[k]
    }
    if errors:
        s["im_errors"] = errors
    pres = _ok(runs, "presence")
    if pres:
        s["presence_per_s"] = _median([x["presence_per_s"] for x in pres])
        s["presence_all_seen_s"] = _median(
            [x["all_seen_s"] if x["all_seen_s"] is not None else math.nan for x in pres]
        )
        s["presence_p50_seen_s"] = _median([x["p50_seen_s"] for x in pres])
        s["presence_received"] = _median([x["presence_received"] for x in pres])
        s["presence_detail"] = {
            k: _int_or_float(_median([x[k] for x in pres]))
            for k in (
                "clients",
                "contacts_each",
                "available_from_contacts",
                "unavailable_received",
                "own_reflected",
                "other_received",
                "expected_minimum",
                "server_cpu_us_per_presence",
                "server_cpu_util",
                "gen_cpu_util",
                "other_util_server_core",
                "other_util_gen_core",
            )
        }
        s["presence_incomplete_rounds"] = sum(1 for x in pres if x["all_seen_s"] is None)
        s["presence_generator_bound_rounds"] = sum(1 for x in pres if x["generator_bound"])
    rost = _ok(runs, "roster")
    if rost:
        s["roster_median_ms"] = _median([x["median_ms"] for x in rost])
        s["roster_first_ms"] = _median([x["first_ms"] for x in rost])
        s["roster_peak_rss_kb"] = _median(
            [
                x["first_peak_rss_growth_kb"]
                if x["first_peak_rss_growth_kb"] is not None
                else math.nan
                for x in rost
            ]
        )
        s["roster_max_peak_rss_kb"] = _median(
            [
                x["max_peak_rss_growth_kb"] if x["max_peak_rss_growth_kb"] is not None else math.nan
                for x in rost
            ]
        )
        s["roster_items"] = min(int(x["items_received"]) for x in rost)
        s["roster_bytes"] = _median([x["bytes"] for x in rost])
        s["roster_repeats"] = rost[0]["repeats"]
    off = _ok(runs, "offline")
    if off:
        s["offline_store_s"] = _median([x["store_s"] for x in off])
        s["offline_flush_s"] = _median(
            [x["flush_s"] if x["flush_s"] is not None else math.nan for x in off]
        )
        s["offline_first_s"] = _median(
            [
                x["first_after_presence_s"] if x["first_after_presence_s"] is not None else math.nan
                for x in off
            ]
        )
        s["offline_store_cpu_us"] = _median([x["store_server_cpu_us_per_msg"] for x in off])
        s["offline_complete_rounds"] = sum(1 for x in off if x["complete"])
        s["offline_rounds"] = len(off)
        s["offline_received_min"] = min(int(x["received"]) for x in off)
        s["offline_bounced"] = sum(int(x["store_bounced"]) for x in off)
        s["offline_messages"] = off[0]["messages"]
    mucs = [r["muc"] for r in runs if "muc" in r and "error" not in r["muc"]]
    if mucs:
        sets: dict[str, Any] = {}
        labels = sorted({k for m in mucs for k in m}, key=lambda k: list(mucs[0]).index(k))
        for label in labels:
            runs_ = [m[label] for m in mucs if label in m and m[label].get("steps")]
            errs = [m[label]["error"] for m in mucs if label in m and "error" in m[label]]
            if not runs_:
                sets[label] = {"error": errs[0] if errs else "no step ran"}
                continue
            steps = _steps_by_rate(
                [r["steps"] for r in runs_],
                (
                    "delivered_per_s",
                    "p50_ms",
                    "p99_ms",
                    "server_cpu_us_per_delivery",
                    "server_cpu_util",
                    "other_util_server_core",
                    "gen_cpu_util",
                ),
                first=("messages_per_s",),
                total=("errors",),
            )
            caps = []
            for r in runs_:
                ok = [
                    st for st in r["steps"] if st["sustained"] and st["server_cpu_us_per_delivery"]
                ]
                if ok:
                    top = max(ok, key=lambda st: st["offered_per_s"])
                    caps.append(1e6 / top["server_cpu_us_per_delivery"])
            ref = [
                st["p99_ms"]
                for r in runs_
                for st in r["steps"]
                if st["offered_per_s"] == MUC_REFERENCE_RATE
            ]
            sets[label] = {
                "rounds": len(runs_),
                "join_s": _median([r["join_s"] for r in runs_]),
                "peak": _median([r["peak_delivered_per_s"] for r in runs_]),
                "saturation": _median([r["saturation_offered_per_s"] for r in runs_]),
                "p99_ref": _median(ref),
                "capacity": _median(caps),
                "steps": steps,
                **({"errors": errs} if errs else {}),
            }
            for k in ("peak", "saturation", "p99_ref", "capacity"):
                s[f"muc_{label}_{k}"] = sets[label][k]
        s["muc_sets"] = sets


def ratios(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """xmppx / other for every headline number (NaN when either side is missing)."""
    x = summary.get("xmppx", {})
    out: dict[str, dict[str, float]] = {}
    for other in ("ejabberd", "prosody"):
        o = summary.get(other)
        if not o or "error" in o:
            continue
        row: dict[str, float] = {}
        for key, *_ in (*RATIO_ROWS, *IM_ROWS):
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
    scenarios = set(meta.get("scenarios") or ("idle", "login", "chat"))
    if scenarios & {"idle", "login", "chat"}:
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
    if scenarios & {"presence", "roster", "offline", "muc"}:
        lines.extend(_im_table(summary, rat, names, meta))
    lines.append("")
    if scenarios & {"idle", "login", "chat"}:
        lines.append("Medians over rounds.  Per server:")
        lines.append("")
    for n in names if scenarios & {"idle", "login", "chat"} else ():
        s = summary[n]
        if "error" in s:
            lines.append(f"- **{n}**: {s['error']}")
            continue
        ver = meta["versions"].get(n, "")
        if "event_loop" in s:
            ver += f", event loop {s['event_loop']}"
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
    if scenarios & {"presence", "roster", "offline", "muc"}:
        lines.append("IM and MUC details, medians over rounds:")
        lines.append("")
        for n in names:
            if "error" not in summary[n]:
                lines.extend(_im_details(n, summary[n], meta))
    if meta.get("skipped"):
        for n, why in meta["skipped"].items():
            lines.append(f"- **{n}** not run: {why}")
    lines.append("")
    return "\n".join(lines)


def _im_table(
    summary: dict[str, Any],
    rat: dict[str, dict[str, float]],
    names: Sequence[str],
    meta: dict[str, Any],
) -> list[str]:
    """The issue-4 and issue-5 ratio table."""
    lay = meta.get("im_layout") or {}
    rates = ", ".join(str(r) for r in meta.get("muc_rates", []))
    lines = [
        "",
        f"Issues 4 (RFC 6121) and 5 (XEP-0045): presence storm of "
        f"{meta.get('presence_users', '?')} users in cliques of {lay.get('clique_size', '?')}"
        f", {meta.get('offline_messages', '?')} offline messages, MUC rooms "
        f"{meta.get('muc_rooms', '?')} at offered {rates} stanzas/s (delivered copies: "
        "messages/s x occupants).",
        "",
    ]
    head = ["metric", *names, "xmppx / ejabberd", "xmppx / Prosody", "better"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, better in IM_ROWS:
        if all(math.isnan(_num(summary[n].get(key))) for n in names):
            continue
        cells = [label]
        for n in names:
            v = summary[n].get(key, math.nan)
            cells.append(_fmt(v, 3 if key.endswith("_s") else 1))
        for other in ("ejabberd", "prosody"):
            cells.append(_fmt(rat.get(other, {}).get(key, math.nan), 2) + "×")
        cells.append(better)
        lines.append("| " + " | ".join(c.replace("–×", "–") for c in cells) + " |")
    lines.append("")
    return lines


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) else math.nan


def _im_details(name: str, s: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    ver = meta["versions"].get(name, "")
    if "event_loop" in s:
        ver += f", event loop {s['event_loop']}"
    lines = [f"- **{name}** {ver}:"]
    if "im_errors" in s:
        lines.append(f"  errors: {s['im_errors']}")
    if "presence_per_s" in s:
        d = s["presence_detail"]
        lines.append(
            f"  presence storm, {_fmt(d['clients'])} clients x {_fmt(d['contacts_each'])} "
            f"contacts: {_fmt(s['presence_received'])} presence stanzas received "
            f"({_fmt(d['available_from_contacts'])} available from contacts, "
            f"{_fmt(d['unavailable_received'])} unavailable, {_fmt(d['own_reflected'])} own "
            f"reflected, {_fmt(d['other_received'])} other; at least "
            f"{_fmt(d['expected_minimum'])} needed), {_fmt(s['presence_per_s'])}/s; all seen "
            f"after {_fmt(s['presence_all_seen_s'], 3)} s (p50 client "
            f"{_fmt(s['presence_p50_seen_s'], 3)} s); server CPU "
            f"{_fmt(d['server_cpu_us_per_presence'], 1)} µs/presence "
            f"({_fmt(100 * d['server_cpu_util'], 0)}% of its core), generator "
            f"{_fmt(100 * d['gen_cpu_util'], 0)}%; others took "
            f"{_fmt(100 * d['other_util_server_core'], 0)}% / "
            f"{_fmt(100 * d['other_util_gen_core'], 0)}% of the server / generator cores"
            + (
                f" **({s['presence_incomplete_rounds']} rounds incomplete)**"
                if s["presence_incomplete_rounds"]
                else ""
            )
            + (
                f" (generator-bound in {s['presence_generator_bound_rounds']} rounds)"
                if s["presence_generator_bound_rounds"]
                else ""
            )
        )
    if "roster_median_ms" in s:
        lines.append(
            f"  roster fetch: {s['roster_items']} items, {_fmt(s['roster_bytes'] / 1024, 0)} KiB"
            f", median {_fmt(s['roster_median_ms'], 2)} ms of {s['roster_repeats']}, first "
            f"{_fmt(s['roster_first_ms'], 2)} ms; server RSS peak growth "
            f"{_fmt(s['roster_peak_rss_kb'], 0)} KB (first fetch), "
            f"{_fmt(s['roster_max_peak_rss_kb'], 0)} KB (largest)"
        )
    if "offline_store_s" in s:
        lines.append(
            f"  offline: {s['offline_messages']} messages stored in "
            f"{_fmt(s['offline_store_s'], 3)} s ({_fmt(s['offline_store_cpu_us'], 0)} µs "
            f"server CPU each, {s['offline_bounced']} bounced), first delivered "
            f"{_fmt(s['offline_first_s'], 3)} s and the last {_fmt(s['offline_flush_s'], 3)} s "
            f"after the initial presence; all received in order in "
            f"{s['offline_complete_rounds']}/{s['offline_rounds']} rounds"
        )
    for label, st in (s.get("muc_sets") or {}).items():
        if "error" in st:
            lines.append(f"  MUC {label}: {st['error']}")
            continue
        lines.append(
            f"  MUC {label}: joined in {_fmt(st['join_s'], 2)} s; peak "
            f"{_fmt(st['peak'])} delivered/s, sustained up to {_fmt(st['saturation'])}/s"
        )
        lines.append("")
        lines.append(
            "  | offered/s | msg/s | delivered/s | p50 ms | p99 ms | server µs/copy | "
            "server core | others on it | generator core | errors | sustained |"
        )
        lines.append("  |---|---|---|---|---|---|---|---|---|---|---|")
        for rate, x in st["steps"].items():
            lines.append(
                f"  | {rate} | {_fmt(x['messages_per_s'])} | {_fmt(x['delivered_per_s'])} | "
                f"{_fmt(x['p50_ms'], 2)} | {_fmt(x['p99_ms'], 2)} | "
                f"{_fmt(x['server_cpu_us_per_delivery'], 1)} | "
                f"{_fmt(100 * x['server_cpu_util'], 0)}% | "
                f"{_fmt(100 * x['other_util_server_core'], 0)}% | "
                f"{_fmt(100 * x['gen_cpu_util'], 0)}% | {x['errors']} | "
                f"{x['sustained_rounds']}/{x['rounds']} |"
            )
        lines.append("")
    return lines
