"""Canonical serializer: ``Element`` → UTF-8 bytes (the "Serializer contract" in
``xmppx.core._api``; RFC 6120 §4.8 namespaces, §11 restricted XML).

The output is written as if the element were a child of a stream whose default namespace
is ``default_ns``, and is byte-for-byte what the native backend writes:

* ``<name`` (``<xml:name`` for an element in the ``xml`` namespace, whose prefix is
  bound in every scope, Namespaces in XML 1.0 §3, and which leaves the default namespace
  in scope as it was), then `` xmlns='ns'`` when the element's namespace differs from the
  default namespace in scope, then `` xmlns:nsK='uri'`` for each namespaced attribute (in
  attribute order) whose namespace has no prefix in scope yet (``K`` counts the prefixes
  declared so far in this call, from 0; ``xml`` is always in scope), then the attributes
  as `` key='value'`` with ``prefix:local`` for namespaced ones;
* ``/>`` without text and children, else ``>``, text, each child followed by its tail,
  ``</name>`` (``</xml:name>``);
* text escapes ``& < >`` and CR (``&#13;``); attribute values escape ``& < > ' "`` and
  TAB LF CR (``&#9; &#10; &#13;``); nothing else, non-ASCII is plain UTF-8.

``ValueError`` is raised for what cannot be written so that it parses back to the same
element: a character outside XML 1.0 ``Char`` (§2.2), an attribute key that is not an
NCName or ``{uri}NCName`` (or is ``xmlns``), an element in the ``xmlns`` namespace,
an attribute in the ``xmlns`` namespace.  The root's own ``tail`` is not
written (it lies outside the element).

Example::

    >>> from xmppx.core._py._element import Element
    >>> e = Element("message", "jabber:client", {"{urn:x}a": "1 & 2"})
    >>> serialize(e)
    b"<message xmlns:ns0='urn:x' ns0:a='1 &amp; 2'/>"
"""

from __future__ import annotations

import re
from typing import Final

from xmppx.core._api import NS_XML
from xmppx.core._py._element import MAX_TREE_DEPTH, Element, is_ncname
from xmppx.core._py._lazy import content_span

__all__ = ["check_char", "check_default_ns", "escape_attr", "escape_text", "serialize"]

NS_XMLNS: Final = "http://www.w3.org/2000/xmlns/"

#: Anything outside XML 1.0 §2.2 ``Char`` (lone surrogates included).
_NON_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: What text and attribute values need a second look for: a character to escape or a
#: non-``Char`` (the complement of what is written as it is; one class, one test a char).
_TEXT_SPECIAL: Final = re.compile(
    "[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_ATTR_SPECIAL: Final = re.compile(
    "[^\x20\x21\x23-\x25\x28-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


#: Attribute names already found to be NCNames (stanzas repeat a handful of them); capped.
_NCNAMES: Final[set[str]] = set()


def _is_ncname(name: str) -> bool:
    if name in _NCNAMES:
        return True
    if not is_ncname(name):
        return False
    if len(_NCNAMES) < 1024:
        _NCNAMES.add(name)
    return True


def check_char(s: str, what: str) -> None:
    """``ValueError`` if ``s`` holds a character outside XML 1.0 ``Char``."""
    m = _NON_CHAR.search(s)
    if m is not None:
        raise ValueError(
            f"{what} contains U+{ord(m.group()):04X}, which is not an XML 1.0 character"
        )


def check_default_ns(ns: object) -> str:
    """``ns`` if it may be a stream's default namespace: ``TypeError`` if it is not a
    ``str``, ``ValueError`` for the ``xml`` or ``xmlns`` namespace (Namespaces in XML 1.0
    §3: neither may be declared as the default) or a character outside XML 1.0 ``Char``."""
    if not isinstance(ns, str):
        raise TypeError(f"default_ns must be str, not {type(ns).__name__}")
    if ns in (NS_XML, NS_XMLNS):
        raise ValueError(f"{ns} cannot be the default namespace (Namespaces in XML 1.0 §3)")
    _check_declarable(ns)
    check_char(ns, "default namespace")
    return ns


def _check_declarable(ns: str) -> None:
    """``ValueError`` for a namespace with ``}``: it cannot be declared so that it reads
    back (it ends the namespace in an expanded name, and expat refuses it)."""
    if "}" in ns:
        raise ValueError(f"namespace {ns!r} contains '}}'")


def escape_text(s: str) -> str:
    """Escape character data: ``& < >`` and CR; ``ValueError`` on a non-``Char``."""
    if _TEXT_SPECIAL.search(s) is None:
        return s
    check_char(s, "text")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def escape_attr(s: str) -> str:
    """Escape a single-quoted attribute value: ``& < > ' "`` and TAB LF CR (so that
    XML 1.0 §3.3.3 normalisation gives the same value back)."""
    if _ATTR_SPECIAL.search(s) is None:
        return s
    check_char(s, "attribute value")
    return (
        s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )


#: In a lazy stanza's content: a prefixed element name, or an attribute name with a
#: prefix other than ``xml`` (namespace declarations included).  It may also match text
#: or a CDATA section that merely looks like one: that only costs the forwarding.  Each
#: try stops at the next '<' or white space and never backtracks (possessive), so a
#: search is linear in the content however it is crafted.
_PREFIXED: Final = re.compile(rb"</?[^\s/>:<]*+:|\s(?!xml:)[^\s=<>'\"/:]++:[^\s=<>'\"/]*+\s*+=")


def serialize(element: Element, default_ns: str = "jabber:client") -> bytes:
    """Canonical UTF-8 bytes of ``element`` as a child of a stream whose default
    namespace is ``default_ns`` (see the module docstring for the exact rules), or for
    an undecoded lazy stanza its forwarded form.  ``TypeError`` for an ``element`` that
    is not an ``Element`` or a ``default_ns`` that is not a ``str``; ``ValueError`` for
    what cannot be written (module docstring, ``check_default_ns``), and for a tree
    deeper than ``MAX_TREE_DEPTH`` or cyclic."""
    if not isinstance(element, Element):
        raise TypeError(f"expected an Element, not {type(element).__name__}")
    check_default_ns(default_ns)
    out: list[str] = []
    raw = element._raw
    if raw is not None and (span := content_span(raw)) is not None:
        content_from, content_to = span
        if content_from == content_to:  # an empty-element tag: no text, no children
            _open(element, default_ns, {NS_XML: "xml"}, [0], out)
            out.append("/>")
            return "".join(out).encode("utf-8")
        if (
            raw.find(b":", content_from, content_to) < 0
            or _PREFIXED.search(raw, content_from, content_to) is None
        ):
            _open(element, default_ns, {NS_XML: "xml"}, [0], out)
            out.append(">")
            head = "".join(out).encode("utf-8")
            tail = f"</{_qname(element)}>".encode()
            return head + raw[content_from:content_to] + tail
    _write(element, default_ns, {NS_XML: "xml"}, [0], out)
    return "".join(out).encode("utf-8")


def _open(
    el: Element,
    default_ns: str,
    prefixes: dict[str, str],
    counter: list[int],
    out: list[str],
) -> tuple[str, dict[str, str]]:
    """Write ``<name``, the namespace declarations and the attributes of ``el``; return
    the default namespace and the prefixes in scope inside it."""
    ns = el._namespace
    out.append("<")
    out.append(_qname(el))
    if ns != default_ns and ns != NS_XML:
        if ns == NS_XMLNS:
            raise ValueError(f"an element cannot be in the reserved namespace {ns!r}")
        _check_declarable(ns)
        out.append(" xmlns='")
        out.append(escape_attr(ns))
        out.append("'")
        default_ns = ns
    attrs = el._attrs
    if attrs:
        written: list[str] = []
        copied = False
        for key, value in attrs.items():
            if key[:1] == "{":
                uri, sep, local = key[1:].partition("}")
                if not sep or not uri or not _is_ncname(local):
                    raise ValueError(f"attribute name {key!r} is not {{uri}}NCName")
                prefix = prefixes.get(uri)
                if prefix is None:
                    if uri == NS_XMLNS:
                        raise ValueError("attributes in the xmlns namespace cannot be written")
                    if not copied:
                        prefixes = dict(prefixes)
                        copied = True
                    prefix = f"ns{counter[0]}"
                    counter[0] += 1
                    prefixes[uri] = prefix
                    out.append(f" xmlns:{prefix}='{escape_attr(uri)}'")
                written.append(f" {prefix}:{local}='{escape_attr(value)}'")
            else:
                if key == "xmlns" or not _is_ncname(key):
                    raise ValueError(f"attribute name {key!r} is not an NCName")
                written.append(f" {key}='{escape_attr(value)}'")
        out.extend(written)
    return default_ns, prefixes


def _write(
    root: Element,
    default_ns: str,
    prefixes: dict[str, str],
    counter: list[int],
    out: list[str],
) -> None:
    """Write ``root`` and its subtree, depth first with a stack of its own (a tree as
    deep as ``MAX_TREE_DEPTH`` needs no Python recursion)."""
    # entries: an element to write (with the namespace context of its parent and its
    # depth), or the text that follows one: a child's tail or its parent's end tag
    todo: list[tuple[Element, str, dict[str, str], int] | str] = [(root, default_ns, prefixes, 0)]
    pop, push = todo.pop, todo.append
    while todo:
        item = pop()
        if isinstance(item, str):
            out.append(escape_text(item) if type(item) is _Tail else item)
            continue
        el, scope_ns, scope, depth = item
        if depth > MAX_TREE_DEPTH:
            raise ValueError("element tree too deep or cyclic")
        scope_ns, scope = _open(el, scope_ns, scope, counter, out)
        text = el._text
        children = el._children
        if not text and not children:
            out.append("/>")
            continue
        out.append(">")
        if text:
            out.append(escape_text(text))
        push(f"</{_qname(el)}>")
        depth += 1
        for child in reversed(children):
            tail = child._tail
            if tail:
                push(_Tail(tail))
            push((child, scope_ns, scope, depth))


def _qname(el: Element) -> str:
    """The name ``el`` is written with: ``xml:``-prefixed in the ``xml`` namespace."""
    return "xml:" + el._name if el._namespace == NS_XML else el._name


class _Tail(str):
    """A child's tail on ``_write``'s stack, escaped when its turn comes (so that an
    error is met in document order, as the native backend meets it)."""

    __slots__ = ()
