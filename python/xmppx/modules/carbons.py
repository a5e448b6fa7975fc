"""XEP-0280 Message Carbons: every resource of a user that asks sees both sides of the
user's conversations, whichever device took part.

* Enabling (§4) and disabling (§5): an iq-set with ``<enable/>`` or ``<disable/>`` in
  ``urn:xmpp:carbons:2``, from the session itself (no ``to``, or ``to`` its own bare JID
  or the server); repeated requests are answered with a result (§10.1).  For another
  account: ``not-allowed``.  The choice lasts as long as the session.
* Eligible messages (§6, the suggested rules): type ``chat``, and type ``normal`` with a
  ``<body/>``; never ``groupchat``, ``headline`` or ``error``, and, inbound, nothing
  from a MUC room or service (a room served here, or a message with a ``muc#user``
  ``<x/>``: private messages from occupants).
* Received (§7): when an eligible message to a local account is delivered to its
  resources by the RFC 6121 §8.5 rules, every carbons-enabled resource of that account
  that did not get it gets a copy wrapped in ``<received/>`` and XEP-0297
  ``<forwarded/>``, from the bare JID, to the full JID of the copy's recipient, with the
  message's ``type``.  A message stored offline (XEP-0160) makes no copy: a resource
  with carbons on but no available presence would otherwise see it twice, once now and
  once from storage when it becomes available, and the storage may still refuse it.
* Sent (§8): an eligible message a client sends to another account or to a service
  here is copied in ``<sent/>`` to the sender's other carbons-enabled resources (whether
  or not the sender enabled carbons).  A message to the sender's own account makes no
  sent copies: the received rule already gives it to the resources that did not get it,
  the sending one excepted.
* Opting out (§9): a message with ``<private xmlns='urn:xmpp:carbons:2'/>``, or the
  XEP-0334 hint ``<no-copy/>``, is not copied either way; ``<private/>`` is removed before
  the message reaches its recipient or offline storage.

A message to a foreign domain is bounced (no server-to-server yet) and makes no copies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from xmppx import ns
from xmppx.core import BareJID, Element, FullJID
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, IqRequest, IqSet, Module

if TYPE_CHECKING:
    from xmppx.server._server import XMPPServer
    from xmppx.sessions import Session

__all__ = ["Carbons", "eligible", "forwarded_message"]

_BODY = ns.clark(ns.CLIENT, "body")
_PRIVATE = ns.clark(ns.CARBONS, "private")
_NO_COPY = ns.clark(ns.HINTS, "no-copy")
_MUC_X = ns.clark(ns.MUC_USER, "x")
_FORWARDED = ns.clark(ns.FORWARD, "forwarded")
_MESSAGE = ns.clark(ns.CLIENT, "message")


def forwarded_message(wrapper: Element) -> Element | None:
    """The message a carbon copy's ``<received/>`` or ``<sent/>`` wraps in its XEP-0297
    ``<forwarded/>`` (XEP-0280 §7, §8), or ``None`` when there is none."""
    forwarded = wrapper.find(_FORWARDED)
    return None if forwarded is None else forwarded.find(_MESSAGE)


def eligible(stanza: Element, stype: str) -> bool:
    """XEP-0280 §6: whether a message of (normalised) type ``stype`` is one carbons copy:
    ``chat``, or ``normal`` with a body, and not marked private (§9) or ``no-copy``
    (XEP-0334 §4)."""
    if stype == "normal":
        if stanza.find(_BODY) is None:
            return False
    elif stype != "chat":
        return False
    return stanza.find(_PRIVATE) is None and stanza.find(_NO_COPY) is None


class Carbons(Module):
    """XEP-0280 Message Carbons (see the module docstring)."""

    features: ClassVar[tuple[str, ...]] = (ns.CARBONS,)

    def __init__(self, server: XMPPServer) -> None:
        super().__init__(server)
        #: carbons-enabled sessions by account, each by its full JID
        self._enabled: dict[BareJID, dict[FullJID, Session]] = {}

    # -- §4, §5: enabling and disabling --------------------------------------------------
    def on_set(self, req: IqRequest) -> None:
        session = req.session
        if session is None or req.to_another_account:
            raise StanzaError("not-allowed", "carbons are a session's own choice")
        if self.server.sessions.get(session.jid) is not session:
            # ended while the request waited (behind other work for the account)
            raise StanzaError("not-allowed", "the session is gone")
        if req.payload.name == "enable":
            self._enabled.setdefault(session.jid.bare, {})[session.jid] = session
        else:  # <disable/>: the dispatcher passes nothing else
            self._forget(session)

    handlers = {
        IqSet(ns.CARBONS, name="enable"): on_set,
        IqSet(ns.CARBONS, name="disable"): on_set,
        IqSet(ns.CARBONS, ACCOUNT, name="enable"): on_set,
        IqSet(ns.CARBONS, ACCOUNT, name="disable"): on_set,
    }

    def session_gone(self, session: Session) -> None:
        self._forget(session)

    def _forget(self, session: Session) -> None:
        bare = session.jid.bare
        mine = self._enabled.get(bare)
        # a resource conflict may have bound another session to the same full JID
        if mine is not None and mine.get(session.jid) is session:
            del mine[session.jid]
            if not mine:
                del self._enabled[bare]

    def enabled(self, session: Session) -> bool:
        """Whether ``session`` has carbons enabled."""
        return self._enabled.get(session.jid.bare, {}).get(session.jid) is session

    # -- §7, §8: the copies (server hooks) -----------------------------------------------
    def on_message_sent(
        self, session: Session, stanza: Element, stype: str, to: BareJID | FullJID
    ) -> None:
        """A local client's message to another account or a service here (§8)."""
        mine = self._enabled.get(session.jid.bare)
        if not mine:
            return
        targets = [s for s in mine.values() if s is not session]
        if targets and eligible(stanza, stype):
            self._copy("sent", stanza, session.jid.bare, targets)

    def on_message_delivery(
        self,
        sender: Session | None,
        stanza: Element,
        stype: str,
        bare: BareJID,
        recipients: tuple[Session, ...],
    ) -> None:
        """A message to ``bare`` about to be delivered to ``recipients`` (none: it is to be
        stored offline, and makes no copies) (§7); removes ``<private/>`` first (§9)."""
        private = stanza.findall(_PRIVATE)
        if private:
            for element in private:
                stanza.remove(element)
            return
        mine = self._enabled.get(bare)
        if not mine or not recipients:
            return
        targets = [s for s in mine.values() if s not in recipients and s is not sender]
        if not targets or not eligible(stanza, stype) or self._from_muc(stanza):
            return
        self._copy("received", stanza, bare, targets)

    def _from_muc(self, stanza: Element) -> bool:
        bare = (stanza.get("from") or "").partition("/")[0]
        domain = bare.rpartition("@")[2]
        return self.server.serves_component(domain) or stanza.find(_MUC_X) is not None

    @staticmethod
    def _copy(which: str, stanza: Element, bare: BareJID, targets: list[Session]) -> None:
        """Deliver ``stanza`` wrapped in ``<which/>`` and XEP-0297 ``<forwarded/>`` to each
        of ``targets``, from ``bare``, keeping the message's type (§7, §8)."""
        outer = Element("message", ns.CLIENT, {"from": str(bare)})
        stype = stanza.get("type")
        if stype is not None:
            outer.set("type", stype)
        wrapper = Element(which, ns.CARBONS)
        forwarded = Element("forwarded", ns.FORWARD)
        forwarded.append(stanza.copy())
        wrapper.append(forwarded)
        outer.append(wrapper)
        for target in targets:
            outer.set("to", str(target.jid))
            target.deliver(outer)
