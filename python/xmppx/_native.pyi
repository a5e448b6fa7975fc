"""Type stubs for ``xmppx._native``, the Rust core (checked by ``mypy.stubtest``).

Only ``xmppx.core`` imports this module.  The pure-Python backend exposes the same
names with the same behaviour: the XML and stringprep ones in ``xmppx.core._py``, the
JID values (``BareJID``, ``FullJID``, ``parse_jid``, the cache) in ``xmppx.core._jid``;
see ``xmppx.core._api`` for the normative contract.
"""

from collections.abc import Iterator, Mapping
from typing import final
from xml.etree.ElementTree import Element as _ETElement

from xmppx.core._api import StreamEnd, StreamHeader

__version__: str

@final
class Element:
    """An XML element (ElementTree model: text, tail, children; see ``_api``).

    Parsed elements keep their input bytes and build child objects only when asked, so
    reading a stanza's ``to``/``from``/``type``/``id`` costs no subtree construction.
    """

    def __new__(
        cls,
        name: str,
        namespace: str = "",
        attrs: Mapping[str, str] | None = None,
        *,
        text: str = "",
        tail: str = "",
    ) -> Element: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def tag(self) -> str:
        """Clark notation: ``{namespace}name`` (just ``name`` without namespace)."""
    text: str
    tail: str
    @property
    def attrs(self) -> dict[str, str]:
        """A new dict of the attributes, in document order."""
    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of attribute ``key``, or ``default`` (also for a key that is not a
        ``str``, as ``dict.get``)."""
    def set(self, key: str, value: str) -> None: ...
    def pop_attr(self, key: str, default: str | None = None) -> str | None:
        """Remove an attribute and return its value (``default`` if absent)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Element]:
        """The children as they are when iteration begins (changing the element while
        iterating is safe)."""
    def __getitem__(self, index: int, /) -> Element: ...
    @property
    def children(self) -> list[Element]:
        """A new list of the children (the elements themselves are live)."""
    def append(self, child: Element) -> None:
        """Add ``child`` last; ``ValueError`` for the element itself."""
    def insert(self, index: int, child: Element) -> None:
        """Insert ``child`` before ``index``; ``ValueError`` for the element itself."""
    def remove(self, child: Element) -> None:
        """Remove the first child that *is* ``child``; ``ValueError`` if none."""
    def clear_children(self) -> None: ...
    def find(self, tag: str) -> Element | None:
        """First child matching ``tag``: ``{ns}name``, or a bare ``name`` meaning that
        name in this element's own namespace (``msg.find("body")``)."""
    def findall(self, tag: str) -> list[Element]: ...
    def findtext(self, tag: str, default: str | None = None) -> str | None: ...
    def first_child_namespace(self) -> str | None:
        """Namespace of the first child element (an iq's payload), ``None`` if none."""
    def copy(self) -> Element:
        """A deep copy; ``ValueError`` for a tree deeper than 1000 levels or cyclic (as
        ``==``, ``serialize``, ``to_etree`` and ``from_etree``)."""
    def __copy__(self) -> Element:
        """``copy.copy``: a copy of the attributes, the same child elements."""
    def __deepcopy__(self, memo: dict[int, object], /) -> Element: ...
    def __reduce__(
        self,
    ) -> tuple[
        type[Element],
        tuple[str, str, dict[str, str]],
        tuple[str, str, list[tuple[str, str, dict[str, str], str, str, int]]],
    ]:
        """Name, namespace and attributes, then text, tail and the descendants in
        document order as ``(name, namespace, attributes, text, tail, number of
        children)``: flat, so pickle needs no recursion however deep the tree."""
    def __setstate__(
        self, state: tuple[str, str, list[tuple[str, str, dict[str, str], str, str, int]]], /
    ) -> None: ...
    def to_etree(self) -> _ETElement: ...
    @staticmethod
    def from_etree(element: _ETElement) -> Element: ...
    def serialize(self, default_ns: str = "jabber:client") -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class StreamParser:
    """Incremental XMPP stream parser; see ``xmppx.core._api`` for the contract."""

    def __new__(
        cls,
        *,
        max_stanza_bytes: int | None = 262144,
        max_depth: int | None = 32,
        max_attributes: int | None = 64,
        max_buffer_bytes: int | None = 16384,
    ) -> StreamParser:
        """``None`` is the default; ``max_depth`` is at most 1000."""
    def feed(
        self, data: bytes | bytearray | memoryview
    ) -> list[StreamHeader | Element | StreamEnd]: ...
    def reset(self) -> None: ...

def parse(data: bytes | bytearray | memoryview, default_ns: str = "jabber:client") -> Element:
    """Parse one standalone element, as if it were a stanza in a stream whose default
    namespace is ``default_ns``; the same rules and errors as ``StreamParser``, and
    input that ends inside anything is ``not-well-formed``.  ``ValueError`` for a
    ``default_ns`` that cannot be one (as ``serialize``)."""

def serialize(element: Element, default_ns: str = "jabber:client") -> bytes:
    """``ValueError`` for what cannot be written, including a ``default_ns`` that is the
    ``xml`` or ``xmlns`` namespace or holds a character outside XML 1.0 ``Char``."""

def nodeprep(s: str) -> str: ...
def nameprep(s: str) -> str: ...
def resourceprep(s: str) -> str: ...
def prep_jid(s: str) -> tuple[str, str, str]:
    """Split and prepare a JID: ``(localpart, domainpart, resourcepart)`` with ``""``
    for an absent part; raises ``JIDError``."""

#: ``parse_jid``'s cache bound, as ``xmppx.core._jid.CACHE_SIZE``.
JID_CACHE_SIZE: int

@final
class BareJID:
    """A JID without resourcepart (``localpart@domainpart`` or ``domainpart``); the
    contract of ``xmppx.core._jid``.  Parts are made on first access and kept."""

    def __new__(cls, s: str) -> BareJID:
        """Parse ``s``; raises ``JIDError`` (``not-bare`` if it has a resourcepart)."""
    @property
    def local(self) -> str:
        """The prepared localpart, '' when absent."""
    @property
    def domain(self) -> str:
        """The prepared domainpart."""
    @property
    def resource(self) -> str:
        """Always '' for a bare JID."""
    @property
    def bare(self) -> BareJID:
        """The bare JID: this one."""
    def with_resource(self, resource: str) -> FullJID:
        """This JID with a resourcepart, prepared with Resourceprep (``TypeError`` if
        ``resource`` is not a ``str``)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[BareJID], tuple[str]]: ...

@final
class FullJID:
    """A JID with a resourcepart; the contract of ``xmppx.core._jid``.  Parts and
    ``bare`` are made on first access and kept."""

    def __new__(cls, s: str) -> FullJID:
        """Parse ``s``; raises ``JIDError`` (``not-full`` if it has no resourcepart)."""
    @property
    def local(self) -> str:
        """The prepared localpart, '' when absent."""
    @property
    def domain(self) -> str:
        """The prepared domainpart."""
    @property
    def resource(self) -> str:
        """The prepared resourcepart (never empty)."""
    @property
    def bare(self) -> BareJID:
        """The BareJID of this JID."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[FullJID], tuple[str]]: ...

def parse_jid(s: str) -> BareJID | FullJID:
    """A ``FullJID`` when ``s`` has a resourcepart, else a ``BareJID``, from a bounded
    cache (``JID_CACHE_SIZE`` input strings, emptied when full); raises ``JIDError``."""

def jid_cache() -> dict[str, BareJID | FullJID]:
    """The live ``parse_jid`` cache, for tests and introspection; do not add to it."""
