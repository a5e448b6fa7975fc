"""Private XML storage (XEP-0049): arbitrary XML a user keeps on the server, one
fragment per (namespace, element name) of the ``<query/>`` child.

* Set (§2.3): each child of ``<query xmlns='jabber:iq:private'/>`` is stored, replacing
  what was stored under its namespace and name; get (§2.3): the child names the
  fragment; the stored one is returned, or the child as sent when nothing is stored.
* Only one's own data: to another account is ``forbidden`` (§2.3, §3).
* A get must name exactly one fragment; a query without child is ``not-acceptable``
  (§2.3, as existing servers answer) and a get with several children ``bad-request``.
* Reserved namespaces are refused with ``not-acceptable`` (§2.3): those beginning with
  ``jabber:`` or ``http://jabber.org/``, and ``vcard-temp`` (which has its own
  protocol and would otherwise alias the stored vCard); a fragment without a namespace
  or in ``jabber:client``/``jabber:server`` is refused by the same rule.
* A fragment larger than ``private.max_bytes`` (configuration) is ``not-acceptable``,
  and so is a set that would make the account's fragments together larger than
  ``private.quota_bytes`` (unless it makes them smaller): one account cannot fill the
  server's disk one namespace at a time.  Sets for one account are handled one at a
  time, so the quota holds for concurrent ones too.

Example (XEP-0049 §2.3)::

    <iq type='set' id='1001'>
      <query xmlns='jabber:iq:private'>
        <exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>
      </query>
    </iq>
    <iq type='result' id='1001'/>
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from xmppx import ns
from xmppx.core import BareJID, Element, parse
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, IqGet, IqRequest, IqSet, Module
from xmppx.modules.roster import KeyedLocks, own_account

if TYPE_CHECKING:
    from xmppx.server._server import XMPPServer

__all__ = ["MAX_PRIVATE_BYTES", "PRIVATE_QUOTA_BYTES", "PrivateStorage", "private_key"]

#: Serialized size of one stored fragment by default (``private.max_bytes``): bookmarks
#: of a few hundred rooms and client preferences fit, while one user cannot make us
#: store megabytes per key.
MAX_PRIVATE_BYTES: Final = 65_536
#: All of one account's fragments by default (``private.quota_bytes``): sixteen full
#: ones.
PRIVATE_QUOTA_BYTES: Final = 1_048_576
_PREFIX: Final = "private:"

_RESERVED_PREFIXES: Final = ("jabber:", "http://jabber.org/")


def private_key(namespace: str, name: str) -> str:
    """The private-store key of a fragment: ``private:{namespace}name``."""
    return f"{_PREFIX}{{{namespace}}}{name}"


def _check(fragment: Element) -> str:
    namespace = fragment.namespace
    if not namespace or namespace.startswith(_RESERVED_PREFIXES) or namespace == ns.VCARD:
        raise StanzaError("not-acceptable", f"namespace {namespace!r} is reserved")
    return private_key(namespace, fragment.name)


class PrivateStorage(Module):
    features = (ns.PRIVATE,)

    def __init__(self, server: XMPPServer) -> None:
        super().__init__(server)
        #: the largest accepted, serialized (``private.max_bytes``)
        self.max_bytes = int(self.setting("private.max_bytes", MAX_PRIVATE_BYTES))
        #: all of one account's fragments (``private.quota_bytes``)
        self.quota_bytes = int(self.setting("private.quota_bytes", PRIVATE_QUOTA_BYTES))
        self._locks: KeyedLocks[BareJID] = KeyedLocks()

    async def on_get(self, req: IqRequest) -> Element | None:
        user = own_account(req, "private data")
        children = req.payload.children
        if not children:
            raise StanzaError("not-acceptable", "name the fragment to get")
        if len(children) > 1:
            raise StanzaError("bad-request", "one fragment per get")
        wanted = children[0]
        data = await self.server.storage.private.get(str(user), _check(wanted))
        q = Element("query", ns.PRIVATE)
        q.append(parse(data) if data is not None else wanted.copy())
        return q

    async def on_set(self, req: IqRequest) -> Element | None:
        user = own_account(req, "private data")
        children = req.payload.children
        if not children:
            raise StanzaError("not-acceptable", "nothing to store")
        writes: dict[str, bytes] = {}
        for fragment in children:
            key = _check(fragment)
            data = fragment.serialize()
            if len(data) > self.max_bytes:
                raise StanzaError("not-acceptable", f"a fragment is at most {self.max_bytes} bytes")
            writes[key] = data
        store = self.server.storage.private
        async with self._locks.hold(user):
            sizes = await store.sizes(str(user), _PREFIX)
            before = sum(sizes.values())
            sizes.update((key, len(data)) for key, data in writes.items())
            after = sum(sizes.values())
            # (a set that shrinks what is stored always passes: a quota lowered below
            # what an account keeps must not lock it out of replacing its bookmarks)
            if after > self.quota_bytes and after > before:
                raise StanzaError(
                    "not-acceptable",
                    f"private storage holds at most {self.quota_bytes} bytes per account",
                )
            for key, data in writes.items():
                await store.put(str(user), key, data)
        return None

    handlers = {
        IqGet(ns.PRIVATE, ACCOUNT): on_get,
        IqSet(ns.PRIVATE, ACCOUNT): on_set,
    }
