"""The canonical serializer (``xmppx.core._api`` "Serializer contract") on both backends:
exact bytes for hand-built elements, escaping, ``ns0`` prefixes, errors, round trips;
and ``stream_header``/``stream_footer`` (RFC 6120 §4.7)."""

from __future__ import annotations

from types import MappingProxyType, ModuleType
from typing import Any

import pytest

from xmppx.core._api import NS_STREAMS, NS_XML, StreamHeader
from xmppx.core._stream import stream_footer, stream_header

LANG = f"{{{NS_XML}}}lang"


def E(
    core: ModuleType,
    name: str,
    ns: str = "jabber:client",
    attrs: dict[str, str] | None = None,
    *children: object,
    text: str = "",
    tail: str = "",
) -> object:
    el = core.Element(name, ns, attrs, text=text, tail=tail)
    for c in children:
        el.append(c)
    return el


# -- exact bytes --------------------------------------------------------------------------
def test_default_namespace_is_not_repeated(core: ModuleType) -> None:
    msg = E(
        core, "message", "jabber:client", {"to": "juliet@example.com"}, E(core, "body", text="hi")
    )
    assert core.serialize(msg, "jabber:client") == (
        b"<message to='juliet@example.com'><body>hi</body></message>"
    )
    assert msg.serialize() == core.serialize(msg, "jabber:client")
    assert core.serialize(msg, "jabber:server") == (
        b"<message xmlns='jabber:client' to='juliet@example.com'><body>hi</body></message>"
    )


def test_namespace_changes_and_returns(core: ModuleType) -> None:
    iq = E(
        core,
        "iq",
        "jabber:client",
        {"type": "result"},
        E(
            core,
            "query",
            "jabber:iq:roster",
            None,
            E(core, "item", "jabber:iq:roster", {"jid": "a@b"}),
            E(core, "x", "jabber:client"),
        ),
        E(core, "y", ""),
    )
    assert core.serialize(iq, "jabber:client") == (
        b"<iq type='result'><query xmlns='jabber:iq:roster'><item jid='a@b'/>"
        b"<x xmlns='jabber:client'/></query><y xmlns=''/></iq>"
    )
    assert core.serialize(E(core, "a", ""), "") == b"<a/>"


def test_namespaced_attributes_get_ns_prefixes_in_order(core: ModuleType) -> None:
    el = E(core, "e", "urn:e", {"{urn:a}x": "1", "y": "2", "{urn:b}z": "3", "{urn:a}w": "4"})
    assert core.serialize(el, "jabber:client") == (
        b"<e xmlns='urn:e' xmlns:ns0='urn:a' xmlns:ns1='urn:b'"
        b" ns0:x='1' y='2' ns1:z='3' ns0:w='4'/>"
    )


def test_prefix_scope_and_counter(core: ModuleType) -> None:
    # a prefix declared on an element is in scope for its children, not its siblings;
    # the counter keeps counting across the whole call
    p = E(
        core,
        "p",
        "jabber:client",
        {"{urn:a}x": "1"},
        E(core, "c", "jabber:client", {"{urn:a}y": "2", "{urn:b}y": "3"}),
        E(core, "d", "jabber:client", {"{urn:b}z": "4"}),
    )
    assert core.serialize(p, "jabber:client") == (
        b"<p xmlns:ns0='urn:a' ns0:x='1'><c xmlns:ns1='urn:b' ns0:y='2' ns1:y='3'/>"
        b"<d xmlns:ns2='urn:b' ns2:z='4'/></p>"
    )


def test_attribute_in_the_element_namespace_still_needs_a_prefix(core: ModuleType) -> None:
    el = E(core, "x", "urn:x", {"{urn:x}a": "1"})
    assert core.serialize(el, "urn:x") == b"<x xmlns:ns0='urn:x' ns0:a='1'/>"


def test_xml_prefix_is_always_in_scope(core: ModuleType) -> None:
    el = E(core, "message", "jabber:client", {LANG: "en"}, E(core, "body", attrs={LANG: "fr"}))
    assert core.serialize(el) == b"<message xml:lang='en'><body xml:lang='fr'/></message>"


def test_text_escaping(core: ModuleType) -> None:
    el = E(core, "body", text="a & b < c > d ' \" \r\n\t]]>", tail="ignored")
    assert core.serialize(el) == b"<body>a &amp; b &lt; c &gt; d ' \" &#13;\n\t]]&gt;</body>"


def test_attribute_escaping(core: ModuleType) -> None:
    el = E(core, "x", "jabber:client", {"a": "a & b < c > d ' \" \t\n\r e"})
    assert core.serialize(el) == (
        b"<x a='a &amp; b &lt; c &gt; d &apos; &quot; &#9;&#10;&#13; e'/>"
    )


def test_namespace_uri_is_escaped(core: ModuleType) -> None:
    el = E(core, "x", "urn:a'b&c", {'{urn:<">}k': "v"})
    assert core.serialize(el) == (
        b"<x xmlns='urn:a&apos;b&amp;c' xmlns:ns0='urn:&lt;&quot;&gt;' ns0:k='v'/>"
    )


def test_mixed_content_with_tails(core: ModuleType) -> None:
    ns = "http://www.w3.org/1999/xhtml"
    body = E(
        core,
        "body",
        ns,
        None,
        E(core, "b", ns, text="big", tail=" world"),
        E(core, "br", ns, tail="!"),
        text="Hello ",
    )
    assert core.serialize(body, ns) == b"<body>Hello <b>big</b> world<br/>!</body>"


def test_non_ascii_is_plain_utf8(core: ModuleType) -> None:
    el = E(core, "café", "urn:ü", {"k": "日本"}, text="😀\u00a0")
    assert core.serialize(el) == "<café xmlns='urn:ü' k='日本'>😀\u00a0</café>".encode()


def test_root_tail_is_not_written(core: ModuleType) -> None:
    assert core.serialize(E(core, "a", tail="after")) == b"<a/>"


def test_empty_text_means_self_closing(core: ModuleType) -> None:
    assert core.serialize(E(core, "a", text="")) == b"<a/>"
    assert core.serialize(E(core, "a", text=" ")) == b"<a> </a>"
    assert core.serialize(E(core, "a", "jabber:client", None, E(core, "b"))) == b"<a><b/></a>"


def _esc_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _esc_attr(s: str) -> str:
    for c, r in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("'", "&apos;"), ('"', "&quot;")):
        s = s.replace(c, r)
    return s.replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


# characters with a meaning for the escaper, and non-ASCII ones around U+FFFE/U+FFFF (same
# UTF-8 lead byte EF) that must pass unchanged
ESCAPE_PROBES = "&<>'\"\t\n\r\u00e9\uf000\uff21\ufffd\U0001f600"


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 15, 16, 17, 33])
def test_escaping_at_every_position(core: ModuleType, length: int) -> None:
    # the native serializer scans several bytes at a time: put each special character at
    # every offset of strings around those block sizes
    for special in ESCAPE_PROBES:
        for pos in range(length + 1):
            s = "a" * pos + special + "b" * (length - pos)
            el = E(core, "x", "jabber:client", {"k": s}, E(core, "y", tail=s), text=s)
            want = f"<x k='{_esc_attr(s)}'>{_esc_text(s)}<y/>{_esc_text(s)}</x>"
            assert core.serialize(el) == want.encode(), (special, pos)


def test_attributes_keep_order_for_any_mapping(core: ModuleType) -> None:
    attrs = {"to": "a@b", LANG: "en", "{urn:x}k": "1", "id": "x" * 40}
    want = b"<m xmlns:ns0='urn:x' to='a@b' xml:lang='en' ns0:k='1' id='" + b"x" * 40 + b"'/>"
    for mapping in (attrs, MappingProxyType(attrs)):
        el = E(core, "m", "jabber:client", mapping)  # type: ignore[arg-type]
        assert core.serialize(el) == want
        assert list(el.attrs.items()) == list(attrs.items())
        assert el.get("{urn:x}k") == "1" and el.get("nope") is None
    el.set("to", "c@d")
    el.set("new", "v")
    assert el.pop_attr("id") == "x" * 40
    assert core.serialize(el) == (
        b"<m xmlns:ns0='urn:x' to='c@d' xml:lang='en' ns0:k='1' new='v'/>"
    )


def test_outputs_are_independent_of_earlier_calls(core: ModuleType) -> None:
    # (the native backend reuses one output buffer between calls)
    good = E(core, "a", text="x")
    assert core.serialize(good) == b"<a>x</a>"
    with pytest.raises(ValueError):
        core.serialize(E(core, "a", text="x" * 20 + "\x01"))
    assert core.serialize(good) == b"<a>x</a>"
    big = core.serialize(E(core, "big", text="y" * (3 << 20)))
    assert big == b"<big>" + b"y" * (3 << 20) + b"</big>"
    assert core.serialize(good) == b"<a>x</a>"


# -- errors -------------------------------------------------------------------------------
BAD_CHARS = ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]


@pytest.mark.parametrize("bad", BAD_CHARS)
def test_non_xml_characters_raise(core: ModuleType, bad: str) -> None:
    # built inside the check: a backend may already refuse the string (lone surrogates
    # cannot even cross into Rust), as long as it is a ValueError
    builders = [
        lambda: E(core, "a", text=f"x{bad}"),
        lambda: E(core, "a", "jabber:client", {"k": bad}),
        lambda: E(core, "a", "jabber:client", None, E(core, "b", tail=bad)),
        lambda: E(core, "a", f"urn:{bad}"),
    ]
    for build in builders:
        with pytest.raises(ValueError):
            core.serialize(build())


@pytest.mark.parametrize("bad", ["\x01", "\x1f", "\ufffe", "\uffff"])
@pytest.mark.parametrize("pos", [0, 7, 8, 9, 20])
def test_non_xml_characters_anywhere_in_long_strings_raise(
    core: ModuleType, bad: str, pos: int
) -> None:
    s = "\uffef" * pos + bad + "b" * 12
    builders = [
        lambda: E(core, "a", text=s),
        lambda: E(core, "a", "jabber:client", {"k": s}),
        lambda: E(core, "a", "jabber:client", None, E(core, "b", tail=s)),
        lambda: E(core, "a", f"urn:{s}"),
        lambda: E(core, "a", "jabber:client", {f"{{urn:{s}}}k": "v"}),
    ]
    for build in builders:
        with pytest.raises(ValueError):
            core.serialize(build())


@pytest.mark.parametrize("key", ["a b", "1a", "a:b", "xmlns", "{urn:x}", "{}a", "{urn:x}1"])
def test_bad_attribute_names_raise(core: ModuleType, key: str) -> None:
    with pytest.raises(ValueError):
        core.serialize(E(core, "a", "jabber:client", {key: "v"}))


@pytest.mark.parametrize(
    "build",
    [
        lambda c: c.Element("a", "urn:a}b"),
        lambda c: c.Element("a", "", {"{urn:a}b}k": "v"}),
        lambda c: c.Element("a", "", {"{}}k": "v"}),
    ],
    ids=["element", "attribute", "attribute-brace-only"],
)
def test_a_namespace_with_a_closing_brace_raises(core: ModuleType, build: Any) -> None:
    """'}' ends the namespace in an expanded name, and both parsers refuse it in a
    namespace name (expat does): such an element cannot be written to read back."""
    with pytest.raises(ValueError):
        core.serialize(build(core))
    with pytest.raises(ValueError):
        core.serialize(core.Element("a"), "urn:a}b")


def test_an_element_in_the_xmlns_namespace_raises(core: ModuleType) -> None:
    with pytest.raises(ValueError):
        core.serialize(E(core, "a", "http://www.w3.org/2000/xmlns/"))


def test_an_element_in_the_xml_namespace_is_written_with_the_bound_prefix(
    core: ModuleType,
) -> None:
    """Namespaces in XML 1.0 §3: ``xml`` is bound in every scope, so ``<xml:foo/>`` is a
    well-formed element both parsers accept; it is written back with that prefix, and
    its children keep the default namespace in scope."""
    foo = E(core, "foo", NS_XML, {"k": "v"}, E(core, "body", "jabber:client", text="x"))
    msg = E(core, "message", "jabber:client", {}, foo)
    wire = b"<message><xml:foo k='v'><body>x</body></xml:foo></message>"
    assert core.serialize(msg) == wire
    assert core.parse(wire) == msg
    assert core.serialize(E(core, "foo", NS_XML), "urn:other") == b"<xml:foo/>"


def test_a_parsed_element_in_the_xml_namespace_is_written_once_changed(
    core: ModuleType,
) -> None:
    """What a client sent stays writable when the server changes or copies it (a
    stanza routed with a new 'from', a carbon copy)."""
    wire = b"<message to='a@b'><body>x</body><xml:foo><i/></xml:foo></message>"
    msg = core.parse(wire)
    msg.set("from", "c@d/r")
    msg[1].set("k", "v")
    out = core.serialize(msg)
    assert out == (
        b"<message to='a@b' from='c@d/r'><body>x</body><xml:foo k='v'><i/></xml:foo></message>"
    )
    assert core.parse(out) == msg
    assert core.serialize(msg[1].copy()) == b"<xml:foo k='v'><i/></xml:foo>"


# -- round trips --------------------------------------------------------------------------
def test_round_trip_of_a_rich_stanza(core: ModuleType) -> None:
    msg = E(
        core,
        "message",
        "jabber:client",
        {"to": "a@b", LANG: "en", "{urn:x}k": "\t\n\r'\"&<>"},
        E(core, "body", text="a\r\nb & <c>", tail="\n"),
        E(
            core,
            "html",
            "http://jabber.org/protocol/xhtml-im",
            None,
            E(
                core,
                "body",
                "http://www.w3.org/1999/xhtml",
                None,
                E(core, "em", "http://www.w3.org/1999/xhtml", text="hi", tail=" there"),
                text="say ",
            ),
        ),
        E(core, "x", "", {"{urn:x}k": "2"}, tail=" end "),
    )
    for default_ns in ("jabber:client", "jabber:server", "", "urn:x"):
        assert core.parse(core.serialize(msg, default_ns), default_ns) == msg


def test_parse_then_serialize_is_canonical(core: ModuleType) -> None:
    raw = (
        b"<message xmlns:p='urn:p' p:a=\"1\" to='x'  ><body  >hi &apos; &#x263A;</body>"
        b"<p:q xmlns:p='urn:q'><p:r/></p:q></message>"
    )
    # rebuilt by hand: a parsed element may be written from its input bytes (native)
    rebuilt = core.Element.from_etree(core.parse(raw).to_etree())
    assert (
        core.serialize(rebuilt)
        == (
            "<message xmlns:ns0='urn:p' ns0:a='1' to='x'><body>hi ' ☺</body>"
            "<q xmlns='urn:q'><r/></q></message>"
        ).encode()
    )


# -- stream header and footer ---------------------------------------------------------------
def test_stream_header_defaults() -> None:
    assert stream_header() == (
        b"<?xml version='1.0'?><stream:stream version='1.0' xml:lang='en' "
        b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )


@pytest.mark.parametrize("ns", [NS_XML, "http://www.w3.org/2000/xmlns/", "urn:\x01"])
def test_stream_header_refuses_a_default_namespace_no_stream_can_declare(ns: str) -> None:
    with pytest.raises(ValueError):
        stream_header(default_ns=ns)


def test_stream_header_all_attributes() -> None:
    got = stream_header(
        to="im.example.com",
        from_="juliet@im.example.com",
        id="++TR84Sm6A3hnt3Q065SnAbbk3Y=",
        version=None,
        lang="de",
        default_ns="jabber:server",
    )
    assert got == (
        b"<?xml version='1.0'?><stream:stream from='juliet@im.example.com' "
        b"to='im.example.com' id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' xml:lang='de' "
        b"xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
    )


def test_stream_header_escaping_and_errors() -> None:
    got = stream_header(to="a'b&<c>\"\t", lang=None)
    assert got == (
        b"<?xml version='1.0'?><stream:stream to='a&apos;b&amp;&lt;c&gt;&quot;&#9;' "
        b"version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    with pytest.raises(ValueError):
        stream_header(to="a\x00")


def test_stream_header_parses_back(core: ModuleType) -> None:
    header = stream_header(to="a'b", from_="c&d", id="i\n", default_ns="jabber:component:accept")
    [event] = core.StreamParser().feed(header)
    assert event == StreamHeader(
        name="stream",
        namespace=NS_STREAMS,
        attrs={"from": "c&d", "to": "a'b", "id": "i\n", "version": "1.0", LANG: "en"},
        nsmap={"": "jabber:component:accept", "stream": NS_STREAMS},
    )
    assert core.StreamParser().feed(header + stream_footer())[-1].__class__.__name__ == "StreamEnd"
    assert stream_footer() == b"</stream:stream>"


# -- what cannot be written -------------------------------------------------------------
@pytest.mark.parametrize("ns", [NS_XML, "http://www.w3.org/2000/xmlns/"])
def test_reserved_namespaces_are_not_the_default(core: ModuleType, ns: str) -> None:
    with pytest.raises(ValueError):
        core.serialize(core.Element("a", ns), ns)
    with pytest.raises(ValueError):
        core.serialize(core.Element("a"), ns)


def test_the_default_namespace_must_be_writable(core: ModuleType) -> None:
    with pytest.raises(ValueError):
        core.serialize(core.Element("a", "urn:\x01"), "urn:\x01")
    with pytest.raises(TypeError):
        core.serialize(core.Element("a"), None)
    with pytest.raises(TypeError):
        core.serialize("<a/>")


def test_errors_are_met_in_document_order(core: ModuleType) -> None:
    root = core.Element("r")
    root.append(core.Element("a", text="\x01", tail="\x02"))
    root.append(core.Element("b", tail="\x03"))
    with pytest.raises(ValueError, match="U\\+0001"):
        core.serialize(root)


def test_a_stream_header_is_a_read_only_value() -> None:
    h = StreamHeader(name="stream", namespace=NS_STREAMS, attrs={"to": "example.com"})
    assert h == StreamHeader(name="stream", namespace=NS_STREAMS, attrs={"to": "example.com"})
    assert h.attrs == {"to": "example.com"}
    with pytest.raises(TypeError):
        h.attrs["to"] = "evil.example"  # type: ignore[index]
    with pytest.raises(TypeError, match="unhashable"):
        hash(h)
