"""Run the benchmarks and print the issue 2 §9 targets as a Markdown table.

Usage (from the repository root, with xmppx installed or built in place)::

    python benches/report.py                   # run everything, print the table
    python benches/report.py --out .benchmarks/run1 -- -k "not memory"
    python benches/report.py --json a.json b.json   # only render saved results

It runs ``pytest benches --benchmark-enable --benchmark-json=...`` in a subprocess on the
default backend, then the ``parse_jid`` benchmarks again with ``XMPPX_CORE=python`` (the
``parse_jid`` of a process runs one backend), and computes from the *median* round of
each benchmark:

* parse, mixed stream: native ≥ 3× the stdlib ``XMLPullParser`` loop (slixmpp's way);
* parse, tiny stanzas: native ≥ 2× stdlib;
* peak memory parsing the 565 KB roster stanza: native ≤ 2× the wire size (peak RSS
  growth, which sees the Rust heap; the ``tracemalloc`` figure is shown beside it);
* serializer: native ≥ 2× ``lxml.etree.tostring``;
* JID: ``parse_jid`` on the native backend ≥ 2× slixmpp's ``JID``, cold and warm cache;
* pure Python: the pure-Python backend's parser ≥ 1× stdlib (mixed and tiny streams).

A benchmark whose output did not match its reference is marked ✗ in the "ok" column
(``extra_info["correct"]``), and a target computed from one is not counted as met.
The exit status is 0 when the runs succeeded, whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent
COMMAND: Final = "python benches/report.py"


@dataclass(frozen=True, slots=True)
class Result:
    """One benchmark: its group, variant (the parametrize id), median seconds, extras."""

    group: str
    variant: str
    median: float
    extra: dict[str, Any]

    @property
    def correct(self) -> bool:
        return bool(self.extra.get("correct", False))


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    goal: str
    value: float | None
    met: bool | None
    detail: str


# ---------------------------------------------------------------------------- running
def _pytest(args: Sequence[str], json_path: Path, env: dict[str, str]) -> int:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *args,
        "--benchmark-enable",
        f"--benchmark-json={json_path}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    print("$", " ".join(cmd), file=sys.stderr)
    # pytest's own output goes to stderr: stdout is only the Markdown
    return subprocess.run(cmd, cwd=ROOT, env=env, stdout=sys.stderr, check=False).returncode


def run_benchmarks(out: Path, extra_args: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Run both sessions; the JSON files written and a list of problems."""
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    written: list[Path] = []
    env = dict(os.environ)
    env.pop("XMPPX_CORE", None)
    main_json = out / "bench.json"
    rc = _pytest(["benches", *extra_args], main_json, env)
    if rc not in (0, 5):
        problems.append(f"pytest benches exited with {rc} (a failing benchmark is a wrong output)")
    if main_json.exists():
        written.append(main_json)
    env["XMPPX_CORE"] = "python"
    py_json = out / "bench-python-core.json"
    rc = _pytest(["benches/test_bench_jid.py", "-k", "python-parse_jid"], py_json, env)
    if rc not in (0, 5):
        problems.append(f"pytest with XMPPX_CORE=python exited with {rc}")
    if py_json.exists():
        written.append(py_json)
    return written, problems


# ---------------------------------------------------------------------------- results
def load(paths: Sequence[Path]) -> tuple[dict[tuple[str, str], Result], dict[str, Any]]:
    results: dict[tuple[str, str], Result] = {}
    machine: dict[str, Any] = {}
    for path in paths:
        data = json.loads(path.read_text())
        machine = machine or {**data.get("machine_info", {}), "commit": data.get("commit_info")}
        for bench in data.get("benchmarks", []):
            variant = str(bench.get("param") or bench["name"].partition("[")[2].rstrip("]"))
            group = bench.get("group") or bench["name"]
            results[(group, variant)] = Result(
                group, variant, float(bench["stats"]["median"]), dict(bench.get("extra_info", {}))
            )
    return results, machine


def _speedup(
    results: dict[tuple[str, str], Result], group: str, fast: str, slow: str, *, both: bool
) -> tuple[float | None, bool]:
    """``median(slow) / median(fast)`` and whether the outputs it rests on matched their
    references (the xmppx side always; the other side too when ``both``)."""
    a, b = results.get((group, fast)), results.get((group, slow))
    if a is None or b is None or a.median <= 0:
        return None, False
    return b.median / a.median, a.correct and (b.correct or not both)


def targets(results: dict[tuple[str, str], Result]) -> list[Target]:
    out: list[Target] = []

    def speed(label: str, group: str, fast: str, slow: str, goal: float) -> None:
        # Another JID library may disagree with RFC 6122 (counted, shown in the table);
        # a parser or serializer compared against must have matched the reference.
        value, ok = _speedup(results, group, fast, slow, both=not group.startswith("jid"))
        met = None if value is None else (value >= goal and ok)
        detail = f"median {slow} / median {fast}" + (
            "" if ok or value is None else " (wrong output)"
        )
        out.append(Target(label, f"≥ {goal:g}×", value, met, detail))

    speed("Parse, mixed stream: native vs stdlib", "parse-mixed", "native", "etree", 3)
    speed("Parse, tiny stanzas: native vs stdlib", "parse-tiny", "native", "etree", 2)
    mem = results.get(("parse-memory", "native"))
    if mem is None or "rss_ratio" not in mem.extra:
        out.append(Target("Roster 565 KB, peak memory: native", "≤ 2× wire", None, None, ""))
    else:
        ratio = float(mem.extra["rss_ratio"])
        out.append(
            Target(
                "Roster 565 KB, peak memory: native",
                "≤ 2× wire",
                ratio,
                ratio <= 2 and mem.correct,
                f"peak RSS growth / wire bytes (tracemalloc: {mem.extra['tracemalloc_ratio']}×)",
            )
        )
    speed("Serializer: native vs lxml", "serialize", "native", "lxml", 2)
    speed(
        "JID, cold cache: parse_jid (native) vs slixmpp",
        "jid-cold",
        "native-parse_jid",
        "slixmpp",
        2,
    )
    speed(
        "JID, warm cache: parse_jid (native) vs slixmpp",
        "jid-warm",
        "native-parse_jid",
        "slixmpp",
        2,
    )
    speed("Parse, mixed stream: pure Python vs stdlib", "parse-mixed", "python", "etree", 1)
    speed("Parse, tiny stanzas: pure Python vs stdlib", "parse-tiny", "python", "etree", 1)
    return out


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _rate(r: Result) -> str:
    e = r.extra
    if r.group == "parse-memory":
        if "rss_ratio" not in e:
            return ""
        return f"peak RSS {e['rss_ratio']}× wire, tracemalloc {e['tracemalloc_ratio']}× wire"
    nbytes, items = e.get("bytes"), e.get("items")
    parts = []
    if nbytes:
        parts.append(f"{nbytes / r.median / 1e6:,.1f} MB/s")
    if items:
        parts.append(
            f"{items / r.median:,.0f} {'JIDs' if r.group.startswith('jid') else 'stanzas'}/s"
        )
    if "disagreements" in e:
        parts.append(
            f"disagreements {e['disagreements']} (laxer {e['accepted_invalid']}, stricter "
            f"{e['rejected_valid']}, other output {e['different_output']})"
        )
    return ", ".join(parts)


def markdown(results: dict[tuple[str, str], Result], machine: dict[str, Any]) -> str:
    lines = ["| Target | Goal | Measured | Met |", "| --- | --- | --- | --- |"]
    for t in targets(results):
        value = "not run" if t.value is None else f"{t.value:.2f}× ({t.detail})"
        met = "–" if t.met is None else ("✓" if t.met else "✗")
        lines.append(f"| {t.label} | {t.goal} | {value} | {met} |")
    lines += ["", "| Benchmark | Variant | Median | Rate | ok |", "| --- | --- | --- | --- | --- |"]
    order = ["parse-mixed", "parse-tiny", "parse-memory", "serialize", "jid-cold", "jid-warm"]
    for key in sorted(
        results, key=lambda k: (order.index(k[0]) if k[0] in order else 99, results[k].median)
    ):
        r = results[key]
        time = "" if r.group == "parse-memory" else _fmt_time(r.median)
        lines.append(
            f"| {r.group} | {r.variant} | {time} | {_rate(r)} | {'✓' if r.correct else '✗'} |"
        )
    commit = machine.get("commit") or {}
    cpu = (machine.get("cpu") or {}).get("brand_raw") or machine.get("processor") or "?"
    lines += [
        "",
        f"Medians of pytest-benchmark rounds; Python {machine.get('python_version', '?')}, "
        f"{cpu}, {os.cpu_count()} CPUs, commit {str(commit.get('id', '?'))[:10]}"
        f"{' (dirty)' if commit.get('dirty') else ''}, {datetime.now(UTC):%Y-%m-%d}.",
        "ok: the output matched its reference (stanza routing and trees, re-parsed "
        "serializer output, JID results); for slixmpp and aioxmpp a ✗ means they disagree "
        "with RFC 6122 on the inputs counted under Rate.",
        f"Reproduce with `{COMMAND}` (see `benches/README.md`).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / ".benchmarks" / "report",
        help="directory for the JSON files (default: .benchmarks/report)",
    )
    ap.add_argument(
        "--json", type=Path, nargs="+", help="render these saved JSON files; run nothing"
    )
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = ap.parse_args(argv)
    problems: list[str] = []
    if args.json:
        paths: list[Path] = args.json
    else:
        paths, problems = run_benchmarks(args.out, args.pytest_args)
    results, machine = load(paths)
    if not results:
        print("no benchmark results", file=sys.stderr)
        return 1
    print(markdown(results, machine))
    print(f"\n(platform: {platform.platform()})", file=sys.stderr)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
