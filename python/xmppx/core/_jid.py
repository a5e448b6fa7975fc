"""JIDs as values: ``parse_jid``, ``BareJID``, ``FullJID`` (RFC 7622 §3, RFC 6122).

Two implementations with one API: ``xmppx.core`` exports the Rust classes of
``xmppx._native`` (``rust/python/src/jid_value.rs``) on the native backend, and the
pure-Python ones of this module on the Python backend.  ``tests/test_jid.py`` runs the
same tests on both.  Preparation is ``xmppx.core.prep_jid`` of the active backend
(``xmppx.core`` binds it before importing this module), which splits the string and
applies Nodeprep, Nameprep/IDNA and Resourceprep; see ``xmppx.core._api`` and
``xmppx.core._py._stringprep`` for the rules.  Every error is ``JIDError(rule, text)``.

* ``parse_jid(s)`` returns a ``FullJID`` when ``s`` has a resourcepart, else a
  ``BareJID``.  Results are kept in a bounded cache (at most ``CACHE_SIZE`` input
  strings, emptied when full), so routing the same address again costs one dict lookup
  and returns the same object.  Invalid strings are not cached.  A JID given instead of
  a string is returned as it is; anything else is a ``TypeError``.
* ``BareJID(s)`` / ``FullJID(s)`` parse too, and raise ``JIDError("not-bare", ...)`` /
  ``JIDError("not-full", ...)`` when ``s`` has / lacks a resourcepart.
* Values are immutable: ``local`` and ``resource`` are ``""`` when absent (a present part
  is never empty), ``str()`` is the prepared JID, equality and hash are those of the
  prepared JID, so ``parse_jid("Juliet@Example.COM") == parse_jid("juliet@example.com")``;
  a ``BareJID`` never equals a ``FullJID``, and a JID never equals a string or a tuple
  of its parts.  JIDs have no order (``<`` is a ``TypeError``).
  ``FullJID.bare`` is its ``BareJID`` (``BareJID.bare`` is itself);
  ``BareJID.with_resource(r)`` prepares ``r``.  Pickling and copying keep the value
  (a pickle names the class that made it: values of the two implementations are never
  equal, so one process uses one, that of its backend).

The Python classes are tuple subclasses with ``__slots__ = ()`` (as
``collections.namedtuple``): construction, attribute access, hashing and comparison
then run in C, which matters on the routing path.  The tuple layout is private, and
hidden from type checkers (the native classes are not tuples): its first item is the
class itself, so that a JID never equals a tuple of its parts nor a JID of the other
class; iterating, indexing and ``in`` are ``TypeError`` as on the native classes
(``len()`` still answers, so that truth testing stays in C: a JID is always true).

Example::

    >>> j = parse_jid("Juliet@Example.COM/Balcony")
    >>> j.local, j.domain, j.resource, str(j.bare)
    ('juliet', 'example.com', 'Balcony', 'juliet@example.com')
    >>> j == FullJID("juliet@example.com/Balcony")
    True
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from xmppx.core import prep_jid as _prep
from xmppx.core._api import JIDError

if TYPE_CHECKING:
    from typing import Self

__all__ = ["CACHE_SIZE", "JID", "BareJID", "FullJID", "parse_jid"]

#: Distinct input strings kept by ``parse_jid``: a server's working set of addresses
#: (its users, their contacts, rooms) for cheap re-routing, while a peer sending endless
#: distinct addresses can make us hold at most this many (the cache is then emptied).
CACHE_SIZE: Final = 4096

try:  # CPython's C descriptor behind namedtuple fields
    from collections import _tuplegetter  # type: ignore[attr-defined]

    def _field(i: int, doc: str) -> Any:
        return _tuplegetter(i, doc)

except ImportError:  # pragma: no cover - other implementations

    def _field(i: int, doc: str) -> Any:
        return property(operator.itemgetter(i), doc=doc)


_new: Any = tuple.__new__

if TYPE_CHECKING:

    class _Value:
        """What type checkers see as the base: a plain value, not a tuple."""

        __slots__ = ()

else:
    _Value = tuple


def _unordered(self: object, other: object) -> Any:
    return NotImplemented


def _not_a_sequence(self: object, *args: object) -> Any:
    raise TypeError(f"{type(self).__name__} is not a sequence")


class BareJID(_Value):
    """A JID without resourcepart: ``localpart@domainpart`` or ``domainpart``."""

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def local(self) -> str: ...
        @property
        def domain(self) -> str: ...
        @property
        def resource(self) -> str: ...
        @property
        def _text(self) -> str: ...

    else:
        local = _field(1, "The prepared localpart, '' when absent.")
        domain = _field(2, "The prepared domainpart.")
        resource = _field(3, "Always '' for a bare JID.")
        _text = _field(4, "The prepared JID.")
        __lt__ = __le__ = __gt__ = __ge__ = _unordered
        __iter__ = __getitem__ = __contains__ = _not_a_sequence

    def __new__(cls, s: str) -> Self:
        """Parse ``s``; raises ``JIDError`` (``not-bare`` if it has a resourcepart)."""
        j = parse_jid(s)
        if type(j) is not cls:
            raise JIDError("not-bare", f"{s!r} has a resourcepart")
        return j

    @property
    def bare(self) -> BareJID:
        """The bare JID: this one."""
        return self

    def with_resource(self, resource: str) -> FullJID:
        """This JID with a resourcepart, prepared with Resourceprep (``JIDError`` if the
        resourcepart is invalid or empty)."""
        if not isinstance(resource, str):
            raise TypeError(f"a resourcepart must be a str, not {type(resource).__name__}")
        j = parse_jid(f"{self._text}/{resource}")
        if type(j) is not FullJID:  # pragma: no cover - a '/' always gives a FullJID
            raise JIDError("not-full", f"{resource!r} is not a resourcepart")
        return j

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"BareJID({self._text!r})"

    def __reduce__(self) -> tuple[Callable[[str], BareJID], tuple[str]]:
        return (BareJID, (self._text,))


class FullJID(_Value):
    """A JID with a resourcepart: ``localpart@domainpart/resourcepart`` or
    ``domainpart/resourcepart``."""

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def local(self) -> str: ...
        @property
        def domain(self) -> str: ...
        @property
        def resource(self) -> str: ...
        @property
        def bare(self) -> BareJID: ...
        @property
        def _text(self) -> str: ...

    else:
        local = _field(1, "The prepared localpart, '' when absent.")
        domain = _field(2, "The prepared domainpart.")
        resource = _field(3, "The prepared resourcepart (never empty).")
        _text = _field(4, "The prepared JID.")
        bare = _field(5, "The BareJID of this JID.")
        __lt__ = __le__ = __gt__ = __ge__ = _unordered
        __iter__ = __getitem__ = __contains__ = _not_a_sequence

    def __new__(cls, s: str) -> Self:
        """Parse ``s``; raises ``JIDError`` (``not-full`` if it has no resourcepart)."""
        j = parse_jid(s)
        if type(j) is not cls:
            raise JIDError("not-full", f"{s!r} has no resourcepart")
        return j

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"FullJID({self._text!r})"

    def __reduce__(self) -> tuple[Callable[[str], FullJID], tuple[str]]:
        return (FullJID, (self._text,))


#: Either kind of JID.
JID: TypeAlias = BareJID | FullJID


class _Cache(dict[str, JID]):
    """``parse_jid``'s bounded cache: a miss prepares the string and stores the result."""

    __slots__ = ()

    def __missing__(self, s: str) -> JID:
        if not isinstance(s, str):
            if isinstance(s, BareJID | FullJID):
                return s
            raise TypeError(f"a JID must be a str, not {type(s).__name__}")
        local, domain, resource = _prep(s)
        bare_str = f"{local}@{domain}" if local else domain
        if resource:
            bare = self.get(bare_str)
            if bare is None or type(bare) is not BareJID:
                bare = _new(BareJID, (BareJID, local, domain, "", bare_str))
            j: JID = _new(
                FullJID, (FullJID, local, domain, resource, f"{bare_str}/{resource}", bare)
            )
        else:
            j = _new(BareJID, (BareJID, local, domain, "", bare_str))
        if len(self) >= CACHE_SIZE:
            self.clear()
        self[s] = j
        return j


_CACHE: Final = _Cache()

#: ``parse_jid(s: str) -> BareJID | FullJID``: parse and prepare a JID (RFC 7622 §3),
#: raising ``JIDError``; a ``FullJID`` when ``s`` has a resourcepart.  It is the cache's
#: bound ``__getitem__``, so that a cache hit runs no Python code at all.
parse_jid: Final[Callable[[str], JID]] = _CACHE.__getitem__
