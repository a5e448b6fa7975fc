"""XEP-0050 ad-hoc commands with the XEP-0133 service-administration commands that
interop suites and operators use to provision accounts: add-user (§4.1), delete-user
(§4.2), change-user-password (§4.7).  Only JIDs in the ``admins`` option may run them.

Example (XEP-0133 §4.1)::

    <iq from='admin@example.com/laptop' to='example.com' type='set' id='add-user-1'>
      <command xmlns='http://jabber.org/protocol/commands' action='execute'
               node='http://jabber.org/protocol/admin#add-user'/>
    </iq>

answered with a form; the form is submitted with ``action='complete'`` and the
``sessionid`` from the answer, and the account exists when ``status='completed'`` comes.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Final

from xmppx import ns
from xmppx.core import BareJID, Element
from xmppx.errors import StanzaError
from xmppx.forms import Field, build_form, form_values
from xmppx.modules._base import IqRequest, IqSet, Module
from xmppx.server.accounts import AccountError, create_account, parse_user, set_password

__all__ = ["ADMIN_NS", "AdminCommands"]

ADMIN_NS: Final = "http://jabber.org/protocol/admin"
_ADD = ADMIN_NS + "#add-user"
_DELETE = ADMIN_NS + "#delete-user"
_PASSWD = ADMIN_NS + "#change-user-password"
#: XEP-0050 §4.1: the values of ``action``.
_ACTIONS: Final = frozenset({"execute", "cancel", "prev", "next", "complete"})
#: Open command sessions kept at once; older ones are forgotten first.
MAX_COMMAND_SESSIONS: Final = 1000
#: Seconds a command session waits for its form.
COMMAND_SESSION_SECONDS: Final = 600.0

_COMMANDS: Final = {
    _ADD: (
        "Add a User",
        [
            Field(
                var="accountjid",
                type="jid-single",
                label="The Jabber ID for the account to be added",
                required=True,
            ),
            Field(
                var="password",
                type="text-private",
                label="The password for this account",
                required=True,
            ),
            Field(
                var="password-verify", type="text-private", label="Retype password", required=True
            ),
        ],
    ),
    _DELETE: (
        "Delete a User",
        [
            Field(
                var="accountjids",
                type="jid-multi",
                label="The Jabber ID(s) to delete",
                required=True,
            ),
        ],
    ),
    _PASSWD: (
        "Change User Password",
        [
            Field(
                var="accountjid",
                type="jid-single",
                label="The Jabber ID for this account",
                required=True,
            ),
            Field(
                var="password",
                type="text-private",
                label="The password for this account",
                required=True,
            ),
        ],
    ),
}


def _bad(specific: str, text: str = "") -> StanzaError:
    """XEP-0050 §6: bad-request with a commands-specific condition."""
    return StanzaError("bad-request", text, app_condition=(ns.COMMANDS, specific))


class AdminCommands(Module):
    features = (ns.COMMANDS,)

    def __init__(self, server: object) -> None:
        super().__init__(server)  # type: ignore[arg-type]
        #: session id → (node, requester's full JID, when it expires)
        self._sessions: OrderedDict[str, tuple[str, str, float]] = OrderedDict()

    def is_admin(self, jid: str) -> bool:
        return jid in {a.lower() for a in self.server.config["admins"]}

    def disco_node_items(self, node: str, requester: str) -> list[tuple[str, str, str]] | None:
        """XEP-0050 §2.2: the commands an admin may run, as disco#items of the node."""
        if node != ns.COMMANDS:
            return None
        if not self.is_admin(requester):
            return []
        return [(self.server.domain, n, title) for n, (title, _) in _COMMANDS.items()]

    def disco_node_info(self, node: str, requester: str) -> list[Element] | None:
        """XEP-0050 §2.2: disco#info of a command's node: the ``automation/command-node``
        identity and the commands and data-forms features, to an admin; ``forbidden``
        to anyone else.  ``None`` for a node that is no command."""
        if node not in _COMMANDS:
            return None
        if not self.is_admin(requester):
            raise StanzaError("forbidden", "only the server's admins may run this command")
        identity = {"category": "automation", "type": "command-node", "name": _COMMANDS[node][0]}
        return [
            Element("identity", ns.DISCO_INFO, identity),
            Element("feature", ns.DISCO_INFO, {"var": ns.COMMANDS}),
            Element("feature", ns.DISCO_INFO, {"var": ns.DATA_FORMS}),
        ]

    async def on_command(self, req: IqRequest) -> Element | None:
        cmd = req.payload
        node = cmd.get("node") or ""
        if node not in _COMMANDS:
            raise StanzaError("item-not-found", f"no command {node!r}")
        if not self.is_admin(str(req.sender.bare)):
            raise StanzaError("forbidden", "only the server's admins may run this command")
        action = cmd.get("action") or "execute"
        if action not in _ACTIONS:  # XEP-0050 §4.1 names five
            raise _bad("malformed-action", f"no action {action!r} (XEP-0050 §4.1)")
        sid = cmd.get("sessionid")
        form = cmd.find(ns.clark(ns.DATA_FORMS, "x"))
        now = time.monotonic()
        if sid:
            # a session is its requester's, for its command, for a while (XEP-0050 §4.3)
            held = self._sessions.get(sid)
            if held is not None and held[2] < now:
                del self._sessions[sid]
                held = None
            if held is None or held[:2] != (node, str(req.sender)):
                raise _bad("bad-sessionid", "unknown or expired command session")
        if action == "cancel":
            if not sid:  # (§4.1: a sessionid is never empty)
                raise _bad("bad-sessionid", "cancel names the session to cancel")
            del self._sessions[sid]
            return self._reply(node, sid, "canceled")
        if action in ("prev", "next"):
            # one stage: only 'complete' is offered (§4.4 "Action Not Allowed")
            raise _bad("bad-action", f"this command has one stage; {action!r} is not offered")
        if form is None or form.get("type") != "submit":
            if sid or action == "complete":
                raise _bad("bad-action", f"{action!r} in a session needs the submitted form")
            sid = secrets.token_hex(8)
            self._sessions[sid] = (node, str(req.sender), now + COMMAND_SESSION_SECONDS)
            while len(self._sessions) > MAX_COMMAND_SESSIONS:
                self._sessions.popitem(last=False)
            title, fields = _COMMANDS[node]
            reply = self._reply(node, sid, "executing")
            actions = Element("actions", ns.COMMANDS, {"execute": "complete"})
            actions.append(Element("complete", ns.COMMANDS))
            reply.append(actions)
            reply.append(build_form(fields, title=title, form_type=ADMIN_NS))
            return reply
        values = form_values(form)
        # an error (a field missing, the passwords differing) leaves the session open
        # for the form to be sent again, corrected
        note = await self._run(node, values)
        if sid:
            self._sessions.pop(sid, None)
        reply = self._reply(node, sid or secrets.token_hex(8), "completed")
        reply.append(Element("note", ns.COMMANDS, {"type": "info"}, text=note))
        return reply

    async def _run(self, node: str, values: dict[str, list[str]]) -> str:
        storage = self.server.storage
        domain = self.server.domain

        def user_named(text: str) -> BareJID:
            try:
                return parse_user(text, domain, name_alone=False)
            except AccountError as exc:
                raise StanzaError("jid-malformed", str(exc)) from None

        def one(var: str) -> str:
            vals = values.get(var) or []
            if not vals or not vals[0]:
                raise StanzaError("not-acceptable", f"field {var!r} is required")
            return vals[0]

        try:
            if node == _ADD:
                user = user_named(one("accountjid"))
                password = one("password")
                if one("password-verify") != password:  # required, as Prosody has it
                    raise StanzaError("not-acceptable", "the passwords do not match")
                from xmppx.storage import AccountExists

                try:
                    await create_account(storage, user, password)
                except AccountExists:
                    raise StanzaError("conflict", f"{user} exists already") from None
                return f"{user} added"
            if node == _DELETE:
                jids = [user_named(j) for j in values.get("accountjids", []) if j]
                if not jids:
                    raise StanzaError("not-acceptable", "field 'accountjids' is required")
                deleted = [
                    user
                    for user in jids
                    if await self.server.remove_account(user, "the account was deleted")
                ]
                missing = [str(u) for u in jids if u not in deleted]
                note = f"; no such account: {', '.join(missing)}" if missing else ""
                return f"deleted {len(deleted)} account(s){note}"
            user = user_named(one("accountjid"))
            from xmppx.storage import AccountNotFound

            try:
                await set_password(storage, user, one("password"))
            except AccountNotFound:
                raise StanzaError("item-not-found", f"{user} does not exist") from None
            return f"password of {user} changed"
        except AccountError as exc:  # (the JIDs are checked above: the password)
            raise StanzaError("not-acceptable", str(exc)) from None

    @staticmethod
    def _reply(node: str, sid: str, status: str) -> Element:
        return Element("command", ns.COMMANDS, {"node": node, "sessionid": sid, "status": status})

    handlers = {IqSet(ns.COMMANDS, name="command"): on_command}
