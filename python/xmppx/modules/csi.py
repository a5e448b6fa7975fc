"""XEP-0352 Client State Indication: a client that says it is inactive (a phone in a
pocket) is not woken for what can wait.

* The server lists ``<csi xmlns='urn:xmpp:csi:0'/>`` among the stream features after
  authentication (§3); the client sends the top-level elements ``<inactive/>`` and
  ``<active/>`` (§4), which are not stanzas and are not answered.
* While inactive, stanzas that can wait are held, in order, and go out just before the
  next urgent one, when the client says it is active again, when ``csi.queue_size`` are
  waiting (or half of ``limits.write_buffer_bytes``), or before the stream ends
  (``C2SConnection.hold``).  As §5 leaves the choice to the server, the rules here are
  those Prosody's ``mod_csi_simple`` made common: what can wait is presence updates
  (available and unavailable presence, presence errors) and messages with nothing for
  a person to read (chat states, receipts, read markers, typing in MUC); urgent is
  every iq, subscription requests and answers, and messages with a body, a subject, an
  encrypted payload or an invitation, including such messages inside carbons (XEP-0280).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from xmppx import ns
from xmppx.core import Element
from xmppx.modules._base import Module

if TYPE_CHECKING:
    from xmppx.server._connection import C2SConnection

__all__ = ["ClientState", "urgent"]

#: Children that make a message worth waking a client for: a text (RFC 6121 §5.2.3,
#: §5.2.4), end-to-end encryption (XEP-0384 OMEMO, XEP-0373 OpenPGP, XEP-0027), an
#: invitation (XEP-0249, XEP-0045 §7.8 in muc#user), a call (XEP-0353).
_URGENT_CHILDREN: frozenset[tuple[str, str]] = frozenset(
    {
        (ns.CLIENT, "body"),
        (ns.CLIENT, "subject"),
        ("eu.siacs.conversations.axolotl", "encrypted"),
        ("urn:xmpp:openpgp:0", "openpgp"),
        ("jabber:x:encrypted", "x"),
        ("jabber:x:conference", "x"),
        ("urn:xmpp:jingle-message:0", "propose"),
    }
)
_MUC_INVITE = ns.clark(ns.MUC_USER, "invite")
_CARBONS = (ns.clark(ns.CARBONS, "received"), ns.clark(ns.CARBONS, "sent"))
_FORWARDED = ns.clark(ns.FORWARD, "forwarded")
_MESSAGE = ns.clark(ns.CLIENT, "message")
#: presence types that can wait: updates (RFC 6121 §4), not subscriptions (§3)
_LAZY_PRESENCE = frozenset({None, "unavailable", "error", "probe"})


def urgent(stanza: Element) -> bool:
    """Whether ``stanza`` goes to an inactive client at once (see the module docstring)."""
    kind = stanza.name
    if kind == "presence":
        return stanza.get("type") not in _LAZY_PRESENCE
    if kind != "message":
        return True
    for child in stanza:
        if (child.namespace, child.name) in _URGENT_CHILDREN:
            return True
        if child.tag in _CARBONS:
            forwarded = child.find(_FORWARDED)
            inner = forwarded.find(_MESSAGE) if forwarded is not None else None
            return inner is not None and urgent(inner)
        if child.namespace == ns.MUC_USER and child.find(_MUC_INVITE) is not None:
            return True
    return False


class ClientState(Module):
    """XEP-0352 Client State Indication (see the module docstring)."""

    stream_features: ClassVar[tuple[Element, ...]] = (Element("csi", ns.CSI),)

    def on_nonza(self, session: C2SConnection, element: Element) -> bool:
        if element.namespace != ns.CSI:
            return False
        if element.name == "inactive":
            session.hold(urgent)
        elif element.name == "active":
            session.hold(None)
        else:
            return False  # unsupported-stanza-type
        return True
