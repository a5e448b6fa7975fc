"""PLAIN (RFC 4616), server and client, checked against the stored SCRAM keys.

The message (RFC 4616 §2)::

    message = [authzid] UTF8NUL authcid UTF8NUL passwd

e.g. ``b"\\x00juliet\\x00r0m30myr0m30"`` (no authzid) or
``b"juliet@example.com\\x00juliet\\x00r0m30myr0m30"``.  The server offers PLAIN only on an
encrypted stream (``ServerContext.tls``; RFC 4616 §6 and RFC 6120 §6.4.5
``encryption-required``).

Server rules (``PlainServer._TABLE``)::

    INITIAL          --start(None)-------------> WAIT_FIRST        Challenge(b"")
    INITIAL          --start(message)----------> WAIT_CREDENTIALS  NeedCredentials
    WAIT_FIRST       --respond(message)--------> WAIT_CREDENTIALS  NeedCredentials
    WAIT_CREDENTIALS --provide_credentials-----> DONE              Success(None)
    any SASLFailure -> FAILED; anything else -> SASLStateError

Refusals: not exactly three NUL-separated fields, an empty authcid or password, a field
over ``MAX_PLAIN_FIELD_BYTES``, invalid UTF-8 or an authcid failing SASLprep:
``malformed-request``; a wrong password or an unknown user (the password is checked
against fake keys with the same PBKDF2 work, so neither answer nor timing differs):
``not-authorized``; an authzid other than the user's own bare JID: ``invalid-authzid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from xmppx.auth._base import (
    Challenge,
    NeedCredentials,
    SASLClientError,
    SASLFailure,
    ServerContext,
    Step,
    Success,
    _Machine,
    _State,
    check_authzid,
    prepare_username,
)
from xmppx.auth._credentials import ScramCredentials, fake_scram_credentials, verify_password

__all__ = ["MAX_PLAIN_FIELD_BYTES", "PlainClient", "PlainServer"]

#: Longest authzid, authcid or password accepted.  RFC 4616 §2 requires accepting at
#: least 255 octets each; 1023 is the JID localpart limit (RFC 7622 §3.3.1), long enough
#: for any user name, any sane password and a short bare JID, and bounds the PBKDF2
#: input.  A bare JID authzid longer than this is refused as malformed.
MAX_PLAIN_FIELD_BYTES: Final = 1023


def _malformed(text: str) -> SASLFailure:
    return SASLFailure("malformed-request", text)


class PlainServer(_Machine):
    """The receiving entity's side of one PLAIN exchange (see the module docstring)."""

    _TABLE: ClassVar[Mapping[tuple[_State, str], _State]] = {
        (_State.INITIAL, "start-empty"): _State.WAIT_FIRST,
        (_State.INITIAL, "start"): _State.WAIT_CREDENTIALS,
        (_State.WAIT_FIRST, "respond"): _State.WAIT_CREDENTIALS,
        (_State.WAIT_CREDENTIALS, "provide_credentials"): _State.DONE,
    }

    def __init__(self, context: ServerContext) -> None:
        super().__init__()
        self._context = context
        self._authzid: str | None = None
        self._username = ""
        self._password = ""

    @property
    def name(self) -> str:
        return "PLAIN"

    def start(self, initial_response: bytes | None) -> Step:
        if initial_response is None:
            return self._run("start-empty", lambda: Challenge(data=b""))
        return self._run("start", lambda: self._message(initial_response))

    def respond(self, data: bytes) -> Step:
        return self._run("respond", lambda: self._message(data))

    def provide_credentials(self, credentials: ScramCredentials | None) -> Step:
        if credentials is not None and credentials.hash_name not in self._context.scram_hashes:
            raise ValueError(f"no {credentials.hash_name} keys were asked for")
        return self._run("provide_credentials", lambda: self._verify(credentials))

    def _message(self, data: bytes) -> Step:
        if len(data) > self._context.max_message_bytes:
            raise _malformed("message too long")
        fields = data.split(b"\x00")
        if len(fields) != 3:
            raise _malformed("PLAIN message must be [authzid] NUL authcid NUL passwd")
        if any(len(f) > MAX_PLAIN_FIELD_BYTES for f in fields):
            raise _malformed("field too long")
        try:
            authzid, authcid, password = (f.decode("utf-8") for f in fields)
        except UnicodeDecodeError:
            raise _malformed("PLAIN message is not UTF-8") from None
        if not authcid or not password:
            raise _malformed("empty authcid or password")
        username = prepare_username(
            authcid, self._context, encoding_error="invalid user name encoding"
        )
        self._authzid = authzid or None
        self._username = username
        self._password = password
        return NeedCredentials(username=username, hash_names=self._context.scram_hashes)

    def _verify(self, credentials: ScramCredentials | None) -> Step:
        password, self._password = self._password, ""
        fake = credentials is None
        if credentials is None:
            credentials = fake_scram_credentials(
                self._context.secret,
                self._context.scram_hashes[0],
                self._username,
                iterations=self._context.scram_iterations,
            )
        if not verify_password(password, credentials) or fake:
            raise SASLFailure("not-authorized", "wrong user name or password")
        authzid = check_authzid(self._authzid, self._username, self._context)
        return Success(additional_data=None, authcid=self._username, authzid=authzid)


class PlainClient(_Machine):
    """The initiating entity's side of PLAIN: the whole exchange is the initial response.

    Sends ``username`` and ``password`` as given (the server prepares them, RFC 4616 §2)
    and ``authzid`` when given.  ``ValueError`` for an empty name or password, a NUL in
    any field, or a field longer than ``MAX_PLAIN_FIELD_BYTES``.  Only use it over TLS.

    Client rules::

        INITIAL           --start()-------------> WAIT_SERVER_FINAL  message
        WAIT_SERVER_FINAL --finish(None | b"")--> DONE
        WAIT_SERVER_FINAL --respond(any)--------> FAILED             SASLClientError

    (data in ``<success/>`` is a ``SASLClientError`` too).
    """

    _TABLE: ClassVar[Mapping[tuple[_State, str], _State]] = {
        (_State.INITIAL, "start"): _State.WAIT_SERVER_FINAL,
        (_State.WAIT_SERVER_FINAL, "respond"): _State.FAILED,
        (_State.WAIT_SERVER_FINAL, "finish"): _State.DONE,
    }

    def __init__(self, *, username: str, password: str, authzid: str | None = None) -> None:
        super().__init__()
        fields = [authzid or "", username, password]
        encoded = [f.encode("utf-8") for f in fields]
        if not username or not password:
            raise ValueError("user name and password must not be empty")
        if any("\x00" in f for f in fields):
            raise ValueError("PLAIN fields cannot contain NUL")
        if any(len(e) > MAX_PLAIN_FIELD_BYTES for e in encoded):
            raise ValueError(f"PLAIN fields are at most {MAX_PLAIN_FIELD_BYTES} bytes")
        self._message = b"\x00".join(encoded)

    @property
    def name(self) -> str:
        return "PLAIN"

    def start(self) -> bytes:
        return self._run("start", lambda: self._message)

    def respond(self, challenge: bytes) -> bytes:
        def refuse() -> bytes:
            raise SASLClientError("PLAIN expects no challenge")

        return self._run("respond", refuse)

    def finish(self, additional_data: bytes | None) -> None:
        def check() -> None:
            if additional_data:
                raise SASLClientError("PLAIN expects no additional data in <success/>")

        self._run("finish", check)
