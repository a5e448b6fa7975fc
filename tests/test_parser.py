"""Stream parser behaviours beyond the vectors (``xmppx.core._api`` rules 1-10), on both
backends: when events are reported, reset, death after an error, events carried by the
error, limits detected before the stanza completes, and ``parse()``."""

from __future__ import annotations

from types import ModuleType

import pytest

from xmppx.core._api import (
    DEFAULT_MAX_BUFFER_BYTES,
    NS_STREAMS,
    NS_XML,
    StreamEnd,
    StreamHeader,
    XMLStreamError,
)

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' "
    b"xml:lang='en'>"
)
MSG = b"<message to='juliet@example.com' type='chat'><body>Art thou not Romeo?</body></message>"


def started(core: ModuleType, **limits: int) -> object:
    parser = core.StreamParser(**limits)
    [header] = parser.feed(HEADER)
    assert isinstance(header, StreamHeader)
    return parser


def fail(parser: object, data: bytes) -> XMLStreamError:
    with pytest.raises(XMLStreamError) as info:
        parser.feed(data)  # type: ignore[attr-defined]
    return info.value


# -- events ---------------------------------------------------------------------------
def test_header_reported_when_its_start_tag_completes(core: ModuleType) -> None:
    parser = core.StreamParser()
    assert parser.feed(HEADER[:-1]) == []
    [header] = parser.feed(HEADER[-1:])
    assert header == StreamHeader(
        name="stream",
        namespace=NS_STREAMS,
        attrs={"to": "example.com", "version": "1.0", f"{{{NS_XML}}}lang": "en"},
        nsmap={"": "jabber:client", "stream": NS_STREAMS},
    )
    assert header.default_ns == "jabber:client"


def test_stanza_reported_only_when_complete(core: ModuleType) -> None:
    parser = started(core)
    assert parser.feed(MSG[:-1]) == []  # type: ignore[attr-defined]
    [msg] = parser.feed(MSG[-1:])  # type: ignore[attr-defined]
    assert isinstance(msg, core.Element)
    assert (msg.name, msg.namespace, msg.get("to"), msg.tail) == (
        "message",
        "jabber:client",
        "juliet@example.com",
        "",
    )
    assert msg.findtext("body") == "Art thou not Romeo?"


def test_several_events_in_one_feed_in_order(core: ModuleType) -> None:
    parser = core.StreamParser()
    events = parser.feed(HEADER + MSG + b"\n<presence/>\n</stream:stream>\n")
    assert [type(e).__name__ for e in events] == ["StreamHeader", "Element", "Element", "StreamEnd"]
    assert events[2].name == "presence"
    assert events[3] == StreamEnd()
    assert parser.feed(b"  \r\n") == []  # whitespace after the end is ignored


def test_keepalives_never_accumulate(core: ModuleType) -> None:
    # far more whitespace than any limit, between stanzas and before the header
    parser = core.StreamParser(max_stanza_bytes=100, max_buffer_bytes=len(HEADER) + 10)
    for _ in range(200):
        assert parser.feed(b" " * 50 + b"\n") == []
    parser.reset()
    assert len(parser.feed(HEADER)) == 1
    for _ in range(200):
        assert parser.feed(b" \t\r\n" * 25) == []
    assert len(parser.feed(MSG[:0] + b"<presence/>")) == 1


def test_text_in_stanza_split_mid_character(core: ModuleType) -> None:
    parser = started(core)
    body = "Grüße 😀".encode()
    data = b"<message><body>" + body + b"</body></message>"
    events = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])  # type: ignore[attr-defined]
    [msg] = events
    assert msg.findtext("body") == "Grüße 😀"


# -- errors ---------------------------------------------------------------------------
def test_error_carries_events_completed_in_the_same_feed(core: ModuleType) -> None:
    parser = core.StreamParser()
    err = fail(parser, HEADER + MSG + b"<presence/><!-- x -->")
    assert err.condition == "restricted-xml"
    assert [type(e).__name__ for e in err.events] == ["StreamHeader", "Element", "Element"]
    assert err.events[2].name == "presence"


def test_events_from_earlier_feeds_are_not_repeated(core: ModuleType) -> None:
    parser = started(core)
    assert len(parser.feed(MSG)) == 1  # type: ignore[attr-defined]
    err = fail(parser, b"<message>&undefined;</message>")
    assert err.condition == "restricted-xml"
    assert err.events == []


def test_dead_after_error_until_reset(core: ModuleType) -> None:
    parser = started(core)
    assert fail(parser, b"hello").condition == "bad-format"
    for data in (MSG, b" ", b""):
        err = fail(parser, data)
        assert err.condition == "bad-format"
        assert err.events == []
    parser.reset()  # type: ignore[attr-defined]
    events = parser.feed(HEADER + MSG)  # type: ignore[attr-defined]
    assert [type(e).__name__ for e in events] == ["StreamHeader", "Element"]


def test_reset_discards_partial_input_and_allows_a_new_declaration(core: ModuleType) -> None:
    parser = started(core)
    assert parser.feed(MSG[:20]) == []  # type: ignore[attr-defined]
    parser.reset()  # type: ignore[attr-defined]
    # a restarted stream may start with its own XML declaration (RFC 6120 §4.3.3)
    events = parser.feed(HEADER + MSG)  # type: ignore[attr-defined]
    assert [type(e).__name__ for e in events] == ["StreamHeader", "Element"]
    assert events[1] == core.parse(MSG)


def test_declaration_not_allowed_later_in_the_same_stream(core: ModuleType) -> None:
    parser = started(core)
    assert fail(parser, b"<?xml version='1.0'?>").condition == "not-well-formed"


# -- limits: detected before the stanza completes ----------------------------------------
def long_stanza(size: int) -> bytes:
    return b"<message><body>" + b"x" * size + b"</body></message>"


def test_stanza_bytes_limit_at_the_first_byte_over(core: ModuleType) -> None:
    data = long_stanza(1000)
    parser = started(core, max_stanza_bytes=100)
    assert parser.feed(data[:100]) == []  # type: ignore[attr-defined]
    assert fail(parser, data[100:101]).condition == "policy-violation"
    parser = started(core, max_stanza_bytes=100)
    assert fail(parser, data[:101]).condition == "policy-violation"


def test_stanza_bytes_limit_is_exact(core: ModuleType) -> None:
    exact = long_stanza(100 - len(long_stanza(0)))
    assert len(exact) == 100
    parser = started(core, max_stanza_bytes=100)
    for _ in range(3):
        assert len(parser.feed(b"\n   " + exact)) == 1  # type: ignore[attr-defined]
    over = long_stanza(101 - len(long_stanza(0)))
    assert fail(parser, over).condition == "policy-violation"


def test_stanza_bytes_limit_on_an_endless_start_tag(core: ModuleType) -> None:
    parser = started(core, max_stanza_bytes=1000)
    assert parser.feed(b"<message to='") == []  # type: ignore[attr-defined]
    for _ in range(9):
        assert parser.feed(b"a" * 100) == []  # type: ignore[attr-defined]
    assert fail(parser, b"a" * 100).condition == "policy-violation"


def test_depth_limit_before_the_stanza_completes(core: ModuleType) -> None:
    parser = started(core, max_depth=3)
    assert len(parser.feed(b"<message><a><b/></a></message>")) == 1  # type: ignore[attr-defined]
    assert parser.feed(b"<message><a><b>") == []  # type: ignore[attr-defined]
    assert fail(parser, b"<c>").condition == "policy-violation"


def test_attribute_limit_counts_namespace_declarations(core: ModuleType) -> None:
    parser = started(core, max_attributes=5)
    ok = b"<message a='1' b='2' xmlns:p='urn:p' p:c='3' d='4'/>"
    assert len(parser.feed(ok)) == 1  # type: ignore[attr-defined]
    # six with the declarations: fails on the start tag alone
    assert fail(
        parser, b"<message a='1' b='2' xmlns:p='urn:p' p:c='3' d='4' xmlns:q='urn:q'>"
    ).condition == ("policy-violation")


def test_buffer_limit_on_an_endless_header(core: ModuleType) -> None:
    parser = core.StreamParser(max_buffer_bytes=200)
    start = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
    assert parser.feed(start) == []
    assert parser.feed(b"a" * (200 - len(start))) == []
    assert fail(parser, b"a").condition == "policy-violation"


def test_default_buffer_limit_holds_a_large_header(core: ModuleType) -> None:
    decls = b"".join(b" xmlns:p%d='urn:example:%d'" % (i, i) for i in range(40))
    header = HEADER[:-1] + decls + b">"
    assert len(header) < DEFAULT_MAX_BUFFER_BYTES
    [h] = core.StreamParser(max_attributes=100).feed(header)
    assert h.nsmap["p39"] == "urn:example:39"


@pytest.mark.parametrize(
    "key", ["max_stanza_bytes", "max_depth", "max_attributes", "max_buffer_bytes"]
)
def test_limits_are_keyword_only(core: ModuleType, key: str) -> None:
    with pytest.raises(TypeError):
        core.StreamParser(100)
    assert core.StreamParser(**{key: 10}) is not None


# -- parse() ------------------------------------------------------------------------------
def test_parse_uses_the_default_namespace(core: ModuleType) -> None:
    el = core.parse(b"<iq type='get'><query xmlns='jabber:iq:roster'/></iq>", "jabber:server")
    assert (el.name, el.namespace) == ("iq", "jabber:server")
    assert el.first_child_namespace() == "jabber:iq:roster"
    assert core.parse(b"<a/>", "").namespace == ""
    assert core.parse(b"  <a/>\n").namespace == "jabber:client"


def test_parse_knows_the_stream_prefix(core: ModuleType) -> None:
    el = core.parse(
        b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
    )
    assert (el.name, el.namespace) == ("features", NS_STREAMS)


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"", "not-well-formed"),
        (b"<a/><b/>", "not-well-formed"),
        (b"<a>", "not-well-formed"),
        (b"<a/>text", "bad-format"),
        (b"<a><!-- c --></a>", "restricted-xml"),
        (b"<a>&nbsp;</a>", "restricted-xml"),
        (b"<a>\xff</a>", "unsupported-encoding"),
        (b"<p:a/>", "not-well-formed"),
    ],
)
def test_parse_errors(core: ModuleType, data: bytes, condition: str) -> None:
    with pytest.raises(XMLStreamError) as info:
        core.parse(data)
    assert info.value.condition == condition


@pytest.mark.parametrize(
    "tail",
    [b"\xc3", b"\xe2\x80", b"<![CDATA[ ", b"<?", b"<!", b"&amp", b"<b"],
    ids=["cut-2", "cut-3", "cdata", "pi", "decl", "ref", "tag"],
)
def test_parse_input_that_ends_inside_anything_is_not_well_formed(
    core: ModuleType, tail: bytes
) -> None:
    for data in (b"<a/>" + tail, b"<a>" + tail):
        with pytest.raises(XMLStreamError) as info:
            core.parse(data)
        assert info.value.condition == "not-well-formed", data


def test_parse_takes_what_feed_takes(core: ModuleType) -> None:
    for data in (bytearray(b"<a/>"), memoryview(b"<a/>")):
        assert core.parse(data).name == "a"
    with pytest.raises(TypeError):
        core.parse("<a/>")


@pytest.mark.parametrize("ns", [NS_XML, "http://www.w3.org/2000/xmlns/", "urn:\x01"])
def test_parse_refuses_a_default_namespace_no_stream_can_declare(core: ModuleType, ns: str) -> None:
    with pytest.raises(ValueError):
        core.parse(b"<a/>", ns)


def test_parse_does_not_count_its_own_header_against_the_limits(core: ModuleType) -> None:
    ns = "urn:" + "x" * 20000
    assert core.parse(b"<a/>", ns).namespace == ns


def test_limits_none_is_the_default_and_depth_is_at_most_1000(core: ModuleType) -> None:
    p = core.StreamParser(max_depth=None, max_stanza_bytes=None)
    p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='" + NS_STREAMS.encode() + b"'>")
    assert len(p.feed(b"<a>" * 31 + b"</a>" * 31)) == 1
    with pytest.raises(XMLStreamError):
        p.feed(b"<a>" * 33)
    assert core.StreamParser(max_depth=1000) is not None
    with pytest.raises(ValueError, match="1000"):
        core.StreamParser(max_depth=1001)
