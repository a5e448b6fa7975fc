"""SQLite-only guarantees: the event loop keeps running during database work, and the
file is in WAL mode.  (Foreign-key cascades are covered by the shared MUC and account
tests, which rely on them in SQLite.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from xmppx.storage import NewAccount, ScramCredentials, open_storage

pytestmark = pytest.mark.asyncio


async def test_event_loop_runs_while_sqlite_works(
    tmp_path: Path, make_credentials: Callable[..., ScramCredentials]
) -> None:
    storage = await open_storage(f"sqlite://{tmp_path / 'x.db'}")
    try:
        creds = (make_credentials("pw"),)
        batch = [NewAccount(user=f"u{i}@example.com", credentials=creds) for i in range(30000)]
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        await storage.accounts.create_many(batch)
        during = ticks - before
        done.set()
        await ticking
        # If sqlite3 ran on the loop's thread, the ticker could not run during the import.
        assert during > 10
        assert await storage.accounts.count() == 30000
    finally:
        await storage.close()


async def test_database_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    storage = await open_storage(f"sqlite://{path}")
    try:
        await storage.private.put("a@example.com", "k", b"<x/>")
        # journal_mode=WAL is persistent in the file: another connection sees it.
        other = sqlite3.connect(path)
        try:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master")}
            assert {"schema_version", "accounts", "offline_messages", "muc_rooms"} <= tables
        finally:
            other.close()
    finally:
        await storage.close()
