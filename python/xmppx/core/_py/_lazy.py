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
chat message).  The parsers intern nothing (``intern=None``), so the names of all the
stanzas ever decoded do not accumulate in them; the cache of expanded names is bounded
(``NAME_CACHE_MAX``).
"""

from __future__ import annotations

import pyexpat
import re
import threading
from collections.abc import Callable
from typing import Final

from xmppx.core._api import XMLStreamError
from xmppx.core._py._element import Element, expand_names
from xmppx.core._py._element import _new_element as new_element

__all__ = ["START_TAG", "content_span", "decode", "first_child_namespace"]

#: Contexts kept per thread (a server has one or two: jabber:client, jabber:server).
_MAX_CONTEXTS: Final = 8
#: A start tag: its name as written, then its attributes up to the closing '>'.
START_TAG: Final = re.compile(rb"<([^\s/>]++)(?:[^'\">]++|'[^']*+'|\"[^\"]*+\")*+>")
#: One attribute of a start tag: its name and its value in either quotes.
_ATTRIBUTE: Final = re.compile(rb"\s++([^\s=/>]++)\s*+=\s*+(?:'([^']*+)'|\"([^\"]*+)\")")


def _decoder(ctx: bytes) -> Callable[[bytes], Element]:
    """A function decoding one stanza's bytes in context ``ctx`` (a start tag)."""
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

    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = chars
    p.Parse(ctx, False)
    # the context element itself is not a stanza: stanzas are built from an empty stack
    stack.clear()
    done.clear()

    def decode_one(raw: bytes) -> Element:
        nonlocal tail_of
        try:
            p.Parse(raw, False)
            if len(done) != 1 or stack:
                raise ValueError("not one complete element")
            return done[0]
        finally:
            done.clear()
            stack.clear()
            tail_of = None

    return decode_one


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.decoders: dict[bytes, Callable[[bytes], Element]] = {}


_local = _PerThread()


def decode(raw: bytes, ctx: bytes) -> Element:
    """The element, with every descendant built, whose input bytes are ``raw`` (one
    complete element that a ``StreamParser`` has checked) read as a child of the
    element whose start tag is ``ctx``.  No limits apply again."""
    decoders = _local.decoders
    decode_one = decoders.get(ctx)
    if decode_one is None:
        if len(decoders) >= _MAX_CONTEXTS:
            decoders.clear()
        decode_one = decoders[ctx] = _decoder(ctx)
    try:
        return decode_one(raw)
    except (pyexpat.ExpatError, ValueError) as exc:
        # Never for a parser's own bytes.  This context's document is broken now: the
        # next decode starts a new one.
        del decoders[ctx]
        raise XMLStreamError("not-well-formed", f"a lazy stanza's bytes: {exc}") from None


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
