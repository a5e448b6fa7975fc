"""Seeded, realistic XMPP streams for the benchmarks (issue 2 §9).

Everything here is deterministic for a seed and independent of the code under test: each
stanza is first built as a ``Node`` (the ElementTree model of ``xmppx.core._api``: name,
namespace, attributes in order, text, tail, children) and then written to bytes by this
module's own writer.  The ``Node`` list is the reference the benchmarks check parsers and
serializers against.

The writer varies what real clients vary, with the seed: ``'`` or ``"`` quotes, ``&apos;``
/ ``&quot;`` / ``&gt;`` or the raw character, an occasional character reference for a
non-ASCII character, an occasional CDATA body, an occasional prefixed extension element
(``<cs:active xmlns:cs='...'/>``) and whitespace keepalives between stanzas.  It never
writes what a conforming parser would change (CR, TAB or LF inside attribute values), so
every parser must return exactly the ``Node`` data.

Streams
=======

``mixed_stream(seed)``
    What a busy c2s connection carries (``jabber:client``; traffic of both directions, as
    the server's and the client's parsers see it): chat messages with non-ASCII bodies and
    escaped characters, chat states, receipts, XHTML-IM, carbons (forwarded), presence with
    XEP-0115 caps and ``xml:lang`` statuses, MUC groupchat messages and presence, small iqs,
    disco#info results, roster results of 50–5000 items and a few 64 KiB base64 payloads
    (XEP-0231 bits of binary).
``tiny_stream(seed)``
    Pings (XEP-0199) and short chat messages: the stanza-rate case.
``roster_stanza(seed)``
    One roster result of about 565 KB (5000-odd items): the memory case.

Run ``python benches/streamgen.py`` for a summary of the generated data.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "NS_CLIENT",
    "NS_STREAMS",
    "NS_XML",
    "XML_LANG",
    "GeneratedStream",
    "Node",
    "Routing",
    "chunked",
    "mixed_stream",
    "roster_stanza",
    "routing_of",
    "stream_header",
    "tiny_stream",
    "write_stanza",
]

NS_CLIENT: Final = "jabber:client"
NS_STREAMS: Final = "http://etherx.jabber.org/streams"
NS_XML: Final = "http://www.w3.org/XML/1998/namespace"
XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"

NS_CHATSTATES: Final = "http://jabber.org/protocol/chatstates"
NS_RECEIPTS: Final = "urn:xmpp:receipts"
NS_SID: Final = "urn:xmpp:sid:0"
NS_XHTML_IM: Final = "http://jabber.org/protocol/xhtml-im"
NS_XHTML: Final = "http://www.w3.org/1999/xhtml"
NS_CARBONS: Final = "urn:xmpp:carbons:2"
NS_FORWARD: Final = "urn:xmpp:forward:0"
NS_DELAY: Final = "urn:xmpp:delay"
NS_CAPS: Final = "http://jabber.org/protocol/caps"
NS_MUC_USER: Final = "http://jabber.org/protocol/muc#user"
NS_ROSTER: Final = "jabber:iq:roster"
NS_DISCO_INFO: Final = "http://jabber.org/protocol/disco#info"
NS_DATA: Final = "jabber:x:data"
NS_PING: Final = "urn:xmpp:ping"
NS_BOB: Final = "urn:xmpp:bob"
NS_NICK: Final = "http://jabber.org/protocol/nick"

#: Bytes of base64 text in one XEP-0231 payload (48 KiB of binary).
BOB_TEXT_BYTES: Final = 64 * 1024
#: Wire size the memory benchmark's roster stanza is grown to (about 5000 items).
ROSTER_TARGET_BYTES: Final = 565_000

Routing = tuple[str, str | None, str | None, str | None, str | None]
"""``(clark_tag, to, from, type, id)`` of one stanza: what a router reads."""


@dataclass(frozen=True, slots=True)
class Node:
    """An element as data: the reference a parser's output must equal.

    ``attrs`` keys are local names, or Clark notation for namespaced attributes (only
    ``xml:lang`` here).  ``text`` and ``tail`` are ``""`` when absent.
    """

    name: str
    ns: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    tail: str = ""
    children: tuple[Node, ...] = ()

    @property
    def tag(self) -> str:
        """Clark notation, as ElementTree and ``xmppx`` write it."""
        return f"{{{self.ns}}}{self.name}" if self.ns else self.name

    def iter(self) -> Iterator[Node]:
        """This node and all its descendants, document order."""
        yield self
        for c in self.children:
            yield from c.iter()


def routing_of(node: Node) -> Routing:
    a = node.attrs
    return (node.tag, a.get("to"), a.get("from"), a.get("type"), a.get("id"))


@dataclass(frozen=True, slots=True)
class GeneratedStream:
    """A whole stream: ``data`` is header + stanzas (with keepalives) + footer."""

    name: str
    seed: int
    data: bytes
    header: bytes
    stanzas: tuple[Node, ...]
    #: wire bytes of each stanza, in order (without the keepalives between them)
    stanza_bytes: tuple[bytes, ...]

    def routing(self) -> list[Routing]:
        """The reference routing attributes, one tuple per stanza."""
        return [routing_of(s) for s in self.stanzas]

    def chunks(self, size: int = 4096) -> list[bytes]:
        return chunked(self.data, size)


def chunked(data: bytes, size: int = 4096) -> list[bytes]:
    """``data`` cut every ``size`` bytes (through tags, entities and UTF-8 sequences)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


# --------------------------------------------------------------------------- writer
class _Writer:
    """Writes ``Node``s as a real client would, with seeded stylistic variation."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # Both escape functions only ever produce what parses back to ``s``.
    def text(self, s: str) -> str:
        rng = self.rng
        if "]]>" not in s and len(s) > 8 and rng.random() < 0.01:
            return f"<![CDATA[{s}]]>"
        out: list[str] = []
        for i, ch in enumerate(s):
            if ch == "&":
                out.append("&amp;")
            elif ch == "<":
                out.append("&lt;")
            elif ch == ">":
                # a raw '>' is fine unless it would close "]]>"
                raw_ok = s[max(0, i - 2) : i] != "]]"
                out.append(">" if raw_ok and rng.random() < 0.3 else "&gt;")
            elif ch == "'":
                out.append("&apos;" if rng.random() < 0.2 else ch)
            elif ch == '"':
                out.append("&quot;" if rng.random() < 0.3 else ch)
            elif ord(ch) > 0x7F and rng.random() < 0.02:
                out.append(f"&#x{ord(ch):X};" if rng.random() < 0.5 else f"&#{ord(ch)};")
            else:
                out.append(ch)
        return "".join(out)

    def attr(self, s: str, quote: str) -> str:
        if not any(c in s for c in "&<>'\""):
            return s
        rng = self.rng
        out: list[str] = []
        for ch in s:
            if ch == "&":
                out.append("&amp;")
            elif ch == "<":
                out.append("&lt;")
            elif ch == ">":
                out.append("&gt;" if rng.random() < 0.5 else ">")
            elif ch == quote:
                out.append("&apos;" if ch == "'" else "&quot;")
            elif ch in "'\"":
                out.append(("&apos;" if ch == "'" else "&quot;") if rng.random() < 0.2 else ch)
            else:
                out.append(ch)
        return "".join(out)

    def element(self, node: Node, default_ns: str, out: list[str]) -> None:
        rng = self.rng
        q = "'" if rng.random() < 0.8 else '"'
        prefixed = (
            node.ns != default_ns
            and not node.children
            and not node.text
            and node.ns not in (NS_CLIENT, NS_XHTML)
            and rng.random() < 0.08
        )
        if prefixed:
            qname = f"x{rng.randrange(10)}:{node.name}"
            out.append(f"<{qname} xmlns:{qname.split(':')[0]}={q}{node.ns}{q}")
            inner_ns = default_ns
        else:
            qname = node.name
            out.append(f"<{qname}")
            if node.ns != default_ns:
                out.append(f" xmlns={q}{node.ns}{q}")
            inner_ns = node.ns
        for key, value in node.attrs.items():
            if key == XML_LANG:
                key = "xml:lang"
            elif key.startswith("{"):
                raise ValueError(f"the writer only knows xml:lang, not {key}")
            out.append(f" {key}={q}{self.attr(value, q)}{q}")
        if not node.text and not node.children:
            out.append("/>" if rng.random() < 0.9 else f"></{qname}>")
            return
        out.append(">")
        out.append(self.text(node.text))
        for child in node.children:
            self.element(child, inner_ns, out)
            out.append(self.text(child.tail))
        out.append(f"</{qname}>")


def write_stanza(node: Node, rng: random.Random, default_ns: str = NS_CLIENT) -> bytes:
    """``node`` as UTF-8 wire bytes, a child of a stream with ``default_ns``."""
    out: list[str] = []
    _Writer(rng).element(node, default_ns, out)
    return "".join(out).encode("utf-8")


def stream_header(to: str = "example.com", lang: str = "en") -> bytes:
    """An XML declaration and a client's ``<stream:stream>`` start tag (RFC 6120 §4.7)."""
    return (
        f"<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xml:lang='{lang}' "
        f"xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}'>"
    ).encode()


STREAM_FOOTER: Final = b"</stream:stream>"


# ------------------------------------------------------------------------ vocabulary
_PHRASES: Final = (
    "Are you coming to the meeting?",
    "I'll be there in 5 minutes",
    "Tom & Jerry are back on TV tonight",
    'She said "maybe later" and left',
    "if (a < b && b > c) { return; }",
    "check https://example.org/search?q=xmpp&lang=en&page=2",
    "ok",
    "lol",
    "Thanks!",
    "The build is green again",
    "Ça va ? Très bien, merci !",
    "On se voit à l'hôtel vers 20 h ?",
    "Grüße aus München, schöne Straße",
    "¿Dónde está la estación?",
    "Привет! Как дела?",
    "Всё хорошо, спасибо",
    "Καλημέρα σε όλους",
    "こんにちは、お元気ですか？",
    "会議は明日の10時からです",
    "你好，我们明天见",
    "مرحبا، كيف حالك؟",
    "שלום, מה שלומך?",
    "नमस्ते, आप कैसे हैं?",
    "안녕하세요!",
    "🎉🎉 congrats!! 👍",
    "naïve café résumé — déjà vu…",
    "5 > 3 and 2 < 4, 'quoted' & \"double\"",
    "Ping me when you're free :)",
    "ETA ~15min, traffic is terrible 🚗",
    "Line one\nline two\nline three",
)
_FIRST: Final = (
    "alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "romeo", "juliet", "mercutio", "tybalt", "josé", "anaïs", "søren", "zoë", "мария",
    "дмитрий", "ελένη", "李雷", "さくら", "ömer", "björn",
)  # fmt: skip
_DOMAINS: Final = (
    "example.com", "example.net", "capulet.example", "montague.example", "jabber.example",
    "im.example.org", "münchen.example", "xn--bcher-kva.example",
)  # fmt: skip
_RESOURCES: Final = (
    "phone", "laptop", "Conversations.Xa1b", "gajim.7F3K", "Dino", "desktop", "balcony",
    "orchard", "Monal-iOS.4d2e", "Téléphone", "pidgin",
)  # fmt: skip
_ROOMS: Final = ("coven", "dev", "lounge", "xsf", "café", "support", "random")
_NICKS: Final = (
    "thirdwitch", "firstwitch", "hag66", "Kev", "Zoë", "Łukasz", "ニック", "bot",
    "the <admin>", "A & B",
)  # fmt: skip
_GROUPS: Final = ("Friends", "Family", "Work", "Coworkers", "Schule", "Друзья", "友達", "Bots")
_SHOW: Final = ("away", "chat", "dnd", "xa")
_STATUS: Final = {
    "en": ("Working from home", "In a meeting", "Be right back", "On vacation 🌴"),
    "fr": ("En réunion", "Au téléphone", "Je reviens tout de suite"),
    "de": ("Bin gleich zurück", "Im Büro", "Mittagspause"),
    "ru": ("На встрече", "Скоро вернусь"),
    "ja": ("会議中", "休憩中"),
}
_FEATURES: Final = (
    "http://jabber.org/protocol/caps", "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/ibb", "http://jabber.org/protocol/muc",
    "http://jabber.org/protocol/nick", "http://jabber.org/protocol/nick+notify",
    "http://jabber.org/protocol/xhtml-im", "jabber:iq:version", "jabber:iq:last",
    "jabber:x:conference", "jabber:x:oob", "urn:xmpp:avatar:metadata+notify",
    "urn:xmpp:bob", "urn:xmpp:carbons:2", "urn:xmpp:chat-markers:0", "urn:xmpp:eme:0",
    "urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:1", "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video", "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:message-correct:0", "urn:xmpp:ping", "urn:xmpp:receipts",
    "urn:xmpp:reply:0", "urn:xmpp:sid:0", "urn:xmpp:time", "urn:xmpp:reactions:0",
    "eu.siacs.conversations.axolotl.devicelist+notify",
)  # fmt: skip


def _jid_parts(rng: random.Random) -> tuple[str, str]:
    return rng.choice(_FIRST), rng.choice(_DOMAINS)


def _bare(rng: random.Random) -> str:
    local, domain = _jid_parts(rng)
    return f"{local}@{domain}"


def _full(rng: random.Random) -> str:
    return f"{_bare(rng)}/{rng.choice(_RESOURCES)}"


def _stanza_id(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.5:  # uuid4-like
        h = f"{rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
    if style < 0.8:
        return base64.urlsafe_b64encode(rng.randbytes(9)).decode()
    return f"purple{rng.getrandbits(32):08x}"


def _stamp(rng: random.Random) -> str:
    return (
        f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
    )


def _caps_ver(rng: random.Random) -> str:
    """A XEP-0115 verification string: base64 of a SHA-1-sized hash."""
    return base64.b64encode(rng.randbytes(20)).decode()


def _body_text(rng: random.Random) -> str:
    return " ".join(rng.choice(_PHRASES) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))))


def _n(
    name: str,
    ns: str = NS_CLIENT,
    attrs: Mapping[str, str] | None = None,
    text: str = "",
    *children: Node,
    tail: str = "",
) -> Node:
    return Node(name, ns, dict(attrs or {}), text, tail, children)


def _opt(attrs: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in attrs.items() if v is not None}


# --------------------------------------------------------------------------- stanzas
def chat_message(rng: random.Random, *, inner: bool = False) -> Node:
    """A one-to-one chat message: body, maybe a thread, chat state, receipt request,
    origin-id (XEP-0359), sometimes ``xml:lang``."""
    children = [_n("body", NS_CLIENT, None, _body_text(rng))]
    if rng.random() < 0.15:
        children.append(_n("thread", NS_CLIENT, None, f"{rng.getrandbits(48):012x}"))
    if rng.random() < 0.6:
        children.append(_n("active", NS_CHATSTATES))
    if rng.random() < 0.5:
        children.append(_n("request", NS_RECEIPTS))
    if rng.random() < 0.4:
        children.append(_n("origin-id", NS_SID, {"id": _stanza_id(rng)}))
    attrs = _opt(
        {
            "from": _full(rng) if inner or rng.random() < 0.3 else None,
            "to": _full(rng) if rng.random() < 0.7 else _bare(rng),
            "type": "chat",
            "id": _stanza_id(rng),
            XML_LANG: rng.choice(("en", "fr", "de")) if rng.random() < 0.1 else None,
        }
    )
    return _n("message", NS_CLIENT, attrs, "", *children)


def chat_state(rng: random.Random) -> Node:
    state = rng.choice(("composing", "paused", "active", "inactive", "gone"))
    attrs = {"to": _full(rng), "type": "chat", "id": _stanza_id(rng)}
    return _n("message", NS_CLIENT, attrs, "", _n(state, NS_CHATSTATES))


def receipt(rng: random.Random) -> Node:
    attrs = {"to": _full(rng), "id": _stanza_id(rng)}
    return _n("message", NS_CLIENT, attrs, "", _n("received", NS_RECEIPTS, {"id": _stanza_id(rng)}))


def xhtml_message(rng: random.Random) -> Node:
    """XEP-0071 XHTML-IM: mixed content, so text and tails matter."""
    who = rng.choice(_FIRST)
    plain = f"Hello {who}! Look at this & tell me <what> you think"
    p = _n(
        "p",
        NS_XHTML,
        {"style": "font-weight: normal; color: #336699"},
        "Hello ",
        _n("strong", NS_XHTML, None, who, tail="! Look at "),
        _n("a", NS_XHTML, {"href": "https://example.org/a?x=1&y=2"}, "this", tail=" & "),
        _n("em", NS_XHTML, None, "tell me", tail=" <what> you think "),
        _n("img", NS_XHTML, {"alt": "😀", "src": "https://example.org/s.png"}),
        tail="\n",
    )
    p2 = _n(
        "p", NS_XHTML, None, rng.choice(_PHRASES), _n("br", NS_XHTML, tail=rng.choice(_PHRASES))
    )
    html = _n("html", NS_XHTML_IM, None, "", _n("body", NS_XHTML, None, "\n", p, p2))
    attrs = {"to": _full(rng), "type": "chat", "id": _stanza_id(rng)}
    return _n("message", NS_CLIENT, attrs, "", _n("body", NS_CLIENT, None, plain), html)


def carbon(rng: random.Random) -> Node:
    """XEP-0280 received carbon wrapping a forwarded (XEP-0297) message with a delay."""
    bare = _bare(rng)
    inner = chat_message(rng, inner=True)
    fwd = _n(
        "forwarded", NS_FORWARD, None, "", _n("delay", NS_DELAY, {"stamp": _stamp(rng)}), inner
    )
    attrs = {
        "from": bare,
        "to": f"{bare}/{rng.choice(_RESOURCES)}",
        "type": "chat",
        "id": _stanza_id(rng),
    }
    return _n("message", NS_CLIENT, attrs, "", _n("received", NS_CARBONS, None, "", fwd))


def presence(rng: random.Random) -> Node:
    """Presence with show, statuses in several ``xml:lang``s, priority and XEP-0115 caps."""
    children: list[Node] = []
    if rng.random() < 0.6:
        children.append(_n("show", NS_CLIENT, None, rng.choice(_SHOW)))
    for lang in rng.sample(sorted(_STATUS), rng.choice((0, 1, 1, 2))):
        children.append(_n("status", NS_CLIENT, {XML_LANG: lang}, rng.choice(_STATUS[lang])))
    children.append(_n("priority", NS_CLIENT, None, str(rng.randint(-1, 50))))
    ver = _caps_ver(rng)
    node = rng.choice(("https://gajim.org", "http://conversations.im", "https://dino.im"))
    children.append(_n("c", NS_CAPS, {"hash": "sha-1", "node": node, "ver": ver}))
    if rng.random() < 0.2:
        children.append(_n("nick", NS_NICK, None, rng.choice(_NICKS)))
    attrs = _opt(
        {
            "from": _full(rng) if rng.random() < 0.5 else None,
            "to": _bare(rng) if rng.random() < 0.3 else None,
            "id": _stanza_id(rng) if rng.random() < 0.4 else None,
            XML_LANG: "en" if rng.random() < 0.5 else None,
        }
    )
    return _n("presence", NS_CLIENT, attrs, "", *children)


def groupchat(rng: random.Random) -> Node:
    """A MUC (XEP-0045) groupchat message as the room reflects it, with a stanza-id."""
    room = f"{rng.choice(_ROOMS)}@conference.{rng.choice(_DOMAINS)}"
    attrs = {
        "from": f"{room}/{rng.choice(_NICKS)}",
        "to": _full(rng),
        "type": "groupchat",
        "id": _stanza_id(rng),
    }
    children = [
        _n("body", NS_CLIENT, None, _body_text(rng)),
        _n("stanza-id", NS_SID, {"id": _stanza_id(rng), "by": room}),
    ]
    if rng.random() < 0.3:
        children.append(_n("active", NS_CHATSTATES))
    return _n("message", NS_CLIENT, attrs, "", *children)


def muc_presence(rng: random.Random) -> Node:
    room = f"{rng.choice(_ROOMS)}@conference.{rng.choice(_DOMAINS)}"
    item = _n(
        "item",
        NS_MUC_USER,
        {
            "affiliation": rng.choice(("none", "member", "admin", "owner")),
            "role": rng.choice(("participant", "moderator", "visitor")),
            "jid": _full(rng),
        },
    )
    x = _n("x", NS_MUC_USER, None, "", item)
    attrs = {"from": f"{room}/{rng.choice(_NICKS)}", "to": _full(rng)}
    kids = [x]
    if rng.random() < 0.5:
        kids.insert(
            0, _n("c", NS_CAPS, {"hash": "sha-1", "node": "https://dino.im", "ver": _caps_ver(rng)})
        )
    return _n("presence", NS_CLIENT, attrs, "", *kids)


def small_iq(rng: random.Random) -> Node:
    kind = rng.randrange(4)
    if kind == 0:
        return _n(
            "iq",
            NS_CLIENT,
            {"type": "get", "id": _stanza_id(rng), "to": rng.choice(_DOMAINS)},
            "",
            _n("ping", NS_PING),
        )
    if kind == 1:
        return _n(
            "iq",
            NS_CLIENT,
            {"type": "result", "id": _stanza_id(rng), "from": _full(rng), "to": _full(rng)},
        )
    if kind == 2:
        return _n(
            "iq", NS_CLIENT, {"type": "get", "id": _stanza_id(rng)}, "", _n("query", NS_ROSTER)
        )
    return _n(
        "iq",
        NS_CLIENT,
        {"type": "get", "id": _stanza_id(rng), "to": _full(rng)},
        "",
        _n("query", NS_DISCO_INFO, {"node": "https://gajim.org#" + _caps_ver(rng)}),
    )


def disco_info_result(rng: random.Random) -> Node:
    """XEP-0030 disco#info result with identities, features and a XEP-0232 form."""
    kids = [
        _n(
            "identity",
            NS_DISCO_INFO,
            {
                "category": "client",
                "type": rng.choice(("pc", "phone")),
                "name": rng.choice(("Gajim", "Conversations", "Dino")),
            },
        ),
        _n(
            "identity",
            NS_DISCO_INFO,
            {"category": "client", "type": "pc", "name": "Gajim", XML_LANG: "fr"},
        ),
    ]
    feats = sorted(rng.sample(_FEATURES, rng.randint(12, len(_FEATURES))))
    kids += [_n("feature", NS_DISCO_INFO, {"var": f}) for f in feats]
    fields = [
        _n(
            "field",
            NS_DATA,
            {"var": "FORM_TYPE", "type": "hidden"},
            "",
            _n("value", NS_DATA, None, "urn:xmpp:dataforms:softwareinfo"),
        ),
        _n("field", NS_DATA, {"var": "os"}, "", _n("value", NS_DATA, None, "Linux")),
        _n("field", NS_DATA, {"var": "software"}, "", _n("value", NS_DATA, None, "Gajim")),
        _n(
            "field",
            NS_DATA,
            {"var": "software_version"},
            "",
            _n("value", NS_DATA, None, f"1.{rng.randint(0, 9)}.{rng.randint(0, 9)}"),
        ),
    ]
    kids.append(_n("x", NS_DATA, {"type": "result"}, "", *fields))
    node = "https://gajim.org#" + _caps_ver(rng)
    query = _n("query", NS_DISCO_INFO, {"node": node}, "", *kids)
    attrs = {"type": "result", "id": _stanza_id(rng), "from": _full(rng), "to": _full(rng)}
    return _n("iq", NS_CLIENT, attrs, "", query)


def roster_result(rng: random.Random, items: int) -> Node:
    """RFC 6121 §2.1.4 roster result with ``items`` items (names, groups, subscriptions)."""
    kids: list[Node] = []
    for i in range(items):
        local = f"{rng.choice(_FIRST)}{i}"
        attrs = _opt(
            {
                "jid": f"{local}@{rng.choice(_DOMAINS)}",
                "name": local.capitalize() if rng.random() < 0.8 else None,
                "subscription": rng.choice(("both", "both", "both", "to", "from", "none")),
                "ask": "subscribe" if rng.random() < 0.03 else None,
            }
        )
        groups = [
            _n("group", NS_ROSTER, None, g) for g in rng.sample(_GROUPS, rng.choice((0, 1, 1, 2)))
        ]
        kids.append(_n("item", NS_ROSTER, attrs, "", *groups))
    query = _n("query", NS_ROSTER, {"ver": f"ver{rng.getrandbits(32)}"}, "", *kids)
    return _n(
        "iq", NS_CLIENT, {"type": "result", "id": _stanza_id(rng), "to": _full(rng)}, "", query
    )


def bob_message(rng: random.Random, text_bytes: int = BOB_TEXT_BYTES) -> Node:
    """A message carrying XEP-0231 bits of binary: ``text_bytes`` of base64 text."""
    blob = rng.randbytes(text_bytes * 3 // 4)
    data = base64.b64encode(blob).decode()
    cid = f"sha1+{rng.getrandbits(160):040x}@bob.xmpp.org"
    attrs = {"to": _full(rng), "type": "chat", "id": _stanza_id(rng)}
    return _n(
        "message",
        NS_CLIENT,
        attrs,
        "",
        _n("body", NS_CLIENT, None, "Here is the picture"),
        _n("data", NS_BOB, {"cid": cid, "type": "image/png", "max-age": "86400"}, data),
    )


def ping(rng: random.Random) -> Node:
    return _n(
        "iq",
        NS_CLIENT,
        {"type": "get", "id": f"p{rng.getrandbits(24)}", "to": "example.com"},
        "",
        _n("ping", NS_PING),
    )


def short_message(rng: random.Random) -> Node:
    local, domain = _jid_parts(rng)
    body = rng.choice(("ok", "k", "yes", "no", "lol", "👍", "brb", "thx", "np", "sure"))
    return _n(
        "message",
        NS_CLIENT,
        {"to": f"{local}@{domain}", "type": "chat", "id": f"m{rng.getrandbits(24)}"},
        "",
        _n("body", NS_CLIENT, None, body),
    )


_MIXED_WEIGHTS: Final[tuple[tuple[Callable[[random.Random], Node], int], ...]] = (
    (chat_message, 30),
    (chat_state, 8),
    (receipt, 8),
    (xhtml_message, 5),
    (carbon, 8),
    (presence, 15),
    (groupchat, 14),
    (muc_presence, 4),
    (small_iq, 5),
    (disco_info_result, 3),
)


# --------------------------------------------------------------------------- streams
def _assemble(name: str, seed: int, rng: random.Random, nodes: list[Node]) -> GeneratedStream:
    header = stream_header()
    parts = [header]
    wire: list[bytes] = []
    for node in nodes:
        b = write_stanza(node, rng)
        wire.append(b)
        parts.append(b)
        r = rng.random()
        if r < 0.05:
            parts.append(b"\n")
        elif r < 0.06:
            parts.append(b" \n\t ")
    parts.append(STREAM_FOOTER)
    return GeneratedStream(name, seed, b"".join(parts), header, tuple(nodes), tuple(wire))


def mixed_stream(seed: int = 1, stanzas: int = 6000) -> GeneratedStream:
    """``stanzas`` small stanzas of the mixed kinds, plus ``max(2, stanzas // 2000)``
    roster results (item counts log-uniform in 50..5000, the first with 5000) and
    ``max(2, stanzas // 2500)`` 64 KiB XEP-0231 payloads at seeded positions."""
    rng = random.Random(f"mixed-{seed}")
    makers = [m for m, _ in _MIXED_WEIGHTS]
    weights = [w for _, w in _MIXED_WEIGHTS]
    nodes = [maker(rng) for maker in rng.choices(makers, weights, k=stanzas)]
    n_rosters = max(2, stanzas // 2000)
    sizes = [5000] + [
        round(math.exp(rng.uniform(math.log(50), math.log(5000)))) for _ in range(n_rosters - 1)
    ]
    big = [roster_result(rng, n) for n in sizes]
    big += [bob_message(rng) for _ in range(max(2, stanzas // 2500))]
    for node in big:
        nodes.insert(rng.randrange(len(nodes) + 1), node)
    return _assemble("mixed", seed, rng, nodes)


def tiny_stream(seed: int = 1, stanzas: int = 20000) -> GeneratedStream:
    """``stanzas`` pings and short chat messages, half and half."""
    rng = random.Random(f"tiny-{seed}")
    nodes = [ping(rng) if rng.random() < 0.5 else short_message(rng) for _ in range(stanzas)]
    return _assemble("tiny", seed, rng, nodes)


def roster_stanza(seed: int = 1, target_bytes: int = ROSTER_TARGET_BYTES) -> tuple[Node, bytes]:
    """One roster result with the fewest items whose wire size reaches ``target_bytes``
    (about 5000 items for 565 KB), and its wire bytes.

    The items come first from the seeded generators, so a roster of ``n + 1`` items
    starts with the ``n`` items of the smaller one and the size grows with ``n``: a
    binary search finds the count.
    """

    def make(items: int) -> tuple[Node, bytes]:
        node = roster_result(random.Random(f"roster-{seed}"), items)
        return node, write_stanza(node, random.Random(f"roster-wire-{seed}"))

    lo, hi = 1, max(2, target_bytes // 64)
    while len(make(hi)[1]) < target_bytes:
        lo, hi = hi, hi * 2
    while lo < hi:  # smallest count reaching the target is in [lo, hi]
        mid = (lo + hi) // 2
        if len(make(mid)[1]) >= target_bytes:
            hi = mid
        else:
            lo = mid + 1
    return make(hi)


def _summary() -> None:
    for gen in (mixed_stream(), tiny_stream()):
        kinds: dict[str, int] = {}
        for s in gen.stanzas:
            kinds[s.name] = kinds.get(s.name, 0) + 1
        non_ascii = sum(1 for b in gen.stanza_bytes if max(b) > 0x7F)
        print(
            f"{gen.name}: {len(gen.data):,} bytes, {len(gen.stanzas):,} stanzas {kinds}, "
            f"largest {max(map(len, gen.stanza_bytes)):,} B, {non_ascii} with non-ASCII"
        )
    node, wire = roster_stanza()
    print(f"roster: {len(wire):,} bytes, {len(node.children[0].children):,} items")


if __name__ == "__main__":
    _summary()
