"""Values and errors shared by both core backends, and the contract they implement.

Both backends (``xmppx._native`` in Rust, ``xmppx.core._py`` in pure Python) return the
*same* event and error types defined here, so code above ``xmppx.core`` never knows which
backend runs.  The rules below are normative: the shared test vectors in
``tests/vectors/`` and the differential property tests check them on both backends.

Stream parser contract (RFC 6120 §4, §11)
=========================================

``StreamParser(**limits).feed(data: bytes) -> list[StreamHeader | Element | StreamEnd]``

1.  Input is UTF-8 bytes split anywhere (inside a tag, an entity, a multi-byte sequence).
    The events produced never depend on where the splits fall.
2.  Prolog: optional whitespace, then at most one XML declaration, which must be the very
    first bytes of the stream (after ``reset()``, of the restarted stream).  It must say
    ``version='1.0'`` (else ``not-well-formed``); an ``encoding`` other than UTF-8
    (case-insensitive) is ``unsupported-encoding``; ``standalone`` is allowed.  A UTF-16 or
    UTF-32 byte-order mark at the start is ``unsupported-encoding``.  ``EF BB BF`` is not a
    mark: RFC 6120 §11.6 reads U+FEFF anywhere in a stream, as its first character too,
    as a ZERO WIDTH NO-BREAK SPACE, so before the header it is ``not-well-formed``, and
    between stanzas text (``bad-format``).
3.  The first element is the stream header, reported as ``StreamHeader`` as soon as its
    start tag is complete.  Its name and namespace are *not* checked here (the stream layer
    answers ``invalid-namespace``); everything else (well-formedness, limits) is.
4.  Each complete child of the stream header is one ``Element`` event (a stanza or a
    negotiation element).  Whitespace between them is a keepalive: consumed, never
    buffered, never reported, however written (character references, CDATA sections).
    Other text at that level is ``bad-format``, as is a child named ``stream`` in the
    streams namespace (a stream header inside the stream; RFC 6120 §4.3.3 restarts a
    stream only on a new one), at its start tag rather than once it is complete.
5.  ``</stream:stream>`` (the end tag of the header element) is ``StreamEnd``.  After it,
    whitespace is ignored and anything else is ``not-well-formed``.
6.  Restricted XML (RFC 6120 §11.1): a DOCTYPE/DTD, ``<!ENTITY``, a comment, a processing
    instruction other than the leading XML declaration, and an entity reference other than
    ``&amp; &lt; &gt; &apos; &quot;`` are ``restricted-xml``.  Character references
    (``&#N;`` / ``&#xH;``) are allowed when they name an XML 1.0 Char.  CDATA sections are
    allowed and become text.
7.  Encoding: bytes that are not UTF-8 (RFC 3629: a stray continuation byte, a cut
    sequence, an overlong form, a surrogate, a value above U+10FFFF) where a character is
    read (text, a CDATA section, a name, an attribute value, text between stanzas) are
    ``unsupported-encoding`` (RFC 6120 §4.9.3.22, "violating the rules of the UTF-8
    encoding"), at the first byte that shows it.  Where no non-ASCII character may stand
    (right after an attribute value or ``=``, in a character reference, after an end
    tag's name, in the XML declaration, before the stream header, after its end) the
    first byte of one is ``not-well-formed`` at once, whatever follows it.
    Well-formedness: a character outside XML 1.0 ``Char`` (NUL, C0 controls
    other than TAB LF CR, U+FFFE, U+FFFF, lone surrogates), bad names, unquoted or
    unterminated attributes, ``<`` in an attribute value, a duplicate attribute (same
    expanded name), a mismatched end tag, an undeclared prefix, a prefix bound to the empty
    string, a (re)binding of ``xml``/``xmlns`` other than ``xml`` to its own namespace,
    a namespace name containing ``}`` (which ends the namespace in an expanded name, and
    which expat refuses) are all ``not-well-formed``.  Line ends are normalised (CR LF
    and lone CR become LF) in text and attribute values; attribute values are normalised
    as XML 1.0 §3.3.3 says (TAB, LF, CR become spaces unless written as character
    references).
8.  Limits (``policy-violation``), detected as soon as the offending byte is read, not when
    the stanza completes:

    * ``max_stanza_bytes``: bytes of one stanza, from its ``<`` to its final ``>``; a
      reference between stanzas (``&#32;``: whitespace written out, a keepalive) is
      limited the same way, from its ``&`` to its ``;``.
    * ``max_depth``: element nesting inside a stanza; the stanza element is depth 1.
    * ``max_attributes``: attributes on one element (namespace declarations included).
    * ``max_buffer_bytes``: bytes held while no event has completed outside a stanza: the
      XML declaration and the stream header's start tag.

9.  Within one tag, the first violation in reading order wins: the depth limit at the
    element's name, the attribute limit at the name of one attribute too many, an
    undefined entity or malformed reference at its ``;``, a syntax error where it is;
    what needs the whole tag (a duplicate attribute, an unbound prefix) comes at its end.
    Errors are raised as ``XMLStreamError(condition, text)``.  Events completed earlier
    in the same ``feed()`` call are not lost: they are in ``error.events`` and must be
    processed before the error is acted on.  After an error the parser is dead: every
    later ``feed()`` raises an error with the same condition, until ``reset()``.
10. ``reset()`` discards all buffered input and state: the next bytes are a new stream
    (optional XML declaration, then a header).  Used for the restarts after STARTTLS and
    SASL (RFC 6120 §5.4.3.3, §6.4.6).

Element model
=============

An element has a local ``name``, a ``namespace`` URI (``""`` for none), attributes in
document order keyed by local name or, for a namespaced attribute, by Clark notation
``{uri}local`` (``xml:lang`` is ``{http://www.w3.org/XML/1998/namespace}lang``), ``text``
(character data before the first child, ``""`` when none) and ``tail`` (character data
after the element's end tag inside its parent), and children in order: the ElementTree
model, so mixed content (XHTML-IM) is kept.  Namespace prefixes of the input are not kept.
Equality is structural over name, namespace, attributes (as a mapping), text, tail and
children.

Both backends behave alike where Python code can tell them apart:

* Strings are ``str`` (``TypeError`` otherwise) that UTF-8 can carry: a lone surrogate
  is ``UnicodeEncodeError`` when it is given, not when the element is written.  A lookup
  (``get``, ``pop_attr``) with a key that is not a ``str`` finds nothing.
* An element cannot be its own child (``ValueError``).  The operations that walk a tree
  (``==``, ``copy``, ``serialize``, ``to_etree``, ``from_etree``) go 1000 levels below
  the element they start from and raise ``ValueError`` deeper, which is also what a
  cycle built by hand meets; ``StreamParser(max_depth=...)`` is at most 1000 for that.
* Iterating over an element yields its children as they were when the iteration
  began, so changing the element meanwhile is safe.
* ``copy.copy`` is ElementTree's shallow copy (a copy of the attributes, the same child
  elements); ``copy.deepcopy`` is ``copy()``; elements pickle, as deep as the walks above
  go (the state lists the descendants flat, in document order).

Serializer contract
===================

``serialize(element, default_ns)`` writes UTF-8 bytes as if the element were a child of a
stream whose default namespace is ``default_ns``.  The output is canonical (both backends
produce the same bytes):

* ``<name``, or ``<xml:name`` for an element in the ``xml`` namespace (its prefix is bound
  in every scope; the default namespace in scope stays as it was); then `` xmlns='ns'``
  when the element's namespace differs from the default in scope (which it then becomes
  for the children); then, for each namespaced attribute (in
  attribute order) whose namespace has no prefix in scope, `` xmlns:nsK='uri'`` where K
  counts the prefixes declared so far in this ``serialize`` call, from 0; ``xml`` is always
  in scope; then the attributes, as `` key='value'`` in order, with prefixed names for
  namespaced ones.
* An element without text and children ends with ``/>``; otherwise ``>``, the escaped
  text, each child followed by its escaped tail, and ``</name>`` (``</xml:name>``).  The
  element's own tail is not written (it lies outside the element).
* Text escapes ``& < >`` as ``&amp; &lt; &gt;`` and CR as ``&#13;``.  Attribute values
  escape ``& < > ' "`` as ``&amp; &lt; &gt; &apos; &quot;`` and TAB LF CR as ``&#9;
  &#10; &#13;``.  Nothing else is escaped; non-ASCII is written as UTF-8.
* A character outside XML 1.0 ``Char`` anywhere raises ``ValueError``, as do an element
  in the ``xmlns`` namespace and an attribute in it, and a namespace containing ``}``.

``default_ns`` is a ``str`` that a stream header can declare (``ValueError`` for the
``xml`` and ``xmlns`` namespaces, Namespaces in XML 1.0 §3, and for a character outside
``Char``).  ``parse(data, default_ns)`` reads ``data`` as one stanza of such a stream,
with surrounding whitespace; input that ends inside anything (a tag, a CDATA section, a
reference, a character's bytes) is ``not-well-formed``.
For every element ``x`` that ``parse`` may return (no tail of its own, not a stream
header, within ``parse``'s default limits): ``parse(serialize(x, ns), ns) == x``.
A parsed stanza forwarded unchanged but for its own attributes may be written from its
retained input bytes (both backends do this); the bytes then differ from the
canonical form only in ways that parse to the same element.

JID contract (RFC 7622 §3.1 splitting, RFC 6122 profiles)
==========================================================

``parse_jid(s)`` splits at the first ``/`` (resourcepart: everything after it), then at the
first ``@`` before it (localpart; RFC 7622 §3.2 — ``@`` is prohibited in both localpart and
domainpart, so ``a@b@c`` is an error either way), then prepares the parts left to right,
the first error winning: localpart with Nodeprep, domainpart with Nameprep per label
(labels joined by ``.``; U+3002, U+FF0E, U+FF61 are label separators; one trailing
separator removed) with the IDNA2003 ToASCII checks RFC 6122 §2.2 requires
(``UseSTD3ASCIIRules``: letters, digits, hyphens, no leading/trailing hyphen; ACE form
1..63 octets; an ``xn--`` label is converted with ToUnicode and must round-trip), or kept
as an IPv4 literal (dotted decimal, no leading zeros; an all-digit top-level label is
otherwise ``bad-domain``) or bracketed IPv6 literal (RFC 5952 form), resourcepart with
Resourceprep.  Unicode 3.2 tables (Python's ``stringprep``, with B.2 restricted to what
Unicode 3.2 defined); unassigned code points are prohibited (checked before mapping).
Each part is 1..1023 bytes of UTF-8 after preparation (an absent localpart or
resourcepart is fine; an empty one, as in ``@d`` or ``d/``, is an error).  Errors raise
``JIDError(rule, text)`` with ``rule`` one of ``JID_RULES``; both backends give the same
``rule`` and ``text``.  ``xmppx.core._py._stringprep`` documents every rule and its order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_MAX_ATTRIBUTES",
    "DEFAULT_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_STANZA_BYTES",
    "JID_RULES",
    "NS_CLIENT",
    "NS_COMPONENT",
    "NS_SERVER",
    "NS_STREAMS",
    "NS_XML",
    "STREAM_ERROR_CONDITIONS",
    "JIDError",
    "StreamEnd",
    "StreamHeader",
    "XMLStreamError",
]

NS_STREAMS: Final = "http://etherx.jabber.org/streams"
NS_CLIENT: Final = "jabber:client"
NS_SERVER: Final = "jabber:server"
NS_COMPONENT: Final = "jabber:component:accept"
NS_XML: Final = "http://www.w3.org/XML/1998/namespace"

#: RFC 6120 §4.9.3 puts no number on stanza size; 256 KiB is what Prosody and ejabberd
#: accept after authentication (``c2s_stanza_size_limit``) and carries XEP-0231 inline
#: data and large roster pushes, while bounding what one connection can make us hold.
DEFAULT_MAX_STANZA_BYTES: Final = 256 * 1024
#: Real stanzas nest under ten levels (a MUC invite in a forwarded carbon is about 6);
#: 32 leaves room for XHTML-IM while stopping "billion nested tags" stack/CPU attacks.
DEFAULT_MAX_DEPTH: Final = 32
#: Data forms and caps use a handful of attributes per element; 64 is generous and keeps
#: the quadratic duplicate-attribute check and namespace scopes small.
DEFAULT_MAX_ATTRIBUTES: Final = 64
#: The XML declaration and stream header are a few hundred bytes; 16 KiB leaves room
#: for many namespace declarations without letting a peer stream an endless start tag.
DEFAULT_MAX_BUFFER_BYTES: Final = 16 * 1024

#: RFC 6120 §4.9.3 defined stream error conditions.
STREAM_ERROR_CONDITIONS: Final = frozenset(
    {
        "bad-format",
        "bad-namespace-prefix",
        "conflict",
        "connection-timeout",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "invalid-from",
        "invalid-namespace",
        "invalid-xml",
        "not-authorized",
        "not-well-formed",
        "policy-violation",
        "remote-connection-failed",
        "reset",
        "resource-constraint",
        "restricted-xml",
        "see-other-host",
        "system-shutdown",
        "undefined-condition",
        "unsupported-encoding",
        "unsupported-feature",
        "unsupported-stanza-type",
        "unsupported-version",
    }
)

#: The rules a JID can break, as ``JIDError.rule`` names them.
JID_RULES: Final = frozenset(
    {
        "empty",  # the whole JID, or a present localpart/resourcepart, is empty
        "too-long",  # a part exceeds 1023 bytes after preparation
        "prohibited",  # a character prohibited by the profile (stringprep tables C.*)
        "nodeprep-prohibited",  # one of  " & ' / : < > @  in the localpart (RFC 6122 A.5)
        "unassigned",  # a code point unassigned in Unicode 3.2 (table A.1)
        "bidi",  # RFC 3454 §6 bidirectional rule broken
        "bad-domain",  # domainpart not a valid IDN/hostname or IP literal
        "not-bare",  # BareJID(s) given a JID with a resourcepart
        "not-full",  # FullJID(s) given a JID without a resourcepart
    }
)


class XMLStreamError(Exception):
    """The stream's XML broke a rule; ``condition`` is the RFC 6120 §4.9.3 stream error
    condition to send (e.g. ``not-well-formed``, ``restricted-xml``, ``policy-violation``,
    ``unsupported-encoding``, ``bad-format``) and ``text`` a human-readable reason.

    ``events`` holds the events completed in the same ``feed()`` call before the error;
    they were accepted and must be processed first.
    """

    condition: str
    text: str
    events: list[object]

    def __init__(self, condition: str, text: str, events: list[object] | None = None) -> None:
        super().__init__(condition, text)
        self.condition = condition
        self.text = text
        self.events = events if events is not None else []

    def __str__(self) -> str:
        return f"{self.condition}: {self.text}"


class JIDError(ValueError):
    """A string is not a valid JID: ``rule`` names the rule broken (one of ``JID_RULES``)
    and ``text`` says where."""

    rule: str
    text: str

    def __init__(self, rule: str, text: str) -> None:
        super().__init__(rule, text)
        self.rule = rule
        self.text = text

    def __str__(self) -> str:
        return f"{self.rule}: {self.text}"


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamHeader:
    """The opening ``<stream:stream>`` tag (RFC 6120 §4.7).

    ``attrs`` is keyed like element attributes (``to``, ``from``, ``id``, ``version``,
    ``{http://www.w3.org/XML/1998/namespace}lang``); ``nsmap`` holds the namespace
    declarations written on the header, prefix to URI, ``""`` for the default namespace
    (the stream's content namespace, e.g. ``jabber:client``).
    """

    name: str
    namespace: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    nsmap: Mapping[str, str] = field(default_factory=dict)

    #: A header holds mappings: it compares by value but has no hash.
    __hash__ = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        # read-only views of copies: a frozen header cannot be changed through them
        object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))
        object.__setattr__(self, "nsmap", MappingProxyType(dict(self.nsmap)))

    @property
    def default_ns(self) -> str:
        """The content namespace declared as default (``""`` if none)."""
        return self.nsmap.get("", "")


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamEnd:
    """The closing ``</stream:stream>`` tag (RFC 6120 §4.4)."""
