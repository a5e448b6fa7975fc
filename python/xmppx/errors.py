"""XMPP protocol errors carrying their condition (DESIGN.md §3.3).

``StreamError`` (RFC 6120 §4.9) ends a stream; ``StanzaError`` (RFC 6120 §8.3) answers one
stanza.  Both are raised where the problem is detected and turned into XML at one boundary:
the stream layer for stream errors, ``stanza_error_reply`` for stanza errors.

Example (RFC 6120 §8.3.1)::

    <iq from='im.example.com' id='ur2d2s01' to='romeo@example.net/foo' type='error'>
      <error type='cancel'>
        <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
      </error>
    </iq>
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from xmppx import ns
from xmppx.core import STREAM_ERROR_CONDITIONS, Element

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "STANZA_ERROR_CONDITIONS",
    "StanzaError",
    "StreamError",
    "error_element",
    "stanza_error_reply",
]

#: RFC 6120 §8.3.3 defined conditions with the error type each usually carries.
STANZA_ERROR_CONDITIONS: Final[Mapping[str, str]] = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}

_ERROR_TYPES: Final = frozenset({"auth", "cancel", "continue", "modify", "wait"})


class StreamError(Exception):
    """A stream-level error (RFC 6120 §4.9.3): the stream is closed after sending it."""

    def __init__(self, condition: str, text: str = "") -> None:
        if condition not in STREAM_ERROR_CONDITIONS:
            raise ValueError(f"not an RFC 6120 stream error condition: {condition!r}")
        super().__init__(condition, text)
        self.condition = condition
        self.text = text

    def __str__(self) -> str:
        return f"{self.condition}: {self.text}" if self.text else self.condition


class StanzaError(Exception):
    """A stanza-level error (RFC 6120 §8.3): answered to the sender, the stream goes on.

    ``type`` defaults to the one RFC 6120 §8.3.3 gives for the condition.
    """

    def __init__(
        self,
        condition: str,
        text: str = "",
        *,
        type: str | None = None,
        app_condition: tuple[str, str] | None = None,
    ) -> None:
        if condition not in STANZA_ERROR_CONDITIONS:
            raise ValueError(f"not an RFC 6120 stanza error condition: {condition!r}")
        etype = type or STANZA_ERROR_CONDITIONS[condition]
        if etype not in _ERROR_TYPES:
            raise ValueError(f"not an RFC 6120 error type: {etype!r}")
        super().__init__(condition, text)
        self.condition = condition
        self.type = etype
        self.text = text
        #: An application-specific condition (namespace, name), e.g. XEP-0050
        #: ``bad-sessionid`` (RFC 6120 §8.3.2 allows one after the defined condition).
        self.app_condition = app_condition

    def __str__(self) -> str:
        return f"{self.condition} ({self.type}): {self.text}" if self.text else self.condition

    def to_element(self, by: str | None = None) -> Element:
        """The ``<error/>`` child (RFC 6120 §8.3.2); ``by`` is the generating entity."""
        err = error_element(self.condition, self.type, self.text, by=by)
        if self.app_condition is not None:
            app_ns, app_name = self.app_condition
            err.append(Element(app_name, app_ns))
        return err


def error_element(condition: str, type: str, text: str = "", *, by: str | None = None) -> Element:
    """Build ``<error type=...><condition xmlns=stanzas/>[<text/>]</error>``."""
    attrs = {"type": type}
    if by:
        attrs["by"] = by
    err = Element("error", ns.CLIENT, attrs)
    err.append(Element(condition, ns.STANZAS))
    if text:
        err.append(Element("text", ns.STANZAS, {ns.XML_LANG: "en"}, text=text))
    return err


def stanza_error_reply(
    stanza: Element, error: StanzaError, *, by: str | None = None, include_original: bool = True
) -> Element | None:
    """The error reply to ``stanza`` (RFC 6120 §8.3.1): same name and ``id``, ``to`` and
    ``from`` swapped, ``type='error'``, the original payload kept when
    ``include_original`` (as §8.3.1 allows), then the ``<error/>``.

    Returns ``None`` for a stanza of type ``error``: an error is never answered with an
    error (RFC 6120 §8.3.1 rule 5); nor is an iq ``result``, which gets no response at
    all (RFC 6120 §8.2.3).
    """
    stype = stanza.get("type")
    if stype == "error" or (stype == "result" and stanza.name == "iq"):
        return None
    attrs: dict[str, str] = {"type": "error"}
    ident = stanza.get("id")
    if ident is not None:
        attrs["id"] = ident
    sender = stanza.get("from")
    if sender is not None:
        attrs["to"] = sender
    recipient = stanza.get("to")
    if recipient is not None:
        attrs["from"] = recipient
    reply = Element(stanza.name, stanza.namespace or ns.CLIENT, attrs)
    if include_original:
        for child in stanza:
            reply.append(child.copy())
    reply.append(error.to_element(by=by))
    return reply
