"""Server modules, one per RFC part or XEP (DESIGN.md §1)."""

from xmppx.modules._base import Identity, IqGet, IqRequest, IqSet, Module

__all__ = ["Identity", "IqGet", "IqRequest", "IqSet", "Module"]
