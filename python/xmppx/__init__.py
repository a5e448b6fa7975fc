"""xmppx: a fast, complete XMPP server and XML/JID core for Python.

The XML stream parser, stanza serializer and JID normalizer live in ``xmppx.core``
(Rust when the native extension is importable, pure Python otherwise); ``xmppx.core.backend``
says which one runs.
"""

from xmppx._version import __version__

__all__ = ["__version__"]
