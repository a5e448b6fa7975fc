"""Fixtures for XEP-0045 tests: an in-process server with ``MucService`` loaded, and
``Peer``, a raw-XML client (``xmppx.client.Client``) that reads like the spec's examples:
send the stanza, ``expect`` the one the spec says comes back.

No test waits on the clock: a stanza that must *not* arrive is checked with ``barrier``
(a ping round trip to the server, after which everything sent earlier has arrived)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import DOMAIN, PASSWORD, client_tls_context, make_config
from xmppx import ns
from xmppx.client import Client
from xmppx.core import BareJID, Element, parse
from xmppx.modules.muc import MucService
from xmppx.server import XMPPServer
from xmppx.server.accounts import create_account

MUC = f"conference.{DOMAIN}"
USERS = ("romeo", "juliet", "mercutio", "benvolio", "tybalt")
TIMEOUT = 5.0


def muc_of(server: XMPPServer) -> MucService:
    return next(m for m in server.modules if isinstance(m, MucService))


@dataclass
class ServerFactory:
    tmp_path: Path
    storage_url: str
    servers: list[XMPPServer] = dataclasses.field(default_factory=list)

    async def start(self, *, users: tuple[str, ...] = USERS, **overrides: Any) -> XMPPServer:
        overrides.setdefault("storage", self.storage_url)
        server = XMPPServer(make_config(self.tmp_path, **overrides))  # MUC is a default module
        await server.start()
        self.servers.append(server)
        for user in users:
            if not await server.storage.accounts.exists(f"{user}@{DOMAIN}"):
                await create_account(server.storage, BareJID(f"{user}@{DOMAIN}"), PASSWORD)
        return server


@pytest.fixture
async def servers(tmp_path: Path, storage_url: str) -> AsyncIterator[ServerFactory]:
    """Servers on the storage driver under test: every scenario runs on SQLite and on
    PostgreSQL (issue 5)."""
    factory = ServerFactory(tmp_path, storage_url)
    yield factory
    for server in factory.servers:
        await server.stop()


@pytest.fixture
async def server(servers: ServerFactory) -> XMPPServer:
    return await servers.start()


def xml(text: str) -> Element:
    return parse(text.encode())


def muc_x(stanza: Element) -> Element | None:
    return stanza.find(ns.clark(ns.MUC_USER, "x"))


def codes(stanza: Element) -> set[str]:
    x = muc_x(stanza)
    if x is None:
        return set()
    return {s.get("code") or "" for s in x.findall(ns.clark(ns.MUC_USER, "status"))}


def item(stanza: Element) -> dict[str, str]:
    x = muc_x(stanza)
    assert x is not None, f"no muc#user x in {stanza.serialize()!r}"
    it = x.find(ns.clark(ns.MUC_USER, "item"))
    assert it is not None
    return it.attrs


def error_condition(stanza: Element) -> str:
    err = stanza.find(ns.clark(ns.CLIENT, "error"))
    assert err is not None, f"not an error: {stanza.serialize()!r}"
    for child in err:
        if child.namespace == ns.STANZAS and child.name != "text":
            return child.name
    raise AssertionError("no condition")


@dataclass
class Joined:
    """What a join brought, in the §7.1 order."""

    others: list[Element]
    self_presence: Element
    history: list[Element]
    subject: Element


class Peer:
    """One logged-in user with a receive buffer."""

    def __init__(self, client: Client, jid: str) -> None:
        self.client = client
        self.jid = jid
        self.buffer: list[Element] = []

    @property
    def bare(self) -> str:
        return self.jid.split("/", 1)[0]

    def send(self, stanza: str | Element) -> None:
        self.client.send(xml(stanza) if isinstance(stanza, str) else stanza)

    async def iq(self, stanza: str | Element) -> Element:
        return await self.client.iq(xml(stanza) if isinstance(stanza, str) else stanza, TIMEOUT)

    async def iq_error(self, stanza: str | Element) -> str:
        from xmppx.client import IqError

        with pytest.raises(IqError) as info:
            await self.iq(stanza)
        return info.value.condition

    async def expect(self, pred: Callable[[Element], bool], what: str = "") -> Element:
        """The first stanza (buffered or arriving) matching ``pred``; others stay buffered."""
        for i, stanza in enumerate(self.buffer):
            if pred(stanza):
                return self.buffer.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                got = [s.serialize() for s in self.buffer]
                raise AssertionError(f"{self.jid}: no {what or 'match'}; buffered: {got}")
            try:
                stanza = await self.client.recv(timeout=remaining)
            except TimeoutError:
                continue
            if pred(stanza):
                return stanza
            self.buffer.append(stanza)

    async def expect_from(self, frm: str, kind: str = "", **attrs: str) -> Element:
        def match(s: Element) -> bool:
            if s.get("from") != frm or (kind and s.name != kind):
                return False
            return all(s.get(k) == v for k, v in attrs.items())

        return await self.expect(match, f"{kind or 'stanza'} from {frm} {attrs}")

    async def barrier(self) -> None:
        """Everything the server sent us before now is in ``buffer`` afterwards."""
        await self.iq(f"<iq type='get' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
        while self.client.queued:
            self.buffer.append(await self.client.recv(timeout=TIMEOUT))

    async def nothing_from(self, frm: str, kind: str = "") -> None:
        """After a barrier, nothing (of ``kind``) from ``frm`` (a JID prefix) arrived."""
        await self.barrier()
        stray = [
            s.serialize()
            for s in self.buffer
            if (s.get("from") or "").startswith(frm) and (not kind or s.name == kind)
        ]
        assert not stray, f"{self.jid} unexpectedly got {stray}"

    def clear(self) -> None:
        self.buffer.clear()

    async def join(
        self,
        room: str,
        nick: str,
        *,
        password: str | None = None,
        history: str = "",
        extra: str = "",
    ) -> Joined:
        """§7.2.1: enter, and collect the §7.1 sequence up to the subject."""
        inner = ""
        if password is not None:
            inner += f"<password>{password}</password>"
        inner += history
        self.send(f"<presence to='{room}/{nick}'><x xmlns='{ns.MUC}'>{inner}</x>{extra}</presence>")
        others: list[Element] = []
        history_msgs: list[Element] = []
        skipped: list[Element] = []
        try:
            return await self._collect_join(room, others, history_msgs, skipped)
        finally:
            self.buffer[:0] = skipped

    async def _collect_join(
        self,
        room: str,
        others: list[Element],
        history_msgs: list[Element],
        skipped: list[Element],
    ) -> Joined:
        self_presence: Element | None = None
        while True:
            s = await self.expect(
                lambda s: (
                    (s.get("from") or "").split("/")[0] == room and not any(s is k for k in skipped)
                ),
                f"join of {room}",
            )
            if s.name == "presence" and s.get("type") == "error":
                raise JoinError(error_condition(s), s)
            if s.name == "presence" and self_presence is None:
                if "110" in codes(s):
                    self_presence = s
                else:
                    others.append(s)
            elif (
                s.name == "message"
                and s.find(ns.clark(ns.CLIENT, "subject")) is not None
                and s.find(ns.clark(ns.CLIENT, "body")) is None
            ):
                assert self_presence is not None, "subject before self-presence"
                return Joined(others, self_presence, history_msgs, s)
            elif (
                s.name == "message"
                and self_presence is not None
                and s.find(ns.clark(ns.DELAY, "delay")) is not None
            ):
                history_msgs.append(s)
            else:
                skipped.append(s)  # e.g. an invitation: not part of the join

    async def join_error(self, room: str, nick: str, **kw: Any) -> str:
        with pytest.raises(JoinError) as info:
            await self.join(room, nick, **kw)
        return info.value.condition

    async def leave(self, room: str, nick: str) -> Element:
        self.send(f"<presence to='{room}/{nick}' type='unavailable'/>")
        return await self.expect_from(f"{room}/{nick}", "presence", type="unavailable")

    async def say(self, room: str, body: str) -> None:
        self.send(f"<message to='{room}' type='groupchat'><body>{body}</body></message>")

    async def close(self) -> None:
        await self.client.close()


class JoinError(Exception):
    def __init__(self, condition: str, stanza: Element) -> None:
        super().__init__(condition)
        self.condition = condition
        self.stanza = stanza


async def connect(server: XMPPServer, user: str, resource: str = "res") -> Peer:
    client = await Client.connect(
        f"{user}@{DOMAIN}/{resource}",
        PASSWORD,
        host="127.0.0.1",
        port=server.ports["c2s"],
        ssl_context=client_tls_context(server.config.data_dir),
        timeout=TIMEOUT,
    )
    client.send(Element("presence", ns.CLIENT))
    peer = Peer(client, client.jid)
    await peer.barrier()
    peer.clear()
    return peer


@pytest.fixture
async def peers(server: XMPPServer) -> AsyncIterator[Callable[..., Any]]:
    """``await peers("romeo", "juliet")`` → connected ``Peer``s, closed at the end."""
    opened: list[Peer] = []

    async def open_(*users: str) -> list[Peer]:
        new = [await connect(server, u) for u in users]
        opened.extend(new)
        return new

    yield open_
    for peer in opened:
        if not peer.client.closed:
            await peer.close()


async def create_instant(owner: Peer, room: str, nick: str) -> Joined:
    """§10.1.2: enter a new room (201) and accept the default configuration."""
    joined = await owner.join(room, nick)
    assert {"110", "201"} <= codes(joined.self_presence)
    await owner.iq(
        f"<iq type='set' to='{room}'><query xmlns='{ns.MUC_OWNER}'>"
        f"<x xmlns='jabber:x:data' type='submit'/></query></iq>"
    )
    return joined


def form_xml(fields: dict[str, str | list[str]], form_type: str = ns.MUC + "#roomconfig") -> str:
    out = ["<x xmlns='jabber:x:data' type='submit'>"]
    out.append(f"<field var='FORM_TYPE'><value>{form_type}</value></field>")
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        out.append(f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in values))
        out.append("</field>")
    out.append("</x>")
    return "".join(out)


async def configure(owner: Peer, room: str, fields: dict[str, str | list[str]]) -> Element:
    return await owner.iq(
        f"<iq type='set' to='{room}'><query xmlns='{ns.MUC_OWNER}'>{form_xml(fields)}</query></iq>"
    )


async def create_room(
    owner: Peer, room: str, nick: str, fields: dict[str, str | list[str]]
) -> Joined:
    """§10.1.3: a reserved room, configured before anyone else may enter."""
    joined = await owner.join(room, nick)
    assert "201" in codes(joined.self_presence)
    await configure(owner, room, fields)
    return joined


async def admin_set(actor: Peer, room: str, items: str) -> Element:
    return await actor.iq(
        f"<iq type='set' to='{room}'><query xmlns='{ns.MUC_ADMIN}'>{items}</query></iq>"
    )


async def admin_list(actor: Peer, room: str, attr: str) -> list[dict[str, str]]:
    result = await actor.iq(
        f"<iq type='get' to='{room}'><query xmlns='{ns.MUC_ADMIN}'><item {attr}/></query></iq>"
    )
    query = result.find(ns.clark(ns.MUC_ADMIN, "query"))
    assert query is not None
    return [i.attrs for i in query.findall(ns.clark(ns.MUC_ADMIN, "item"))]
