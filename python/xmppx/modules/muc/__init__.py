"""XEP-0045 multi-user chat at ``conference.<domain>`` (configuration key ``muc.domain``):
rooms, occupants, roles and affiliations, history, subjects, invitations, voice requests,
persistence.

Load it by adding ``MucService`` to the server's modules.  The package is split by
concern: ``_privileges`` (the §5 permission tables as data), ``_config`` (the
``muc#roomconfig`` and ``muc#roominfo`` forms), ``_stanzas`` (what rooms send),
``_room`` (one room, sans-I/O) and ``_service`` (routing, limits, persistence).

Example (XEP-0045 §7.2.1, entering a room)::

    <presence from='hag66@shakespeare.lit/pda' id='n13mt3l'
              to='coven@chat.shakespeare.lit/thirdwitch'>
      <x xmlns='http://jabber.org/protocol/muc'/>
    </presence>
"""

from xmppx.modules.muc._config import RoomConfig
from xmppx.modules.muc._privileges import (
    AFFILIATION_PRIVILEGES,
    DEFAULT_ROLE,
    ROLE_PRIVILEGES,
    AffiliationPrivilege,
    RolePrivilege,
    affiliation_change_error,
    role_change_error,
)
from xmppx.modules.muc._room import Limits, Room
from xmppx.modules.muc._service import MucService

__all__ = [
    "AFFILIATION_PRIVILEGES",
    "DEFAULT_ROLE",
    "ROLE_PRIVILEGES",
    "AffiliationPrivilege",
    "Limits",
    "MucService",
    "RolePrivilege",
    "Room",
    "RoomConfig",
    "affiliation_change_error",
    "role_change_error",
]
