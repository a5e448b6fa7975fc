"""vcard-temp (XEP-0054): each account's vCard, kept as XML in the private store under
the key ``"vcard-temp"``.

* Get (§3.1): without ``to`` (or to one's own bare JID) the user's own vCard, an empty
  ``<vCard/>`` when none was stored; to another account's bare JID that account's
  vCard, ``service-unavailable`` when it has none: what an unknown account gets from
  the router, since XEP-0054 §3.1 wants the same error for both (no harvesting of
  accounts through vCards).  The server's own (``to`` = the domain) is a
  small one naming the software.
* Set (§3.2): only one's own; the stored vCard is replaced as a whole (``forbidden`` for
  someone else's).  Larger than ``vcard.max_bytes`` (configuration): ``not-acceptable``.

Example (XEP-0054 §3.1)::

    <iq from='stpeter@jabber.org/roundabout' id='v1' type='get'>
      <vCard xmlns='vcard-temp'/>
    </iq>
    <iq id='v1' to='stpeter@jabber.org/roundabout' type='result'>
      <vCard xmlns='vcard-temp'><FN>Peter Saint-Andre</FN></vCard>
    </iq>
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from xmppx import ns
from xmppx.core import Element, parse
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, IqGet, IqRequest, IqSet, Module

if TYPE_CHECKING:
    from xmppx.core import BareJID
    from xmppx.server._server import XMPPServer

__all__ = ["MAX_VCARD_BYTES", "VCARD_KEY", "VCardTemp"]

#: Serialized vCard size by default (configuration key ``vcard.max_bytes``): a XEP-0153
#: avatar photo of ~90 KiB in base64 plus the text fields; well under the 256 KiB
#: stanza limit that carries it.
MAX_VCARD_BYTES: Final = 131_072
#: The private-store key of the vCard (``PrivateStore`` docstring).
VCARD_KEY: Final = "vcard-temp"


class VCardTemp(Module):
    features = (ns.VCARD,)
    account_features = (ns.VCARD,)

    def __init__(self, server: XMPPServer) -> None:
        super().__init__(server)
        #: the largest accepted, serialized (``vcard.max_bytes``)
        self.max_bytes = int(self.setting("vcard.max_bytes", MAX_VCARD_BYTES))

    async def card_for(self, user: BareJID, asker: BareJID) -> Element:
        """The vCard of the account ``user`` as ``asker`` gets it (§3.1): the stored one;
        an empty ``<vCard/>`` for one's own when none was stored; else
        ``StanzaError("service-unavailable")``, as for no such account.  Also what a
        XEP-0045 room answers for a vCard request to an occupant JID (XEP-0153 §2.2:
        avatars are looked up in vCards of bare JIDs)."""
        data = await self.server.storage.private.get(str(user), VCARD_KEY)
        if data is not None:
            return parse(data)
        if user == asker:
            return Element("vCard", ns.VCARD)
        raise StanzaError("service-unavailable")  # as for no such account (§3.1)

    async def on_get(self, req: IqRequest) -> Element | None:
        user = req.account
        assert user is not None
        return await self.card_for(user, req.sender.bare)

    async def on_set(self, req: IqRequest) -> Element | None:
        user = req.account
        assert user is not None
        if user != req.sender.bare:
            raise StanzaError("forbidden", "only the owner may change a vCard")
        vcard = req.payload
        if vcard.name != "vCard":
            raise StanzaError("bad-request", "expected <vCard xmlns='vcard-temp'/>")
        data = vcard.serialize()
        if len(data) > self.max_bytes:
            raise StanzaError("not-acceptable", f"a vCard is at most {self.max_bytes} bytes")
        await self.server.storage.private.put(str(user), VCARD_KEY, data)
        return None

    def on_server(self, req: IqRequest) -> Element | None:
        vcard = Element("vCard", ns.VCARD)
        vcard.append(Element("FN", ns.VCARD, text="xmppx"))
        return vcard

    handlers = {
        IqGet(ns.VCARD, name="vCard"): on_server,
        IqGet(ns.VCARD, ACCOUNT, name="vCard"): on_get,
        IqSet(ns.VCARD, ACCOUNT, name="vCard"): on_set,
    }
