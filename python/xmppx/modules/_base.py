"""How a module declares what it handles (DESIGN.md §1: Prosody's ``mod_ping.lua`` and
aioxmpp's ``@iq_handler`` are the models).

A module is a class with class-level data::

    class Ping(Module):
        \"\"\"XEP-0199: answer pings addressed to the server.\"\"\"
        features = (ns.PING,)

        async def on_ping(self, req: IqRequest) -> Element | None:
            return None                      # an empty result

        handlers = {IqGet(ns.PING, name="ping"): on_ping}

The loader binds each handler to the instance and wires it into the dispatcher; disco#info
lists the union of ``features`` of the loaded modules, so it only ever names what the
server really does.  A handler returns the payload of the ``result`` (or ``None`` for an
empty one) or raises ``xmppx.errors.StanzaError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from xmppx.core import BareJID, Element, FullJID

if TYPE_CHECKING:
    from xmppx.server._server import XMPPServer
    from xmppx.sessions import Session

__all__ = ["Identity", "IqGet", "IqRequest", "IqSet", "Module", "Scope"]

#: Who an iq is addressed to: the server itself (``to`` = the domain) or an account
#: (``to`` = a local bare JID, or no ``to`` at all: RFC 6120 §10.3.3).
Scope = str
SERVER: Scope = "server"
ACCOUNT: Scope = "account"


@dataclass(frozen=True, slots=True)
class IqGet:
    """An iq ``get`` whose payload is the element ``name`` in ``namespace``, to
    ``scope``.  Another element in the namespace is not this request: with no handler
    for it, the dispatcher answers ``service-unavailable`` (RFC 6120 §8.4)."""

    namespace: str
    scope: Scope = SERVER
    name: str = "query"


@dataclass(frozen=True, slots=True)
class IqSet:
    """An iq ``set`` (see ``IqGet``)."""

    namespace: str
    scope: Scope = SERVER
    name: str = "query"


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """A XEP-0030 identity (category/type/name)."""

    category: str
    type: str
    name: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class IqRequest:
    """An iq get/set for a handler: the stanza (``from`` stamped), who sent it, and the
    account it is addressed to (``None`` for the server scope)."""

    stanza: Element
    sender: FullJID
    session: Session | None
    account: BareJID | None

    @property
    def to_another_account(self) -> bool:
        """Addressed to an account that is not the sender's own."""
        return self.account is not None and self.account != self.sender.bare

    @property
    def payload(self) -> Element:
        for child in self.stanza:
            return child
        raise LookupError("iq without payload")  # the dispatcher never passes one


Handler = Callable[[Any, IqRequest], Awaitable[Element | None] | Element | None]


class Module:
    """Base class: subclasses set the class attributes below."""

    #: XEP-0030 features this module implements (listed on the server's disco#info).
    features: ClassVar[tuple[str, ...]] = ()
    #: Features listed on accounts' disco#info (XEP-0030 §3.1 for bare JIDs).
    account_features: ClassVar[tuple[str, ...]] = ()
    identities: ClassVar[tuple[Identity, ...]] = ()
    handlers: ClassVar[Mapping[IqGet | IqSet, Handler]] = {}

    def __init__(self, server: XMPPServer) -> None:
        self.server = server

    def setting(self, key: str, default: Any) -> Any:
        """The configuration value ``key`` (``xmppx.server.config.OPTIONS``), or
        ``default`` when the server's ``Config`` was built without it (an embedding
        application's hand-made configuration)."""
        value = self.server.config.values.get(key)
        return default if value is None else value

    async def start(self) -> None:
        """Called once the server's storage is open, before listeners accept."""

    async def stop(self) -> None:
        """Called at shutdown, before storage closes."""

    def bound_handlers(
        self,
    ) -> dict[IqGet | IqSet, Callable[[IqRequest], Awaitable[Element | None]]]:
        out: dict[IqGet | IqSet, Callable[[IqRequest], Awaitable[Element | None]]] = {}
        for key, func in self.handlers.items():
            method = func.__get__(self)
            if inspect.iscoroutinefunction(func):
                out[key] = method
            else:
                out[key] = _wrap_sync(method)
        return out


def _wrap_sync(
    method: Callable[[IqRequest], Element | None],
) -> Callable[[IqRequest], Awaitable[Element | None]]:
    async def call(req: IqRequest) -> Element | None:
        return method(req)

    return call
