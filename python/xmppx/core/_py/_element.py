"""The pure-Python ``Element``: the ElementTree model of ``xmppx.core._api``.

An element has a local ``name`` (an XML NCName, Namespaces in XML 1.0 §3), a
``namespace`` URI (``""`` for none), attributes in document order keyed by local name or
by Clark notation ``{uri}local`` for namespaced ones, ``text`` (character data before the
first child), ``tail`` (character data after the end tag, inside the parent) and children.
Namespace prefixes are not part of the model: the serializer chooses them (see
``_serializer``).  Equality is structural over name, namespace, attributes (as a mapping),
text, tail and children; elements are mutable and so unhashable.

This class mirrors ``xmppx._native.Element`` method for method (``_native.pyi``); the
parser builds instances directly through ``_new_element`` without the constructor's
validation, since expat already checked the names.

A stanza from the stream parser's fast path is *lazy*: it holds its name, namespace,
attributes and the stanza's input bytes, and its text and children are decoded from
those bytes on first use (the ``_text`` and ``_children`` slots stay unset until then;
``__getattr__``, which Python only calls for an unset slot, fills them through
``_lazy``).  Reading routing attributes never builds the subtree, and a stanza whose
text and children were never read is serialized with its input content (``_serializer``),
as with the native backend.

Example::

    >>> msg = Element("message", "jabber:client", {"to": "juliet@example.com"})
    >>> body = Element("body", "jabber:client", text="Art thou not Romeo?")
    >>> msg.append(body)
    >>> msg.findtext("body")
    'Art thou not Romeo?'
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, TypeVar, final

from xmppx.core._py._names import NAME_CHAR_NON_ASCII, NAME_START_NON_ASCII

__all__ = [
    "MAX_TREE_DEPTH",
    "NAME_CACHE_MAX",
    "Element",
    "expand_names",
    "is_ncname",
    "split_clark",
]


#: A descendant as ``Element.__reduce__`` pickles it: name, namespace, attributes, text,
#: tail, number of children.
Pickled = tuple[str, str, dict[str, str], str, str, int]


def _class(ascii_part: str, ranges: tuple[tuple[int, int], ...]) -> str:
    return ascii_part + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


# NCName (Namespaces in XML 1.0 §3) by expat's name classes, XML 1.0 (Fourth Edition)
# Appendix B, which both backends use: expat reads the names of the Fifth Edition's
# wider classes as not well-formed (``scripts/gen_xml_name_tables.py``).
_NAME_START: Final = _class("A-Z_a-z", NAME_START_NON_ASCII)
_NAME_CHAR: Final = _class(r"A-Z_a-z0-9.\-", NAME_CHAR_NON_ASCII)
_NCNAME_RE: Final = re.compile(f"[{_NAME_START}][{_NAME_CHAR}]*")


def is_ncname(s: str) -> bool:
    """True when ``s`` is an NCName by expat's name classes (XML 1.0 4th ed. App. B)."""
    return _NCNAME_RE.fullmatch(s) is not None


def split_clark(tag: str) -> tuple[str, str]:
    """``"{ns}name"`` → ``("ns", "name")``; a bare ``"name"`` → ``("", "name")``.

    A local name never contains ``}``, so the namespace is everything up to the last one.
    """
    if tag[:1] == "{":
        ns, sep, name = tag[1:].rpartition("}")
        if sep:
            return ns, name
    return "", tag


_S = TypeVar("_S")
_D = TypeVar("_D")

#: Deepest tree the operations that walk one accept (``==``, ``copy``, ``serialize``,
#: ``to_etree``, ``from_etree``): an element more than this many levels below the one
#: the operation started from (or a cycle) is ``ValueError``, as in the native backend.
MAX_TREE_DEPTH: Final = 1000
_TOO_DEEP: Final = "element tree too deep or cyclic"


def _check_str(what: str, value: object) -> str:
    """``value`` itself if it is a ``str`` XML can carry: ``TypeError`` for another type,
    ``UnicodeEncodeError`` (a ``ValueError``) for a lone surrogate, as the native
    backend raises when it takes the string."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if not value.isascii():
        value.encode("utf-8")
    return value


@final
class Element:
    """An XML element (ElementTree model; see the module docstring and ``_api``).

    ``Element(name, namespace="", attrs=None, *, text="", tail="")`` raises ``ValueError``
    when ``name`` is not an NCName and ``TypeError`` for non-``str`` values.
    """

    __slots__ = ("_attrs", "_children", "_ctx", "_name", "_namespace", "_raw", "_tail", "_text")

    _name: str
    _namespace: str
    _attrs: dict[str, str]
    _text: str
    _tail: str
    _children: list[Element]
    #: A lazy element's input bytes (``None`` for every other element) and the namespace
    #: context they are parsed in.
    _raw: bytes | None
    _ctx: bytes

    def __getattr__(self, attr: str) -> object:
        # Only reached when a slot is unset: the text and children of a lazy element.
        if attr != "_text" and attr != "_children":
            raise AttributeError(attr)
        raw = self._raw
        if raw is not None:
            full = _decode(raw, self._ctx)
            # Threads may decode the same stanza at once: the first to finish publishes.
            with _PUBLISH:
                if self._raw is not None:
                    self._text = full._text
                    self._children = full._children
                    self._raw = None
        return object.__getattribute__(self, attr)

    def __init__(
        self,
        name: str,
        namespace: str = "",
        attrs: Mapping[str, str] | None = None,
        *,
        text: str = "",
        tail: str = "",
    ) -> None:
        _check_str("name", name)
        if _NCNAME_RE.fullmatch(name) is None:
            raise ValueError(f"element name {name!r} is not an XML NCName")
        self._name = name
        self._namespace = _check_str("namespace", namespace)
        copied: dict[str, str] = {}
        if attrs is not None:
            for key, value in attrs.items():
                copied[_check_str("attribute name", key)] = _check_str("attribute value", value)
        self._attrs = copied
        self._text = _check_str("text", text)
        self._tail = _check_str("tail", tail)
        self._children = []
        self._raw = None

    # -- identity -------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The local name."""
        return self._name

    @property
    def namespace(self) -> str:
        """The namespace URI, ``""`` for none."""
        return self._namespace

    @property
    def tag(self) -> str:
        """Clark notation: ``{namespace}name`` (just ``name`` without namespace)."""
        ns = self._namespace
        return f"{{{ns}}}{self._name}" if ns else self._name

    # -- character data ---------------------------------------------------------------
    @property
    def text(self) -> str:
        """Character data before the first child (``""`` when none)."""
        return self._text

    @text.setter
    def text(self, value: str) -> None:
        value = _check_str("text", value)
        self._children  # noqa: B018 - a lazy element decodes first, keeping the new text
        self._text = value

    @property
    def tail(self) -> str:
        """Character data after this element's end tag, inside its parent."""
        return self._tail

    @tail.setter
    def tail(self, value: str) -> None:
        self._tail = _check_str("tail", value)

    # -- attributes -------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, str]:
        """A new dict of the attributes, in document order."""
        return dict(self._attrs)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of attribute ``key`` (Clark notation when namespaced), or ``default``."""
        return self._attrs.get(key, default)

    def set(self, key: str, value: str) -> None:
        """Set attribute ``key``; a new key goes last in document order."""
        self._attrs[_check_str("attribute name", key)] = _check_str("attribute value", value)

    def pop_attr(self, key: str, default: str | None = None) -> str | None:
        """Remove an attribute and return its value (``default`` if absent)."""
        return self._attrs.pop(key, default)

    # -- children ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Element]:
        # the children as they are now: changing the element while iterating is safe
        return iter(self._children[:])

    def __getitem__(self, index: int) -> Element:
        if not isinstance(index, int):
            raise TypeError(f"Element indices must be integers, not {type(index).__name__}")
        return self._children[index]

    @property
    def children(self) -> list[Element]:
        """A new list of the children (the elements themselves are live)."""
        return list(self._children)

    def append(self, child: Element) -> None:
        """Add ``child`` as the last child (``ValueError`` for the element itself)."""
        if not isinstance(child, Element):
            raise TypeError(f"expected an Element, not {type(child).__name__}")
        if child is self:
            raise ValueError("an element cannot be its own child")
        self._children.append(child)

    def insert(self, index: int, child: Element) -> None:
        """Insert ``child`` before position ``index`` (``list.insert`` semantics;
        ``ValueError`` for the element itself)."""
        if not isinstance(child, Element):
            raise TypeError(f"expected an Element, not {type(child).__name__}")
        if child is self:
            raise ValueError("an element cannot be its own child")
        if not isinstance(index, int):
            raise TypeError(f"index must be int, not {type(index).__name__}")
        self._children.insert(index, child)

    def remove(self, child: Element) -> None:
        """Remove the first child that *is* ``child``; ``ValueError`` if none."""
        if not isinstance(child, Element):
            raise TypeError(f"expected an Element, not {type(child).__name__}")
        children = self._children
        for i, c in enumerate(children):
            if c is child:
                del children[i]
                return
        raise ValueError("Element.remove(x): x is not a child")

    def clear_children(self) -> None:
        """Remove all children."""
        self._children.clear()

    def _match(self, tag: str) -> tuple[str, str]:
        if tag[:1] == "{":
            return split_clark(tag)
        return self._namespace, tag

    def find(self, tag: str) -> Element | None:
        """First child matching ``tag``: ``{ns}name``, or a bare ``name`` meaning that
        name in this element's own namespace (``msg.find("body")``)."""
        ns, name = self._match(tag)
        for c in self._children:
            if c._name == name and c._namespace == ns:
                return c
        return None

    def findall(self, tag: str) -> list[Element]:
        """All children matching ``tag`` (same matching as ``find``), in order."""
        ns, name = self._match(tag)
        return [c for c in self._children if c._name == name and c._namespace == ns]

    def findtext(self, tag: str, default: str | None = None) -> str | None:
        """The ``text`` of the first child matching ``tag``, or ``default`` if none."""
        found = self.find(tag)
        return default if found is None else found._text

    def first_child_namespace(self) -> str | None:
        """Namespace of the first child element (an iq's payload), ``None`` if none.
        A lazy stanza answers from the child's start tag when it can, without decoding."""
        raw = self._raw
        if raw is not None:
            decided, ns = _first_child_namespace(raw, self._namespace)
            if decided:
                return ns
        children = self._children
        return children[0]._namespace if children else None

    # -- conversion -------------------------------------------------------------------
    def copy(self) -> Element:
        """A deep copy (an undecoded lazy stanza stays undecoded, sharing its input
        bytes).  ``ValueError`` for a tree deeper than ``MAX_TREE_DEPTH`` or cyclic."""
        return _mirror(self, _copy_node, _own_children, _adopt)

    def __copy__(self) -> Element:
        """``copy.copy``: a new element with a copy of the attributes and the same child
        elements (ElementTree's shallow copy)."""
        new = _new_element(self._name, self._namespace, dict(self._attrs))
        new._text = self._text
        new._tail = self._tail
        new._children = list(self._children)
        return new

    def __deepcopy__(self, memo: dict[int, object]) -> Element:
        """``copy.deepcopy``: ``copy()``."""
        return self.copy()

    def __reduce__(
        self,
    ) -> tuple[type[Element], tuple[str, str, dict[str, str]], tuple[str, str, list[Pickled]]]:
        """Pickled as its name, namespace and attributes, then its text, tail and its
        descendants in document order, each as ``(name, namespace, attributes, text,
        tail, number of children)`` (``__setstate__``): a flat list, so that pickle
        needs no recursion of its own however deep the tree (``ValueError`` for one
        deeper than ``MAX_TREE_DEPTH`` or cyclic, as ``copy``)."""
        flat: list[Pickled] = []
        stack = [(c, 1) for c in reversed(self._children)]
        pop, push = stack.pop, stack.append
        while stack:
            e, depth = pop()
            if depth > MAX_TREE_DEPTH:
                raise ValueError(_TOO_DEEP)
            children = e._children
            flat.append((e._name, e._namespace, dict(e._attrs), e._text, e._tail, len(children)))
            for c in reversed(children):
                push((c, depth + 1))
        return (
            Element,
            (self._name, self._namespace, dict(self._attrs)),
            (self._text, self._tail, flat),
        )

    def __setstate__(self, state: tuple[str, str, list[Pickled]]) -> None:
        text, tail, flat = state
        self._text = _check_str("text", text)
        self._tail = _check_str("tail", tail)
        top: list[Element] = []
        # the lists children are appended to, with how many each still takes (-1: any)
        open_: list[tuple[list[Element], int]] = [(top, -1)]
        for name, namespace, attrs, t, tl, n in flat:
            if type(n) is not int or n < 0:
                raise TypeError(f"a pickled child count must be a natural int, not {n!r}")
            if len(open_) > MAX_TREE_DEPTH:  # the new element's depth
                raise ValueError(_TOO_DEEP)
            el = Element(name, namespace, attrs, text=t, tail=tl)
            siblings, left = open_[-1]
            siblings.append(el)
            if left > 0:
                open_[-1] = (siblings, left - 1)
            if n:
                open_.append((el._children, n))
            while open_[-1][1] == 0:
                open_.pop()
        if len(open_) != 1:
            raise ValueError("pickled element: fewer descendants than its children counts")
        self._children = top

    def to_etree(self) -> ET.Element:
        """An ``xml.etree.ElementTree.Element`` with Clark tags; ``""`` text/tail become
        ``None``.  ``ValueError`` for a tree deeper than ``MAX_TREE_DEPTH`` or cyclic."""
        return _mirror(self, _to_etree_node, _all_children, ET.Element.append)

    @staticmethod
    def from_etree(element: ET.Element) -> Element:
        """Build from an ElementTree element (Clark tags; ``None`` text/tail become ``""``).

        ``ValueError`` for a tag that is not ``name``/``{ns}name`` with an NCName (which
        includes ElementTree comments and processing instructions), and for a tree
        deeper than ``MAX_TREE_DEPTH`` or cyclic."""
        return _mirror(element, _from_etree_node, list, _adopt)

    def serialize(self, default_ns: str = "jabber:client") -> bytes:
        """Canonical UTF-8 bytes, as a child of a stream with default namespace
        ``default_ns`` (see ``_serializer.serialize``)."""
        return _serialize(self, default_ns)

    # -- comparison -------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return _equal(self, other)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return not _equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # as the native backend writes it; a lazy stanza is not decoded for it
        return f"<Element {self.tag!r} attrs={len(self._attrs)}>"


def _equal(a: Element, b: Element) -> bool:
    """Structural equality, depth first in document order (``ValueError`` past
    ``MAX_TREE_DEPTH``, met in the same order as the native backend meets it)."""
    if a is b:
        return True
    stack = [(a, b, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        x, y, depth = pop()
        if depth > MAX_TREE_DEPTH:
            raise ValueError(_TOO_DEEP)
        if (
            x._name != y._name
            or x._namespace != y._namespace
            or x._text != y._text
            or x._tail != y._tail
            or x._attrs != y._attrs
        ):
            return False
        xc, yc = x._children, y._children
        n = len(xc)
        if n != len(yc):
            return False
        depth += 1
        for i in range(n - 1, -1, -1):
            push((xc[i], yc[i], depth))
    return True


def _mirror(
    root: _S,
    make: Callable[[_S], _D],
    children_of: Callable[[_S], Iterable[_S]],
    attach: Callable[[_D, _D], None],
) -> _D:
    """A tree of ``make(node)`` for each node under ``root`` (``children_of``), each
    attached to its parent's counterpart in order; depth first with a stack of its own,
    ``ValueError`` for a node more than ``MAX_TREE_DEPTH`` levels below ``root``."""
    top = make(root)
    stack = [(root, top, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        src, dst, depth = pop()
        if depth > MAX_TREE_DEPTH:
            raise ValueError(_TOO_DEEP)
        for c in children_of(src):
            new = make(c)
            attach(dst, new)
            push((c, new, depth + 1))
    return top


def _own_children(e: Element) -> list[Element]:
    """The children a copy walks: none for an undecoded lazy stanza (the copy shares
    its bytes)."""
    return [] if e._raw is not None else e._children


def _all_children(e: Element) -> list[Element]:
    return e._children


def _adopt(parent: Element, child: Element) -> None:
    parent._children.append(child)


def _copy_node(e: Element) -> Element:
    """``e`` without its children (those of a lazy stanza stay in its shared bytes)."""
    new = _new_element(e._name, e._namespace, dict(e._attrs))
    new._tail = e._tail
    raw = e._raw
    if raw is not None:
        new._raw = raw
        new._ctx = e._ctx
        del new._text, new._children  # decoded from the bytes on first use
    else:
        new._text = e._text
    return new


def _to_etree_node(e: Element) -> ET.Element:
    new = ET.Element(e.tag, dict(e._attrs))
    new.text = e._text or None
    new.tail = e._tail or None
    return new


def _from_etree_node(element: ET.Element) -> Element:
    tag = element.tag
    if not isinstance(tag, str):
        raise ValueError(f"not an element: {element!r}")
    ns, name = split_clark(tag)
    return Element(name, ns, element.attrib, text=element.text or "", tail=element.tail or "")


_alloc = Element.__new__
#: Held while a decoded lazy element's text and children are stored.
_PUBLISH: Final = threading.Lock()


def _new_element(name: str, namespace: str, attrs: dict[str, str]) -> Element:
    """An element with empty text, tail and children, without validation (the caller
    guarantees an NCName and ``str`` values); ``attrs`` is taken, not copied."""
    e = _alloc(Element)
    e._name = name
    e._namespace = namespace
    e._attrs = attrs
    e._text = ""
    e._tail = ""
    e._children = []
    e._raw = None
    return e


#: Expanded names cached per parser (``uri}local`` → (ns, local)); a cap keeps a peer
#: sending endless distinct names from growing a cache.
NAME_CACHE_MAX: Final = 512


def expand_names(
    name: str, attrs: dict[str, str], cache: dict[str, tuple[str, str]]
) -> tuple[str, str, dict[str, str]]:
    """An element's name and attributes as expat reports them with namespace processing
    and separator ``}`` (``uri}local``): its (namespace, local name), and the attributes
    keyed in Clark notation (``{uri}local``) where namespaced (``attrs`` itself when none
    is).  ``cache`` keeps up to ``NAME_CACHE_MAX`` expanded names."""
    for key in attrs:
        if "}" in key:
            attrs = {("{" + k if "}" in k else k): v for k, v in attrs.items()}
            break
    try:
        ns, local = cache[name]
    except KeyError:
        ns, _, local = name.rpartition("}")
        if len(cache) < NAME_CACHE_MAX:
            cache[name] = (ns, local)
    return ns, local, attrs


# The decoder and the serializer build and read Elements with the helpers above; imported
# last, once those exist (an import inside the methods would cost a microsecond a call).
from xmppx.core._py._lazy import decode as _decode  # noqa: E402
from xmppx.core._py._lazy import first_child_namespace as _first_child_namespace  # noqa: E402
from xmppx.core._py._serializer import serialize as _serialize  # noqa: E402
