"""End-to-end client-to-server tests: slixmpp (the reference client) over real TCP+TLS
against an in-process xmppx server.  They read like RFC 6120's examples: negotiate,
bind, exchange stanzas, and check the server's answers."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ssl
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from slixmpp.exceptions import IqError

from tests.server.conftest import (
    HEADER,
    PASSWORD,
    RawConnection,
    client_tls_context,
    make_config,
    slix_close,
    slix_connect,
    xmppx_login,
)
from xmppx import ns
from xmppx.core import Element, FullJID, parse_jid
from xmppx.modules._base import Module
from xmppx.server import XMPPServer
from xmppx.server._server import _default_modules
from xmppx.server.accounts import create_account


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_login_each_mechanism_over_starttls(server: XMPPServer, mech: str) -> None:
    c = await slix_connect_mech(server, mech)
    assert str(c.boundjid) == "romeo@localhost/balcony"
    await slix_close(c)


async def slix_connect_mech(server: XMPPServer, mech: str) -> Any:
    import slixmpp

    from tests.server.conftest import client_tls_context

    client = slixmpp.ClientXMPP("romeo@localhost/balcony", PASSWORD, sasl_mech=mech)
    client.ssl_context = client_tls_context(server.config.data_dir)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: done.done() or done.set_result("ok"))
    client.add_event_handler("failed_all_auth", lambda _: done.done() or done.set_result("fail"))
    client.connect("127.0.0.1", server.ports["c2s"])
    assert await asyncio.wait_for(done, 10) == "ok"
    return client


async def test_login_direct_tls(server: XMPPServer) -> None:
    client = await slix_connect(server, "juliet@localhost/chamber", direct_tls=True)
    assert str(client.boundjid) == "juliet@localhost/chamber"
    await slix_close(client)


async def test_wrong_password_fails_and_unknown_user_looks_the_same(server: XMPPServer) -> None:
    c1 = await slix_connect(server, "romeo@localhost", "wrong", expect_failure=True)
    await slix_close(c1)
    c2 = await slix_connect(server, "nobody@localhost", "wrong", expect_failure=True)
    await slix_close(c2)
    ok = await slix_connect(server, "romeo@localhost")
    await slix_close(ok)


async def test_server_generated_resource(server: XMPPServer) -> None:
    client = await slix_connect(server, "romeo@localhost")
    assert client.boundjid.resource, "the server must generate a resource"
    await slix_close(client)


async def test_chat_between_two_clients(server: XMPPServer) -> None:
    romeo = await slix_connect(server, "romeo@localhost/orchard")
    juliet = await slix_connect(server, "juliet@localhost/balcony")
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    juliet.add_event_handler("message", lambda m: got.done() or got.set_result(m))
    romeo.send_message(mto="juliet@localhost/balcony", mbody="Art thou not Romeo?", mtype="chat")
    msg = await asyncio.wait_for(got, 5)
    assert msg["body"] == "Art thou not Romeo?"
    assert str(msg["from"]) == "romeo@localhost/orchard", "the server stamps the full JID"
    await slix_close(romeo)
    await slix_close(juliet)


async def test_message_to_bare_jid_goes_to_available_resource(server: XMPPServer) -> None:
    romeo = await slix_connect(server, "romeo@localhost/orchard")
    juliet = await slix_connect(server, "juliet@localhost/balcony")
    juliet.send_presence()
    await asyncio.sleep(0.2)
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    juliet.add_event_handler("message", lambda m: got.done() or got.set_result(m))
    romeo.send_message(mto="juliet@localhost", mbody="bare", mtype="chat")
    assert (await asyncio.wait_for(got, 5))["body"] == "bare"
    await slix_close(romeo)
    await slix_close(juliet)


async def _iq_error(client: Any, xml: str, to: str) -> str:
    iq = client.make_iq_get(ito=to)
    iq.append(ET.fromstring(xml))
    with pytest.raises(IqError) as info:
        await iq.send(timeout=5)
    return str(info.value.iq["error"]["condition"])


async def test_routing_errors(server: XMPPServer) -> None:
    romeo = await slix_connect(server, "romeo@localhost/orchard")
    # unknown account, offline full JID, foreign domain (no s2s yet), unknown payload
    assert (
        await _iq_error(romeo, "<query xmlns='jabber:iq:version'/>", "nobody@localhost")
        == "service-unavailable"
    )
    assert (
        await _iq_error(romeo, "<ping xmlns='urn:xmpp:ping'/>", "juliet@localhost/nowhere")
        == "service-unavailable"
    )
    assert (
        await _iq_error(romeo, "<ping xmlns='urn:xmpp:ping'/>", "someone@example.org")
        == "remote-server-not-found"
    )
    assert (
        await _iq_error(romeo, "<query xmlns='urn:example:unknown'/>", "localhost")
        == "service-unavailable"
    )
    await slix_close(romeo)


async def test_an_element_a_namespace_does_not_define_is_not_understood(
    server: XMPPServer,
) -> None:
    """RFC 6120 §8.4: a request is its payload, the element and its namespace.  A
    ``<pong/>`` in the ping namespace, or a ``<foo/>`` in the roster's, is no request
    the server knows: ``service-unavailable``, where a ``<ping/>`` or the roster's
    ``<query/>`` gets its result."""
    romeo = await slix_connect(server, "romeo@localhost/orchard")
    assert await _iq_error(romeo, "<pong xmlns='urn:xmpp:ping'/>", "localhost") == (
        "service-unavailable"
    )
    for xml in ("<foo xmlns='jabber:iq:roster'/>", "<clock xmlns='urn:xmpp:time'/>"):
        assert await _iq_error(romeo, xml, "") == "service-unavailable", xml
    assert await _iq_error(romeo, "<query xmlns='urn:xmpp:ping'/>", "conference.localhost") == (
        "service-unavailable"
    )
    ping = romeo.make_iq_get(ito="localhost")
    ping.append(ET.fromstring("<ping xmlns='urn:xmpp:ping'/>"))
    assert (await ping.send(timeout=5))["type"] == "result"
    roster = romeo.make_iq_get()
    roster.append(ET.fromstring("<query xmlns='jabber:iq:roster'/>"))
    assert (await roster.send(timeout=5))["type"] == "result"
    await slix_close(romeo)


async def test_an_iq_without_to_is_for_the_senders_own_account(server: XMPPServer) -> None:
    """RFC 6120 §10.3.3: an iq with no 'to' is handled on behalf of the sender's account,
    exactly as one to its bare JID: the server's clock (XEP-0202) is asked of the
    server, not of an account, while a ping is answered either way."""
    romeo = await slix_connect(server, "romeo@localhost/orchard")
    for to in ("", "romeo@localhost"):
        assert await _iq_error(romeo, "<time xmlns='urn:xmpp:time'/>", to) == (
            "service-unavailable"
        ), to
        ping = romeo.make_iq_get(ito=to)
        ping.append(ET.fromstring("<ping xmlns='urn:xmpp:ping'/>"))
        assert (await ping.send(timeout=5))["type"] == "result", to
    clock = romeo.make_iq_get(ito="localhost")
    clock.append(ET.fromstring("<time xmlns='urn:xmpp:time'/>"))
    assert (await clock.send(timeout=5))["type"] == "result"
    await slix_close(romeo)


async def test_iq_results_are_never_answered(server: XMPPServer) -> None:
    """RFC 6120 §8.2.3: an iq of type result gets no response, whatever its 'to' (a
    foreign domain, a malformed JID, the server's domain with a resource, an absent
    resource); an iq get to the same addresses gets its error."""
    from tests.server.conftest import PASSWORD, client_tls_context
    from xmppx.client import Client

    romeo = await Client.connect(
        "romeo@localhost/orchard",
        PASSWORD,
        host="127.0.0.1",
        port=server.ports["c2s"],
        ssl_context=client_tls_context(server.config.data_dir),
    )
    targets = ("example.org", "a@b@c", "localhost/foo", "juliet@localhost/nowhere")
    for n, to in enumerate(targets):
        romeo.send_raw(f"<iq type='result' id='r{n}' to='{to}'/>".encode())
    for n, to in enumerate(targets):
        romeo.send_raw(
            f"<iq type='get' id='g{n}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>".encode()
        )
    answers = [await romeo.recv(timeout=5) for _ in targets]
    assert [a.get("id") for a in answers] == [f"g{n}" for n in range(len(targets))]
    assert all(a.get("type") == "error" for a in answers)
    assert romeo.queued == 0
    await romeo.close()


async def test_stanzas_carry_the_language_of_their_stream(server: XMPPServer) -> None:
    """RFC 6120 §4.7.4: a stanza without xml:lang is in the language of the stream it
    came on; delivered on a stream whose default is another one, it says so.  An
    explicit xml:lang stays, and a stream in the server's own language adds nothing."""
    from xmppx.client import Client

    async def connect(jid: str, lang: str) -> Client:
        return await xmppx_login(server, jid, lang=lang)

    xml_lang = "{http://www.w3.org/XML/1998/namespace}lang"
    romeo = await connect("romeo@localhost/orchard", "de")
    juliet = await connect("juliet@localhost/balcony", "en")
    to_juliet = "<message to='juliet@localhost/balcony' id='{}'{}><body>x</body></message>"
    romeo.send_raw(to_juliet.format("m1", "").encode())
    romeo.send_raw(to_juliet.format("m2", " xml:lang='fr'").encode())
    got = [await juliet.recv(timeout=5) for _ in range(2)]
    assert [(m.get("id"), m.get(xml_lang)) for m in got] == [("m1", "de"), ("m2", "fr")]
    juliet.send_raw(b"<message to='romeo@localhost/orchard' id='m3'><body>y</body></message>")
    back = await romeo.recv(timeout=5)
    assert back.get("id") == "m3" and back.get(xml_lang) is None
    await romeo.close()
    await juliet.close()


async def test_message_to_unknown_user_bounces(server: XMPPServer) -> None:
    romeo = await slix_connect(server, "romeo@localhost/orchard")
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    romeo.add_event_handler("message_error", lambda m: got.done() or got.set_result(m))
    romeo.send_message(mto="nobody@localhost", mbody="hello?", mtype="chat")
    err = await asyncio.wait_for(got, 5)
    assert err["error"]["condition"] == "service-unavailable"
    await slix_close(romeo)


async def test_spoofed_from_is_a_stream_error(server: XMPPServer) -> None:
    romeo = await slix_connect(server, "romeo@localhost/orchard")
    juliet = await slix_connect(server, "juliet@localhost/balcony")
    got: list[Any] = []
    juliet.add_event_handler("message", got.append)
    ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    romeo.add_event_handler("stream_error", lambda e: ended.done() or ended.set_result(e))
    romeo.send_raw(
        "<message from='juliet@localhost/balcony' to='juliet@localhost/balcony' "
        "type='chat'><body>forged</body></message>"
    )
    err = await asyncio.wait_for(ended, 5)
    assert err["condition"] == "invalid-from"
    await asyncio.sleep(0.2)
    assert not got, "a spoofed stanza must never be delivered"
    await slix_close(juliet)


async def test_resource_conflict_replaces_old_session(server: XMPPServer) -> None:
    first = await slix_connect(server, "romeo@localhost/same")
    ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    first.add_event_handler("stream_error", lambda e: ended.done() or ended.set_result(e))
    second = await slix_connect(server, "romeo@localhost/same")
    err = await asyncio.wait_for(ended, 5)
    assert err["condition"] == "conflict"
    assert str(second.boundjid) == "romeo@localhost/same"
    await slix_close(second)


async def test_ping_version_time_disco(server: XMPPServer) -> None:
    client = await slix_connect(
        server, "romeo@localhost", plugins=("xep_0030", "xep_0092", "xep_0199", "xep_0202")
    )
    rtt = await client.plugin["xep_0199"].ping("localhost", timeout=5)
    assert rtt >= 0
    version = await client.plugin["xep_0092"].get_version("localhost", timeout=5)
    assert version["software_version"]["name"] == "xmppx"
    info = await client.plugin["xep_0030"].get_info(jid="localhost", timeout=5)
    features = set(info["disco_info"]["features"])
    assert {
        "urn:xmpp:ping",
        "jabber:iq:version",
        "urn:xmpp:time",
        "http://jabber.org/protocol/disco#info",
    } <= features
    iq = client.make_iq_get(ito="localhost")
    iq.append(ET.fromstring("<time xmlns='urn:xmpp:time'/>"))
    res = (await iq.send(timeout=5)).xml.find("{urn:xmpp:time}time")
    assert res is not None and res.findtext("{urn:xmpp:time}tzo") == "+00:00"
    utc = res.findtext("{urn:xmpp:time}utc") or ""
    stamp = datetime.datetime.strptime(utc, "%Y-%m-%dT%H:%M:%S.%fZ")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((now - stamp).total_seconds()) < 60
    await slix_close(client)


async def test_idle_client_that_answers_pings_stays(make_server: Any) -> None:
    server = await make_server(ping__interval=0.3, ping__timeout=0.5)
    client = await slix_connect(server, "romeo@localhost", plugins=("xep_0199",))
    await asyncio.sleep(1.5)
    assert client.is_connected(), "a client that answers pings stays connected"
    await slix_close(client)


async def test_in_band_registration(make_server: Any) -> None:
    server = await make_server(register__enabled=True, tls__required=False)
    conn = await RawConnection.open(server)
    await conn.send(HEADER)
    features = await conn.read_until(b"</stream:features>")
    assert b"<register xmlns='http://jabber.org/features/iq-register'/>" in features
    await conn.send(b"<iq type='get' id='reg1'><query xmlns='jabber:iq:register'/></iq>")
    form = await conn.read_until(b"</iq>")
    assert b"<username/>" in form and b"<password/>" in form
    await conn.send(
        b"<iq type='set' id='reg2'><query xmlns='jabber:iq:register'>"
        b"<username>mercutio</username><password>queen mab</password></query></iq>"
    )
    done = await conn.read_until(b"id='reg2'")
    assert b"type='result' id='reg2'" in done
    await conn.send(
        b"<iq type='set' id='reg3'><query xmlns='jabber:iq:register'>"
        b"<username>mercutio</username><password>again</password></query></iq>"
    )
    taken = await conn.read_until(b"id='reg3'")
    assert b"<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in taken
    assert b"<password>" not in taken, "XEP-0077 §3.3: no password echoed in an error"
    await conn.close()
    client = await slix_connect(server, "mercutio@localhost", "queen mab")
    await slix_close(client)


async def test_registrations_sent_together_still_meet_the_hourly_limit(
    make_server: Any,
) -> None:
    """``register.per_address_per_hour`` holds for requests pipelined in one write: each
    takes its place before the server awaits anything, so only the first two of five
    make accounts and the others are refused with resource-constraint (type wait)."""
    server = await make_server(
        register__enabled=True, register__per_address_per_hour=2, tls__required=False
    )
    conn = await RawConnection.open(server)
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    await conn.send(
        b"".join(
            f"<iq type='set' id='r{i}'><query xmlns='jabber:iq:register'>"
            f"<username>guard{i}</username><password>watch{i}</password></query></iq>".encode()
            for i in range(5)
        )
    )
    refusal = b"<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
    answers = b""
    for i in range(5):
        answers = await conn.read_until(f"id='r{i}'".encode())
    results = sum(1 for i in range(5) if f"type='result' id='r{i}'".encode() in answers)
    assert results == 2
    for _ in range(3):  # the refusals' conditions follow their ids
        if answers.count(refusal) < 3:
            answers += await asyncio.wait_for(conn.reader.read(65536), 5.0)
    assert answers.count(refusal) == 3, answers
    await conn.close()
    made = [i for i in range(5) if await server.storage.accounts.exists(f"guard{i}@localhost")]
    assert len(made) == 2


async def test_registration_switched_off_is_service_unavailable(server: XMPPServer) -> None:
    """XEP-0077 §3.1: "If the host does not support In-Band Registration, it MUST
    return a <service-unavailable/> error" (and XEP-0078 §3 alike for iq:auth), an
    iq error, not the end of the stream: the client goes on to SASL."""
    conn = await RawConnection.open(server, "c2s_tls")
    await conn.send(HEADER)
    features = await conn.read_until(b"</stream:features>")
    assert b"iq-register" not in features and b"iq-auth" not in features
    for i, query in enumerate(("jabber:iq:register", "jabber:iq:auth")):
        await conn.send(f"<iq type='get' id='off{i}'><query xmlns='{query}'/></iq>".encode())
        answer = await conn.read_until(f"id='off{i}'".encode())
        assert b"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in answer
    token = base64.b64encode(f"\0romeo\0{PASSWORD}".encode()).decode()
    await conn.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode())
    assert b"<success" in await conn.read_until(b"<success")
    await conn.close()


async def test_admin_add_user_command(make_server: Any) -> None:
    server = await make_server(admins=["romeo@localhost"])
    admin = await slix_connect(server, "romeo@localhost")
    node = "http://jabber.org/protocol/admin#add-user"
    iq = admin.make_iq_set(ito="localhost")
    iq.append(
        ET.fromstring(
            f"<command xmlns='http://jabber.org/protocol/commands' action='execute' node='{node}'/>"
        )
    )
    res = await iq.send(timeout=5)
    cmd = res.xml.find("{http://jabber.org/protocol/commands}command")
    assert cmd is not None and cmd.get("status") == "executing"
    sid = cmd.get("sessionid")
    iq = admin.make_iq_set(ito="localhost")
    iq.append(
        ET.fromstring(
            f"<command xmlns='http://jabber.org/protocol/commands' node='{node}' sessionid='{sid}'>"
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field>"
            "<field var='accountjid'><value>tybalt@localhost</value></field>"
            "<field var='password'><value>prince of cats</value></field>"
            "<field var='password-verify'><value>prince of cats</value></field></x></command>"
        )
    )
    res = await iq.send(timeout=5)
    cmd = res.xml.find("{http://jabber.org/protocol/commands}command")
    assert cmd is not None and cmd.get("status") == "completed"
    await slix_close(admin)
    tybalt = await slix_connect(server, "tybalt@localhost", "prince of cats")
    await slix_close(tybalt)
    # a non-admin is refused
    juliet = await slix_connect(server, "juliet@localhost")
    iq = juliet.make_iq_set(ito="localhost")
    iq.append(
        ET.fromstring(
            f"<command xmlns='http://jabber.org/protocol/commands' action='execute' node='{node}'/>"
        )
    )
    with pytest.raises(IqError) as info:
        await iq.send(timeout=5)
    assert info.value.iq["error"]["condition"] == "forbidden"
    await slix_close(juliet)


def _command(
    node: str, sid: str = "", fields: dict[str, str] | None = None, action: str | None = None
) -> Element:
    """An XEP-0050 command iq to the server: in session ``sid`` (else ``execute``), with
    a submitted form of ``fields`` if given."""
    from xmppx.core import parse

    attrs = f" sessionid='{sid}'" if sid else ""
    if action is not None or not sid:
        attrs += f" action='{action or 'execute'}'"
    form = ""
    if fields is not None:
        form = (
            "<x xmlns='jabber:x:data' type='submit'>"
            + "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
            + "</x>"
        )
    xml = (
        f"<iq xmlns='jabber:client' type='set' to='localhost'><command xmlns="
        f"'http://jabber.org/protocol/commands' node='{node}'{attrs}>{form}</command></iq>"
    )
    return parse(xml.encode())


async def _refused(client: Any, iq: Element) -> bytes:
    """The error ``iq`` is answered with (the project's client)."""
    from xmppx.client import IqError as XIqError

    try:
        await client.iq(iq, timeout=5)
    except XIqError as exc:
        return exc.stanza.serialize()
    raise AssertionError("the command was not refused")


async def test_admin_command_sessions_belong_to_their_requester(make_server: Any) -> None:
    """XEP-0050: a command session is its requester's, for its command; a form with an
    error (XEP-0133 §4.1 wants password-verify, matching) can be sent again in the
    same session; a completed session is over."""
    server = await make_server(admins=["romeo@localhost", "juliet@localhost"])
    add = "http://jabber.org/protocol/admin#add-user"

    romeo = await xmppx_login(server, "romeo@localhost/a")
    juliet = await xmppx_login(server, "juliet@localhost/b")
    started = await romeo.iq(_command(add), timeout=5)
    cmd = started.find(ns.clark(ns.COMMANDS, "command"))
    assert cmd is not None
    sid = cmd.get("sessionid") or ""
    tybalt = {"accountjid": "tybalt@localhost", "password": "cats"}
    # another admin, or another command, cannot take the session over
    assert b"<bad-sessionid " in await _refused(juliet, _command(add, sid, tybalt))
    other = "http://jabber.org/protocol/admin#delete-user"
    assert b"<bad-sessionid " in await _refused(romeo, _command(other, sid, {"accountjids": "x"}))
    # password-verify is required; the session stays for the corrected form
    assert b"<not-acceptable " in await _refused(romeo, _command(add, sid, tybalt))
    assert not await server.storage.accounts.exists("tybalt@localhost")
    done = await romeo.iq(_command(add, sid, {**tybalt, "password-verify": "cats"}), timeout=5)
    cmd = done.find(ns.clark(ns.COMMANDS, "command"))
    assert cmd is not None and cmd.get("status") == "completed"
    assert await server.storage.accounts.exists("tybalt@localhost")
    assert b"<bad-sessionid " in await _refused(romeo, _command(add, sid, tybalt))
    await romeo.close()
    await juliet.close()


async def test_admin_commands_take_only_the_actions_they_offer(make_server: Any) -> None:
    """XEP-0050 §4.1 names five actions; one else is <malformed-action/>.  A one-stage
    command offers 'complete' only: 'prev' or 'next' is <bad-action/>, even with a
    form, and runs nothing.  Cancelling names its session (a sessionid is never empty).
    XEP-0133's accountjid is a JID: a domain's is jid-malformed, not a user name."""
    server = await make_server(admins=["romeo@localhost"])
    add = "http://jabber.org/protocol/admin#add-user"
    romeo = await xmppx_login(server, "romeo@localhost/a")
    tybalt = {"accountjid": "tybalt@localhost", "password": "cats", "password-verify": "cats"}
    assert b"<malformed-action " in await _refused(romeo, _command(add, "", tybalt, "bogus"))
    started = await romeo.iq(_command(add), timeout=5)
    cmd = started.find(ns.clark(ns.COMMANDS, "command"))
    assert cmd is not None
    sid = cmd.get("sessionid") or ""
    for action in ("prev", "next"):
        assert b"<bad-action " in await _refused(romeo, _command(add, sid, tybalt, action))
    assert b"<bad-action " in await _refused(romeo, _command(add, sid, None, "complete"))
    assert not await server.storage.accounts.exists("tybalt@localhost")
    assert b"<bad-sessionid " in await _refused(romeo, _command(add, "", None, "cancel"))
    domain = {**tybalt, "accountjid": "localhost"}
    assert b"<jid-malformed " in await _refused(romeo, _command(add, sid, domain, "complete"))
    assert not await server.storage.accounts.exists("localhost@localhost")
    done = await romeo.iq(_command(add, sid, tybalt, "complete"), timeout=5)
    cmd = done.find(ns.clark(ns.COMMANDS, "command"))
    assert cmd is not None and cmd.get("status") == "completed"
    await romeo.close()


async def test_a_command_node_describes_itself_to_admins(make_server: Any) -> None:
    """XEP-0050 §2.2: disco#info of a command's node gives the automation/command-node
    identity and the commands feature to whoever may run it, and forbidden to others."""
    from xmppx.client import IqError as XIqError

    server = await make_server(admins=["romeo@localhost"])
    node = "http://jabber.org/protocol/admin#delete-user"

    def info() -> Element:
        iq = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
        iq.append(Element("query", ns.DISCO_INFO, {"node": node}))
        return iq

    romeo = await xmppx_login(server, "romeo@localhost/a")
    query = (await romeo.iq(info(), timeout=5)).find(ns.clark(ns.DISCO_INFO, "query"))
    assert query is not None and query.get("node") == node
    identity = query.find(ns.clark(ns.DISCO_INFO, "identity"))
    assert identity is not None
    assert (identity.get("category"), identity.get("type")) == ("automation", "command-node")
    features = {f.get("var") for f in query.findall(ns.clark(ns.DISCO_INFO, "feature"))}
    assert ns.COMMANDS in features
    juliet = await xmppx_login(server, "juliet@localhost/b")
    with pytest.raises(XIqError) as refused:
        await juliet.iq(info(), timeout=5)
    assert refused.value.condition == "forbidden"
    await romeo.close()
    await juliet.close()


async def test_shutdown_sends_system_shutdown(make_server: Any) -> None:
    server = await make_server()
    client = await slix_connect(server, "romeo@localhost")
    ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client.add_event_handler("stream_error", lambda e: ended.done() or ended.set_result(e))
    await server.stop()
    err = await asyncio.wait_for(ended, 5)
    assert err["condition"] == "system-shutdown"


async def test_legacy_iq_auth_over_tls(make_server: Any) -> None:
    """XEP-0078 §3: get the fields, then set username/password/resource; the session is
    authenticated and bound in one step.  Off by default; wrong password: not-authorized."""
    off = await make_server()
    conn = await RawConnection.open(off, "c2s_tls")
    await conn.send(HEADER)
    assert b"jabber.org/features/iq-auth" not in await conn.read_until(b"</stream:features>")
    await conn.close()
    await off.stop()

    server = await make_server(users=(), auth__legacy_iq_auth=True)
    from tests.server.conftest import PASSWORD
    from xmppx.server.accounts import create_account

    await create_account(server.storage, parse_jid("bill@localhost"), PASSWORD)  # type: ignore[arg-type]
    conn = await RawConnection.open(server, "c2s_tls")
    await conn.send(HEADER)
    assert b"<auth xmlns='http://jabber.org/features/iq-auth'/>" in await conn.read_until(
        b"</stream:features>"
    )
    await conn.send(
        b"<iq type='get' id='a1'><query xmlns='jabber:iq:auth'>"
        b"<username>bill</username></query></iq>"
    )
    fields = await conn.read_until(b"id='a1'")
    assert b"<password/>" in fields and b"<resource/>" in fields
    await conn.send(
        b"<iq type='set' id='a2'><query xmlns='jabber:iq:auth'><username>bill"
        b"</username><password>wrong</password><resource>globe</resource></query></iq>"
    )
    refused = await conn.read_until(b"id='a2'")
    assert b"<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in refused
    assert b"<password>" not in refused, "XEP-0078 §3: the error does not echo it"
    await conn.send(
        b"<iq type='set' id='a3'><query xmlns='jabber:iq:auth'><username>bill"
        b"</username><password>" + PASSWORD.encode() + b"</password>"
        b"<resource>globe</resource></query></iq>"
    )
    assert b"type='result' id='a3'" in await conn.read_until(b"id='a3'")
    await conn.send(b"<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    pong = await conn.read_until(b"id='p1'")
    assert b"to='bill@localhost/globe'" in pong.split(b"id='a3'")[-1]
    await conn.close()


async def test_legacy_iq_auth_after_a_failed_sasl_attempt_is_a_policy_violation(
    make_server: Any,
) -> None:
    """XEP-0078 §7: "If a client attempts to authenticate using the 'jabber:iq:auth'
    namespace after an attempt at SASL authentication fails, the server MUST refuse the
    'jabber:iq:auth' attempt by returning a <policy-violation/> stream error"."""
    server = await make_server(auth__legacy_iq_auth=True)
    conn = await RawConnection.open(server, "c2s_tls")
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    token = base64.b64encode(b"\0romeo\0wrong").decode()
    await conn.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode())
    await conn.read_until(b"</failure>")
    await conn.send(
        b"<iq type='set' id='a1'><query xmlns='jabber:iq:auth'><username>romeo</username>"
        b"<password>" + PASSWORD.encode() + b"</password><resource>r</resource></query></iq>"
    )
    closed = await conn.read_to_eof()
    assert b"<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in closed
    assert b"type='result'" not in closed


async def test_legacy_iq_auth_failures_count_against_the_attempt_limit(
    make_server: Any,
) -> None:
    """RFC 6120 §6.4.5's limit on retries holds for XEP-0078 too: the third wrong
    password (``auth.max_attempts``) ends the stream with ``policy-violation``."""
    server = await make_server(auth__legacy_iq_auth=True)
    conn = await RawConnection.open(server, "c2s_tls")
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    for i in range(3):
        await conn.send(
            f"<iq type='set' id='w{i}'><query xmlns='jabber:iq:auth'><username>romeo"
            f"</username><password>wrong{i}</password><resource>r</resource></query></iq>".encode()
        )
        if i < 2:
            assert b"<not-authorized " in await conn.read_until(f"id='w{i}'".encode(), 10)
    closed = await conn.read_to_eof(10)
    assert b"<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in closed


@pytest.mark.parametrize("split", [False, True], ids=["one write", "tag by tag"])
async def test_the_restarted_stream_pipelined_behind_auth_is_read_after_success(
    server: XMPPServer, split: bool
) -> None:
    """RFC 6120 §6.4.6: after <success/> the client opens a new stream.  One that sends
    it (XML declaration, header, a bind and a ping) behind its <auth/>, before reading
    <success/>, has it read by the restarted stream, however TCP splits the bytes."""
    conn = await RawConnection.open(server, "c2s_tls")
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    token = base64.b64encode(f"\0romeo\0{PASSWORD}".encode()).decode()
    data = (
        f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode()
        + HEADER
        + f"<iq type='set' id='b1'><bind xmlns='{ns.BIND}'><resource>orchard</resource>".encode()
        + b"</bind></iq><iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    if split:
        for piece in data.split(b">"):
            await conn.send(piece + b">" if piece else b"")
    else:
        await conn.send(data)
    answer = await conn.read_until(b"id='p1'", 10)
    assert b"<success" in answer
    assert b"<stream:error>" not in answer
    assert b"type='result' id='b1'" in answer and b"romeo@localhost/orchard" in answer
    await conn.close()


async def test_bytes_held_behind_a_pending_login_are_bounded(make_server: Any) -> None:
    """While a login waits its turn (auth.throttle_base_ms after a failure), what the
    client sends behind its <auth/> is held unread; past limits.preauth_stanza_bytes the
    stream ends with policy-violation."""
    server = await make_server(auth__throttle_base_ms=3000, auth__throttle_max_ms=5000)
    wrong = await RawConnection.open(server, "c2s_tls")
    await wrong.send(HEADER)
    await wrong.read_until(b"</stream:features>")
    bad = base64.b64encode(b"\0romeo\0wrong").decode()
    await wrong.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{bad}</auth>".encode())
    await wrong.read_until(b"</failure>", 10)
    conn = await RawConnection.open(server, "c2s_tls")
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    token = base64.b64encode(f"\0romeo\0{PASSWORD}".encode()).decode()
    # in one write (one TLS record): reading pauses while the login waits, so bytes sent
    # later would wait in the socket, unread
    auth = f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode()
    await conn.send(auth + b" " * 12_000)
    closed = await conn.read_to_eof(10)
    assert b"<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in closed
    await wrong.close()


async def test_a_bind_without_an_id_is_bad_request_and_binding_goes_on(
    server: XMPPServer,
) -> None:
    """RFC 6120 §8.2.3: an iq needs an 'id', and a set exactly one child.  A bind that
    breaks either gets a ``bad-request`` error (type modify, RFC 6120 §8.3.3.1) and binds
    nothing; the stream stays open and a well-formed bind then succeeds (§7.6.1)."""
    raw = await RawConnection.authenticated(server)
    bind = f"<bind xmlns='{ns.BIND}'><resource>orchard</resource></bind>"
    for request in (
        f"<iq type='set'>{bind}</iq>",
        f"<iq type='set' id='two'>{bind}<ping xmlns='{ns.PING}'/></iq>",
    ):
        raw.received = b""
        await raw.send(request.encode())
        answer = await raw.read_until(b"</iq>")
        assert b"type='error'" in answer and b"<bad-request " in answer, answer
        assert b"type='modify'" in answer
        assert b"<jid>" not in answer
        if "id='two'" in request:
            assert b"id='two'" in answer, "the error keeps the request's id (§8.3.1)"
    raw.received = b""
    await raw.send(f"<iq type='set' id='b1'>{bind}</iq>".encode())
    answer = await raw.read_until(b"</iq>")
    assert b"type='result'" in answer and b"id='b1'" in answer, answer
    assert b"<jid>romeo@localhost/orchard</jid>" in answer
    await raw.send(b"</stream:stream>")
    await raw.read_to_eof(answer=False)
    await raw.close()


async def test_what_follows_the_bind_request_in_one_write_is_read_bound(
    server: XMPPServer,
) -> None:
    """A client may send its first stanzas, or XEP-0198 ``<enable/>``, right behind the
    bind request (RFC 6120 §7.1 forbids stanzas only before binding *completes*): they
    are read once the bind is answered, so they are answered as bound."""
    raw = await RawConnection.authenticated(server)
    await raw.send(
        f"<iq type='set' id='b1'><bind xmlns='{ns.BIND}'/></iq>"
        f"<iq type='get' id='p1' to='localhost'><ping xmlns='{ns.PING}'/></iq>"
        f"<enable xmlns='{ns.SM}'/>".encode()
    )
    got = await raw.read_until(b"<enabled")
    got = await raw.read_until(b"id='p1'")
    bound, pong, enabled = got.find(b"id='b1'"), got.find(b"id='p1'"), got.find(b"<enabled")
    assert 0 <= bound < min(pong, enabled), got  # (the ping is answered by a task)
    assert b"<stream:error>" not in got and b"<failed" not in got
    await raw.send(b"</stream:stream>")
    await raw.read_to_eof(answer=False)
    await raw.close()


async def test_sasl_input_is_read_one_step_at_a_time(server: XMPPServer) -> None:
    """What a client sends behind ``<auth/>`` or ``<response/>`` is read once that step
    is answered (RFC 6120 §6.4): an ``<abort/>`` sent with the ``<auth/>`` aborts that
    exchange after its challenge, and a new ``<auth/>`` behind it then succeeds."""
    raw = await RawConnection.open(server, "c2s_tls")
    await raw.send(HEADER)
    await raw.read_until(b"</stream:features>")
    first = base64.b64encode(b"n,,n=romeo,r=abcdefghijklmnop").decode()
    token = base64.b64encode(f"\0romeo\0{PASSWORD}".encode()).decode()
    await raw.send(
        f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-1'>{first}</auth>"
        f"<abort xmlns='{ns.SASL}'/>"
        f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode()
    )
    got = await raw.read_until(b"<success")
    challenge, aborted, success = (
        got.find(b"<challenge"),
        got.find(b"<aborted/>"),
        got.find(b"<success"),
    )
    assert 0 <= challenge < aborted < success, got
    assert b"<stream:error>" not in got
    await raw.close()


class LingeringTLS:
    """Direct TLS driven by hand (``ssl.MemoryBIO``): unlike asyncio's TLS transport, it
    does not answer the server's close_notify, as a client that keeps its socket open
    after the closing handshake does not."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
    ) -> None:
        self.reader, self.writer = reader, writer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.received = b""

    @classmethod
    async def open(cls, server: XMPPServer) -> LingeringTLS:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["c2s_tls"])
        conn = cls(reader, writer, client_tls_context(server.config.data_dir))
        while True:
            try:
                conn.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await conn._pump()
        await conn._flush()
        return conn

    async def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _pump(self) -> None:
        await self._flush()
        chunk = await asyncio.wait_for(self.reader.read(65536), 5)
        if not chunk:
            raise ConnectionError("closed")
        self.incoming.write(chunk)

    async def send(self, data: bytes) -> None:
        self.tls.write(data)
        await self._flush()

    async def read_until(self, marker: bytes) -> bytes:
        while marker not in self.received:
            try:
                self.received += self.tls.read(65536)
            except ssl.SSLWantReadError:
                await self._pump()
        return self.received


async def test_a_session_its_client_closes_over_tls_ends_at_once(server: XMPPServer) -> None:
    """The client sends ``</stream:stream>`` and gets ours (RFC 6120 §4.4) but leaves its
    TLS connection open: the session is over all the same, so a chat message to its
    full JID is not lost in a closing socket but goes to the account (RFC 6121
    §8.5.3.2.1), here to offline storage."""
    conn = await LingeringTLS.open(server)
    await conn.send(HEADER)
    await conn.read_until(b"</stream:features>")
    token = base64.b64encode(f"\0romeo\0{PASSWORD}".encode()).decode()
    await conn.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>".encode())
    await conn.read_until(b"<success")
    await conn.send(HEADER)
    await conn.send(
        f"<iq type='set' id='b1'><bind xmlns='{ns.BIND}'><resource>orchard</resource>"
        "</bind></iq>".encode()
    )
    await conn.read_until(b"</iq>")
    await conn.send(b"</stream:stream>")
    await conn.read_until(b"</stream:stream>")
    orchard = parse_jid("romeo@localhost/orchard")
    assert isinstance(orchard, FullJID)
    for _ in range(50):
        if server.sessions.get(orchard) is None:
            break
        await asyncio.sleep(0.01)
    assert server.sessions.get(orchard) is None, "still bound with the socket open"
    juliet = await slix_connect(server, "juliet@localhost/balcony")
    juliet.send_message(mto="romeo@localhost/orchard", mbody="are you there", mtype="chat")
    for _ in range(200):
        if await server.storage.offline.count("romeo@localhost") == 1:
            break
        await asyncio.sleep(0.01)
    assert await server.storage.offline.count("romeo@localhost") == 1
    await slix_close(juliet)
    conn.writer.close()


class _FaultyScreen(Module):
    """A module with a bug: its outbound screen raises for a message to bug@localhost."""

    def screen_outbound(
        self, session: Any, stanza: Element, kind: str, stype: str, to: Any
    ) -> bool:
        if str(to) == "bug@localhost":
            raise RuntimeError("a bug in a module")
        return True


async def test_a_bug_met_routing_a_stanza_is_an_error_reply_not_a_lost_stream(
    tmp_path: Path,
) -> None:
    """A bug in the server or a module while a stanza is routed (here a module's screen
    that raises) is logged and answered with ``internal-server-error`` (RFC 6120
    §8.3.3.6); the client's stream goes on, as the other clients' do."""
    server = XMPPServer(make_config(tmp_path), modules=[*_default_modules(), _FaultyScreen])
    await server.start()
    try:
        await create_account(server.storage, parse_jid("romeo@localhost"), PASSWORD)  # type: ignore[arg-type]
        client = await xmppx_login(server, "romeo@localhost/orchard")
        client.send(
            Element("message", ns.CLIENT, {"to": "bug@localhost", "id": "m1", "type": "chat"})
        )
        answer = await client.recv(timeout=10)
        assert (answer.name, answer.get("id"), answer.get("type")) == ("message", "m1", "error")
        assert b"<internal-server-error " in answer.serialize()
        ping = Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"})
        ping.append(Element("ping", ns.PING))
        assert (await client.iq(ping, timeout=10)).get("type") == "result"
        await client.close()
    finally:
        await server.stop()
