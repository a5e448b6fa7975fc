"""XEP-0045 §5 roles, affiliations and privileges, written as data.

Every permission decision of the MUC service is a lookup in the tables below or one of
the small rule functions after them; nothing in ``_room`` compares role names itself.
The tables are the spec's, row for row:

* ``ROLE_PRIVILEGES`` — §5.1.1 "Privileges Associated With Roles" (the defaults; the
  three starred rows are adjusted by room configuration, see ``CONFIGURABLE``).
* ``DEFAULT_ROLE`` — §5.1.2 "Initial Role Based on Affiliation".
* ``AFFILIATION_PRIVILEGES`` — §5.2.1 "Privileges Associated With Affiliations".
* ``role_change_error`` — §5.1.3 "Role State Chart" with §8.2–§8.5 and §9.6–§9.8.
* ``affiliation_change_error`` — §5.2.2 "Affiliation State Chart" with §9.1–§9.5 and
  §10.3–§10.8.
* ``LIST_ACCESS`` — who may read which ``muc#admin`` list (§8.5, §9.2, §9.5, §9.8,
  §10.5, §10.8).

Example (XEP-0045 §8.2, refused by ``role_change_error`` with ``not-allowed`` because
the target's affiliation is higher than the actor's)::

    <iq from='wiccarocks@shakespeare.lit/laptop' id='kicktest'
        to='coven@chat.shakespeare.lit' type='set'>
      <query xmlns='http://jabber.org/protocol/muc#admin'>
        <item nick='firstwitch' role='none'/>
      </query>
    </iq>
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, Literal, TypeAlias, get_args

__all__ = [
    "AFFILIATIONS",
    "AFFILIATION_PRIVILEGES",
    "AFFILIATION_RANK",
    "CONFIGURABLE",
    "DEFAULT_ROLE",
    "LIST_ACCESS",
    "ROLES",
    "ROLE_PRIVILEGES",
    "ROLE_RANK",
    "AffiliationName",
    "AffiliationPrivilege",
    "ListAccess",
    "RoleName",
    "RolePrivilege",
    "affiliation_change_error",
    "default_role",
    "role_change_error",
]

#: XEP-0045 §5.1: the roles, "none" being the absence of one.
RoleName: TypeAlias = Literal["moderator", "participant", "visitor", "none"]
#: XEP-0045 §5.2: the affiliations, "none" being the absence of one.
AffiliationName: TypeAlias = Literal["owner", "admin", "member", "none", "outcast"]

ROLES: Final[frozenset[str]] = frozenset(get_args(RoleName))
AFFILIATIONS: Final[frozenset[str]] = frozenset(get_args(AffiliationName))

#: §5.1.1: "roles exist in a hierarchy" — a higher rank has every lower privilege.
ROLE_RANK: Final[Mapping[str, int]] = {"none": 0, "visitor": 1, "participant": 2, "moderator": 3}
#: §5.2.1: likewise for affiliations ("an owner can do anything an admin can do").
AFFILIATION_RANK: Final[Mapping[str, int]] = {
    "outcast": 0,
    "none": 1,
    "member": 2,
    "admin": 3,
    "owner": 4,
}


class RolePrivilege(enum.Enum):
    """The rows of XEP-0045 §5.1.1 "Privileges Associated With Roles"."""

    PRESENT_IN_ROOM = "present in room"
    RECEIVE_MESSAGES = "receive messages"
    RECEIVE_OCCUPANT_PRESENCE = "receive occupant presence"
    BROADCAST_PRESENCE = "broadcast presence to all occupants"
    CHANGE_AVAILABILITY = "change availability status"
    CHANGE_NICKNAME = "change room nickname"
    SEND_PRIVATE_MESSAGES = "send private messages"
    INVITE_OTHER_USERS = "invite other users"
    SEND_MESSAGES_TO_ALL = "send messages to all"
    MODIFY_SUBJECT = "modify subject"
    KICK_PARTICIPANTS_AND_VISITORS = "kick participants and visitors"
    GRANT_VOICE = "grant voice"
    REVOKE_VOICE = "revoke voice"


_R = RolePrivilege
_VISITOR: Final = frozenset(
    {
        _R.PRESENT_IN_ROOM,
        _R.RECEIVE_MESSAGES,
        _R.RECEIVE_OCCUPANT_PRESENCE,
        _R.BROADCAST_PRESENCE,
        _R.CHANGE_AVAILABILITY,
        _R.CHANGE_NICKNAME,
        _R.SEND_PRIVATE_MESSAGES,
        _R.INVITE_OTHER_USERS,
    }
)
_PARTICIPANT: Final = _VISITOR | {_R.SEND_MESSAGES_TO_ALL, _R.MODIFY_SUBJECT}
_MODERATOR: Final = _PARTICIPANT | {
    _R.KICK_PARTICIPANTS_AND_VISITORS,
    _R.GRANT_VOICE,
    _R.REVOKE_VOICE,
}

#: §5.1.1, the default column for each role (a "Yes" or "Yes*" cell is in the set).
ROLE_PRIVILEGES: Final[Mapping[str, frozenset[RolePrivilege]]] = {
    "none": frozenset(),
    "visitor": _VISITOR,
    "participant": _PARTICIPANT,
    "moderator": _MODERATOR,
}

#: The starred cells of §5.1.1 ("configuration settings MAY modify this privilege") and
#: the ``muc#roomconfig`` field that does (§10.1.3): ``changesubject`` lets participants
#: change the subject (otherwise only moderators may), ``allowpm`` says which roles may
#: send private messages, ``allowinvites`` lets non-admins invite into a members-only
#: room (in an open room every occupant may invite).
CONFIGURABLE: Final[Mapping[RolePrivilege, str]] = {
    _R.MODIFY_SUBJECT: "muc#roomconfig_changesubject",
    _R.SEND_PRIVATE_MESSAGES: "muc#roomconfig_allowpm",
    _R.INVITE_OTHER_USERS: "muc#roomconfig_allowinvites",
}


class AffiliationPrivilege(enum.Enum):
    """The rows of XEP-0045 §5.2.1 "Privileges Associated With Affiliations"."""

    ENTER_OPEN_ROOM = "enter open room"
    REGISTER_WITH_OPEN_ROOM = "register with open room"
    RETRIEVE_MEMBER_LIST = "retrieve member list"
    ENTER_MEMBERS_ONLY_ROOM = "enter members-only room"
    BAN_MEMBERS_AND_UNAFFILIATED = "ban members and unaffiliated users"
    EDIT_MEMBER_LIST = "edit member list"
    ASSIGN_AND_REMOVE_MODERATOR = "assign and remove moderator role"
    EDIT_ADMIN_LIST = "edit admin list"
    EDIT_OWNER_LIST = "edit owner list"
    CHANGE_ROOM_CONFIGURATION = "change room configuration"
    DESTROY_ROOM = "destroy room"


_A = AffiliationPrivilege
_MEMBER: Final = frozenset(
    {_A.ENTER_OPEN_ROOM, _A.RETRIEVE_MEMBER_LIST, _A.ENTER_MEMBERS_ONLY_ROOM}
)
_ADMIN: Final = _MEMBER | {
    _A.BAN_MEMBERS_AND_UNAFFILIATED,
    _A.EDIT_MEMBER_LIST,
    _A.ASSIGN_AND_REMOVE_MODERATOR,
}
_OWNER: Final = _ADMIN | {
    _A.EDIT_ADMIN_LIST,
    _A.EDIT_OWNER_LIST,
    _A.CHANGE_ROOM_CONFIGURATION,
    _A.DESTROY_ROOM,
}

#: §5.2.1, one column per affiliation ("N/A" cells are absent: a member cannot register
#: again).  The "***" footnote (members may read the member list only in non-anonymous
#: rooms) is applied by ``LIST_ACCESS``.
AFFILIATION_PRIVILEGES: Final[Mapping[str, frozenset[AffiliationPrivilege]]] = {
    "outcast": frozenset(),
    "none": frozenset({_A.ENTER_OPEN_ROOM, _A.REGISTER_WITH_OPEN_ROOM}),
    "member": _MEMBER,
    "admin": _ADMIN,
    "owner": _OWNER,
}

#: §5.1.2 "Initial Role Based on Affiliation", keyed by (moderated room?, affiliation).
#: ``None`` is "entry is not permitted" (outcasts; non-members of a members-only room
#: are refused before this table is read).
DEFAULT_ROLE: Final[Mapping[tuple[bool, str], str | None]] = {
    (True, "none"): "visitor",
    (True, "member"): "participant",
    (True, "admin"): "moderator",
    (True, "owner"): "moderator",
    (True, "outcast"): None,
    (False, "none"): "participant",
    (False, "member"): "participant",
    (False, "admin"): "moderator",
    (False, "owner"): "moderator",
    (False, "outcast"): None,
}


def default_role(affiliation: str, *, moderated: bool) -> str | None:
    """The role a user with ``affiliation`` gets on entering (§5.1.2)."""
    return DEFAULT_ROLE[(moderated, affiliation)]


class ListAccess(enum.Enum):
    """Who may read a ``muc#admin`` list."""

    MODERATORS = "occupants with the moderator role"
    ADMINS = "admins and owners"
    OWNERS = "owners (anyone affiliated in a non-anonymous room)"
    MEMBERS = "admins and owners (members too in a non-anonymous room)"


#: Who may read each list: the voice list and the visitor list are moderator tools
#: (§8.5); the moderator list (§9.8) and the ban list (§9.2) are admin tools; the member
#: list is for admins, and for members only in non-anonymous rooms (§5.2.1 "***",
#: §9.5); the admin and owner lists are for owners, and "in non-anonymous rooms, the
#: service MAY process the request" from others (§10.5, §10.8).
LIST_ACCESS: Final[Mapping[tuple[str, str], ListAccess]] = {
    ("role", "participant"): ListAccess.MODERATORS,
    ("role", "visitor"): ListAccess.MODERATORS,
    ("role", "moderator"): ListAccess.ADMINS,
    ("affiliation", "outcast"): ListAccess.ADMINS,
    ("affiliation", "member"): ListAccess.MEMBERS,
    ("affiliation", "admin"): ListAccess.OWNERS,
    ("affiliation", "owner"): ListAccess.OWNERS,
}


def role_change_error(
    *,
    actor_role: str,
    actor_affiliation: str,
    target_role: str,
    target_affiliation: str,
    new_role: str,
) -> str | None:
    """Whether an occupant may change another's role; ``None`` if it may, otherwise the
    RFC 6120 condition to answer with.

    The rules, each with its source:

    1. Only moderators change roles (§8: "MUST be denied if ... not one of the
       moderators ... forbidden").  Admins and owners count as moderators even when not
       in the room (§5.2.1 "Assign and Remove Moderator Role").
    2. Nobody lowers the role of someone with a higher affiliation (§8.2 "A user cannot
       be kicked by a moderator with a lower affiliation", §5.1.3 "*") — ``not-allowed``.
    3. Granting or revoking the moderator role, and kicking a moderator, takes an admin
       or owner (§5.1.3 chart: "Admin or owner grants moderator status", "be kicked by an
       admin or owner"; §9.6, §9.7) — else ``forbidden``.
    4. The voice and the moderator status of an admin or owner cannot be revoked "by
       anyone" (§8.4, §9.7, §9.8): only a kick (by an equal or higher affiliation)
       removes them — ``not-allowed``.

    One sentence of §8.4 is not applied: "A moderator MUST NOT be able to revoke voice
    from a user whose affiliation is at or above the moderator's level".  Read
    literally it leaves a moderator without affiliation, or a member made moderator,
    unable to silence anyone of its own affiliation, which is what such a moderator is
    for (a room's owner hands the moderator role out by nick, §9.6, without making the
    user an admin).  Rule 2 (strictly higher) applies instead, as for kicks (§8.2), and
    as Prosody and ejabberd do; rule 4 keeps admins' and owners' voice out of reach.
    """
    if new_role not in ROLES or target_role == "none":
        return "bad-request"
    privileged = AFFILIATION_RANK[actor_affiliation] >= AFFILIATION_RANK["admin"]
    if actor_role != "moderator" and not privileged:
        return "forbidden"
    if new_role == target_role:
        return None
    lowering = ROLE_RANK[new_role] < ROLE_RANK[target_role]
    if lowering and AFFILIATION_RANK[target_affiliation] > AFFILIATION_RANK[actor_affiliation]:
        return "not-allowed"
    touches_moderator = new_role == "moderator" or target_role == "moderator"
    if touches_moderator and not privileged:
        return "forbidden"
    if (
        lowering
        and new_role != "none"
        and AFFILIATION_RANK[target_affiliation] >= AFFILIATION_RANK["admin"]
    ):
        return "not-allowed"
    return None


def affiliation_change_error(
    *,
    actor_affiliation: str,
    target_affiliation: str,
    new_affiliation: str,
    is_self: bool,
) -> str | None:
    """Whether a user may change another's affiliation; ``None`` if it may, otherwise
    the RFC 6120 condition to answer with.  The "last owner" rule needs the whole list
    and is checked by the room.

    1. Only admins and owners edit affiliations (§9: "MUST be denied if ... not one of
       the room admins ... forbidden").
    2. Granting or revoking admin or owner status is the owners' (§5.2.2 chart, §10.3,
       §10.6: "If ... does not match the bare JID of a room owner ... forbidden").
    3. An admin cannot ban or demote an owner or another admin (§5.2.2: only "Owner
       applies ban" to admins and owners; §9.1 "if an admin attempts to ban an owner,
       ... not-allowed").
    4. "If an admin or owner attempts to ban himself, the service MUST deny the request
       and return a conflict error" (§9.1).
    """
    if new_affiliation not in AFFILIATIONS:
        return "bad-request"
    actor = AFFILIATION_RANK[actor_affiliation]
    if actor < AFFILIATION_RANK["admin"]:
        return "forbidden"
    if new_affiliation == "outcast" and is_self:
        return "conflict"
    owner = AFFILIATION_RANK["owner"]
    if AFFILIATION_RANK[target_affiliation] >= AFFILIATION_RANK["admin"] and actor < owner:
        return "not-allowed"
    if AFFILIATION_RANK[new_affiliation] >= AFFILIATION_RANK["admin"] and actor < owner:
        return "forbidden"
    return None
