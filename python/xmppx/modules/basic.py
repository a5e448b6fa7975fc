"""Small server services: XEP-0199 ping, XEP-0092 software version, XEP-0202 entity time,
XEP-0030 service discovery of the server.

Example (XEP-0199 §4.2)::

    <iq from='juliet@capulet.lit/balcony' to='capulet.lit' id='c2s1' type='get'>
      <ping xmlns='urn:xmpp:ping'/>
    </iq>
    <iq from='capulet.lit' to='juliet@capulet.lit/balcony' id='c2s1' type='result'/>
"""

from __future__ import annotations

import datetime
from typing import Any

from xmppx import __version__, ns
from xmppx.core import Element
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, Identity, IqGet, IqRequest, Module
from xmppx.modules.roster import RosterManager, find_module, shares_presence

__all__ = ["Disco", "EntityTime", "Ping", "SoftwareVersion"]


class _ForAccounts(Module):
    """A module that also answers on accounts' bare JIDs, to those an account shares its
    presence with only (XEP-0030 §8)."""

    #: the roster module, for whom an account shares its presence with (``start``)
    _roster: RosterManager | None = None

    async def start(self) -> None:
        self._roster = find_module(self.server, RosterManager)

    async def _may_see(self, req: IqRequest) -> bool:
        """The asker may see what the account ``req.account`` answers (XEP-0030 §8)."""
        assert req.account is not None
        return await shares_presence(self._roster, req.account, req.sender.bare)


class Ping(_ForAccounts):
    """XEP-0199 §4.2: answer client-to-server pings (the idle-client pings the other way
    are the connection's job, see ``xmppx.server._connection``).  An account's bare JID
    answers those it shares its presence with; others get ``service-unavailable``, as
    for an account that does not exist (XEP-0030 §8: no directory harvesting)."""

    features = (ns.PING,)
    account_features = (ns.PING,)

    def on_ping(self, req: IqRequest) -> Element | None:
        return None

    async def on_account_ping(self, req: IqRequest) -> Element | None:
        if not await self._may_see(req):
            raise StanzaError("service-unavailable")
        return None

    handlers = {
        IqGet(ns.PING, name="ping"): on_ping,
        IqGet(ns.PING, ACCOUNT, name="ping"): on_account_ping,
    }


class SoftwareVersion(Module):
    """XEP-0092: name and version of the server software (the OS is not disclosed)."""

    features = (ns.VERSION,)

    def on_version(self, req: IqRequest) -> Element | None:
        q = Element("query", ns.VERSION)
        q.append(Element("name", ns.VERSION, text="xmppx"))
        q.append(Element("version", ns.VERSION, text=__version__))
        return q

    handlers = {IqGet(ns.VERSION): on_version}


class EntityTime(Module):
    """XEP-0202: the server's time in UTC (``tzo`` +00:00)."""

    features = (ns.TIME,)

    def on_time(self, req: IqRequest) -> Element | None:
        now = datetime.datetime.now(datetime.UTC)
        t = Element("time", ns.TIME)
        t.append(Element("tzo", ns.TIME, text="+00:00"))
        t.append(Element("utc", ns.TIME, text=now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"))
        return t

    handlers = {IqGet(ns.TIME, name="time"): on_time}


class Disco(_ForAccounts):
    """XEP-0030 on the server and on accounts: identities and the union of the features
    of every loaded module (nothing is listed that the server does not do), and items
    for the services (components) it hosts.

    An account answers (on its bare JID) only askers that may receive its presence (the
    account itself, or a contact with subscription 'from' or 'both'); others get
    ``service-unavailable`` for disco#info and disco#items, node or not, which is what an
    account that does not exist answers (RFC 6121 §8.5.1), so that neither tells the two
    apart (XEP-0030 §8)."""

    features = (ns.DISCO_INFO, ns.DISCO_ITEMS)
    account_features = (ns.DISCO_INFO, ns.DISCO_ITEMS)
    identities = (Identity(category="server", type="im", name="xmppx"),)

    async def on_info(self, req: IqRequest) -> Element | None:
        node = req.payload.get("node")
        if req.account is not None and not await self._may_see(req):
            raise StanzaError("service-unavailable")
        if node:
            described = self._node_info(node, req) if req.account is None else None
            if described is not None:
                q = Element("query", ns.DISCO_INFO, {"node": node})
                for child in described:
                    q.append(child)
                return q
            if req.account is None and self._node_items(node, req) is not None:
                q = Element("query", ns.DISCO_INFO, {"node": node})
                q.append(
                    Element(
                        "identity",
                        ns.DISCO_INFO,
                        {"category": "automation", "type": "command-list"},
                    )
                )
                return q
            raise StanzaError("item-not-found", f"no disco node {node!r}")
        q = Element("query", ns.DISCO_INFO)
        modules = self.server.modules
        if req.account is None:
            idents = [i for m in modules for i in m.identities]
            feats = {f for m in modules for f in m.features}
        else:
            idents = [Identity(category="account", type="registered")]
            feats = {f for m in modules for f in m.account_features}
        for ident in idents:
            attrs = {"category": ident.category, "type": ident.type}
            if ident.name:
                attrs["name"] = ident.name
            q.append(Element("identity", ns.DISCO_INFO, attrs))
        for feat in sorted(feats):
            q.append(Element("feature", ns.DISCO_INFO, {"var": feat}))
        return q

    def _node_info(self, node: str, req: IqRequest) -> list[Element] | None:
        """What a module says a node of the server is (``disco_node_info``), if any."""
        described: list[Element] | None = self._ask_modules("disco_node_info", node, req)
        return described

    def _node_items(self, node: str, req: IqRequest) -> list[tuple[str, str, str]] | None:
        """The items a module lists under a node of the server (``disco_node_items``)."""
        items: list[tuple[str, str, str]] | None = self._ask_modules("disco_node_items", node, req)
        return items

    def _ask_modules(self, hook: str, node: str, req: IqRequest) -> Any:
        """The first answer other than ``None`` of a module's ``hook(node, asker)``."""
        for module in self.server.modules:
            answer = getattr(module, hook, None)
            if answer is not None and (got := answer(node, str(req.sender.bare))) is not None:
                return got
        return None

    async def on_items(self, req: IqRequest) -> Element | None:
        node = req.payload.get("node")
        if req.account is not None and not await self._may_see(req):
            raise StanzaError("service-unavailable")
        if node:
            items = self._node_items(node, req) if req.account is None else None
            if items is None:
                raise StanzaError("item-not-found", f"no disco node {node!r}")
            q = Element("query", ns.DISCO_ITEMS, {"node": node})
            for jid, item_node, name in items:
                q.append(
                    Element("item", ns.DISCO_ITEMS, {"jid": jid, "node": item_node, "name": name})
                )
            return q
        q = Element("query", ns.DISCO_ITEMS)
        if req.account is None:
            for jid, name in self.server.service_items():
                q.append(Element("item", ns.DISCO_ITEMS, {"jid": jid, "name": name}))
        return q

    handlers = {
        IqGet(ns.DISCO_INFO): on_info,
        IqGet(ns.DISCO_ITEMS): on_items,
        IqGet(ns.DISCO_INFO, ACCOUNT): on_info,
        IqGet(ns.DISCO_ITEMS, ACCOUNT): on_items,
    }
