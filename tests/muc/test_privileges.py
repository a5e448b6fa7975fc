"""The XEP-0045 §5 tables, checked cell by cell against the spec's text, and the role
and affiliation change rules (§5.1.3, §5.2.2, §8, §9, §10) as a table of cases."""

from __future__ import annotations

import itertools

import pytest

from xmppx.modules.muc._privileges import (
    AFFILIATION_PRIVILEGES,
    DEFAULT_ROLE,
    LIST_ACCESS,
    ROLE_PRIVILEGES,
    AffiliationPrivilege,
    ListAccess,
    RolePrivilege,
    affiliation_change_error,
    default_role,
    role_change_error,
)

# §5.1.1 "Privileges Associated With Roles", as printed (columns None, Visitor,
# Participant, Moderator; "Yes*" is a configurable default and counts as Yes).
ROLE_TABLE = """
Present in Room                     No Yes  Yes  Yes
Receive Messages                    No Yes  Yes  Yes
Receive Occupant Presence           No Yes  Yes  Yes
Broadcast Presence to All Occupants No Yes* Yes  Yes
Change Availability Status          No Yes* Yes  Yes
Change Room Nickname                No Yes* Yes  Yes
Send Private Messages               No Yes* Yes  Yes
Invite Other Users                  No Yes* Yes* Yes
Send Messages to All                No No** Yes  Yes
Modify Subject                      No No*  Yes* Yes
Kick Participants and Visitors      No No   No   Yes
Grant Voice                         No No   No   Yes
Revoke Voice                        No No   No   Yes***
"""

# §5.2.1 "Privileges Associated With Affiliations" (Outcast, None, Member, Admin, Owner).
AFFILIATION_TABLE = """
Enter Open Room                     No Yes* Yes  Yes   Yes
Register with Open Room             No Yes  N/A  N/A   N/A
Retrieve Member List                No No   Yes  Yes   Yes
Enter Members-Only Room             No No   Yes* Yes   Yes
Ban Members and Unaffiliated Users  No No   No   Yes   Yes
Edit Member List                    No No   No   Yes   Yes
Assign and Remove Moderator Role    No No   No   Yes** Yes**
Edit Admin List                     No No   No   No    Yes
Edit Owner List                     No No   No   No    Yes
Change Room Configuration           No No   No   No    Yes
Destroy Room                        No No   No   No    Yes
"""


def parse_table(text: str, columns: int) -> dict[str, list[bool]]:
    rows = {}
    for line in text.strip().splitlines():
        words = line.split()
        cells, name = words[-columns:], " ".join(words[:-columns])
        rows[name.lower()] = [c.startswith("Yes") for c in cells]
    return rows


def test_role_table_matches_the_spec() -> None:
    table = parse_table(ROLE_TABLE, 4)
    assert set(table) == {p.value for p in RolePrivilege}
    for privilege in RolePrivilege:
        got = [
            privilege in ROLE_PRIVILEGES[r] for r in ("none", "visitor", "participant", "moderator")
        ]
        assert got == table[privilege.value], privilege


def test_affiliation_table_matches_the_spec() -> None:
    table = parse_table(AFFILIATION_TABLE, 5)
    assert set(table) == {p.value for p in AffiliationPrivilege}
    for privilege in AffiliationPrivilege:
        got = [
            privilege in AFFILIATION_PRIVILEGES[a]
            for a in ("outcast", "none", "member", "admin", "owner")
        ]
        assert got == table[privilege.value], privilege


def test_hierarchies() -> None:
    """§5.1.1 / §5.2.1: "each role has all the privileges possessed by the next-lowest"
    (registering is the one affiliation privilege that is not inherited: N/A)."""
    roles = ["none", "visitor", "participant", "moderator"]
    for low, high in itertools.pairwise(roles):
        assert ROLE_PRIVILEGES[low] < ROLE_PRIVILEGES[high]
    affs = ["outcast", "none", "member", "admin", "owner"]
    for low, high in itertools.pairwise(affs):
        lower = AFFILIATION_PRIVILEGES[low] - {AffiliationPrivilege.REGISTER_WITH_OPEN_ROOM}
        assert lower <= AFFILIATION_PRIVILEGES[high]


@pytest.mark.parametrize(
    ("moderated", "affiliation", "role"),
    [
        (True, "none", "visitor"),
        (True, "member", "participant"),
        (True, "admin", "moderator"),
        (True, "owner", "moderator"),
        (False, "none", "participant"),
        (False, "member", "participant"),
        (False, "admin", "moderator"),
        (False, "owner", "moderator"),
        (True, "outcast", None),
        (False, "outcast", None),
    ],
)
def test_default_roles(moderated: bool, affiliation: str, role: str | None) -> None:
    """§5.1.2 "Initial Role Based on Affiliation"."""
    assert default_role(affiliation, moderated=moderated) == role
    assert DEFAULT_ROLE[(moderated, affiliation)] == role


# (actor role, actor affiliation, target role, target affiliation, new role) → error
ROLE_CASES = [
    # §8.2 kick: a moderator kicks participants and visitors ...
    ("moderator", "none", "participant", "none", "none", None),
    ("moderator", "admin", "visitor", "none", "none", None),
    # ... but not someone of higher affiliation
    ("moderator", "none", "participant", "member", "none", "not-allowed"),
    ("moderator", "member", "moderator", "admin", "none", "not-allowed"),
    ("moderator", "admin", "moderator", "owner", "none", "not-allowed"),
    # kicking a moderator takes an admin or owner (§5.1.3)
    ("moderator", "none", "moderator", "none", "none", "forbidden"),
    ("moderator", "admin", "moderator", "admin", "none", None),
    ("moderator", "owner", "moderator", "admin", "none", None),
    # only moderators change roles (§8)
    ("participant", "none", "visitor", "none", "participant", "forbidden"),
    ("visitor", "member", "participant", "none", "none", "forbidden"),
    # §8.3/§8.4 voice
    ("moderator", "none", "visitor", "none", "participant", None),
    ("moderator", "none", "participant", "none", "visitor", None),
    ("moderator", "owner", "moderator", "admin", "visitor", "not-allowed"),
    ("moderator", "owner", "moderator", "owner", "participant", "not-allowed"),
    # §9.6/§9.7 moderator status is the admins'
    ("moderator", "none", "participant", "none", "moderator", "forbidden"),
    ("moderator", "admin", "participant", "none", "moderator", None),
    ("moderator", "admin", "moderator", "member", "participant", None),
    ("moderator", "admin", "moderator", "admin", "participant", "not-allowed"),
    # admins and owners act even from outside the room (§5.2.1)
    ("none", "admin", "participant", "none", "moderator", None),
    ("none", "owner", "visitor", "none", "none", None),
    # no-ops and nonsense
    ("moderator", "none", "participant", "none", "participant", None),
    ("moderator", "admin", "participant", "none", "janitor", "bad-request"),
]


@pytest.mark.parametrize(
    ("actor_role", "actor_aff", "target_role", "target_aff", "new_role", "expected"), ROLE_CASES
)
def test_role_changes(
    actor_role: str,
    actor_aff: str,
    target_role: str,
    target_aff: str,
    new_role: str,
    expected: str | None,
) -> None:
    assert (
        role_change_error(
            actor_role=actor_role,
            actor_affiliation=actor_aff,
            target_role=target_role,
            target_affiliation=target_aff,
            new_role=new_role,
        )
        == expected
    )


# (actor affiliation, target affiliation, new affiliation, self?) → error; §5.2.2 chart
AFFILIATION_CASES = [
    ("admin", "none", "outcast", False, None),  # admin applies ban
    ("admin", "member", "outcast", False, None),
    ("admin", "outcast", "none", False, None),  # admin removes ban
    ("admin", "none", "member", False, None),  # admin adds to member list
    ("admin", "member", "none", False, None),
    ("admin", "none", "admin", False, "forbidden"),  # owner adds to admin list
    ("admin", "none", "owner", False, "forbidden"),
    ("admin", "owner", "outcast", False, "not-allowed"),  # §9.1 example
    ("admin", "admin", "member", False, "not-allowed"),  # "Owner changes affiliation"
    ("owner", "admin", "outcast", False, None),
    ("owner", "owner", "admin", False, None),
    ("owner", "none", "owner", False, None),
    ("admin", "admin", "outcast", True, "conflict"),  # §9.1: banning oneself
    ("owner", "owner", "outcast", True, "conflict"),
    ("member", "none", "member", False, "forbidden"),
    ("none", "none", "outcast", False, "forbidden"),
    ("owner", "none", "janitor", False, "bad-request"),
]


@pytest.mark.parametrize(
    ("actor_aff", "target_aff", "new_aff", "is_self", "expected"), AFFILIATION_CASES
)
def test_affiliation_changes(
    actor_aff: str, target_aff: str, new_aff: str, is_self: bool, expected: str | None
) -> None:
    assert (
        affiliation_change_error(
            actor_affiliation=actor_aff,
            target_affiliation=target_aff,
            new_affiliation=new_aff,
            is_self=is_self,
        )
        == expected
    )


def test_every_list_has_an_access_rule() -> None:
    assert LIST_ACCESS[("affiliation", "outcast")] is ListAccess.ADMINS
    assert LIST_ACCESS[("affiliation", "owner")] is ListAccess.OWNERS
    assert LIST_ACCESS[("role", "participant")] is ListAccess.MODERATORS
    kinds = {k for k, _ in LIST_ACCESS}
    assert kinds == {"role", "affiliation"}
