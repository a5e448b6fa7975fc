"""The XMPP server: listeners, connections, routing and modules (the only asyncio and
socket code in xmppx, DESIGN.md §1).  ``XMPPServer`` runs one service; ``xmppx-server`` is
its command line (``xmppx.server.cli``)."""

from xmppx.server._server import XMPPServer
from xmppx.server.config import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "XMPPServer", "load_config"]
