"""Peak memory of parsing one stanza, in a fresh process (run by ``test_bench_parse``).

``python _memprobe.py VARIANT MODE STANZA_FILE ITEMS`` parses the stanza in ``STANZA_FILE``
(a roster result with ``ITEMS`` items) as a stream child, fed in 4 KiB chunks after the
stream header, with ``VARIANT`` one of ``native``, ``python``, ``etree``, ``lxml``, and
prints JSON ``{"peak": bytes, "correct": bool}``.  Exit status 3 means the variant is not
available here.

Modes:

``tracemalloc``
    The ``tracemalloc`` peak over the parse: allocations made through Python's
    allocators (objects, the pure-Python parser's buffers, expat's through pyexpat's
    memory hooks).  Memory a Rust extension takes from the system allocator is *not*
    seen, so for ``native`` this is a lower bound.
``rss``
    The growth of peak resident memory over the parse (Linux: ``VmHWM`` after resetting
    it through ``/proc/self/clear_refs``, minus ``VmRSS`` before): everything, the Rust
    heap included, to page granularity.  Only the parse runs in between.

In both, the parser code has run once on a small roster first (imports, caches, code
pages), the input and its chunks exist before the measurement starts, and the parsed
stanza is still alive when it ends (a server holds it while routing it); the routing
attributes are read inside the measurement.  The item count is checked afterwards.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamgen

ROSTER_QUERY = "{jabber:iq:roster}query"
ROSTER_ITEM = "{jabber:iq:roster}item"
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xml:lang='en' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _parser(variant: str) -> Callable[[list[bytes]], Any]:
    """A function feeding the header then the chunks, returning the stanza element."""
    if variant in ("native", "python"):
        if variant == "native":
            import xmppx._native as core
        else:
            import xmppx.core._py as core  # type: ignore[no-redef]
        element_cls = core.Element

        def run_xmppx(chunks: list[bytes]) -> Any:
            parser = core.StreamParser(max_stanza_bytes=2 * 1024 * 1024)
            parser.feed(HEADER)
            found = None
            for chunk in chunks:
                for ev in parser.feed(chunk):
                    if type(ev) is element_cls:
                        found = ev
            return found

        return run_xmppx
    if variant == "etree":
        import xml.etree.ElementTree as ET

        def make() -> Any:
            return ET.XMLPullParser(("start", "end"))
    elif variant == "lxml":
        from lxml import etree

        def make() -> Any:
            return etree.XMLPullParser(events=("start", "end"))
    else:
        raise ValueError(variant)

    def run_pull(chunks: list[bytes]) -> Any:
        parser = make()
        parser.feed(HEADER)
        depth = 0
        root: Any = None
        found = None
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
                        found = elem
                        root.remove(elem)  # as test_bench_parse detaches (lxml-safe)
        return found

    return run_pull


def main(argv: list[str]) -> int:
    variant, mode, path, items = argv[1], argv[2], Path(argv[3]), int(argv[4])
    try:
        run = _parser(variant)
    except ImportError as exc:
        print(f"{variant} not importable: {exc}")
        return 3
    wire = path.read_bytes()
    chunks = [wire[i : i + 4096] for i in range(0, len(wire), 4096)]
    # Warm-up on a small roster: lazy imports, first-use caches and the code pages of
    # the parser (file-backed pages count in RSS) are not the stanza's memory.
    warm = streamgen.write_stanza(streamgen.roster_result(random.Random(0), 20), random.Random(0))
    run([warm])
    routing: tuple[Any, ...] = ()
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        stanza = run(chunks)
        routing = (stanza.get("to"), stanza.get("from"), stanza.get("type"), stanza.get("id"))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elif mode == "rss":
        before = _status("VmRSS")
        _reset_peak_rss()
        stanza = run(chunks)
        routing = (stanza.get("to"), stanza.get("from"), stanza.get("type"), stanza.get("id"))
        peak = max(0, _status("VmHWM") - before)
    else:
        raise ValueError(mode)
    query = stanza.find(ROSTER_QUERY)
    correct = (
        routing[2] == "result"
        and routing[3] is not None
        and query is not None
        and len(query.findall(ROSTER_ITEM)) == items
    )
    print(json.dumps({"peak": peak, "correct": correct, "wire": len(wire)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
