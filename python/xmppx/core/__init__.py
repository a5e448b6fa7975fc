"""The XML and JID core: one API, two backends (DESIGN.md §1, §2).

``XMPPX_CORE=native|python`` chooses the backend once, at import; without it the native
(Rust) backend is used when importable and the pure-Python one otherwise.  Asking for
``native`` when it cannot be imported, or finding a native module whose version differs
from the package's, raises ``ImportError`` instead of silently running something else.

Example::

    >>> from xmppx.core import StreamParser
    >>> p = StreamParser()
    >>> events = p.feed(b"<stream:stream xmlns='jabber:client' "
    ...                 b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>")
    >>> events[0].attrs["to"]
    'localhost'
    >>> [msg] = p.feed(b"<message to='juliet@localhost'><body>Art thou not Romeo?</body></message>")
    >>> msg.get("to"), msg.findtext("body")
    ('juliet@localhost', 'Art thou not Romeo?')
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from xmppx._version import __version__
from xmppx.core._api import (
    DEFAULT_MAX_ATTRIBUTES,
    DEFAULT_MAX_BUFFER_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STANZA_BYTES,
    JID_RULES,
    NS_CLIENT,
    NS_COMPONENT,
    NS_SERVER,
    NS_STREAMS,
    NS_XML,
    STREAM_ERROR_CONDITIONS,
    JIDError,
    StreamEnd,
    StreamHeader,
    XMLStreamError,
)

__all__ = [
    "DEFAULT_MAX_ATTRIBUTES",
    "DEFAULT_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_STANZA_BYTES",
    "JID",
    "JID_RULES",
    "NS_CLIENT",
    "NS_COMPONENT",
    "NS_SERVER",
    "NS_STREAMS",
    "NS_XML",
    "STREAM_ERROR_CONDITIONS",
    "BareJID",
    "Element",
    "FullJID",
    "JIDError",
    "StreamEnd",
    "StreamHeader",
    "StreamParser",
    "XMLStreamError",
    "backend",
    "nameprep",
    "nodeprep",
    "parse",
    "parse_jid",
    "prep_jid",
    "resourceprep",
    "serialize",
    "stream_footer",
    "stream_header",
]


def _choose() -> str:
    wanted = os.environ.get("XMPPX_CORE", "").strip().lower()
    if wanted not in ("", "native", "python"):
        raise ImportError(f"XMPPX_CORE must be 'native' or 'python', not {wanted!r}")
    if wanted == "python":
        return "python"
    try:
        from xmppx import _native
    except ImportError:
        if wanted == "native":
            raise
        return "python"
    if _native.__version__ != __version__:
        raise ImportError(
            f"xmppx._native is version {_native.__version__} but the package is "
            f"{__version__}: rebuild the extension (pip install .)"
        )
    return "native"


#: ``"native"`` or ``"python"``: the backend this process runs.
backend: Final[str] = _choose()

if TYPE_CHECKING or backend == "python":
    from xmppx.core._py import (
        Element,
        StreamParser,
        nameprep,
        nodeprep,
        parse,
        prep_jid,
        resourceprep,
        serialize,
    )
else:
    from xmppx._native import (
        Element,
        StreamParser,
        nameprep,
        nodeprep,
        parse,
        prep_jid,
        resourceprep,
        serialize,
    )

if TYPE_CHECKING or backend == "python":  # JID values: see xmppx.core._jid
    from xmppx.core._jid import JID, BareJID, FullJID, parse_jid
else:
    from xmppx._native import BareJID, FullJID, parse_jid

    JID = BareJID | FullJID

from xmppx.core._stream import stream_footer, stream_header  # noqa: E402
