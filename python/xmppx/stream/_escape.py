"""Escaping for the few elements the streams write as text templates (stream headers,
negotiation elements): the same rules as the core serializer (``xmppx.core._api``)."""

from __future__ import annotations

__all__ = ["escape_attr", "escape_text"]


def escape_text(s: str) -> str:
    """Character data: ``& < >`` as entity references."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(s: str) -> str:
    """An attribute value in either kind of quotes."""
    return escape_text(s).replace("'", "&apos;").replace('"', "&quot;")
