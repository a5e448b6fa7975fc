"""XEP-0077 §3.2 account removal (and XEP-0133 delete-user): the requester is answered,
its sessions end, and its presence subscriptions are cancelled first, so that whoever
registers the name next shares no presence with its old contacts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tests.im.conftest import (
    Peer,
    befriend,
    is_message,
    is_presence,
    message,
    online,
    presence,
    settle,
)
from tests.im.test_sm import SMClient
from tests.server.conftest import PASSWORD
from xmppx import ns
from xmppx.core import parse_jid
from xmppx.modules.private import private_key
from xmppx.modules.roster import RosterManager
from xmppx.server.accounts import create_account
from xmppx.storage import StorageError


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _is_push_for(jid: str) -> Any:
    def match(s: Any) -> bool:
        q = s.find(ns.clark(ns.ROSTER, "query")) if s.name == "iq" else None
        return q is not None and any(i.get("jid") == jid for i in q)

    return match


async def test_a_removed_account_leaves_no_subscription_behind(make_server: Any) -> None:
    """Romeo and Juliet share presence both ways.  Romeo removes his account::

        <iq type='set' id='unreg1'>
          <query xmlns='jabber:iq:register'><remove/></query>
        </iq>

    He gets the result, then his stream ends.  Juliet's roster keeps his item with
    subscription 'none' (pushed to her), and a new Romeo does not get her presence."""
    server = await make_server(register__enabled=True)
    await befriend(server, "romeo", "juliet")
    juliet = await Peer.connect(server, "juliet@localhost/balcony")
    assert "romeo@localhost" in await juliet.items()
    juliet.presence()
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    romeo.send_xml(
        "<iq type='set' id='unreg1'><query xmlns='jabber:iq:register'><remove/></query></iq>"
    )
    answer = await romeo.expect(lambda s: s.name == "iq" and s.get("id") == "unreg1")
    assert answer.get("type") == "result"
    push = await juliet.expect(_is_push_for("romeo@localhost"), "a roster push for romeo")
    assert b"subscription='both'" not in push.serialize()
    await settle(server, juliet)
    items = await juliet.items()
    assert items["romeo@localhost"].get("subscription", "none") == "none", items
    assert not await server.storage.accounts.exists("romeo@localhost")
    # someone registers the name again: Juliet's presence does not reach them
    await create_account(server.storage, parse_jid("romeo@localhost"), PASSWORD)  # type: ignore[arg-type]
    newcomer = await Peer.connect(server, "romeo@localhost/elsewhere")
    newcomer.presence()
    juliet.presence(show="chat")
    await settle(server, juliet, newcomer)
    assert not [s for s in await newcomer.drain() if is_presence("juliet@localhost/balcony")(s)]
    await newcomer.client.close()
    await juliet.client.close()


async def test_remove_with_other_children_is_bad_request(make_server: Any) -> None:
    """XEP-0077 §3.2's error table: ``<remove/>`` must be the only child of
    ``<query/>``; otherwise ``bad-request`` and the account stays."""
    server = await make_server(register__enabled=True)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    iq_xml = (
        "<iq type='set' id='unreg2'><query xmlns='jabber:iq:register'>"
        "<remove/><username>romeo</username></query></iq>"
    )
    romeo.send_xml(iq_xml)
    answer = await romeo.expect(lambda s: s.name == "iq" and s.get("id") == "unreg2")
    assert answer.get("type") == "error"
    assert b"<bad-request " in answer.serialize()
    assert await server.storage.accounts.exists("romeo@localhost")
    assert (await romeo.roster()).get("type") == "result", "the stream goes on"
    await romeo.client.close()


async def test_another_accounts_registration_is_not_answered_for(make_server: Any) -> None:
    """The registration (XEP-0077) and session (RFC 3921) namespaces on another account's
    bare JID: ``service-unavailable``, as for an account that does not exist, for a get
    as for a removal; the account stays."""
    server = await make_server(register__enabled=True)
    romeo = await Peer.connect(server, "romeo@localhost/orchard")
    requests = {
        "get": "<query xmlns='jabber:iq:register'/>",
        "remove": "<query xmlns='jabber:iq:register'><remove/></query>",
        "session": "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
    }
    for to in ("juliet@localhost", "nobody@localhost"):
        for name, payload in requests.items():
            kind = "get" if name == "get" else "set"
            romeo.send_xml(f"<iq type='{kind}' id='{name}' to='{to}'>{payload}</iq>")
            answer = await romeo.expect(lambda s, n=name: s.name == "iq" and s.get("id") == n)
            assert answer.get("type") == "error", (to, name)
            assert b"<service-unavailable " in answer.serialize(), (to, name)
    assert await server.storage.accounts.exists("juliet@localhost")
    await romeo.client.close()


async def test_contacts_rosters_are_updated_before_the_account_goes(make_server: Any) -> None:
    """When ``remove_account`` returns, every local contact's stored roster already
    shares no presence with the removed account: the account is deleted only after
    them, so a removal cut short (a crash, a killed ``deluser``) leaves the account in
    place and running it again completes it.  Juliet and the nurse are offline, so
    their rosters change through storage alone."""
    server = await make_server(users=("romeo", "juliet", "nurse"))
    await befriend(server, "romeo", "juliet")
    await befriend(server, "romeo", "nurse", subscription="to")
    assert await server.remove_account(parse_jid("romeo@localhost"), "gone") is True  # type: ignore[arg-type]
    for contact in ("juliet@localhost", "nurse@localhost"):
        item = await server.storage.roster.get_item(contact, "romeo@localhost")
        assert item is not None and (item.subscription, item.ask) == ("none", False), item
    assert not await server.storage.accounts.exists("romeo@localhost")


async def _refuse_roster_changes(
    server: Any, storage_url: str | None, user: str
) -> Callable[[], Awaitable[None]]:
    """Make the database refuse every change to ``user``'s roster (a trigger, as a full
    disk or a lost connection would); returns what drops the trigger again."""
    if storage_url is None or storage_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(server.storage.path)) as db, db:
            for event in ("INSERT", "UPDATE", "DELETE"):
                row = "OLD" if event == "DELETE" else "NEW"
                db.execute(
                    f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON roster_items "
                    f"WHEN {row}.username = '{user}' "
                    "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
                )

        async def undo_sqlite() -> None:
            with contextlib.closing(sqlite3.connect(server.storage.path)) as db, db:
                for event in ("insert", "update", "delete"):
                    db.execute(f"DROP TRIGGER refuse_{event}")

        return undo_sqlite

    async def run(*statements: str) -> None:
        conn = await asyncpg.connect(storage_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    await run(
        "CREATE FUNCTION refuse_user() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF coalesce(NEW.username, OLD.username) = '{user}' THEN "
        "RAISE EXCEPTION 'the disk is full'; END IF; RETURN coalesce(NEW, OLD); END $$",
        "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON roster_items "
        "FOR EACH ROW EXECUTE FUNCTION refuse_user()",
    )

    async def undo_postgres() -> None:
        await run("DROP TRIGGER refuse ON roster_items", "DROP FUNCTION refuse_user()")

    return undo_postgres


async def test_a_contact_roster_that_cannot_change_keeps_the_account(
    make_server: Any, server_storage_url: str | None
) -> None:
    """The database refuses every change to Juliet's roster: the removal fails with
    ``StorageError`` and Romeo's account stays, so that it can be run again, which then
    completes it."""
    server = await make_server()
    await befriend(server, "romeo", "juliet")
    romeo = parse_jid("romeo@localhost")
    undo = await _refuse_roster_changes(server, server_storage_url, "juliet@localhost")
    with pytest.raises(StorageError):
        await server.remove_account(romeo, "gone")  # type: ignore[arg-type]
    assert await server.storage.accounts.exists("romeo@localhost")
    await undo()
    assert await server.remove_account(romeo, "gone") is True  # type: ignore[arg-type]
    item = await server.storage.roster.get_item("juliet@localhost", "romeo@localhost")
    assert item is not None and item.subscription == "none", item
    assert not await server.storage.accounts.exists("romeo@localhost")


def _roster_manager(server: Any) -> RosterManager:
    return next(m for m in server.modules if isinstance(m, RosterManager))


async def _removal_under_way(server: Any, user: Any) -> asyncio.Task[bool]:
    task = asyncio.ensure_future(server.remove_account(user, "gone"))
    for _ in range(1000):
        if server.is_being_removed(user):
            return task
        await asyncio.sleep(0.001)
    raise AssertionError("the removal never began")


async def test_what_the_user_sends_during_the_removal_is_not_handled(make_server: Any) -> None:
    """Romeo's session is frozen while his account is removed: a message he sends then
    to Juliet is never handled (it would come from an account that is gone), and a
    subscription request to the nurse does not outlive the account.  The removal is
    held up on Juliet's roster lock so that both arrive before it ends."""
    server = await make_server(users=("romeo", "juliet", "nurse"))
    await befriend(server, "romeo", "juliet")
    juliet, romeo = await online(server, "juliet@localhost/balcony", "romeo@localhost/orchard")
    user = parse_jid("romeo@localhost")
    async with _roster_manager(server).locked(parse_jid("juliet@localhost")):  # type: ignore[arg-type]
        removal = await _removal_under_way(server, user)
        romeo.send(message("juliet@localhost", "wherefore"))
        romeo.send(presence(to="nurse@localhost", type_="subscribe"))
        await asyncio.sleep(0.3)  # time for the server to read them
    assert await removal is True
    await settle(server, juliet)
    assert not [s for s in await juliet.drain() if is_message("wherefore")(s)]
    assert await server.storage.roster.list_pending("nurse@localhost") == ()
    assert await server.storage.roster.get_item("nurse@localhost", "romeo@localhost") is None
    await juliet.close()


async def test_what_the_user_sent_during_a_failed_removal_is_handled(
    make_server: Any, server_storage_url: str | None
) -> None:
    """The removal fails (the database refuses Juliet's roster change): Romeo's account
    stays, and what his session sent while it ran is handled then, in order.  While it
    was frozen, his session was not dropped for leaving a ping unanswered: his answer
    waited unread with the rest (pings every 0.2 s here, the removal held 1 s)."""
    server = await make_server(
        users=("romeo", "juliet", "nurse"), ping__interval=0.2, ping__timeout=0.2
    )
    await befriend(server, "romeo", "juliet")
    nurse, romeo = await online(server, "nurse@localhost/kitchen", "romeo@localhost/orchard")
    undo = await _refuse_roster_changes(server, server_storage_url, "juliet@localhost")
    user = parse_jid("romeo@localhost")
    async with _roster_manager(server).locked(parse_jid("juliet@localhost")):  # type: ignore[arg-type]
        removal = await _removal_under_way(server, user)
        romeo.send(message("nurse@localhost", "one"))
        romeo.send(message("nurse@localhost", "two"))
        await asyncio.sleep(1.0)
    with pytest.raises(StorageError):
        await removal
    await undo()
    first = await nurse.expect(is_message(), "romeo's first message")
    second = await nurse.expect(is_message(), "romeo's second message")
    assert [first.findtext("body"), second.findtext("body")] == ["one", "two"]
    assert (await romeo.roster()).get("type") == "result", "his stream goes on"
    await nurse.close()
    await romeo.close()


async def test_a_contact_who_blocks_the_user_is_unsubscribed_too(make_server: Any) -> None:
    """Juliet (offline) and the nurse (online) share presence with Romeo and block him
    (XEP-0191).  Their rosters are still changed when Romeo's account goes: the
    cancellations are the server's, not presence from a blocked JID, so the screens
    let them through.  Otherwise the items would keep 'both', and whoever registers
    the name next would get their presence as soon as they unblock it.  The nurse's
    client gets the roster push, and no presence from the JID she blocks."""
    server = await make_server(users=("romeo", "juliet", "nurse"))
    for contact in ("juliet", "nurse"):
        await befriend(server, "romeo", contact)
        await server.storage.blocklist.add(f"{contact}@localhost", ["romeo@localhost"])
    nurse = await Peer.connect(server, "nurse@localhost/kitchen")
    assert (await nurse.items())["romeo@localhost"]["subscription"] == "both"
    nurse.presence()
    await settle(server, nurse)
    await nurse.drain()
    assert await server.remove_account(parse_jid("romeo@localhost"), "gone") is True  # type: ignore[arg-type]
    for contact in ("juliet@localhost", "nurse@localhost"):
        item = await server.storage.roster.get_item(contact, "romeo@localhost")
        assert item is not None and (item.subscription, item.ask) == ("none", False), item
    push = await nurse.expect(_is_push_for("romeo@localhost"), "a roster push for romeo")
    assert b"subscription='both'" not in push.serialize()
    await settle(server, nurse)
    shown = [s for s in await nurse.drain() if s.name == "presence"]
    assert not [s for s in shown if (s.get("from") or "").startswith("romeo@")], shown
    await nurse.close()


async def test_writes_sent_with_the_removal_do_not_outlive_the_account(make_server: Any) -> None:
    """Romeo sends ``<remove/>`` and, in the same packet, a roster set, a vCard, private
    XML and a block.  Those were read before his session was frozen: the removal waits
    for them, so none is written after the account is deleted, where whoever registers
    the name next would find it."""
    server = await make_server(register__enabled=True)
    (romeo,) = await online(server, "romeo@localhost/orchard")
    romeo.send_xml(
        "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>"
        "<iq type='set' id='rs'><query xmlns='jabber:iq:roster'>"
        "<item jid='tybalt@localhost' name='secret'/></query></iq>"
        "<iq type='set' id='vc'><vCard xmlns='vcard-temp'><FN>Old Romeo</FN></vCard></iq>"
        "<iq type='set' id='pv'><query xmlns='jabber:iq:private'>"
        "<note xmlns='x:notes'>old secret</note></query></iq>"
        "<iq type='set' id='bl'><block xmlns='urn:xmpp:blocking'>"
        "<item jid='juliet@localhost'/></block></iq>"
    )
    answer = await romeo.expect(lambda s: s.get("id") == "rm", "the removal's answer")
    assert answer.get("type") == "result"
    assert not await server.storage.accounts.exists("romeo@localhost")
    for _ in range(100):
        if not server.sessions.resources(parse_jid("romeo@localhost")):
            break
        await asyncio.sleep(0.01)
    # his sessions' end wrote no last activity (XEP-0012) for an account gone
    await settle(server)
    assert await server.storage.last_activity.get("romeo@localhost") is None
    await create_account(server.storage, parse_jid("romeo@localhost"), PASSWORD)  # type: ignore[arg-type]
    assert (await server.storage.roster.get_roster("romeo@localhost")).items == ()
    assert (
        await server.storage.private.get("romeo@localhost", private_key("x:notes", "note")) is None
    )
    assert await server.storage.private.get("romeo@localhost", "vcard-temp") is None
    assert await server.storage.blocklist.get("romeo@localhost") == ()


async def test_the_deletion_waits_for_the_accounts_work_in_progress(make_server: Any) -> None:
    """What the server is doing for an account when its removal comes (a message being
    stored for it, say: work in the account's turn, ``hold_account``) is finished
    first, and deleted with it: before, the deletion could commit between such a
    write's check and the write, and whoever registered the name next got the old
    account's message.  Stanzas routed to the account after the deletion find none:
    Juliet's message is refused as to no account (RFC 6121 §8.5.1)."""
    server = await make_server()
    (juliet,) = await online(server, "juliet@localhost/balcony")
    romeo = parse_jid("romeo@localhost")
    busy = asyncio.Event()

    async def storing() -> None:
        await busy.wait()
        await server.storage.offline.append(
            "romeo@localhost", b"<message><body>stored</body></message>", stamp=_now(), quota=100
        )

    server.hold_account(romeo, storing)
    juliet.send(message("romeo@localhost", "too late"))
    removal = asyncio.ensure_future(server.remove_account(romeo, "gone"))
    await asyncio.wait([removal], timeout=0.5)  # (it waits for the work: time to err)
    busy.set()
    assert await asyncio.wait_for(removal, 10) is True
    bounced = await juliet.expect(is_message("too late"), "the message back")
    assert bounced.get("type") == "error"
    assert await server.storage.offline.count("romeo@localhost") == 0


async def test_two_removals_at_once_are_both_answered(make_server: Any) -> None:
    """Two of Romeo's sessions send ``<remove/>`` at once: they share one removal, and
    each gets its result before the streams end (XEP-0077 §3.2)."""
    server = await make_server(register__enabled=True)
    one, two = await online(server, "romeo@localhost/orchard", "romeo@localhost/balcony")
    for peer, iq_id in ((one, "rm1"), (two, "rm2")):
        peer.send_xml(
            f"<iq type='set' id='{iq_id}'><query xmlns='jabber:iq:register'><remove/></query></iq>"
        )
    for peer, iq_id in ((one, "rm1"), (two, "rm2")):
        answer = await peer.expect(lambda s, i=iq_id: s.get("id") == i, f"the answer to {iq_id}")
        assert answer.get("type") == "result", answer.serialize()
    assert not await server.storage.accounts.exists("romeo@localhost")


async def test_a_removed_users_closing_tag_is_read(make_server: Any) -> None:
    """After the removal ends Romeo's frozen stream (``not-authorized``), the server
    reads his ``</stream:stream>`` and closes the connection at once (RFC 6120 §4.4),
    not after ``limits.close_timeout``."""
    server = await make_server(register__enabled=True, limits__close_timeout=60.0)
    client, _ = await SMClient.login(server, "romeo")
    await client.bind("orchard")
    await client.send(
        "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>"
    )
    assert (await client.next("iq")).get("type") == "result"
    error = await client.next("error")
    assert error.find(ns.clark(ns.STREAM_ERRORS, "not-authorized")) is not None
    await client.send("</stream:stream>")
    assert await asyncio.wait_for(client.raw.reader.read(), 10) == b""
