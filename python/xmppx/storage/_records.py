"""Records exchanged with the stores: frozen, keyword-only dataclasses of plain values.

Values are ``str``/``bytes``/``int``/``bool``/``datetime`` only.  Stanzas are stored as
their serialized XML ``bytes`` so the storage layer never imports the XML core; JIDs are
strings already normalized by the caller (users are bare JIDs ``localpart@domain``).
Each record checks its own invariants in ``__post_init__`` and raises ``ValueError``,
so a malformed record never reaches a database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, TypeAlias, get_args

__all__ = [
    "SCRAM_HASHES",
    "Affiliation",
    "JsonValue",
    "LastActivity",
    "MucAffiliation",
    "MucRoom",
    "NewAccount",
    "OfflineMessage",
    "PendingSubscription",
    "Roster",
    "RosterItem",
    "RosterState",
    "ScramCredentials",
    "Subscription",
]

#: Hash names accepted in :class:`ScramCredentials`, with the digest size in bytes that
#: ``stored_key`` and ``server_key`` must have (RFC 5802 §3: both are H() outputs).
SCRAM_HASHES: Final[Mapping[str, int]] = {"sha1": 20, "sha256": 32, "sha512": 64}

#: RFC 6121 §2.1.2.5 subscription states stored for a roster item.  ``remove`` is a
#: request, never a stored state.
Subscription: TypeAlias = Literal["none", "to", "from", "both"]
_SUBSCRIPTIONS: Final = frozenset(get_args(Subscription))

#: XEP-0045 §5.2 affiliations that are stored.  ``none`` is the absence of a record.
Affiliation: TypeAlias = Literal["owner", "admin", "member", "outcast"]
_AFFILIATIONS: Final = frozenset(get_args(Affiliation))

#: A value ``json.dumps`` accepts without a custom encoder.
JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"


def _bare_jid_parts(what: str, jid: str) -> tuple[str, str]:
    local, at, domain = jid.rpartition("@")
    if not at or not local or not domain or "/" in domain:
        raise ValueError(f"{what} must be a bare JID 'localpart@domain', got {jid!r}")
    return local, domain


def domain_of(user: str) -> str:
    """The domain part of the bare JID ``user``; ``ValueError`` without a localpart."""
    return _bare_jid_parts("user", user)[1]


@dataclass(frozen=True, kw_only=True, slots=True)
class ScramCredentials:
    """SCRAM keys for one hash (RFC 5802 §3), never a password.

    ``hash_name`` is a key of :data:`SCRAM_HASHES` (``"sha1"`` for SCRAM-SHA-1,
    ``"sha256"`` for SCRAM-SHA-256, ...).  ``stored_key = H(ClientKey)`` and
    ``server_key = HMAC(SaltedPassword, "Server Key")`` must have the digest size of
    that hash; ``iterations`` is at least 1 and ``salt`` is not empty.
    """

    hash_name: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __post_init__(self) -> None:
        size = SCRAM_HASHES.get(self.hash_name)
        if size is None:
            raise ValueError(
                f"unknown SCRAM hash {self.hash_name!r}; expected one of {sorted(SCRAM_HASHES)}"
            )
        if not self.salt:
            raise ValueError("SCRAM salt must not be empty")
        if self.iterations < 1:
            raise ValueError(f"SCRAM iterations must be >= 1, got {self.iterations}")
        for field in ("stored_key", "server_key"):
            value: bytes = getattr(self, field)
            if len(value) != size:
                raise ValueError(
                    f"{field} for {self.hash_name} must be {size} bytes, got {len(value)}"
                )


def check_credentials(credentials: tuple[ScramCredentials, ...]) -> None:
    """``ValueError`` unless there is at least one record and each hash appears once."""
    if not credentials:
        raise ValueError("an account needs at least one SCRAM credentials record")
    names = [c.hash_name for c in credentials]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate SCRAM hash in credentials: {names}")


@dataclass(frozen=True, kw_only=True, slots=True)
class NewAccount:
    """One account for :meth:`AccountStore.create_many`: a bare JID and its credentials.

    ``credentials`` holds one record per hash (at least one).
    """

    user: str
    credentials: tuple[ScramCredentials, ...]

    def __post_init__(self) -> None:
        domain_of(self.user)
        check_credentials(self.credentials)


@dataclass(frozen=True, kw_only=True, slots=True)
class RosterItem:
    """One roster item (RFC 6121 §2.1.2), keyed by the contact's bare JID.

    * ``name``: the user-assigned handle, ``None`` when absent (``""`` is kept as is).
    * ``subscription``: ``none``/``to``/``from``/``both`` (§2.1.2.5).
    * ``ask``: ``True`` when the user sent a subscription request still pending, i.e.
      ``ask='subscribe'`` (§2.1.2.2).
    * ``approved``: the user pre-approved the contact's subscription (§3.4).
    * ``groups``: group names in the user's order, no duplicates, no empty names
      (§2.1.2.4 forbids both).
    """

    contact: str
    name: str | None = None
    subscription: Subscription = "none"
    ask: bool = False
    approved: bool = False
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.contact:
            raise ValueError("roster item contact must not be empty")
        if self.subscription not in _SUBSCRIPTIONS:
            raise ValueError(
                f"subscription must be one of {sorted(_SUBSCRIPTIONS)}, got {self.subscription!r}"
            )
        if "" in self.groups:
            raise ValueError("roster group names must not be empty")
        if len(set(self.groups)) != len(self.groups):
            raise ValueError(f"duplicate roster group in {self.groups!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Roster:
    """A user's whole roster and its version, read in one consistent snapshot.

    ``version`` is opaque (compare for equality only, RFC 6121 §2.6); it changes on every
    change to an item and never repeats for a user, even across account deletion.
    ``items`` are sorted by contact (code-point order).
    """

    version: str
    items: tuple[RosterItem, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class PendingSubscription:
    """An inbound subscription request kept until the user answers (RFC 6121 §3.1.3).

    ``stanza`` is the serialized ``<presence type='subscribe'/>`` to redeliver at login.
    """

    contact: str
    stanza: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class RosterState:
    """Everything a login needs from the roster store, read in one snapshot: the roster
    (items and version, as :meth:`~xmppx.storage.RosterStore.get_roster`) and the
    pending inbound subscription requests, oldest first (as
    :meth:`~xmppx.storage.RosterStore.list_pending`)."""

    roster: Roster
    pending: tuple[PendingSubscription, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class OfflineMessage:
    """A stored offline stanza (XEP-0160).  ``id`` grows with arrival and is never reused,
    so a later ``delete(ids)`` can never remove a message stored after the ``fetch``."""

    id: int
    stanza: bytes
    stamp: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class LastActivity:
    """When the user last went offline, and the status text of that unavailable presence
    (XEP-0012 §5).  ``stamp`` is timezone-aware; returned in UTC."""

    stamp: datetime
    status: str = ""

    def __post_init__(self) -> None:
        if self.stamp.tzinfo is None or self.stamp.utcoffset() is None:
            raise ValueError(f"LastActivity.stamp must be timezone-aware, got {self.stamp!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class MucRoom:
    """A persistent room (XEP-0045 §10.2).

    * ``jid``: the room's bare JID ``room@service``.
    * ``config``: the room configuration as JSON-serialisable data (the MUC module owns
      its keys); stored as JSON, so tuples come back as lists.  Do not mutate it.
    * ``subject``/``subject_author``: the current subject and the occupant nick that set
      it (``""`` when none, XEP-0045 §8.1).
    """

    jid: str
    config: Mapping[str, JsonValue]
    subject: str = ""
    subject_author: str = ""

    def __post_init__(self) -> None:
        _bare_jid_parts("room jid", self.jid)
        try:
            json.dumps(self.config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"room config is not JSON-serialisable: {exc}") from exc

    @property
    def service(self) -> str:
        """The MUC service domain of the room (the part after ``@``)."""
        return _bare_jid_parts("room jid", self.jid)[1]


@dataclass(frozen=True, kw_only=True, slots=True)
class MucAffiliation:
    """A long-lived affiliation of a bare JID with a room (XEP-0045 §5.2, §9, §10).

    ``affiliation`` is ``owner``/``admin``/``member``/``outcast`` (``none`` is "no
    record"); ``reason`` is the optional text given when it was set; ``nick`` a reserved
    room nickname (§7.12) or ``None``.  Nick uniqueness within a room is the MUC
    module's rule, not enforced here.
    """

    room: str
    user: str
    affiliation: Affiliation
    reason: str = ""
    nick: str | None = None

    def __post_init__(self) -> None:
        _bare_jid_parts("room jid", self.room)
        if not self.user:
            raise ValueError("affiliation user must not be empty")
        if self.affiliation not in _AFFILIATIONS:
            raise ValueError(
                f"affiliation must be one of {sorted(_AFFILIATIONS)}, got {self.affiliation!r}"
            )
