"""XEP-0198 Stream Management: acknowledgements, resumption, and what becomes of
stanzas a client never acknowledged; spoken by hand over direct TLS as in the XEP's
examples, and by slixmpp's ``xep_0198`` plugin."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest

from tests.im.conftest import Peer, befriend, message, online, settle, until
from tests.im.test_carbons import enable as enable_carbons
from tests.server.conftest import DOMAIN, HEADER, PASSWORD, RawConnection, slix_connect
from xmppx import ns
from xmppx.core import Element, FullJID, StreamEnd, StreamParser, parse, parse_jid
from xmppx.server import XMPPServer

SM = ns.SM
ROMEO = "romeo@localhost/orchard"


class SMClient:
    """A client speaking XEP-0198 by hand: direct TLS, SASL PLAIN, then ``bind`` or
    ``resume``; it counts the stanzas it receives as the XEP's ``h``."""

    def __init__(self, raw: RawConnection) -> None:
        self.raw = raw
        self.parser = StreamParser()
        self.inbox: list[Element] = []
        #: every element received, in order
        self.seen: list[Element] = []
        self.ended = False
        #: stanzas received (message, presence, iq), as a client counts them for ``h``
        self.handled = 0

    @classmethod
    async def login(
        cls, server: XMPPServer, user: str = "romeo", *, receive_window: int | None = None
    ) -> tuple[SMClient, Element]:
        """Authenticated; returns the client and the stream features after SASL."""
        c = cls(await RawConnection.open(server, "c2s_tls", receive_window=receive_window))
        await c.raw.send(HEADER)
        await c.next("features")
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
        await c.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>")
        await c.next("success")
        c.parser.reset()
        await c.raw.send(HEADER)
        return c, await c.next("features")

    async def bind(self, resource: str = "orchard") -> None:
        await self.send(
            f"<iq type='set' id='b1'><bind xmlns='{ns.BIND}'><resource>{resource}</resource>"
            "</bind></iq>"
        )
        result = await self.next("iq")
        assert result.get("type") == "result", result.serialize()
        self.handled = 0  # stanzas before <enable/> do not count

    async def enable(self, resume: bool = True) -> Element:
        await self.send(f"<enable xmlns='{SM}'" + (" resume='true'" if resume else "") + "/>")
        return await self.next("enabled")

    async def send(self, xml: str) -> None:
        await self.raw.send(xml.encode())

    async def next(self, name: str | None = None, timeout: float = 10.0) -> Element:
        """The next element from the server (skipping the ack requests ``<r/>``); it
        must be named ``name`` when given."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self.inbox:
                el = self.inbox.pop(0)
                if el.namespace == SM and el.name == "r":
                    continue
                if name is not None:
                    assert el.name == name, f"expected <{name}/>, got {el.serialize()!r}"
                return el
            if self.ended:
                raise EOFError("the stream ended")
            left = deadline - loop.time()
            assert left > 0, f"nothing came; expected <{name}/>"
            try:
                chunk = await asyncio.wait_for(self.raw.reader.read(65536), left)
            except ConnectionError:
                chunk = b""
            if not chunk:
                self.ended = True
                continue
            self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        for ev in self.parser.feed(chunk):
            if isinstance(ev, StreamEnd):
                self.ended = True
            elif isinstance(ev, Element):
                self.seen.append(ev)
                if ev.namespace == ns.CLIENT:
                    self.handled += 1
                self.inbox.append(ev)

    async def request(self, since: int = 0, timeout: float = 10.0) -> None:
        """Wait until the server has asked for an acknowledgement (``<r/>``) among the
        elements received from index ``since`` on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(e.namespace == SM and e.name == "r" for e in self.seen[since:]):
            left = deadline - loop.time()
            assert left > 0 and not self.ended, "no <r/> came"
            self._take(await asyncio.wait_for(self.raw.reader.read(65536), left))

    async def stanzas_until(self, match: Callable[[Element], bool]) -> list[Element]:
        """Stanzas received up to and including the first that matches."""
        out = []
        while True:
            el = await self.next()
            out.append(el)
            if match(el):
                return out

    def abort(self) -> None:
        """The connection breaks: no closing handshake."""
        self.raw.writer.transport.abort()


def body_is(text: str) -> Callable[[Element], bool]:
    return lambda s: s.name == "message" and s.findtext("body") == text


def bodies(stanzas: list[Element]) -> list[str]:
    return [s.findtext("body") or "" for s in stanzas if s.name == "message"]


async def nothing_more(juliet: Peer, peer: Peer, body: str) -> None:
    """Juliet's marker message reaches ``peer`` after anything sent on before it: no
    (second) message ``body`` came."""
    juliet.send(message(peer.jid, "after"))
    await peer.expect(body_is("after"))
    assert body not in bodies(await peer.drain())


def session(server: XMPPServer, jid: str = ROMEO) -> Any:
    full = parse_jid(jid)
    assert isinstance(full, FullJID)
    return server.sessions.get(full)


async def hibernating(server: XMPPServer, jid: str = ROMEO) -> None:
    def detached() -> bool:
        s = session(server, jid)
        return s is not None and s.sm is not None and s.sm.detached

    await until(detached, f"{jid} hibernates")


async def sm_session(server: XMPPServer) -> SMClient:
    """Romeo logged in, bound and with stream management enabled."""
    c, _ = await SMClient.login(server)
    await c.bind()
    await c.enable()
    return c


async def romeo_with_sm(server: XMPPServer, *, resume: bool = True) -> tuple[SMClient, Element]:
    client, _ = await SMClient.login(server)
    await client.bind()
    enabled = await client.enable(resume)
    await client.send("<presence/>")
    # RFC 6121 §4.2.2: the server reflects it to the resource that sent it
    await client.stanzas_until(lambda s: s.name == "presence" and s.get("from") == ROMEO)
    return client, enabled


# -- enabling and acknowledging (§3, §4) ---------------------------------------------------


async def test_offered_after_authentication_and_enabled_with_resumption(
    server: XMPPServer,
) -> None:
    """§3: <sm/> among the features after SASL; <enable resume='true'/> after binding
    gets <enabled/> with an id and the longest wait the server allows."""
    c, features = await SMClient.login(server)
    assert features.find(ns.clark(SM, "sm")) is not None
    await c.bind()
    enabled = await c.enable()
    assert enabled.namespace == SM
    assert len(enabled.get("id") or "") >= 16
    assert enabled.get("resume") == "true"
    assert enabled.get("max") == "300"


async def test_enable_before_binding_fails_and_the_stream_goes_on(server: XMPPServer) -> None:
    """§3: enabling before resource binding is <failed/> with <unexpected-request/>;
    the client binds and enables then."""
    c, _ = await SMClient.login(server)
    await c.send(f"<enable xmlns='{SM}'/>")
    failed = await c.next("failed")
    assert failed.find(ns.clark(ns.STANZAS, "unexpected-request")) is not None
    await c.bind()
    enabled = await c.enable(resume=False)
    assert enabled.get("resume") is None
    await c.send(f"<iq type='get' id='p1' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert (await c.next("iq")).get("type") == "result"


async def test_without_stream_management_an_enable_fails(make_server: Any) -> None:
    """§3: to <enable/> the server "MUST reply with an <enabled/> element or a <failed/>
    element"; with ``sm.enabled`` off nothing is offered, and one sent all the same is
    <failed/>, the stream going on (a resume too: §5)."""
    server = await make_server(sm__enabled=False)
    c, features = await SMClient.login(server)
    assert features.find(ns.clark(SM, "sm")) is None
    await c.send(f"<resume xmlns='{SM}' previd='x' h='0'/>")
    assert (await c.next("failed")).find(
        ns.clark(ns.STANZAS, "feature-not-implemented")
    ) is not None
    await c.bind()
    await c.send(f"<enable xmlns='{SM}' resume='true'/>")
    assert (await c.next("failed")).find(
        ns.clark(ns.STANZAS, "feature-not-implemented")
    ) is not None
    await c.send(f"<iq type='get' id='p1' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert (await c.next("iq")).get("type") == "result"


async def test_a_second_enable_ends_the_stream(server: XMPPServer) -> None:
    """§3: "If a server receives a second <enable/> element it SHOULD respond with a
    stream error, thus terminating the client connection."."""
    c = await sm_session(server)
    await c.send(f"<enable xmlns='{SM}'/>")
    error = await c.next("error")
    assert error.namespace == ns.STREAMS
    assert error.find(ns.clark(ns.STREAM_ERRORS, "policy-violation")) is not None
    with pytest.raises(EOFError):
        await c.next()


async def test_r_is_answered_with_the_count_of_stanzas_handled(server: XMPPServer) -> None:
    """§4: <a h/> counts the client's stanzas since <enable/>, not the nonzas."""
    c = await sm_session(server)
    await c.send(f"<r xmlns='{SM}'/>")
    assert (await c.next("a")).get("h") == "0"
    for i in range(3):
        await c.send(f"<iq type='get' id='p{i}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
        await c.next("iq")
    await c.send(f"<r xmlns='{SM}'/>")
    assert (await c.next("a")).get("h") == "3"


async def test_the_server_asks_for_acknowledgements(server: XMPPServer) -> None:
    """§4: a stanza the server sends is followed by <r/> when no request is pending;
    after the client's <a/> the next stanza asks again."""
    c = await sm_session(server)
    for i in range(2):
        mark = len(c.seen)
        await c.send(f"<iq type='get' id='p{i}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
        await c.next("iq")
        await c.request(since=mark)
        await c.send(f"<a xmlns='{SM}' h='{c.handled}'/>")


async def test_an_acknowledgement_that_leaves_stanzas_waiting_is_followed_by_a_request(
    server: XMPPServer,
) -> None:
    """§4: the server asks with <r/> after a stanza when no request is pending, so a
    stanza written after the <r/> is not covered by the <a/> that answers it; the server
    asks again then (else it waits unacknowledged for the next stanza, or is sent on as
    undelivered if the client leaves first: a duplicate)."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    juliet.send(message(ROMEO, "m1"))
    juliet.send(message(ROMEO, "m2"))
    await romeo.stanzas_until(body_is("m2"))
    await romeo.request()
    mark = len(romeo.seen)
    await romeo.send(f"<a xmlns='{SM}' h='{romeo.handled - 1}'/>")  # all but m2
    await romeo.request(since=mark, timeout=5.0)
    await romeo.send(f"<a xmlns='{SM}' h='{romeo.handled}'/>")
    await until(lambda: not session(server).sm.queue, "everything acknowledged")


async def test_acknowledging_more_than_was_sent_ends_the_stream(server: XMPPServer) -> None:
    """§4: <undefined-condition/> with <handled-count-too-high h send-count/>."""
    c = await sm_session(server)
    await c.send(f"<a xmlns='{SM}' h='5'/>")
    error = await c.next("error")
    assert error.find(ns.clark(ns.STREAM_ERRORS, "undefined-condition")) is not None
    too_high = error.find(ns.clark(SM, "handled-count-too-high"))
    assert too_high is not None
    assert too_high.get("h") == "5" and too_high.get("send-count") == "0"


async def test_a_stale_acknowledgement_is_no_error(server: XMPPServer) -> None:
    """§4 counts wrap at 2**32, so an <a/> is read as a serial number (RFC 1982): one
    lower than the last, arriving late, acknowledges nothing new; it is not
    <handled-count-too-high/>, and later acknowledgements count from the last one."""
    c = await sm_session(server)
    for i in range(3):
        await c.send(f"<iq type='get' id='p{i}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
        await c.next("iq")
    await c.send(f"<a xmlns='{SM}' h='3'/><a xmlns='{SM}' h='1'/>")
    await c.send(f"<iq type='get' id='p3' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert (await c.next("iq")).get("id") == "p3"
    await c.send(f"<a xmlns='{SM}' h='4'/>")
    await c.send(f"<a xmlns='{SM}' h='5'/>")  # one more than sent: still too high
    error = await c.next("error")
    too_high = error.find(ns.clark(SM, "handled-count-too-high"))
    assert too_high is not None and too_high.get("send-count") == "4"


async def test_an_a_without_a_count_is_bad_format(server: XMPPServer) -> None:
    c = await sm_session(server)
    await c.send(f"<a xmlns='{SM}' h='-1'/>")
    error = await c.next("error")
    assert error.find(ns.clark(ns.STREAM_ERRORS, "bad-format")) is not None


# -- resumption (§5) ----------------------------------------------------------------------


async def test_a_broken_connection_resumes_with_what_was_not_acknowledged(
    server: XMPPServer,
) -> None:
    """§5: the session outlives its connection (no unavailable presence goes out); the
    client resumes on a new one and gets, after <resumed/>, every stanza it had not
    acknowledged and those that came meanwhile, in order; then it goes on as before."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, enabled = await romeo_with_sm(server)
    juliet.send(message(ROMEO, "one"))
    await romeo.stanzas_until(body_is("one"))
    acked = romeo.handled
    await romeo.send(f"<a xmlns='{SM}' h='{acked}'/>")
    juliet.send(message(ROMEO, "two"))
    await romeo.stanzas_until(body_is("two"))
    romeo.abort()
    await hibernating(server)
    juliet.send(message(ROMEO, "three"))
    await settle(server, juliet)

    again, features = await SMClient.login(server)
    assert features.find(ns.clark(SM, "sm")) is not None
    await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{acked}'/>")
    resumed = await again.next("resumed")
    assert resumed.get("previd") == enabled.get("id")
    assert resumed.get("h") == "1"  # romeo's <presence/>
    assert bodies(await again.stanzas_until(body_is("three"))) == ["two", "three"]
    # the same session: still bound, still available, never unavailable to juliet
    await again.send("<message to='juliet@localhost' type='chat'><body>back</body></message>")
    got = await juliet.expect(body_is("back"))
    assert got.get("from") == ROMEO
    seen = [*await juliet.drain()]
    assert not [s for s in seen if s.name == "presence" and s.get("type") == "unavailable"]


async def test_resuming_while_the_old_connection_is_open_closes_it_with_conflict(
    server: XMPPServer,
) -> None:
    """§5: the server may not have noticed the old connection die; a resume takes the
    session over, and "the server SHOULD send a 'conflict' stream error and close that
    stream"."""
    old, enabled = await romeo_with_sm(server)
    again, _ = await SMClient.login(server)
    await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{old.handled}'/>")
    await again.next("resumed")
    error = await old.next("error")
    assert error.namespace == ns.STREAMS
    assert error.find(ns.clark(ns.STREAM_ERRORS, "conflict")) is not None
    with pytest.raises(EOFError):
        await old.next()
    await again.send(f"<iq type='get' id='p1' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert (await again.next("iq")).get("type") == "result"
    assert session(server) is not None and session(server).transport is not None


async def test_what_follows_resume_in_the_same_write_is_read_after_it(
    server: XMPPServer,
) -> None:
    """A client that pipelines after <resume/> (a second <resume/>, a bind) has them
    read once the session is resumed: as elements of a bound stream, so the session
    keeps its address and the second <resume/> is unexpected-request."""
    romeo, enabled = await romeo_with_sm(server)
    romeo.abort()
    await hibernating(server)
    again, _ = await SMClient.login(server)
    resume = f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='0'/>"
    await again.send(
        resume
        + resume
        + f"<iq type='set' id='b2'><bind xmlns='{ns.BIND}'><resource>other</resource></bind></iq>"
    )
    await again.next("resumed")
    failed = await again.stanzas_until(lambda s: s.name == "failed")
    assert failed[-1].find(ns.clark(ns.STANZAS, "unexpected-request")) is not None
    answer = await again.stanzas_until(lambda s: s.name == "iq" and s.get("id") == "b2")
    assert answer[-1].get("type") == "error"
    assert session(server) is not None and str(session(server).jid) == ROMEO
    assert session(server, "romeo@localhost/other") is None


async def test_a_resumed_stream_asks_for_acknowledgements_again(server: XMPPServer) -> None:
    """The old connection's unanswered <r/> dies with it: after the resume, a stanza
    sent is followed by a new request."""
    [juliet] = await online(server, "juliet@localhost/balcony")
    old, enabled = await romeo_with_sm(server)
    juliet.send(message(ROMEO, "one"))
    await old.stanzas_until(body_is("one"))  # with an <r/> it never answers
    sm = session(server).sm
    await until(lambda: len(sm.queue) == old.handled and sm.requested, "all sent, asked")
    again, _ = await SMClient.login(server)
    await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{old.handled}'/>")
    await again.next("resumed")
    mark = len(again.seen)
    juliet.send(message(ROMEO, "two"))
    await again.stanzas_until(body_is("two"))
    await again.request(since=mark)


async def test_a_stanza_for_a_closing_session_waits_for_the_resume(server: XMPPServer) -> None:
    """Between the server ending a silent client's stream (ping timeout: resumable) and
    the connection's end, a stanza routed to the session is kept for the resume."""
    romeo, enabled = await romeo_with_sm(server)
    s = session(server)
    s.end("connection-timeout", "no answer to ping")
    gap = message(ROMEO, "in the gap")
    gap.set("from", "juliet@localhost/balcony")
    s.deliver(gap)  # as the router would, before the transport reports its end
    await hibernating(server)
    again, _ = await SMClient.login(server)
    await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{romeo.handled}'/>")
    await again.next("resumed")
    await again.stanzas_until(body_is("in the gap"))


async def test_shutdown_stores_what_a_hibernating_session_waited_for(make_server: Any) -> None:
    """At shutdown a session waiting for a resume ends; its messages go to offline
    storage before storage closes, for the next login after a restart."""
    server = await make_server()
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    romeo.abort()
    await hibernating(server)
    juliet.send(message("romeo@localhost", "while you sleep"))
    await settle(server, juliet)
    await server.stop()
    restarted = await make_server()
    later = await Peer.connect(restarted, "romeo@localhost/garden")
    later.presence()
    await later.expect(body_is("while you sleep"))


@pytest.mark.parametrize("attached", [True, False], ids=["live", "hibernating"])
async def test_resuming_with_too_high_a_count_ends_that_stream_only(
    server: XMPPServer, attached: bool
) -> None:
    """§4 (Error Handling): an 'h' acknowledging more than was sent is a stream error,
    <undefined-condition/> with <handled-count-too-high/>, on the stream that sent it;
    the session it named goes on: live, or still waiting for a proper resume."""
    old, enabled = await romeo_with_sm(server)
    if not attached:
        old.abort()
        await hibernating(server)
    wrong, _ = await SMClient.login(server)
    await wrong.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='99'/>")
    error = await wrong.next("error")
    too_high = error.find(ns.clark(SM, "handled-count-too-high"))
    assert error.find(ns.clark(ns.STREAM_ERRORS, "undefined-condition")) is not None
    assert too_high is not None and too_high.get("h") == "99"
    if attached:
        await old.send(f"<iq type='get' id='p1' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
        assert (await old.next("iq")).get("type") == "result"
    else:
        again, _ = await SMClient.login(server)
        await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{old.handled}'/>")
        await again.next("resumed")


@pytest.mark.parametrize("previd", ["unknown", "juliets"])
async def test_resuming_an_unknown_or_someone_elses_session_fails(
    server: XMPPServer, previd: str
) -> None:
    """§5: <failed><item-not-found/></failed>, after which the client binds anew."""
    if previd == "juliets":
        juliet, _ = await SMClient.login(server, "juliet")
        await juliet.bind("balcony")
        previd = (await juliet.enable()).get("id") or ""
    c, _ = await SMClient.login(server)
    await c.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
    failed = await c.next("failed")
    assert failed.find(ns.clark(ns.STANZAS, "item-not-found")) is not None
    await c.bind()


async def test_resume_on_a_bound_stream_fails(server: XMPPServer) -> None:
    c, enabled = await romeo_with_sm(server)
    await c.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='0'/>")
    failed = await c.stanzas_until(lambda s: s.name == "failed")
    assert failed[-1].find(ns.clark(ns.STANZAS, "unexpected-request")) is not None


async def test_a_session_not_resumed_in_time_ends_and_its_messages_go_offline(
    make_server: Any,
) -> None:
    """After ``sm.resume_timeout`` the session ends (unavailable presence goes out) and
    the messages it never acknowledged are stored offline (XEP-0160) for the next
    login, with those that came while it waited."""
    server = await make_server(sm__resume_timeout=1.0)
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, enabled = await romeo_with_sm(server)
    assert enabled.get("max") == "1"
    juliet.send(message(ROMEO, "one"))
    await romeo.stanzas_until(body_is("one"))
    aborted = datetime.datetime.now(datetime.UTC)
    romeo.abort()
    await hibernating(server)
    juliet.send(message("romeo@localhost", "two"))
    await settle(server, juliet)
    ended = datetime.datetime.now(datetime.UTC)  # "two" waits for the resume meanwhile
    await juliet.expect(
        lambda s: s.name == "presence" and s.get("type") == "unavailable", "romeo leaving"
    )
    await settle(server, juliet)
    later = await Peer.connect(server, "romeo@localhost/garden")
    later.presence()
    first = await later.expect(body_is("one"))
    second = await later.expect(body_is("two"))
    # §4: "servers SHOULD add a delay element with the original (failed) delivery
    # timestamp": when each was given to the session, not when it was stored
    for got, given_by in ((first, aborted), (second, ended)):
        delays = got.findall(ns.clark(ns.DELAY, "delay"))
        assert [d.get("from") for d in delays] == [DOMAIN]
        stamp = datetime.datetime.fromisoformat(delays[0].get("stamp") or "")
        assert stamp <= given_by, (stamp, given_by)


async def test_what_does_not_fit_offline_is_bounced_to_its_sender(make_server: Any) -> None:
    """Messages a session ended without acknowledging go to the account again; with
    nothing online and the offline store full, each that does not fit is answered to its
    sender with service-unavailable (XEP-0160 §3), as one sent then would be, not lost
    without a word."""
    server = await make_server(offline__quota=1)
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server, resume=False)
    for body in ("one", "two", "three"):
        juliet.send(message(ROMEO, body))
    await romeo.stanzas_until(body_is("three"))
    romeo.abort()
    for body in ("two", "three"):
        error = await juliet.expect(
            lambda s, b=body: s.get("type") == "error" and s.findtext("body") == b,  # type: ignore[misc]
            f"the bounce of {body}",
        )
        assert error.get("from") == "romeo@localhost"
        condition = error.find(ns.clark(ns.CLIENT, "error"))
        assert condition is not None
        assert condition.find(ns.clark(ns.STANZAS, "service-unavailable")) is not None
    assert await server.storage.offline.count("romeo@localhost") == 1


async def test_binding_the_resource_of_a_hibernating_session_replaces_it(
    server: XMPPServer,
) -> None:
    """A client that binds anew instead of resuming replaces the waiting session (RFC
    6120 §7.7.2.2); what that one had not acknowledged reaches the new session."""
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    juliet.send(message(ROMEO, "lost?"))
    await romeo.stanzas_until(body_is("lost?"))
    romeo.abort()
    await hibernating(server)
    fresh, _ = await SMClient.login(server)
    await fresh.bind()
    await fresh.send("<presence/>")
    got = await fresh.stanzas_until(body_is("lost?"))
    assert got[-1].get("to") == "romeo@localhost"
    assert session(server).sm is None  # the new session, without stream management


async def test_what_a_replaced_session_had_not_acknowledged_arrives_in_order(
    server: XMPPServer,
) -> None:
    """Three messages the hibernating session never acknowledged go to the account
    again when a new session binds its resource; they reach it in the order sent (RFC
    6120 §10.1), those stored before its presence too."""
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    for body in ("k0", "k1", "k2"):
        juliet.send(message(ROMEO, body))
    await romeo.stanzas_until(body_is("k2"))
    romeo.abort()
    await hibernating(server)
    fresh, _ = await SMClient.login(server)
    await fresh.bind()
    await fresh.send("<presence/>")
    got: list[str] = []
    while len(got) < 3:
        got += bodies([await fresh.next()])
    assert got == ["k0", "k1", "k2"]


async def test_a_clean_close_sends_what_was_not_acknowledged_to_another_resource(
    server: XMPPServer,
) -> None:
    """A client that ends its stream does not resume: a message it did not acknowledge
    goes to the account again, here to its other available resource."""
    await befriend(server, "romeo", "juliet")
    [garden, juliet] = await online(server, "romeo@localhost/garden", "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    juliet.send(message(ROMEO, "for the orchard"))
    await romeo.stanzas_until(body_is("for the orchard"))
    await romeo.send("</stream:stream>")
    got = await garden.expect(body_is("for the orchard"))
    assert got.get("to") == "romeo@localhost"


async def test_a_message_another_resource_had_is_not_sent_to_the_account_again(
    server: XMPPServer,
) -> None:
    """A chat message to the bare JID reaches both resources of equal priority (RFC 6121
    §8.5.2.1.1); the one with stream management closes without acknowledging it, but
    the other one has it, so nothing is sent on: no second copy."""
    await befriend(server, "romeo", "juliet")
    [garden, juliet] = await online(server, "romeo@localhost/garden", "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    juliet.send(message("romeo@localhost", "to both"))
    await romeo.stanzas_until(body_is("to both"))
    await garden.expect(body_is("to both"))
    await romeo.send("</stream:stream>")
    await until(lambda: session(server) is None, "the orchard session ends")
    await nothing_more(juliet, garden, "to both")


async def test_a_message_another_resource_had_as_a_carbon_copy_is_not_sent_again(
    server: XMPPServer,
) -> None:
    """XEP-0280: the other resource got a ``<received/>`` copy of the message to the
    orchard, so the orchard closing without acknowledging it sends nothing on."""
    await befriend(server, "romeo", "juliet")
    [garden, juliet] = await online(server, "romeo@localhost/garden", "juliet@localhost/balcony")
    await enable_carbons(garden)
    romeo, _ = await romeo_with_sm(server)
    juliet.send(message(ROMEO, "for the orchard"))
    await romeo.stanzas_until(body_is("for the orchard"))
    copy = await garden.expect(lambda s: s.find(ns.clark(ns.CARBONS, "received")) is not None)
    assert copy.get("from") == "romeo@localhost"
    await romeo.send("</stream:stream>")
    await until(lambda: session(server) is None, "the orchard session ends")
    await nothing_more(juliet, garden, "for the orchard")


async def grove_with_sm(server: XMPPServer) -> SMClient:
    """Romeo's second resource, the grove: bound, stream management on, available."""
    grove, _ = await SMClient.login(server)
    await grove.bind("grove")
    await grove.enable()
    await grove.send("<presence/>")
    await grove.stanzas_until(
        lambda s: s.name == "presence" and s.get("from") == "romeo@localhost/grove"
    )
    return grove


def picture_link(to: str) -> Element:
    """A chat message with only an XEP-0066 link: nothing XEP-0352 calls urgent."""
    link = Element("message", ns.CLIENT, {"to": to, "type": "chat"})
    oob = Element("x", "jabber:x:oob")
    oob.append(Element("url", "jabber:x:oob", text="https://example.org/balcony.jpg"))
    link.append(oob)
    return link


async def to_both_with_sm(server: XMPPServer) -> tuple[Peer, SMClient, SMClient]:
    """Romeo's orchard and grove, both with stream management and priority 0, have each
    received Juliet's chat message "to both" to his bare JID (RFC 6121 §8.5.2.1.1)."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    orchard, _ = await romeo_with_sm(server)
    grove = await grove_with_sm(server)
    juliet.send(message("romeo@localhost", "to both"))
    await orchard.stanzas_until(body_is("to both"))
    await grove.stanzas_until(body_is("to both"))
    return juliet, orchard, grove


async def test_the_last_resource_to_lose_a_message_sends_it_on_once(server: XMPPServer) -> None:
    """Both resources got the message to the bare JID and neither acknowledged it: the
    first to close leaves it to the other, the last sends it to the account, which
    has nothing online now, so it is stored offline (XEP-0160), once."""
    juliet, orchard, grove = await to_both_with_sm(server)
    await orchard.send("</stream:stream>")
    await until(lambda: session(server) is None, "the orchard session ends")
    await grove.send("</stream:stream>")
    await until(lambda: session(server, "romeo@localhost/grove") is None, "the grove ends")
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 1
    later = await Peer.connect(server, "romeo@localhost/later")
    later.presence()
    stored = await later.expect(body_is("to both"))
    assert stored.find(ns.clark(ns.DELAY, "delay")) is not None
    await nothing_more(juliet, later, "to both")


async def test_a_message_one_resource_acknowledged_is_not_sent_on_by_the_other(
    server: XMPPServer,
) -> None:
    """The orchard acknowledges the message to the bare JID (XEP-0198 ``<a/>``); the
    grove closes without doing so: the account had it, nothing is stored offline."""
    juliet, orchard, grove = await to_both_with_sm(server)
    await orchard.send(f"<a xmlns='{SM}' h='{orchard.handled}'/>")
    await until(lambda: not session(server).sm.queue, "the orchard's acknowledgement")
    await grove.send("</stream:stream>")
    await until(lambda: session(server, "romeo@localhost/grove") is None, "the grove ends")
    await orchard.send("</stream:stream>")
    await until(lambda: session(server) is None, "the orchard session ends")
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 0


async def test_an_iq_not_acknowledged_is_answered_recipient_unavailable(
    server: XMPPServer,
) -> None:
    """An iq get the ended session never acknowledged (nor answered) gets an error for
    its sender (RFC 6120 §8.3.3.16)."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    query = Element("iq", ns.CLIENT, {"type": "get", "to": ROMEO, "id": "v1"})
    query.append(Element("query", "jabber:iq:version"))
    juliet.send(query)
    await romeo.stanzas_until(lambda s: s.name == "iq" and s.get("id") == "v1")
    await romeo.send("</stream:stream>")
    error = await juliet.expect(lambda s: s.name == "iq" and s.get("id") == "v1")
    assert error.get("type") == "error"
    condition = error.find(ns.clark(ns.CLIENT, "error"))
    assert condition is not None
    assert condition.find(ns.clark(ns.STANZAS, "recipient-unavailable")) is not None


async def test_an_iq_a_room_passed_on_is_answered_when_the_session_ends(
    server: XMPPServer,
) -> None:
    """A MUC room passes Juliet's iq on to Romeo's session (XEP-0045 §7.5), which ends
    without answering it: the room gets recipient-unavailable, and passes that back to
    Juliet (RFC 6120 §8.2.3: every get is answered)."""
    room = f"verona@conference.{DOMAIN}"
    romeo, _ = await romeo_with_sm(server)
    await romeo.send(f"<presence to='{room}/romeo'><x xmlns='{ns.MUC}'/></presence>")
    await romeo.stanzas_until(lambda s: s.name == "presence" and s.get("from") == f"{room}/romeo")
    # an instant room (XEP-0045 §10.1.2), open to others
    await romeo.send(
        f"<iq type='set' id='c1' to='{room}'><query xmlns='{ns.MUC}#owner'>"
        "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
    )
    await romeo.stanzas_until(lambda s: s.name == "iq" and s.get("id") == "c1")
    [juliet] = await online(server, "juliet@localhost/balcony")
    juliet.send_xml(f"<presence to='{room}/juliet'><x xmlns='{ns.MUC}'/></presence>")
    joined = await juliet.expect(lambda s: s.get("from") == f"{room}/juliet")
    assert joined.name == "presence" and joined.get("type") is None, joined.serialize()
    query = Element("iq", ns.CLIENT, {"type": "get", "to": f"{room}/romeo", "id": "v1"})
    query.append(Element("query", "jabber:iq:version"))
    juliet.send(query)
    await romeo.stanzas_until(lambda s: s.name == "iq" and s.get("id") is not None)
    await romeo.send("</stream:stream>")
    error = await juliet.expect(lambda s: s.name == "iq" and s.get("id") == "v1")
    assert error.get("type") == "error" and error.get("from") == f"{room}/romeo"


async def test_too_many_unacknowledged_stanzas_end_the_stream(make_server: Any) -> None:
    """``sm.max_queue``: a client that never acknowledges is cut off with
    resource-constraint, and is given no more than the limit first.  With its own
    presence unacknowledged, ten messages handled in one batch give it the first two,
    then the stream error; all ten wait for the next session, in order."""
    server = await make_server(sm__max_queue=3)
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    juliet.send_xml(
        "".join(f"<message to='{ROMEO}'><body>m{i}</body></message>" for i in range(10))
    )
    with pytest.raises(EOFError):
        for _ in range(50):  # bounded: the stream ends after a few stanzas
            await romeo.next()
    bodies = [e.findtext(ns.clark(ns.CLIENT, "body")) for e in romeo.seen if e.name == "message"]
    assert bodies == ["m0", "m1"]  # and the presence echo: three unacknowledged
    [error] = [e for e in romeo.seen if e.namespace == ns.STREAMS and e.name == "error"]
    assert error.find(ns.clark(ns.STREAM_ERRORS, "resource-constraint")) is not None
    later = await Peer.connect(server, "romeo@localhost/garden")
    later.presence()
    for i in range(10):
        await later.expect(body_is(f"m{i}"))


# -- stored messages (XEP-0160) under stream management -----------------------------------


async def _store_for_romeo(server: XMPPServer, count: int, size: int) -> Peer:
    """Juliet online, ``count`` messages from her stored for Romeo (``m0 xxx``...)."""
    [juliet] = await online(server, "juliet@localhost/balcony")
    for i in range(count):
        juliet.send(message("romeo@localhost", f"m{i} " + "x" * size))
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == count
    return juliet


def _word(el: Element) -> str:
    """A message's label: the first word of its body, else the id of its receipt."""
    body = el.findtext(ns.clark(ns.CLIENT, "body"))
    if body is not None:
        return body.split(" ")[0]
    return next((child.get("id") or "" for child in el), "")


async def _read_acknowledging(c: SMClient, until: str, timeout: float = 20.0) -> list[str]:
    """The label (``_word``) of each message as it comes, each ``<r/>`` answered at once
    with the count so far, up to the message labelled ``until``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: list[str] = []
    while not got or got[-1] != until:
        if not c.inbox:
            assert not c.ended, f"the stream ended after {got}"
            left = deadline - loop.time()
            assert left > 0, f"{until} never came; got {got}"
            c._take(await asyncio.wait_for(c.raw.reader.read(65536), left))
            continue
        el = c.inbox.pop(0)
        if el.namespace == SM and el.name == "r":
            await c.send(f"<a xmlns='{SM}' h='{c.handled}'/>")
        elif el.name == "message":
            got.append(_word(el))
    return got


async def test_a_stored_backlog_larger_than_the_queue_waits_for_acknowledgements(
    make_server: Any,
) -> None:
    """XEP-0160 with XEP-0198: stored messages are given as the client acknowledges
    them, so a backlog of more than ``sm.max_queue`` stanzas and more than
    ``limits.write_buffer_bytes`` reaches a client that answers every <r/>: each
    message once, in order, without a stream error, and storage is empty after."""
    server = await make_server(
        sm__max_queue=5,
        limits__stanza_bytes=32 * 1024,
        limits__write_buffer_bytes=64 * 1024,
        limits__c2s_rate=0,
    )
    await _store_for_romeo(server, 20, 10_000)
    romeo, _ = await romeo_with_sm(server)
    assert await _read_acknowledging(romeo, "m19") == [f"m{i}" for i in range(20)]
    await until(lambda: session(server) is not None, "still online")
    for _ in range(100):
        if await server.storage.offline.count("romeo@localhost") == 0:
            break
        await asyncio.sleep(0.02)
    assert await server.storage.offline.count("romeo@localhost") == 0


async def test_a_stored_message_as_large_as_the_queue_allows_is_delivered(
    make_server: Any,
) -> None:
    """A message within ``limits.stanza_bytes`` grows by its <delay/> stamp when it is
    delivered: with ``limits.write_buffer_bytes`` equal to the stanza limit it is still
    given to a XEP-0198 client, alone in the queue, not refused at every login."""
    server = await make_server(
        limits__stanza_bytes=65536, limits__write_buffer_bytes=65536, limits__c2s_rate=0
    )
    await _store_for_romeo(server, 1, 65_420)  # just within the limit as sent
    romeo, _ = await romeo_with_sm(server)
    assert await _read_acknowledging(romeo, "m0") == ["m0"]


async def test_stored_messages_held_by_csi_count_towards_the_queue(make_server: Any) -> None:
    """XEP-0352 with XEP-0160 and XEP-0198: stored receipts wait while the client is
    inactive and go out with the next message that has a body; the delivery of stored
    messages counts them as given already, so they never overflow ``sm.max_queue``."""
    server = await make_server(sm__max_queue=5, limits__c2s_rate=0)
    [juliet] = await online(server, "juliet@localhost/balcony")
    labels = []
    for i in range(15):
        if i % 3 == 0:
            juliet.send(message("romeo@localhost", f"m{i}"))
            labels.append(f"m{i}")
        else:
            juliet.send_xml(
                f"<message to='romeo@localhost'><received xmlns='urn:xmpp:receipts' id='r{i}'/>"
                "</message>"
            )
            labels.append(f"r{i}")
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 15
    c, _ = await SMClient.login(server)
    await c.bind()
    await c.enable()
    await c.send("<inactive xmlns='urn:xmpp:csi:0'/><presence/>")
    assert await _read_acknowledging(c, "m12") == labels[:13]


async def test_a_backlog_left_goes_to_a_connected_session_not_a_hibernating_one(
    make_server: Any,
) -> None:
    """The phone breaks in the middle of its stored messages; the tablet hibernates
    (XEP-0198) and the desktop is connected: the rest go to the desktop at once, not to
    the tablet, which may not come back before ``sm.resume_timeout``."""
    server = await make_server(limits__c2s_rate=0)
    await _store_for_romeo(server, 60, 100_000)  # more than the kernel's buffers hold
    phone, _ = await SMClient.login(server, receive_window=16384)
    await phone.bind("phone")
    await phone.send("<presence/>")  # the backlog begins; the phone reads no more
    tablet, _ = await SMClient.login(server)
    await tablet.bind("tablet")
    await tablet.enable()
    await tablet.send("<presence/>")
    await tablet.stanzas_until(lambda s: s.name == "presence")
    tablet.abort()
    await hibernating(server, "romeo@localhost/tablet")
    desktop = await Peer.connect(server, "romeo@localhost/desktop")
    desktop.presence()
    await desktop.expect(lambda s: s.name == "presence", "its own presence")
    phone.abort()
    last = await desktop.expect(body_is("m59 " + "x" * 100_000), "the last stored message")
    assert last.find(ns.clark(ns.DELAY, "delay")) is not None


async def test_a_backlog_cut_by_a_broken_connection_goes_on_after_the_resume(
    make_server: Any,
) -> None:
    """XEP-0198 §5 with XEP-0160: the connection breaks in the middle of the stored
    messages; a message sent meanwhile waits behind them.  After the resume the client
    gets what it had not acknowledged, the rest of the stored messages, then that one:
    every message once, in the order sent."""
    server = await make_server(sm__max_queue=4, limits__c2s_rate=0)
    juliet = await _store_for_romeo(server, 12, 100)
    romeo, enabled = await romeo_with_sm(server)
    before = await _read_acknowledging(romeo, "m1")
    # what came with m1 in the same read was received too (and counts in ``handled``)
    before += [_word(el) for el in romeo.inbox if el.name == "message"]
    romeo.abort()
    await hibernating(server)
    juliet.send(message("romeo@localhost", "live"))  # (whenever it arrives: behind them)
    again, _ = await SMClient.login(server)
    await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{romeo.handled}'/>")
    await again.next("resumed")
    again.handled += romeo.handled  # the count goes on from the old stream's
    after = await _read_acknowledging(again, "live")
    assert before + after == [*(f"m{i}" for i in range(12)), "live"]


# -- slixmpp --------------------------------------------------------------------------------


async def test_slixmpp_resumes_its_session(server: XMPPServer) -> None:
    """slixmpp's ``xep_0198`` enables resumption at login and, reconnecting after its
    connection broke, resumes and gets what was sent meanwhile."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    client = await slix_connect(server, "romeo@localhost/orchard", plugins=("xep_0198",))
    loop = asyncio.get_running_loop()
    resumed: asyncio.Future[Any] = loop.create_future()
    bodies_got: list[str] = []
    client.add_event_handler("session_resumed", lambda s: resumed.set_result(s))
    client.add_event_handler("message", lambda m: bodies_got.append(m["body"]))
    try:
        await until(lambda: client.plugin["xep_0198"].sm_id is not None, "sm enabled")
        client.send_presence()
        await settle(server, juliet)
        client.transport.abort()
        await hibernating(server)
        juliet.send(message(ROMEO, "while you were away"))
        await settle(server, juliet)
        client.connect("127.0.0.1", server.ports["c2s"])
        await asyncio.wait_for(resumed, 10)
        await until(lambda: "while you were away" in bodies_got, "the queued message")
    finally:
        client.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.disconnected, 5)


async def test_what_csi_held_for_a_session_that_ends_is_undelivered_too(
    server: XMPPServer,
) -> None:
    """XEP-0352 holds a message with no urgent payload for an inactive client; the
    connection of its non-resumable session breaks before anything sends it: it was
    never written, so it is undelivered like the unacknowledged ones, and with nothing
    else online it is stored offline (XEP-0160)."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server, resume=False)
    await romeo.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    await until(lambda: session(server)._urgent is not None, "the client is inactive")
    juliet.send(picture_link(ROMEO))
    await settle(server, juliet)
    assert session(server)._held, "held for the inactive client"
    romeo.abort()
    await until(lambda: session(server) is None, "the orchard session ends")
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 1


async def test_a_message_held_for_an_inactive_resource_counts_as_held_by_it(
    server: XMPPServer,
) -> None:
    """The orchard is inactive (XEP-0352), so a message to the bare JID with no urgent
    payload waits there, while the grove receives it and closes without acknowledging
    it.  The orchard still holds it: nothing is sent on, and when it is active again it
    gets the message once."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    orchard, _ = await romeo_with_sm(server)
    await orchard.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    await until(lambda: session(server)._urgent is not None, "the orchard is inactive")
    grove = await grove_with_sm(server)
    juliet.send(picture_link("romeo@localhost"))
    is_link = lambda s: s.name == "message" and s.find("{jabber:x:oob}x") is not None  # noqa: E731
    await grove.stanzas_until(is_link)
    await grove.send("</stream:stream>")
    await until(lambda: session(server, "romeo@localhost/grove") is None, "the grove ends")
    await settle(server, juliet)
    await orchard.send("<active xmlns='urn:xmpp:csi:0'/><r xmlns='urn:xmpp:sm:3'/>")
    await orchard.stanzas_until(lambda s: s.namespace == SM and s.name == "a")
    assert len([s for s in orchard.seen if is_link(s)]) == 1
    assert await server.storage.offline.count("romeo@localhost") == 0


async def test_a_resumed_stream_begins_active(server: XMPPServer) -> None:
    """XEP-0352 §4.2: a stream always begins active, a resumed one too (the state is
    not restored on resumption): a message the client was inactive for before its
    connection broke is resent at once, and the next one is not held."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, enabled = await romeo_with_sm(server)
    await romeo.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    await until(lambda: session(server)._urgent is not None, "the orchard is inactive")
    romeo.abort()
    await hibernating(server)
    again, _ = await SMClient.login(server)
    await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{romeo.handled}'/>")
    await again.next("resumed")
    is_link = lambda s: s.name == "message" and s.find("{jabber:x:oob}x") is not None  # noqa: E731
    juliet.send(picture_link(ROMEO))
    await again.stanzas_until(is_link)
    assert session(server)._urgent is None


async def test_what_csi_held_for_a_connection_still_open_is_resent_on_resume(
    server: XMPPServer,
) -> None:
    """XEP-0352 with XEP-0198 §5: Romeo's phone was inactive and its connection, still
    open to the server, is dead; a resume takes the session over.  Juliet's "away" and
    her typing notification, held for the inactive client, come after <resumed/> with
    what was not acknowledged, and before her next presence: not after it (which left
    her away), and not only once the client next sent something."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, enabled = await romeo_with_sm(server)
    await romeo.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    await until(lambda: session(server)._urgent is not None, "the orchard is inactive")
    juliet.send_xml("<presence><show>away</show></presence>")
    juliet.send_xml(
        f"<message to='{ROMEO}' type='chat'>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )

    def held() -> bytes:
        return b"".join(data for data, _ in session(server)._held)

    await until(lambda: b"<show>away" in held() and b"composing" in held(), "both held")
    again, _ = await SMClient.login(server)
    await again.send(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='{romeo.handled}'/>")
    await again.next("resumed")
    juliet.send_xml("<presence><status>back</status></presence>")
    got = await again.stanzas_until(
        lambda s: s.name == "presence" and s.findtext("{jabber:client}status") == "back"
    )
    shows = [s.findtext("{jabber:client}show") for s in got if s.name == "presence"]
    assert shows[-2:] == ["away", None]
    composing = "{http://jabber.org/protocol/chatstates}composing"
    assert [s for s in got if s.find(composing) is not None]


async def test_what_csi_holds_for_an_acknowledging_client_never_overflows_the_queue(
    make_server: Any,
) -> None:
    """XEP-0352 with XEP-0198: what is held counts towards ``sm.max_queue``; when one
    more would not fit with it, it goes out, and the client is asked to acknowledge, so
    a client that answers every <r/> is not cut off (``resource-constraint``) when it
    becomes active after more lazy stanzas than the queue holds."""
    server = await make_server(sm__max_queue=5, csi__queue_size=10, limits__c2s_rate=0)
    [juliet] = await online(server, "juliet@localhost/balcony")
    c = await sm_session(server)
    await c.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    await until(lambda: session(server)._urgent is not None, "the orchard is inactive")

    def receipt(i: int) -> str:
        return f"<message to='{ROMEO}'><received xmlns='urn:xmpp:receipts' id='r{i}'/></message>"

    for i in range(5):
        juliet.send_xml(receipt(i))
    await until(lambda: len(session(server)._held) == 5, "five held")
    juliet.send_xml(receipt(5))
    assert await _read_acknowledging(c, "r4", timeout=5.0) == [f"r{i}" for i in range(5)]
    await c.send(f"<a xmlns='{SM}' h='{c.handled}'/>")
    await until(lambda: not session(server).sm.queue, "r0 to r4 acknowledged")
    for i in (6, 7):
        juliet.send_xml(receipt(i))
    await until(lambda: len(session(server)._held) == 3, "r5 to r7 held")
    await c.send("<active xmlns='urn:xmpp:csi:0'/>")
    assert await _read_acknowledging(c, "r7") == ["r5", "r6", "r7"]


def reset(client: SMClient) -> None:
    """The connection breaks with a TCP reset (no FIN: the server reads no end)."""
    sock = client.raw.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.raw.writer.transport.abort()


async def test_a_reset_connection_leaves_what_csi_held_to_the_other_holders(
    server: XMPPServer,
) -> None:
    """The orchard (stream management without resumption, inactive) holds a message to
    the bare JID that the grove got too; the orchard's connection is reset, then the
    grove closes without acknowledging: nobody had the message, so the last holder
    stores it offline, once."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    orchard, _ = await romeo_with_sm(server, resume=False)
    await orchard.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    await until(lambda: session(server)._urgent is not None, "the orchard is inactive")
    grove = await grove_with_sm(server)
    juliet.send(picture_link("romeo@localhost"))
    await grove.stanzas_until(lambda s: s.find("{jabber:x:oob}x") is not None)
    assert session(server)._held, "held for the inactive orchard"
    reset(orchard)
    await until(lambda: session(server) is None, "the orchard session ends")
    await grove.send("</stream:stream>")
    await until(lambda: session(server, "romeo@localhost/grove") is None, "the grove ends")
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 1


async def test_the_message_in_a_carbon_copy_nobody_had_is_sent_on_as_itself(
    server: XMPPServer,
) -> None:
    """The orchard gets Juliet's message, the grove (XEP-0280) a ``<received/>`` copy;
    both close without acknowledging: the message itself is stored, once, from Juliet
    to the account, without the carbon wrapper."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    orchard, _ = await romeo_with_sm(server)
    grove = await grove_with_sm(server)
    await grove.send(f"<iq type='set' id='c1'><enable xmlns='{ns.CARBONS}'/></iq>")
    await grove.stanzas_until(lambda s: s.name == "iq" and s.get("id") == "c1")
    juliet.send(message(ROMEO, "via carbon"))
    await orchard.stanzas_until(body_is("via carbon"))
    await grove.stanzas_until(lambda s: s.find(ns.clark(ns.CARBONS, "received")) is not None)
    await orchard.send("</stream:stream>")
    await until(lambda: session(server) is None, "the orchard session ends")
    await grove.send("</stream:stream>")
    await until(lambda: session(server, "romeo@localhost/grove") is None, "the grove ends")
    await settle(server, juliet)
    [record] = await server.storage.offline.fetch("romeo@localhost")
    stored = parse(record.stanza)
    assert stored.get("to") == "romeo@localhost"
    assert stored.get("from") == "juliet@localhost/balcony"
    assert stored.findtext("body") == "via carbon"
    assert stored.find(ns.clark(ns.CARBONS, "received")) is None


async def test_a_carbon_copy_forged_by_a_sender_is_never_opened(server: XMPPServer) -> None:
    """Juliet sends a message dressed as a ``<received/>`` copy of one from Benvolio;
    Romeo's session closes without acknowledging it.  Only the server's own copies
    (from Romeo's bare JID) are opened: nothing from Benvolio reaches Romeo."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    romeo, _ = await romeo_with_sm(server)
    outer = Element("message", ns.CLIENT, {"to": ROMEO, "type": "chat"})
    received = Element("received", ns.CARBONS)
    forwarded = Element("forwarded", ns.FORWARD)
    inner = Element(
        "message", ns.CLIENT, {"from": "benvolio@localhost/street", "to": ROMEO, "type": "chat"}
    )
    inner.append(Element("body", ns.CLIENT, text="forged"))
    forwarded.append(inner)
    received.append(forwarded)
    outer.append(received)
    juliet.send(outer)
    await romeo.stanzas_until(lambda s: s.find(ns.clark(ns.CARBONS, "received")) is not None)
    await romeo.send("</stream:stream>")
    await until(lambda: session(server) is None, "the orchard session ends")
    await settle(server, juliet)
    stored = [parse(m.stanza) for m in await server.storage.offline.fetch("romeo@localhost")]
    senders = [m.get("from") for m in stored]
    assert "benvolio@localhost/street" not in senders


async def inactive_without_sm(server: XMPPServer) -> SMClient:
    """Romeo's orchard without stream management: bound, available, and inactive
    (XEP-0352)."""
    orchard, _ = await SMClient.login(server)
    await orchard.bind()
    await orchard.send("<presence/>")
    await orchard.stanzas_until(lambda s: s.name == "presence" and s.get("from") == ROMEO)
    await orchard.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    await until(lambda: session(server)._urgent is not None, "the orchard is inactive")
    return orchard


async def test_what_csi_held_for_a_reset_session_without_sm_is_undelivered(
    server: XMPPServer,
) -> None:
    """The orchard has no stream management; XEP-0352 holds Juliet's picture link for it
    when its connection is reset.  The link was never written, so it is undelivered,
    and with nothing else online it is stored offline (XEP-0160), not lost."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    orchard = await inactive_without_sm(server)
    juliet.send(picture_link(ROMEO))
    await settle(server, juliet)
    assert session(server)._held, "held for the inactive orchard"
    reset(orchard)
    await until(lambda: session(server) is None, "the orchard session ends")
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 1


async def test_a_message_held_for_a_resource_without_sm_is_not_sent_to_it_again(
    server: XMPPServer,
) -> None:
    """Juliet's picture link to Romeo's bare JID reaches the grove (stream management)
    and waits at the inactive orchard (no stream management).  The grove closes
    without acknowledging it: the orchard still holds it, so it is not sent to the
    account again, and when the orchard is active it gets the link once."""
    await befriend(server, "romeo", "juliet")
    [juliet] = await online(server, "juliet@localhost/balcony")
    orchard = await inactive_without_sm(server)
    grove = await grove_with_sm(server)
    juliet.send(picture_link("romeo@localhost"))
    is_link = lambda s: s.name == "message" and s.find("{jabber:x:oob}x") is not None  # noqa: E731
    await grove.stanzas_until(is_link)
    await grove.send("</stream:stream>")
    await until(lambda: session(server, "romeo@localhost/grove") is None, "the grove ends")
    await settle(server, juliet)
    await orchard.send(
        "<active xmlns='urn:xmpp:csi:0'/>"
        "<iq type='get' id='awake' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    await orchard.stanzas_until(lambda s: s.name == "iq" and s.get("id") == "awake")
    assert len([s for s in orchard.seen if is_link(s)]) == 1
    assert await server.storage.offline.count("romeo@localhost") == 0


async def test_an_offline_message_stored_again_keeps_its_one_first_stamp(
    server: XMPPServer,
) -> None:
    """A message from offline storage that a session then never acknowledged is stored
    again; delivered at last it carries one ``<delay/>``, with the time it was first
    stored (XEP-0203: "one and only one", the time it "was originally sent")."""
    [juliet] = await online(server, "juliet@localhost/balcony")
    juliet.send(message("romeo@localhost", "while you slept"))
    await settle(server, juliet)
    [record] = await server.storage.offline.fetch("romeo@localhost")
    romeo, _ = await romeo_with_sm(server)
    first = await romeo.stanzas_until(body_is("while you slept"))
    [stamp] = [d.get("stamp") for d in first[-1].findall(ns.clark(ns.DELAY, "delay"))]
    await romeo.send("</stream:stream>")
    await until(lambda: session(server) is None, "the session ends unacknowledged")
    await settle(server, juliet)
    assert await server.storage.offline.count("romeo@localhost") == 1
    later = await Peer.connect(server, "romeo@localhost/later")
    later.presence()
    again = await later.expect(body_is("while you slept"))
    delays = again.findall(ns.clark(ns.DELAY, "delay"))
    assert [(d.get("from"), d.get("stamp")) for d in delays] == [("localhost", stamp)]
    assert stamp is not None and stamp.startswith(record.stamp.strftime("%Y-%m-%dT%H:%M:%S"))
    await later.close()
