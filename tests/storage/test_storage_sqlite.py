"""SQLite-only guarantees: the event loop keeps running during database work, and the
file is in WAL mode.  (Foreign-key cascades are covered by the shared MUC and account
tests, which rely on them in SQLite.)"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xmppx.storage import (
    NewAccount,
    ScramCredentials,
    StorageConfigError,
    StorageError,
    open_storage,
)

pytestmark = pytest.mark.asyncio

_STAMP = datetime(2024, 1, 1, tzinfo=UTC)


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


async def test_offline_counts_are_not_kept_across_a_reopen(tmp_path: Path) -> None:
    """The thread's offline counts describe one connection: after close() and open()
    (with the rows changed meanwhile by another program) the quota is counted again."""
    from xmppx.storage._sqlite import SqliteStorage

    path = tmp_path / "x.db"
    storage = SqliteStorage(str(path))
    await storage.open()
    for n in range(3):
        assert await storage.offline.append("j@localhost", b"<m%d/>" % n, stamp=_STAMP, quota=3)
    assert not await storage.offline.append("j@localhost", b"<m3/>", stamp=_STAMP, quota=3)
    await storage.close()
    with sqlite3.connect(path) as other:  # an admin tool while the server is down
        other.execute("DELETE FROM offline_messages")
    await storage.open()
    try:
        assert await storage.offline.append("j@localhost", b"<m4/>", stamp=_STAMP, quota=3)
    finally:
        await storage.close()


_COMMIT_FAILS = """
import asyncio, json, os, resource, signal, sys
from datetime import UTC, datetime
from xmppx.storage import StorageError
from xmppx.storage._sqlite import SqliteStorage

STAMP = datetime(2024, 1, 1, tzinfo=UTC)

async def main(path):
    s = SqliteStorage(path)
    await s.open()
    for n in range(3):
        assert await s.offline.append("j@localhost", b"<m%d/>" % n, stamp=STAMP, quota=5)
    # the disk is full: the WAL cannot grow, so the next commit fails
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path + "-wal"), -1))
    try:
        await s.offline.pop_all("j@localhost")
        failed = False
    except StorageError:
        failed = True
    resource.setrlimit(resource.RLIMIT_FSIZE, (-1, -1))
    stored = await s.offline.count("j@localhost")
    accepted = 0
    for n in range(10):
        accepted += await s.offline.append("j@localhost", b"<n/>", stamp=STAMP, quota=5)
    print(json.dumps({"failed": failed, "stored": stored, "accepted": accepted,
                      "now": await s.offline.count("j@localhost")}))
    await s.close()

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
asyncio.run(main(sys.argv[1]))
"""


async def test_a_commit_that_fails_leaves_the_quota_right(tmp_path: Path) -> None:
    """A flush whose commit fails (a full disk, made with RLIMIT_FSIZE in a child
    process) keeps the messages and forgets what the thread had counted: the quota is
    still exact afterwards."""
    import json
    import os
    import subprocess
    import sys

    import xmppx

    resource = pytest.importorskip("resource")
    if not hasattr(resource, "RLIMIT_FSIZE"):
        pytest.skip("no RLIMIT_FSIZE here")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(xmppx.__path__[0]).parent), env.get("PYTHONPATH", "")) if p
    )
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _COMMIT_FAILS, str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"failed": True, "stored": 3, "accepted": 2, "now": 5}


async def test_durable_batches_keep_the_order_of_the_queue(tmp_path: Path) -> None:
    """The SQLite thread runs calls in the order they were made; durable writes that
    share a commit do not overtake a read queued between them, nor the read them: a
    count made between the third and fourth of six appends sees three."""
    storage = await open_storage(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        calls = []
        for round_ in range(20):
            user = f"u{round_}@localhost"
            calls += [
                *(storage.offline.append(user, b"<m/>", stamp=_STAMP, quota=9) for _ in range(3)),
                storage.offline.count(user),
                *(storage.offline.append(user, b"<m/>", stamp=_STAMP, quota=9) for _ in range(3)),
                storage.offline.count(user),
            ]
        results = await asyncio.gather(*calls)
        assert results == [True, True, True, 3, True, True, True, 6] * 20
    finally:
        await storage.close()


async def test_a_new_database_is_the_owners_only(tmp_path: Path) -> None:
    """The database holds SCRAM keys and messages: made with mode 0600 whatever the
    umask (and whatever the directory's mode), and so are its WAL and shared-memory
    files, which SQLite makes with the database's mode."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "x.db"
        storage = await open_storage(f"sqlite:///{path}")
        try:
            await storage.accounts.exists("romeo@localhost")
            made = [p for p in tmp_path.iterdir() if p.name.startswith("x.db")]
            assert {p.name for p in made} >= {"x.db", "x.db-wal"}, made
            for p in made:
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        finally:
            await storage.close()
    finally:
        os.umask(old)


async def test_a_database_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    """A file the system will not create (here a name longer than a directory entry
    may be): ``StorageConfigError`` naming the file and why."""
    name = "x" * 300 + ".db"
    with pytest.raises(
        StorageConfigError, match=r"cannot create SQLite database .*File name too long"
    ):
        await open_storage(f"sqlite:///{tmp_path / name}")
