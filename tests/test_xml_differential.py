"""Seeded differential runs of the stream parser: stream-shaped input (headers with
prefixes and quoted ``>``, stanzas with references, CDATA and namespaced attributes,
keepalives written several ways, stream ends with trailing bytes), byte mutations
(with pieces a byte-mutation fuzzer found the backends reading differently),
limits near the stanzas' sizes, and chunkings down to one byte.  The native and the
pure-Python backend must return the same events and error condition, and each the same
whole as in chunks.  Deterministic (fixed seeds); a failure prints the input to replay.

The hypothesis property tests explore document structure; this explores the places
the two parsers reach the same verdict by different routes (expat's token-at-once
checks against the contract's byte-at-a-time reading).

Run as a script to sweep other seeds (``python -m tests.test_xml_differential 0 700``,
300 inputs a seed, with all their chunkings): it prints every input the backends
disagree on, and exits 1 if there was one."""

from __future__ import annotations

import random
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.xmlruns import NATIVE, PY, feed_all

pytestmark = pytest.mark.skipif(NATIVE is None, reason="xmppx._native is not built")

STREAMS = b"http://etherx.jabber.org/streams"
HEADERS = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='" + STREAMS + b"'>",
    b"<?xml version='1.0'?><stream:stream xmlns:stream='" + STREAMS + b"' xmlns='jabber:client'"
    b" xmlns:p='urn:p' to='example.com' version='1.0' xml:lang='en'>",
    b"<s:x xmlns:s='" + STREAMS + b"' xmlns='jabber:server' xmlns:p='urn:p'>",
    b"<stream xmlns='" + STREAMS + b"' xmlns:p=\"urn:p'>\" a='x>/'\n>",
)
NAMES = (b"iq", b"message", b"presence", b"p:x", b"b\xc3\xa9", b"a")
KEYS = (b"to", b"id", b"type", b"xml:lang", b"p:k", b"xmlns", b"xmlns:q")
VALUES = (b"1", b"x>y/", b"&amp;&lt;", b"&#62;&#x2F;", b"a\tb\r\nc", b"\xe2\x82\xac", b"", b"'")
TEXTS = (b"hi", b" ", b"&amp;", b"&#32;", b"a\r\nb", b"<![CDATA[x<y>]]>", b"\xf0\x9f\x98\x80", b">")
GAPS = (b"", b" ", b"\r\n\t", b"&#32;", b"&#x9;", b"<![CDATA[ ]]>", b"x", b"]]>")
ENDS = (b"</stream:stream>", b"</s:x \n>", b"</stream>", b"</stream:stream> x", b"")
NOISE = (b"<", b">", b"&", b"'", b'"', b"/", b"=", b"]", b"\xc3", b"\x00", b" ", b"!", b"?")
#: Inserted where a byte of noise would be, 1 time in 4: what a byte-mutation fuzzer
#: found the two parsers reading differently (leads cut before markup, a late
#: declaration, references as keepalives, '}' in a namespace, bad entity names).
PIECES = (
    b"\xf0f",
    b"\xe0",
    b"<?xml ",
    b"<!--",
    b"&#9;",
    b"&#9;]]>",
    b" xmlns='}'",
    b" xmlns:q='a}'",
    b"&\xf4;",
    b"&o;",
    b"\xe2\x82",
)
#: Streams that begin with an XML declaration, mutated there too.
DECLS = (
    b"<?xml version='1.0'?>",
    b"<?xml version='1.0' encoding='UTF-8'?>\n",
    b"<?xml version='1.0' encoding='latin1'?>",
)


def element(r: random.Random, depth: int) -> bytes:
    name = r.choice(NAMES)
    attrs = b""
    for key in r.sample(KEYS, r.choice((0, 0, 1, 2, 3))):
        value = r.choice(VALUES)
        quote = b'"' if b"'" in value else r.choice((b"'", b'"'))
        attrs += r.choice((b" ", b"\n")) + key + r.choice((b"=", b" = ")) + quote + value + quote
    if depth > 3 or r.random() < 0.3:
        return b"<" + name + attrs + r.choice((b"/>", b" />"))
    body = b"".join(
        r.choice(TEXTS) if r.random() < 0.5 else element(r, depth + 1)
        for _ in range(r.choice((0, 1, 2, 3)))
    )
    return b"<" + name + attrs + b">" + body + b"</" + name + r.choice((b">", b" >", b"\n>"))


def stream(r: random.Random) -> bytes:
    header = r.choice(HEADERS)
    data = header + b"".join(
        (r.choice(GAPS[:6]) if r.random() < 0.9 else r.choice(GAPS)) + element(r, 1)
        for _ in range(r.randint(0, 5))
    )
    data += r.choice(GAPS[:3]) + r.choice(ENDS)
    first = len(header) // 2
    if r.random() < 0.1:
        data = r.choice(DECLS) + (data if data[:2] != b"<?" else data[data.index(b">") + 1 :])
        first = 0
    for _ in range(r.choice((0, 0, 0, 1, 2, 3))):
        at = r.randrange(first, len(data) + 1)
        op = r.random()
        if op < 0.1:
            data = data[:at] + r.choice(PIECES) + data[at:]
        elif op < 0.4:
            data = data[:at] + r.choice(NOISE) + data[at:]
        elif op < 0.7:
            data = data[:at] + data[at + 1 :]
        else:
            data = data[:at] + data[at : at + r.randint(1, 8)] + data[at:]
    return data


def limits(r: random.Random) -> dict[str, int]:
    pick = r.random()
    if pick < 0.4:
        return {}
    if pick < 0.6:
        return {"max_stanza_bytes": r.randint(10, 150)}
    if pick < 0.75:
        return {"max_depth": r.randint(1, 4)}
    if pick < 0.9:
        return {"max_attributes": r.randint(2, 6)}
    return {"max_buffer_bytes": r.randint(40, 160)}


def chunkings(r: random.Random, data: bytes) -> list[list[bytes]]:
    cuts = sorted(r.sample(range(1, len(data)), min(len(data) - 1, r.randint(1, 6))))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    out = [pieces]
    if len(data) < 400:
        out.append([data[i : i + 1] for i in range(len(data))])
    return out


def run(core: ModuleType, chunks: list[bytes], lim: dict[str, int]) -> tuple[list[Any], str | None]:
    events, condition = feed_all(core, chunks, **lim)
    return [_value(e) for e in events], condition


def _value(event: Any) -> Any:
    return _tree(event) if hasattr(event, "namespace") and hasattr(event, "tail") else event


def _tree(el: Any) -> tuple[Any, ...]:
    """The element model (``_api``): what both backends must agree on (the native one
    may serialize a parsed stanza from its input bytes, so bytes are not compared)."""
    return (
        el.name,
        el.namespace,
        sorted(el.attrs.items()),
        el.text,
        el.tail,
        [_tree(child) for child in el],
    )


def disagreements(seed: int) -> list[str]:
    """The inputs of ``seed`` (300 streams) that the backends disagree on, fed whole or
    in one of their chunkings, each described for replay: empty when they agree."""
    assert NATIVE is not None
    r = random.Random(seed)
    out: list[str] = []
    for _ in range(300):
        data = stream(r)
        lim = limits(r)
        whole = run(NATIVE, [data], lim)
        found = [] if run(PY, [data], lim) == whole else [[len(data)]]
        for chunks in chunkings(r, data):
            if run(PY, chunks, lim) != whole or run(NATIVE, chunks, lim) != whole:
                found.append([len(c) for c in chunks])
        if found:
            out.append(f"input {data!r}, limits {lim}, chunks {found}")
    return out


@pytest.mark.parametrize("seed", range(16))
def test_backends_and_chunkings_agree(seed: int) -> None:
    assert disagreements(seed) == []


@pytest.mark.parametrize("seed", range(16, 20))
def test_agreement_with_the_expat_parser_renewed_after_every_feed(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pure-Python parser replaces its expat parser after ``_RENEW_BYTES`` (a
    megabyte), between stanzas or inside one; with the threshold at 0 it does so at
    every feed it can, and every result is still the native one."""
    from xmppx.core._py import _parser

    assert NATIVE is not None
    monkeypatch.setattr(_parser, "_RENEW_BYTES", 0)
    r = random.Random(seed)
    for _ in range(150):
        data = stream(r)
        lim = limits(r)
        whole = run(NATIVE, [data], lim)
        for chunks in chunkings(r, data):
            where = f"input {data!r}, limits {lim}, chunks {[len(c) for c in chunks]}"
            assert run(PY, chunks, lim) == whole, where


#: Inputs a sweep found the backends disagreeing on, with the chunking that showed it
#: (the ones that a short vector in ``tests/vectors/xml`` reproduces are there instead).
SWEPT: list[tuple[bytes, dict[str, int], list[int]]] = [
    # '<' ends a feed, '![' the next, and the limit falls before the 'A' of '<![CATA[':
    # the limit is crossed first
    (
        b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
        b" xmlns='jabber:client' xmlns:p='urn:p' to='example.com' version='1.0'"
        b" xml:lang='en'> <a><![CDATA[x<y>]]></a\n><![CDATA[ ]]><message><presence>"
        b"</presence\n></message >&#32;<p:x xml:lang='a\tb\r\nc'\nto = \"&amp;&lt;\">"
        b'<b\xc3\xa9\nxml:lang=\'\'\nxmlns:q = "\xe2\x82\xac"\ntype="\'"></b\xc3\xa9\n>'
        b"<![CATA[x<y>]]><iq\np:k = '&#62;&#x2F;'>&#32;</iq ></p:x ><presence></presence >"
        b"\r\n\t",
        {"max_stanza_bytes": 92},
        [188, 19, 137, 4, 17, 58],
    ),
]


@pytest.mark.parametrize(("data", "lim", "cuts"), SWEPT)
def test_inputs_a_sweep_found(data: bytes, lim: dict[str, int], cuts: list[int]) -> None:
    assert NATIVE is not None
    assert sum(cuts) == len(data)
    ends = [sum(cuts[: i + 1]) for i in range(len(cuts))]
    chunks = [data[a:b] for a, b in zip([0, *ends], ends, strict=False)]
    whole = run(NATIVE, [data], lim)
    assert run(NATIVE, chunks, lim) == whole
    assert run(PY, chunks, lim) == whole
    assert run(PY, [data], lim) == whole


def sweep(first: int, last: int) -> int:
    """Seeds ``first`` to ``last - 1`` as ``test_backends_and_chunkings_agree`` runs
    them; prints each disagreement, returns how many inputs had one."""
    bad = 0
    for seed in range(first, last):
        for case in disagreements(seed):
            bad += 1
            print(f"seed {seed}: {case}", flush=True)
    return bad


if __name__ == "__main__":
    first, last = (int(a) for a in sys.argv[1:3])
    disagreements = sweep(first, last)
    print(f"{disagreements} of {300 * (last - first)} inputs disagree")
    raise SystemExit(1 if disagreements else 0)
