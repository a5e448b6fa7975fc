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
from xmppx.modules._base import ACCOUNT, IqRequest, IqSet, Module

__all__ = ["LegacySession"]


class LegacySession(Module):
    def on_session(self, req: IqRequest) -> Element | None:
        return None

    handlers = {
        IqSet(ns.SESSION, name="session"): on_session,
        IqSet(ns.SESSION, ACCOUNT, name="session"): on_session,
    }
