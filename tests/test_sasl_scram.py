"""SCRAM (RFC 5802, RFC 7677) with channel binding (RFC 9266, RFC 5929): the RFC example
conversations byte for byte, client<->server round trips, and every way to fail.

The conversations read like the RFCs: ``C:`` lines are what the client sends, ``S:`` lines
what the server answers."""

from __future__ import annotations

import base64
import doctest
import hashlib
import hmac
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmppx.auth import (
    CB_TLS_EXPORTER,
    CB_TLS_SERVER_END_POINT,
    HASH_NAMES,
    MAX_SASL_MESSAGE_BYTES,
    Challenge,
    ChannelBinding,
    NeedCredentials,
    SASLClientError,
    SASLFailure,
    SASLprepError,
    SASLStateError,
    ScramClient,
    ScramCredentials,
    ScramServer,
    ServerContext,
    Success,
    create_server_mechanism,
    derive_scram_credentials,
)
from xmppx.auth import _scram as scram_module

SECRET = b"a server secret of 32 bytes long"
DOMAIN = "example.com"
EXPORTER = b"\x01" * 32  # stand-ins for what the TLS layer computes
END_POINT = b"\x02" * 32
BINDINGS = {CB_TLS_EXPORTER: EXPORTER, CB_TLS_SERVER_END_POINT: END_POINT}
FAST = 16  # iterations for round trips: the RFC vectors use 4096, the logic is the same


def context(**kwargs: object) -> ServerContext:
    defaults: dict[str, object] = {"domain": DOMAIN, "secret": SECRET}
    defaults.update(kwargs)
    return ServerContext(**defaults)  # type: ignore[arg-type]


def client(hash_name: str = "sha256", **kwargs: object) -> ScramClient:
    defaults: dict[str, object] = {"username": "user", "password": "pencil", "min_iterations": 1}
    defaults.update(kwargs)
    return ScramClient(hash_name, **defaults)  # type: ignore[arg-type]


# --- the RFC example conversations --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Conversation:
    """One RFC example exchange: the nonces and salt each side chose, and the four
    messages (C1, S1, C2, S2) exactly as the RFC prints them."""

    hash_name: str
    mechanism: str
    client_nonce: str
    server_nonce: str
    salt: str
    c1: bytes
    s1: bytes
    c2: bytes
    s2: bytes


RFC5802_SHA1 = Conversation(  # RFC 5802 §5
    hash_name="sha1",
    mechanism="SCRAM-SHA-1",
    client_nonce="fyko+d2lbbFgONRv9qkxdawL",
    server_nonce="3rfcNHYJY1ZVvWVs7j",
    salt="QSXCR+Q6sek8bf92",
    c1=b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    s1=b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    c2=b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    s2=b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
)
RFC7677_SHA256 = Conversation(  # RFC 7677 §3
    hash_name="sha256",
    mechanism="SCRAM-SHA-256",
    client_nonce="rOprNGfwEbeRWgbNEkqO",
    server_nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    salt="W22ZaJ0SNY7soEsUEjb6gQ==",
    c1=b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    s1=b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    c2=b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    s2=b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
)
RFC_VECTORS = [pytest.param(RFC5802_SHA1, id="rfc5802"), pytest.param(RFC7677_SHA256, id="rfc7677")]


def rfc_credentials(v: Conversation) -> ScramCredentials:
    return derive_scram_credentials(
        "pencil", v.hash_name, salt=base64.b64decode(v.salt), iterations=4096
    )


@pytest.mark.parametrize("v", RFC_VECTORS)
def test_rfc_conversation_server_side(v: Conversation) -> None:
    server = ScramServer(v.hash_name, context(nonce_factory=lambda: v.server_nonce))
    assert server.name == v.mechanism
    # C: n,,n=user,r=<client nonce>
    assert server.start(v.c1) == NeedCredentials(username="user", hash_names=(v.hash_name,))
    # S: r=<client nonce><server nonce>,s=<salt>,i=4096
    assert server.provide_credentials(rfc_credentials(v)) == Challenge(data=v.s1)
    # C: c=biws,r=...,p=<proof>      S: v=<server signature>
    assert server.respond(v.c2) == Success(additional_data=v.s2, authcid="user", authzid=None)


@pytest.mark.parametrize("v", RFC_VECTORS)
def test_rfc_conversation_client_side(v: Conversation) -> None:
    c = ScramClient(v.hash_name, username="user", password="pencil", nonce=v.client_nonce)
    assert c.name == v.mechanism
    assert c.start() == v.c1
    assert c.respond(v.s1) == v.c2
    c.finish(v.s2)  # the server signature verifies


@pytest.mark.parametrize("v", RFC_VECTORS)
def test_rfc_conversation_client_refuses_a_wrong_server_signature(v: Conversation) -> None:
    c = ScramClient(v.hash_name, username="user", password="pencil", nonce=v.client_nonce)
    c.start()
    c.respond(v.s1)
    forged = base64.b64encode(bytes(len(base64.b64decode(v.s2[2:]))))
    with pytest.raises(SASLClientError, match="signature"):
        c.finish(b"v=" + forged)


@pytest.mark.parametrize("v", RFC_VECTORS)
def test_rfc_conversation_with_a_wrong_password_fails(v: Conversation) -> None:
    creds = derive_scram_credentials(
        "pencil2", v.hash_name, salt=base64.b64decode(v.salt), iterations=4096
    )
    server = ScramServer(v.hash_name, context(nonce_factory=lambda: v.server_nonce))
    server.start(v.c1)
    assert server.provide_credentials(creds) == Challenge(data=v.s1)
    with pytest.raises(SASLFailure) as info:
        server.respond(v.c2)
    assert (info.value.condition, info.value.text) == ("not-authorized", "invalid-proof")


def test_rfc5802_credentials_match_rfc5803_example() -> None:
    creds = rfc_credentials(RFC5802_SHA1)
    # RFC 5803 §4 stores exactly these keys for user "user", password "pencil".
    text = creds.to_rfc5803()
    assert text == (
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE="
    )
    assert ScramCredentials.from_rfc5803(text) == creds


# --- round trips ---------------------------------------------------------------------


def run(
    server: ScramServer,
    c: ScramClient,
    creds: ScramCredentials | None,
    first: bytes | None = None,
) -> Success:
    """Drive both machines to the end, as the stream layer would (``first``: the client's
    first message if the test already called ``c.start()``)."""
    step = server.start(c.start() if first is None else first)
    assert isinstance(step, NeedCredentials)
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    step = server.respond(c.respond(step.data))
    assert isinstance(step, Success)
    c.finish(step.additional_data)
    return step


@pytest.mark.parametrize("hash_name", HASH_NAMES)
def test_round_trip_without_channel_binding(hash_name: str) -> None:
    creds = derive_scram_credentials("pencil", hash_name, iterations=FAST)
    done = run(ScramServer(hash_name, context()), client(hash_name), creds)
    assert (done.authcid, done.authzid) == ("user", None)
    assert done.additional_data is not None and done.additional_data.startswith(b"v=")


@pytest.mark.parametrize("hash_name", HASH_NAMES)
@pytest.mark.parametrize("cb_type", [CB_TLS_EXPORTER, CB_TLS_SERVER_END_POINT])
def test_round_trip_plus_for_every_channel_binding_type(hash_name: str, cb_type: str) -> None:
    creds = derive_scram_credentials("pencil", hash_name, iterations=FAST)
    server = ScramServer(hash_name, context(tls=True, channel_bindings=BINDINGS), plus=True)
    c = client(hash_name, channel_binding=ChannelBinding(type=cb_type, data=BINDINGS[cb_type]))
    assert (
        server.name
        == c.name
        == {"sha1": "SCRAM-SHA-1-PLUS", "sha256": "SCRAM-SHA-256-PLUS"}[hash_name]
    )
    first = c.start()
    assert first.startswith(f"p={cb_type},,".encode())
    server.start(first)
    challenge = server.provide_credentials(creds)
    assert isinstance(challenge, Challenge)
    final = c.respond(challenge.data)
    # c= carries the GS2 header and the binding data (RFC 5802 §7 cbind-input).
    c_attr = final.split(b",")[0][2:]
    assert base64.b64decode(c_attr) == f"p={cb_type},,".encode() + BINDINGS[cb_type]
    done = server.respond(final)
    assert isinstance(done, Success)
    c.finish(done.additional_data)


def test_y_flag_is_fine_when_the_server_offers_no_plus() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    c = client(channel_binding_capable=True)
    first = c.start()
    assert first.startswith(b"y,,")
    run(ScramServer("sha256", context()), c, creds, first)


def test_y_flag_on_a_tls_stream_without_bindings_is_fine() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    run(ScramServer("sha256", context(tls=True)), client(channel_binding_capable=True), creds)


def test_non_plus_with_n_flag_works_while_the_server_offers_plus() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    server = ScramServer("sha256", context(tls=True, channel_bindings=BINDINGS))
    run(server, client(), creds)


def test_empty_auth_then_first_message_in_a_response() -> None:
    """RFC 6120 §6.4.2: no initial response -> empty challenge -> client-first."""
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    server = ScramServer("sha256", context())
    c = client()
    assert server.start(None) == Challenge(data=b"")
    assert isinstance(server.respond(c.start()), NeedCredentials)
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    done = server.respond(c.respond(step.data))
    assert isinstance(done, Success)


def test_client_accepts_v_in_a_challenge_then_empty_success() -> None:
    """RFC 3920 servers send v= as a challenge, answered by an empty response."""
    creds = derive_scram_credentials("pencil", "sha1", iterations=FAST)
    server = ScramServer("sha1", context())
    c = client("sha1")
    server.start(c.start())
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    done = server.respond(c.respond(step.data))
    assert isinstance(done, Success)
    assert c.respond(done.additional_data or b"") == b""
    c.finish(None)


@pytest.mark.parametrize(
    "username", ["a,b", "a=b", "=2C", "x=3Dy,z", "ünïcödé", "user\u00a0name", "\u2168"]
)
def test_usernames_are_escaped_and_prepared(username: str) -> None:
    c = client(username=username)
    first = c.start()
    assert b"=2C" in first or "," not in username
    server = ScramServer("sha256", context())
    step = server.start(first)
    assert isinstance(step, NeedCredentials)
    assert step.username == {"user\u00a0name": "user name", "\u2168": "IX"}.get(username, username)
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    challenge = server.provide_credentials(creds)
    assert isinstance(challenge, Challenge)
    assert isinstance(server.respond(c.respond(challenge.data)), Success)


def test_prep_username_canonicalizes_the_name_looked_up() -> None:
    server = ScramServer("sha256", context(prep_username=str.lower))
    step = server.start(client(username="User").start())
    assert step == NeedCredentials(username="user", hash_names=("sha256",))


# --- authzid -------------------------------------------------------------------------


def test_own_authzid_is_accepted() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    done = run(ScramServer("sha256", context()), client(authzid="user@example.com"), creds)
    assert done.authzid == "user@example.com"


def test_authzid_of_another_user_is_invalid_authzid() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    server = ScramServer("sha256", context())
    c = client(authzid="admin@example.com")
    first = c.start()
    assert first.startswith(b"n,a=admin@example.com,")
    server.start(first)
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    with pytest.raises(SASLFailure) as info:
        server.respond(c.respond(step.data))
    assert info.value.condition == "invalid-authzid"


@pytest.mark.parametrize(
    "authzid", ["user@other.example", "user@example.com/resource", "example.com", "x,y@example.com"]
)
def test_other_authzids_are_refused(authzid: str) -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    server = ScramServer("sha256", context())
    c = client(authzid=authzid)
    server.start(c.start())
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    with pytest.raises(SASLFailure) as info:
        server.respond(c.respond(step.data))
    assert info.value.condition == "invalid-authzid"


def test_authzid_comparison_uses_prep_jid() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    server = ScramServer("sha256", context(prep_jid=str.lower))
    done = run(server, client(authzid="USER@Example.COM"), creds)
    assert done.authzid == "user@example.com"


def test_authzid_wrong_password_reports_not_authorized_first() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    failure = fail_final(client(password="wrong", authzid="admin@example.com"), creds)
    assert failure.condition == "not-authorized"


# --- failures --------------------------------------------------------------------------


def hash_of(c: ScramClient) -> str:
    return {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[c.name.removesuffix("-PLUS")]


def fail_final(c: ScramClient, creds: ScramCredentials | None, **ctx: object) -> SASLFailure:
    """Run ``c`` against a fresh server and return the failure of its final message."""
    server = ScramServer(hash_of(c), context(**ctx))
    server.start(c.start())
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    final = c.respond(step.data)
    with pytest.raises(SASLFailure) as info:
        server.respond(final)
    return info.value


def test_wrong_password_is_not_authorized() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    failure = fail_final(client(password="pen"), creds)
    assert (failure.condition, failure.text) == ("not-authorized", "invalid-proof")


def test_unknown_user_looks_like_a_wrong_password() -> None:
    """RFC 5802 §9: the challenge of an unknown user has the shape of a real one, the same
    salt every time (as an account would), and the same failure."""
    ctx = context(nonce_factory=lambda: "SERVERNONCE", scram_iterations=FAST)
    real = derive_scram_credentials("pencil", "sha256", iterations=FAST)

    def challenge(username: str, creds: ScramCredentials | None) -> bytes:
        server = ScramServer("sha256", ctx)
        server.start(client(username=username, nonce="CLIENT").start())
        step = server.provide_credentials(creds)
        assert isinstance(step, Challenge)
        return step.data

    def fields(data: bytes) -> dict[str, str]:
        return dict(attr.split("=", 1) for attr in data.decode().split(","))

    known, ghost = fields(challenge("user", real)), fields(challenge("ghost", None))
    assert known.keys() == ghost.keys() == {"r", "s", "i"}
    assert known["i"] == ghost["i"] == str(FAST)
    assert len(base64.b64decode(known["s"])) == len(base64.b64decode(ghost["s"])) == 16
    assert ghost["s"] != known["s"]
    assert fields(challenge("ghost", None)) == ghost  # stable, like a stored salt
    assert fields(challenge("ghost2", None))["s"] != ghost["s"]
    other_secret = ScramServer("sha256", context(secret=b"another secret, 32 bytes long!!!"))
    other_secret.start(client(username="ghost").start())
    step = other_secret.provide_credentials(None)
    assert isinstance(step, Challenge)
    assert fields(step.data)["s"] != ghost["s"]

    wrong = fail_final(client(password="wrong"), real)
    missing = fail_final(client(username="ghost"), None)
    assert (missing.condition, missing.text) == (wrong.condition, wrong.text)


def test_unknown_user_fails_even_if_a_password_matched_the_fake_keys() -> None:
    """A fake account has no password; the server refuses it explicitly, not only because
    no password can match (white-box: swap in keys the client's password does match)."""
    server = ScramServer("sha256", context())
    c = client(username="ghost")
    server.start(c.start())
    step = server.provide_credentials(None)
    assert isinstance(step, Challenge)
    fake = server._credentials
    assert fake is not None
    server._credentials = derive_scram_credentials(
        "pencil", "sha256", salt=fake.salt, iterations=fake.iterations
    )
    with pytest.raises(SASLFailure) as info:
        server.respond(c.respond(step.data))
    assert (info.value.condition, info.value.text) == ("not-authorized", "invalid-proof")


def exchange_until_final(
    c: ScramClient, ctx: ServerContext | None = None
) -> tuple[ScramServer, bytes]:
    """A server waiting for the final message, and the client's honest final message."""
    creds = derive_scram_credentials("pencil", hash_of(c), iterations=FAST)
    server = ScramServer(hash_of(c), ctx or context(), plus=c.name.endswith("-PLUS"))
    server.start(c.start())
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    return server, c.respond(step.data)


def test_exchange_helper_picks_the_right_hash() -> None:
    for hash_name in HASH_NAMES:
        server, final = exchange_until_final(client(hash_name))
        assert server.name == client(hash_name).name
        assert isinstance(server.respond(final), Success)


def replace_attr(message: bytes, name: bytes, value: bytes) -> bytes:
    return b",".join(
        name + b"=" + value if a.startswith(name + b"=") else a for a in message.split(b",")
    )


def test_bad_nonce_is_not_authorized() -> None:
    server, final = exchange_until_final(client())
    nonce = final.split(b",")[1][2:]
    # change its last character (to one it is not: a random nonce ends in 'X' one time
    # in 64, and then 'X' changed nothing)
    other = b"Y" if nonce.endswith(b"X") else b"X"
    with pytest.raises(SASLFailure) as info:
        server.respond(replace_attr(final, b"r", nonce[:-1] + other))
    assert (info.value.condition, info.value.text) == ("not-authorized", "nonce mismatch")


@pytest.mark.parametrize("nonce", [b"", b"with space", "ünï".encode()])
def test_unprintable_nonce_in_final_is_malformed(nonce: bytes) -> None:
    server, final = exchange_until_final(client())
    with pytest.raises(SASLFailure) as info:
        server.respond(replace_attr(final, b"r", nonce))
    assert info.value.condition == "malformed-request"


def test_wrong_channel_binding_data_is_not_authorized() -> None:
    """A man in the middle terminates TLS, so the client's binding data differs."""
    ctx = context(tls=True, channel_bindings=BINDINGS)
    c = client(channel_binding=ChannelBinding(type=CB_TLS_EXPORTER, data=b"\x09" * 32))
    server, final = exchange_until_final(c, ctx)
    with pytest.raises(SASLFailure) as info:
        server.respond(final)
    assert (info.value.condition, info.value.text) == (
        "not-authorized",
        "channel-bindings-dont-match",
    )


def test_c_attribute_must_repeat_the_gs2_header() -> None:
    server, final = exchange_until_final(client(authzid="user@example.com"))
    with pytest.raises(SASLFailure) as info:
        server.respond(replace_attr(final, b"c", base64.b64encode(b"n,,")))
    assert info.value.condition == "not-authorized"


def test_y_flag_while_plus_is_offered_is_a_downgrade() -> None:
    """RFC 5802 §6: the client could bind but saw no -PLUS: someone removed it."""
    server = ScramServer("sha256", context(tls=True, channel_bindings=BINDINGS))
    with pytest.raises(SASLFailure) as info:
        server.start(client(channel_binding_capable=True).start())
    assert (info.value.condition, info.value.text) == (
        "not-authorized",
        "server-does-support-channel-binding",
    )


@pytest.mark.parametrize(
    ("plus", "first", "text"),
    [
        (True, b"p=tls-unique,,n=user,r=abc", "unsupported-channel-binding-type"),
        (True, b"n,,n=user,r=abc", "requires channel binding"),
        (True, b"y,,n=user,r=abc", "requires channel binding"),
        (False, b"p=tls-exporter,,n=user,r=abc", "-PLUS"),
        (True, b"p=,,n=user,r=abc", "flag"),
        (True, b"p=tls_exporter,,n=user,r=abc", "flag"),
    ],
)
def test_channel_binding_flag_misuse_is_malformed(plus: bool, first: bytes, text: str) -> None:
    server = ScramServer("sha256", context(tls=True, channel_bindings=BINDINGS), plus=plus)
    with pytest.raises(SASLFailure) as info:
        server.start(first)
    assert info.value.condition == "malformed-request"
    assert text in info.value.text


def test_plus_mechanism_needs_binding_data() -> None:
    with pytest.raises(ValueError, match="channel-binding"):
        ScramServer("sha256", context(), plus=True)


@pytest.mark.parametrize(
    "first",
    [
        b"",
        b"n",
        b"n,",
        b"n,,",
        b"n,,n=user",
        b"n,,r=abc,n=user",  # fixed order
        b"n,,n=,r=abc",  # empty saslname
        b"n,,n=us=er,r=abc",  # '=' not starting =2C/=3D
        b"n,,n=us=2cer,r=abc",  # escapes are upper case
        b"n,,n=user,r=",  # empty nonce
        b"n,,n=user,r=a b",  # nonce not printable
        b"n,,n=user,r=abc,xyz",  # extension is not attr=value
        b"x,,n=user,r=abc",  # unknown flag
        b"F,n,,n=user,r=abc",  # GS2 non-standard flag: not in SCRAM
        b"n,b=user,n=user,r=abc",  # authzid must be a=
        b"n,a=,n=user,r=abc",  # empty authzid
        b"n,a=x=y,n=user,r=abc",  # bad escape in authzid
        b"n,,n=\xff,r=abc",  # not UTF-8
        b"n,,n=us\x00er,r=abc",  # NUL
        b"n,,n=\x07,r=abc",  # fails SASLprep
        b"n,,n=\xc2\xad,r=abc",  # empty after SASLprep
        b"n,,n=" + b"u" * (MAX_SASL_MESSAGE_BYTES) + b",r=abc",  # too long
    ],
)
def test_malformed_client_first_messages(first: bytes) -> None:
    with pytest.raises(SASLFailure) as info:
        ScramServer("sha256", context()).start(first)
    assert info.value.condition == "malformed-request"


def test_overlong_username_is_refused() -> None:
    with pytest.raises(SASLFailure) as info:
        ScramServer("sha256", context()).start(b"n,,n=" + b"u" * 1024 + b",r=abc")
    assert info.value.condition == "not-authorized"


def test_username_rejected_by_prep_username_is_not_authorized() -> None:
    def nodeprep(name: str) -> str:
        if "@" in name:
            raise ValueError("'@' is prohibited in a localpart")
        return name

    with pytest.raises(SASLFailure) as info:
        ScramServer("sha256", context(prep_username=nodeprep)).start(b"n,,n=user@example.com,r=abc")
    assert info.value.condition == "not-authorized"


@pytest.mark.parametrize(
    "first",
    [
        b"n,,m=ext,n=user,r=abc",  # reserved-mext: MUST fail (RFC 5802 §5.1)
        b"n,,n=user,r=abc,m=ext",  # m in the extension position fails too
    ],
)
def test_mandatory_extension_m_fails(first: bytes) -> None:
    with pytest.raises(SASLFailure) as info:
        ScramServer("sha256", context()).start(first)
    assert (info.value.condition, info.value.text) == (
        "malformed-request",
        "extensions-not-supported",
    )


def reference_final(
    hash_name: str,
    client_first_bare: str,
    server_first: str,
    without_proof: str,
    password: str = "pencil",
) -> bytes:
    """An independent SCRAM proof computation straight from RFC 5802 §3."""
    fields = dict(a.split("=", 1) for a in server_first.split(",")[:3])
    salted = hashlib.pbkdf2_hmac(
        hash_name, password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored_key = hashlib.new(hash_name, client_key).digest()
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, hash_name).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def test_unknown_extensions_are_ignored() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    server = ScramServer("sha256", context(nonce_factory=lambda: "SN"))
    bare = "n=user,r=CN,x=client-ext"
    assert isinstance(server.start(f"n,,{bare}".encode()), NeedCredentials)
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    final = reference_final("sha256", bare, step.data.decode(), "c=biws,r=CNSN,y=final-ext")
    assert isinstance(server.respond(final), Success)


def test_mandatory_extension_in_final_fails() -> None:
    creds = derive_scram_credentials("pencil", "sha256", iterations=FAST)
    server = ScramServer("sha256", context(nonce_factory=lambda: "SN"))
    server.start(b"n,,n=user,r=CN")
    step = server.provide_credentials(creds)
    assert isinstance(step, Challenge)
    final = reference_final("sha256", "n=user,r=CN", step.data.decode(), "c=biws,r=CNSN,m=x")
    with pytest.raises(SASLFailure) as info:
        server.respond(final)
    assert info.value.text == "extensions-not-supported"


@pytest.mark.parametrize(
    ("attr", "value"),
    [(b"p", b"!!!!"), (b"p", b"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ"), (b"c", b"b i ws")],
)
def test_bad_base64_is_incorrect_encoding(attr: bytes, value: bytes) -> None:
    server, final = exchange_until_final(client())
    with pytest.raises(SASLFailure) as info:
        server.respond(replace_attr(final, attr, value))
    assert info.value.condition == "incorrect-encoding"


def test_proof_of_the_wrong_length_is_malformed() -> None:
    server, final = exchange_until_final(client())
    with pytest.raises(SASLFailure) as info:
        server.respond(replace_attr(final, b"p", base64.b64encode(b"x" * 20)))
    assert info.value.condition == "malformed-request"


def test_every_truncation_of_the_final_message_fails() -> None:
    _, final = exchange_until_final(client(nonce="CN"), context(nonce_factory=lambda: "SN"))
    for end in range(len(final)):
        server, _ = exchange_until_final(client(nonce="CN"), context(nonce_factory=lambda: "SN"))
        with pytest.raises(SASLFailure) as info:
            server.respond(final[:end])
        assert info.value.condition in {
            "malformed-request",
            "incorrect-encoding",
            "not-authorized",
        }, final[:end]


def test_every_truncation_of_the_first_message_fails_or_asks_for_credentials() -> None:
    first = client(authzid="user@example.com", nonce="CNONCE").start()
    for end in range(len(first)):
        try:
            step = ScramServer("sha256", context()).start(first[:end])
        except SASLFailure as exc:
            assert exc.condition == "malformed-request"
        else:  # only a shorter nonce still parses
            assert first[:end].startswith(b"n,a=user@example.com,n=user,r=C")
            assert isinstance(step, NeedCredentials)


@pytest.mark.parametrize(
    "final",
    [b"", b"c=biws", b"c=biws,r=x", b"r=x,c=biws,p=AAAA", b"c=biws,p=AAAA", b"c=biws,r=x,p"],
)
def test_malformed_final_messages(final: bytes) -> None:
    server, _ = exchange_until_final(client())
    with pytest.raises(SASLFailure) as info:
        server.respond(final)
    assert info.value.condition == "malformed-request"


# --- the client refuses a misbehaving server ------------------------------------------


@pytest.mark.parametrize(
    ("server_first", "match"),
    [
        (b"r=CNsn,s=QSXCR+Q6sek8bf92,i=4096", None),  # the well-formed baseline
        (b"m=x,r=CNsn,s=QSXCR+Q6sek8bf92,i=4096", "extension"),
        (b"r=CNsn,s=QSXCR+Q6sek8bf92,i=4096,m=x", "attribute"),
        (b"r=XXsn,s=QSXCR+Q6sek8bf92,i=4096", "nonce"),
        (b"r=CN,s=QSXCR+Q6sek8bf92,i=4096", "nonce"),  # the server added nothing
        (b"r=CNsn,s=QSXCR+Q6sek8bf9,i=4096", "base64"),
        (b"r=CNsn,s=,i=4096", "salt"),
        (b"r=CNsn,s=QSXCR+Q6sek8bf92,i=0", "positive"),
        (b"r=CNsn,s=QSXCR+Q6sek8bf92,i=04096", "positive"),
        (b"r=CNsn,s=QSXCR+Q6sek8bf92,i=4095", "iteration count"),
        (b"r=CNsn,s=QSXCR+Q6sek8bf92,i=99999999", "iteration count"),
        (b"r=CNsn,i=4096,s=QSXCR+Q6sek8bf92", "must be"),
        (b"r=CNsn,s=QSXCR+Q6sek8bf92", "must be"),
        (b"\xff", "UTF-8"),
    ],
)
def test_client_checks_server_first(server_first: bytes, match: str | None) -> None:
    c = ScramClient("sha1", username="user", password="pencil", nonce="CN")
    c.start()
    if match is None:
        assert c.respond(server_first).startswith(b"c=biws,r=CNsn,p=")
        return
    with pytest.raises(SASLClientError, match=match):
        c.respond(server_first)


@pytest.mark.parametrize(
    ("server_final", "match"),
    [
        (None, "prove"),
        (b"e=invalid-proof", "server error: invalid-proof"),
        (b"x=1", "v="),
        (b"v=***", "base64"),
    ],
)
def test_client_checks_server_final(server_final: bytes | None, match: str) -> None:
    c = ScramClient("sha1", username="user", password="pencil", nonce="CN")
    c.start()
    c.respond(b"r=CNsn,s=QSXCR+Q6sek8bf92,i=4096")
    with pytest.raises(SASLClientError, match=match):
        c.finish(server_final)
    with pytest.raises(SASLStateError):
        c.finish(server_final)


def test_client_refuses_data_in_success_after_v_challenge() -> None:
    server, final = exchange_until_final(c := client())
    done = server.respond(final)
    assert isinstance(done, Success)
    c.respond(done.additional_data or b"")
    with pytest.raises(SASLClientError):
        c.finish(b"more")


def test_client_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ScramClient("md5", username="user", password="pencil")
    with pytest.raises(ValueError):
        ScramClient("sha1", username="", password="pencil")
    with pytest.raises(SASLprepError):
        ScramClient("sha1", username="user", password="pen\x07cil")
    with pytest.raises(ValueError):
        ScramClient("sha1", username="user", password="pencil", nonce="a,b")
    with pytest.raises(ValueError):
        ChannelBinding(type="tls exporter", data=b"")


# --- state machine rules ------------------------------------------------------------------


def test_calls_out_of_order_are_state_errors() -> None:
    server = ScramServer("sha256", context())
    with pytest.raises(SASLStateError):
        server.respond(b"c=biws")
    with pytest.raises(SASLStateError):
        server.provide_credentials(None)
    server.start(client().start())
    with pytest.raises(SASLStateError):
        server.respond(b"c=biws")
    with pytest.raises(SASLStateError):
        server.start(None)


def test_nothing_is_accepted_after_failure_or_success() -> None:
    server = ScramServer("sha256", context())
    with pytest.raises(SASLFailure):
        server.start(b"garbage")
    with pytest.raises(SASLStateError):
        server.respond(b"n,,n=user,r=abc")

    server, final = exchange_until_final(client())
    assert isinstance(server.respond(final), Success)
    with pytest.raises(SASLStateError):
        server.respond(final)


def test_credentials_for_the_wrong_hash_are_a_caller_bug() -> None:
    server = ScramServer("sha256", context())
    server.start(client().start())
    with pytest.raises(ValueError):
        server.provide_credentials(derive_scram_credentials("pencil", "sha1", iterations=FAST))


def test_nonce_factory_output_is_checked() -> None:
    server = ScramServer("sha256", context(nonce_factory=lambda: "a,b"))
    server.start(client().start())
    with pytest.raises(ValueError):
        server.provide_credentials(None)


def test_create_server_mechanism_builds_scram() -> None:
    ctx = context(tls=True, channel_bindings=BINDINGS)
    mech = create_server_mechanism("SCRAM-SHA-1-PLUS", ctx)
    assert isinstance(mech, ScramServer) and mech.name == "SCRAM-SHA-1-PLUS"


# --- properties ---------------------------------------------------------------------------

passwords = st.text(min_size=1, max_size=40).filter(lambda s: _prepares(s))


def _prepares(s: str) -> bool:
    from xmppx.auth import saslprep

    try:
        return bool(saslprep(s))
    except SASLprepError:
        return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    password=passwords,
    username=st.text(
        alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"]),
        min_size=1,
        max_size=20,
    ).filter(_prepares),
    hash_name=st.sampled_from(HASH_NAMES),
    plus=st.booleans(),
)
def test_any_password_round_trips(password: str, username: str, hash_name: str, plus: bool) -> None:
    creds = derive_scram_credentials(password, hash_name, iterations=2)
    ctx = context(tls=True, channel_bindings=BINDINGS)
    binding = ChannelBinding(type=CB_TLS_EXPORTER, data=EXPORTER) if plus else None
    c = client(hash_name, username=username, password=password, channel_binding=binding)
    done = run(ScramServer(hash_name, ctx, plus=plus), c, creds)
    from xmppx.auth import saslprep

    assert done.authcid == saslprep(username, allow_unassigned=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(password=passwords, other=passwords)
def test_any_other_password_fails(password: str, other: str) -> None:
    from xmppx.auth import saslprep

    if saslprep(password) == saslprep(other):
        return
    creds = derive_scram_credentials(password, "sha256", iterations=2)
    assert fail_final(client(password=other), creds).condition == "not-authorized"


@settings(max_examples=200, deadline=None)
@given(first=st.binary(max_size=200), final=st.binary(max_size=200))
def test_arbitrary_input_only_ever_raises_sasl_failure(first: bytes, final: bytes) -> None:
    server = ScramServer("sha256", context(tls=True, channel_bindings=BINDINGS), plus=True)
    try:
        server.start(first or b"p=tls-exporter,,n=user,r=abc")
        server.provide_credentials(None)
        server.respond(final)
    except SASLFailure:
        return
    raise AssertionError("a fake account must never succeed")


def test_module_doctests() -> None:
    assert doctest.testmod(scram_module).failed == 0


# --- interoperability -------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
@pytest.mark.parametrize("binding_proposed", [True, False], ids=["n-flag", "y-flag"])
def test_interop_with_slixmpp_scram_client(mechanism: str, binding_proposed: bool) -> None:
    """slixmpp's independent SCRAM client logs in to our server and accepts its v=."""
    mechanisms = pytest.importorskip("slixmpp.util.sasl.mechanisms")
    creds = {"username": b"user", "password": b"pencil", "authzid": b"", "channel_binding": b""}
    security = {
        "encrypted": True,
        "unencrypted_scram": True,
        "binding_proposed": binding_proposed,
        "tls_version": "TLSv1.3",
    }
    theirs = mechanisms.SCRAM(mechanism, creds, security)
    hash_name = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mechanism]
    server = create_server_mechanism(mechanism, context())
    first = theirs.process(b"")
    assert first.startswith(b"n,," if binding_proposed else b"y,,")
    assert isinstance(server.start(first), NeedCredentials)
    step = server.provide_credentials(derive_scram_credentials("pencil", hash_name))
    assert isinstance(step, Challenge)
    done = server.respond(theirs.process(step.data))
    assert isinstance(done, Success) and done.authcid == "user"
    assert theirs.process(done.additional_data) == b""  # it verified our signature


def test_message_size_limit_is_configurable() -> None:
    first = client().start()
    with pytest.raises(SASLFailure) as info:
        ScramServer("sha256", context(max_message_bytes=len(first) - 1)).start(first)
    assert (info.value.condition, info.value.text) == ("malformed-request", "message too long")
    assert isinstance(
        ScramServer("sha256", context(max_message_bytes=len(first))).start(first), NeedCredentials
    )
