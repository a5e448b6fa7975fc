"""Builders for the stanzas a MUC room sends (XEP-0045 §7–§10), so ``_room`` reads as
the use cases and not as element plumbing.

Example (XEP-0045 §8.2, the kicked occupant's own notification)::

    <presence from='harfleur@chat.shakespeare.lit/pistol'
              to='pistol@shakespeare.lit/harfleur' type='unavailable'>
      <x xmlns='http://jabber.org/protocol/muc#user'>
        <item affiliation='none' role='none'>
          <actor nick='Fluellen'/>
          <reason>Avaunt, you cullion!</reason>
        </item>
        <status code='110'/>
        <status code='307'/>
      </x>
    </presence>
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from xmppx import ns
from xmppx.core import Element
from xmppx.errors import StanzaError, stanza_error_reply

__all__ = [
    "Destroy",
    "delay",
    "iq_result",
    "muc_user_x",
    "not_in_room",
    "presence_error",
    "reply_error",
    "stamp",
]

#: XEP-0045 §16.6 status codes used by this service, by name.
SELF: Final = "110"
NON_ANONYMOUS: Final = "100"
ROOM_CREATED: Final = "201"
NICK_MODIFIED: Final = "210"
BANNED: Final = "301"
NEW_NICK: Final = "303"
KICKED: Final = "307"
AFFILIATION_CHANGED: Final = "321"
MEMBERS_ONLY: Final = "322"
SHUTDOWN: Final = "332"
ERROR_REMOVAL: Final = "333"
CONFIG_CHANGED: Final = "104"
NOW_NON_ANONYMOUS: Final = "172"
NOW_SEMI_ANONYMOUS: Final = "173"


@dataclass(frozen=True, kw_only=True, slots=True)
class Destroy:
    """A §10.9 room destruction notice: alternate venue, reason, venue password."""

    jid: str = ""
    reason: str = ""
    password: str = ""

    def element(self, namespace: str) -> Element:
        attrs = {"jid": self.jid} if self.jid else {}
        el = Element("destroy", namespace, attrs)
        if self.reason:
            el.append(Element("reason", namespace, text=self.reason))
        if self.password:
            el.append(Element("password", namespace, text=self.password))
        return el


def muc_user_x(
    item: Mapping[str, str],
    *,
    codes: Iterable[str] = (),
    actor_nick: str = "",
    reason: str = "",
    destroy: Destroy | None = None,
) -> Element:
    """``<x xmlns='…muc#user'><item …/>[<destroy/>]<status code/>…</x>`` (§7.2.2)."""
    x = Element("x", ns.MUC_USER)
    it = Element("item", ns.MUC_USER, dict(item))
    if actor_nick:
        it.append(Element("actor", ns.MUC_USER, {"nick": actor_nick}))
    if reason:
        it.append(Element("reason", ns.MUC_USER, text=reason))
    x.append(it)
    if destroy is not None:
        x.append(destroy.element(ns.MUC_USER))
    for code in sorted(set(codes)):
        x.append(Element("status", ns.MUC_USER, {"code": code}))
    return x


def not_in_room(occupant_jid: str, affiliation: str) -> Element:
    """§7.2.18: the answer to presence without ``<x xmlns='…muc'/>`` from a
    non-occupant — an explicit kick with 110, 307 and 333, never a join."""
    p = Element("presence", ns.CLIENT, {"type": "unavailable", "from": occupant_jid})
    p.append(
        muc_user_x(
            {"affiliation": affiliation, "role": "none"},
            codes=(SELF, KICKED, ERROR_REMOVAL),
            reason="You are not in the room.",
        )
    )
    return p


def presence_error(stanza: Element, error: StanzaError, *, room: str) -> Element:
    """The §7.2 error answer to a presence: ``from``/``to`` swapped, an empty
    ``<x xmlns='…muc'/>`` (never echoing the password) and the error ``by`` the room."""
    attrs = {"type": "error"}
    for key, new in (("id", "id"), ("from", "to"), ("to", "from")):
        value = stanza.get(key)
        if value is not None:
            attrs[new] = value
    reply = Element("presence", ns.CLIENT, attrs)
    reply.append(Element("x", ns.MUC))
    reply.append(error.to_element(by=room))
    return reply


def reply_error(stanza: Element, error: StanzaError, *, room: str) -> Element | None:
    """The error answer to a message or iq (RFC 6120 §8.3.1), with ``by`` the room; the
    original payload is kept as the §7–§10 examples show.  ``None`` for an error."""
    return stanza_error_reply(stanza, error, by=room)


def iq_result(stanza: Element, payload: Element | None = None) -> Element:
    """The ``result`` answer to an iq get/set (RFC 6120 §8.2.3)."""
    attrs = {"type": "result", "id": stanza.get("id") or ""}
    to = stanza.get("to")
    if to is not None:
        attrs["from"] = to
    sender = stanza.get("from")
    if sender is not None:
        attrs["to"] = sender
    result = Element("iq", ns.CLIENT, attrs)
    if payload is not None:
        result.append(payload)
    return result


def stamp(when: datetime.datetime) -> str:
    """XEP-0082 DateTime in UTC with a ``Z``."""
    utc = when.astimezone(datetime.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def delay(when: datetime.datetime, *, by: str) -> Element:
    """XEP-0203 ``<delay/>`` whose ``from`` is the room (§7.2.13, §7.2.15)."""
    return Element("delay", ns.DELAY, {"from": by, "stamp": stamp(when)})
