"""RosterStore on both drivers: items, versions (RFC 6121 §2.6), pending subscriptions."""

from __future__ import annotations

import asyncio

import pytest

from xmppx.storage import PendingSubscription, Roster, RosterItem, RosterState, Storage

pytestmark = pytest.mark.asyncio

JULIET = "juliet@example.com"


async def test_empty_roster(storage: Storage) -> None:
    roster = await storage.roster.get_roster(JULIET)
    assert roster.items == ()
    assert roster.version == "0"
    assert await storage.roster.get_version(JULIET) == "0"
    assert await storage.roster.get_item(JULIET, "romeo@example.net") is None


async def test_put_get_replace_item(storage: Storage) -> None:
    item = RosterItem(
        contact="romeo@example.net",
        name="Romeo",
        subscription="both",
        ask=False,
        approved=True,
        groups=("Friends", "Ämter", "alpha"),  # the user's order, not sorted
    )
    await storage.roster.put_item(JULIET, item)
    assert await storage.roster.get_item(JULIET, "romeo@example.net") == item

    replaced = RosterItem(contact="romeo@example.net", name="", subscription="to", ask=True)
    await storage.roster.put_item(JULIET, replaced)
    got = await storage.roster.get_item(JULIET, "romeo@example.net")
    assert got == replaced
    assert got is not None and got.name == "" and got.groups == ()
    assert (await storage.roster.get_roster(JULIET)).items == (replaced,)


async def test_name_none_is_not_empty_string(storage: Storage) -> None:
    await storage.roster.put_item(JULIET, RosterItem(contact="a@x.example"))
    await storage.roster.put_item(JULIET, RosterItem(contact="b@x.example", name=""))
    assert (await storage.roster.get_item(JULIET, "a@x.example")) == RosterItem(
        contact="a@x.example", name=None
    )
    item_b = await storage.roster.get_item(JULIET, "b@x.example")
    assert item_b is not None and item_b.name == ""


async def test_roster_is_sorted_and_per_user(storage: Storage) -> None:
    contacts = ["zed@x.example", "ärger@x.example", "Bob@x.example", "😀@x.example", "x.example"]
    for contact in contacts:
        await storage.roster.put_item(JULIET, RosterItem(contact=contact, subscription="from"))
    await storage.roster.put_item("romeo@example.net", RosterItem(contact="nurse@example.net"))
    roster = await storage.roster.get_roster(JULIET)
    assert [i.contact for i in roster.items] == sorted(contacts)
    assert [i.contact for i in (await storage.roster.get_roster("romeo@example.net")).items] == [
        "nurse@example.net"
    ]


async def test_version_changes_on_every_change_and_only_then(storage: Storage) -> None:
    seen = {await storage.roster.get_version(JULIET)}
    item = RosterItem(contact="romeo@example.net")
    for _ in range(3):  # the same item again still changes the version (a push is sent)
        version = await storage.roster.put_item(JULIET, item)
        assert version not in seen
        assert await storage.roster.get_version(JULIET) == version
        seen.add(version)
    assert (await storage.roster.get_roster(JULIET)).version == version

    assert await storage.roster.delete_item(JULIET, "nobody@example.net") is None
    assert await storage.roster.get_version(JULIET) == version

    deleted = await storage.roster.delete_item(JULIET, "romeo@example.net")
    assert deleted is not None and deleted not in seen
    assert await storage.roster.get_item(JULIET, "romeo@example.net") is None
    assert await storage.roster.get_roster(JULIET) == Roster(version=deleted, items=())

    # Another user's change does not touch this user's version.
    await storage.roster.put_item("romeo@example.net", item)
    assert await storage.roster.get_version(JULIET) == deleted


async def test_version_never_repeats_after_account_deletion(storage: Storage) -> None:
    seen = set()
    for contact in ("a@x.example", "b@x.example"):
        seen.add(await storage.roster.put_item(JULIET, RosterItem(contact=contact)))
    await storage.accounts.delete(JULIET)
    assert (await storage.roster.get_roster(JULIET)).items == ()
    # A client holding a cached version of the old account must never match the new one.
    for contact in ("a@x.example", "b@x.example"):
        version = await storage.roster.put_item(JULIET, RosterItem(contact=contact))
        assert version not in seen


async def test_concurrent_puts_each_get_a_distinct_version(storage: Storage) -> None:
    versions = await asyncio.gather(
        *(storage.roster.put_item(JULIET, RosterItem(contact=f"c{i}@x.example")) for i in range(20))
    )
    assert len(set(versions)) == 20
    roster = await storage.roster.get_roster(JULIET)
    assert len(roster.items) == 20
    assert roster.version in versions


async def test_pending_subscriptions(storage: Storage) -> None:
    first = b"<presence from='romeo@example.net' type='subscribe'/>"
    second = (
        b"<presence from='benvolio@example.net' type='subscribe'><status>hi</status></presence>"
    )
    assert await storage.roster.list_pending(JULIET) == ()
    await storage.roster.put_pending(JULIET, "romeo@example.net", first)
    await storage.roster.put_pending(JULIET, "benvolio@example.net", second)
    await storage.roster.put_pending("nurse@example.com", "romeo@example.net", first)
    # A newer request replaces the stanza but keeps its place (oldest first).
    renewed = first.replace(b"/>", b"><status>again</status></presence>")
    await storage.roster.put_pending(JULIET, "romeo@example.net", renewed)
    assert await storage.roster.list_pending(JULIET) == (
        PendingSubscription(contact="romeo@example.net", stanza=renewed),
        PendingSubscription(contact="benvolio@example.net", stanza=second),
    )
    assert await storage.roster.remove_pending(JULIET, "romeo@example.net") is True
    assert await storage.roster.remove_pending(JULIET, "romeo@example.net") is False
    assert [p.contact for p in await storage.roster.list_pending(JULIET)] == [
        "benvolio@example.net"
    ]
    assert len(await storage.roster.list_pending("nurse@example.com")) == 1
    # Pending requests are not roster items: the version does not move.
    assert await storage.roster.get_version(JULIET) == "0"


async def test_roster_state_is_roster_and_pending_in_one_call(storage: Storage) -> None:
    assert await storage.roster.get_roster_state(JULIET) == RosterState(
        roster=Roster(version="0", items=()), pending=()
    )
    await storage.roster.put_item(JULIET, RosterItem(contact="romeo@example.net", name="R"))
    await storage.roster.put_item(JULIET, RosterItem(contact="benvolio@example.net"))
    await storage.roster.put_item("nurse@example.com", RosterItem(contact="x@example.net"))
    first = b"<presence from='tybalt@example.net' type='subscribe'/>"
    second = b"<presence from='mercutio@example.net' type='subscribe'/>"
    await storage.roster.put_pending(JULIET, "tybalt@example.net", first)
    await storage.roster.put_pending(JULIET, "mercutio@example.net", second)
    await storage.roster.put_pending("nurse@example.com", "tybalt@example.net", first)
    state = await storage.roster.get_roster_state(JULIET)
    # The same answers as the two separate calls: items sorted, pending oldest first.
    assert state.roster == await storage.roster.get_roster(JULIET)
    assert state.pending == await storage.roster.list_pending(JULIET)
    assert [i.contact for i in state.roster.items] == ["benvolio@example.net", "romeo@example.net"]
    assert [p.contact for p in state.pending] == ["tybalt@example.net", "mercutio@example.net"]


async def test_roster_state_is_one_snapshot(storage: Storage) -> None:
    """Concurrent writes land entirely before or after a state read, never between its
    roster and pending parts (each write changes both an item and a pending request)."""

    async def change(i: int) -> None:
        contact = f"c{i}@x.example"
        await storage.roster.put_item(JULIET, RosterItem(contact=contact))
        await storage.roster.put_pending(JULIET, contact, b"<presence type='subscribe'/>")

    writers = [asyncio.create_task(change(i)) for i in range(20)]
    states = [await storage.roster.get_roster_state(JULIET) for _ in range(20)]
    await asyncio.gather(*writers)
    for state in states:
        # Snapshot consistency: the version always matches the items it was read with.
        items = len(state.roster.items)
        assert state.roster.version == "0" or items > 0
        assert len(state.pending) <= items
    final = await storage.roster.get_roster_state(JULIET)
    assert len(final.roster.items) == len(final.pending) == 20
