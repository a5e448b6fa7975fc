"""The pure-Python core backend: the reference for behaviour, built on the stdlib's expat
(``pyexpat``) and ``stringprep``.  Exposes exactly what ``xmppx._native`` exposes (see
``python/xmppx/_native.pyi``); ``xmppx.core._api`` states the contract."""

from xmppx.core._py._element import Element
from xmppx.core._py._parser import StreamParser, parse
from xmppx.core._py._serializer import serialize
from xmppx.core._py._stringprep import nameprep, nodeprep, prep_jid, resourceprep

__all__ = [
    "Element",
    "StreamParser",
    "nameprep",
    "nodeprep",
    "parse",
    "prep_jid",
    "resourceprep",
    "serialize",
]
