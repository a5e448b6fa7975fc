"""XEP-0352 Client State Indication: a client that says it is inactive (a phone in a
pocket) is not woken for what can wait.

* The server lists ``<csi xmlns='urn:xmpp:csi:0'/>`` among the stream features after
  authentication (§3); the client sends the top-level elements ``<inactive/>`` and
  ``<active/>`` (§4), which are not stanzas and are not answered.
* While inactive, stanzas that can wait are held, in order, and go out just before the
  next urgent one, when the client says it is active again, when ``csi.queue_size`` are
  waiting (or half of ``limits.write_buffer_bytes``), or before the stream ends
  (``C2SConnection.hold``).  With XEP-0198 what is held counts towards what the client
  may leave unacknowledged (``sm.max_queue``): when one more would not fit with it, what
  is held goes out as far as it fits, and the client is asked to acknowledge, so that
  releasing it later cannot end the stream of a client that does.  As §5 leaves the
  choice to the server, the rules here are those Prosody's ``mod_csi_simple`` made
  common: what can wait is presence updates (available and unavailable presence) and
  messages with nothing for a person to read
  (chat states, receipts, read markers); urgent is every iq, subscription and error
  presence, the client's own MUC presence (status 110: a join, a kick), error messages,
  messages with a body, a subject, an encrypted payload, an invitation or a call
  (XEP-0353), received carbons (XEP-0280) of such messages and every sent carbon (the
  user is busy on another device).
* Any bytes from the client release what waits before they are read (with XEP-0198, as
  far as it fits before the acknowledgement they may carry): an awake client loses
  nothing by it, and its closing the stream, or an error in what it sent, cannot
  drop them.  What waited when a connection breaks was never written: with XEP-0198
  stream management it joins what the client did not acknowledge (resent on a resume,
  else undelivered); without, it is undelivered when the session ends
  (``xmppx.modules.sm.undelivered``).  Either way a message held for an inactive
  client counts as held by its session (``xmppx.sessions.Delivery``), so another
  session ending without it does not send it to the account again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from xmppx import ns
from xmppx.core import Element
from xmppx.modules._base import Module
from xmppx.modules.carbons import forwarded_message

if TYPE_CHECKING:
    from xmppx.server._connection import C2SConnection

__all__ = ["ClientState", "urgent"]

#: Children that make a message worth waking a client for: a text (RFC 6121 §5.2.3,
#: §5.2.4), end-to-end encryption (XEP-0384 OMEMO 0.3 and 2, XEP-0373 OpenPGP, XEP-0027,
#: XEP-0380 labels), an invitation (XEP-0249).
_URGENT_CHILDREN: frozenset[tuple[str, str]] = frozenset(
    {
        (ns.CLIENT, "body"),
        (ns.CLIENT, "subject"),
        ("eu.siacs.conversations.axolotl", "encrypted"),
        ("urn:xmpp:omemo:2", "encrypted"),
        ("urn:xmpp:openpgp:0", "openpgp"),
        ("jabber:x:encrypted", "x"),
        ("urn:xmpp:eme:0", "encryption"),
        ("jabber:x:conference", "x"),
    }
)
#: Namespaces any child in which makes a message urgent: a call being set up, answered
#: or called off (XEP-0353), which rings or stops ringing at once.
_URGENT_NAMESPACES = frozenset({"urn:xmpp:jingle-message:0", "urn:xmpp:jingle-message:1"})
_MUC_INVITE = ns.clark(ns.MUC_USER, "invite")
_MUC_STATUS = ns.clark(ns.MUC_USER, "status")
_RECEIVED = ns.clark(ns.CARBONS, "received")
_SENT = ns.clark(ns.CARBONS, "sent")
#: presence types that can wait: updates (RFC 6121 §4), not subscriptions (§3), not errors
_LAZY_PRESENCE = frozenset({None, "unavailable", "probe"})


def urgent(stanza: Element) -> bool:
    """Whether ``stanza`` goes to an inactive client at once (see the module docstring)."""
    kind = stanza.name
    if kind == "presence":
        if stanza.get("type") not in _LAZY_PRESENCE:
            return True
        # the client's own MUC presence (status 110: joined, nick changed, kicked, ...)
        x = stanza.find(ns.clark(ns.MUC_USER, "x"))
        return x is not None and any(s.get("code") == "110" for s in x.findall(_MUC_STATUS))
    if kind != "message" or stanza.get("type") == "error":
        return True
    for child in stanza:
        if (child.namespace, child.name) in _URGENT_CHILDREN:
            return True
        if child.namespace in _URGENT_NAMESPACES:
            return True
        tag = child.tag
        if tag == _SENT:
            return True  # the user is busy on another device: this one need not wait
        if tag == _RECEIVED:
            inner = forwarded_message(child)
            if inner is not None and urgent(inner):
                return True
        elif child.namespace == ns.MUC_USER and child.find(_MUC_INVITE) is not None:
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
