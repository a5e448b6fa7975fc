"""Test accounts: names, passwords and their SCRAM-SHA-1 keys, made once and shared.

Every server gets the same accounts with the same salt and iteration count, written in
its own format (``_servers``), so a SCRAM login costs every server the same and the
generator the same.  The PBKDF2 output (SaltedPassword, RFC 5802 §3) is kept as well: the
generator's clients look it up instead of recomputing it (``install_salted_cache``), as
real clients cache it, so the 4 ms of PBKDF2 per login on this machine does not make the
generator the bottleneck of the login storm.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

__all__ = [
    "DOMAIN",
    "ITERATIONS",
    "Account",
    "chunks",
    "install_salted_cache",
    "make_accounts",
    "rfc5803",
]

DOMAIN: Final = "localhost"
#: RFC 7677 §4's minimum and ejabberd 23.01's fixed count; xmppx clients accept no fewer.
ITERATIONS: Final = 4096
_HASH: Final = "sha1"
_CACHE_VERSION: Final = 1
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class Account:
    """One test account and its SCRAM-SHA-1 keys (raw bytes)."""

    user: str  # localpart
    password: str
    salt: bytes  # printable ASCII, so Prosody's Lua files can hold it as a plain string
    salted: bytes  # SaltedPassword = Hi(password, salt, ITERATIONS)

    @property
    def jid(self) -> str:
        return f"{self.user}@{DOMAIN}"

    @property
    def client_key(self) -> bytes:
        return hmac.digest(self.salted, b"Client Key", _HASH)

    @property
    def stored_key(self) -> bytes:
        return hashlib.new(_HASH, self.client_key).digest()

    @property
    def server_key(self) -> bytes:
        return hmac.digest(self.salted, b"Server Key", _HASH)


def _name(i: int) -> str:
    return f"u{i:06d}"


def _derive(i: int) -> tuple[str, str, str, str]:
    user = _name(i)
    password = f"pw-{user}-{hashlib.sha1(user.encode()).hexdigest()[:8]}"
    salt = hashlib.sha256(f"salt/{user}".encode()).hexdigest()[:24]
    salted = hashlib.pbkdf2_hmac(_HASH, password.encode(), salt.encode(), ITERATIONS)
    return user, password, salt, salted.hex()


def _from_row(row: Iterable[str]) -> Account:
    user, password, salt, salted = row
    return Account(user=user, password=password, salt=salt.encode(), salted=bytes.fromhex(salted))


def make_accounts(n: int, cache_dir: Path, workers: int = 2) -> list[Account]:
    """``n`` deterministic accounts (``u000000``, ``u000001``, ...), from the cache file in
    ``cache_dir`` when it has enough, else derived on ``workers`` processes and cached."""
    cache = cache_dir / f"accounts-v{_CACHE_VERSION}.jsonl"
    rows: list[list[str]] = []
    if cache.exists():
        with cache.open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    if len(rows) < n:
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            rows += [list(r) for r in pool.map(_derive, range(len(rows), n), chunksize=64)]
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
        os.replace(tmp, cache)
    return [_from_row(r) for r in rows[:n]]


def rfc5803(acc: Account) -> str:
    """``SCRAM-SHA-1$<i>:<salt>$<stored>:<server>`` (RFC 5803 §3, base64 fields)."""
    import base64

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-1${ITERATIONS}:{b64(acc.salt)}${b64(acc.stored_key)}:{b64(acc.server_key)}"


def install_salted_cache(accounts: Iterable[Account]) -> int:
    """Make ``xmppx.auth``'s SCRAM client look SaltedPassword up in a table built from
    ``accounts`` (falling back to PBKDF2 for anything else).  Affects this process only:
    the generator's.  Returns the table size."""
    from xmppx.auth import _scram

    table: dict[tuple[str, bytes, bytes, int], bytes] = {
        (_HASH, a.password.encode(), a.salt, ITERATIONS): a.salted for a in accounts
    }
    real = _scram.salted_password  # type: ignore[attr-defined]

    def cached(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        hit = table.get((hash_name, password, salt, iterations))
        return hit if hit is not None else real(hash_name, password, salt, iterations)

    _scram.salted_password = cached  # type: ignore[attr-defined]
    return len(table)


def chunks(items: list[T], parts: int) -> Iterator[list[T]]:
    """``items`` split into ``parts`` nearly equal consecutive slices."""
    size, extra = divmod(len(items), parts)
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        yield items[start:end]
        start = end
