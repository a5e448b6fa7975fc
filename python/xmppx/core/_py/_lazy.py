"""Decoding the lazy stanzas of the pure-Python stream parser (``_parser``'s fast path).

A lazy stanza holds the input bytes of one element that the stream parser has already
checked (well-formed, restricted XML, within every limit) and the namespace context they
were read in: the stream header's start tag reduced to its namespace declarations
(``<x xmlns='jabber:client' xmlns:stream='...'>``).  Its text and children are built
here on first use.

Since the bytes are known to be good, decoding needs none of the stream parser's checks,
only a tree builder.  Each thread keeps one expat parser per context, primed with the
context's start tag and left open: every decode feeds one stanza's bytes as the next
child of that open element and collects the element built.  So a decode costs the
parse of its own bytes, not the set-up of a parser (which is several times more for a
chat message).  Memory stays bounded: expat keeps every distinct name a document has
read, so a parser is replaced after a megabyte of stanzas; the parsers intern nothing in
Python (``intern=None``) and the cache of expanded names is capped (``NAME_CACHE_MAX``).
A parser is taken out of the thread's table while it decodes and put back only after a
clean decode, so an exception of any kind in the middle leaves nothing broken behind.
"""

from __future__ import annotations

import pyexpat
import re
import threading
from typing import Final

from xmppx.core._api import XMLStreamError
from xmppx.core._py._element import Element, expand_names
from xmppx.core._py._element import _new_element as new_element

__all__ = ["QNAME", "START_TAG", "TAG_REST", "content_span", "decode", "first_child_namespace"]

#: Contexts kept per thread (a server has one or two: jabber:client, jabber:server).
_MAX_CONTEXTS: Final = 8
#: Bytes of stanzas one expat document reads before a new one replaces it (``_Decoder``).
_RENEW_BYTES: Final = 1 << 20
#: A qualified name as written in a tag.
QNAME: Final = re.compile(rb"[^\s/>]++")
#: The rest of a start tag after its name: attributes (quoted values may hold '>'), '>'.
TAG_REST: Final = re.compile(rb"(?:[^'\">]++|'[^']*+'|\"[^\"]*+\")*+>")
#: A start tag: its name as written (group 1), then the rest.
START_TAG: Final = re.compile(b"<(" + QNAME.pattern + b")" + TAG_REST.pattern)
#: One attribute of a start tag: its name and its value in either quotes.
_ATTRIBUTE: Final = re.compile(rb"\s++([^\s=/>]++)\s*+=\s*+(?:'([^']*+)'|\"([^\"]*+)\")")


class _Decoder:
    """One open expat document in one context: each ``decode`` reads one stanza's bytes
    as the next child of the context element."""

    __slots__ = ("_done", "_fed", "_parse", "_reset")

    def __init__(self, ctx: bytes) -> None:
        p = pyexpat.ParserCreate("UTF-8", "}", intern=None)
        p.buffer_text = True
        if hasattr(p, "SetReparseDeferralEnabled"):  # expat >= 2.6: report tokens at once
            p.SetReparseDeferralEnabled(False)
        stack: list[Element] = []
        done: list[Element] = []
        names: dict[str, tuple[str, str]] = {}
        #: the element whose end tag was read last, while text after it is its tail
        tail_of: Element | None = None

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal tail_of
            ns, local, attrs = expand_names(name, attrs, names)
            el = new_element(local, ns, attrs)
            if stack:
                stack[-1]._children.append(el)
            else:
                done.append(el)
            stack.append(el)
            tail_of = None

        def end(name: str) -> None:
            nonlocal tail_of
            tail_of = stack.pop()

        def chars(data: str) -> None:
            if tail_of is not None:
                tail_of._tail += data
            else:
                stack[-1]._text += data

        def reset() -> None:
            nonlocal tail_of
            done.clear()
            stack.clear()
            tail_of = None

        p.StartElementHandler = start
        p.EndElementHandler = end
        p.CharacterDataHandler = chars
        p.Parse(ctx, False)
        reset()  # the context element itself is not a stanza
        self._parse = p.Parse
        self._done = done
        self._reset = reset
        self._fed = 0

    def spent(self) -> bool:
        """Whether to make a new one: expat keeps every distinct name it has read in
        tables of its own for the life of a document, so a document is closed after
        ``_RENEW_BYTES`` of stanzas."""
        return self._fed > _RENEW_BYTES

    def decode(self, raw: bytes) -> Element:
        self._fed += len(raw)
        try:
            self._parse(raw, False)
            done = self._done
            if len(done) != 1:
                raise ValueError("not one complete element")
            return done[0]
        finally:
            self._reset()


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.decoders: dict[bytes, _Decoder] = {}


_local = _PerThread()


def decode(raw: bytes, ctx: bytes) -> Element:
    """The element, with every descendant built, whose input bytes are ``raw`` (one
    complete element that a ``StreamParser`` has checked) read as a child of the
    element whose start tag is ``ctx``.  No limits apply again."""
    decoders = _local.decoders
    # Taken out while in use, put back only after a clean decode: whatever a decode
    # raises (an error in the bytes, MemoryError, an interrupt) leaves no broken parser
    # behind, and a decode started inside another (a finalizer) gets a parser of its own.
    decoder = decoders.pop(ctx, None)
    if decoder is None or decoder.spent():
        decoder = _Decoder(ctx)
    try:
        element = decoder.decode(raw)
    except (pyexpat.ExpatError, ValueError) as exc:
        raise XMLStreamError("not-well-formed", f"a lazy stanza's bytes: {exc}") from None
    if len(decoders) >= _MAX_CONTEXTS:
        decoders.clear()
    decoders[ctx] = decoder
    return element


# -- reading a lazy stanza's bytes without decoding them --------------------------------
def content_span(raw: bytes) -> tuple[int, int] | None:
    """Where the content of the lazy stanza ``raw`` lies: after its start tag and before
    its end tag (an empty span for an empty-element tag).  ``None`` when the stanza's
    name has a prefix: the default namespace inside it is then not its own, so its
    content cannot be read apart from the stream header's declarations."""
    m = START_TAG.match(raw)
    if m is None or b":" in m.group(1):
        return None
    end = m.end()
    if raw[end - 2] == 0x2F:  # '/>'
        return end, end
    return end, raw.rfind(b"<")


def first_child_namespace(raw: bytes, namespace: str) -> tuple[bool, str | None]:
    """The namespace of the first child of the lazy stanza ``raw``, whose own namespace
    is ``namespace``, read from its start tag alone: ``(True, ns)``, or ``(True, None)``
    without a child element.  ``(False, None)`` when that tag does not tell (a prefix, a
    reference or a line end in its ``xmlns``, a CDATA section before it): decode."""
    span = content_span(raw)
    if span is None:
        return False, None
    start, end = span
    lt = raw.find(b"<", start, end)
    if lt < 0:
        return True, None  # text only, or nothing
    if raw[lt + 1] == 0x21:  # '<!': a CDATA section, whose text may hold any '<'
        return False, None
    tag = START_TAG.match(raw, lt)
    if tag is None or b":" in tag.group(1):  # a prefixed name
        return False, None
    pos, stop = tag.end(1), tag.end()
    while (attr := _ATTRIBUTE.match(raw, pos, stop)) is not None:
        if attr.group(1) == b"xmlns":
            value = attr.group(2) if attr.group(2) is not None else attr.group(3)
            if re.search(rb"[&\t\n\r]", value):  # references or normalised white space
                return False, None
            return True, value.decode("utf-8")
        pos = attr.end()
    return True, namespace  # the default namespace inside the stanza is its own
