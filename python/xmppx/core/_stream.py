"""The stream's opening and closing tags as bytes (RFC 6120 §4.7, §4.4).

``stream_header()`` writes the XML declaration and the ``<stream:stream>`` start tag
with the attributes RFC 6120 §4.7 defines, in the order of the RFC's examples (``from``,
``to``, ``id``, ``version``, ``xml:lang``, then the content namespace and the ``stream``
prefix).  An attribute given as ``None`` is left out.  Values are escaped exactly as the
serializer escapes attribute values (``& < > ' "`` and TAB LF CR as references), so the
header parses back to the same values; a character outside XML 1.0 ``Char`` raises
``ValueError``, as does a ``default_ns`` that a stream cannot declare (``check_default_ns``:
the ``xml`` and ``xmlns`` namespaces, Namespaces in XML 1.0 §3).

Example::

    >>> stream_header(to="example.com", id="++TR84Sm6A3hnt3Q065SnAbbk3Y=")
    b"<?xml version='1.0'?><stream:stream to='example.com' id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' \
version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
"""

from __future__ import annotations

from xmppx.core._api import NS_STREAMS
from xmppx.core._py._serializer import check_default_ns, escape_attr

__all__ = ["stream_footer", "stream_header"]


def stream_header(
    *,
    to: str | None = None,
    from_: str | None = None,
    id: str | None = None,
    version: str | None = "1.0",
    lang: str | None = "en",
    default_ns: str = "jabber:client",
) -> bytes:
    """``<?xml version='1.0'?><stream:stream ...>`` as UTF-8 bytes (RFC 6120 §4.7)."""
    check_default_ns(default_ns)
    parts = ["<?xml version='1.0'?><stream:stream"]
    for key, value in (
        ("from", from_),
        ("to", to),
        ("id", id),
        ("version", version),
        ("xml:lang", lang),
    ):
        if value is not None:
            parts.append(f" {key}='{escape_attr(value)}'")
    parts.append(f" xmlns='{escape_attr(default_ns)}' xmlns:stream='{NS_STREAMS}'>")
    return "".join(parts).encode("utf-8")


def stream_footer() -> bytes:
    """``</stream:stream>`` (RFC 6120 §4.4)."""
    return b"</stream:stream>"
