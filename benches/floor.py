"""How fast can a parser built on the stdlib's expat be?  Floors for issue 2's target
"pure-Python fallback: no slower than the stdlib XMLPullParser loop".

Usage (from the repository root, with xmppx installed or built in place)::

    python benches/floor.py              # both streams, 9 rounds each, a Markdown table
    python benches/floor.py --rounds 21

Each variant reads the benchmark streams (``streamgen``, 4 KiB chunks, as
``test_bench_parse.py``) and, except the three that only parse, returns the same
``(tag, to, from, type, id)`` per stanza as the reference; the ratio is the stdlib loop's
median over the variant's (above 1: faster than the stdlib loop).

``stdlib loop``
    ``XMLPullParser`` driven as slixmpp drives it (the benchmark's ``etree`` variant).
``xmppx pure Python``
    ``xmppx.core._py.StreamParser`` (the benchmark's ``python`` variant).
``pyexpat, no handlers``
    expat alone: tokenizing and well-formedness, nothing reported to Python.
``pyexpat, C handlers``
    ``dict.setdefault`` as start and ``list.append`` as end handler: what pyexpat costs
    to hand every tag to any callback (it builds the name and attribute dict), before a
    line of Python runs.  A parser that checks the depth and attribute limits at the
    offending tag needs at least this, with a Python handler instead.
``token walk``
    expat with only a default handler (``list.append``): every tag and text run arrives
    as its raw text, with no Python frame and no attribute dict, expat still checking
    well-formedness and namespaces; one Python loop over those tokens per feed tracks the
    depth (which is where the depth limit could be checked, and a count of ``=`` bounds
    the attributes) and finds where each stanza ends.  It has no attributes to return.
``token walk + start tags again``
    The same, then each stanza's start tag (closed with ``/>``) parsed again by
    ElementTree's C parser in one ``feed`` per chunk, to get the routing attributes
    that the token walk does not give.
``C tree, no checks``
    ElementTree's C parser and tree builder with no Python per element: stanzas are cut
    off the stream root after each feed by one test (whether the last ``end`` event is
    the root's last child), routing attributes read with ElementTree's C ``get``.  It
    checks no limit, no restricted XML and no text between stanzas, so it is not a
    parser the contract allows; it is the floor of any design that hands stanzas out.
``C tree + one Python object``
    The same, with each stanza wrapped in one object whose ``get`` is Python code, as
    the contract's ``Element`` is in the pure-Python backend.
``C tree, Element subclass``
    "C tree, no checks" with a Python subclass of ``ET.Element`` (no Python methods run)
    as the tree builder's element factory: the way to make the stanza itself the
    contract's element, with no wrapper.  The C tree builder takes its slow, generic
    path for any factory but its own, so this costs what the wrapper does.
``C tree + bounds``
    "C tree + one Python object" (the wrapper being ``xmppx.core._py.Element``) with the
    cheapest sound checks a parser on the C tree builder could make without a Python
    call per tag, escalating to an exact parser when one fails: restricted markup by
    ``find`` (``<!`` only as ``<![CDATA[``, no ``<?``), the attribute limit as the
    largest attribute count among the elements ended in a feed plus every ``xmlns`` in
    it, the depth limit per stanza (a stanza whose children have no children is
    shallow; others are walked) and along the open stanza's last-child chain, text
    between stanzas from each stanza's tail.  Still not every rule of the contract
    (bytes per stanza, the exact offending byte), and already slower than the stdlib
    loop: the per-stanza Python work is what the stdlib loop spends per tag.
``C tree + bulk checks``
    The same rules as "C tree + bounds", plus the bytes a stanza may span, the stream
    header nested as a stanza and what a feed leaves held in a tag, with no line of
    Python per stanza for any check: each is one C call over all the elements a feed
    added (``map``, ``chain`` and ``str.join`` over the tree level by level, from the
    open stanza's chain of last children), and only the wrapping into
    ``xmppx.core._py.Element`` runs per stanza.  Still without the escalation a real
    parser needs (a replay from the stanza's first byte, whose offset ElementTree
    does not give).  The C calls cost about what the stdlib loop's Python does per
    tag, so this lands where "C tree + bounds" does.
"""

from __future__ import annotations

import argparse
import operator
import pyexpat
import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamgen
from _common import load_backend
from test_bench_parse import CHUNK, pull_runner, xmppx_runner
from xmppx.core._api import NS_STREAMS
from xmppx.core._py._element import Element
from xmppx.core._py._lazy import TAG_REST

Routing = tuple[Any, ...]
Run = Callable[[list[bytes]], list[Routing] | None]


def expat_only(chunks: list[bytes]) -> None:
    parse = pyexpat.ParserCreate("UTF-8", "}").Parse
    for chunk in chunks:
        parse(chunk, False)


def expat_c_handlers(chunks: list[bytes]) -> None:
    p = pyexpat.ParserCreate("UTF-8", "}")
    p.StartElementHandler = {}.setdefault
    p.EndElementHandler = [].append
    for chunk in chunks:
        p.Parse(chunk, False)


def token_walk(reparse: bool) -> Run:
    def run(chunks: list[bytes]) -> list[Routing] | None:
        out: list[Routing] = []
        p = pyexpat.ParserCreate("UTF-8", "}")
        tokens: list[str] = []
        p.DefaultHandler = tokens.append
        side = ET.XMLParser(target=ET.TreeBuilder())
        events: list[tuple[str, Any]] = []
        side._setevents(events, ("start",))  # type: ignore[attr-defined]
        side.feed("<x xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
        root = events[0][1]
        side._setevents(events, ())  # type: ignore[attr-defined]
        depth = 0
        in_cdata = False
        for chunk in chunks:
            p.Parse(chunk, False)
            starts: list[str] = []
            walk = iter(tokens)
            if in_cdata:
                in_cdata = "]]>" not in walk
            for t in walk:
                if t[0] != "<":
                    continue
                c = t[1]
                if c == "/":
                    depth -= 1
                elif c == "!":  # a CDATA section: its text may hold '<'
                    in_cdata = "]]>" not in walk  # consumes the section
                elif c == "?":
                    continue
                elif t[-2] == "/":
                    if depth == 1:
                        starts.append(t)
                else:
                    if depth == 1:
                        starts.append(t[:-1] + "/>")
                    depth += 1
            tokens.clear()
            if reparse and starts:
                side.feed("".join(starts))
                for el in root:
                    get = el.get
                    out.append((el.tag, get("to"), get("from"), get("type"), get("id")))
                del root[:]
        return out if reparse else None

    return run


class _Wrapped:
    __slots__ = ("_el", "tag")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._el.get(key, default)  # type: ignore[no-any-return]


def _c_tree_stream(
    chunks: list[bytes], builder: Any = None
) -> tuple[Any, list[tuple[str, Any]], Any, list[bytes]]:
    """ElementTree's C parser and tree builder (``builder``, a plain ``TreeBuilder`` by
    default) past the stream header in ``chunks``: the parser, its list of ``end``
    events (appended in C), the stream root and the chunks still to feed."""
    parser = ET.XMLParser(target=ET.TreeBuilder() if builder is None else builder)
    events: list[tuple[str, Any]] = []
    root = _prime(parser, events, chunks[0])
    return parser, events, root, [chunks[0][_header_end(chunks[0]) :], *chunks[1:]]


def c_tree(wrap: bool) -> Run:
    def run(chunks: list[bytes]) -> list[Routing]:
        out: list[Routing] = []
        append = out.append
        parser, events, root, body = _c_tree_stream(chunks)
        new = _Wrapped.__new__
        for chunk in body:
            parser.feed(chunk)
            for el in _finished(root, events):
                if wrap:
                    w = new(_Wrapped)
                    w._el = el
                    w.tag = el.tag
                    get = w.get
                    append((w.tag, get("to"), get("from"), get("type"), get("id")))
                else:
                    get = el.get
                    append((el.tag, get("to"), get("from"), get("type"), get("id")))
        return out

    return run


class _Sub(ET.Element):
    __slots__ = ()


def c_tree_subclass(chunks: list[bytes]) -> list[Routing]:
    out: list[Routing] = []
    append = out.append
    parser, events, root, body = _c_tree_stream(chunks, ET.TreeBuilder(element_factory=_Sub))
    for chunk in body:
        parser.feed(chunk)
        for el in _finished(root, events):
            get = el.get
            append((el.tag, get("to"), get("from"), get("type"), get("id")))
    return out


def _header_end(first: bytes) -> int:
    return first.index(b">", first.index(b"<stream")) + 1


def _prime(parser: Any, events: list[tuple[str, Any]], first: bytes) -> Any:
    """Feed the stream header; from then on only ``end`` events are collected."""
    parser._setevents(events, ("start",))
    parser.feed(first[: _header_end(first)])
    root = events[0][1]
    parser._setevents(events, ("end",))
    events.clear()
    return root


def _finished(root: Any, events: list[tuple[str, Any]]) -> list[Any]:
    """The stanzas the last feed completed, detached from the stream root."""
    if not events:
        return []
    last = events[-1][1]
    events.clear()
    n = len(root)
    done = n if n and (last is root[-1] or last is root) else n - 1
    if done <= 0:
        return []
    stanzas = root[:done]
    del root[:done]
    return stanzas  # type: ignore[no-any-return]


class Escalate(Exception):
    """A bound failed: an exact parser would have to decide."""


def _wrapped_routing(el: Any, names: dict[str, tuple[str, str]]) -> Routing:
    """``el`` (ElementTree's) as the pure-Python backend's ``Element``, as a parser on
    the C tree builder would return it (its children would be decoded on first use),
    and the routing read from that."""
    tag = el.tag
    try:
        ns, local = names[tag]
    except KeyError:
        ns, _, local = tag[1:].rpartition("}")
        names[tag] = (ns, local)
    w = Element.__new__(Element)
    w._name = local
    w._namespace = ns
    w._attrs = el.attrib
    w._tail = ""
    w._raw = None
    get = w.get
    return (w.tag, get("to"), get("from"), get("type"), get("id"))


def c_tree_bounds(chunks: list[bytes]) -> list[Routing]:
    attrib = operator.attrgetter("attrib")
    second = operator.itemgetter(1)
    max_depth, max_attributes = 32, 64
    out: list[Routing] = []
    append = out.append
    parser, events, root, body = _c_tree_stream(chunks)
    names: dict[str, tuple[str, str]] = {}
    for chunk in body:
        if b"<?" in chunk:
            raise Escalate("a processing instruction")
        i = chunk.find(b"<!")
        while i >= 0:
            if not chunk.startswith(b"<![CDATA[", i):
                raise Escalate("a comment or declaration")
            i = chunk.find(b"<!", i + 9)
        parser.feed(chunk)
        if events:
            widest = max(map(len, map(attrib, map(second, events))))
            if widest + chunk.count(b"xmlns") > max_attributes:
                raise Escalate("maybe too many attributes")
        for el in _finished(root, events):
            if any(map(len, el)):  # deeper than two levels: walk it
                stack = [(el, 1)]
                while stack:
                    e, d = stack.pop()
                    if d > max_depth:
                        raise Escalate("too deep")
                    stack.extend((c, d + 1) for c in e if len(c))
            tail = el.tail
            if tail and tail.strip():
                raise Escalate("text between stanzas")
            append(_wrapped_routing(el, names))
        if len(root):  # the open stanza: its last-child chain
            e, d = root[-1], 1
            while len(e):
                e, d = e[-1], d + 1
                if d > max_depth or len(e.attrib) > max_attributes:
                    raise Escalate("too deep or too many attributes")
    return out


#: A reference other than the five predefined ones, or a '&' that cannot start one of
#: them (what a feed leaves held in a start tag may end in one not finished yet).
_ODD_REFERENCE: Final = re.compile(rb"&(?!(?:amp|lt|gt|apos|quot);)(?![a-z]{0,4}\Z)")
_NESTED: Final = f"{{{NS_STREAMS}}}stream"


def c_tree_bulk(chunks: list[bytes]) -> list[Routing]:
    tail = operator.attrgetter("tail")
    tag = operator.attrgetter("tag")
    keys = operator.methodcaller("keys")
    max_depth, max_attributes, max_bytes = 32, 64, 1 << 20
    out: list[Routing] = []
    parser, events, root, body = _c_tree_stream(chunks)
    names: dict[str, tuple[str, str]] = {}
    spine: list[tuple[Any, int]] = []  # the open stanza's open elements, their child counts
    last_end: Any = None
    returned: Any = None  # the last stanza returned: its tail may still grow
    offset = region = 0  # bytes read; where the open stanza's first feed began
    lt_last = False
    for chunk in body:
        if (
            b"<?" in chunk
            or chunk.count(b"<!") != chunk.count(b"<![CDATA[")
            or (lt_last and chunk[:1] in b"!?")
        ):
            raise Escalate("a comment, declaration or processing instruction")
        xmlns = chunk.count(b"xmlns")
        parser.feed(chunk)
        offset += len(chunk)
        if events:
            last_end = events[-1][1]
            events.clear()
        n = len(root)
        is_open = bool(n) and last_end is not root[-1] and last_end is not root
        done = n - 1 if is_open else n
        # the elements this feed added, level by level: new stanzas at depth 1, new
        # children of the elements open before it one level below them
        levels: dict[int, list[Any]] = {}
        for d, (e, k) in enumerate(spine, 2):
            if len(e) > k:
                levels.setdefault(d, []).extend(e[k:])
        if n > bool(spine):
            levels.setdefault(1, []).extend(root[bool(spine) :])
        widest = 0
        while levels:
            d = min(levels)
            level = levels.pop(d)
            while level:
                if d > max_depth:
                    raise Escalate("too deep")
                widest = max(widest, *map(len, map(keys, level)))
                level = list(chain.from_iterable(level))
                d += 1
                level.extend(levels.pop(d, ()))
        if widest + xmlns > max_attributes:
            raise Escalate("maybe too many attributes")
        if offset - region > max_bytes:
            raise Escalate("maybe too many bytes")
        if returned is not None and returned.tail and returned.tail.strip():
            raise Escalate("text between stanzas")
        if done:
            stanzas = root[:done]
            del root[:done]
            if _NESTED in map(tag, stanzas) or "".join(filter(None, map(tail, stanzas))).strip():
                raise Escalate("a nested stream header or text between stanzas")
            returned = stanzas[-1]
            out.extend(map(_wrapped_routing, stanzas, repeat(names)))
        spine = []
        if is_open:
            if done:
                region = offset - len(chunk)
            e = root[-1]
            while True:
                spine.append((e, len(e)))
                if not len(e) or e[-1] is last_end:
                    break
                e = e[-1]
            if len(spine) >= max_depth:
                raise Escalate("maybe too deep")
        else:
            region = offset
        # what expat holds at the end: a start tag's attributes and references so far,
        # a CDATA section's opening, or text at stream level
        lt = chunk.rfind(b"<")
        m = TAG_REST.match(chunk, lt + 1) if lt >= 0 else None
        if lt >= 0 and m is None:
            held = chunk[lt:]
            if held[1:2] == b"!":
                if not (held.startswith(b"<![CDATA[") or b"<![CDATA[".startswith(held)):
                    raise Escalate("a declaration")
            elif held.count(b"=") >= max_attributes or _ODD_REFERENCE.search(held):
                raise Escalate("a tag to read again")
        elif not is_open and chunk[m.end() if m else 0 :].strip():
            raise Escalate("text between stanzas")
        lt_last = chunk[-1:] == b"<"
    return out


def variants() -> dict[str, Run]:
    stdlib, _ = pull_runner(lambda: ET.XMLPullParser(("start", "end")), clear=True)
    ours, _ = xmppx_runner(load_backend("python"))
    return {
        "stdlib loop": stdlib,
        "xmppx pure Python": ours,
        "pyexpat, no handlers": expat_only,
        "pyexpat, C handlers": expat_c_handlers,
        "token walk": token_walk(reparse=False),
        "token walk + start tags again": token_walk(reparse=True),
        "C tree, no checks": c_tree(wrap=False),
        "C tree + one Python object": c_tree(wrap=True),
        "C tree, Element subclass": c_tree_subclass,
        "C tree + bounds": c_tree_bounds,
        "C tree + bulk checks": c_tree_bulk,
    }


def timed(run: Run, chunks: list[bytes], expected: list[Routing]) -> float:
    t = time.perf_counter()
    got = run(chunks)
    elapsed = time.perf_counter() - t
    if got is not None and got != expected:
        raise SystemExit(f"{run!r} returned other stanzas than the reference")
    return elapsed


STREAMS: Final = {"mixed": streamgen.mixed_stream, "tiny": streamgen.tiny_stream}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    runs = variants()
    table: dict[str, dict[str, float]] = {name: {} for name in runs}
    for stream_name, make in STREAMS.items():
        stream = make(seed=1)
        chunks = stream.chunks(CHUNK)
        expected = stream.routing()
        # rounds interleaved: a burst of load elsewhere touches every variant alike
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                times[name].append(timed(run, chunks, expected))
        for name in runs:
            table[name][stream_name] = statistics.median(times[name]) * 1000
    print("| Variant | mixed ms | × stdlib | tiny ms | × stdlib |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = table["stdlib loop"]
    for name, row in table.items():
        cells = []
        for s in STREAMS:
            cells += [f"{row[s]:.1f}", f"{base[s] / row[s]:.2f}×"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
