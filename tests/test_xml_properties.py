"""Property tests of the XML core (hypothesis), on both backends.

* serialize → parse gives the same element back, and both backends write the same bytes;
* a stream gives the same events (or error condition) whole and in random chunks;
* random byte mutations of valid streams: whole vs chunked agree, and the native and
  Python backends agree on the events and the error condition.

The differential parts need both backends and are skipped when the native one is not
built.  Example counts are kept moderate so that the suite stays fast.
"""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.xmlruns import NATIVE, PY, feed_all
from xmppx.core._api import NS_XML

needs_native = pytest.mark.skipif(NATIVE is None, reason="xmppx._native is not built")

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"
)

# -- strategies ---------------------------------------------------------------------
# Names, ASCII and a few others (tests/test_xml_names.py covers every character).
NAMES = st.text(alphabet="abcxyzQ_", min_size=1, max_size=3) | st.sampled_from(
    ["message", "body", "é", "日本", "a-b", "x.y", "a1", "query"]
)
NAMESPACES = st.sampled_from(["", "jabber:client", "urn:a", "urn:b", "urn:a'\"&<>\t x"])
ATTR_NAMESPACES = st.sampled_from(["urn:a", "urn:c", NS_XML, "jabber:client"])


def _is_char(c: str) -> bool:
    o = ord(c)
    return (
        o in (0x9, 0xA, 0xD)
        or 0x20 <= o <= 0xD7FF
        or 0xE000 <= o <= 0xFFFD
        or 0x10000 <= o <= 0x10FFFF
    )


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("<>&'\"\t\n\r ]]a")),
        st.characters(blacklist_categories=("Cs",)).filter(_is_char),
    ),
    max_size=8,
)
ATTR_KEYS = NAMES | st.builds(lambda ns, n: f"{{{ns}}}{n}", ATTR_NAMESPACES, NAMES)


@st.composite
def elements(draw: st.DrawFn, core: ModuleType, depth: int = 0, top: bool = True) -> Any:
    attrs = draw(st.dictionaries(ATTR_KEYS, TEXT, max_size=3))
    el = core.Element(
        draw(NAMES),
        draw(NAMESPACES),
        attrs,
        text=draw(TEXT),
        tail="" if top else draw(TEXT),
    )
    if depth < 3:
        for child in draw(st.lists(elements(core, depth + 1, False), max_size=3)):
            el.append(child)
    return el


def to_json(core: ModuleType, ev: Any) -> Any:
    if isinstance(ev, core.Element):
        return (
            "el",
            ev.name,
            ev.namespace,
            sorted(ev.attrs.items()),
            ev.text,
            ev.tail,
            [to_json(core, c) for c in ev],
        )
    if type(ev).__name__ == "StreamHeader":
        return ("hdr", ev.name, ev.namespace, sorted(ev.attrs.items()), sorted(ev.nsmap.items()))
    return ("end",)


def run(core: ModuleType, chunks: list[bytes], **limits: int) -> tuple[list[Any], str | None]:
    """All events (including ``error.events``) and the error condition, if any."""
    events, condition = feed_all(core, chunks, **limits)
    return [to_json(core, e) for e in events], condition


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """A valid stream: header, stanzas from random trees, keepalives, maybe the end."""
    parts = [HEADER]
    for el in draw(st.lists(elements(PY), max_size=4)):
        parts.append(draw(st.sampled_from([b"", b" ", b"\n", b"\r\n\t"])))
        parts.append(PY.serialize(el, "jabber:client"))
    if draw(st.booleans()):
        parts.append(b"</stream:stream>")
    return b"".join(parts)


INTERESTING = list(b"<>&;'\"!?-[]/ =:x\x00\xff\xc3\x80\r\n")


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(streams()))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "fragment"]))
        if op == "replace" and i < len(data):
            data[i] = draw(st.sampled_from(INTERESTING))
        elif op == "insert":
            data[i:i] = bytes([draw(st.sampled_from(INTERESTING))])
        elif op == "delete" and i < len(data):
            del data[i]
        elif op == "fragment":
            data[i:i] = draw(
                st.sampled_from(
                    [
                        b"<!--c-->",
                        b"<?pi x?>",
                        b"&foo;",
                        b"<!DOCTYPE x>",
                        b"<![CDATA[<!--]]>",
                        b"&#0;",
                        b"</x>",
                        b"<?xml version='1.0'?>",
                        b"text",
                    ]
                )
            )
    if draw(st.integers(0, 20)) == 0:
        data[0:0] = b"\xef\xbb\xbf"  # a byte-order mark (inside a name it would be a
        # Fifth-Edition name character, which expat's name classes and both backends refuse)
    return bytes(data)


# -- properties ---------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), default_ns=st.sampled_from(["jabber:client", "jabber:server", ""]))
def test_serialize_parse_round_trip(core: ModuleType, data: st.DataObject, default_ns: str) -> None:
    el = data.draw(elements(core))
    raw = core.serialize(el, default_ns)
    assert el.serialize(default_ns) == raw
    assert core.parse(raw, default_ns) == el


@needs_native
@SETTINGS
@given(data=st.data(), default_ns=st.sampled_from(["jabber:client", "urn:a", ""]))
def test_backends_serialize_identically(data: st.DataObject, default_ns: str) -> None:
    assert NATIVE is not None
    py_el = data.draw(elements(PY))
    native_el = NATIVE.Element.from_etree(py_el.to_etree())
    assert NATIVE.serialize(native_el, default_ns) == PY.serialize(py_el, default_ns)


@SETTINGS
@given(doc=streams(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_valid_streams_split_anywhere(core: ModuleType, doc: bytes, cuts: list[int]) -> None:
    whole = run(core, [doc])
    assert whole[1] is None
    assert run(core, split(doc, cuts)) == whole


@SETTINGS
@given(
    doc=mutated_streams(),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    small=st.booleans(),
)
def test_mutated_streams_split_anywhere(
    core: ModuleType, doc: bytes, cuts: list[int], small: bool
) -> None:
    limits = {"max_stanza_bytes": 60, "max_depth": 3, "max_attributes": 4} if small else {}
    whole = run(core, [doc], **limits)
    assert run(core, split(doc, cuts), **limits) == whole
    assert run(core, [doc[i : i + 1] for i in range(len(doc))], **limits) == whole


@needs_native
@SETTINGS
@given(doc=mutated_streams(), small=st.booleans())
def test_backends_agree_on_mutated_streams(doc: bytes, small: bool) -> None:
    assert NATIVE is not None
    limits = {"max_stanza_bytes": 60, "max_depth": 3, "max_attributes": 4} if small else {}
    assert run(NATIVE, [doc], **limits) == run(PY, [doc], **limits)


@needs_native
@SETTINGS
@given(doc=streams(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_backends_agree_on_valid_streams(doc: bytes, cuts: list[int]) -> None:
    assert NATIVE is not None
    assert run(NATIVE, split(doc, cuts)) == run(PY, [doc])
