"""AccountStore on both drivers: creation, credentials, listing, bulk import, deletion."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xmppx.storage import (
    MAX_PAGE_SIZE,
    AccountExists,
    AccountNotFound,
    NewAccount,
    ScramCredentials,
    Storage,
)

pytestmark = pytest.mark.asyncio

Creds = Callable[..., ScramCredentials]


async def test_create_then_read_back(storage: Storage, make_credentials: Creds) -> None:
    sha1 = make_credentials("pencil", "sha1")
    sha256 = make_credentials("pencil", "sha256")
    await storage.accounts.create("juliet@example.com", [sha256, sha1])

    assert await storage.accounts.exists("juliet@example.com")
    assert not await storage.accounts.exists("romeo@example.com")
    assert await storage.accounts.count() == 1
    assert await storage.accounts.get_credentials("juliet@example.com", "sha1") == sha1
    assert await storage.accounts.get_credentials("juliet@example.com", "sha256") == sha256
    assert await storage.accounts.get_credentials("juliet@example.com", "sha512") is None
    assert await storage.accounts.get_credentials("romeo@example.com", "sha1") is None
    # Sorted by hash name, whatever the creation order.
    assert await storage.accounts.list_credentials("juliet@example.com") == (sha1, sha256)
    assert await storage.accounts.list_credentials("romeo@example.com") == ()


async def test_create_existing_fails_and_keeps_old_credentials(
    storage: Storage, make_credentials: Creds
) -> None:
    original = make_credentials("old")
    await storage.accounts.create("juliet@example.com", [original])
    with pytest.raises(AccountExists) as info:
        await storage.accounts.create("juliet@example.com", [make_credentials("new")])
    assert info.value.user == "juliet@example.com"
    assert "juliet@example.com" in str(info.value)
    assert await storage.accounts.list_credentials("juliet@example.com") == (original,)


@pytest.mark.parametrize(
    ("user", "creds"),
    [
        ("example.com", ["sha256"]),  # no localpart
        ("juliet@", ["sha256"]),
        ("juliet@example.com", []),  # no credentials
        ("juliet@example.com", ["sha256", "sha256"]),  # one hash twice
    ],
)
async def test_create_rejects_bad_arguments_without_writing(
    storage: Storage, make_credentials: Creds, user: str, creds: list[str]
) -> None:
    with pytest.raises(ValueError):
        await storage.accounts.create(user, [make_credentials("x", h) for h in creds])
    assert await storage.accounts.count() == 0


async def test_set_credentials_replaces_all_hashes(
    storage: Storage, make_credentials: Creds
) -> None:
    await storage.accounts.create(
        "juliet@example.com", [make_credentials("old", "sha1"), make_credentials("old")]
    )
    new = make_credentials("new", "sha256", salt=b"fresh salt")
    await storage.accounts.set_credentials("juliet@example.com", [new])
    assert await storage.accounts.list_credentials("juliet@example.com") == (new,)
    assert await storage.accounts.get_credentials("juliet@example.com", "sha1") is None


async def test_set_credentials_of_missing_account(
    storage: Storage, make_credentials: Creds
) -> None:
    with pytest.raises(AccountNotFound) as info:
        await storage.accounts.set_credentials("nobody@example.com", [make_credentials("x")])
    assert info.value.user == "nobody@example.com"
    assert await storage.accounts.list_credentials("nobody@example.com") == ()


async def test_unicode_jids_sort_by_code_point(storage: Storage, make_credentials: Creds) -> None:
    creds = [make_credentials("pw")]
    users = [
        "zoë@example.com",
        "émile@example.com",
        "Zed@example.com",  # storage compares bytes: 'Z' sorts before 'a'
        "ärger@example.com",
        "日本@例え.jp",
        "😀@example.com",  # outside the BMP: UTF-16 order would differ
        "\uffef@example.com",
        "alice@example.com",
    ]
    for user in users:
        await storage.accounts.create(user, creds)
    assert await storage.accounts.list_users() == tuple(sorted(users))
    assert await storage.accounts.list_users(domain="例え.jp") == ("日本@例え.jp",)
    assert await storage.accounts.exists("日本@例え.jp")
    assert await storage.accounts.count(domain="example.com") == len(users) - 1


async def test_list_users_pages_with_keyset(storage: Storage, make_credentials: Creds) -> None:
    creds = (make_credentials("pw"),)
    users = [f"user{i:03d}@a.example" for i in range(25)] + ["other@b.example"]
    await storage.accounts.create_many([NewAccount(user=u, credentials=creds) for u in users])

    pages: list[tuple[str, ...]] = []
    after: str | None = None
    while page := await storage.accounts.list_users(domain="a.example", after=after, limit=10):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [u for p in pages for u in p] == sorted(u for u in users if u.endswith("a.example"))
    # 'after' need not be an existing JID.
    assert await storage.accounts.list_users(after="user019@zzz", limit=3) == (
        "user020@a.example",
        "user021@a.example",
        "user022@a.example",
    )
    assert await storage.accounts.count(domain="b.example") == 1


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
async def test_list_users_rejects_bad_limit(storage: Storage, limit: int) -> None:
    with pytest.raises(ValueError):
        await storage.accounts.list_users(limit=limit)


async def test_create_many_imports_thousands(storage: Storage, make_credentials: Creds) -> None:
    """One call, one transaction, 5000 accounts (its speed is measured in benches/)."""
    creds = (make_credentials("pw", "sha1"), make_credentials("pw", "sha256"))
    accounts = [NewAccount(user=f"u{i}@import.example", credentials=creds) for i in range(5000)]
    assert await storage.accounts.create_many(accounts) == 5000
    assert await storage.accounts.count() == 5000
    assert await storage.accounts.list_credentials("u4999@import.example") == creds
    assert await storage.accounts.create_many([]) == 0


async def test_create_many_is_all_or_nothing(storage: Storage, make_credentials: Creds) -> None:
    creds = (make_credentials("pw"),)
    await storage.accounts.create("taken@example.com", creds)
    batch = [
        NewAccount(user=u, credentials=creds)
        for u in ("a@example.com", "b@example.com", "taken@example.com", "c@example.com")
    ]
    with pytest.raises(AccountExists) as info:
        await storage.accounts.create_many(batch)
    assert info.value.user == "taken@example.com"
    assert await storage.accounts.list_users() == ("taken@example.com",)

    duplicated = [NewAccount(user="d@example.com", credentials=creds)] * 2
    with pytest.raises(AccountExists) as info:
        await storage.accounts.create_many(duplicated)
    assert info.value.user == "d@example.com"
    assert not await storage.accounts.exists("d@example.com")


async def test_delete_account(storage: Storage, make_credentials: Creds) -> None:
    await storage.accounts.create("juliet@example.com", [make_credentials("pw")])
    await storage.accounts.create("romeo@example.com", [make_credentials("pw")])
    assert await storage.accounts.delete("juliet@example.com") is True
    assert await storage.accounts.delete("juliet@example.com") is False
    assert not await storage.accounts.exists("juliet@example.com")
    assert await storage.accounts.list_credentials("juliet@example.com") == ()
    assert await storage.accounts.list_users() == ("romeo@example.com",)
    # The name is free again.
    await storage.accounts.create("juliet@example.com", [make_credentials("again")])
    assert await storage.accounts.count() == 2
