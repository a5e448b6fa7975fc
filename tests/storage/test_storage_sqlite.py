"""SQLite-only guarantees: the event loop keeps running during database work, and the
file is in WAL mode.  (Foreign-key cascades are covered by the shared MUC and account
tests, which rely on them in SQLite.)"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from xmppx.storage import NewAccount, ScramCredentials, StorageError, open_storage

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


async def test_calls_run_on_one_worker_thread_not_the_loop(tmp_path: Path) -> None:
    storage = await open_storage(f"sqlite://{tmp_path / 'x.db'}")
    try:
        worker = storage._db  # type: ignore[attr-defined]
        names = await asyncio.gather(
            *(worker.read(lambda conn: threading.current_thread().name) for _ in range(50))
        )
        assert set(names) == {"xmppx-sqlite"}
        assert threading.current_thread().name not in names
    finally:
        await storage.close()


async def test_worker_errors_cancellation_and_shutdown(tmp_path: Path) -> None:
    storage = await open_storage(f"sqlite://{tmp_path / 'x.db'}")
    worker = storage._db  # type: ignore[attr-defined]
    gate = threading.Event()
    ran: list[int] = []

    def blocked(conn: sqlite3.Connection) -> int:
        gate.wait(5)
        ran.append(0)
        return 0

    def boom(conn: sqlite3.Connection) -> None:
        raise ValueError("boom")

    def step(i: int) -> Callable[[sqlite3.Connection], int]:
        def run(conn: sqlite3.Connection) -> int:
            ran.append(i)
            return i

        return run

    try:
        # Exceptions reach the awaiting task; SQLite errors become StorageError.
        with pytest.raises(ValueError, match="boom"):
            await worker.read(boom)
        with pytest.raises(StorageError, match="SQLite error"):
            await worker.read(lambda conn: conn.execute("SELECT * FROM nowhere"))
        # A call cancelled while queued never runs; the others run in order.
        first = asyncio.create_task(worker.read(blocked))
        queued = [asyncio.create_task(worker.read(step(i))) for i in (1, 2, 3)]
        await asyncio.sleep(0.05)
        queued[1].cancel()
        gate.set()
        assert await first == 0
        assert await queued[0] == 1
        assert await queued[2] == 3
        with pytest.raises(asyncio.CancelledError):
            await queued[1]
        assert ran == [0, 1, 3]
        # Closing waits for queued calls, which complete normally.
        pending = [asyncio.create_task(worker.read(step(i))) for i in (4, 5)]
        await asyncio.sleep(0)
    finally:
        await storage.close()
    assert [await t for t in pending] == [4, 5]
    with pytest.raises(StorageError, match="not open"):
        await worker.read(step(6))
