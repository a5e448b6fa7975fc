"""The sans-I/O ``ClientStream`` against scripted server conversations (RFC 6120 §9 style):
each test reads as the XML exchange, server bytes in, client bytes out, no network.

The SASL exchange uses the RFC 5802 §5 SCRAM-SHA-1 example (user ``user``, password
``pencil``, client nonce ``fyko+d2lbbFgONRv9qkxdawL``), injected through
``ClientStreamConfig.mechanism_factory``.  The last tests run the client against the
project's own ``ServerStream`` and SCRAM server in memory.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from xmppx import ns
from xmppx.auth import (
    Challenge,
    NeedCredentials,
    SASLFailure,
    ScramClient,
    ServerContext,
    ServerMechanism,
    Success,
    create_server_mechanism,
    derive_scram_credentials,
    mechanisms_for,
    tls_server_end_point,
)
from xmppx.client import (
    Authenticated,
    AuthenticationError,
    AuthFailed,
    BindFailed,
    Bound,
    Client,
    ClientPhase,
    ClientStream,
    ClientStreamConfig,
    Closed,
    ConnectionLost,
    Event,
    FeaturesReceived,
    IqError,
    NonzaReceived,
    StanzaReceived,
    StreamClosedError,
    StreamErrorReceived,
    StreamFailed,
    StreamOpened,
    TLSFailed,
    TLSProceed,
)
from xmppx.core import Element
from xmppx.errors import StanzaError
from xmppx.stream import (
    AuthRequested,
    AuthResponse,
    BindRequested,
    Phase,
    ServerStream,
    ServerStreamConfig,
    TLSRequested,
)
from xmppx.stream import StanzaReceived as ServerStanzaReceived

# RFC 5802 §5
CLIENT_NONCE = "fyko+d2lbbFgONRv9qkxdawL"
CLIENT_FIRST = b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
SERVER_FIRST = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
CLIENT_FINAL = b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
SERVER_FINAL = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
WRONG_FINAL = b"v=" + base64.b64encode(b"\x00" * 20)

STREAMS = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
HEADER = (
    f"<?xml version='1.0'?><stream:stream from='example.com' id='s1' version='1.0' "
    f"xml:lang='en' {STREAMS}>"
).encode()
C_HEADER = (
    b"<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xml:lang='en' "
    + STREAMS.encode()
    + b">"
)
C_HEADER_TLS = C_HEADER.replace(b"<stream:stream ", b"<stream:stream from='user@example.com' ")
FEATURES_TLS = (
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
    b"</starttls></stream:features>"
)
FEATURES_SASL = (
    b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    b"<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
    b"</stream:features>"
)
FEATURES_BIND = (
    b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>"
)
FEATURES_BIND_OPTIONAL_SESSION = (
    b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"
    b"</stream:features>"
)
SASL = "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rfc5802_client(offered: Sequence[str]) -> ScramClient:
    assert "SCRAM-SHA-1" in offered
    return ScramClient("sha1", username="user", password="pencil", nonce=CLIENT_NONCE)


def make_stream(**kw: object) -> ClientStream:
    tls_active = bool(kw.pop("tls_active", False))
    cfg: dict[str, object] = {
        "domain": "example.com",
        "username": "user",
        "password": "pencil",
        "mechanism_factory": rfc5802_client,
    }
    cfg.update(kw)
    stream = ClientStream(ClientStreamConfig(**cfg), tls_active=tls_active)  # type: ignore[arg-type]
    stream.start()
    return stream


def exchange(stream: ClientStream, server: bytes) -> tuple[list[Event], bytes]:
    """Feed the server's bytes; return the events and what the client answers."""
    events = stream.receive_data(server)
    return events, stream.data_to_send()


def phase(stream: ClientStream) -> ClientPhase:
    return stream.phase  # a call, so that type checkers do not narrow it between asserts


def kinds(events: Sequence[Event]) -> list[type[Any]]:
    return [type(e) for e in events]


def to_authenticated(stream: ClientStream) -> None:
    """Run the scripted conversation up to the post-SASL features."""
    assert stream.data_to_send() == C_HEADER
    exchange(stream, HEADER + FEATURES_TLS)
    exchange(stream, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    stream.tls_established()
    assert stream.data_to_send() == C_HEADER_TLS
    exchange(stream, HEADER + FEATURES_SASL)
    exchange(stream, f"<challenge {SASL}>{b64(SERVER_FIRST)}</challenge>".encode())
    events, out = exchange(stream, f"<success {SASL}>{b64(SERVER_FINAL)}</success>".encode())
    assert kinds(events) == [Authenticated]
    assert out == C_HEADER_TLS


# -- the whole negotiation ----------------------------------------------------------


def test_full_negotiation_rfc6120_section9() -> None:
    stream = make_stream()
    # C: initial header (RFC 6120 §4.7)
    assert stream.data_to_send() == C_HEADER
    assert phase(stream) is ClientPhase.HEADER

    # S: header + features with <starttls><required/>  C: <starttls/>
    events, out = exchange(stream, HEADER + FEATURES_TLS)
    assert kinds(events) == [StreamOpened, FeaturesReceived]
    opened, features = events
    assert isinstance(opened, StreamOpened) and opened.stream_id == "s1" and not opened.restart
    assert isinstance(features, FeaturesReceived)
    assert features.starttls and features.tls_required and features.mechanisms == ()
    assert out == b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

    # S: <proceed/>  -> the owner upgrades, then the stream restarts with 'from' (§4.7.1)
    events, out = exchange(stream, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert events == [TLSProceed()] and out == b""
    assert phase(stream) is ClientPhase.TLS
    stream.tls_established()
    assert stream.tls_active
    assert stream.data_to_send() == C_HEADER_TLS

    # S: header + mechanisms  C: <auth mechanism='SCRAM-SHA-1'>client-first</auth>
    events, out = exchange(stream, HEADER + FEATURES_SASL)
    assert kinds(events) == [StreamOpened, FeaturesReceived]
    assert isinstance(events[0], StreamOpened) and events[0].restart
    assert isinstance(events[1], FeaturesReceived)
    assert events[1].mechanisms == ("SCRAM-SHA-1", "PLAIN")
    assert out == f"<auth {SASL} mechanism='SCRAM-SHA-1'>{b64(CLIENT_FIRST)}</auth>".encode()

    # S: <challenge>server-first</challenge>  C: <response>client-final</response>
    events, out = exchange(stream, f"<challenge {SASL}>{b64(SERVER_FIRST)}</challenge>".encode())
    assert events == []
    assert out == f"<response {SASL}>{b64(CLIENT_FINAL)}</response>".encode()

    # S: <success>server-final</success>: the signature checks out; restart
    events, out = exchange(stream, f"<success {SASL}>{b64(SERVER_FINAL)}</success>".encode())
    assert events == [Authenticated(mechanism="SCRAM-SHA-1")]
    assert stream.authenticated and stream.mechanism == "SCRAM-SHA-1"
    assert out == C_HEADER_TLS

    # S: header + bind + required session  C: bind iq (server-generated resource)
    events, out = exchange(stream, HEADER + FEATURES_BIND)
    assert kinds(events) == [StreamOpened, FeaturesReceived]
    assert isinstance(events[1], FeaturesReceived)
    assert events[1].bind and events[1].session_required
    assert out == (
        b"<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'></bind></iq>"
    )

    # S: bind result  C: RFC 3921 session iq
    events, out = exchange(
        stream,
        b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>user@example.com/4db06f06</jid></bind></iq>",
    )
    assert events == []
    assert out == (
        b"<iq type='set' id='session-1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    )

    # S: session result -> Bound
    events, out = exchange(stream, b"<iq type='result' id='session-1'/>")
    assert events == [Bound(jid="user@example.com/4db06f06")]
    assert phase(stream) is ClientPhase.READY and stream.jid == "user@example.com/4db06f06"

    # Stanzas both ways
    events, _ = exchange(
        stream,
        b"<message from='juliet@example.com/balcony' to='user@example.com/4db06f06'>"
        b"<body>Wherefore art thou?</body></message>\n"
        b"<r xmlns='urn:xmpp:sm:3'/>",
    )
    assert len(events) == 2 and isinstance(events[1], NonzaReceived)
    assert isinstance(events[0], StanzaReceived)
    assert events[0].stanza.findtext("body") == "Wherefore art thou?"
    msg = Element("message", ns.CLIENT, {"to": "juliet@example.com", "type": "chat"})
    msg.append(Element("body", ns.CLIENT, text="Here & now"))
    stream.send_element(msg)
    assert stream.data_to_send() == (
        b"<message to='juliet@example.com' type='chat'><body>Here &amp; now</body></message>"
    )

    # Closing handshake (§4.4)
    stream.close()
    assert stream.data_to_send() == b"</stream:stream>"
    assert phase(stream) is ClientPhase.CLOSING
    events, out = exchange(stream, b"<presence type='unavailable'/></stream:stream>")
    assert kinds(events) == [StanzaReceived, Closed]
    assert out == b""
    assert phase(stream) is ClientPhase.CLOSED
    assert stream.receive_data(b"") == []


def test_byte_by_byte_gives_the_same_events() -> None:
    whole = make_stream()
    split = make_stream()
    script = [
        HEADER + FEATURES_TLS,
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        None,
        HEADER + FEATURES_SASL,
        f"<challenge {SASL}>{b64(SERVER_FIRST)}</challenge>".encode(),
        f"<success {SASL}>{b64(SERVER_FINAL)}</success>".encode(),
        HEADER + FEATURES_BIND_OPTIONAL_SESSION,
        b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>user@example.com/r</jid></bind></iq>",
        b"<message><body>\xc3\xa9t\xc3\xa9</body></message>",
    ]
    for chunk in script:
        if chunk is None:
            whole.tls_established()
            split.tls_established()
            continue
        a = whole.receive_data(chunk)
        b: list[Event] = []
        for i in range(len(chunk)):
            b += split.receive_data(chunk[i : i + 1])
        assert kinds(a) == kinds(b)
        assert whole.data_to_send() == split.data_to_send()
    assert phase(split) is ClientPhase.READY


def test_requested_resource_and_optional_session() -> None:
    stream = make_stream(resource="balcony & garden")
    to_authenticated(stream)
    _, out = exchange(stream, HEADER + FEATURES_BIND_OPTIONAL_SESSION)
    assert out == (
        b"<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<resource>balcony &amp; garden</resource></bind></iq>"
    )
    events, out = exchange(
        stream,
        b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>user@example.com/balcony &amp; garden</jid></bind></iq>",
    )
    assert events == [Bound(jid="user@example.com/balcony & garden")]
    assert out == b""  # no session iq: it is <optional/>


def test_bind_error() -> None:
    stream = make_stream(resource="balcony")
    to_authenticated(stream)
    exchange(stream, HEADER + FEATURES_BIND)
    events, out = exchange(
        stream,
        b"<iq type='error' id='bind-1'><error type='cancel'>"
        b"<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>in use</text></error></iq>",
    )
    assert events == [BindFailed(condition="conflict", text="in use")]
    assert out == b"</stream:stream>"
    assert phase(stream) is ClientPhase.CLOSING
    assert kinds(stream.receive_data(b"</stream:stream>")) == [Closed]


def test_no_bind_feature() -> None:
    stream = make_stream()
    to_authenticated(stream)
    events, out = exchange(stream, HEADER + b"<stream:features/>")
    assert kinds(events) == [StreamOpened, FeaturesReceived, BindFailed]
    assert out == b"</stream:stream>"


# -- SASL -----------------------------------------------------------------------------


def _to_sasl(stream: ClientStream) -> None:
    stream.data_to_send()
    exchange(stream, HEADER + FEATURES_TLS)
    exchange(stream, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    stream.tls_established()
    stream.data_to_send()
    exchange(stream, HEADER + FEATURES_SASL)
    exchange(stream, f"<challenge {SASL}>{b64(SERVER_FIRST)}</challenge>".encode())


def test_wrong_server_signature_in_success() -> None:
    stream = make_stream()
    _to_sasl(stream)
    events, out = exchange(stream, f"<success {SASL}>{b64(WRONG_FINAL)}</success>".encode())
    assert len(events) == 1 and isinstance(events[0], AuthFailed)
    assert events[0].condition == "aborted" and events[0].local
    assert "signature" in events[0].text
    assert not stream.authenticated
    assert out == b"</stream:stream>"  # no restart: we do not trust this server
    assert phase(stream) is ClientPhase.CLOSING


def test_wrong_server_signature_in_challenge_aborts() -> None:
    # RFC 3920 servers send v= in a last challenge, then an empty <success/>.
    stream = make_stream()
    _to_sasl(stream)
    events, out = exchange(stream, f"<challenge {SASL}>{b64(WRONG_FINAL)}</challenge>".encode())
    assert len(events) == 1 and isinstance(events[0], AuthFailed) and events[0].local
    assert out == f"<abort {SASL}/></stream:stream>".encode()
    # The server's <failure><aborted/> and closing tag are taken quietly.
    events, out = exchange(stream, f"<failure {SASL}><aborted/></failure></stream:stream>".encode())
    assert events == [Closed()] and out == b""


def test_signature_in_challenge_then_empty_success() -> None:
    stream = make_stream()
    _to_sasl(stream)
    events, out = exchange(stream, f"<challenge {SASL}>{b64(SERVER_FINAL)}</challenge>".encode())
    assert events == [] and out == f"<response {SASL}>=</response>".encode()
    events, out = exchange(stream, f"<success {SASL}/>".encode())
    assert events == [Authenticated(mechanism="SCRAM-SHA-1")]
    assert out == C_HEADER_TLS


def test_success_without_signature_is_refused() -> None:
    stream = make_stream()
    _to_sasl(stream)
    events, _ = exchange(stream, f"<success {SASL}/>".encode())
    assert kinds(events) == [AuthFailed] and not stream.authenticated


def test_server_failure() -> None:
    stream = make_stream()
    _to_sasl(stream)
    events, out = exchange(
        stream,
        f"<failure {SASL}><not-authorized/><text xml:lang='en'>wrong user name or password"
        f"</text></failure>".encode(),
    )
    assert events == [
        AuthFailed(condition="not-authorized", text="wrong user name or password", local=False)
    ]
    assert out == b"</stream:stream>"


def test_bad_base64_from_server_aborts() -> None:
    stream = make_stream()
    _to_sasl(stream)
    events, out = exchange(stream, f"<challenge {SASL}>!!notbase64</challenge>".encode())
    assert len(events) == 1 and isinstance(events[0], AuthFailed)
    assert events[0].condition == "aborted" and events[0].local
    assert out == f"<abort {SASL}/></stream:stream>".encode()


def _first_auth(stream: ClientStream, features: bytes) -> tuple[list[Event], bytes]:
    stream.data_to_send()
    return exchange(stream, HEADER + features)


def _mechanisms(*names: str) -> bytes:
    mechs = "".join(f"<mechanism>{n}</mechanism>" for n in names)
    return f"<stream:features><mechanisms {SASL}>{mechs}</mechanisms></stream:features>".encode()


def test_default_picks_strongest_allowed() -> None:
    offered = _mechanisms("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
    stream = make_stream(tls_active=True, mechanism_factory=None)
    _, out = _first_auth(stream, offered)
    assert out.startswith(f"<auth {SASL} mechanism='SCRAM-SHA-256'>".encode())
    decoded = base64.b64decode(out.split(b">", 1)[1].split(b"<", 1)[0])
    assert decoded.startswith(b"n,,n=user,r=")  # no channel binding data: flag n

    stream = make_stream(tls_active=True, mechanism_factory=None, mechanisms=("SCRAM-SHA-1",))
    _, out = _first_auth(stream, offered)
    assert out.startswith(f"<auth {SASL} mechanism='SCRAM-SHA-1'>".encode())

    stream = make_stream(tls_active=True, mechanism_factory=None, mechanisms=("PLAIN",))
    _, out = _first_auth(stream, offered)
    plain = b64(b"\x00user\x00pencil")
    assert out == f"<auth {SASL} mechanism='PLAIN'>{plain}</auth>".encode()


def test_plain_needs_tls_unless_named() -> None:
    offered = _mechanisms("PLAIN")
    stream = make_stream(starttls=False, mechanism_factory=None)
    events, out = _first_auth(stream, offered)
    assert kinds(events) == [StreamOpened, FeaturesReceived, AuthFailed]
    failed = events[2]
    assert isinstance(failed, AuthFailed)
    assert failed.condition == "invalid-mechanism" and failed.local
    assert out == b"</stream:stream>"

    stream = make_stream(starttls=False, mechanism_factory=None, mechanisms=("PLAIN",))
    _, out = _first_auth(stream, offered)
    assert out.startswith(f"<auth {SASL} mechanism='PLAIN'>".encode())


def test_channel_binding_plus() -> None:
    offered = (
        f"<stream:features><mechanisms {SASL}><mechanism>SCRAM-SHA-256-PLUS</mechanism>"
        f"<mechanism>SCRAM-SHA-256</mechanism></mechanisms>"
        f"<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"
        f"<channel-binding type='tls-server-end-point'/></sasl-channel-binding>"
        f"</stream:features>"
    ).encode()
    cfg = ClientStreamConfig(domain="example.com", username="user", password="pencil")
    stream = ClientStream(
        cfg, tls_active=True, channel_bindings={"tls-server-end-point": b"\x01" * 32}
    )
    stream.start()
    events, out = _first_auth(stream, offered)
    assert isinstance(events[1], FeaturesReceived)
    assert events[1].channel_binding_types == ("tls-server-end-point",)
    assert out.startswith(f"<auth {SASL} mechanism='SCRAM-SHA-256-PLUS'>".encode())
    decoded = base64.b64decode(out.split(b">", 1)[1].split(b"<", 1)[0])
    assert decoded.startswith(b"p=tls-server-end-point,,n=user,r=")


def test_channel_binding_capable_but_not_offered_sends_y() -> None:
    stream = ClientStream(
        ClientStreamConfig(domain="example.com", username="user", password="pencil"),
        tls_active=True,
        channel_bindings={"tls-server-end-point": b"\x01" * 32},
    )
    stream.start()
    _, out = _first_auth(stream, _mechanisms("SCRAM-SHA-1"))
    decoded = base64.b64decode(out.split(b">", 1)[1].split(b"<", 1)[0])
    assert decoded.startswith(b"y,,n=user,r=")  # RFC 5802 §6 downgrade detection


# -- TLS ------------------------------------------------------------------------------


def test_starttls_failure() -> None:
    stream = make_stream()
    stream.data_to_send()
    exchange(stream, HEADER + FEATURES_TLS)
    events, out = exchange(stream, b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert events == [TLSFailed()]
    assert out == b"</stream:stream>"


def test_starttls_required_by_us_but_not_offered() -> None:
    stream = make_stream()
    stream.data_to_send()
    events, out = exchange(stream, HEADER + FEATURES_SASL)
    assert kinds(events) == [StreamOpened, FeaturesReceived, StreamFailed]
    failed = events[2]
    assert isinstance(failed, StreamFailed) and failed.condition == "policy-violation"
    assert out.startswith(b"<stream:error><policy-violation ")
    assert out.endswith(b"</stream:stream>")


def test_starttls_off_skips_tls() -> None:
    stream = make_stream(starttls=False)
    stream.data_to_send()
    _, out = exchange(
        stream,
        HEADER
        + b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
        + FEATURES_SASL[len(b"<stream:features>") :],
    )
    assert out == f"<auth {SASL} mechanism='SCRAM-SHA-1'>{b64(CLIENT_FIRST)}</auth>".encode()


def test_direct_tls_skips_starttls() -> None:
    stream = make_stream(tls_active=True)
    assert stream.data_to_send() == C_HEADER_TLS
    _, out = exchange(stream, HEADER + FEATURES_SASL)
    assert out.startswith(f"<auth {SASL} ".encode())


# -- errors from the server -----------------------------------------------------------


def test_stream_error_from_server() -> None:
    stream = make_stream()
    stream.data_to_send()
    events, out = exchange(
        stream,
        HEADER + b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>not served here</text>"
        b"</stream:error></stream:stream>",
    )
    assert kinds(events) == [StreamOpened, StreamErrorReceived, Closed]
    assert events[1] == StreamErrorReceived(condition="host-unknown", text="not served here")
    assert out == b"</stream:stream>"  # answered once
    assert phase(stream) is ClientPhase.CLOSED


def test_stream_error_when_ready_see_other_host() -> None:
    stream = make_stream()
    to_authenticated(stream)
    exchange(stream, HEADER + FEATURES_BIND_OPTIONAL_SESSION)
    exchange(
        stream,
        b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>user@example.com/r</jid></bind></iq>",
    )
    events, out = exchange(
        stream,
        b"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
        b"[2001:41D0:1:A49b::1]:9222</see-other-host></stream:error>",
    )
    assert events == [
        StreamErrorReceived(condition="see-other-host", text="[2001:41D0:1:A49b::1]:9222")
    ]
    assert out == b"</stream:stream>"
    assert phase(stream) is ClientPhase.CLOSING


def test_xml_error_from_server() -> None:
    stream = make_stream()
    stream.data_to_send()
    events, out = exchange(stream, HEADER + b"<stream:features><!-- hi --></stream:features>")
    assert kinds(events) == [StreamOpened, StreamFailed]
    failed = events[1]
    assert isinstance(failed, StreamFailed) and failed.condition == "restricted-xml"
    assert out.startswith(b"<stream:error><restricted-xml ")
    assert out.endswith(b"</stream:stream>")
    assert phase(stream) is ClientPhase.CLOSED
    assert stream.receive_data(b"<more/>") == []


def test_bad_header_namespace() -> None:
    stream = make_stream()
    stream.data_to_send()
    events, out = exchange(
        stream,
        b"<stream:stream xmlns='jabber:server' "
        b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
    )
    assert kinds(events) == [StreamFailed]
    assert isinstance(events[0], StreamFailed) and events[0].condition == "invalid-namespace"
    assert out.endswith(b"</stream:stream>")


def test_header_without_version() -> None:
    stream = make_stream()
    stream.data_to_send()
    events, _ = exchange(stream, f"<stream:stream {STREAMS} from='example.com'>".encode())
    assert isinstance(events[0], StreamFailed) and events[0].condition == "unsupported-version"


@pytest.mark.parametrize(
    "element",
    [
        b"<message><body>too early</body></message>",
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        f"<success {SASL}/>".encode(),
    ],
)
def test_element_out_of_turn(element: bytes) -> None:
    stream = make_stream()
    stream.data_to_send()
    events, out = exchange(stream, HEADER + element)
    assert kinds(events) == [StreamOpened, StreamFailed]
    assert isinstance(events[1], StreamFailed) and events[1].condition == "policy-violation"
    assert out.startswith(b"<stream:error><policy-violation")


def test_unknown_client_element_when_ready() -> None:
    stream = make_stream()
    to_authenticated(stream)
    exchange(stream, HEADER + FEATURES_BIND_OPTIONAL_SESSION)
    exchange(
        stream,
        b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>user@example.com/r</jid></bind></iq>",
    )
    events, _ = exchange(stream, b"<foo/>")
    assert events == [
        StreamFailed(condition="unsupported-stanza-type", text="<foo/> is not a stanza")
    ]


def test_eof_is_connection_lost() -> None:
    stream = make_stream()
    stream.data_to_send()
    exchange(stream, HEADER)
    assert stream.receive_data(b"") == [ConnectionLost()]
    assert phase(stream) is ClientPhase.CLOSED


def test_send_before_bound_is_a_bug() -> None:
    stream = make_stream()
    with pytest.raises(RuntimeError):
        stream.send_element(Element("message", ns.CLIENT))
    with pytest.raises(RuntimeError):
        stream.start()


def test_close_with_condition() -> None:
    stream = make_stream()
    stream.data_to_send()
    stream.close("connection-timeout")
    assert stream.data_to_send() == (
        b"<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"</stream:error></stream:stream>"
    )
    stream.close()
    assert stream.data_to_send() == b""


# -- against the project's own server stream, in memory -----------------------------


def _run_against_server(
    password: str, resource: str | None = None
) -> tuple[ClientStream, ServerStream, list[Event], list[Element]]:
    server = ServerStream(
        ServerStreamConfig(
            domains=frozenset({"example.com"}), tls_available=False, tls_required=False
        )
    )
    client = ClientStream(
        ClientStreamConfig(
            domain="example.com",
            username="user",
            password=password,
            resource=resource,
            starttls=False,
        )
    )
    creds = {h: derive_scram_credentials("pencil", h, iterations=4096) for h in ("sha256", "sha1")}
    mech: ServerMechanism | None = None
    client_events: list[Event] = []
    server_stanzas: list[Element] = []

    def run(step: object) -> None:
        nonlocal mech
        while isinstance(step, NeedCredentials):
            assert mech is not None
            step = mech.provide_credentials(creds[step.hash_names[0]])
        if hasattr(step, "authcid"):
            server.auth_success("user@example.com", step.additional_data)  # type: ignore[attr-defined]
        else:
            server.auth_challenge(step.data)  # type: ignore[attr-defined]

    client.start()
    for _ in range(50):
        c2s = client.data_to_send()
        todo = server.receive_data(c2s) if c2s else []
        while todo:
            ev = todo.pop(0)
            try:
                if isinstance(ev, AuthRequested):
                    ctx = ServerContext(domain="example.com", secret=b"s" * 32)
                    mech = create_server_mechanism(ev.mechanism, ctx)
                    run(mech.start(ev.initial_response))
                elif isinstance(ev, AuthResponse):
                    assert mech is not None
                    run(mech.respond(ev.data))
                elif isinstance(ev, BindRequested):
                    server.bind_success(ev.iq_id, f"user@example.com/{ev.resource or 'gen'}")
                elif isinstance(ev, ServerStanzaReceived):
                    server_stanzas.append(ev.stanza)
            except SASLFailure as exc:
                server.auth_failure(exc.condition, exc.text)
            if isinstance(ev, AuthRequested | AuthResponse | BindRequested):
                # answered: what the client sent after it is read now (take_deferred)
                todo += server.take_deferred()
        s2c = server.data_to_send()
        if not c2s and not s2c:
            break
        if s2c:
            client_events += client.receive_data(s2c)
    return client, server, client_events, server_stanzas


def test_against_server_stream() -> None:
    client, server, events, _ = _run_against_server("pencil", resource="balcony")
    assert Authenticated(mechanism="SCRAM-SHA-256") in events
    assert events[-1] == Bound(jid="user@example.com/balcony")
    assert phase(client) is ClientPhase.READY
    msg = Element("message", ns.CLIENT, {"to": "juliet@example.com"})
    client.send_element(msg)
    [got] = server.receive_data(client.data_to_send())
    assert isinstance(got, ServerStanzaReceived) and got.stanza == msg
    client.close()
    server.receive_data(client.data_to_send())
    assert client.receive_data(server.data_to_send()) == [Closed()]


def test_against_server_stream_wrong_password() -> None:
    client, _, events, _ = _run_against_server("wrong")
    failed = [e for e in events if isinstance(e, AuthFailed)]
    assert [(f.condition, f.local) for f in failed] == [("not-authorized", False)]
    assert client.phase in (ClientPhase.CLOSING, ClientPhase.CLOSED)


# -- Client (asyncio) on loopback, against ServerStream ------------------------------
#
# A few checks of the asyncio layer (STARTTLS, direct TLS with ALPN, channel binding,
# back-pressure, closing) against a minimal server made of the project's ServerStream and
# SCRAM server on 127.0.0.1.  The end-to-end tests against the real server live elsewhere.


@dataclass
class _Behaviour:
    password: str = "pencil"
    starttls: bool = True
    flood: int = 0  # messages to send after binding
    ping_client: bool = False  # send an XEP-0199 ping after binding
    stream_error: str | None = None  # end the stream with this error on a message
    omit_from: bool = False  # answer iqs without 'from' (RFC 6120 §8.1.2.1 rules 2, 3)
    alpn: list[str | None] = field(default_factory=list)
    pongs: list[Element] = field(default_factory=list)
    stanzas: list[Element] = field(default_factory=list)


class _MiniServer(asyncio.Protocol):
    """Answers ServerStream events as the real server does, just enough for the client."""

    def __init__(self, ctx: ssl.SSLContext, cb: bytes, b: _Behaviour, *, direct: bool) -> None:
        self.ctx, self.cb, self.b = ctx, cb, b
        cb_types = ("tls-server-end-point",)
        self.stream = ServerStream(
            ServerStreamConfig(
                domains=frozenset({"localhost"}),
                tls_available=b.starttls,
                tls_required=b.starttls,
                mechanisms=lambda tls: mechanisms_for(tls, cb_types if tls else ()),
                channel_binding_types=lambda tls: cb_types if tls else (),
            ),
            tls_active=direct,
        )
        self.creds = {
            h: derive_scram_credentials(b.password, h, iterations=4096) for h in ("sha256", "sha1")
        }
        self.mech: ServerMechanism | None = None
        self.transport: asyncio.Transport | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.upgrading: list[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.b.alpn.append(ssl_object.selected_alpn_protocol())

    def data_received(self, data: bytes) -> None:
        if self.upgrading is not None:
            # asyncio may hand us the first bytes over TLS before start_tls() returns.
            self.upgrading.append(data)
            return
        stream = self.stream
        todo = stream.receive_data(data)
        while todo:
            ev = todo.pop(0)
            try:
                self.handle(ev)
            except SASLFailure as exc:
                stream.auth_failure(exc.condition, exc.text)
            if isinstance(ev, AuthRequested | AuthResponse | BindRequested):
                todo += stream.take_deferred()  # answered: read what came after it
        self.flush()

    def flush(self) -> None:
        data = self.stream.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        if self.stream.phase is Phase.CLOSED and self.transport is not None:
            self.transport.close()

    def handle(self, ev: object) -> None:
        stream = self.stream
        if isinstance(ev, TLSRequested):
            self.flush()
            self.upgrading = []
            task = asyncio.get_running_loop().create_task(self.upgrade())
            self.tasks.add(task)
        elif isinstance(ev, AuthRequested):
            tls = stream.tls_active
            ctx = ServerContext(
                domain="localhost",
                secret=b"s" * 32,
                tls=tls,
                channel_bindings={"tls-server-end-point": self.cb} if tls else {},
            )
            self.mech = create_server_mechanism(ev.mechanism, ctx)
            self.step(self.mech.start(ev.initial_response))
        elif isinstance(ev, AuthResponse):
            assert self.mech is not None
            self.step(self.mech.respond(ev.data))
        elif isinstance(ev, BindRequested):
            stream.bind_success(ev.iq_id, f"user@localhost/{ev.resource or 'gen'}")
            for i in range(self.b.flood):
                stream.send_raw(f"<message id='m{i}'><body>{i}</body></message>".encode())
            if self.b.ping_client:
                stream.send_raw(
                    b"<iq type='get' id='p1' from='localhost' to='user@localhost/gen'>"
                    b"<ping xmlns='urn:xmpp:ping'/></iq>"
                )
        elif isinstance(ev, ServerStanzaReceived):
            self.stanza(ev.stanza)

    def step(self, step: object) -> None:
        assert self.mech is not None
        while isinstance(step, NeedCredentials):
            step = self.mech.provide_credentials(self.creds[step.hash_names[0]])
        if isinstance(step, Success):
            self.stream.auth_success("user@localhost", step.additional_data)
        elif isinstance(step, Challenge):
            self.stream.auth_challenge(step.data)

    def stanza(self, el: Element) -> None:
        self.b.stanzas.append(el)
        if el.name == "iq" and el.get("type") == "result":
            self.b.pongs.append(el)
            return
        if el.name == "iq":
            if el.get("to") == "silent@localhost":
                return  # never answered
            attrs = {"id": el.get("id") or "", "from": el.get("to") or "localhost"}
            if self.b.omit_from:
                del attrs["from"]
            if el.get("to") == "nowhere@localhost":
                reply = Element("iq", ns.CLIENT, {**attrs, "type": "error"})
                reply.append(StanzaError("item-not-found", "no such user").to_element())
            else:
                reply = Element("iq", ns.CLIENT, {**attrs, "type": "result"})
            self.stream.send_element(reply)
        elif el.name == "message":
            if self.b.stream_error is not None:
                self.stream.close(self.b.stream_error, "going down")
                return
            echo = Element("message", ns.CLIENT, {"from": "echo@localhost"})
            echo.append(Element("body", ns.CLIENT, text=el.findtext("body") or ""))
            self.stream.send_element(echo)

    async def upgrade(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            new = await loop.start_tls(self.transport, self, self.ctx, server_side=True)
        except (OSError, ssl.SSLError):
            self.transport.abort()  # e.g. the client refused our certificate
            return
        assert new is not None
        self.transport = new
        self.stream.tls_established()
        self.flush()
        pending, self.upgrading = self.upgrading or [], None
        for data in pending:
            self.data_received(data)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    from xmppx.server.tls import ensure_certificate

    files = ensure_certificate(tmp_path_factory.mktemp("tls"), "localhost")
    der = ssl.PEM_cert_to_DER_cert(files.cert.read_text())
    cb = tls_server_end_point(der)
    assert cb is not None
    return files.cert, cb


def _run(
    tls_files: tuple[Path, bytes],
    b: _Behaviour,
    body: Callable[[int, ssl.SSLContext], Awaitable[None]],
    *,
    direct: bool = False,
) -> None:
    from xmppx.server.tls import TLSFiles, make_server_context

    cert, cb = tls_files
    server_ctx = make_server_context(TLSFiles(cert=cert, key=cert.with_suffix(".key")), alpn=direct)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _MiniServer(server_ctx, cb, b, direct=direct),
            "127.0.0.1",
            0,
            ssl=server_ctx if direct else None,
        )
        port = server.sockets[0].getsockname()[1]
        try:
            async with asyncio.timeout(20):
                await body(port, client_ctx)
        finally:
            server.close()

    asyncio.run(main())


def login(port: int, ctx: ssl.SSLContext, **kw: Any) -> Awaitable[Client]:
    """``user@localhost`` with the right password, over STARTTLS to the mini server."""
    return Client.connect(
        "user@localhost", "pencil", host="127.0.0.1", port=port, ssl_context=ctx, **kw
    )


def test_client_starttls_scram_plus_iq_and_close(tls_files: tuple[Path, bytes]) -> None:
    b = _Behaviour(ping_client=True)

    async def body(port: int, ctx: ssl.SSLContext) -> None:
        client = await Client.connect(
            "user@localhost", "pencil", host="127.0.0.1", port=port, ssl_context=ctx
        )
        assert client.jid == "user@localhost/gen"
        assert client._stream.mechanism == "SCRAM-SHA-256-PLUS"  # bound to the certificate
        reply = await client.iq(Element("iq", ns.CLIENT, {"type": "get", "to": "localhost"}))
        assert reply.get("type") == "result"
        with pytest.raises(IqError) as info:
            await client.iq(Element("iq", ns.CLIENT, {"type": "get", "to": "nowhere@localhost"}))
        assert info.value.condition == "item-not-found" and info.value.text == "no such user"
        msg = Element("message", ns.CLIENT, {"to": "echo@localhost"})
        msg.append(Element("body", ns.CLIENT, text="hello"))
        client.send(msg)
        echo = await client.recv(timeout=5)
        assert echo.findtext("body") == "hello"
        await client.close()
        assert client.closed and client.error is None
        assert [p.get("id") for p in b.pongs] == ["p1"]  # the server's ping was answered
        with pytest.raises(StreamClosedError):
            client.send(msg)

    _run(tls_files, b, body)


def test_client_direct_tls_alpn(tls_files: tuple[Path, bytes]) -> None:
    b = _Behaviour(starttls=False)

    async def body(port: int, ctx: ssl.SSLContext) -> None:
        async with await Client.connect(
            "user@localhost/desk",
            "pencil",
            host="127.0.0.1",
            port=port,
            tls="direct",
            ssl_context=ctx,
        ) as client:
            assert client.jid == "user@localhost/desk"
        assert client.closed
        assert b.alpn == ["xmpp-client"]

    _run(tls_files, b, body, direct=True)


def test_client_wrong_password(tls_files: tuple[Path, bytes]) -> None:
    async def body(port: int, ctx: ssl.SSLContext) -> None:
        with pytest.raises(AuthenticationError) as info:
            await Client.connect(
                "user@localhost", "nope", host="127.0.0.1", port=port, ssl_context=ctx
            )
        assert info.value.condition == "not-authorized"

    _run(tls_files, _Behaviour(), body)


def test_client_verifies_certificates_by_default(tls_files: tuple[Path, bytes]) -> None:
    async def body(port: int, ctx: ssl.SSLContext) -> None:
        with pytest.raises(ssl.SSLCertVerificationError):
            await Client.connect("user@localhost", "pencil", host="127.0.0.1", port=port)
        client = await Client.connect(
            "user@localhost", "pencil", host="127.0.0.1", port=port, verify=False
        )
        await client.close()

    _run(tls_files, _Behaviour(), body)


def test_client_back_pressure(tls_files: tuple[Path, bytes]) -> None:
    count = 20_000  # about 1 MB: far more than one read
    b = _Behaviour(flood=count)

    async def body(port: int, ctx: ssl.SSLContext) -> None:
        client = await login(port, ctx, queue_size=16)
        await asyncio.sleep(0.3)  # the server has written all it could
        # Reading stopped at the bound (overshooting by at most the stanzas of one read).
        assert client._reading_paused
        assert 16 <= client.queued < count // 4
        got = [(await client.recv(timeout=5)).get("id") for _ in range(count)]
        assert got == [f"m{i}" for i in range(count)]
        assert client.queued == 0 and not client._reading_paused
        await client.close()

    _run(tls_files, b, body)


def ping(to: str) -> Element:
    iq = Element("iq", ns.CLIENT, {"type": "get", "to": to})
    iq.append(Element("ping", ns.PING))
    return iq


def test_client_reads_an_iq_answer_behind_a_full_queue(tls_files: tuple[Path, bytes]) -> None:
    """The queue's bound stops reading, but not the answer an iq() waits for: reading
    goes on past the bound until it comes, and nothing queued is lost or reordered."""
    count = 5_000
    b = _Behaviour(flood=count)

    async def body(port: int, ctx: ssl.SSLContext) -> None:
        client = await login(port, ctx, queue_size=16)
        await asyncio.sleep(0.3)
        assert client._reading_paused
        answer = await client.iq(ping("localhost"), timeout=5)
        assert answer.get("type") == "result"
        got = [(await client.recv(timeout=5)).get("id") for _ in range(count)]
        assert got == [f"m{i}" for i in range(count)]
        await client.close()

    _run(tls_files, b, body)


def test_iq_waits_as_long_as_connect_was_told(tls_files: tuple[Path, bytes]) -> None:
    async def body(port: int, ctx: ssl.SSLContext) -> None:
        client = await login(port, ctx, timeout=0.5)
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await client.iq(ping("silent@localhost"))
        assert asyncio.get_running_loop().time() - started < 3
        await client.close()

    _run(tls_files, _Behaviour(), body)


def test_answers_the_server_sends_without_from(tls_files: tuple[Path, bytes]) -> None:
    """RFC 6120 §8.1.2.1: the server may leave 'from' out of what it says for itself or
    for the account; an answer without it is taken for an iq to the server or to our
    bare JID, not for one to anybody else."""
    b = _Behaviour(omit_from=True)

    async def body(port: int, ctx: ssl.SSLContext) -> None:
        client = await login(port, ctx, timeout=1)
        for to in ("localhost", "user@localhost"):
            assert (await client.iq(ping(to))).get("type") == "result"
        with pytest.raises(TimeoutError):
            await client.iq(ping("juliet@localhost"), timeout=0.5)
        assert (await client.recv(timeout=1)).get("type") == "result"  # an ordinary stanza
        await client.close()

    _run(tls_files, b, body)


def test_client_stream_error_from_server(tls_files: tuple[Path, bytes]) -> None:
    b = _Behaviour(stream_error="system-shutdown", starttls=False)

    async def body(port: int, ctx: ssl.SSLContext) -> None:
        client = await Client.connect(
            "user@localhost",
            "pencil",
            host="127.0.0.1",
            port=port,
            tls="none",
            mechanisms=["SCRAM-SHA-1"],
        )
        assert client._stream.mechanism == "SCRAM-SHA-1"
        client.send(Element("message", ns.CLIENT, {"to": "echo@localhost"}))
        with pytest.raises(StreamClosedError) as info:
            await client.recv(timeout=5)
        assert info.value.condition == "system-shutdown" and info.value.text == "going down"
        with pytest.raises(StreamClosedError):
            async for _ in client:
                pass
        await client.close()

    _run(tls_files, b, body)


def test_client_connect_timeout_and_refused() -> None:
    async def main() -> None:
        # A server that never answers our header.
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(TimeoutError):
                await Client.connect(
                    "user@localhost", "pencil", host="127.0.0.1", port=port, timeout=0.3
                )
        finally:
            server.close()
        with pytest.raises(OSError):
            await Client.connect("user@localhost", "pencil", host="127.0.0.1", port=port)

    asyncio.run(main())
