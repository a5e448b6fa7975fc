"""XEP-0012 last activity: when an account was last available, and the server's uptime.

* Recording: when an account's last available resource becomes unavailable (a clean
  logout or any connection loss), the time and the ``<status/>`` of that unavailable
  presence are stored (XEP-0012 §5).
* Query to an account's bare JID (§5, "Offline User Query"): allowed to the user and to
  contacts with a subscription to the user's presence (``from``/``both``), else
  ``forbidden``; ``seconds='0'`` while the user has an available resource, else the
  seconds since the recorded logout with the status as text; ``item-not-found`` when
  nothing was ever recorded.
* Query to the server's domain (§6, "Server Query"): seconds since the server started.
* Idle time of a connected resource (§4, a query to a full JID) is the client's to
  answer: the server routes such queries to it.

Example (XEP-0012 §5)::

    <iq from='romeo@montague.net/orchard' id='last1' to='juliet@capulet.com' type='get'>
      <query xmlns='jabber:iq:last'/>
    </iq>
    <iq from='juliet@capulet.com' id='last1' to='romeo@montague.net/orchard' type='result'>
      <query xmlns='jabber:iq:last' seconds='903'>Heading Home</query>
    </iq>
"""

from __future__ import annotations

import datetime
import time

from xmppx import ns
from xmppx.core import BareJID, Element
from xmppx.errors import StanzaError
from xmppx.modules._base import ACCOUNT, IqGet, IqRequest
from xmppx.modules.roster import RosterDependent, shares_presence
from xmppx.storage import LastActivity

__all__ = ["LastActivityModule"]


class LastActivityModule(RosterDependent):
    features = (ns.LAST,)
    account_features = (ns.LAST,)

    def on_account_unavailable(self, user: BareJID, stanza: Element) -> None:
        """The presence module: the account's last available resource went away (not
        recorded when that is the account's removal ending it: there is no account)."""
        if self.server.account_deleted(user):
            return
        status = stanza.findtext("status") or ""
        activity = LastActivity(stamp=datetime.datetime.now(datetime.UTC), status=status)
        self.tasks.spawn(self.server.storage.last_activity.put(str(user), activity))

    def on_server(self, req: IqRequest) -> Element | None:
        uptime = max(0, int(time.time() - self.server.started_at))
        return Element("query", ns.LAST, {"seconds": str(uptime)})

    async def on_account(self, req: IqRequest) -> Element | None:
        user = req.account
        assert user is not None
        asker = req.sender.bare
        if not await shares_presence(self.roster_module, user, asker):
            raise StanzaError("forbidden", "only subscribers may see the last activity")
        if self.server.sessions.available(user):
            return Element("query", ns.LAST, {"seconds": "0"})
        last = await self.server.storage.last_activity.get(str(user))
        if last is None:
            raise StanzaError("item-not-found", "no activity recorded")
        now = datetime.datetime.now(datetime.UTC)
        seconds = max(0, int((now - last.stamp).total_seconds()))
        return Element("query", ns.LAST, {"seconds": str(seconds)}, text=last.status)

    handlers = {IqGet(ns.LAST): on_server, IqGet(ns.LAST, ACCOUNT): on_account}
