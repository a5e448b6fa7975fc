"""PLAIN (RFC 4616) against stored SCRAM keys: the message format, the verification, and
every way to fail."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmppx.auth import (
    MAX_PLAIN_FIELD_BYTES,
    Challenge,
    NeedCredentials,
    PlainClient,
    PlainServer,
    SASLClientError,
    SASLFailure,
    SASLprepError,
    SASLStateError,
    ScramCredentials,
    ServerContext,
    Success,
    create_server_mechanism,
    derive_scram_credentials,
    saslprep,
    verify_password,
)
from xmppx.auth import _plain as plain_module

SECRET = b"a server secret of 32 bytes long"
FAST = 16


def context(**kwargs: object) -> ServerContext:
    defaults: dict[str, object] = {"domain": "example.com", "secret": SECRET, "tls": True}
    defaults.update(kwargs)
    return ServerContext(**defaults)  # type: ignore[arg-type]


CREDS = derive_scram_credentials("r0m30myr0m30", "sha256", iterations=FAST)


def login(message: bytes, creds: ScramCredentials | None = CREDS, **ctx: object) -> Success:
    server = PlainServer(context(**ctx))
    step = server.start(message)
    assert isinstance(step, NeedCredentials)
    done = server.provide_credentials(creds)
    assert isinstance(done, Success)
    return done


def refuse(message: bytes, creds: ScramCredentials | None = CREDS, **ctx: object) -> SASLFailure:
    server = PlainServer(context(**ctx))
    with pytest.raises(SASLFailure) as info:
        step = server.start(message)
        assert isinstance(step, NeedCredentials)
        server.provide_credentials(creds)
    return info.value


# --- the exchange ------------------------------------------------------------------------


def test_rfc4616_message_without_authzid() -> None:
    server = PlainServer(context())
    # C: <auth mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>
    step = server.start(b"\x00juliet\x00r0m30myr0m30")
    assert step == NeedCredentials(username="juliet", hash_names=("sha256", "sha1"))
    # S: <success/>
    assert server.provide_credentials(CREDS) == Success(
        additional_data=None, authcid="juliet", authzid=None
    )


def test_own_authzid_is_accepted() -> None:
    done = login(b"juliet@example.com\x00juliet\x00r0m30myr0m30")
    assert done.authzid == "juliet@example.com"


@pytest.mark.parametrize(
    "authzid", [b"romeo@example.com", b"juliet@example.net", b"juliet@example.com/balcony"]
)
def test_authzid_of_another_identity_is_invalid_authzid(authzid: bytes) -> None:
    failure = refuse(authzid + b"\x00juliet\x00r0m30myr0m30")
    assert failure.condition == "invalid-authzid"


def test_authzid_with_a_wrong_password_is_not_authorized() -> None:
    failure = refuse(b"romeo@example.com\x00juliet\x00wrong")
    assert failure.condition == "not-authorized"


def test_empty_auth_then_message_in_a_response() -> None:
    server = PlainServer(context())
    assert server.start(None) == Challenge(data=b"")
    assert isinstance(server.respond(b"\x00juliet\x00r0m30myr0m30"), NeedCredentials)
    assert isinstance(server.provide_credentials(CREDS), Success)


def test_client_server_round_trip() -> None:
    client = PlainClient(username="juliet", password="r0m30myr0m30", authzid="juliet@example.com")
    assert client.name == "PLAIN"
    message = client.start()
    assert message == b"juliet@example.com\x00juliet\x00r0m30myr0m30"
    done = login(message)
    client.finish(done.additional_data)


def test_sha1_keys_serve_plain_too() -> None:
    creds = derive_scram_credentials("r0m30myr0m30", "sha1", iterations=FAST)
    assert login(b"\x00juliet\x00r0m30myr0m30", creds).authcid == "juliet"


def test_password_and_username_are_saslprepped() -> None:
    creds = derive_scram_credentials("I\u00adX", "sha256", iterations=FAST)
    server = PlainServer(context())
    step = server.start("\x00\u2168user\x00\u2168".encode())
    assert step == NeedCredentials(username="IXuser", hash_names=("sha256", "sha1"))
    assert isinstance(server.provide_credentials(creds), Success)


def test_prep_username_canonicalizes_the_name_looked_up() -> None:
    server = PlainServer(context(prep_username=str.lower))
    step = server.start(b"\x00Juliet\x00r0m30myr0m30")
    assert isinstance(step, NeedCredentials) and step.username == "juliet"


# --- failures ------------------------------------------------------------------------------


def test_wrong_password_is_not_authorized() -> None:
    failure = refuse(b"\x00juliet\x00r0m30")
    assert (failure.condition, failure.text) == ("not-authorized", "wrong user name or password")


def test_unknown_user_is_indistinguishable_from_a_wrong_password() -> None:
    wrong = refuse(b"\x00juliet\x00wrong")
    missing = refuse(b"\x00ghost\x00r0m30myr0m30", None)
    assert (missing.condition, missing.text) == (wrong.condition, wrong.text)


def test_unpreparable_password_is_just_a_wrong_password() -> None:
    failure = refuse(b"\x00juliet\x00r0m30\x07")
    assert failure.condition == "not-authorized"


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"juliet",
        b"\x00juliet",
        b"\x00juliet\x00pass\x00extra",
        b"\x00\x00r0m30myr0m30",  # empty authcid
        b"\x00juliet\x00",  # empty password
        b"\x00jul\xffiet\x00r0m30myr0m30",  # not UTF-8
        b"\x00jul\x07iet\x00r0m30myr0m30",  # authcid fails SASLprep
        "\x00\u00ad\x00r0m30myr0m30".encode(),  # authcid empty after SASLprep
        b"\x00" + b"j" * (MAX_PLAIN_FIELD_BYTES + 1) + b"\x00r0m30myr0m30",
        b"\x00juliet\x00" + b"p" * (MAX_PLAIN_FIELD_BYTES + 1),
        b"a" * (MAX_PLAIN_FIELD_BYTES + 1) + b"\x00juliet\x00r0m30myr0m30",
    ],
)
def test_malformed_messages(message: bytes) -> None:
    assert refuse(message).condition == "malformed-request"


def test_fields_of_the_maximum_length_are_accepted() -> None:
    password = "p" * MAX_PLAIN_FIELD_BYTES
    creds = derive_scram_credentials(password, "sha256", iterations=FAST)
    login(b"\x00" + b"j" * MAX_PLAIN_FIELD_BYTES + b"\x00" + password.encode(), creds)


def test_username_rejected_by_prep_username_is_not_authorized() -> None:
    def nodeprep(name: str) -> str:
        if "@" in name:
            raise ValueError("'@' is prohibited in a localpart")
        return name

    failure = refuse(b"\x00juliet@example.com\x00r0m30myr0m30", prep_username=nodeprep)
    assert failure.condition == "not-authorized"


def test_plain_needs_tls() -> None:
    with pytest.raises(SASLFailure) as info:
        create_server_mechanism("PLAIN", context(tls=False))
    assert info.value.condition == "encryption-required"
    assert isinstance(create_server_mechanism("PLAIN", context()), PlainServer)


def test_state_rules() -> None:
    server = PlainServer(context())
    with pytest.raises(SASLStateError):
        server.respond(b"\x00juliet\x00r0m30myr0m30")
    with pytest.raises(SASLStateError):
        server.provide_credentials(CREDS)
    server.start(b"\x00juliet\x00r0m30myr0m30")
    with pytest.raises(SASLStateError):
        server.respond(b"\x00juliet\x00r0m30myr0m30")
    server.provide_credentials(CREDS)
    with pytest.raises(SASLStateError):
        server.provide_credentials(CREDS)

    failed = PlainServer(context())
    with pytest.raises(SASLFailure):
        failed.start(b"nonsense")
    with pytest.raises(SASLStateError):
        failed.respond(b"\x00juliet\x00r0m30myr0m30")


def test_credentials_for_a_hash_not_asked_for_are_a_caller_bug() -> None:
    server = PlainServer(context(scram_hashes=("sha256",)))
    server.start(b"\x00juliet\x00r0m30myr0m30")
    with pytest.raises(ValueError):
        server.provide_credentials(derive_scram_credentials("x", "sha1", iterations=FAST))


# --- the client -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"username": "", "password": "p"},
        {"username": "u", "password": ""},
        {"username": "u\x00", "password": "p"},
        {"username": "u", "password": "p", "authzid": "a\x00"},
        {"username": "u", "password": "p" * (MAX_PLAIN_FIELD_BYTES + 1)},
    ],
)
def test_client_refuses_bad_arguments(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        PlainClient(**kwargs)


def test_client_refuses_a_challenge_and_success_data() -> None:
    client = PlainClient(username="juliet", password="r0m30myr0m30")
    client.start()
    with pytest.raises(SASLClientError):
        client.respond(b"")
    client = PlainClient(username="juliet", password="r0m30myr0m30")
    client.start()
    with pytest.raises(SASLClientError):
        client.finish(b"data")
    client = PlainClient(username="juliet", password="r0m30myr0m30")
    client.start()
    client.finish(b"")  # "=" in <success/>: empty additional data is fine


# --- verify_password ---------------------------------------------------------------------------


def test_verify_password() -> None:
    assert verify_password("r0m30myr0m30", CREDS)
    assert not verify_password("r0m30myr0m3", CREDS)
    assert not verify_password("", CREDS)
    assert not verify_password("r0m30\x07", CREDS)


passwords = st.text(min_size=1, max_size=30).filter(lambda s: _prepares(s))


def _prepares(s: str) -> bool:
    try:
        return bool(saslprep(s))
    except SASLprepError:
        return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(password=passwords, hash_name=st.sampled_from(["sha1", "sha256"]))
def test_any_password_round_trips(password: str, hash_name: str) -> None:
    creds = derive_scram_credentials(password, hash_name, iterations=2)
    assert verify_password(password, creds)
    assert verify_password(saslprep(password), creds)
    client = PlainClient(username="juliet", password=password)
    assert login(client.start(), creds).authcid == "juliet"


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=100))
def test_arbitrary_input_only_ever_raises_sasl_failure(message: bytes) -> None:
    server = PlainServer(context())
    try:
        step = server.start(message)
        assert isinstance(step, NeedCredentials)
        server.provide_credentials(None)
    except SASLFailure:
        return
    raise AssertionError("an unknown user must never succeed")


def test_interop_with_slixmpp_plain_client() -> None:
    mechanisms = pytest.importorskip("slixmpp.util.sasl.mechanisms")
    creds = {"username": b"juliet", "password": b"r0m30myr0m30", "authzid": b""}
    mech = mechanisms.PLAIN("PLAIN", creds, {"encrypted": True, "encrypted_plain": True})
    assert login(mech.process(b"")).authcid == "juliet"


def test_module_doctests() -> None:
    assert doctest.testmod(plain_module).failed == 0


def test_message_size_limit_is_configurable() -> None:
    message = b"\x00juliet\x00r0m30myr0m30"
    assert refuse(message, max_message_bytes=len(message) - 1).condition == "malformed-request"
    assert login(message, max_message_bytes=len(message)).authcid == "juliet"
