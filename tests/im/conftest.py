"""Fixtures and helpers for the IM tests (RFC 6121, XEP-0054/0049/0191/0012/0160): the
in-process server of ``tests/server`` and ``xmppx.client.Client`` peers over TLS whose
incoming stanzas can be awaited by content, in any order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.server.conftest import (  # noqa: F401  (fixtures)
    DOMAIN,
    PASSWORD,
    client_tls_context,
    make_server,
    server,
)
from xmppx import ns
from xmppx.client import Client
from xmppx.core import Element
from xmppx.server import XMPPServer

ROSTER_Q = ns.clark(ns.ROSTER, "query")
ROSTER_ITEM = ns.clark(ns.ROSTER, "item")

Match = Callable[[Element], bool]

#: Seconds any one expected stanza may take (generous: 2 shared cores under load).
TIMEOUT = 10.0


@pytest.fixture
def server_storage_url(storage_url: str) -> str:
    """Every IM scenario runs on both storage drivers (issue 4: SQLite and PostgreSQL)."""
    return storage_url


class Peer:
    """A logged-in client; ``expect`` waits for a stanza matching a predicate and keeps
    the others for later expectations, so tests do not depend on arrival order."""

    def __init__(self, xserver: XMPPServer, client: Client) -> None:
        self.server = xserver
        self.client = client
        self.jid = client.jid
        self.bare = client.jid.split("/")[0]
        self.backlog: list[Element] = []

    @classmethod
    async def connect(cls, xserver: XMPPServer, jid: str, password: str = PASSWORD) -> Peer:
        client = await Client.connect(
            jid,
            password,
            host="127.0.0.1",
            port=xserver.ports["c2s"],
            ssl_context=client_tls_context(xserver.config.data_dir),
        )
        return cls(xserver, client)

    def send(self, stanza: Element) -> None:
        self.client.send(stanza)

    def send_xml(self, xml: str) -> None:
        self.client.send_raw(xml.encode())

    async def iq(self, stanza: Element) -> Element:
        return await self.client.iq(stanza, timeout=TIMEOUT)

    async def expect(self, match: Match, what: str = "a stanza") -> Element:
        for i, stanza in enumerate(self.backlog):
            if match(stanza):
                return self.backlog.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(
                    f"{self.jid}: {what} never came; got "
                    + ", ".join(s.serialize().decode() for s in self.backlog)
                )
            try:
                stanza = await self.client.recv(timeout=left)
            except TimeoutError:
                continue
            if match(stanza):
                return stanza
            self.backlog.append(stanza)

    async def drain(self) -> list[Element]:
        """Everything received up to now (after ``settle``), emptying the backlog."""
        out, self.backlog = self.backlog, []
        while self.client.queued:
            out.append(await self.client.recv(timeout=TIMEOUT))
        return out

    def presence(self, **attrs: str) -> None:
        self.send(presence(**attrs))

    async def roster(self, ver: str | None = None) -> Element:
        """RFC 6121 §2.1.3 roster get (with §2.6 ``ver`` when given)."""
        iq = Element("iq", ns.CLIENT, {"type": "get"})
        q = Element("query", ns.ROSTER)
        if ver is not None:
            q.set("ver", ver)
        iq.append(q)
        return await self.iq(iq)

    async def items(self) -> dict[str, dict[str, str]]:
        """The roster as {jid: attributes}."""
        res = await self.roster()
        q = res.find(ROSTER_Q)
        assert q is not None
        return {i.get("jid") or "": i.attrs for i in q.findall(ROSTER_ITEM)}

    async def close(self) -> None:
        await self.client.close()

    def abort(self) -> None:
        """An abrupt TCP drop: no closing handshake, no unavailable presence sent."""
        transport = self.client._transport
        assert transport is not None
        transport.abort()


def presence(**attrs: str) -> Element:
    return Element("presence", ns.CLIENT, {k.rstrip("_"): v for k, v in attrs.items()})


def is_presence(frm: str | None = None, type_: str | None = None) -> Match:
    """A presence (of ``type_``, ``None`` for available) from ``frm`` (bare or full)."""

    def match(s: Element) -> bool:
        if s.name != "presence" or s.get("type") != type_:
            return False
        return frm is None or s.get("from") == frm or (s.get("from") or "").split("/")[0] == frm

    return match


def is_push(jid: str, **attrs: str) -> Match:
    """A roster push (RFC 6121 §2.1.6) for ``jid`` with these item attributes
    (``ask=None`` means the attribute is absent)."""

    def match(s: Element) -> bool:
        if s.name != "iq" or s.get("type") != "set":
            return False
        q = s.find(ROSTER_Q)
        item = q.find(ROSTER_ITEM) if q is not None else None
        if item is None or item.get("jid") != jid:
            return False
        return all(item.get(k) == v for k, v in attrs.items())

    return match


async def settle(xserver: XMPPServer, *peers: Peer) -> None:
    """Wait until everything the peers sent has been handled: a round trip on each
    stream (so the server has read it all), then until the server has no IM work left,
    then another round trip (so what that work sent the peers has arrived)."""

    async def round_trips() -> None:
        for peer in peers:
            ping = Element("iq", ns.CLIENT, {"type": "get", "to": DOMAIN})
            ping.append(Element("ping", ns.PING))
            await peer.iq(ping)

    await round_trips()
    modules = [m for m in xserver.modules if hasattr(m, "tasks")]
    for _ in range(2000):
        busy = any(len(m.tasks) for m in modules) or xserver._tasks
        if not busy:
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError("the server never went idle")
    await round_trips()


async def online(xserver: XMPPServer, *jids: str) -> list[Peer]:
    """Peers logged in as ``jids``, available, with what their login brought drained."""
    peers = [await Peer.connect(xserver, jid) for jid in jids]
    for peer in peers:
        peer.presence()
    await settle(xserver, *peers)
    for peer in peers:
        await peer.drain()
    return peers


_MIRROR = {"both": "both", "to": "from", "from": "to", "none": "none"}


async def befriend(
    xserver: XMPPServer, user: str, contact: str, subscription: str = "both"
) -> None:
    """Put matching items on both rosters (``subscription`` as seen from ``user``), as a
    completed §3.1 handshake leaves them."""
    from xmppx.storage import RosterItem

    store = xserver.storage.roster
    await store.put_item(
        f"{user}@{DOMAIN}", RosterItem(contact=f"{contact}@{DOMAIN}", subscription=subscription)
    )
    await store.put_item(
        f"{contact}@{DOMAIN}",
        RosterItem(contact=f"{user}@{DOMAIN}", subscription=_MIRROR[subscription]),  # type: ignore[arg-type]
    )


def roster_set(*items: dict[str, str], groups: tuple[str, ...] = ()) -> Element:
    """A roster set (RFC 6121 §2.1.5) of ``items`` (item attributes), each in ``groups``;
    ``{"jid": ..., "subscription": "remove"}`` removes an item (§2.5)."""
    iq = Element("iq", ns.CLIENT, {"type": "set"})
    q = Element("query", ns.ROSTER)
    for attrs in items:
        item = Element("item", ns.ROSTER, attrs)
        for g in groups:
            item.append(Element("group", ns.ROSTER, text=g))
        q.append(item)
    iq.append(q)
    return iq


def message(to: str, body: str, type_: str = "chat") -> Element:
    msg = Element("message", ns.CLIENT, {"to": to, "type": type_})
    msg.append(Element("body", ns.CLIENT, text=body))
    return msg


def is_message(body: str | None = None) -> Match:
    return lambda s: s.name == "message" and (body is None or s.findtext("body") == body)


async def until(check: Callable[[], bool], what: str) -> None:
    """Wait (bounded: 10 s) until ``check()`` holds; ``AssertionError`` naming ``what``
    if it never does."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")
