"""Native-only behaviour of ``xmppx._native`` (DESIGN.md §2): lazy stanzas and raw
forwarding.

A parsed stanza keeps its input bytes; serializing it unchanged (or changed only in its
own attributes, as when the server stamps ``from``) reuses those bytes when they mean the
same thing in the output context, and every output parses back to an equal element
(``_api.py``, "Serializer contract").  Children are built on demand and are then live
objects: a change made through one is seen by its parent and stops the reuse of the
parent's bytes.  The inputs are the shared stream vectors in ``tests/vectors/xml/``; the
pure-Python backend serves as the independent reference parser.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

native: ModuleType = pytest.importorskip("xmppx._native")
from xmppx.core import _py as python  # noqa: E402
from xmppx.core._api import StreamEnd, StreamHeader, XMLStreamError  # noqa: E402

XML_DIR = Path(__file__).parent / "vectors" / "xml"
Y_CASES = sorted(XML_DIR.glob("y_*.xml"))
BIG = {
    "max_stanza_bytes": 1 << 24,
    "max_depth": 1000,
    "max_attributes": 1000,
    "max_buffer_bytes": 1 << 20,
}


def feed(name: str) -> tuple[bytes, StreamHeader, list[Any]]:
    """The bytes of vector ``name``, its header and its stanzas (native parser)."""
    data = (XML_DIR / name).read_bytes()
    events = native.StreamParser(**BIG).feed(data)
    header = events[0]
    assert isinstance(header, StreamHeader)
    return data, header, [e for e in events if isinstance(e, native.Element)]


def tree(el: Any) -> tuple[Any, ...]:
    """A backend-neutral form of an element."""
    return (el.tag, sorted(el.attrs.items()), el.text, el.tail, tuple(tree(c) for c in el))


def reparse(out: bytes, default_ns: str) -> tuple[Any, ...]:
    """Parse ``out`` with the pure-Python backend (the independent reference)."""
    return tree(python.parse(out, default_ns))


def test_events_are_the_api_classes() -> None:
    data, _, stanzas = feed("y_stream_end.xml")
    events = native.StreamParser().feed(data)
    assert type(events[0]) is StreamHeader
    assert type(events[-1]) is StreamEnd
    assert type(stanzas[0]) is native.Element
    with pytest.raises(XMLStreamError) as err:
        native.StreamParser().feed(data + b"<!-- no -->")
    assert err.value.condition == "not-well-formed"
    assert [type(e) for e in err.value.events] == [type(e) for e in events]


@pytest.mark.parametrize("case", Y_CASES, ids=lambda p: p.stem)
def test_unchanged_stanza_is_forwarded_byte_for_byte(case: Path) -> None:
    data, header, stanzas = feed(case.name)
    prefixed = {uri for prefix, uri in header.nsmap.items() if prefix}
    for el in stanzas:
        out = el.serialize(header.default_ns)
        if out not in data:
            # only a stanza written with a prefix declared on the header cannot be
            # copied: the prefix is not bound in the output
            assert el.namespace in prefixed, out
        assert reparse(out, header.default_ns) == tree(el)
        assert native.parse(out, header.default_ns) == el


def test_from_stamp_rewrites_only_the_start_tag() -> None:
    _, _, [msg] = feed("y_message_basic.xml")
    before = msg.serialize()
    content = before[before.index(b">") + 1 : before.rindex(b"</")]
    assert content, "the vector's message has content"
    msg.set("from", "romeo@example.net/orchard")
    after = msg.serialize()
    assert after.startswith(b"<message ")
    assert b" from='romeo@example.net/orchard'" in after[: after.index(b">")]
    assert after.endswith(b">" + content + b"</message>")
    assert reparse(after, "jabber:client") == tree(msg)
    assert msg.get("from") == "romeo@example.net/orchard"


def test_other_stream_namespace_declares_the_stanza_namespace() -> None:
    _, _, [msg] = feed("y_message_basic.xml")
    out = msg.serialize("jabber:server")
    assert out.startswith(b"<message xmlns='jabber:client'")
    assert reparse(out, "jabber:server") == tree(msg)


def test_prefixed_stanza_is_rewritten_and_its_children_reused() -> None:
    data, header, [features] = feed("y_stream_features.xml")
    out = features.serialize(header.default_ns)
    assert out.startswith(b"<features xmlns='http://etherx.jabber.org/streams'>")
    assert b"stream:" not in out
    for child in features:
        # each child declares its own namespace, so its input bytes are reused
        assert child.serialize(header.default_ns) in data
        assert child.serialize(header.default_ns) in out
    assert reparse(out, header.default_ns) == tree(features)


def test_children_are_live_objects() -> None:
    _, _, [msg] = feed("y_message_basic.xml")
    body = msg.find("body")
    assert body is not None
    assert body is msg[0] is msg.children[0] is next(iter(msg))
    body.text = "changed <text>"
    assert msg.findtext("body") == "changed <text>"
    out = msg.serialize()
    assert b"<body>changed &lt;text&gt;</body>" in out
    assert reparse(out, "jabber:client") == tree(msg)


def test_child_tail_and_attribute_changes_disable_reuse() -> None:
    _, _, stanzas = feed("y_mixed_content_xhtml.xml")
    msg = stanzas[0]
    html = msg[len(msg) - 1]
    inner = html[0]
    inner[0].tail = " (edited)"
    inner[0].set("style", "color: red")
    out = msg.serialize()
    assert b" (edited)" in out
    assert b"style='color: red'" in out
    assert reparse(out, "jabber:client") == tree(msg)


def test_structural_changes_are_serialized() -> None:
    _, _, [msg] = feed("y_message_basic.xml")
    body = msg[0]
    msg.remove(body)
    msg.append(native.Element("thread", "jabber:client", text="t1"))
    msg.insert(0, body)
    assert [c.name for c in msg] == ["body", "thread"]
    out = msg.serialize()
    assert out.endswith(b"<thread>t1</thread></message>")
    assert reparse(out, "jabber:client") == tree(msg)
    msg.clear_children()
    assert len(msg) == 0
    assert msg.serialize().endswith(b"/>")
    assert reparse(msg.serialize(), "jabber:client") == tree(msg)


def test_moved_child_keeps_its_bytes() -> None:
    data, header, [features] = feed("y_stream_features.xml")
    starttls = features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls")
    assert starttls is not None
    raw = starttls.serialize(header.default_ns)
    assert raw in data
    features.remove(starttls)
    wrapper = native.Element("wrapper", "urn:example:wrap")
    wrapper.append(starttls)
    out = wrapper.serialize()
    assert out == b"<wrapper xmlns='urn:example:wrap'>" + raw + b"</wrapper>"
    assert reparse(out, "jabber:client") == tree(wrapper)
    _, _, [msg] = feed("y_message_basic.xml")
    body = msg[0]
    wrapper.append(body)  # relies on the stream's default namespace: rewritten
    out = wrapper.serialize()
    assert b"<body xmlns='jabber:client'>" in out
    assert reparse(out, "jabber:client") == tree(wrapper)


def test_copy_is_deep() -> None:
    _, _, [msg] = feed("y_message_basic.xml")
    dup = msg.copy()
    assert dup == msg and dup is not msg
    dup[0].text = "other"
    dup.set("id", "x")
    assert msg.findtext("body") != "other"
    assert msg.get("id") != "x"
    assert dup != msg


def test_equality_between_lazy_and_materialized() -> None:
    _, _, [a] = feed("y_nested_namespaces.xml")
    _, _, [b] = feed("y_nested_namespaces.xml")
    assert a == b
    list(b)  # materialize one side only
    assert a == b
    assert (a != b) is False
    assert a != native.Element("message")
    assert a.__eq__(object()) is NotImplemented
    with pytest.raises(TypeError):
        hash(a)


def test_first_child_namespace_of_lazy_and_changed_elements() -> None:
    _, _, stanzas = feed("y_multiple_stanzas.xml")
    for el in stanzas:
        expected = el.first_child_namespace()
        children = list(el)
        assert expected == (children[0].namespace if children else None)
    iq = native.Element("iq", "jabber:client")
    assert iq.first_child_namespace() is None
    iq.append(native.Element("query", "jabber:iq:roster"))
    assert iq.first_child_namespace() == "jabber:iq:roster"


def test_etree_round_trip() -> None:
    _, _, stanzas = feed("y_mixed_content_xhtml.xml")
    for el in stanzas:
        et = el.to_etree()
        back = native.Element.from_etree(et)
        assert back == el
        assert tree(python.Element.from_etree(et)) == tree(el)


def test_cycles_and_deep_trees_raise_instead_of_crashing() -> None:
    a = native.Element("a")
    with pytest.raises(ValueError):
        a.append(a)
    b = native.Element("b")
    a.append(b)
    b.append(a)
    try:
        with pytest.raises(ValueError):
            a.serialize()
        with pytest.raises(ValueError):
            a.copy()
    finally:
        b.remove(a)
    top = native.Element("x")
    for _ in range(5000):
        parent = native.Element("x")
        parent.append(top)
        top = parent
    with pytest.raises(ValueError):
        top.serialize()


def test_large_stanza_reads_and_forwards_without_rebuilding() -> None:
    """A large parsed stanza: routing attributes and the payload namespace are read, and
    the stanza forwarded, from its one input buffer; children decode on demand."""
    items = "".join(
        f"<item jid='user{i}@example.com' name='User {i}' subscription='both'>"
        f"<group>Friends</group></item>"
        for i in range(3000)
    )
    stanza = (
        f"<iq type='result' id='r1' to='a@example.com/x'>"
        f"<query xmlns='jabber:iq:roster'>{items}</query></iq>"
    ).encode()
    [_, iq] = native.StreamParser(max_stanza_bytes=1 << 22).feed(
        b"<stream:stream xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams'>" + stanza
    )
    assert iq.get("type") == "result"
    assert iq.first_child_namespace() == "jabber:iq:roster"
    assert iq.serialize() == stanza
    query = iq[0]
    assert len(query) == 3000
    assert query[2999].get("jid") == "user2999@example.com"
    assert query[2999].findtext("group") == "Friends"


# -- built by hand: the native serializer writes the pure-Python backend's bytes --------

NAMES = st.sampled_from(["a", "b", "message", "x-y", "é", "n.1"])
NAMESPACES = st.sampled_from(["", "jabber:client", "urn:x", "urn:y"])
KEYS = st.sampled_from(
    ["to", "id", "{urn:x}k", "{urn:z}k", "{http://www.w3.org/XML/1998/namespace}lang"]
)
TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or ord(c) >= 0x20
    ),
    max_size=8,
)


@st.composite
def element_spec(draw: Any, depth: int = 0) -> dict[str, Any]:
    children = draw(st.lists(element_spec(depth + 1), max_size=3)) if depth < 3 else []
    return {
        "name": draw(NAMES),
        "ns": draw(NAMESPACES),
        "attrs": draw(st.dictionaries(KEYS, TEXT, max_size=3)),
        "text": draw(TEXT),
        "tail": draw(TEXT),
        "children": children,
    }


def build(core: ModuleType, spec: dict[str, Any]) -> Any:
    el = core.Element(spec["name"], spec["ns"], spec["attrs"], text=spec["text"], tail=spec["tail"])
    for c in spec["children"]:
        el.append(build(core, c))
    return el


@settings(max_examples=300, deadline=None)
@given(element_spec(), st.sampled_from(["jabber:client", "urn:x", ""]))
def test_hand_built_serialization_matches_python_backend(
    spec: dict[str, Any], default_ns: str
) -> None:
    n_el, p_el = build(native, spec), build(python, spec)
    out = n_el.serialize(default_ns)
    assert out == python.serialize(p_el, default_ns), json.dumps(spec)
    n_el.tail = ""  # the root's tail lies outside the element and is not written
    assert native.parse(out, default_ns) == n_el


# longer strings than TEXT, over an alphabet of the characters the escaper treats apart
# (the native serializer scans several bytes at a time), invalid ones included
LONG_TEXT = st.text(
    alphabet=st.sampled_from(list("ab&<>'\"\t\n\r\x01\u00e9\uf000\uff21\ufffd\ufffe\U0001f600")),
    max_size=40,
)


def _serialize_or_error(core: ModuleType, spec: dict[str, Any]) -> bytes | type[ValueError]:
    try:
        return bytes(core.serialize(build(core, spec)))
    except ValueError:
        return ValueError


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["to", "id", "{urn:x}k"]), LONG_TEXT, max_size=3),
    LONG_TEXT,
    LONG_TEXT,
)
def test_long_strings_escape_like_python_backend(
    attrs: dict[str, str], text: str, tail: str
) -> None:
    child = {"name": "b", "ns": "urn:y", "attrs": attrs, "text": tail, "tail": text}
    spec = {"name": "a", "ns": "jabber:client", "attrs": attrs, "text": text, "tail": ""}
    spec["children"] = [{**child, "children": []}]
    assert _serialize_or_error(native, spec) == _serialize_or_error(python, spec)


def test_hand_built_attributes_survive_changes() -> None:
    el = native.Element("m", "jabber:client", {"a": "1", "{urn:x}b": "2", "c": "3"})
    assert el.attrs == {"a": "1", "{urn:x}b": "2", "c": "3"}
    assert repr(el) == "<Element '{jabber:client}m' attrs=3>"
    copy = el.copy()
    el.set("a", "one")
    assert el.pop_attr("c") == "3" and el.pop_attr("c", "gone") == "gone"
    assert el.attrs == {"a": "one", "{urn:x}b": "2"}
    assert copy.attrs == {"a": "1", "{urn:x}b": "2", "c": "3"}
    assert el != copy
    assert el.serialize() == b"<m xmlns:ns0='urn:x' a='one' ns0:b='2'/>"
    assert native.Element.from_etree(el.to_etree()) == el
