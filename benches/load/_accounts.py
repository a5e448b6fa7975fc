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
    "MUC_DOMAIN",
    "Account",
    "ImLayout",
    "RosterEntry",
    "chunks",
    "install_salted_cache",
    "make_accounts",
    "rfc5803",
]

DOMAIN: Final = "localhost"
#: The XEP-0045 service of every server (xmppx's default, Prosody's component, ejabberd's
#: ``conference.@HOST@``).
MUC_DOMAIN: Final = f"conference.{DOMAIN}"
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


@dataclass(frozen=True, kw_only=True, slots=True)
class RosterEntry:
    """One roster item (RFC 6121 §2.1.2) as provisioned on every server."""

    jid: str
    name: str
    groups: tuple[str, ...] = ()
    subscription: str = "both"


@dataclass(frozen=True, kw_only=True, slots=True)
class ImLayout:
    """Which accounts the issue-4 and issue-5 scenarios use: a block after the issue-3
    accounts (index ``base`` on), so the login, idle and chat accounts keep empty rosters
    and their figures stay comparable with earlier runs.

    - ``cliques`` x ``clique_size`` users: each has the other ``clique_size - 1`` of its
      clique on its roster with subscription ``both`` (presence storm);
    - one user with ``big_roster`` contacts (``contact0000@DOMAIN`` ...: accounts that do
      not exist, which a roster fetch does not care about);
    - the offline recipient (no roster) and its sender;
    - ``muc_users`` users without rosters for the MUC scenarios.
    """

    base: int
    cliques: int
    clique_size: int
    big_roster: int
    muc_users: int

    @property
    def clique_users(self) -> range:
        return range(self.base, self.base + self.cliques * self.clique_size)

    @property
    def roster_user(self) -> int:
        return self.clique_users.stop

    @property
    def offline_recipient(self) -> int:
        return self.roster_user + 1

    @property
    def offline_sender(self) -> int:
        return self.roster_user + 2

    @property
    def muc_users_range(self) -> range:
        return range(self.roster_user + 3, self.roster_user + 3 + self.muc_users)

    @property
    def total(self) -> int:
        """Accounts needed (indexes 0 .. total - 1)."""
        return self.muc_users_range.stop

    def rosters(self, accounts: list[Account]) -> dict[str, list[RosterEntry]]:
        """localpart -> roster items, for every account that has a roster."""
        out: dict[str, list[RosterEntry]] = {}
        users = [accounts[i] for i in self.clique_users]
        for c in range(self.cliques):
            members = users[c * self.clique_size : (c + 1) * self.clique_size]
            group = (f"Clique {c}",)
            for me in members:
                out[me.user] = [
                    RosterEntry(jid=o.jid, name=o.user, groups=group)
                    for o in members
                    if o is not me
                ]
        out[accounts[self.roster_user].user] = [
            RosterEntry(
                jid=f"contact{i:04d}@{DOMAIN}", name=f"Contact {i}", groups=(f"Group {i % 20}",)
            )
            for i in range(self.big_roster)
        ]
        return out

    def clique_of(self, index: int) -> int:
        """The clique number of account ``index`` (one of ``clique_users``)."""
        return (index - self.base) // self.clique_size
