"""Storage URLs, driver-independent failures and record validation (no database needed,
except the SQLite file checks)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xmppx.storage import (
    LastActivity,
    MucAffiliation,
    MucRoom,
    NewAccount,
    RosterItem,
    ScramCredentials,
    StorageConfigError,
    create_storage,
    open_storage,
)
from xmppx.storage._sqlite import SqliteStorage


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no scheme"),
        ("/var/lib/xmppx.db", "no scheme"),
        ("mysql://root@localhost/xmppx", "unsupported storage URL scheme 'mysql'"),
        ("sqlite://", "no database path"),
        ("sqlite:///var/x.db?mode=ro", "no query string"),
        ("postgresql://xmppx@localhost:notaport/xmppx", "invalid PostgreSQL URL"),
        ("postgresql://xmppx@localhost:99999/xmppx", "invalid PostgreSQL URL"),
        ("postgresql://xmppx@localhost/a/b", "contains '/'"),
    ],
)
def test_bad_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(StorageConfigError, match=message):
        create_storage(url)


def test_passwords_are_never_echoed() -> None:
    with pytest.raises(StorageConfigError) as info:
        create_storage("postgresql://xmppx:hunter2@localhost:bad/xmppx")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)
    with pytest.raises(StorageConfigError) as info:
        create_storage("oracle://xmppx:hunter2@localhost/xmppx")
    assert "hunter2" not in str(info.value)


def test_bad_pool_size() -> None:
    with pytest.raises(StorageConfigError, match="pool_size"):
        create_storage("postgresql://xmppx@localhost/xmppx", pool_size=0)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/xmppx/xmppx.db", "/var/lib/xmppx/xmppx.db"),
        ("sqlite://relative/xmppx.db", "relative/xmppx.db"),
        ("SQLITE://:memory:", ":memory:"),
    ],
)
def test_sqlite_url_path_is_everything_after_the_scheme(url: str, path: str) -> None:
    storage = create_storage(url)
    assert isinstance(storage, SqliteStorage)
    assert storage.path == path


def test_postgresql_urls_are_accepted_without_io() -> None:
    for url in (
        "postgresql://xmppx@127.0.0.1:5432/xmppx",
        "postgres://localhost",
        "postgresql:///xmppx?host=/run/postgresql",
    ):
        assert type(create_storage(url)).__name__ == "PostgresStorage"


def test_sqlite_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StorageConfigError, match="does not exist"):
        asyncio.run(open_storage(f"sqlite://{missing}"))
    assert not missing.parent.exists()


def test_sqlite_memory_database_works_until_close() -> None:
    async def scenario() -> None:
        storage = await open_storage("sqlite://:memory:")
        try:
            await storage.private.put("a@example.com", "k", b"<x/>")
            assert await storage.private.get("a@example.com", "k") == b"<x/>"
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_unreachable_postgresql_is_a_config_error() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    url = "postgresql://xmppx:hunter2@127.0.0.1:1/xmppx"
    with pytest.raises(StorageConfigError, match="cannot connect to PostgreSQL") as info:
        asyncio.run(open_storage(url))
    assert "hunter2" not in str(info.value)


def test_scram_credentials_validation() -> None:
    good = {"salt": b"s", "iterations": 4096, "stored_key": b"k" * 32, "server_key": b"k" * 32}
    ScramCredentials(hash_name="sha256", **good)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown SCRAM hash"):
        ScramCredentials(hash_name="md5", **good)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="20 bytes"):
        ScramCredentials(hash_name="sha1", **good)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="iterations"):
        ScramCredentials(hash_name="sha256", **{**good, "iterations": 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="salt"):
        ScramCredentials(hash_name="sha256", **{**good, "salt": b""})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ScramCredentials("sha256", b"s", 1, b"k" * 32, b"k" * 32)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        NewAccount(user="a@example.com", credentials=())


def test_other_records_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        LastActivity(stamp=datetime(2024, 1, 1))
    LastActivity(stamp=datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="bare JID"):
        MucRoom(jid="chat.example.com", config={})
    with pytest.raises(ValueError, match="JSON"):
        MucRoom(jid="r@chat.example.com", config={"when": datetime(2024, 1, 1)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="JSON"):
        MucRoom(jid="r@chat.example.com", config={"x": float("nan")})
    with pytest.raises(ValueError, match="affiliation"):
        MucAffiliation(room="r@chat.example.com", user="a@x", affiliation="none")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate"):
        RosterItem(contact="a@x.example", groups=("A", "A"))
    with pytest.raises(ValueError, match="empty"):
        RosterItem(contact="a@x.example", groups=("",))
    with pytest.raises(ValueError, match="subscription"):
        RosterItem(contact="a@x.example", subscription="remove")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RosterItem(contact="")
