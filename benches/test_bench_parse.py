"""Stream parsing to stanzas, 4 KiB chunks, routing attributes read (issue 2 §9).

Variants, each fed the same chunks and reading ``to``/``from``/``type``/``id`` (and the
tag) of every stanza:

``native`` / ``python``
    ``xmppx`` ``StreamParser.feed`` of the Rust and the pure-Python backend.
``etree``
    ``xml.etree.ElementTree.XMLPullParser`` the way slixmpp's ``XMLStream`` drives it:
    ``feed``, ``read_events()`` of ``start``/``end``, a depth counter, and at the end of
    a depth-1 element the stanza is taken and the stream root ``clear()``-ed to detach it.
``lxml``
    ``lxml.etree.XMLPullParser`` in the same loop, except that the stanza is detached
    with ``root.remove(stanza)``: after ``root.clear()`` lxml (4.9) loses the namespace
    of the children of about 0.1% of the detached stanzas (``{jabber:client}body``
    becomes ``body``), which the tree check below catches.

Correctness (recorded in ``extra_info["correct"]``, and asserted): the list of
``(tag, to, from, type, id)`` equals the generator's reference, and, checked once
outside the timing, every parsed stanza equals the reference tree.

``test_roster_memory`` measures the peak memory of parsing one 565 KB roster result, in a
fresh subprocess per variant (``_memprobe.py``): the ``tracemalloc`` peak (allocations
through Python's allocators only) and the peak RSS growth (everything, the Rust heap
included), each as a ratio to the stanza's wire size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

import streamgen
from _common import (
    MAX_STANZA_BYTES,
    etree_to_tree,
    lxml_etree,
    node_to_tree,
    record,
    require_backend,
    xmppx_to_tree,
)
from streamgen import GeneratedStream, Routing

VARIANTS: Final = ("native", "python", "etree", "lxml")
CHUNK: Final = 4096

Runner = Callable[[list[bytes]], list[Routing]]
Collector = Callable[[list[bytes]], list[Any]]


@pytest.fixture(scope="module")
def mixed() -> GeneratedStream:
    return streamgen.mixed_stream(seed=1)


@pytest.fixture(scope="module")
def tiny() -> GeneratedStream:
    return streamgen.tiny_stream(seed=1)


# ----------------------------------------------------------------------- the loops
def xmppx_runner(core: Any) -> tuple[Runner, Collector]:
    parser_cls = core.StreamParser
    element_cls = core.Element

    def run(chunks: list[bytes]) -> list[Routing]:
        parser = parser_cls(max_stanza_bytes=MAX_STANZA_BYTES)
        out: list[Routing] = []
        append = out.append
        for chunk in chunks:
            for ev in parser.feed(chunk):
                if type(ev) is element_cls:
                    get = ev.get
                    append((ev.tag, get("to"), get("from"), get("type"), get("id")))
        return out

    def collect(chunks: list[bytes]) -> list[Any]:
        parser = parser_cls(max_stanza_bytes=MAX_STANZA_BYTES)
        return [ev for c in chunks for ev in parser.feed(c) if type(ev) is element_cls]

    return run, collect


def pull_runner(make_parser: Callable[[], Any], *, clear: bool) -> tuple[Runner, Collector]:
    """slixmpp's ``XMLStream.data_received`` loop on an ElementTree-style pull parser;
    a finished stanza is detached with ``root.clear()`` (``clear``) or
    ``root.remove(stanza)``."""

    def run(chunks: list[bytes]) -> list[Routing]:
        parser = make_parser()
        out: list[Routing] = []
        append = out.append
        depth = 0
        root: Any = None
        for chunk in chunks:
            parser.feed(chunk)
            for event, elem in parser.read_events():
                if event == "start":
                    if depth == 0:
                        root = elem
                    depth += 1
                else:
                    depth -= 1
                    if depth == 1:
                        get = elem.get
                        append((elem.tag, get("to"), get("from"), get("type"), get("id")))
                        if clear:
                            root.clear()
                        else:
                            root.remove(elem)
        parser.close()
        return out

    def collect(chunks: list[bytes]) -> list[Any]:
        parser = make_parser()
        out: list[Any] = []
        depth = 0
        root: Any = None
        for chunk in chunks:
            parser.feed(chunk)
            for event, elem in parser.read_events():
                if event == "start":
                    if depth == 0:
                        root = elem
                    depth += 1
                else:
                    depth -= 1
                    if depth == 1:
                        out.append(elem)
                        if clear:
                            root.clear()
                        else:
                            root.remove(elem)
        parser.close()
        return out

    return run, collect


def variant_runner(variant: str) -> tuple[Runner, Collector, Callable[[Any], Any]]:
    """The timed loop, the stanza collector and the tree normaliser of ``variant``."""
    if variant in ("native", "python"):
        run, collect = xmppx_runner(require_backend(variant))
        return run, collect, xmppx_to_tree
    if variant == "etree":
        run, collect = pull_runner(lambda: ET.XMLPullParser(("start", "end")), clear=True)
        return run, collect, etree_to_tree
    if variant == "lxml":
        etree = lxml_etree()
        run, collect = pull_runner(
            lambda: etree.XMLPullParser(events=("start", "end")), clear=False
        )
        return run, collect, etree_to_tree
    raise ValueError(variant)


def _bench_stream(benchmark: Any, variant: str, stream: GeneratedStream, group: str) -> None:
    run, collect, to_tree = variant_runner(variant)
    chunks = stream.chunks(CHUNK)
    benchmark.group = group
    result = benchmark(run, chunks)
    expected = stream.routing()
    routing_ok = result == expected
    trees_ok = [to_tree(e) for e in collect(chunks)] == [node_to_tree(n) for n in stream.stanzas]
    record(
        benchmark,
        correct=routing_ok and trees_ok,
        nbytes=len(stream.data),
        items=len(stream.stanzas),
        stanzas_seen=len(result),
        routing_ok=routing_ok,
        trees_ok=trees_ok,
        chunk=CHUNK,
        seed=stream.seed,
    )
    assert len(result) == len(expected)
    assert routing_ok
    assert trees_ok


@pytest.mark.parametrize("variant", VARIANTS)
def test_parse_mixed(benchmark: Any, variant: str, mixed: GeneratedStream) -> None:
    _bench_stream(benchmark, variant, mixed, "parse-mixed")


@pytest.mark.parametrize("variant", VARIANTS)
def test_parse_tiny(benchmark: Any, variant: str, tiny: GeneratedStream) -> None:
    _bench_stream(benchmark, variant, tiny, "parse-tiny")


# -------------------------------------------------------------------------- memory
@pytest.fixture(scope="module")
def roster_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """The 565 KB roster stanza on disk (for the probe subprocesses), its size and item
    count."""
    node, wire = streamgen.roster_stanza(seed=1)
    path = tmp_path_factory.mktemp("roster") / "roster.xml"
    path.write_bytes(wire)
    return path, len(wire), len(node.children[0].children)


def _probe(variant: str, mode: str, path: Path, items: int) -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    env = dict(os.environ)
    # the child imports what this process imported: the same streamgen, the same xmppx
    paths = [env.get("PYTHONPATH", ""), str(here)]
    try:
        import xmppx

        paths.append(str(Path(xmppx.__path__[0]).parent))
    except ImportError:
        pass
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    proc = subprocess.run(
        [sys.executable, str(here / "_memprobe.py"), variant, mode, str(path), str(items)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if proc.returncode == 3:
        pytest.skip(proc.stdout.strip() or proc.stderr.strip())
    if proc.returncode != 0:
        raise AssertionError(f"memory probe failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize("variant", VARIANTS)
def test_roster_memory(benchmark: Any, variant: str, roster_file: tuple[Path, int, int]) -> None:
    path, wire, items = roster_file
    benchmark.group = "parse-memory"
    traced = _probe(variant, "tracemalloc", path, items)
    # The RSS probe is the timed round: one parse in a fresh process.
    rss = benchmark.pedantic(_probe, (variant, "rss", path, items), rounds=1, iterations=1)
    correct = bool(traced["correct"] and rss["correct"])
    record(
        benchmark,
        correct=correct,
        wire_bytes=wire,
        roster_items=items,
        tracemalloc_peak=traced["peak"],
        tracemalloc_ratio=round(traced["peak"] / wire, 3),
        rss_peak=rss["peak"],
        rss_ratio=round(rss["peak"] / wire, 3),
    )
    assert correct, (traced, rss)
