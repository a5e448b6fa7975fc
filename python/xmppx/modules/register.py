"""XEP-0077 in-band registration: account creation before authentication (off by default;
``register.enabled``, rate-limited per address), password change and account removal
after it.

Example (XEP-0077 §3.1)::

    <iq type='get' id='reg1'><query xmlns='jabber:iq:register'/></iq>
    <iq type='result' id='reg1'>
      <query xmlns='jabber:iq:register'>
        <instructions>Choose a username and password.</instructions>
        <username/><password/>
      </query>
    </iq>
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING, ClassVar

from xmppx import ns
from xmppx.core import Element
from xmppx.errors import StanzaError, stanza_error_reply
from xmppx.modules._base import ACCOUNT, IqGet, IqRequest, IqSet, Module
from xmppx.server.accounts import AccountError, create_account, parse_user, set_password
from xmppx.storage import AccountExists

if TYPE_CHECKING:
    from xmppx.server._connection import C2SConnection

__all__ = ["Registration"]

_Q = ns.clark(ns.IQ_REGISTER, "query")


class Registration(Module):
    features = (ns.IQ_REGISTER,)
    preauth_namespaces: ClassVar[frozenset[str]] = frozenset({ns.IQ_REGISTER})

    def __init__(self, server: object) -> None:
        super().__init__(server)  # type: ignore[arg-type]
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)

    @property
    def enabled(self) -> bool:
        return bool(self.server.config["register.enabled"])

    def _form(self) -> Element:
        q = Element("query", ns.IQ_REGISTER)
        q.append(
            Element(
                "instructions",
                ns.IQ_REGISTER,
                text="Choose a username and password for use with this service.",
            )
        )
        q.append(Element("username", ns.IQ_REGISTER))
        q.append(Element("password", ns.IQ_REGISTER))
        return q

    def _allow(self, address: str) -> bool:
        """Whether ``address`` is below ``register.per_address_per_hour`` accounts made
        in the last hour (refused attempts do not count)."""
        now = time.monotonic()
        window = self._recent[address]
        while window and now - window[0] > 3600:
            window.popleft()
        limit: int = self.server.config["register.per_address_per_hour"]
        return len(window) < limit

    async def preauth_iq(self, conn: C2SConnection, stanza: Element) -> None:
        """Before authentication: the form (get) and account creation (set)."""
        iq_type = stanza.get("type")
        reply = Element("iq", ns.CLIENT, {"type": "result", "id": stanza.get("id") or ""})
        try:
            if not self.enabled:
                raise StanzaError("service-unavailable")
            if iq_type == "get":
                reply.append(self._form())
            elif iq_type == "set":
                q = stanza.find(_Q)
                if q is None:
                    raise StanzaError("bad-request")
                username = q.findtext("username") or ""
                password = q.findtext("password") or ""
                if not username or not password:
                    raise StanzaError("not-acceptable", "username and password are required")
                try:
                    user = parse_user(username, self.server.domain)
                except AccountError as exc:
                    raise StanzaError("jid-malformed", str(exc)) from None
                if not self._allow(conn.address):
                    raise StanzaError(
                        "resource-constraint", "too many registrations, try later", type="wait"
                    )
                # the attempt takes its place in the hour before anything is awaited, so
                # that requests pipelined together cannot all pass the check first; a
                # refused one gives it back
                window = self._recent[conn.address]
                stamp = time.monotonic()
                window.append(stamp)
                made = False
                try:
                    if await self.server.storage.accounts.exists(str(user)):
                        raise StanzaError("conflict", "that username is taken")
                    await create_account(self.server.storage, user, password)
                    made = True
                except AccountExists:  # registered meanwhile on another stream
                    raise StanzaError("conflict", "that username is taken") from None
                except AccountError as exc:
                    raise StanzaError("not-acceptable", str(exc)) from None
                finally:
                    if not made:
                        window.remove(stamp)
            else:
                raise StanzaError("bad-request")
        except StanzaError as exc:
            # the request holds a password: not echoed (XEP-0077 §3.3's rule)
            err = stanza_error_reply(stanza, exc, include_original=False)
            if err is not None:
                conn.deliver(err)
            return
        conn.deliver(reply)

    def on_get(self, req: IqRequest) -> Element | None:
        # one's own registration only; another account answers as if it did not exist
        if req.to_another_account:
            raise StanzaError("service-unavailable")
        q = self._form()
        q.insert(0, Element("registered", ns.IQ_REGISTER))
        q.find("username").text = req.sender.local  # type: ignore[union-attr]
        return q

    async def on_set(self, req: IqRequest) -> Element | None:
        """Change the password (XEP-0077 §3.3) or remove the account (§3.2)."""
        if req.to_another_account:
            raise StanzaError("service-unavailable")
        q = req.payload
        user = req.sender.bare
        if q.find("remove") is not None:
            if len(q) != 1:  # §3.2's error table
                raise StanzaError("bad-request", "<remove/> must be the only child")
            if not self.enabled:
                raise StanzaError("not-allowed", "account removal is disabled here")
            await self.server.remove_account(user, "the account was removed")
            return None
        username = q.findtext("username") or ""
        password = q.findtext("password") or ""
        if username and username.lower() != user.local:
            raise StanzaError("bad-request", "the username must be your own")
        if not password:
            raise StanzaError("bad-request", "a new password is required")
        try:
            await set_password(self.server.storage, user, password)
        except AccountError as exc:
            raise StanzaError("not-acceptable", str(exc)) from None
        return None

    handlers = {
        IqGet(ns.IQ_REGISTER): on_get,
        IqSet(ns.IQ_REGISTER): on_set,
        IqGet(ns.IQ_REGISTER, ACCOUNT): on_get,
        IqSet(ns.IQ_REGISTER, ACCOUNT): on_set,
    }
