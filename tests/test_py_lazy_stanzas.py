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
from xmppx.core._api import StreamEnd, StreamHeader

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
    with pytest.raises(AttributeError):
        object.__getattribute__(message, "_raw")  # dropped once decoded


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
