"""PrivateStore (XEP-0049/0054), BlocklistStore (XEP-0191), LastActivityStore (XEP-0012)
on both drivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from xmppx.storage import LastActivity, Storage

pytestmark = pytest.mark.asyncio

JULIET = "juliet@example.com"
BOOKMARKS = "storage:bookmarks"
VCARD = "vcard-temp"


async def test_private_get_put_replace_delete(storage: Storage) -> None:
    assert await storage.private.get(JULIET, BOOKMARKS) is None
    xml = b"<storage xmlns='storage:bookmarks'><conference jid='c@muc.example'/></storage>"
    await storage.private.put(JULIET, BOOKMARKS, xml)
    assert await storage.private.get(JULIET, BOOKMARKS) == xml

    vcard = "<vCard xmlns='vcard-temp'><FN>Júliet Capulet 🌹</FN></vCard>".encode()
    await storage.private.put(JULIET, VCARD, vcard)
    replaced = b"<storage xmlns='storage:bookmarks'/>"
    await storage.private.put(JULIET, BOOKMARKS, replaced)
    assert await storage.private.get(JULIET, BOOKMARKS) == replaced
    assert await storage.private.get(JULIET, VCARD) == vcard
    assert await storage.private.get("romeo@example.net", VCARD) is None

    assert await storage.private.delete(JULIET, BOOKMARKS) is True
    assert await storage.private.delete(JULIET, BOOKMARKS) is False
    assert await storage.private.get(JULIET, BOOKMARKS) is None
    assert await storage.private.get(JULIET, VCARD) == vcard


async def test_private_large_and_binary_safe(storage: Storage) -> None:
    blob = bytes(range(256)) * 8192  # 2 MiB, every byte value including NUL
    await storage.private.put(JULIET, VCARD, blob)
    assert await storage.private.get(JULIET, VCARD) == blob


async def test_private_sizes_by_key_prefix(storage: Storage) -> None:
    """``sizes``: bytes per key, of one user's keys with a prefix (what a quota counts),
    with multi-byte and '%'/'_' keys taken literally."""
    await storage.private.put(JULIET, "private:{a}x", b"12345")
    await storage.private.put(JULIET, "private:{b%_}y", "é".encode() * 10)
    await storage.private.put(JULIET, VCARD, b"<vCard xmlns='vcard-temp'/>")
    await storage.private.put("romeo@example.net", "private:{a}x", b"1")
    assert await storage.private.sizes(JULIET, "private:") == {
        "private:{a}x": 5,
        "private:{b%_}y": 20,
    }
    assert await storage.private.sizes(JULIET, "private:{b%") == {"private:{b%_}y": 20}
    assert await storage.private.sizes(JULIET, "private:{b%x") == {}
    assert await storage.private.sizes("nobody@example.net", "private:") == {}


async def test_blocklist_add_remove_clear(storage: Storage) -> None:
    assert await storage.blocklist.get(JULIET) == ()
    added = await storage.blocklist.add(
        JULIET, ["romeo@example.net", "example.org", "romeo@example.net", "tybalt@example.com/x"]
    )
    assert added == ("romeo@example.net", "example.org", "tybalt@example.com/x")
    # Only the new ones are reported, in the given order.
    assert await storage.blocklist.add(JULIET, ["ärger@example.net", "example.org"]) == (
        "ärger@example.net",
    )
    expected = sorted(
        ["romeo@example.net", "example.org", "tybalt@example.com/x", "ärger@example.net"]
    )
    assert await storage.blocklist.get(JULIET) == tuple(expected)
    assert await storage.blocklist.get("romeo@example.net") == ()

    assert await storage.blocklist.remove(JULIET, ["nobody@x", "example.org"]) == ("example.org",)
    assert "example.org" not in await storage.blocklist.get(JULIET)

    await storage.blocklist.add("romeo@example.net", ["tybalt@example.com"])
    assert await storage.blocklist.clear(JULIET) == (
        "romeo@example.net",
        "tybalt@example.com/x",
        "ärger@example.net",
    )
    assert await storage.blocklist.get(JULIET) == ()
    assert await storage.blocklist.clear(JULIET) == ()
    assert await storage.blocklist.get("romeo@example.net") == ("tybalt@example.com",)
    assert await storage.blocklist.add(JULIET, []) == ()


async def test_blocklist_rejects_a_single_string_and_empty_jids(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.blocklist.add(JULIET, "romeo@example.net")
    with pytest.raises(ValueError):
        await storage.blocklist.add(JULIET, ["a@x", ""])
    assert await storage.blocklist.get(JULIET) == ()


async def test_last_activity(storage: Storage) -> None:
    assert await storage.last_activity.get(JULIET) is None
    first = LastActivity(stamp=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), status="Gone 🌙")
    await storage.last_activity.put(JULIET, first)
    assert await storage.last_activity.get(JULIET) == first

    later = datetime(2024, 1, 3, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    await storage.last_activity.put(JULIET, LastActivity(stamp=later))
    got = await storage.last_activity.get(JULIET)
    assert got is not None
    assert got.stamp == later and got.stamp.utcoffset() == timedelta(0) and got.status == ""
    assert await storage.last_activity.get("romeo@example.net") is None

    assert await storage.last_activity.delete(JULIET) is True
    assert await storage.last_activity.delete(JULIET) is False
    assert await storage.last_activity.get(JULIET) is None
