"""A real PostgreSQL server for tests (Debian's ``postgresql`` package), shared by the
storage suite and the server scenario suites (issues 3-5 ask for both drivers).

``postgres_server`` (session scope) runs ``initdb``/``pg_ctl`` in a temp dir on a free
loopback port as the ``postgres`` system user when run as root, and stops it at the end;
without the binaries the PostgreSQL cases skip with a reason naming the package.
``XMPPX_TEST_POSTGRES_URL`` uses an existing server instead.  ``storage_url`` is a fresh
database of the ``driver`` under test: a file for SQLite, a schema for PostgreSQL.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

__all__ = ["DRIVERS", "PostgresServer", "driver", "postgres_server", "storage_url"]

DRIVERS = ("sqlite", "postgresql")
PG_PACKAGE_HINT = "install the Debian package `postgresql` (apt-get install postgresql)"
#: Seconds ``pg_ctl`` waits for the server to start or stop.
PG_START_TIMEOUT = 60


@dataclass(frozen=True, kw_only=True)
class PostgresServer:
    """A running server; ``url`` names a database where the test user may create schemas."""

    url: str


def _find_pg_bin() -> Path | None:
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    external = os.environ.get("XMPPX_TEST_POSTGRES_URL")
    if external:
        yield PostgresServer(url=external)
        return
    bindir = _find_pg_bin()
    if bindir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {PG_PACKAGE_HINT}")
    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(
                "running as root and there is no `postgres` system user to run PostgreSQL "
                f"as: {PG_PACKAGE_HINT}"
            )
        prefix = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp_path: its parents are private to root, and the server user
    # must reach its directory.
    tmp = Path(tempfile.mkdtemp(prefix="xmppx-pg-"))
    if owner is not None:
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
    data = tmp / "data"
    log = tmp / "server.log"
    started = False
    try:
        _run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "xmppx",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )
        port = 0
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {tmp} -c fsync=off -c full_page_writes=off"
            result = subprocess.run(
                [
                    *prefix,
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    str(PG_START_TIMEOUT),
                    "-o",
                    options,
                    "start",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                started = True
                break
        if not started:
            raise RuntimeError(f"pg_ctl start failed:\n{log.read_text(errors='replace')}")
        yield PostgresServer(url=f"postgresql://xmppx@127.0.0.1:{port}/postgres")
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(tmp, ignore_errors=True)


_schema_numbers = itertools.count()


async def _admin_execute(server: PostgresServer, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    """The driver under test: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest_asyncio.fixture
async def storage_url(
    driver: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """A URL of a fresh, empty database of the driver under test.

    For PostgreSQL, a fresh schema selected by ``search_path`` (asyncpg passes unknown
    URL parameters to the server as settings): the same tables, sequences and
    ``schema_version`` as a whole database, for milliseconds instead of the ~0.5 s of a
    ``CREATE DATABASE``.  It is dropped after the test.
    """
    if driver == "sqlite":
        yield f"sqlite://{tmp_path / 'xmppx.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    schema = f"xmppx_test_{os.getpid()}_{next(_schema_numbers)}"
    await _admin_execute(server, f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in server.url else "?"
    try:
        yield f"{server.url}{separator}search_path={schema}"
    finally:
        await _admin_execute(server, f'DROP SCHEMA "{schema}" CASCADE')
