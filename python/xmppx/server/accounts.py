"""Account operations shared by the CLI, XEP-0077 registration and XEP-0133 admin
commands: passwords become SCRAM keys (RFC 5802 §3) for every hash the server offers and
are never stored."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from xmppx.auth import derive_scram_credentials
from xmppx.core import BareJID, JIDError, parse_jid

if TYPE_CHECKING:
    from xmppx.storage import ScramCredentials as StoredCredentials
    from xmppx.storage import Storage

__all__ = [
    "SCRAM_HASHES",
    "AccountError",
    "create_account",
    "credentials_for",
    "parse_user",
    "set_password",
]

#: Hashes we keep keys for: SCRAM-SHA-256 (RFC 7677) first, SCRAM-SHA-1 for old clients.
SCRAM_HASHES: Sequence[str] = ("sha256", "sha1")


class AccountError(Exception):
    """A user-facing account problem (bad JID, wrong domain, empty password)."""


def parse_user(jid: str, domain: str, *, name_alone: bool = True) -> BareJID:
    """The bare JID of a local account named ``jid``: ``user@domain``, or with
    ``name_alone`` (the command line's convenience) just ``user``.  Without it, as for a
    XEP-0133 ``jid-single`` field, text without ``@`` is a domain's JID, not an account's
    (``AccountError``)."""
    if "@" not in jid and not name_alone:
        raise AccountError(f"{jid!r} is not a user's JID user@domain")
    text = jid if "@" in jid else f"{jid}@{domain}"
    try:
        parsed = parse_jid(text)
    except JIDError as exc:
        raise AccountError(f"{jid!r} is not a valid JID: {exc}") from None
    if not isinstance(parsed, BareJID) or not parsed.local:
        raise AccountError(f"{jid!r} must be a bare JID user@domain")
    if parsed.domain != domain:
        raise AccountError(f"{jid!r} is not on this server's domain {domain}")
    return parsed


def credentials_for(
    password: str, *, iterations: int | None = None
) -> tuple[StoredCredentials, ...]:
    """Storage records of the SCRAM keys for ``password`` (``AccountError`` if unusable)."""
    from xmppx.storage import ScramCredentials as Stored

    out = []
    for hash_name in SCRAM_HASHES:
        try:
            c = (
                derive_scram_credentials(password, hash_name)
                if iterations is None
                else derive_scram_credentials(password, hash_name, iterations=iterations)
            )
        except ValueError as exc:
            raise AccountError(f"unusable password: {exc}") from None
        out.append(
            Stored(
                hash_name=c.hash_name,
                salt=c.salt,
                iterations=c.iterations,
                stored_key=c.stored_key,
                server_key=c.server_key,
            )
        )
    return tuple(out)


async def create_account(storage: Storage, user: BareJID, password: str) -> None:
    """Create ``user`` (``AccountExists`` from storage if taken)."""
    await storage.accounts.create(str(user), await _derive(password))


async def set_password(storage: Storage, user: BareJID, password: str) -> None:
    await storage.accounts.set_credentials(str(user), await _derive(password))


async def _derive(password: str) -> tuple[StoredCredentials, ...]:
    """``credentials_for`` in a worker thread: PBKDF2 for every hash takes milliseconds
    that the event loop (every other connection) must not wait for."""
    return await asyncio.get_running_loop().run_in_executor(None, credentials_for, password)
