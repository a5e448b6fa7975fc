"""OfflineStore on both drivers (XEP-0160): order, quota, atomicity, durability."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from xmppx.storage import Storage, open_storage

pytestmark = pytest.mark.asyncio

JULIET = "juliet@example.com"
STAMP = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)


def message(n: int) -> bytes:
    return f"<message to='{JULIET}' id='m{n}'><body>n° {n} ✓</body></message>".encode()


async def test_append_fetch_in_order(storage: Storage) -> None:
    for n in range(5):
        assert await storage.offline.append(
            JULIET, message(n), stamp=STAMP + timedelta(seconds=n), quota=100
        )
    assert await storage.offline.count(JULIET) == 5
    fetched = await storage.offline.fetch(JULIET)
    assert [m.stanza for m in fetched] == [message(n) for n in range(5)]
    assert [m.stamp for m in fetched] == [STAMP + timedelta(seconds=n) for n in range(5)]
    assert [m.id for m in fetched] == sorted(m.id for m in fetched)
    assert len({m.id for m in fetched}) == 5
    # fetch keeps the messages; limit takes the oldest.
    assert await storage.offline.fetch(JULIET, limit=2) == fetched[:2]
    assert await storage.offline.fetch(JULIET, limit=0) == ()
    assert await storage.offline.count(JULIET) == 5
    assert await storage.offline.fetch("romeo@example.net") == ()


async def test_stamps_round_trip_as_utc(storage: Storage) -> None:
    verona = timezone(timedelta(hours=2))
    local = datetime(2024, 6, 1, 12, 0, 0, 999999, tzinfo=verona)
    await storage.offline.append(JULIET, message(0), stamp=local, quota=10)
    (stored,) = await storage.offline.fetch(JULIET)
    assert stored.stamp == local  # the same instant, to the microsecond
    assert stored.stamp.utcoffset() == timedelta(0)
    assert stored.stamp.hour == 10


async def test_naive_stamp_and_negative_quota_are_rejected(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.offline.append(JULIET, message(0), stamp=datetime(2024, 1, 1), quota=10)
    with pytest.raises(ValueError):
        await storage.offline.append(JULIET, message(0), stamp=STAMP, quota=-1)
    assert await storage.offline.count(JULIET) == 0


async def test_quota_boundary_is_exact(storage: Storage) -> None:
    results = [
        await storage.offline.append(JULIET, message(n), stamp=STAMP, quota=3) for n in range(5)
    ]
    assert results == [True, True, True, False, False]
    assert [m.stanza for m in await storage.offline.fetch(JULIET)] == [message(n) for n in range(3)]
    # The quota is per user.
    assert await storage.offline.append("romeo@example.net", message(9), stamp=STAMP, quota=3)
    # Freeing one slot admits exactly one more.
    first = (await storage.offline.fetch(JULIET, limit=1))[0]
    assert await storage.offline.delete(JULIET, [first.id]) == 1
    assert await storage.offline.append(JULIET, message(5), stamp=STAMP, quota=3)
    assert not await storage.offline.append(JULIET, message(6), stamp=STAMP, quota=3)
    # A lowered quota refuses new messages but keeps the stored ones.
    assert not await storage.offline.append(JULIET, message(7), stamp=STAMP, quota=1)
    assert await storage.offline.count(JULIET) == 3
    assert not await storage.offline.append("nobody@example.com", message(0), stamp=STAMP, quota=0)


async def test_concurrent_appends_never_exceed_quota(storage: Storage) -> None:
    quota = 15
    results = await asyncio.gather(
        *(storage.offline.append(JULIET, message(n), stamp=STAMP, quota=quota) for n in range(60))
    )
    assert results.count(True) == quota
    assert await storage.offline.count(JULIET) == quota


async def test_concurrent_appends_from_two_storages_never_exceed_quota(storage_url: str) -> None:
    """Two independently opened storages on one database (two server processes)."""
    first = await open_storage(storage_url)
    second = await open_storage(storage_url)
    try:
        quota = 10
        results = await asyncio.gather(
            *(
                (first if n % 2 else second).offline.append(
                    JULIET, message(n), stamp=STAMP, quota=quota
                )
                for n in range(40)
            )
        )
        assert results.count(True) == quota
        assert await first.offline.count(JULIET) == quota
    finally:
        await first.close()
        await second.close()


async def test_the_quota_sees_what_another_process_did(
    storage_url: str, make_credentials: Any
) -> None:
    """A storage counts a user's stored messages once and then keeps count (SQLite) or
    counts every time (PostgreSQL); either way what another process did in between is
    seen: messages it flushed free the quota, messages it stored fill it, and an account
    deleted here starts again from none."""
    here = await open_storage(storage_url)
    other = await open_storage(storage_url)
    try:
        for n in range(3):
            assert await here.offline.append(JULIET, message(n), stamp=STAMP, quota=3)
        assert not await here.offline.append(JULIET, message(3), stamp=STAMP, quota=3)
        assert len(await other.offline.pop_all(JULIET)) == 3
        assert await here.offline.append(JULIET, message(4), stamp=STAMP, quota=3)
        assert await other.offline.append(JULIET, message(5), stamp=STAMP, quota=3)
        assert await other.offline.append(JULIET, message(6), stamp=STAMP, quota=3)
        assert not await here.offline.append(JULIET, message(7), stamp=STAMP, quota=3)
        await here.accounts.create(JULIET, [make_credentials("pw")])
        assert await here.accounts.delete(JULIET)
        assert await here.offline.append(JULIET, message(8), stamp=STAMP, quota=1)
        assert [m.stanza for m in await other.offline.fetch(JULIET)] == [message(8)]
        await here.offline.delete(JULIET, [m.id for m in await here.offline.fetch(JULIET)])
        assert await here.offline.append(JULIET, message(9), stamp=STAMP, quota=1)
    finally:
        await here.close()
        await other.close()


async def test_append_is_committed_when_it_returns(storage_url: str) -> None:
    writer = await open_storage(storage_url)
    reader = await open_storage(storage_url)
    try:
        assert await writer.offline.append(JULIET, message(1), stamp=STAMP, quota=5)
        assert [m.stanza for m in await reader.offline.fetch(JULIET)] == [message(1)]
    finally:
        await writer.close()
        await reader.close()


async def test_large_stanza_round_trips_byte_for_byte(storage: Storage) -> None:
    big = (b"<message><body>" + bytes(range(256)) * 4096 + b"</body></message>") * 2  # ~2 MiB
    assert await storage.offline.append(JULIET, big, stamp=STAMP, quota=1)
    (stored,) = await storage.offline.pop_all(JULIET)
    assert stored.stanza == big


async def test_pop_all_returns_in_order_and_empties(storage: Storage) -> None:
    for n in range(4):
        await storage.offline.append(JULIET, message(n), stamp=STAMP, quota=10)
    await storage.offline.append("romeo@example.net", message(99), stamp=STAMP, quota=10)
    popped = await storage.offline.pop_all(JULIET)
    assert [m.stanza for m in popped] == [message(n) for n in range(4)]
    assert await storage.offline.pop_all(JULIET) == ()
    assert await storage.offline.count(JULIET) == 0
    assert await storage.offline.count("romeo@example.net") == 1


async def test_concurrent_pop_all_never_returns_a_message_twice(storage: Storage) -> None:
    for n in range(30):
        await storage.offline.append(JULIET, message(n), stamp=STAMP, quota=100)
    results = await asyncio.gather(*(storage.offline.pop_all(JULIET) for _ in range(5)))
    ids = [m.id for batch in results for m in batch]
    assert len(ids) == len(set(ids)) == 30


async def test_delete_only_touches_the_users_own_ids(storage: Storage) -> None:
    await storage.offline.append(JULIET, message(1), stamp=STAMP, quota=10)
    await storage.offline.append(JULIET, message(2), stamp=STAMP, quota=10)
    await storage.offline.append("romeo@example.net", message(3), stamp=STAMP, quota=10)
    (romeo_msg,) = await storage.offline.fetch("romeo@example.net")
    j1, j2 = await storage.offline.fetch(JULIET)
    assert await storage.offline.delete(JULIET, [romeo_msg.id, j1.id, j1.id, 10**12]) == 1
    assert await storage.offline.fetch(JULIET) == (j2,)
    assert await storage.offline.count("romeo@example.net") == 1
    assert await storage.offline.delete(JULIET, []) == 0


async def test_ids_are_not_reused_after_delete(storage: Storage) -> None:
    await storage.offline.append(JULIET, message(1), stamp=STAMP, quota=10)
    (old,) = await storage.offline.pop_all(JULIET)
    await storage.offline.append(JULIET, message(2), stamp=STAMP, quota=10)
    (new,) = await storage.offline.fetch(JULIET)
    assert new.id > old.id
    # A stale delete of the old id cannot remove the new message.
    assert await storage.offline.delete(JULIET, [old.id]) == 0
    assert await storage.offline.count(JULIET) == 1


async def test_durable_writes_arriving_together_succeed_or_fail_alone(
    storage: Storage, make_credentials: Any
) -> None:
    """Durable writes queued at the same moment (the SQLite driver gives them one synced
    commit, each in a savepoint): the one that fails (an account that exists) fails
    alone with its own error, and every other one is stored, within the quota (in no
    particular order: they are concurrent)."""
    creds = [make_credentials("pw")]
    await storage.accounts.create("romeo@example.com", creds)
    appends = [storage.offline.append(JULIET, message(n), stamp=STAMP, quota=30) for n in range(40)]
    results = await asyncio.gather(
        *appends[:20],
        storage.accounts.create("romeo@example.com", creds),  # exists: fails
        storage.accounts.create("mercutio@example.com", creds),
        *appends[20:],
        return_exceptions=True,
    )
    from xmppx.storage import AccountExists

    assert isinstance(results[20], AccountExists)
    assert results[21] is None
    stored = results[:20] + results[22:]
    assert stored.count(True) == 30 and stored.count(False) == 10  # the quota holds
    assert await storage.accounts.exists("mercutio@example.com")
    fetched = await storage.offline.fetch(JULIET)
    assert sorted(m.stanza for m in fetched) == sorted(
        message(n) for n, ok in enumerate(stored) if ok is True
    )


async def test_many_durable_writes_at_once(storage: Storage) -> None:
    """More durable writes at once than one shared commit takes: all are stored."""
    results = await asyncio.gather(
        *(storage.offline.append(JULIET, message(n), stamp=STAMP, quota=1000) for n in range(600))
    )
    assert results == [True] * 600
    assert await storage.offline.count(JULIET) == 600
