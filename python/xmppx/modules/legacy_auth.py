"""XEP-0078 non-SASL authentication (``jabber:iq:auth``) for old clients such as the
agsXMPP-era ones: off by default (``auth.legacy_iq_auth``), offered only once TLS is up
(the stream never passes it over plaintext), plaintext password only — the digest
variant needs the password in clear on the server, which we never store.

Example (XEP-0078 §3)::

    <iq type='get' to='example.com' id='auth1'>
      <query xmlns='jabber:iq:auth'><username>bill</username></query>
    </iq>
    <iq type='result' id='auth1'>
      <query xmlns='jabber:iq:auth'><username/><password/><resource/></query>
    </iq>
    <iq type='set' id='auth2'>
      <query xmlns='jabber:iq:auth'>
        <username>bill</username><password>Calli0pe</password><resource>globe</resource>
      </query>
    </iq>
    <iq type='result' id='auth2'/>

A successful set both authenticates and binds the resource (§3.1); failures are
``not-authorized`` (wrong credentials, slowed down like SASL failures) and
``not-acceptable`` (a field missing).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, ClassVar

from xmppx import ns
from xmppx.core import BareJID, Element, FullJID, JIDError, parse_jid
from xmppx.errors import StanzaError, stanza_error_reply
from xmppx.modules._base import Module

if TYPE_CHECKING:
    from xmppx.server._connection import C2SConnection

log = logging.getLogger("xmppx.c2s")

__all__ = ["LegacyAuth"]


class LegacyAuth(Module):
    preauth_namespaces: ClassVar[frozenset[str]] = frozenset({ns.IQ_AUTH})

    async def preauth_iq(self, conn: C2SConnection, stanza: Element) -> None:
        try:
            if not self.server.config["auth.legacy_iq_auth"]:
                raise StanzaError("service-unavailable")
            if not conn.stream.tls_active:
                raise StanzaError("policy-violation", "legacy authentication needs TLS")
            iq_type = stanza.get("type")
            if iq_type == "get":
                q = Element("query", ns.IQ_AUTH)
                for field in ("username", "password", "resource"):
                    q.append(Element(field, ns.IQ_AUTH))
                reply = Element("iq", ns.CLIENT, {"type": "result", "id": stanza.get("id") or ""})
                reply.append(q)
                conn.deliver(reply)
                return
            if iq_type != "set":
                raise StanzaError("bad-request")
            if conn.stream.sasl_failed:
                # XEP-0078 §7: no second way in after a failed SASL attempt
                conn.end("policy-violation", "jabber:iq:auth after a failed SASL attempt")
                return
            await self._authenticate(conn, stanza)
        except StanzaError as exc:
            # XEP-0078 §3: an error does not echo the request (its password)
            err = stanza_error_reply(stanza, exc, include_original=False)
            if err is not None:
                conn.deliver(err)

    async def _authenticate(self, conn: C2SConnection, stanza: Element) -> None:
        from xmppx.auth import verify_password

        q = stanza.find(ns.clark(ns.IQ_AUTH, "query"))
        username = (q.findtext("username") if q is not None else None) or ""
        password = (q.findtext("password") if q is not None else None) or ""
        resource = (q.findtext("resource") if q is not None else None) or ""
        if not username or not password or not resource:
            raise StanzaError("not-acceptable", "username, password and resource are required")
        server = self.server
        try:
            jid = parse_jid(f"{username}@{server.domain}/{resource}")
        except JIDError:
            raise StanzaError("not-acceptable", "invalid username or resource") from None
        assert isinstance(jid, FullJID)
        bare: BareJID = jid.bare
        if not await server.auth_turn(conn, str(bare)):
            raise StanzaError("resource-constraint", "too many failed logins: try again later")
        if conn.closed:  # the client gave up while it waited: check nothing
            return
        stored = await server.storage.accounts.get_credentials(str(bare), "sha256")
        if stored is not None:
            from xmppx.server._server import _to_auth_credentials

            creds = _to_auth_credentials(stored)
        else:  # the same work for a user that does not exist: timing tells nothing
            creds = server.decoy_credentials(str(bare.local))
        # PBKDF2 takes milliseconds: keep it off the event loop.
        ok = await asyncio.get_running_loop().run_in_executor(
            None, verify_password, password, creds
        )
        if not ok or stored is None:
            log.info("authentication failure from %s for %s (XEP-0078)", conn.address, bare)
            server.throttle.failure(str(bare), conn.address)
            if conn.stream.legacy_auth_failed():
                conn.end("policy-violation", "too many failed authentication attempts")
                return
            raise StanzaError("not-authorized", "wrong username or password")
        if conn.closed:
            return
        reply = Element("iq", ns.CLIENT, {"type": "result", "id": stanza.get("id") or ""})
        conn.legacy_bound(jid, reply)
