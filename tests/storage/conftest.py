"""Fixtures of the shared storage suite: every test taking ``storage`` or ``storage_url``
runs once per driver (ids ``sqlite`` and ``postgresql``, DESIGN.md §3.8).

PostgreSQL
==========
A real server is started once per session from the Debian ``postgresql`` package's
binaries (``initdb``, ``pg_ctl``; looked up on ``PATH`` then in
``/usr/lib/postgresql/*/bin``), in a temporary directory, on a free loopback port, with
``fsync=off`` (tests never pull the plug).  PostgreSQL refuses to run as root, so as root
the server runs as the ``postgres`` system user through ``runuser``.  Each test gets a
fresh schema.  Without the binaries the ``postgresql`` cases are skipped with the
reason; ``XMPPX_TEST_POSTGRES_URL`` (a database URL whose user may ``CREATE SCHEMA``)
uses an existing server instead.

Async tests use pytest-asyncio and are written for its *strict* mode (test modules set
``pytestmark = pytest.mark.asyncio``, async fixtures use ``pytest_asyncio.fixture``), so
they run the same under ``asyncio_mode = "auto"``; this suite needs no global setting.
Every test gets its own event loop (function scope).
"""

from __future__ import annotations

import glob
import hashlib
import hmac
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from xmppx.storage import ScramCredentials, Storage, open_storage

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


@pytest_asyncio.fixture
async def storage(storage_url: str) -> AsyncIterator[Storage]:
    """An open, migrated storage on a fresh database, closed after the test."""
    opened = await open_storage(storage_url)
    try:
        yield opened
    finally:
        await opened.close()


def scram(
    password: str, hash_name: str = "sha256", *, salt: bytes = b"NaCl-salt", iterations: int = 4096
) -> ScramCredentials:
    """Real SCRAM keys for ``password`` (RFC 5802 §3), as the auth layer would store."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    return ScramCredentials(
        hash_name=hash_name,
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.new(hash_name, client_key).digest(),
        server_key=hmac.digest(salted, b"Server Key", hash_name),
    )


@pytest.fixture
def make_credentials() -> Callable[..., ScramCredentials]:
    """``make_credentials(password, hash_name="sha256")`` -> real SCRAM keys."""
    return scram
