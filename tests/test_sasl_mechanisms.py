"""Offering and picking mechanisms, the payload codec, the server context, stored
credentials and the ``tls-server-end-point`` channel binding (RFC 5929 §4.1)."""

from __future__ import annotations

import contextlib
import datetime
import doctest
import hashlib
from typing import Any

import pytest

import xmppx.auth
from xmppx.auth import (
    CB_TLS_EXPORTER,
    CB_TLS_SERVER_END_POINT,
    DEFAULT_SALT_BYTES,
    DEFAULT_SCRAM_ITERATIONS,
    SASL_FAILURE_CONDITIONS,
    PlainClient,
    SASLClientError,
    SASLFailure,
    ScramClient,
    ScramCredentials,
    ScramServer,
    ServerContext,
    create_client_mechanism,
    create_server_mechanism,
    decode_payload,
    derive_scram_credentials,
    encode_payload,
    mechanisms_for,
    tls_server_end_point,
)
from xmppx.auth import _mechanisms as mechanisms_module
from xmppx.auth._credentials import fake_scram_credentials

SECRET = b"a server secret of 32 bytes long"
BINDINGS = {CB_TLS_EXPORTER: b"\x01" * 32, CB_TLS_SERVER_END_POINT: b"\x02" * 32}
ALL = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]


# --- mechanisms_for ---------------------------------------------------------------------------


def test_mechanisms_for_lists_strongest_first() -> None:
    assert mechanisms_for(True, [CB_TLS_EXPORTER]) == tuple(ALL)
    assert mechanisms_for(True) == ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
    assert mechanisms_for(False) == ("SCRAM-SHA-256", "SCRAM-SHA-1")
    assert mechanisms_for(True, BINDINGS, hashes=["sha256"]) == (
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
        "PLAIN",
    )


def test_mechanisms_for_refuses_bindings_without_tls() -> None:
    with pytest.raises(ValueError):
        mechanisms_for(False, [CB_TLS_EXPORTER])


# --- create_server_mechanism -----------------------------------------------------------------


def context(**kwargs: Any) -> ServerContext:
    return ServerContext(domain="example.com", secret=SECRET, **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_every_offered_mechanism_can_be_created(name: str) -> None:
    mech = create_server_mechanism(name, context(tls=True, channel_bindings=BINDINGS))
    assert mech.name == name


@pytest.mark.parametrize(
    ("name", "ctx", "condition"),
    [
        ("PLAIN", {}, "encryption-required"),
        ("SCRAM-SHA-256-PLUS", {"tls": True}, "invalid-mechanism"),
        ("SCRAM-SHA-1", {"scram_hashes": ("sha256",)}, "invalid-mechanism"),
        ("DIGEST-MD5", {"tls": True}, "invalid-mechanism"),
        ("scram-sha-256", {}, "invalid-mechanism"),  # names are case-sensitive
        ("", {}, "invalid-mechanism"),
    ],
)
def test_refused_mechanisms(name: str, ctx: dict[str, Any], condition: str) -> None:
    with pytest.raises(SASLFailure) as info:
        create_server_mechanism(name, context(**ctx))
    assert info.value.condition == condition


# --- create_client_mechanism ------------------------------------------------------------------


def pick(offered: list[str], **kwargs: Any) -> ScramClient | PlainClient:
    mech = create_client_mechanism(offered, username="user", password="pencil", **kwargs)
    assert isinstance(mech, ScramClient | PlainClient)
    return mech


def test_client_picks_plus_with_tls_exporter_first() -> None:
    mech = pick(ALL, channel_bindings=BINDINGS)
    assert mech.name == "SCRAM-SHA-256-PLUS"
    assert mech.start().startswith(b"p=tls-exporter,,")


def test_client_uses_the_type_the_server_announced() -> None:
    mech = pick(ALL, channel_bindings=BINDINGS, server_cb_types=[CB_TLS_SERVER_END_POINT])
    assert mech.start().startswith(b"p=tls-server-end-point,,")


def test_client_says_y_when_the_server_offers_no_plus() -> None:
    mech = pick(["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"], channel_bindings=BINDINGS)
    assert mech.name == "SCRAM-SHA-256"
    assert mech.start().startswith(b"y,,")


def test_client_says_n_when_no_binding_type_is_shared() -> None:
    mech = pick(ALL, channel_bindings=BINDINGS, server_cb_types=["tls-unique"])
    assert mech.name == "SCRAM-SHA-256"
    assert mech.start().startswith(b"n,,")


def test_client_without_tls_says_n() -> None:
    assert pick(["SCRAM-SHA-1"]).start().startswith(b"n,,")


def test_client_uses_plain_only_when_allowed() -> None:
    with pytest.raises(SASLClientError):
        pick(["PLAIN", "X-OAUTH2"])
    assert pick(["PLAIN"], allow_plain=True).name == "PLAIN"


def test_picked_client_logs_in_to_a_server_offering_everything() -> None:
    """The full negotiation: offer, pick, run, verify."""
    ctx = context(tls=True, channel_bindings=BINDINGS)
    client = pick(list(mechanisms_for(ctx.tls, ctx.channel_bindings)), channel_bindings=BINDINGS)
    server = create_server_mechanism(client.name, ctx)
    assert isinstance(server, ScramServer)
    step = server.start(client.start())
    step = server.provide_credentials(derive_scram_credentials("pencil", "sha256", iterations=4096))
    step = server.respond(client.respond(step.data))  # type: ignore[union-attr]
    client.finish(step.additional_data)  # type: ignore[union-attr]


# --- payload codec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("", None),
        ("=", b""),
        ("biws", b"n,,"),
        ("AGp1bGlldAByMG0zMG15cjBtMzA=", b"\x00juliet\x00r0m30myr0m30"),
    ],
)
def test_payload_round_trip(text: str, data: bytes | None) -> None:
    """RFC 6120 §6.4.2: no text is no data, "=" is empty data."""
    assert decode_payload(text) == data
    assert encode_payload(data) == text


@pytest.mark.parametrize("text", ["biw", "bi ws", "biws\n", "b!ws", "biws=", "==", "ünï"])
def test_bad_payload_is_incorrect_encoding(text: str) -> None:
    with pytest.raises(SASLFailure) as info:
        decode_payload(text)
    assert info.value.condition == "incorrect-encoding"


# --- errors and context ---------------------------------------------------------------------------


def test_sasl_failure_carries_an_rfc6120_condition() -> None:
    assert len(SASL_FAILURE_CONDITIONS) == 11
    failure = SASLFailure("not-authorized", "invalid-proof")
    assert (failure.condition, failure.text, str(failure)) == (
        "not-authorized",
        "invalid-proof",
        "not-authorized: invalid-proof",
    )
    with pytest.raises(ValueError):
        SASLFailure("bad-password")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"domain": "", "secret": SECRET},
        {"domain": "example.com", "secret": b"short"},
        {"domain": "example.com", "secret": SECRET, "channel_bindings": BINDINGS},  # no TLS
        {"domain": "example.com", "secret": SECRET, "scram_hashes": ()},
        {"domain": "example.com", "secret": SECRET, "scram_hashes": ("md5",)},
        {"domain": "example.com", "secret": SECRET, "scram_iterations": 0},
        {"domain": "example.com", "secret": SECRET, "max_message_bytes": 0},
    ],
)
def test_server_context_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServerContext(**kwargs)


def test_server_context_repr_hides_the_secret() -> None:
    assert SECRET.decode() not in repr(context())


# --- credentials ----------------------------------------------------------------------------------


def test_derive_defaults() -> None:
    creds = derive_scram_credentials("pencil", "sha256")
    assert creds.iterations == DEFAULT_SCRAM_ITERATIONS >= 4096  # RFC 7677 §4
    assert len(creds.salt) == DEFAULT_SALT_BYTES
    assert len(creds.stored_key) == len(creds.server_key) == 32
    assert derive_scram_credentials("pencil", "sha256").salt != creds.salt  # random salt
    assert creds.mechanism == "SCRAM-SHA-256"


def test_credentials_repr_hides_keys() -> None:
    creds = derive_scram_credentials("pencil", "sha1", iterations=16)
    assert "stored_key" not in repr(creds) and "server_key" not in repr(creds)


def test_derive_applies_saslprep_as_a_stored_string() -> None:
    a = derive_scram_credentials("I\u00adX", "sha1", salt=b"salt", iterations=16)
    b = derive_scram_credentials("\u2168", "sha1", salt=b"salt", iterations=16)
    assert a == b
    with pytest.raises(ValueError):
        derive_scram_credentials("a\u0221", "sha1", iterations=16)  # unassigned in 3.2


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", "sha256"), {}),
        (("\u00ad", "sha256"), {}),  # empty after SASLprep
        (("pencil", "md5"), {}),
        (("pencil", "sha256"), {"salt": b""}),
        (("pencil", "sha256"), {"iterations": 0}),
    ],
)
def test_derive_refuses(args: tuple[str, str], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        derive_scram_credentials(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hash_name": "md5"},
        {"salt": b""},
        {"iterations": 0},
        {"stored_key": b"short"},
        {"server_key": b"x" * 32},
    ],
)
def test_credentials_validation(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "hash_name": "sha1",
        "salt": b"salt",
        "iterations": 4096,
        "stored_key": b"k" * 20,
        "server_key": b"k" * 20,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError):
        ScramCredentials(**fields)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
        "SCRAM-MD5$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
        "SCRAM-SHA-1$-1:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf9$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
        "SCRAM-SHA-256$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
    ],
)
def test_from_rfc5803_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        ScramCredentials.from_rfc5803(text)


def test_fake_credentials_are_deterministic_per_secret_hash_and_user() -> None:
    a = fake_scram_credentials(SECRET, "sha256", "ghost")
    assert a == fake_scram_credentials(SECRET, "sha256", "ghost")
    assert a.salt != fake_scram_credentials(SECRET, "sha256", "ghost2").salt
    assert a.salt != fake_scram_credentials(SECRET, "sha1", "ghost").salt
    assert (
        a.salt
        != fake_scram_credentials(b"another secret of 32 bytes long!", "sha256", "ghost").salt
    )
    assert len(a.salt) == DEFAULT_SALT_BYTES and a.iterations == DEFAULT_SCRAM_ITERATIONS


# --- tls-server-end-point --------------------------------------------------------------


def certificate(key: Any, algorithm: Any, **sign_kwargs: Any) -> bytes:
    x509 = pytest.importorskip("cryptography.x509")
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "example.com")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm, **sign_kwargs)
    )
    der: bytes = cert.public_bytes(serialization.Encoding.DER)
    return der


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("hash_attr", "expected"),
    [("SHA224", "sha224"), ("SHA256", "sha256"), ("SHA384", "sha384"), ("SHA512", "sha512")],
)
def test_end_point_hash_of_rsa_certificates(rsa_key: Any, hash_attr: str, expected: str) -> None:
    """RFC 5929 §4.1: the signature's hash, but SHA-256 instead of MD5 or SHA-1."""
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    der = certificate(rsa_key, getattr(hashes, hash_attr)())
    assert tls_server_end_point(der) == hashlib.new(expected, der).digest()


SHA256_WITH_RSA = bytes.fromhex("2a864886f70d01010b")  # 1.2.840.113549.1.1.11


@pytest.mark.parametrize(
    ("oid", "expected"),
    [
        ("2a864886f70d010104", "sha256"),  # md5WithRSAEncryption: MD5 -> SHA-256
        ("2a864886f70d010105", "sha256"),  # sha1WithRSAEncryption: SHA-1 -> SHA-256
        ("2a864886f70d01010d", "sha512"),  # sha512WithRSAEncryption
        ("2b6570", None),  # Ed25519 OID, but 3 bytes: exercises the length handling
    ],
)
def test_end_point_hash_follows_the_outer_signature_algorithm(
    rsa_key: Any, oid: str, expected: str | None
) -> None:
    """cryptography no longer signs with MD5/SHA-1, so relabel a SHA-256 certificate: only
    the outer signatureAlgorithm decides (RFC 5929 §4.1)."""
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    der = certificate(rsa_key, hashes.SHA256())
    outer = der.rindex(b"\x06\x09" + SHA256_WITH_RSA)
    new_oid = bytes.fromhex(oid)
    edited = bytearray(der[:outer] + bytes([6, len(new_oid)]) + new_oid + der[outer + 11 :])
    shrink = 9 - len(new_oid)  # fix the AlgorithmIdentifier and Certificate lengths
    edited[outer - 1] -= shrink  # AlgorithmIdentifier SEQUENCE length (short form)
    edited[2:4] = (int.from_bytes(edited[2:4], "big") - shrink).to_bytes(2, "big")  # 30 82 len
    relabelled = bytes(edited)
    result = tls_server_end_point(relabelled)
    assert result == (None if expected is None else hashlib.new(expected, relabelled).digest())


@pytest.mark.parametrize(("pss_hash", "expected"), [("SHA512", "sha512"), ("SHA256", "sha256")])
def test_end_point_hash_of_rsa_pss_certificates(rsa_key: Any, pss_hash: str, expected: str) -> None:
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    padding = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.padding")
    algorithm = getattr(hashes, pss_hash)()
    pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
    der = certificate(rsa_key, algorithm, rsa_padding=pss)
    assert tls_server_end_point(der) == hashlib.new(expected, der).digest()


def test_end_point_hash_of_ecdsa_certificates() -> None:
    ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    key = ec.generate_private_key(ec.SECP384R1())
    der = certificate(key, hashes.SHA384())
    assert tls_server_end_point(der) == hashlib.sha384(der).digest()


def test_end_point_is_undefined_for_ed25519() -> None:
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    der = certificate(ed25519.Ed25519PrivateKey.generate(), None)
    assert tls_server_end_point(der) is None


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x82\xff\xff", b"\x04\x00", b"\x30\x00"])
def test_end_point_refuses_what_is_not_a_certificate(data: bytes) -> None:
    with pytest.raises(ValueError):
        tls_server_end_point(data)


def test_end_point_never_raises_anything_but_value_error_on_truncation(rsa_key: Any) -> None:
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    der = certificate(rsa_key, hashes.SHA256())
    for end in range(0, len(der), 7):
        with contextlib.suppress(ValueError):
            tls_server_end_point(der[:end])


# --- the public API ---------------------------------------------------------------------


def test_all_is_exactly_the_public_names() -> None:
    public = {n for n in vars(xmppx.auth) if not n.startswith("_")}
    assert set(xmppx.auth.__all__) == public - {"annotations"}
    assert sorted(xmppx.auth.__all__) == sorted(set(xmppx.auth.__all__))


def test_doctests() -> None:
    assert doctest.testmod(xmppx.auth).failed == 0
    assert doctest.testmod(mechanisms_module).failed == 0
