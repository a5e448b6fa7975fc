"""Room configuration: the ``muc#roomconfig`` form (XEP-0045 §10.1.3, §10.2, §16.5.3),
the ``muc#roominfo`` disco extension (§6.3) and the room's disco features (§16.3).

``RoomConfig`` is a frozen value; ``config_form`` renders it as the form an owner
fetches, ``apply_form`` reads a submitted form into a new ``RoomConfig`` (or raises
``StanzaError("not-acceptable")`` for options that violate service policy, §10.1.3),
and ``to_json``/``from_json`` are its stored shape (``MucRoom.config``).

Example (XEP-0045 §10.1.3, an owner's submission)::

    <iq from='crone1@shakespeare.lit/desktop' id='create2'
        to='coven@chat.shakespeare.lit' type='set'>
      <query xmlns='http://jabber.org/protocol/muc#owner'>
        <x xmlns='jabber:x:data' type='submit'>
          <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>
          <field var='muc#roomconfig_roomname'><value>A Dark Cave</value></field>
          <field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field>
          <field var='muc#roomconfig_roomsecret'><value>cauldronburn</value></field>
        </x>
      </query>
    </iq>
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from xmppx import ns
from xmppx.core import Element
from xmppx.errors import StanzaError

__all__ = [
    "ALLOW_PM",
    "FORM_ROOMCONFIG",
    "FORM_ROOMINFO",
    "WHOIS",
    "RoomConfig",
    "apply_form",
    "config_form",
    "room_features",
    "roominfo_form",
]

FORM_ROOMCONFIG: Final = "http://jabber.org/protocol/muc#roomconfig"
FORM_ROOMINFO: Final = "http://jabber.org/protocol/muc#roominfo"

#: §10.1.3 ``muc#roomconfig_whois``: who may discover real JIDs (semi-anonymous or
#: non-anonymous room).  "none" (fully anonymous) is deprecated and not offered.
WHOIS: Final = ("moderators", "anyone")
#: §10.1.3 ``muc#roomconfig_allowpm``: which roles may send private messages.
ALLOW_PM: Final = ("anyone", "participants", "moderators", "none")
#: §10.1.3: the example's maximum-occupants choices ("none" means the service's limit).
MAX_USERS_CHOICES: Final = (10, 20, 30, 50, 100)

_TRUE: Final = frozenset({"1", "true"})
_FALSE: Final = frozenset({"0", "false"})


@dataclass(frozen=True, kw_only=True, slots=True)
class RoomConfig:
    """The owner-settable options of a room (§10.1.3) with the service's defaults.

    ``max_users`` 0 means "none" (the service's limit applies); ``history_fetch`` is
    ``muc#maxhistoryfetch``, the most history messages sent on entering.
    """

    name: str = ""
    description: str = ""
    lang: str = ""
    persistent: bool = False
    public: bool = True
    members_only: bool = False
    moderated: bool = False
    password_protected: bool = False
    password: str = ""
    max_users: int = 0
    whois: str = "moderators"
    history_fetch: int = 20
    change_subject: bool = False
    allow_invites: bool = False
    allow_pm: str = "anyone"

    @property
    def non_anonymous(self) -> bool:
        """§4: a non-anonymous room shows every occupant's full JID to all."""
        return self.whois == "anyone"

    def to_json(self) -> dict[str, Any]:
        """The stored shape (``MucRoom.config``): field name → value."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoomConfig:
        """Read a stored config; unknown keys and values of the wrong type are ignored
        (a newer or older xmppx may have written them) so a room always loads."""
        defaults = cls()
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = data.get(f.name)
            default = getattr(defaults, f.name)
            if type(value) is type(default):
                values[f.name] = value
        return cls(**values)


def _bool(values: Sequence[str], var: str) -> bool:
    text = values[0].strip().lower() if values else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise StanzaError("not-acceptable", f"{var} must be a boolean")


def apply_form(
    config: RoomConfig,
    submitted: Mapping[str, Sequence[str]],
    *,
    max_users_cap: int,
    history_cap: int,
) -> RoomConfig:
    """``config`` with the submitted ``muc#roomconfig`` values (XEP-0004 §3.4) applied.

    Fields not submitted keep their value (an empty submission accepts the current or
    default configuration, §10.1.2).  Raises ``StanzaError("not-acceptable")`` for a
    value the service does not accept: a bad boolean or number, an unknown option, a
    password-protected room without a password (§10.1.3), a maximum above the
    service's ``max_users_cap`` or a history size above ``history_cap``.
    """
    changes: dict[str, Any] = {}
    text_fields = {
        "muc#roomconfig_roomname": "name",
        "muc#roomconfig_roomdesc": "description",
        "muc#roomconfig_lang": "lang",
        "muc#roomconfig_roomsecret": "password",
    }
    bool_fields = {
        "muc#roomconfig_persistentroom": "persistent",
        "muc#roomconfig_publicroom": "public",
        "muc#roomconfig_membersonly": "members_only",
        "muc#roomconfig_moderatedroom": "moderated",
        "muc#roomconfig_passwordprotectedroom": "password_protected",
        "muc#roomconfig_changesubject": "change_subject",
        "muc#roomconfig_allowinvites": "allow_invites",
    }
    for var, values in submitted.items():
        if var in text_fields:
            changes[text_fields[var]] = "\n".join(values)
        elif var in bool_fields:
            changes[bool_fields[var]] = _bool(values, var)
        elif var == "muc#roomconfig_whois":
            whois = values[0] if values else ""
            if whois not in WHOIS:
                raise StanzaError("not-acceptable", f"whois must be one of {', '.join(WHOIS)}")
            changes["whois"] = whois
        elif var == "muc#roomconfig_allowpm":
            allow = values[0] if values else ""
            if allow not in ALLOW_PM:
                raise StanzaError("not-acceptable", f"allowpm must be one of {', '.join(ALLOW_PM)}")
            changes["allow_pm"] = allow
        elif var == "muc#roomconfig_maxusers":
            text = values[0].strip() if values else ""
            if text in ("", "none", "0"):
                changes["max_users"] = 0
            else:
                n = _int(text, var)
                if n < 1 or n > max_users_cap:
                    raise StanzaError(
                        "not-acceptable", f"maxusers must be 1 to {max_users_cap} or none"
                    )
                changes["max_users"] = n
        elif var == "muc#maxhistoryfetch":
            n = _int(values[0].strip() if values else "", var)
            if n < 0 or n > history_cap:
                raise StanzaError("not-acceptable", f"maxhistoryfetch must be 0 to {history_cap}")
            changes["history_fetch"] = n
    new = dataclasses.replace(config, **changes)
    if new.password_protected and not new.password:
        raise StanzaError("not-acceptable", "a password-protected room needs a password")
    if not new.password_protected and new.password:
        new = dataclasses.replace(new, password="")
    return new


def _int(text: str, var: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StanzaError("not-acceptable", f"{var} must be a number") from None


def _field(
    x: Element,
    var: str,
    ftype: str,
    label: str,
    values: Iterable[str] = (),
    options: Iterable[tuple[str, str]] = (),
) -> None:
    attrs = {"var": var, "type": ftype}
    if label:
        attrs["label"] = label
    field = Element("field", ns.DATA_FORMS, attrs)
    for v in values:
        field.append(Element("value", ns.DATA_FORMS, text=v))
    for opt_label, opt_value in options:
        opt = Element("option", ns.DATA_FORMS, {"label": opt_label})
        opt.append(Element("value", ns.DATA_FORMS, text=opt_value))
        field.append(opt)
    x.append(field)


def _b(value: bool) -> list[str]:
    return ["1" if value else "0"]


def config_form(
    config: RoomConfig,
    *,
    room: str,
    admins: Sequence[str],
    owners: Sequence[str],
    history_cap: int,
) -> Element:
    """The ``muc#roomconfig`` form with the current values (§10.1.3, §10.2)."""
    x = Element("x", ns.DATA_FORMS, {"type": "form"})
    x.append(Element("title", ns.DATA_FORMS, text=f"Configuration for {room}"))
    x.append(
        Element(
            "instructions",
            ns.DATA_FORMS,
            text="Complete this form to configure the room, or submit it as is to "
            "accept the current configuration.",
        )
    )
    _field(x, "FORM_TYPE", "hidden", "", [FORM_ROOMCONFIG])
    _field(x, "muc#roomconfig_roomname", "text-single", "Natural-Language Room Name", [config.name])
    _field(
        x,
        "muc#roomconfig_roomdesc",
        "text-single",
        "Short Description of Room",
        [config.description],
    )
    _field(
        x,
        "muc#roomconfig_lang",
        "text-single",
        "Natural Language for Room Discussions",
        [config.lang],
    )
    _field(
        x,
        "muc#roomconfig_changesubject",
        "boolean",
        "Allow Occupants to Change Subject?",
        _b(config.change_subject),
    )
    _field(
        x,
        "muc#roomconfig_allowinvites",
        "boolean",
        "Allow Members to Invite Others?",
        _b(config.allow_invites),
    )
    _field(
        x,
        "muc#roomconfig_allowpm",
        "list-single",
        "Who Can Send Private Messages?",
        [config.allow_pm],
        [
            ("Anyone", "anyone"),
            ("Anyone with Voice", "participants"),
            ("Moderators Only", "moderators"),
            ("Nobody", "none"),
        ],
    )
    _field(
        x,
        "muc#roomconfig_maxusers",
        "list-single",
        "Maximum Number of Occupants",
        [str(config.max_users) if config.max_users else "none"],
        [(str(n), str(n)) for n in MAX_USERS_CHOICES] + [("None", "none")],
    )
    _field(
        x,
        "muc#roomconfig_publicroom",
        "boolean",
        "Make Room Publicly Searchable?",
        _b(config.public),
    )
    _field(
        x,
        "muc#roomconfig_persistentroom",
        "boolean",
        "Make Room Persistent?",
        _b(config.persistent),
    )
    _field(
        x, "muc#roomconfig_moderatedroom", "boolean", "Make Room Moderated?", _b(config.moderated)
    )
    _field(
        x,
        "muc#roomconfig_membersonly",
        "boolean",
        "Make Room Members-Only?",
        _b(config.members_only),
    )
    _field(
        x,
        "muc#roomconfig_passwordprotectedroom",
        "boolean",
        "Password Required to Enter?",
        _b(config.password_protected),
    )
    _field(
        x,
        "muc#roomconfig_roomsecret",
        "text-private",
        "Password",
        [config.password] if config.password else [],
    )
    _field(
        x,
        "muc#roomconfig_whois",
        "list-single",
        "Who May Discover Real JIDs?",
        [config.whois],
        [("Moderators Only", "moderators"), ("Anyone", "anyone")],
    )
    _field(
        x,
        "muc#maxhistoryfetch",
        "text-single",
        f"Maximum Number of History Messages Returned by Room (0 to {history_cap})",
        [str(config.history_fetch)],
    )
    _field(x, "muc#roomconfig_roomadmins", "jid-multi", "Room Admins", admins)
    _field(x, "muc#roomconfig_roomowners", "jid-multi", "Room Owners", owners)
    return x


def room_features(config: RoomConfig) -> list[str]:
    """The room's disco features (§6.3, registered in §16.3): one of each antonym pair."""
    return [
        ns.MUC,
        "http://jabber.org/protocol/muc#stable_id",
        "http://jabber.org/protocol/muc#self-ping-optimization",  # XEP-0410 §3.3
        "muc_public" if config.public else "muc_hidden",
        "muc_persistent" if config.persistent else "muc_temporary",
        "muc_membersonly" if config.members_only else "muc_open",
        "muc_moderated" if config.moderated else "muc_unmoderated",
        "muc_nonanonymous" if config.non_anonymous else "muc_semianonymous",
        "muc_passwordprotected" if config.password_protected else "muc_unsecured",
    ]


def roominfo_form(
    config: RoomConfig, *, subject: str, occupants: int, contacts: Sequence[str]
) -> Element:
    """The §6.3 extended disco information (``muc#roominfo``, XEP-0128)."""
    x = Element("x", ns.DATA_FORMS, {"type": "result"})
    _field(x, "FORM_TYPE", "hidden", "", [FORM_ROOMINFO])
    _field(x, "muc#roominfo_description", "text-single", "Description", [config.description])
    _field(x, "muc#roominfo_subject", "text-single", "Current Discussion Topic", [subject])
    _field(x, "muc#roominfo_occupants", "text-single", "Number of occupants", [str(occupants)])
    _field(
        x,
        "muc#roomconfig_changesubject",
        "boolean",
        "Subject can be modified",
        _b(config.change_subject),
    )
    _field(
        x,
        "muc#maxhistoryfetch",
        "text-single",
        "Maximum Number of History Messages Returned by Room",
        [str(config.history_fetch)],
    )
    _field(x, "muc#roominfo_contactjid", "jid-multi", "Contact Addresses", contacts)
    if config.lang:
        _field(x, "muc#roominfo_lang", "text-single", "Language of discussion", [config.lang])
    return x
