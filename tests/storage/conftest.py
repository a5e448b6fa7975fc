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

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from xmppx.storage import ScramCredentials, Storage, open_storage


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
