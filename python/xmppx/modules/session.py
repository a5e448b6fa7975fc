"""RFC 3921 §3 session establishment, kept for old clients: RFC 6121 Appendix E dropped
it, and servers advertise it as ``<optional/>`` (the stream features do) and answer the
iq with an empty result.

Example::

    <iq type='set' id='sess_1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>
    <iq type='result' id='sess_1'/>
"""

from __future__ import annotations

from xmppx import ns
from xmppx.core import Element
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, IqRequest, IqSet, Module

__all__ = ["LegacySession"]


class LegacySession(Module):
    def on_session(self, req: IqRequest) -> Element | None:
        """RFC 3921 §3: a no-op, for the client's own session (no ``to``, or its own
        bare JID); to another account it is not a request the server answers for it."""
        if req.to_another_account:
            raise StanzaError("service-unavailable")
        return None

    handlers = {
        IqSet(ns.SESSION, name="session"): on_session,
        IqSet(ns.SESSION, ACCOUNT, name="session"): on_session,
    }
