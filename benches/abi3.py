"""What the stable ABI (abi3) would cost the native core: issue 2 §1, "a wheel for
CPython ≥ 3.11 (abi3 only if it costs no speed)".

Usage (from the repository root; needs Rust, and pip able to fetch maturin)::

    python benches/abi3.py                 # 6 alternations of 7 rounds, a Markdown table
    python benches/abi3.py --alternations 10 --rounds 9

It builds two wheels of this checkout with ``pip wheel`` in a temporary directory: the
default one (for the running CPython only, e.g. ``cp311-cp311``) and one with the
``abi3`` feature of ``rust/python`` (``cp311-abi3``, PyO3's ``abi3-py311``, selected with
``MATURIN_PEP517_ARGS="--features abi3"``).  Each goes into its own virtual environment,
and a worker process per environment times the same work on the native backend:

* parse the seeded mixed and tiny streams (``streamgen``, 4 KiB chunks, routing read);
* serialize every stanza of the mixed stream;
* ``parse_jid`` on 2,000 JIDs (``jidgen``), warm cache and fresh strings (cold).

Workers alternate, default then abi3, so a burst of load elsewhere touches both alike;
the table gives the median over alternations of each worker's median round, and the ratio
abi3 / default (above 1: abi3 is slower).  Both workers' outputs are compared with each
other and with the generators' references, so a build that parses differently fails the
run instead of being timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent
VARIANTS: Final = {"default": "", "abi3": "--features abi3"}
MEASURES: Final = ("parse mixed", "parse tiny", "serialize", "parse_jid warm", "parse_jid cold")


def worker(rounds: int) -> dict[str, Any]:
    """Time the work on the installed (not the checkout's) xmppx; return medians and a
    digest of every output."""
    sys.path.insert(0, str(HERE))
    import jidgen
    import streamgen
    import xmppx.core as core

    if core.backend != "native":
        raise SystemExit(f"the installed xmppx runs the {core.backend} backend")
    mixed, tiny = streamgen.mixed_stream(seed=1), streamgen.tiny_stream(seed=1)
    digest = hashlib.sha256()

    def parse(chunks: list[bytes]) -> list[Any]:
        parser = core.StreamParser(max_stanza_bytes=1 << 20)
        out = []
        for chunk in chunks:
            for ev in parser.feed(chunk):
                if isinstance(ev, core.Element):
                    get = ev.get
                    out.append((ev.tag, get("to"), get("from"), get("type"), get("id")))
        return out

    def build(node: Any) -> Any:
        el = core.Element(node.name, node.ns, dict(node.attrs), text=node.text, tail=node.tail)
        for child in node.children:
            el.append(build(child))
        return el

    elements = [build(n) for n in mixed.stanzas]
    serialize = core.serialize

    def write(_: object) -> list[bytes]:
        return [serialize(e, "jabber:client") for e in elements]

    parse_jid, jid_error = core.parse_jid, core.JIDError

    def jids(strings: list[str]) -> list[str | None]:
        out: list[str | None] = []
        for s in strings:
            try:
                out.append(str(parse_jid(s)))
            except jid_error:
                out.append(None)
        return out

    warm = jidgen.jid_strings(seed=1, n=2000)
    cold = [jidgen.jid_strings(seed=5000 + i, n=2000) for i in range(rounds)]
    work: list[tuple[str, Any, list[Any]]] = [
        ("parse mixed", parse, [mixed.chunks(4096)] * rounds),
        ("parse tiny", parse, [tiny.chunks(4096)] * rounds),
        ("serialize", write, [None] * rounds),
        ("parse_jid warm", jids, [warm] * (rounds + 1)),  # the first fills the cache
        ("parse_jid cold", jids, cold),
    ]
    medians: dict[str, float] = {}
    for name, run, args in work:
        times = []
        for arg in args:
            t = time.perf_counter()
            result = run(arg)
            times.append(time.perf_counter() - t)
        if name in ("parse mixed", "parse tiny"):
            stream = mixed if name == "parse mixed" else tiny
            if result != stream.routing():
                raise SystemExit(f"{name}: not the generator's stanzas")
        digest.update(repr(result).encode())
        medians[name] = statistics.median(times[-rounds:])
    return {"medians": medians, "digest": digest.hexdigest()}


def build_wheels(tmp: Path) -> dict[str, Path]:
    """Each variant's wheel installed into a venv of its own; their pythons."""
    pythons: dict[str, Path] = {}
    for name, args in VARIANTS.items():
        env = dict(os.environ, MATURIN_PEP517_ARGS=args)
        out = tmp / f"wheel-{name}"
        print(f"building the {name} wheel ...", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
            check=True,
            env=env,
        )
        [wheel] = out.glob("*.whl")
        print(f"  {wheel.name}", file=sys.stderr)
        venv = tmp / f"venv-{name}"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True
        )
        pythons[name] = python
    return pythons


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alternations", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.rounds)))
        return 0
    with tempfile.TemporaryDirectory(prefix="xmppx-abi3-") as tmp:
        pythons = build_wheels(Path(tmp))
        results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        digests: set[str] = set()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XMPPX_CORE")}
        for i in range(args.alternations):
            print(f"alternation {i + 1}/{args.alternations}", file=sys.stderr, flush=True)
            for name, python in pythons.items():
                out = subprocess.run(
                    [str(python), __file__, "--worker", "--rounds", str(args.rounds)],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=tmp,  # not the checkout: the installed package, not python/
                )
                got = json.loads(out.stdout)
                results[name].append(got["medians"])
                digests.add(got["digest"])
        if len(digests) != 1:
            raise SystemExit("the two builds gave different outputs")
    print("| Work | default ms | abi3 ms | abi3 / default |")
    print("| --- | ---: | ---: | ---: |")
    for measure in MEASURES:
        base = statistics.median(r[measure] for r in results["default"]) * 1000
        abi3 = statistics.median(r[measure] for r in results["abi3"]) * 1000
        print(f"| {measure} | {base:.3f} | {abi3:.3f} | {abi3 / base:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
