"""XML namespace names used across xmppx, with the document that defines each."""

from typing import Final

__all__ = [
    "BIND",
    "BLOCKING",
    "CARBONS",
    "CLIENT",
    "COMMANDS",
    "CSI",
    "DATA_FORMS",
    "DELAY",
    "DISCO_INFO",
    "DISCO_ITEMS",
    "FORWARD",
    "HINTS",
    "IQ_AUTH",
    "IQ_AUTH_FEATURE",
    "IQ_REGISTER",
    "IQ_REGISTER_FEATURE",
    "LAST",
    "MUC",
    "MUC_ADMIN",
    "MUC_OWNER",
    "MUC_USER",
    "PING",
    "PRIVATE",
    "ROSTER",
    "ROSTER_VER",
    "SASL",
    "SASL_CB",
    "SESSION",
    "SM",
    "STANZAS",
    "STREAMS",
    "STREAM_ERRORS",
    "STREAM_LIMITS",
    "TIME",
    "TLS",
    "VCARD",
    "VERSION",
    "XML",
    "XML_LANG",
    "clark",
]

STREAMS: Final = "http://etherx.jabber.org/streams"  # RFC 6120 §4.8.1
CLIENT: Final = "jabber:client"  # RFC 6120 §4.8.2
XML: Final = "http://www.w3.org/XML/1998/namespace"
STREAM_ERRORS: Final = "urn:ietf:params:xml:ns:xmpp-streams"  # RFC 6120 §4.9.2
STANZAS: Final = "urn:ietf:params:xml:ns:xmpp-stanzas"  # RFC 6120 §8.3.2
TLS: Final = "urn:ietf:params:xml:ns:xmpp-tls"  # RFC 6120 §5
SASL: Final = "urn:ietf:params:xml:ns:xmpp-sasl"  # RFC 6120 §6
BIND: Final = "urn:ietf:params:xml:ns:xmpp-bind"  # RFC 6120 §7
SESSION: Final = "urn:ietf:params:xml:ns:xmpp-session"  # RFC 3921 §3
SASL_CB: Final = "urn:xmpp:sasl-cb:0"  # XEP-0440
STREAM_LIMITS: Final = "urn:xmpp:stream-limits:0"  # XEP-0478
ROSTER: Final = "jabber:iq:roster"  # RFC 6121 §2
ROSTER_VER: Final = "urn:xmpp:features:rosterver"  # RFC 6121 §2.6
IQ_AUTH: Final = "jabber:iq:auth"  # XEP-0078
IQ_AUTH_FEATURE: Final = "http://jabber.org/features/iq-auth"  # XEP-0078 §4
IQ_REGISTER: Final = "jabber:iq:register"  # XEP-0077
IQ_REGISTER_FEATURE: Final = "http://jabber.org/features/iq-register"  # XEP-0077 §4
DISCO_INFO: Final = "http://jabber.org/protocol/disco#info"  # XEP-0030
DISCO_ITEMS: Final = "http://jabber.org/protocol/disco#items"  # XEP-0030
PING: Final = "urn:xmpp:ping"  # XEP-0199
VERSION: Final = "jabber:iq:version"  # XEP-0092
TIME: Final = "urn:xmpp:time"  # XEP-0202
COMMANDS: Final = "http://jabber.org/protocol/commands"  # XEP-0050
DATA_FORMS: Final = "jabber:x:data"  # XEP-0004
DELAY: Final = "urn:xmpp:delay"  # XEP-0203
LAST: Final = "jabber:iq:last"  # XEP-0012
PRIVATE: Final = "jabber:iq:private"  # XEP-0049
VCARD: Final = "vcard-temp"  # XEP-0054
BLOCKING: Final = "urn:xmpp:blocking"  # XEP-0191
CARBONS: Final = "urn:xmpp:carbons:2"  # XEP-0280
FORWARD: Final = "urn:xmpp:forward:0"  # XEP-0297
HINTS: Final = "urn:xmpp:hints"  # XEP-0334
CSI: Final = "urn:xmpp:csi:0"  # XEP-0352
SM: Final = "urn:xmpp:sm:3"  # XEP-0198
MUC: Final = "http://jabber.org/protocol/muc"  # XEP-0045
MUC_USER: Final = "http://jabber.org/protocol/muc#user"
MUC_ADMIN: Final = "http://jabber.org/protocol/muc#admin"
MUC_OWNER: Final = "http://jabber.org/protocol/muc#owner"


def clark(uri: str, name: str) -> str:
    """``{uri}name``: the Clark-notation tag that ``Element.find`` and friends take."""
    return "{" + uri + "}" + name


#: The ``xml:lang`` attribute as ``Element`` keys it (XML 1.0 §2.12).
XML_LANG: Final = clark(XML, "lang")
