"""The pure-Python backend's fast path (``xmppx.core._py._parser``, "Stanzas are lazy"):
stanzas keep their input bytes and decode text and children on first use, and whatever
the fast path does not decide itself is replayed with the full handlers, so that every
result equals the native backend's.  The differential property tests cover random
input; these pin the cases the design names."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.xmlruns import NATIVE, PY, feed_all
from xmppx.core._api import StreamEnd, StreamHeader, XMLStreamError

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:x' to='example.com' "
    b"version='1.0'>"
)


def events(core: ModuleType, chunks: list[bytes], **limits: int) -> tuple[list[Any], str | None]:
    """Every event as a comparable value, and the error condition (``None`` if none)."""
    out, condition = feed_all(core, chunks, **limits)
    return [_value(e) for e in out], condition


def _value(event: Any) -> Any:
    if isinstance(event, StreamHeader | StreamEnd):
        return event
    return event.serialize()


def both_agree(data: bytes, **limits: int) -> tuple[list[Any], str | None]:
    """The Python backend gives the same result whole and byte by byte, and (when
    built) the same as the native one."""
    whole = events(PY, [data], **limits)
    assert events(PY, [data[i : i + 1] for i in range(len(data))], **limits) == whole
    if NATIVE is not None:
        assert events(NATIVE, [data], **limits) == whole
    return whole


def test_a_stanza_is_decoded_on_first_use() -> None:
    parser = PY.StreamParser()
    _, message = parser.feed(
        HEADER + b"<message to='juliet@example.com'><body>hi &amp; <x:b>bye</x:b></body></message>"
    )
    # routing attributes are there without decoding anything
    assert message.get("to") == "juliet@example.com"
    with pytest.raises(AttributeError):
        object.__getattribute__(message, "_children")
    body = message.find("body")
    assert body is not None and body.text == "hi & "
    assert [c.tag for c in body] == ["{urn:x}b"]  # the header's prefix is in scope
    assert message._raw is None  # dropped once decoded


def test_a_stanza_split_across_many_feeds_keeps_its_bytes() -> None:
    stanza = (
        b"<iq type='result' id='r1'><query xmlns='jabber:iq:roster'>"
        + b"".join(b"<item jid='u%d@example.com'><group>G</group></item>" % i for i in range(50))
        + b"<![CDATA[<not-a-tag/>]]></query></iq>"
    )
    parser = PY.StreamParser()
    parser.feed(HEADER)
    got: list[Any] = []
    for i in range(0, len(stanza), 7):
        got.extend(parser.feed(stanza[i : i + 7]))
    [iq] = got
    assert iq.serialize() == PY.parse(stanza).serialize()
    query = iq.find("{jabber:iq:roster}query")
    assert query is not None and len(query) == 50 and query[-1].tail == "<not-a-tag/>"


@pytest.mark.parametrize(
    "between",
    [
        b" \n\t ",  # whitespace keepalives: the fast path
        b"&#32;&#x9;",  # whitespace written as references: replayed, still keepalives
        b"<![CDATA[ ]]>",  # a whitespace CDATA section: replayed, a keepalive
        b"<![CDATA[]]>",
    ],
)
def test_keepalives_between_stanzas(between: bytes) -> None:
    result, error = both_agree(
        HEADER + b"<presence/>" + between + b"<message><body>a</body></message>"
        b"<iq type='get' id='1'/></stream:stream>"
    )
    assert error is None
    assert result[1:-1] == [
        b"<presence/>",
        b"<message><body>a</body></message>",
        b"<iq type='get' id='1'/>",
    ]
    assert isinstance(result[-1], StreamEnd)


@pytest.mark.parametrize("after", [b"", b"<presence/>"])
@pytest.mark.parametrize("then", ["a stanza", "text"])
def test_a_long_run_of_keepalives_is_not_read_again_at_each_feed(after: bytes, then: str) -> None:
    """Whitespace at stream level is judged once: what the parser keeps of it stays
    bounded however much comes in small feeds (it used to read everything since the
    last '<' at every feed, quadratic in the keepalives a peer sends), and what follows
    is judged as before."""
    header = (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    parser = PY.StreamParser()
    parser.feed(header + after)
    for _ in range(1000):
        assert parser.feed(b" \n" * 50) == []
        assert len(parser._recent) <= 4096 + 100
    if then == "text":
        with pytest.raises(XMLStreamError) as err:
            parser.feed(b"x")
        assert err.value.condition == "bad-format"
    else:
        [message] = parser.feed(b"<message><body>a</body></message> ")
        assert message.findtext("{jabber:client}body") == "a"


@pytest.mark.parametrize(
    ("tail", "condition", "stanzas"),
    [
        (b"<a/>text<b/>", "bad-format", 1),
        (b"<a/><![CDATA[x]]><b/>", "bad-format", 1),
        (b"<a/><b/><!--c--><c/>", "restricted-xml", 2),
        (b"<a/><b x='1' x='2'/>", "not-well-formed", 1),
        (b"<a/><b><c><d><e/></d></c></b>", "policy-violation", 1),
        (b"<a/><b p='1' q='2' r='3' xmlns:s='urn:s'/>", "policy-violation", 1),
        (b"<a/><b>" + b"x" * 100 + b"</b>", "policy-violation", 1),
        (b"<a/></stream:stream>junk", "not-well-formed", 1),
    ],
)
def test_errors_after_stanzas_are_exact(tail: bytes, condition: str, stanzas: int) -> None:
    """Every error is replayed with the full handlers: the stanzas before it are
    returned, none after it."""
    header = (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    result, error = both_agree(header + tail, max_depth=3, max_attributes=3, max_stanza_bytes=60)
    assert error == condition
    assert len([e for e in result if isinstance(e, bytes)]) == stanzas


def test_the_header_prefix_is_replayed() -> None:
    """A replay starts with a copy of the header's start tag: its own prefix and
    namespace declarations, so the stream's end tag still matches."""
    header = b"<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>"
    result, error = both_agree(header + b"<a/>&#32;<b/></s:stream>")
    assert error is None and result[1:3] == [b"<a/>", b"<b/>"]
    assert isinstance(result[-1], StreamEnd)


def test_restart_after_the_fast_path() -> None:
    parser = PY.StreamParser()
    parser.feed(HEADER + b"<a/><b")
    parser.reset()
    header, c = parser.feed(HEADER + b"<c/>")
    assert isinstance(header, StreamHeader) and c.tag == "{jabber:client}c"


def test_text_set_before_first_use_is_kept() -> None:
    """Setting ``text`` on a lazy stanza decodes it first: its children stay, and the
    new text is not overwritten by the decoded one."""
    parser = PY.StreamParser()
    _, message = parser.feed(HEADER + b"<message>old<body>hi</body></message>")
    message.text = "new"
    assert [c.name for c in message] == ["body"]
    assert message.text == "new"
    assert message.serialize() == b"<message>new<body>hi</body></message>"


def test_stanzas_returned_before_a_replay_are_not_returned_again() -> None:
    """A keepalive written as a reference after two stanzas read in one call makes the
    parser replay from after the last stanza it returned, not before."""
    result, error = both_agree(HEADER + b"<a/><b/>&#32;<c/>")
    assert error is None and result[1:] == [b"<a/>", b"<b/>", b"<c/>"]


# -- decoding (``_lazy``): one open expat document per context and thread ----------------
def _lazy_stanzas(header: bytes, body: bytes) -> list[Any]:
    parser = PY.StreamParser()
    return [e for e in parser.feed(header + body) if not isinstance(e, StreamHeader)]


def test_stanzas_decode_in_any_order_and_context() -> None:
    """Stanzas of two streams with different contexts (default namespace, prefixes)
    decode correctly however their decodes interleave; each equals the element the
    stanza parses to on its own."""
    client = _lazy_stanzas(
        HEADER,
        b"<message><body>a</body>tail<x:y z='1'/></message>"
        b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
        b"<presence><show>away</show><status>&lt;3 \xc3\xa9</status></presence>",
    )
    server = _lazy_stanzas(
        b"<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
        b"xmlns:stream='http://etherx.jabber.org/streams'>",
        b"<db:result to='a.example' from='b.example'>key</db:result>"
        b"<message from='a@a.example' to='b@b.example'><body>hi</body></message>",
    )
    expected = [
        PY.parse(b"<message><body>a</body>tail<y xmlns='urn:x' z='1'/></message>"),
        PY.parse(b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"),
        PY.parse("<presence><show>away</show><status>&lt;3 é</status></presence>".encode()),
        PY.parse(
            b"<result xmlns='jabber:server:dialback' to='a.example' from='b.example'>key</result>",
            "jabber:server",
        ),
        PY.parse(
            b"<message from='a@a.example' to='b@b.example'><body>hi</body></message>",
            "jabber:server",
        ),
    ]
    order = [4, 0, 3, 2, 1]  # alternate between the two contexts
    stanzas = client + server
    for i in order:
        assert stanzas[i] == expected[i]  # the first comparison decodes
    assert [e.tag for e in stanzas[3]] == []
    assert stanzas[3].text == "key"


def test_decoding_in_threads() -> None:
    """Each thread decodes with its own parsers: concurrent decodes do not mix."""
    import threading

    body = b"".join(b"<message id='%d'><body>%d</body><t/></message>" % (i, i) for i in range(300))
    results: dict[int, list[str | None]] = {}

    def work(n: int) -> None:
        stanzas = _lazy_stanzas(HEADER, body)
        results[n] = [s.findtext("body") for s in stanzas]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {n: [str(i) for i in range(300)] for n in range(4)}


def test_bytes_no_parser_checked_raise_and_the_context_recovers() -> None:
    """``decode`` is only given a parser's checked bytes; given anything else it raises
    ``not-well-formed``, and the next decode in the same context still works."""
    from xmppx.core._api import XMLStreamError
    from xmppx.core._py._lazy import decode

    ctx = b"<x xmlns='jabber:client'>"
    with pytest.raises(XMLStreamError) as info:
        decode(b"<a><b></a>", ctx)
    assert info.value.condition == "not-well-formed"
    with pytest.raises(XMLStreamError):
        decode(b"<a/><b/>", ctx)  # two elements
    assert decode(b"<a>x</a>", ctx) == PY.parse(b"<a>x</a>")


def test_distinct_names_do_not_accumulate() -> None:
    """expat's table of interned names is emptied when it grows past a bound: a peer
    sending a new attribute name in every stanza cannot grow the parser without end."""
    from xmppx.core._py._parser import _INTERN_MAX

    parser = PY.StreamParser()
    parser.feed(HEADER)
    for i in range(3 * _INTERN_MAX // 100):
        chunk = b"".join(b"<presence a%d='1'/>" % (i * 100 + j) for j in range(100))
        assert len(parser.feed(chunk)) == 100
    assert len(parser._expat.intern) <= _INTERN_MAX + 200


# -- forwarding (``_serializer``): an undecoded stanza's content is written as its input ----
def _undecoded(element: Any) -> bool:
    try:
        object.__getattribute__(element, "_children")
    except AttributeError:
        return True
    return False


@pytest.mark.parametrize(
    ("stanza", "content"),
    [
        # quotes, references, CDATA, line ends and xml:lang as the client wrote them
        (
            b'<message to="juliet@example.com" type="chat"><body xml:lang="en">'
            b"A&#66;C &amp; <![CDATA[<d>]]>\r\n</body><active "
            b'xmlns="http://jabber.org/protocol/chatstates"/></message>',
            b'<body xml:lang="en">A&#66;C &amp; <![CDATA[<d>]]>\r\n</body><active '
            b'xmlns="http://jabber.org/protocol/chatstates"/>',
        ),
        # a stanza in its own namespace: its content inherits that namespace
        (
            b"<message xmlns='jabber:client' to='juliet@example.com'><body>hi</body></message>",
            b"<body>hi</body>",
        ),
        # text that looks like a prefixed attribute only costs the forwarding
        (b"<message to='juliet@example.com'><body> a:b = c </body></message>", None),
    ],
)
def test_a_stamped_stanza_is_forwarded_with_its_input_content(
    stanza: bytes, content: bytes | None
) -> None:
    parser = PY.StreamParser()
    _, message = parser.feed(HEADER + stanza)
    message.set("from", "romeo@example.net/orchard")
    expected = PY.parse(stanza)
    expected.set("from", "romeo@example.net/orchard")
    for default_ns in ("jabber:client", "jabber:server"):
        out = message.serialize(default_ns)
        if content is not None:
            assert out.endswith(content + b"</message>")
            assert _undecoded(message)
        assert PY.parse(out, default_ns) == expected
    assert message == expected
    if NATIVE is not None:
        _, n = NATIVE.StreamParser().feed(HEADER + stanza)
        n.set("from", "romeo@example.net/orchard")
        assert PY.parse(n.serialize()) == PY.parse(message.serialize())


def test_an_empty_stanza_is_written_without_decoding() -> None:
    parser = PY.StreamParser()
    _, presence = parser.feed(HEADER + b'<presence type="unavailable" />')
    presence.set("to", "juliet@example.com")
    assert presence.serialize() == b"<presence type='unavailable' to='juliet@example.com'/>"
    assert _undecoded(presence)


@pytest.mark.parametrize(
    "stanza",
    [
        # the header's prefix, used inside: it is not declared by the new start tag
        b"<message><body>hi</body><x:y/></message>",
        b"<message><body x:a='1'>hi</body></message>",
        # a prefix declared inside: forwarding would be correct, but is not attempted
        b"<message><p:y xmlns:p='urn:p'/></message>",
        # a prefixed stanza: unprefixed names inside are in the default namespace
        b"<x:foo><bar/></x:foo>",
    ],
)
def test_prefixes_make_the_stanza_canonical(stanza: bytes) -> None:
    parser = PY.StreamParser()
    _, element = parser.feed(HEADER + stanza)
    out = element.serialize()
    assert not _undecoded(element)
    assert out == element.copy().serialize()  # the canonical form
    _, again = PY.StreamParser().feed(HEADER + stanza)
    assert PY.parse(out) == again


@pytest.mark.parametrize("seed", range(4))
def test_undecoded_answers_equal_the_decoded_ones(seed: int) -> None:
    """For stanzas of every shape the differential runs generate (prefixes, ``xmlns``
    written with references, quotes and line ends, CDATA, text with ``>``), what a lazy
    stanza answers without decoding equals what its decoded element gives: the first
    child's namespace, and the forwarded bytes, which parse back to the element under
    either stream namespace."""
    import random

    from tests.test_xml_differential import HEADERS, element
    from xmppx.core._api import XMLStreamError

    r = random.Random(seed)
    checked = forwarded = 0
    for _ in range(400):
        header = r.choice(HEADERS)
        try:
            events = PY.StreamParser().feed(header + element(r, 0))
        except XMLStreamError:
            continue  # an unbound prefix, a duplicate: not a stanza
        stanzas = [e for e in events if not isinstance(e, StreamHeader)]
        if not stanzas:
            continue
        [lazy] = stanzas
        _, twin = PY.StreamParser().feed(header + lazy._raw)
        lazy.set("id", "stamped")
        twin.set("id", "stamped")
        assert lazy.first_child_namespace() == twin.copy().first_child_namespace()
        for default_ns in ("jabber:client", "jabber:server"):
            out = lazy.serialize(default_ns)
            assert PY.parse(out, default_ns) == twin.copy()
        forwarded += _undecoded(lazy)
        checked += 1
    assert checked > 100 and forwarded > 20  # the generator reaches both paths


# -- review findings: crafted content, exceptions mid-decode, memory, threads -------------
@pytest.mark.parametrize(
    "content",
    [
        b" " + b"a:" * 120_000,  # a colon run after a space: one try, read once
        b"x:y<![CDATA[" + b"<" * 240_000 + b"]]>",  # a '<' run in CDATA
        b" a:" * 80_000,
    ],
    ids=["colons", "cdata-lt", "spaced-colons"],
)
def test_crafted_content_near_the_stanza_limit_is_forwarded(content: bytes) -> None:
    """The forwarding check reads content of any shape in one pass (a backtracking
    pattern took minutes on these at the default 256 KiB stanza limit)."""
    parser = PY.StreamParser()
    _, message = parser.feed(HEADER + b"<message><body>" + content + b"</body></message>")
    out = message.serialize()
    assert _undecoded(message)  # no prefix in any of them: forwarded
    _, again = PY.StreamParser().feed(HEADER + b"<message><body>" + content + b"</body></message>")
    assert PY.parse(out) == again


def test_an_exception_in_a_decode_leaves_the_next_one_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a decode raises half-way (here a MemoryError from building an element),
    the thread's next decode in that context works: the broken parser is not kept."""
    import xmppx.core._py._lazy as lazy

    _, a, b, c = PY.StreamParser().feed(HEADER + b"<message><body>1</body></message>" * 3)
    assert c.findtext("body") == "1"  # the context's parser exists and has been used
    real = lazy.expand_names

    def fail_once(*args: Any) -> Any:
        monkeypatch.setattr(lazy, "expand_names", real)
        raise MemoryError

    monkeypatch.setattr(lazy, "expand_names", fail_once)
    with pytest.raises(MemoryError):
        a.findtext("body")
    assert _undecoded(a)
    assert b.findtext("body") == "1"
    assert a.findtext("body") == "1"


def test_decoding_parsers_are_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    """expat keeps every distinct name a document reads: a context's parser is replaced
    after ``_RENEW_BYTES`` of stanzas (here made small), so decoding ever new names
    stays bounded."""
    from xmppx.core._py import _lazy

    monkeypatch.setattr(_lazy, "_RENEW_BYTES", 4000)
    ctx = b"<x xmlns='urn:renew'>"
    seen = set()
    fed = 0
    i = 0
    while fed <= 2 * _lazy._RENEW_BYTES + 1000:
        raw = b"<m a%d='1'><e%d/></m>" % (i, i)
        expected = PY.parse(b"<m xmlns='urn:renew' a%d='1'><e%d/></m>" % (i, i))
        assert _lazy.decode(raw, ctx) == expected
        seen.add(id(_lazy._local.decoders[ctx]))
        fed += len(raw)
        i += 1
    assert len(seen) >= 3


def test_threads_using_a_stanza_first_at_once() -> None:
    """Several threads reading the same undecoded stanzas at once all see them whole
    (the first decode to finish is the one kept)."""
    import sys
    import threading

    bodies = b"<body>x</body>" * 5
    body = b"".join(b"<message id='%d'>%s</message>" % (i, bodies) for i in range(1500))
    stanzas = PY.StreamParser().feed(HEADER + body)[1:]
    errors: list[str] = []

    def work() -> None:
        for s in stanzas:
            try:
                if s.findtext("body") != "x" or len(s) != 5:
                    errors.append("wrong")
            except Exception as exc:  # collected and asserted below
                errors.append(repr(exc))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert all(len(s) == 5 for s in stanzas)


def test_the_stream_parser_renews_its_expat_between_stanzas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """expat's own tables keep every distinct name: after ``_RENEW_BYTES`` (here 2,000)
    the stream parser replaces its expat between two stanzas, and goes on with lazy
    stanzas; a stanza split across the feed where that happens is read whole."""
    from xmppx.core._py import _parser

    monkeypatch.setattr(_parser, "_RENEW_BYTES", 2000)
    parser = PY.StreamParser()
    parser.feed(HEADER)
    parsers = set()
    got = []
    for i in range(200):
        stanza = b"<presence a%d='%d'><x%d xmlns='urn:x%d'/></presence>" % (i, i, i, i)
        for piece in (stanza[:20], stanza[20:]):  # every feed ends inside a tag or after one
            got += parser.feed(piece)
        parsers.add(id(parser._expat))
    assert len(parsers) > 3
    assert [e.get(f"a{i}") for i, e in enumerate(got)] == [str(i) for i in range(200)]
    assert all(_undecoded(e) for e in got)  # still the fast path
    assert [e.first_child_namespace() for e in got] == [f"urn:x{i}" for i in range(200)]
    assert got[150] == PY.parse(b"<presence a150='150'><x150 xmlns='urn:x150'/></presence>")


@pytest.mark.parametrize(
    "gap", [b"<![CDATA[ ]]>", b"&#32;", b"<![CDATA[]]>\n"], ids=["cdata", "reference", "cdata-nl"]
)
@pytest.mark.parametrize(
    ("rest", "then", "fast"),
    [
        (b"<message><body>a</body></message>", b"", True),  # the feed ends after an end tag
        (b"<message><body>a</body></message>\n ", b"", True),  # ... and whitespace
        (b"<presence/>", b"", True),  # ... after an empty-element stanza
        (b"<presence/><iq type='get' id='1'", b"/>", True),  # ... inside a start tag
        (b"<presence/><![CDATA[ ]]>", b"", True),  # ... after a CDATA section
        (b"<presence/><message><body>a", b"</body></message>", False),  # ... inside a stanza
    ],
    ids=["end-tag", "whitespace", "empty", "in-tag", "cdata", "in-stanza"],
)
def test_a_replay_returns_to_the_fast_path(
    gap: bytes, rest: bytes, then: bytes, fast: bool
) -> None:
    """Text between stanzas (a CDATA keepalive, a reference) is read by the full
    handlers; the first feed that ends with no stanza open (or inside a start tag) takes
    the fast path again, and later stanzas are lazy."""
    later = [b"<iq type='result' id='2'/>", b"<message to='a@b'><body>c</body></message>"]
    feeds = [HEADER, b"<presence/>" + gap + rest, then, b" ", *later, b"</stream:stream>"]
    parser = PY.StreamParser()
    got: list[Any] = []
    fast_after: list[bool] = []
    for data in feeds:
        got += parser.feed(data)
        fast_after.append(parser._fast)
    assert fast_after[1] == fast
    assert all(fast_after[2:-1])
    stanzas = [e for e in got if not isinstance(e, StreamHeader | StreamEnd)]
    assert all(_undecoded(e) for e in stanzas[-2:])
    assert [e.serialize() for e in stanzas[-2:]] == later
    assert isinstance(got[-1], StreamEnd)
    both_agree(b"".join(feeds))


def test_the_stream_parser_renews_its_expat_inside_a_stanza(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer whose every feed ends inside a stanza's content still gets its expat
    replaced: the renewal replays the kept bytes of the stanza in progress."""
    from xmppx.core._py import _parser

    monkeypatch.setattr(_parser, "_RENEW_BYTES", 500)
    parser = PY.StreamParser()
    parser.feed(HEADER)
    parsers = set()
    got: list[Any] = []
    pending = b""
    for i in range(100):
        stanza = b"<message id='%d'><body>n%d</body><x%d xmlns='urn:x%d'/></message>" % (i, i, i, i)
        got += parser.feed(pending + stanza[:20])  # every feed ends inside the body
        pending = stanza[20:]
        parsers.add(id(parser._expat))
    got += parser.feed(pending)
    assert len(parsers) > 5
    assert [e.get("id") for e in got] == [str(i) for i in range(100)]
    assert all(_undecoded(e) for e in got)
    assert [e.findtext("body") for e in got] == [f"n{i}" for i in range(100)]
    assert {e.first_child_namespace() for e in got} == {"jabber:client"}


def test_after_a_replay_the_expat_is_renewed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Distinct names after a CDATA keepalive do not pile up in one expat either."""
    from xmppx.core._py import _parser

    monkeypatch.setattr(_parser, "_RENEW_BYTES", 2000)
    parser = PY.StreamParser()
    parser.feed(HEADER + b"<presence/><![CDATA[ ]]>")
    expat, renewals = parser._expat, 0
    for i in range(400):
        [presence] = parser.feed(b"<presence a%d='%d'/>" % (i, i))
        assert presence.get(f"a{i}") == str(i)
        if parser._expat is not expat:
            expat, renewals = parser._expat, renewals + 1
    assert renewals >= 4  # the return to the fast path, then one every 2,000 bytes


@pytest.mark.parametrize(
    ("chunks", "complete"),
    [
        ([b"&#32;<![C<![", b"CDATA[ ]]></stream:stream>"], True),
        ([b"&#32;<![C<m", b"essage to='x'><body>hi</body></message></stream:stream>"], True),
        # expat still waits for the rest of '<![C<a/>' (see "Known limits")
        ([b"&#32;", b"<![C<a", b"/>"], False),
    ],
)
def test_no_return_to_the_fast_path_inside_an_unfinished_token(
    chunks: list[bytes], complete: bool
) -> None:
    """expat judges ``<![`` only once ``CDATA[`` could be complete: a feed ending at a
    later '<' must not start a new expat there, dropping the bytes before it."""
    header = (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    feeds = [header + chunks[0], *chunks[1:]]
    whole = events(PY, [b"".join(feeds)])
    assert events(PY, feeds) == whole
    assert len(whole[0]) == 1  # the header, and no stanza
    if complete:
        assert whole[1] == "not-well-formed"
        if NATIVE is not None:
            assert events(NATIVE, feeds) == whole
