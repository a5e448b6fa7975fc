"""Incremental XMPP stream parser on the stdlib's expat (the "Stream parser contract" in
``xmppx.core._api``; RFC 6120 §4 streams, §11 XML usage).

How the contract is met
=======================

expat (``pyexpat``, namespace processing on, separator ``}`` so that a namespaced name
arrives as ``uri}local`` and ``"{" + name`` is Clark notation) does the tokenizing,
UTF-8 and XML 1.0 ``Char`` checks, entity and character references, attribute-value and
line-end normalisation, and the namespace rules (unbound prefix, ``xmlns:p=''``, the
reserved ``xml``/``xmlns`` prefixes and names, duplicate expanded attribute names).
Elements are built directly in the expat callbacks.  What expat lets through, or reports
too late, is checked here, always in input order, so that the result never depends on
how the input was split:

* Start of stream: a UTF-16/32 byte-order mark is ``unsupported-encoding``; a UTF-8 one
  is U+FEFF, a character before the header (RFC 6120 §11.6), ``not-well-formed`` at its
  first byte (expat would silently skip it); a NUL in the first two bytes is
  ``not-well-formed`` (expat would auto-detect UTF-16).  The parser is created with the
  protocol encoding forced to UTF-8, and the XML declaration's ``version`` (``1.0``
  only) and ``encoding`` (UTF-8 only) are checked in ``XmlDeclHandler``.  A ``<`` or a ``>``
  other than the final ``?>`` inside the declaration, and anything but whitespace
  before the first ``<``, are ``not-well-formed`` at once (expat would wait for the
  end of the token).
* Markup that restricted XML forbids (RFC 6120 §11.1) is recognised by a cheap
  ``find`` for ``<!`` and ``<?`` *before* expat sees it: a comment (``<!--``), a
  declaration (``<!`` + letter: DOCTYPE, ENTITY, ...) or a processing instruction is
  ``restricted-xml`` at once; a PI whose target is ``xml`` anywhere but at offset 0 is a
  misplaced XML declaration (``not-well-formed``).  The ``<`` itself is first given to
  expat, which rejects it inside a tag, and inside a CDATA section it is plain text.
* expat checks a start tag only once it is complete, while the contract reads it byte
  by byte.  So when expat reports an error inside a tag (a syntax error, or one it finds
  at the tag's end: a duplicate, an unbound prefix, an undefined entity), or a limit
  cuts the tag, the tag is read again up to that point (``_in_tag``) and what comes
  first there wins: the depth limit at the element's name, the attribute limit at the
  name of one attribute too many, an undefined entity (``restricted-xml``) or a
  malformed reference at its ``;``.
* Text that expat rejects in one token with what follows it (``]]>`` between stanzas)
  is ``bad-format`` when it starts outside any tag.
* What expat holds back at the end of a feed, waiting for the rest of its token, is
  judged there as far as it goes (``_check_held_text``): a ``]`` between stanzas (it may
  start ``]]>``) is ``bad-format``; a start tag not finished yet is read again for its
  limits and references (``_in_tag``); an end tag's name that cannot be a qualified
  name (a second colon, or a colon before whitespace) is ``not-well-formed``.  ``<![``
  followed by anything but ``CDATA[`` is ``not-well-formed`` as soon as it differs
  (within the limit of the event in progress), and invalid UTF-8 in the token a limit
  cuts comes before the limit.  A character expat holds until it has as many bytes as
  its lead announces is judged as soon as they can no longer be UTF-8 (``\xe0<``, a
  lead ``\xc0``: ``_check_held_char``), and so is the first byte after the XML
  declaration or before the header that is not whitespace or ``<``.
* expat rejects bytes that are not UTF-8 as it rejects any bad token.  Where a
  character may stand (text, a name, a value) it reads all of a character's bytes
  first, and elsewhere (right after a value, in a character reference) it rejects the
  first byte at once: ``_char_may_stand`` asks a new expat which of the two the place
  of the error is, and in the first case bytes that are not UTF-8 there are
  ``unsupported-encoding`` (RFC 6120 §4.9.3.22), after whatever comes first in the tag.
* A reference between stanzas (``&#32;``, whitespace written out) is read like a stanza
  for the limit: at most ``max_stanza_bytes`` from its ``&``.
* After ``</stream:stream>`` anything but whitespace is ``not-well-formed``.
* Limits: every stanza (or, before the header, the prolog) starts at the first ``<``
  after the previous event; at most ``limit`` bytes from there are given to expat, and
  if that event has not completed by then the next byte is the offending one:
  ``policy-violation``.  Depth and attribute counts (namespace declarations included)
  are checked in the start-tag callback.
* Non-whitespace text at stream level is ``bad-format`` (text is buffered into one
  callback per run only inside stanzas, so that such text is reported before a syntax
  error that follows it); whitespace there is a keepalive and is dropped.  An undefined
  entity is ``restricted-xml``; every other expat error is ``not-well-formed``.  A
  stream header inside the stream (a stanza-level ``stream`` in the streams namespace)
  is ``bad-format`` in the start-tag callback, after the tag's other checks.

Stanzas are lazy (the "fast path")
==================================

Building every element in Python callbacks costs several times what expat itself does,
so once the stream header is read the parser switches expat's handlers to the minimum:
a start handler that checks the attribute and depth limits (it sees every start tag, so
those errors come exactly as before) and notes where each stanza begins,
``list.append`` as the end handler (no Python frame), and no character-data handler.
The open depth is starts minus ends.  After each ``Parse`` call, every stanza begun
before another one, or before the point expat has read to with nothing open but the
header, is complete: its final tag is the last ``<`` before that point (text holds no
``<``), and it is returned as a lazy ``Element`` holding its input bytes, whose text and
children are decoded on first use (``_lazy``).  The bytes between stanzas must be
whitespace.

Anything else (an error of any kind, text or a CDATA section between stanzas, a final
tag that does not look like one) makes the parser *replay*: a fresh expat with the full
handlers is primed with a copy of the header's namespace declarations and fed the input
again from the end of the last event returned (those bytes are kept until then), so that
the result, error or not, is exactly what the full handlers give.  The same step,
staying on the fast path (a *renewal*), takes the stream back to it as soon as a feed
leaves nothing open but the header (or ends inside the next stanza's start tag), and
replaces expat every megabyte at the end of a feed, between two stanzas or inside one
whose bytes are kept (``_RENEW_BYTES``): expat keeps every distinct name it has read in
tables of its own, which would otherwise grow for as long as the stream lasts.

Names follow expat's classes (XML 1.0 Fourth Edition, Appendix B), and so do the native
backend's and both ``Element`` constructors (``scripts/gen_xml_name_tables.py``): a name
with a character only the Fifth Edition allows (U+0219, U+3400, U+FEFF, any astral one)
is ``not-well-formed`` in both.  An entity reference whose name has a colon is
``not-well-formed`` (Namespaces in XML 1.0 §7).  Where expat judges a token only once
it is whole and the contract reads byte by byte, the checks above decide what the
native parser decides: a sweep of 700 seeds of ``tests/test_xml_differential.py``
(``python -m tests.test_xml_differential 0 700``: 210,000 random streams, half of them
mutated, each fed whole, in random chunks and, when short, a byte at a time) finds no
input the two backends disagree on.  And memory: expat keeps every distinct element
and attribute name it has read in tables of its own; on the fast path the parser is
replaced every megabyte (``_RENEW_BYTES``); after a replay, the full handlers keep theirs
until a feed ends between two stanzas (about 65 bytes a distinct name until then).

Example::

    >>> p = StreamParser()
    >>> [h] = p.feed(b"<stream:stream xmlns='jabber:client' "
    ...              b"xmlns:stream='http://etherx.jabber.org/streams'>")
    >>> [m] = p.feed(b"<message><body>hi</body></message>")
    >>> m.findtext("body")
    'hi'
"""

from __future__ import annotations

import pyexpat
import re
from typing import Any, Final, NoReturn

from xmppx.core._api import (
    DEFAULT_MAX_ATTRIBUTES,
    DEFAULT_MAX_BUFFER_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STANZA_BYTES,
    NS_STREAMS,
    StreamEnd,
    StreamHeader,
    XMLStreamError,
)
from xmppx.core._py._element import MAX_TREE_DEPTH, NAME_CACHE_MAX, Element, expand_names
from xmppx.core._py._lazy import QNAME, TAG_REST
from xmppx.core._py._serializer import check_default_ns, escape_attr

__all__ = ["StreamParser", "parse"]

Event = StreamHeader | Element | StreamEnd

_UNDEFINED_ENTITY: Final = pyexpat.errors.codes[pyexpat.errors.XML_ERROR_UNDEFINED_ENTITY]
_INVALID_TOKEN: Final = pyexpat.errors.codes[pyexpat.errors.XML_ERROR_INVALID_TOKEN]
#: expat errors found once a whole start tag is read (the byte index is the tag's '<',
#: or for a duplicate the second attribute): anything earlier in the tag came first.
_WHOLE_TAG_ERRORS: Final = frozenset(
    pyexpat.errors.codes[getattr(pyexpat.errors, name)]
    for name in (
        "XML_ERROR_DUPLICATE_ATTRIBUTE",
        "XML_ERROR_UNBOUND_PREFIX",
        "XML_ERROR_UNDEFINED_ENTITY",
        "XML_ERROR_UNDECLARING_PREFIX",
        "XML_ERROR_RESERVED_PREFIX_XML",
        "XML_ERROR_RESERVED_PREFIX_XMLNS",
        "XML_ERROR_RESERVED_NAMESPACE_URI",
        # what expat (2.4.5 on) says of a namespace name holding its separator '}'
        "XML_ERROR_SYNTAX",
    )
)
#: In an attribute value: what the contract's reading stops at.
_VALUE_MARKS: Final = re.compile(b"[&<]")
_ANY_REFERENCE: Final = re.compile(
    rb"&(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z_:\x80-\xff][-.0-9A-Za-z_:\x80-\xff]*);"
)
#: As far as a reference reads (its name's non-ASCII bytes not checked yet); one that
#: reads to the end of the bytes at hand may still be completed.
_REFERENCE_READ: Final = re.compile(
    rb"&(?:#(?:x[0-9a-fA-F]*|[0-9]*)|[A-Za-z_:\x80-\xff][-.0-9A-Za-z_:\x80-\xff]*)?"
)
#: Bytes that end a name in a start tag.
_NAME_END: Final = frozenset(b" \t\r\n/>='\"<")
#: UTF-16 and UTF-32 byte-order marks.  Not UTF-8's: RFC 6120 §11.6 reads U+FEFF anywhere
#: in a stream, as its first character too, as a ZERO WIDTH NO-BREAK SPACE (a character
#: where none may stand before the header, ``not-well-formed``; expat would skip it).
_BOMS: Final = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff")
_WHITESPACE: Final = " \t\n\r"
_WS_BYTES: Final = b" \t\n\r"
#: A run of whitespace (possibly empty).
_WS_RUN: Final = re.compile(b"[ \t\n\r]*+")
#: Whitespace judged at stream level that ``_recent`` keeps before it lets go of it:
#: below it a keepalive leaves the input since the last '<' whole (a renewal reads it),
#: above it the judged bytes are dropped so that each feed reads only its own.
_JUDGED_TEXT_KEPT: Final = 4096
#: first bytes after which the second one is awaited (a NUL there is UTF-16)
_MAY_START: Final = frozenset((b"<", b" ", b"\t", b"\n", b"\r"))
#: what follows ``<![`` in a CDATA section's opening
_CDATA_OPEN: Final = b"CDATA["
#: what ends the XML declaration's reading: its final '?>', or a byte the native parser
#: refuses in one at once ('<', '&', a control, a byte of a non-ASCII character)
_DECL_STOP: Final = re.compile(b"[^ \t\r\n\x21-\x25\x27-\x3b\x3d\x3f-\x7e]")
#: Markup that restricted XML forbids or that needs a look: '<!' (comment, DTD, CDATA)
#: and '<?' (processing instruction, XML declaration).
_MARKUP: Final = re.compile(b"<[!?]")
_PREDEFINED: Final = frozenset({b"amp", b"lt", b"gt", b"apos", b"quot"})
_XML_DECL_END: Final = b" \t\r\n?"
#: pyexpat interns every element and attribute name it reads for the parser's lifetime
#: in a dict; past this many the dict is emptied.
_INTERN_MAX: Final = 4096
#: expat keeps every distinct name it has read in tables of its own for the life of the
#: parser: on the fast path, after this many bytes the parser is replaced between two
#: stanzas (a replay that stays on the fast path), so that a long stream of ever new
#: names does not grow without end.
_RENEW_BYTES: Final = 1 << 20


def _start_check(data: bytes) -> bool:
    """Check the first bytes of a stream; False while too few have arrived to tell.

    A UTF-16 or UTF-32 byte-order mark is ``unsupported-encoding``.  A NUL in the first
    two bytes (UTF-16 without a mark, which expat would auto-detect and decode) is
    ``not-well-formed``.  Any other first byte but ``<`` and whitespace is judged at
    once, as text before the header (``_locate``): ``EF BB BF`` too, which expat would
    skip as a mark, where RFC 6120 §11.6 reads a ZERO WIDTH NO-BREAK SPACE."""
    head = data[:4]
    for bom in _BOMS:
        if head.startswith(bom):
            _fail(
                "unsupported-encoding",
                "a UTF-16 or UTF-32 byte-order mark (the stream must be UTF-8)",
            )
    if any(bom.startswith(head) for bom in _BOMS):
        return False
    if b"\x00" in head[:2]:
        _fail("not-well-formed", "a NUL byte (the stream must be UTF-8)")
    # after a '<' or whitespace a NUL may still follow; anything else is judged now
    return len(head) > 1 or head not in _MAY_START


class _Escalate(Exception):
    """The fast path met something only the full handlers decide: replay."""


class _HeldBadChar(Exception):
    """Bytes expat holds, waiting for the rest of a character, are already not UTF-8."""

    def __init__(self, at: int) -> None:
        super().__init__(at)
        #: the stream offset of the sequence's lead byte
        self.at = at


class StreamParser:
    """Incremental XMPP stream parser; see ``xmppx.core._api`` for the contract.

    ``feed(data)`` returns the events completed by ``data`` (``StreamHeader``,
    ``Element`` for each top-level child, ``StreamEnd``) or raises ``XMLStreamError``
    carrying the events completed before the error; after an error every ``feed``
    raises the same condition until ``reset()``.
    """

    __slots__ = (
        "_after_decl",
        "_anchor",
        "_base",
        "_ctx",
        "_cur",
        "_cur_base",
        "_dead",
        "_end_at",
        "_ended",
        "_events",
        "_expat",
        "_fast",
        "_fast_ok",
        "_gap_from",
        "_go_fast",
        "_held",
        "_in_cdata",
        "_in_decl",
        "_in_prolog",
        "_keep",
        "_keep_from",
        "_last4",
        "_level",
        "_max_attributes",
        "_max_buffer_bytes",
        "_max_depth",
        "_max_stanza_bytes",
        "_next_lt",
        "_open",
        "_pending",
        "_priming",
        "_recent",
        "_renewed_at",
        "_settle",
        "_shift",
        "_started",
    )

    def __init__(
        self,
        *,
        max_stanza_bytes: int | None = DEFAULT_MAX_STANZA_BYTES,
        max_depth: int | None = DEFAULT_MAX_DEPTH,
        max_attributes: int | None = DEFAULT_MAX_ATTRIBUTES,
        max_buffer_bytes: int | None = DEFAULT_MAX_BUFFER_BYTES,
    ) -> None:
        limits: dict[str, int] = {}
        for key, value, default in (
            ("max_stanza_bytes", max_stanza_bytes, DEFAULT_MAX_STANZA_BYTES),
            ("max_depth", max_depth, DEFAULT_MAX_DEPTH),
            ("max_attributes", max_attributes, DEFAULT_MAX_ATTRIBUTES),
            ("max_buffer_bytes", max_buffer_bytes, DEFAULT_MAX_BUFFER_BYTES),
        ):
            if value is None:
                value = default
            elif not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{key} must be int")
            elif value < 0:
                raise ValueError(f"{key} must be >= 0")
            limits[key] = value
        if limits["max_depth"] > MAX_TREE_DEPTH:
            raise ValueError(
                f"max_depth must be <= {MAX_TREE_DEPTH} (the deepest tree the element "
                "operations take)"
            )
        self._max_stanza_bytes = limits["max_stanza_bytes"]
        self._max_depth = limits["max_depth"]
        self._max_attributes = limits["max_attributes"]
        self._max_buffer_bytes = limits["max_buffer_bytes"]
        self.reset()

    def reset(self) -> None:
        """Discard all input and state: the next bytes are a new stream (RFC 6120
        §4.3.3 restarts after STARTTLS and SASL)."""
        self._dead: tuple[str, str] | None = None
        self._events: list[Event] = []
        #: bytes not yet given to expat, kept to decide a BOM or a ``<!``/``<?``
        self._held = b""
        #: stream offset of ``_held[0]`` (= bytes given to expat so far)
        self._base = 0
        self._started = False
        #: offset of a ``<`` already given to expat whose kind is still undecided
        self._pending: int | None = None
        #: offset from which to look for the ``<`` that starts the next event
        self._anchor = 0
        #: offset of the ``<`` that starts the event now in progress, once found
        self._next_lt: int | None = None
        self._in_prolog = True
        self._in_cdata = False
        self._in_decl = False
        #: the XML declaration has ended and no '<' has come since
        self._after_decl = False
        self._ended = False
        self._end_at = -1
        #: the input since the last '<' given to expat before the current feed
        self._recent = b""
        #: the last four bytes given to expat before the current data
        self._last4 = b""
        #: the data of the current feed (``_held`` prepended), starting at ``_cur_base``
        self._cur = b""
        self._cur_base = 0
        #: stream offset = expat's byte index + ``_shift`` (non-zero after a replay)
        self._shift = 0
        #: on the fast path (see the module docstring); whether this stream may take it
        self._fast = False
        self._fast_ok = True
        #: stream offset where the current expat began reading stanzas
        self._renewed_at = 0
        self._priming = False
        #: the header's start tag without its attributes: its name and namespace
        #: declarations (a replay starts with it)
        self._ctx = b""
        #: end of the last event returned: the bytes from here are whitespace so far, or
        #: the stanza in progress; a replay starts here
        self._gap_from = 0
        #: the bytes from ``_keep_from`` to ``_cur_base``, when a replay or the stanza in
        #: progress may need them
        self._keep: list[bytes] = []
        self._keep_from = 0
        self._settle: Any = None
        self._level: Any = None
        #: open elements (the header included) on either path
        self._open: Any = None
        self._go_fast: Any = None
        self._expat = self._make_expat()

    # -- expat and its callbacks --------------------------------------------------
    def _make_expat(self) -> Any:
        p = pyexpat.ParserCreate("UTF-8", "}")
        # Text is buffered (one callback per run) only inside stanzas: at stream level a
        # buffered run would be reported after a syntax error that follows it, while
        # the run itself (``bad-format``) comes first.
        p.buffer_text = False
        if hasattr(p, "SetReparseDeferralEnabled"):  # expat >= 2.6: report tokens at once
            p.SetReparseDeferralEnabled(False)
        events = self._events
        max_depth = self._max_depth
        max_attributes = self._max_attributes
        stack: list[Element] = []
        names: dict[str, tuple[str, str]] = {}
        #: a stanza's unprefixed end tag by expat's name for it (``_closer``)
        closers: dict[str, bytes] = {}
        header_nsmap: dict[str, str] = {}
        # depth: 0 before the header, 1 at stream level, 1 + n inside a stanza at depth n
        depth = 0
        nsdecls = 0
        tail_of: Element | None = None
        alloc = Element.__new__
        #: the header's namespace declarations on an element named ``x``: the context a
        #: lazy stanza's bytes are decoded in
        lazy_ctx = b""
        #: no event since the last start tag: its end may be that of an empty element
        opened = False
        # fast path state (module docstring)
        ends: list[str] = []
        starts = 0  # start tags seen since ``ends`` was last emptied (the header first)
        #: stanzas begun during this Parse call: (name, attrs, offset of their '<')
        begun: list[tuple[str, dict[str, str], int]] = []
        #: the stanza begun in an earlier Parse call and not finished yet
        pending: tuple[str, dict[str, str], int] | None = None
        #: stream offset = expat's byte index + this, on the fast path
        fast_shift = 0

        def start_ns(prefix: str | None, uri: str | None) -> None:
            nonlocal nsdecls
            nsdecls += 1
            if depth == 0:
                header_nsmap[prefix or ""] = uri or ""

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal depth, nsdecls, tail_of, starts, lazy_ctx, opened
            opened = True
            if attrs or nsdecls:
                count = len(attrs) + nsdecls
                nsdecls = 0
                if count > max_attributes:
                    _fail(
                        "policy-violation",
                        f"an element has {count} attributes (max_attributes={max_attributes})",
                    )
            ns, local, attrs = expand_names(name, attrs, names)
            if depth:
                if depth > max_depth:
                    _fail("policy-violation", f"elements nest deeper than max_depth={max_depth}")
                if depth == 1 and name == _NESTED_HEADER:
                    _nested_header()
                el = alloc(Element)
                el._name = local
                el._namespace = ns
                el._attrs = attrs
                el._text = ""
                el._tail = ""
                el._children = []
                el._raw = None
                if depth > 1:
                    stack[-1]._children.append(el)
                else:
                    p.buffer_text = True
                stack.append(el)
                depth += 1
                tail_of = None
                return
            depth = 1
            at = p.CurrentByteIndex + self._shift
            # The header's start tag holds no further '<': the next one starts an event.
            self._in_prolog = False
            self._anchor = at + 1
            self._next_lt = None
            if self._priming:
                return
            events.append(
                StreamHeader(name=local, namespace=ns, attrs=attrs, nsmap=dict(header_nsmap))
            )
            if self._fast_ok:
                close = self._tag_close(at)
                if close is not None and not close[1] and not self._shift:
                    # not an empty-element header: switch to the fast path
                    self._ctx = _context_tag(close[2], header_nsmap)
                    self._gap_from = close[0] + 1
                    self._keep = []
                    self._keep_from = close[0] + 1
                    go_fast(0)

        def go_fast(shift: int) -> None:
            """Take the fast path from here; expat's byte index + ``shift`` is the stream
            offset (non-zero in a renewed parser)."""
            nonlocal starts, lazy_ctx, fast_shift
            lazy_ctx = _context_tag(b"x", header_nsmap)
            fast_shift = shift
            starts = 1
            ends.clear()
            self._fast = True
            p.StartElementHandler = fast_start
            p.EndElementHandler = ends.append
            p.CharacterDataHandler = None
            p.StartNamespaceDeclHandler = fast_ns
            p.StartCdataSectionHandler = fast_cdata_start
            p.EndCdataSectionHandler = fast_cdata_end

        def end(name: str) -> None:
            nonlocal depth, tail_of, opened
            depth -= 1
            # CurrentByteIndex is the '<' of an end tag, but just past the '/>' of an
            # empty-element tag (expat reports the end after the whole tag)
            at = p.CurrentByteIndex + self._shift
            empty = opened and self._slash_gt_before(at)
            opened = False
            if depth > 1:
                tail_of = stack.pop()
            elif depth == 1:
                p.buffer_text = False
                events.append(stack.pop())
                tail_of = None
                # no tag holds another '<', so the next '<' starts the next event
                self._anchor = at if empty else at + 1
                self._next_lt = None
            else:
                events.append(StreamEnd())
                self._ended = True
                self._next_lt = None
                # the '<' of the end tag, or the final '>' of an empty-element header
                self._end_at = at - 1 if empty else at

        def chars(data: str) -> None:
            nonlocal opened
            opened = False
            if depth > 1:
                if tail_of is not None:
                    tail_of._tail += data
                else:
                    stack[-1]._text += data
            elif data.strip(_WHITESPACE):
                _fail("bad-format", "text outside any stanza")
            else:
                at = p.CurrentByteIndex + self._shift
                if self._byte_at(at) == 0x26:  # '&': a reference, a unit of its own
                    self._anchor = at + 1
                    self._next_lt = None

        def xml_decl(version: str | None, encoding: str | None, standalone: int) -> None:
            if version != "1.0":
                _fail("not-well-formed", f"XML version {version!r} (only 1.0 is allowed)")
            if encoding is not None and encoding.lower() != "utf-8":
                _fail("unsupported-encoding", f"encoding {encoding!r} (only UTF-8 is allowed)")

        def cdata_start() -> None:
            self._in_cdata = True

        def cdata_end() -> None:
            self._in_cdata = False
            if depth == 1:  # at stream level: the next '<' starts the next event
                self._anchor = p.CurrentByteIndex + self._shift + 3  # after ']]>'
                self._next_lt = None

        def comment(data: str) -> None:
            self._markup("a comment")

        def pi(target: str, data: str) -> None:
            self._markup("a processing instruction")

        def doctype(*args: object) -> None:
            self._markup("a DOCTYPE")

        # -- the fast path (module docstring): counts, limits, lazy stanzas --------------
        window = self._window
        whitespace = _WS_BYTES
        tag_rest = TAG_REST.match

        def fast_ns(prefix: str | None, uri: str | None) -> None:
            nonlocal nsdecls
            nsdecls += 1

        def fast_start(name: str, attrs: dict[str, str]) -> None:
            nonlocal starts, nsdecls
            level = starts - len(ends)  # open elements, the header included
            if nsdecls:
                count = len(attrs) + nsdecls
                nsdecls = 0
            else:
                count = len(attrs)
            if count > max_attributes:
                _fail(
                    "policy-violation",
                    f"an element has {count} attributes (max_attributes={max_attributes})",
                )
            if level > max_depth:
                _fail("policy-violation", f"elements nest deeper than max_depth={max_depth}")
            starts += 1
            if level == 1:
                if name == _NESTED_HEADER:
                    _nested_header()
                begun.append((name, attrs, p.CurrentByteIndex + fast_shift))

        def fast_cdata_start() -> None:
            if starts - len(ends) == 1:
                raise _Escalate  # a CDATA section at stream level: text there
            self._in_cdata = True

        def fast_cdata_end() -> None:
            self._in_cdata = False

        def settle() -> None:
            """After a ``Parse`` call on the fast path: return the stanzas it completed
            (each ends at its last '<'-tag before the next stanza or before what expat
            has not read yet), check the bytes between them, and note the one still
            in progress."""
            nonlocal starts, pending, begun
            level = starts - len(ends)
            if level > 1 and not begun:
                return  # the stanza in progress goes on
            todo = begun if pending is None else [pending, *begun]
            first = todo[0][2] if todo else self._gap_from
            gap_from = self._gap_from
            buf = self._cur
            off = self._cur_base
            if gap_from < off:
                buf, off = window(gap_from)
            at_end = p.CurrentByteIndex + fast_shift
            if level == 0:  # </stream:stream>: its '<' is the last one read
                at_end = buf.rfind(b"<", max(first, gap_from) - off, at_end - off) + off
                if at_end < off or buf[at_end - off + 1] != 0x2F:
                    raise _Escalate
            n = len(todo)
            done = n if level <= 1 else n - 1
            # the bytes before the first stanza (or up to the end) are whitespace
            if buf[gap_from - off : (first if n else at_end) - off].strip(whitespace):
                raise _Escalate
            for i in range(done):
                name, attrs, at = todo[i]
                lo = at - off
                hi = (todo[i + 1][2] if i + 1 < n else at_end) - off
                raw = buf[lo:hi]
                closer = closers.get(name)
                if closer is None:
                    closer = _closer(name, closers)
                if raw.endswith(closer):
                    # the stanza's own end tag, unprefixed, with nothing after it: what
                    # the reading below finds, in one comparison
                    gt = hi - 1
                else:
                    lt = buf.rfind(b"<", lo, hi)
                    if lt < 0 or lt + 1 >= hi:
                        raise _Escalate
                    if buf[lt + 1] == 0x2F:  # '/': an end tag, which holds no quotes
                        gt = buf.find(b">", lt, hi)
                    elif lt == lo:  # the stanza's own start tag, an empty-element one
                        m = tag_rest(buf, lt + 1, hi)
                        gt = -1 if m is None else m.end() - 1
                    else:
                        raise _Escalate
                    if gt < 0 or (gt + 1 < hi and buf[gt + 1 : hi].strip(whitespace)):
                        raise _Escalate
                    raw = buf[lo : gt + 1]
                ns, local, attrs = expand_names(name, attrs, names)
                el = alloc(Element)
                el._name = local
                el._namespace = ns
                el._attrs = attrs
                el._tail = ""
                el._raw = raw
                el._ctx = lazy_ctx
                events.append(el)
                # returned: a replay from here on must not return it again
                self._gap_from = off + gt + 1
            begun = []
            if done < n:
                pending = todo[-1]
                # the bytes from the last stanza returned to the pending one: whitespace
                gap_end = pending[2]
            else:
                pending = None
                gap_end = at_end
            if done:
                self._anchor = off + gt + 1
                self._next_lt = None
            self._gap_from = gap_end
            if self._keep and self._gap_from >= self._cur_base:
                self._keep = []
            if level <= 1:
                starts = 1 if level == 1 else 0
                ends.clear()
            if level == 0:
                events.append(StreamEnd())
                self._ended = True
                self._next_lt = None
                self._end_at = at_end
                self._fast = False

        self._settle = settle
        self._level = lambda: depth
        self._open = lambda: starts - len(ends) if self._fast else depth
        self._go_fast = go_fast

        p.StartNamespaceDeclHandler = start_ns
        p.StartElementHandler = start
        p.EndElementHandler = end
        p.CharacterDataHandler = chars
        p.XmlDeclHandler = xml_decl
        p.StartCdataSectionHandler = cdata_start
        p.EndCdataSectionHandler = cdata_end
        # The pre-scan in _feed catches these first; the handlers are a backstop.
        p.CommentHandler = comment
        p.ProcessingInstructionHandler = pi
        p.StartDoctypeDeclHandler = doctype
        p.EntityDeclHandler = doctype
        return p

    def _markup(self, what: str) -> NoReturn:
        if self._ended:
            _fail("not-well-formed", f"{what} after the end of the stream")
        _fail("restricted-xml", f"{what} (RFC 6120 §11.1)")

    # -- feeding ------------------------------------------------------------------
    def feed(self, data: bytes) -> list[StreamHeader | Element | StreamEnd]:
        """Parse the next bytes of the stream; return the events they complete."""
        if self._dead is not None:
            raise XMLStreamError(*self._dead)
        if not isinstance(data, bytes):
            data = _as_bytes(data, "feed")
        events = self._events
        try:
            if data:
                self._or_replay(self._feed, data)
                if self._renewable():
                    self._or_replay(self._replay, renew=True)
                self._check_held_text()
                self._check_held_char()
        except XMLStreamError as exc:
            self._die(exc.condition, exc.text)
        except _HeldBadChar as exc:
            # the bytes of this feed are read already: the helpers find them as earlier
            # input (``_recent``, ``_last4``)
            self._cur = b""
            self._cur_base = self._base
            self._expat_error(_INVALID_TOKEN, exc.at)
        except pyexpat.ExpatError as exc:
            self._expat_error(exc.code, self._expat.ErrorByteIndex + self._shift)
        out = list(events)
        events.clear()
        return out

    def _expat_error(self, code: int, at: int) -> NoReturn:
        """What expat's error ``code`` at stream offset ``at`` is under the contract."""
        # a character where none may stand is not-well-formed at its first byte,
        # whatever its bytes; elsewhere it is read whole
        if self._in_prolog:
            self._check_decl_encoding(at)
        head = self._bytes_from(at)
        read = head[:1] >= b"\x80" and self._char_may_stand(at)
        if read:
            self._limit_cuts_char(at, head)
        verdict = self._in_tag(at, code in _WHOLE_TAG_ERRORS)
        if verdict is not None:
            self._die(*verdict)
        if code == _UNDEFINED_ENTITY:
            if self._bad_utf8_in_reference(at):
                # its name is not UTF-8: shown at the same ';', the encoding comes first
                self._die(*_BAD_UTF8)
            self._die("restricted-xml", f"an undefined entity (RFC 6120 §11.1) before byte {at}")
        if not self._ended and self._open() == 1 and self._text_before(at):
            self._die("bad-format", "text outside any stanza")
        if read and _char_at(head, 0) == "bad":
            self._die(*_BAD_UTF8)
        self._die("not-well-formed", f"{pyexpat.ErrorString(code)} at byte {at}")

    def _check_after_decl(self, data: bytes, pos: int) -> None:
        """Between the XML declaration and the header only whitespace may stand
        (``data[pos:]`` follows the one or the other): anything else is
        ``not-well-formed`` where it is, as the native parser reads it (expat would hold
        a quote there as the start of a literal)."""
        lt = data.find(b"<", pos)
        if data[pos : None if lt < 0 else lt].strip(_WS_BYTES):
            _fail("not-well-formed", "text before the stream header")
        if lt >= 0:
            self._after_decl = False

    def _bad_utf8_in_reference(self, at: int) -> bool:
        """Whether the entity reference expat refused at stream offset ``at`` has a name
        that is not UTF-8 (``&\xf4;``)."""
        found = self._reread(at)
        if found is None:
            return False
        buf, i = found
        amp = buf.rfind(b"&", 0, i + 1)
        semi = buf.find(b";", amp) if amp >= 0 else -1
        return semi > amp and not _is_utf8(buf[amp:semi])

    def _check_decl_encoding(self, at: int) -> None:
        """An expat error at stream offset ``at`` inside a whole XML declaration: the
        contract reads the declaration's pseudo-attributes in order once its ``?>`` is
        read (as the native parser does), so an encoding other than UTF-8 written before
        what expat stumbles on (``encoding='latin1''``) is ``unsupported-encoding``."""
        found = self._reread(at)
        if found is None:
            return
        buf, i = found
        first = -(self._cur_base - len(self._recent))  # stream offset 0 in ``buf``
        if first < 0:
            return
        start = first + 3 if buf.startswith(b"\xef\xbb\xbf", first) else first
        if not buf.startswith(b"<?xml", start):
            return  # no declaration at the very start (after a UTF-8 byte-order mark)
        end = buf.find(b"?>", start + 5)
        if end < 0 or i > end + 1 or _DECL_STOP.search(buf, start + 5, end):
            return  # not a whole declaration the native parser reads up to its '?>'
        verdict = _decl_verdict(buf[start + 5 : end])
        if verdict is not None and verdict[0] == "unsupported-encoding":
            self._die(*verdict)

    def _check_held_char(self) -> None:
        """After a feed: expat holds a multi-byte character until it has as many bytes
        as its lead announces, but the contract rejects a sequence at the first byte
        that cannot continue it (``\\xe0\\x80``, ``\\xc0``, ``\\xe0<``): judge
        those bytes now as expat will once they are complete."""
        last = self._last4
        for k in range(min(len(last), 3), 0, -1):  # the earliest sequence not complete
            lead = last[-k]
            if lead >= 0xC0 and k < _utf8_len(lead):
                if _char_at(last[-k:], 0) == "bad":
                    raise _HeldBadChar(self._base - k)
                return

    def _limit_cuts_char(self, at: int, head: bytes) -> None:
        """expat's error at stream ``at`` (``head``: the bytes from there) is a
        character the stanza limit cuts: the contract reads it only whole, and meets
        the limit first (unless the bytes before the limit are already not UTF-8)."""
        lead = head[0]
        if lead < 0xC0 or self._next_lt is None or self._in_prolog:
            return
        limit = self._next_lt + self._max_stanza_bytes
        if at < limit < at + _utf8_len(lead):
            if _char_at(head[: limit - at], 0) == "bad":
                return  # not UTF-8 before the limit
            try:
                self._over_limit(limit)
            except XMLStreamError as exc:
                self._die(exc.condition, exc.text)

    def _or_replay(self, step: Any, *args: Any, **kwargs: Any) -> None:
        """Run ``step``; whatever it raises on the fast path is decided by a replay with
        the full handlers (module docstring), which raise what they raise."""
        try:
            step(*args, **kwargs)
        except (XMLStreamError, pyexpat.ExpatError, _Escalate):
            if not self._fast:
                raise
            self._replay()

    def _die(self, condition: str, text: str) -> NoReturn:
        self._dead = (condition, text)
        self._held = b""
        out: list[object] = list(self._events)
        self._events.clear()
        raise XMLStreamError(condition, text, out)

    def _feed(self, data: bytes) -> None:
        if self._held:
            data = self._held + data
            self._held = b""
        if self._ended:
            if data.strip(_WS_BYTES):
                _fail("not-well-formed", "data after the end of the stream")
            return
        base = self._base
        n = len(data)
        self._cur = data
        if not self._started:
            if not _start_check(data):
                self._held = data
                return
            self._started = True
        self._cur_base = base
        parse = self._parse_segment
        pos = 0
        if self._after_decl:
            self._check_after_decl(data, 0)
        if self._pending is not None:
            # the markup is told apart within the limit of the event in progress
            cut = data
            deadline = self._deadline(base)
            if deadline is not None and deadline < n:
                cut = data[: max(deadline, 0)]
            if not self._classify(cut, 0, self._pending):
                if cut is not data:
                    self._over_limit(base + len(cut))
                self._held = data
                return
            self._pending = None
        search = _MARKUP.search
        m = search(data)
        mark = -1 if m is None else m.start()
        while pos < n:
            # the next '<!' or '<?' (or a '<' that ends the data)
            if 0 <= mark < pos:
                m = search(data, pos)
                mark = -1 if m is None else m.start()
            hit = mark
            if hit < 0 and data[-1] == 0x3C:  # '<'
                hit = n - 1
            # Where this segment must stop for the limit on the event in progress: at
            # its deadline (then check it).  In the prolog, stanzas that follow the
            # header in this same segment are not tracked yet, so the segment is also
            # kept within max_stanza_bytes: any stanza completed inside it fits.
            stop = n
            check = False
            if self._next_lt is None:
                self._locate(data, base)
            deadline = self._deadline(base)
            if deadline is not None:
                # in the prolog, a stanza that starts and ends inside [pos, cap) is short
                # enough
                cap = pos + max(self._max_stanza_bytes, 1) if self._in_prolog else deadline
                if deadline < n:
                    stop = deadline
                    check = True
                if pos < cap < stop:
                    stop = cap
                    check = False
            if self._in_decl:
                # the XML declaration holds no '<' and no '>' but its final '?>', and is
                # ASCII; expat would only see a stray byte once the declaration ends
                m = _DECL_STOP.search(data, pos)
                if m is not None and m.start() < stop:
                    gt = m.start()
                    if gt > pos:
                        parse(data[pos:gt])
                        pos = gt
                    if data[gt] >= 0x80:
                        _fail("not-well-formed", "a non-ASCII byte in the XML declaration")
                    if data[gt] != 0x3E or (data[gt - 1 : gt] if gt else self._recent[-1:]) != b"?":
                        _fail("not-well-formed", "a stray byte in the XML declaration")
                    self._in_decl = False
                    # the declaration is judged first (xml_decl), then only whitespace
                    # may follow it before the header (expat would hold a quote there as
                    # the start of a literal)
                    parse(data[gt : gt + 1])
                    pos = gt + 1
                    self._after_decl = True
                    self._check_after_decl(data, pos)
                    continue
            if hit < 0 or hit >= stop:
                if stop > pos:
                    parse(data[pos:stop] if pos or stop < n else data)
                    pos = stop
                if check and self._next_lt is not None:  # not completed within the limit
                    self._over_limit(base + stop)
                continue
            parse(data[pos : hit + 1])
            pos = hit + 1
            if self._in_cdata:
                continue
            # telling the markup apart may need bytes past the limit of the event in
            # progress: then the limit is crossed first
            limited = check and self._next_lt is not None
            if not self._classify(data[:stop] if limited else data, pos, base + hit):
                if limited:
                    self._over_limit(base + stop)
                self._pending = base + hit
                self._held = data[pos:]
                self._base = base + pos
                break
        else:
            self._base = base + n
        fed = data[: self._base - base]
        self._keep_recent(fed)
        self._last4 = (self._last4 + fed[-4:])[-4:]
        if self._fast:
            # what a replay or the stanza in progress may still need (see _window)
            lo = max(self._gap_from, base)
            if lo < self._base:
                if not self._keep:
                    self._keep_from = lo
                self._keep.append(data[lo - base : self._base - base])
        if self._next_lt is None:
            # an event may have completed in the last segment and the next one begun
            # after it: find its '<' while these bytes are at hand
            self._locate(data, base)
        if self._ended and self._end_at >= 0:
            # expat may hold a partial token after the end tag (a quote, say): whatever
            # follows the end tag's '>' must be whitespace
            gt = data.find(b">", max(self._end_at - base, 0))
            if gt >= 0 and data[gt + 1 :].strip(_WS_BYTES):
                _fail("not-well-formed", "data after the end of the stream")

    def _deadline(self, base: int) -> int | None:
        """Where the event in progress crosses its limit (``max_buffer_bytes`` for the
        prolog and header, ``max_stanza_bytes`` after), as an index into data that
        starts at stream offset ``base``; ``None`` when no event is in progress."""
        if self._next_lt is None:
            return None
        room = self._max_buffer_bytes if self._in_prolog else self._max_stanza_bytes
        return self._next_lt + room - base

    def _parse_segment(self, data: bytes) -> None:
        expat = self._expat
        expat.Parse(data, False)
        if len(expat.intern) > _INTERN_MAX:
            expat.intern.clear()
        if self._fast:
            self._settle()

    def _byte_at(self, at: int) -> int:
        """The byte at stream offset ``at`` (-1 if the bytes ``_bytes_from`` reads do not
        hold it)."""
        head = self._bytes_from(at)
        return head[0] if head else -1

    def _char_may_stand(self, at: int) -> bool:
        """Whether a non-ASCII character may stand at stream offset ``at`` (given to
        expat): in text, a CDATA section, a name or an attribute value, but not, say,
        right after an attribute value or in a character reference.

        expat tells: where a character may stand it waits for all of its bytes, and
        elsewhere it rejects the first one.  So the token in progress at ``at`` (the
        markup from its ``<``, or a reference from its ``&``) is given, up to that
        first byte, to a new expat inside an element."""
        if self._in_cdata or self._in_decl or self._ended:
            return self._in_cdata  # (before the header, only its start tag is read)
        i = at - self._cur_base
        buf = self._recent + self._cur
        j = i + len(self._recent)
        if not 0 <= j < len(buf):
            return True
        # (after a replay the bytes held start where the last event ended)
        start = _markup_lt(buf, j)
        close = _markup_close(buf[start:j]) if start >= 0 else None
        inside = start >= 0 and (close is None or close < 0)
        if inside and buf[start + 1 : start + 2] in (b"?", b"!"):
            # in an XML declaration, or a CDATA section's opening (other '<?' and '<!'
            # markup is refused before expat sees it)
            return False
        if not inside:
            # after the markup (or the last event): in text, or in a reference
            if self._in_prolog:
                return False  # nothing is read as text before the header
            amp = buf.rfind(b"&", 0 if close is None else start + close + 1, j)
            if amp < 0 or b";" in buf[amp:j]:
                return True
            start = amp
        # any byte there stands for the first of a two-byte name character
        probe = pyexpat.ParserCreate("UTF-8", "}")
        try:
            probe.Parse(b"<y>" + buf[start:j] + b"\xc3", False)
        except pyexpat.ExpatError:
            return probe.ErrorByteIndex != 3 + j - start
        return True

    def _bytes_from(self, at: int) -> bytes:
        """Up to four bytes from stream offset ``at`` (given to expat) on, as far as
        the current data, the bytes since the last '<' before it or the four before it
        hold them."""
        i = at - self._cur_base
        if i >= 0:
            return self._cur[i : i + 4]
        before = self._recent if len(self._recent) >= len(self._last4) else self._last4
        j = i + len(before)
        return (before[j:] + self._cur[:4])[:4] if j >= 0 else b""

    def _slash_gt_before(self, at: int) -> bool:
        """Whether the two bytes before stream offset ``at`` (given to expat) are ``/>``."""
        i = at - self._cur_base
        if i >= 2:
            return self._cur[i - 2 : i] == b"/>"
        j = i + len(self._last4)  # in the last bytes of the data before this
        return j >= 2 and (self._last4 + self._cur[: max(i, 0)])[j - 2 : j] == b"/>"

    def _window(self, start: int) -> tuple[bytes, int]:
        """Bytes holding stream offsets ``start`` to the end of the current data, and the
        offset of their first byte (``start`` is at or after ``_keep_from``)."""
        base = self._cur_base
        if start >= base:
            return self._cur, base
        if start < self._keep_from:
            raise _Escalate
        kept = b"".join(self._keep)
        self._keep = [kept]
        return kept + self._cur, self._keep_from

    def _tag_close(self, at: int) -> tuple[int, bool, bytes] | None:
        """For the start tag whose ``<`` is at stream offset ``at`` (read by expat in
        this feed or, if it began earlier, since the last ``<`` before it): the offset
        of its closing ``>``, whether it ends with ``/>``, and its qualified name."""
        base = self._cur_base
        if at >= base:
            buf, off = self._cur, base
        else:
            buf, off = self._recent + self._cur, base - len(self._recent)
            if off != at:
                return None
        name = QNAME.match(buf, at - off + 1)
        if name is None:
            return None
        m = TAG_REST.match(buf, name.end())
        if m is None:
            return None
        end = m.end() - 1
        return off + end, buf[end - 1] == 0x2F, name.group()

    def _replay(self, *, renew: bool = False) -> None:
        """Leave the fast path: parse again, with the full handlers, from the end of the
        last event returned (module docstring).  Raises what they raise.

        ``renew``: stay on the fast path with a new expat (see ``_RENEW_BYTES``); called
        between feeds, when the kept bytes run up to where expat stopped reading."""
        start = self._gap_from
        if not renew:
            buf, off = self._window(start)
            again = buf[start - off :]
            self._last4 = buf[max(start - off - 4, 0) : start - off]
        elif start < self._base:
            kept = b"".join(self._keep)
            i = start - self._keep_from
            again = kept[i:]
            self._last4 = kept[max(i - 4, 0) : i]
        else:
            again = b""  # and the last bytes read are the ones before ``start``
        self._fast = False
        self._keep = []
        self._expat = self._make_expat()
        self._priming = True
        try:
            self._expat.Parse(self._ctx, False)
        finally:
            self._priming = False
        self._shift = start - len(self._ctx)
        if renew:
            self._go_fast(self._shift)
            self._renewed_at = start
        self._base = start
        self._anchor = start
        self._next_lt = None
        self._held = b""
        self._pending = None
        self._in_cdata = False
        self._in_decl = False
        self._recent = b""
        self._fast_ok = renew
        if again:
            self._feed(again)

    def _renewable(self) -> bool:
        """After a feed: whether to replace expat now (``_replay(renew=True)``), the
        bytes from ``_gap_from`` being kept.

        On the fast path, after ``_RENEW_BYTES`` of input, between stanzas or inside
        one.  On the full handlers after a replay, as soon as a feed leaves nothing open
        but the header: the stream takes the fast path again, so that one CDATA
        keepalive or reference between stanzas does not keep it on the slow handlers,
        and their expat's name tables, for good.  The end of the last event is found in
        ``_recent`` (the input from the last '<' given to expat): after a stanza's end
        tag, an empty-element stanza or a CDATA section at stream level with only
        whitespace after it; or, when that '<' opens a start tag expat has not
        finished, the '<' itself (what comes before it is read and makes no event)."""
        if self._pending is not None or self._held:
            return False
        if self._fast:
            return self._base - self._renewed_at > _RENEW_BYTES and (
                self._gap_from >= self._base
                or (bool(self._keep) and self._keep_from <= self._gap_from)
            )
        if (
            not self._ctx
            or self._dead is not None
            or self._level() != 1
            or self._ended
            or self._in_cdata
            or self._in_decl
        ):
            return False
        recent = self._recent
        if recent[:1] != b"<":
            return False
        gt = _markup_close(recent)
        if gt is None:
            return False
        if gt >= 0 and recent[1] not in b"/!" and recent[gt - 1] != 0x2F:
            return False  # a start tag, not an empty-element stanza's: the header's
        # after an end tag, a CDATA section or an empty-element stanza; or (-1) a start
        # tag in progress: from its '<'
        if gt >= 0 and recent[gt + 1 :].strip(_WS_BYTES):
            return False
        keep_from = self._base - len(recent)
        if gt < 0 and self._next_lt != keep_from:
            # expat may still hold a token begun before this '<' (``<![C`` waits for
            # ``CDATA[``): only the event in progress may start the new expat
            return False
        self._gap_from = keep_from + gt + 1
        self._keep = [recent]
        self._keep_from = keep_from
        return True

    def _over_limit(self, offset: int) -> NoReturn:
        """The event in progress has not completed before stream ``offset``, where its
        limit is crossed (a limit or an undefined entity earlier in the tag comes first)."""
        verdict = self._in_tag(offset, False)
        if verdict is not None:
            _fail(*verdict)
        found = self._reread(offset)
        if found is not None:
            # expat holds the token in progress whole, invalid UTF-8 in it too; the
            # contract reads that sequence before the limit (a limit or reference
            # in a tag before it comes first)
            buf, i = found
            lt = max(_markup_lt(buf, i), 0)
            if self._in_decl and max(buf[lt:i], default=0) >= 0x80:
                # the declaration is ASCII: its first other byte is the error
                _fail("not-well-formed", "a non-ASCII byte in the XML declaration")
            if buf[lt + 1 : lt + 2] == b"/" and _not_qname(buf[lt:i]):
                _fail("not-well-formed", "an end tag's name is not a qualified name")
            try:
                buf[lt:i].decode()
            except UnicodeDecodeError as exc:
                if exc.reason != "unexpected end of data":
                    verdict = self._tag_verdict(buf, lt + exc.start, False)
                    if verdict is not None:
                        _fail(*verdict)
                    _bad_utf8()
        if self._in_prolog:
            _fail(
                "policy-violation",
                "XML declaration and stream header exceed "
                f"max_buffer_bytes={self._max_buffer_bytes}",
            )
        _fail("policy-violation", f"a stanza exceeds max_stanza_bytes={self._max_stanza_bytes}")

    def _reread(self, offset: int) -> tuple[bytes, int] | None:
        """The bytes to read an error at stream ``offset`` again in (the input since the
        last '<' before the current data, then that data) and ``offset``'s index in
        them; ``None`` when they do not hold it."""
        buf = self._recent + self._cur
        i = offset - (self._cur_base - len(self._recent))
        return (buf, i) if 0 <= i <= len(buf) else None

    def _in_tag(self, offset: int, whole: bool) -> tuple[str, str] | None:
        """An error at stream ``offset`` inside a start tag (``whole``: an error expat
        only finds once the tag is read): the contract's reading, byte by byte, meets
        in that tag first the depth limit (at its name), the attribute limit (at the
        name of one attribute too many) or an undefined entity (at its ';'), while
        expat checks limits only on a complete tag.  Scans the tag as far as it is
        well formed; ``None`` when nothing comes first (or the error is inside a CDATA
        section, where a '<' opens nothing)."""
        if self._in_cdata:
            return None
        found = self._reread(offset)
        if found is None:
            return None
        return self._tag_verdict(*found, whole)

    def _tag_verdict(self, buf: bytes, i: int, whole: bool) -> tuple[str, str] | None:
        """``_in_tag`` for an error at ``buf[i]``."""
        lt = buf.rfind(b"<", 0, i + 1 if whole else i)
        if lt >= 0 and buf[lt + 1 : lt + 2] == b"/":
            # an end tag (it holds no quotes, so no '>' but its last)
            if b">" not in buf[lt:i] and _not_qname(buf[lt:i]):
                return "not-well-formed", "an end tag's name is not a qualified name"
            return None
        if lt < 0 or buf[lt + 1 : lt + 2] in (b"", b"!", b"?"):
            return None
        end = len(buf) if whole else i
        if TAG_REST.match(buf, lt + 1, i) is not None:
            # that tag was complete: the error is after it (an undefined entity in the
            # text that follows is one expat reports only for a whole tag in a value)
            return None
        p = lt + 1
        while p < end and buf[p] not in _NAME_END:
            p += 1
        if p == lt + 1 or _char_at(buf, lt + 1) != "whole":
            return None
        depth = self._open()
        if depth >= 1 and depth > self._max_depth:
            return "policy-violation", f"elements nest deeper than max_depth={self._max_depth}"
        count = 0
        while True:
            q = p
            while q < end and buf[q] in _WS_BYTES:
                q += 1
            if q >= end or q == p or buf[q] in _NAME_END or _char_at(buf, q) != "whole":
                # the tag ends, or is malformed, before another attribute (or the name
                # starts with a character that is cut or invalid: expat judges it)
                return None
            count += 1
            if count > self._max_attributes:
                return (
                    "policy-violation",
                    f"an element has more than max_attributes={self._max_attributes} attributes",
                )
            p = q
            while p < end and buf[p] not in _NAME_END:
                p += 1
            while p < end and buf[p] in _WS_BYTES:
                p += 1
            if p >= end or buf[p] != 0x3D:  # '='
                return None
            p += 1
            while p < end and buf[p] in _WS_BYTES:
                p += 1
            if p >= end or buf[p] not in (0x22, 0x27):
                return None
            close = buf.find(buf[p : p + 1], p + 1, end)
            value = buf[p + 1 : end if close < 0 else close]
            for mark in _VALUE_MARKS.finditer(value):
                at = mark.start()
                ref = _ANY_REFERENCE.match(value, at)
                if ref is None:
                    read = _REFERENCE_READ.match(value, at)
                    if read is not None:
                        if close < 0 and read.end() == len(value):
                            return None  # the rest of a reference has not arrived
                        if not _is_utf8(value[at + 1 : read.end()]):
                            return _BAD_UTF8  # its name, read so far, is not UTF-8
                    return "not-well-formed", "'<' or a malformed reference in a value"
                name = ref.group(1)
                if name[:1] == b"#":
                    code = int(name[2:], 16) if name[1:2] == b"x" else int(name[1:])
                    if not _xml_char(code):
                        return "not-well-formed", "a character reference to a non-Char"
                elif name not in _PREDEFINED:
                    if not _is_utf8(name):
                        return _BAD_UTF8  # shown at the same ';': the encoding first
                    return "restricted-xml", "an undefined entity (RFC 6120 §11.1)"
            if close < 0:
                return None
            p = close + 1

    def _text_before(self, offset: int) -> bool:
        """At stream level, whether expat's error at stream ``offset`` ends a run of
        text it had not reported yet (``]]>`` is one token for expat): the text is
        ``bad-format`` first."""
        found = self._reread(offset)
        if found is None:
            return False
        buf, i = found
        lt = buf.rfind(b"<", 0, i)
        if lt < 0:  # these bytes begin outside any tag (a replay starts there)
            close = -1
        elif buf[lt + 1 : lt + 2] == b"/":
            close = buf.find(b">", lt, i)
        else:
            m = TAG_REST.match(buf, lt + 1, i)
            close = -1 if m is None else m.end() - 1
        if lt >= 0 and close < 0:
            return False  # the error is inside that tag
        run = buf[close + 1 : i]
        if b"&" in run:
            # a whole reference to whitespace is a keepalive, any other one text; a
            # reference not read whole leaves the verdict to expat
            run = _WHOLE_REFERENCE.sub(_reference_as_text, run)
            if b"&" in run:
                return False
        return bool(run.strip(_WS_BYTES))

    def _check_held_tag(self, recent: bytes) -> None:
        """After a feed that ends inside a tag (``recent`` starts at its ``<``): what
        the contract reads byte by byte there and expat judges only at the tag's end.
        A start tag's limits and references so far (``_in_tag``); an end tag's name
        that cannot be a qualified name."""
        if recent[1] == 0x2F:  # '/'
            if _not_qname(recent):
                _fail("not-well-formed", "an end tag's name is not a qualified name")
            return
        if (
            self._open() <= self._max_depth
            and recent.count(b"=") < self._max_attributes
            and b"&" not in recent
        ):
            return  # nothing there yet that a verdict could come from
        verdict = self._tag_verdict(recent, len(recent), False)
        if verdict is not None:
            _fail(*verdict)

    def _check_held_text(self) -> None:
        """After a feed: text at stream level that expat has read but holds back (a
        ``]`` that may start ``]]>``) is ``bad-format`` now, as the contract reads it
        byte by byte; so is what follows a whole reference there.  A reference not
        finished yet waits for its ``;``."""
        if (
            self._ended
            or self._in_cdata
            or self._in_decl
            or self._pending is not None
            or self._held
        ):
            return
        recent = self._recent
        i = 0
        if self._in_prolog and recent[:2] == b"<?":
            # after the XML declaration, only whitespace until the header's '<' (expat
            # would hold a character's first bytes)
            end = recent.find(b"?>")
            if end >= 0 and recent[end + 2 :].strip(_WS_BYTES):
                _fail("not-well-formed", "text before the stream header")
            return
        if recent[:1] == b"<":
            gt = _markup_close(recent)
            if gt is None:
                return
            if gt < 0:  # the feed ends inside that markup
                if recent[1] != 0x21:  # not '<!': a CDATA section, its opening checked
                    self._check_held_tag(recent)
                return
            i = gt + 1
        if self._in_prolog or self._open() != 1:
            return
        n = len(recent)
        ws_run = _WS_RUN.match
        while True:
            i = ws_run(recent, i).end()  # type: ignore[union-attr]
            if i == n:
                break
            if recent[i] == 0x26:  # '&': a whole reference was judged when expat read it
                i = recent.find(b";", i) + 1
                if i <= 0:
                    return
            else:
                char = _char_at(recent, i)
                if char == "cut":  # expat holds a character it has not read whole
                    return
                if char == "bad":
                    _bad_utf8()
                _fail("bad-format", "text outside any stanza")
        if n > _JUDGED_TEXT_KEPT:
            # all of it is judged: a long run of keepalives is not read again at every
            # feed (which made a stream of small feeds of whitespace quadratic)
            self._recent = b""

    def _keep_recent(self, fed: bytes) -> None:
        i = _markup_lt(fed, len(fed), self._last4)
        recent = fed[i:] if i >= 0 else self._recent + fed
        # a tag in progress is within the limit of a stanza or, in the prolog, the header's
        cap = max(self._max_stanza_bytes, self._max_buffer_bytes)
        self._recent = recent if len(recent) <= cap else b""

    def _locate(self, data: bytes, base: int) -> None:
        """Find the ``<`` that starts the next event: the first one at or after the
        anchor (bytes before ``base`` that follow the anchor hold none)."""
        if self._ended:
            return
        start = max(self._anchor - base, 0)
        i = data.find(b"<", start)
        if not self._in_prolog:
            # a reference between stanzas is read as a unit bounded like a stanza
            amp = data.find(b"&", start, None if i < 0 else i)
            if amp >= 0:
                i = amp
        if self._in_prolog and data[start : None if i < 0 else i].strip(_WS_BYTES):
            # expat would hold a quote or name here until it is complete
            _fail("not-well-formed", "text before the stream header")
        if i < 0:
            self._anchor = base + len(data)
        else:
            self._next_lt = base + i

    def _classify(self, data: bytes, at: int, offset: int) -> bool:
        """Decide what the ``<`` at stream ``offset`` (already given to expat, and
        not inside a tag or CDATA section) opens, from the bytes ``data[at:]`` after it.
        Raises for forbidden markup; returns False when more bytes are needed."""
        kind = data[at : at + 1]
        if not kind:
            return False
        if kind == b"!":
            nxt = data[at + 1 : at + 2]
            if not nxt:
                return False
            if nxt == b"-":
                dash = data[at + 2 : at + 3]
                if not dash:
                    return False
                if dash == b"-":
                    self._forbidden(data, at, "a comment")
            elif nxt.isalpha():
                self._forbidden(data, at, "a DTD declaration (DOCTYPE, ENTITY, ...)")
            elif nxt == b"[":
                # expat waits for the whole '<![CDATA[' to reject what is not one
                opener = data[at + 2 : at + 8]
                if not _CDATA_OPEN.startswith(opener):
                    self._check_utf8_before_lt(data, at)
                    _fail("not-well-formed", "a malformed CDATA section")
                return len(opener) == len(_CDATA_OPEN)
            return True  # junk: expat decides
        if kind == b"?":
            target = data[at + 1 : at + 5]
            for i, want in enumerate(b"xml"):
                if i >= len(target):
                    return False
                if target[i] | 0x20 != want:
                    self._forbidden(data, at, "a processing instruction")
            if len(target) < 4:
                return False
            if target[3] not in _XML_DECL_END:
                self._forbidden(data, at, "a processing instruction")
            if offset != 0:
                self._check_utf8_before_lt(data, at)
                _fail("not-well-formed", "an XML declaration that is not at the very start")
            self._in_decl = True
            return True  # the XML declaration: expat parses it, xml_decl checks it
        return True

    def _forbidden(self, data: bytes, at: int, what: str) -> NoReturn:
        """Markup restricted XML forbids opens at the ``<`` before ``data[at]``, unless
        the bytes before that ``<`` hold a multi-byte sequence expat still waits for
        (``_check_utf8_before_lt``): that sequence is shown bad first."""
        self._check_utf8_before_lt(data, at)
        self._markup(what)

    def _check_utf8_before_lt(self, data: bytes, at: int) -> None:
        """``unsupported-encoding`` if the bytes before the ``<`` before ``data[at]``
        hold a multi-byte sequence expat is still waiting for: that ``<`` shows it."""
        if at >= 4:
            before = data[at - 4 : at - 1]
        elif at:
            before = (self._last4 + data[: at - 1])[-3:]
        else:  # the '<' ended the previous data
            before = self._last4[:-1]
        if _held_utf8(before):
            _bad_utf8("a multi-byte sequence cut by '<'")


def _closer(name: str, cache: dict[str, bytes]) -> bytes:
    """The end tag ``</local>`` of an element that expat names ``name`` (``uri}local``),
    as written without a prefix; ``cache`` keeps up to ``NAME_CACHE_MAX`` of them."""
    closer = b"</" + name[name.rfind("}") + 1 :].encode() + b">"
    if len(cache) < NAME_CACHE_MAX:
        cache[name] = closer
    return closer


def _markup_close(recent: bytes) -> int | None:
    """For input that starts at a ``<``: the index of the ``>`` that closes the markup it
    opens (an end tag, a start tag, a CDATA section), -1 when the input ends before it,
    ``None`` when there is no such markup (a processing instruction, or nothing after
    the ``<`` yet)."""
    kind = recent[1:2]
    if kind == b"/":
        return recent.find(b">")
    if kind == b"!":
        gt = recent.find(b"]]>", 9)
        return gt + 2 if gt >= 0 else -1
    if kind == b"?" or not kind:
        return None
    name = QNAME.match(recent, 1)
    if name is None:
        return None
    tag = TAG_REST.match(recent, name.end())
    return -1 if tag is None else tag.end() - 1


#: One pseudo-attribute of an XML declaration, after the whitespace before it.
_DECL_PSEUDO: Final = re.compile(rb"([A-Za-z]*)[ \t\r\n]*=[ \t\r\n]*(?:'([^']*)'|\"([^\"]*)\")")
#: An encoding name (XML 1.0 §4.3.3 ``EncName``).
_ENC_NAME: Final = re.compile(rb"[A-Za-z][A-Za-z0-9._\-]*")


def _decl_verdict(body: bytes) -> tuple[str, str] | None:
    """What the native parser says of an XML declaration's pseudo-attributes (``body``,
    between ``<?xml`` and ``?>``), read in order: ``version`` must be ``1.0``, then an
    ``encoding`` UTF-8 and a ``standalone`` yes or no; the first fault decides."""
    i, seen, n = 0, 0, len(body)
    while True:
        ws = i
        i = _WS_RUN.match(body, i).end()  # type: ignore[union-attr]
        if i >= n:
            break
        m = _DECL_PSEUDO.match(body, i)
        if i == ws or m is None:
            return ("not-well-formed", "malformed XML declaration")
        name = m.group(1)
        value = m.group(2) if m.group(2) is not None else m.group(3)
        i = m.end()
        if name == b"version" and seen == 0:
            if value != b"1.0":
                return ("not-well-formed", "XML version must be 1.0")
            seen = 1
        elif name == b"encoding" and seen == 1:
            if _ENC_NAME.fullmatch(value) is None:
                return ("not-well-formed", "malformed encoding name")
            if value.lower() != b"utf-8":
                return (
                    "unsupported-encoding",
                    f"encoding {value.decode()} (only UTF-8 is allowed)",
                )
            seen = 2
        elif name == b"standalone" and seen in (1, 2):
            if value not in (b"yes", b"no"):
                return ("not-well-formed", "standalone must be yes or no")
            seen = 3
        else:
            return ("not-well-formed", "malformed XML declaration")
    return None if seen else ("not-well-formed", "XML declaration without version")


def _not_qname(end_tag: bytes) -> bool:
    """Whether the name in ``end_tag`` (from its ``</``, maybe not finished) already
    cannot be a qualified name (Namespaces in XML 1.0 §4): a second colon, or a colon
    that ends it."""
    name = QNAME.match(end_tag, 2)
    if name is None:
        return False
    qname = name.group()
    return qname.count(b":") > 1 or (qname[-1:] == b":" and name.end() < len(end_tag))


def _char_at(buf: bytes, i: int) -> str:
    """The UTF-8 character that starts at ``buf[i]``: ``"whole"``, ``"cut"`` (``buf``
    ends inside it) or ``"bad"``."""
    if buf[i] < 0x80:
        return "whole"
    try:
        buf[i : i + 4].decode()
    except UnicodeDecodeError as exc:
        if exc.start == 0:
            return "cut" if exc.reason == "unexpected end of data" else "bad"
    return "whole"


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 throughout (a sequence cut at its end is not)."""
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _markup_lt(buf: bytes, end: int, before: bytes = b"") -> int:
    """The index of the last '<' in ``buf[:end]`` that can open markup (-1 if none): not
    one right after the first bytes of a multi-byte UTF-8 sequence, which expat reads
    with that sequence (and rejects at its lead).  ``before``: the bytes that precede
    ``buf`` in the stream, if any."""
    i = buf.rfind(b"<", 0, end)
    while i >= 0:
        tail = buf[max(i - 3, 0) : i]
        if i < 3:
            tail = (before + tail)[-3:]
        if not _cut_utf8(tail):
            break
        i = buf.rfind(b"<", 0, i)
    return i


def _utf8_len(lead: int) -> int:
    """The length of the UTF-8 sequence that lead byte ``lead`` (0xC0 or above) opens."""
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _xml_char(code: int) -> bool:
    """XML 1.0 §2.2 Char."""
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


#: A whole reference: to a character (decimal or hexadecimal) or a predefined entity.
_WHOLE_REFERENCE: Final = re.compile(
    rb"&#x([0-9A-Fa-f]{1,8});|&#([0-9]{1,10});|&(?:amp|lt|gt|apos|quot);"
)


def _reference_as_text(m: re.Match[bytes]) -> bytes:
    """A space for a reference to whitespace, a letter for any other."""
    hex_digits, digits = m.group(1), m.group(2)
    if hex_digits is None and digits is None:
        return b"x"
    code = int(hex_digits, 16) if hex_digits is not None else int(digits)
    return b" " if code in (0x9, 0xA, 0xD, 0x20) else b"x"


def _held_utf8(before: bytes) -> bool:
    """Whether expat still holds a multi-byte sequence begun in ``before`` (the last
    bytes before a '<'), which that '<' cannot continue: a lead byte with fewer bytes
    after it than it announces, whatever they are (``\xf0f<`` as much as ``\xe2\x82<``)."""
    n = min(len(before), 3)
    return any(before[-k] >= 0xC0 and _utf8_len(before[-k]) > k for k in range(1, n + 1))


def _cut_utf8(tail: bytes) -> bool:
    """Whether ``tail`` ends inside a multi-byte UTF-8 sequence (its lead byte wants
    more continuation bytes than follow it)."""
    for k in range(1, min(len(tail), 3) + 1):
        b = tail[-k]
        if b < 0x80:
            return False
        if b >= 0xC0:
            return _utf8_len(b) > k
    return False


#: A stream header's name as expat reports it (namespace processing, separator ``}``).
_NESTED_HEADER: Final = NS_STREAMS + "}stream"


def _as_bytes(data: object, what: str) -> bytes:
    """What ``feed()`` and ``parse()`` take besides ``bytes``: a ``bytearray`` or a
    ``memoryview``, copied; ``TypeError`` naming ``what`` for anything else."""
    if not isinstance(data, bytearray | memoryview):
        raise TypeError(f"{what}() needs bytes, not {type(data).__name__}")
    return bytes(data)


def _nested_header() -> NoReturn:
    """RFC 6120 §4.3.3: a stream restarts only after STARTTLS or SASL, on a new stream;
    a header inside this one is no stanza (rejected at its start tag, not held as one)."""
    _fail("bad-format", "a stream header inside the stream")


def _fail(condition: str, text: str) -> NoReturn:
    raise XMLStreamError(condition, text)


#: Bytes that are not UTF-8 where the stream's characters are read: an improperly
#: encoded stream (RFC 6120 §4.9.3.22, §11.6).
_BAD_UTF8: Final = (
    "unsupported-encoding",
    "invalid UTF-8 (the stream must be UTF-8, RFC 6120 §11.6)",
)


def _bad_utf8(detail: str = "") -> NoReturn:
    condition, text = _BAD_UTF8
    _fail(condition, f"{text}: {detail}" if detail else text)


def _context_tag(qname: bytes, nsmap: dict[str, str]) -> bytes:
    """The start tag ``<qname`` declaring ``nsmap`` (prefix to URI, ``""`` for the
    default namespace): the namespace context of a stream's stanzas."""
    parts = [b"<" + qname]
    for prefix, uri in nsmap.items():
        name = b" xmlns:" + prefix.encode("utf-8") if prefix else b" xmlns"
        parts.append(name + b"='" + escape_attr(uri).encode("utf-8") + b"'")
    parts.append(b">")
    return b"".join(parts)


def parse(data: bytes, default_ns: str = "jabber:client") -> Element:
    """Parse one standalone element, as if it were a stanza in a stream whose default
    namespace is ``default_ns`` (the ``stream`` prefix is bound as on a real stream);
    the same rules and errors as ``StreamParser``.  Surrounding whitespace is allowed;
    anything else around the element, an incomplete element, or input that ends inside
    anything (a tag, a CDATA section, a reference, a character's bytes) is
    ``not-well-formed``.  ``data`` is ``bytes`` (or a ``bytearray``/``memoryview``);
    ``default_ns`` as ``serialize`` takes it (``check_default_ns``)."""
    check_default_ns(default_ns)
    if not isinstance(data, bytes):
        data = _as_bytes(data, "parse")
    header = (
        b"<stream:stream xmlns='"
        + escape_attr(default_ns).encode("utf-8")
        + b"' xmlns:stream='"
        + NS_STREAMS.encode()
        + b"'>"
    )
    # the header is not input: it does not count against the limit on headers
    p = StreamParser(max_buffer_bytes=DEFAULT_MAX_BUFFER_BYTES + len(header))
    p.feed(header)
    events = p.feed(data)
    if p._in_cdata or p._pending is not None or p._held or _cut_utf8(data[-3:]):
        # what the end of the stream would close (a CDATA section, a '<?' or '<!'
        # not told apart yet, a character's bytes) is not there: the input ends inside
        raise XMLStreamError("not-well-formed", "the input ends inside a construct")
    events += p.feed(b"</stream:stream>")
    elements = [e for e in events if isinstance(e, Element)]
    if len(elements) != 1 or len(events) != 2 or not isinstance(events[-1], StreamEnd):
        raise XMLStreamError(
            "not-well-formed",
            "expected exactly one complete element" if not elements else "more than one element",
        )
    return elements[0]
