"""SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants (RFC 5802, RFC 7677), server and
client, as sans-I/O state machines.

The RFC 7677 §3 conversation (user ``user``, password ``pencil``), as XMPP carries it
(RFC 6120 §6.4: the client's first message is the initial response, the server's final
message is the additional data of ``<success/>``)::

    C: n,,n=user,r=rOprNGfwEbeRWgbNEkqO
    S: r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,
       i=4096
    C: c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,
       p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
    S: v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=

Server rules (``ScramServer._TABLE``)::

    INITIAL          --start(None)-------------> WAIT_FIRST        Challenge(b"")
    INITIAL          --start(client-first)-----> WAIT_CREDENTIALS  NeedCredentials
    WAIT_FIRST       --respond(client-first)---> WAIT_CREDENTIALS  NeedCredentials
    WAIT_CREDENTIALS --provide_credentials-----> WAIT_FINAL        Challenge(server-first)
    WAIT_FINAL       --respond(client-final)---> DONE              Success(v=...)
    any SASLFailure -> FAILED; anything else -> SASLStateError

What the server refuses, and with which RFC 6120 §6.5 condition (the text is the RFC 5802
§7 ``server-error-value`` where one fits):

- not UTF-8, a NUL, longer than ``ServerContext.max_message_bytes``, not the §7 grammar (GS2
  header ``n``/``y``/``p=<cb-name>`` and optional ``a=<saslname>``; attributes in their
  fixed order; ``=`` in a saslname not starting ``=2C``/``=3D``): ``malformed-request``;
- an ``m=`` attribute (§5.1: its presence MUST fail): ``malformed-request``
  ("extensions-not-supported");
- a user name that fails SASLprep or is empty: ``malformed-request``;
- ``p=`` with the non-PLUS mechanism, ``n``/``y`` with the PLUS one, or a channel-binding
  type this connection has no data for: ``malformed-request``
  ("unsupported-channel-binding-type");
- ``y`` while the server offers -PLUS (a downgrade, §6): ``not-authorized``;
- bad base64 in ``c=`` or ``p=``: ``incorrect-encoding``;
- a nonce other than the one the server sent, ``c=`` not matching the GS2 header plus
  this connection's binding data, a wrong proof: ``not-authorized`` (the proof is
  checked in constant time; an unknown user fails exactly here, after a normal-looking
  challenge with a salt derived from the server secret, see ``fake_scram_credentials``);
- an authzid other than the user's own bare JID: ``invalid-authzid``.

Unknown extension attributes (§7 ``extensions``) are ignored.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    is_printable_nonce,
    make_nonce,
    prepare_username,
)
from xmppx.auth._credentials import (
    HASH_NAMES,
    SCRAM_MECHANISM_NAMES,
    ScramCredentials,
    _keys,
    b64decode_strict,
    fake_scram_credentials,
    salted_password,
)
from xmppx.auth._saslprep import saslprep

__all__ = [
    "MAX_SCRAM_ITERATIONS",
    "MIN_SCRAM_ITERATIONS",
    "ChannelBinding",
    "ScramClient",
    "ScramServer",
]

#: The fewest iterations a client accepts: RFC 5802 §5.1 and RFC 7677 §4 say the count
#: SHOULD be at least 4096; a server asking for fewer makes stolen keys cheap to crack.
MIN_SCRAM_ITERATIONS: Final = 4096
#: The most a client accepts, so a hostile server cannot pin the client's CPU: ten million
#: PBKDF2 rounds are a few seconds on a desktop, a thousand times our default.
MAX_SCRAM_ITERATIONS: Final = 10_000_000

_SASLNAME: Final = re.compile(r"(?:[^=,]|=2C|=3D)+", re.DOTALL)
_CB_NAME: Final = re.compile(r"[A-Za-z0-9.\-]+")
_ATTR_VAL: Final = re.compile(r"[A-Za-z]=.+", re.DOTALL)
_POSIT_NUMBER: Final = re.compile(r"[1-9][0-9]*")


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelBinding:
    """The channel binding a client uses: ``type`` (e.g. ``"tls-exporter"``) and the
    ``data`` it computed for its TLS connection (RFC 5056, RFC 5802 §6)."""

    type: str
    data: bytes = b""

    def __post_init__(self) -> None:
        if not _CB_NAME.fullmatch(self.type):
            raise ValueError(f"not a channel-binding type name: {self.type!r}")


# --- shared message helpers --------------------------------------------------------


def _escape_saslname(name: str) -> str:
    """RFC 5802 §5.1: ``=`` is sent as ``=3D`` and ``,`` as ``=2C``."""
    return name.replace("=", "=3D").replace(",", "=2C")


def _unescape_saslname(value: str) -> str | None:
    """The inverse of ``_escape_saslname``; ``None`` if ``value`` is not a §7 saslname
    (empty, or a ``=`` not starting ``=2C``/``=3D``)."""
    if not _SASLNAME.fullmatch(value):
        return None
    return re.sub("=2C|=3D", lambda m: "," if m.group() == "=2C" else "=", value)


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _malformed(text: str) -> SASLFailure:
    return SASLFailure("malformed-request", text)


def _decode_message(data: bytes, limit: int) -> str:
    """A client message as text: at most ``limit`` bytes, UTF-8, no NUL (§7
    ``value-char``)."""
    if len(data) > limit:
        raise _malformed("message too long")
    try:
        msg = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("invalid-encoding: message is not UTF-8") from None
    if "\x00" in msg:
        raise _malformed("invalid-encoding: message contains NUL")
    return msg


def _check_extensions(attrs: list[str]) -> None:
    """Extensions (§7) are ``ALPHA "=" value`` and ignored, except ``m=`` which MUST
    fail the exchange (§5.1)."""
    for attr in attrs:
        if not _ATTR_VAL.fullmatch(attr):
            raise _malformed(f"bad attribute {attr[:20]!r}")
        if attr.startswith("m="):
            raise _malformed("extensions-not-supported")


def _mechanism_name(hash_name: str, plus: bool) -> str:
    if hash_name not in HASH_NAMES:
        raise ValueError(f"hash_name must be one of {HASH_NAMES}, not {hash_name!r}")
    return SCRAM_MECHANISM_NAMES[hash_name] + ("-PLUS" if plus else "")


# --- server --------------------------------------------------------------------------


class ScramServer(_Machine):
    """The receiving entity's side of one SCRAM exchange (see the module docstring).

    ``hash_name`` is ``"sha1"`` or ``"sha256"``; ``plus=True`` makes it the -PLUS variant,
    which needs ``context.channel_bindings``.
    """

    _TABLE: ClassVar[Mapping[tuple[_State, str], _State]] = {
        (_State.INITIAL, "start-empty"): _State.WAIT_FIRST,
        (_State.INITIAL, "start"): _State.WAIT_CREDENTIALS,
        (_State.WAIT_FIRST, "respond"): _State.WAIT_CREDENTIALS,
        (_State.WAIT_CREDENTIALS, "provide_credentials"): _State.WAIT_FINAL,
        (_State.WAIT_FINAL, "respond"): _State.DONE,
    }

    def __init__(self, hash_name: str, context: ServerContext, *, plus: bool = False) -> None:
        super().__init__()
        self._name = _mechanism_name(hash_name, plus)
        if plus and not context.channel_bindings:
            raise ValueError("the -PLUS variant needs channel-binding data")
        self._hash = hash_name
        self._context = context
        self._plus = plus
        self._digest_size = hashlib.new(hash_name).digest_size
        # Filled in as the exchange proceeds.
        self._gs2_header = b""
        self._cb_data = b""
        self._client_first_bare = ""
        self._client_nonce = ""
        self._nonce = ""
        self._username = ""
        self._authzid: str | None = None
        self._server_first = ""
        self._credentials: ScramCredentials | None = None
        self._fake = False

    @property
    def name(self) -> str:
        return self._name

    def start(self, initial_response: bytes | None) -> Step:
        if initial_response is None:
            return self._run("start-empty", lambda: Challenge(data=b""))
        return self._run("start", lambda: self._client_first(initial_response))

    def respond(self, data: bytes) -> Step:
        if self._state is _State.WAIT_FIRST:
            return self._run("respond", lambda: self._client_first(data))
        return self._run("respond", lambda: self._client_final(data))

    def provide_credentials(self, credentials: ScramCredentials | None) -> Step:
        if credentials is not None and credentials.hash_name != self._hash:
            raise ValueError(f"{self._name} needs {self._hash} credentials")
        return self._run("provide_credentials", lambda: self._server_first_message(credentials))

    # -- handlers

    def _client_first(self, data: bytes) -> Step:
        msg = _decode_message(data, self._context.max_message_bytes)
        parts = msg.split(",", 2)
        if len(parts) != 3:
            raise _malformed("missing GS2 header")
        flag, authz, bare = parts
        self._check_cbind_flag(flag)
        if authz:
            if not authz.startswith("a="):
                raise _malformed("bad authzid in GS2 header")
            authzid = _unescape_saslname(authz[2:])
            if authzid is None:
                raise _malformed("bad authzid encoding")
            self._authzid = authzid
        self._gs2_header = f"{flag},{authz},".encode()

        attrs = bare.split(",")
        if attrs[0].startswith("m="):
            raise _malformed("extensions-not-supported")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            raise _malformed("client-first-message must be n=...,r=...")
        _check_extensions(attrs[2:])
        raw_name = _unescape_saslname(attrs[0][2:])
        if raw_name is None:
            raise _malformed("invalid-username-encoding")
        nonce = attrs[1][2:]
        if not is_printable_nonce(nonce):
            raise _malformed("bad nonce")
        username = prepare_username(
            raw_name, self._context, encoding_error="invalid-username-encoding"
        )
        self._client_first_bare = bare
        self._client_nonce = nonce
        self._username = username
        return NeedCredentials(username=username, hash_names=(self._hash,))

    def _check_cbind_flag(self, flag: str) -> None:
        """RFC 5802 §6: the GS2 channel-binding flag against what this server offers."""
        bindings = self._context.channel_bindings
        if flag.startswith("p=") and _CB_NAME.fullmatch(flag[2:]):
            cb_type = flag[2:]
            if not self._plus:
                raise _malformed("channel binding needs the -PLUS mechanism")
            if cb_type not in bindings:
                raise _malformed("unsupported-channel-binding-type")
            self._cb_data = bindings[cb_type]
        elif flag not in ("n", "y"):
            raise _malformed("bad GS2 channel-binding flag")
        elif self._plus:
            raise _malformed(f"{self._name} requires channel binding (p=)")
        elif flag == "y" and bindings:
            raise SASLFailure("not-authorized", "server-does-support-channel-binding")

    def _server_first_message(self, credentials: ScramCredentials | None) -> Step:
        if credentials is None:
            credentials = fake_scram_credentials(
                self._context.secret,
                self._hash,
                self._username,
                iterations=self._context.scram_iterations,
            )
            self._fake = True
        server_nonce = self._context.nonce_factory()
        if not is_printable_nonce(server_nonce):
            raise ValueError("nonce_factory must return printable ASCII without ','")
        self._credentials = credentials
        self._nonce = self._client_nonce + server_nonce
        self._server_first = (
            f"r={self._nonce},s={_b64encode(credentials.salt)},i={credentials.iterations}"
        )
        return Challenge(data=self._server_first.encode("ascii"))

    def _client_final(self, data: bytes) -> Step:
        assert self._credentials is not None
        msg = _decode_message(data, self._context.max_message_bytes)
        without_proof, sep, proof_attr = msg.rpartition(",")
        attrs = without_proof.split(",")
        if (
            not sep
            or not proof_attr.startswith("p=")
            or len(attrs) < 2
            or not attrs[0].startswith("c=")
            or not attrs[1].startswith("r=")
        ):
            raise _malformed("client-final-message must be c=...,r=...,p=...")
        _check_extensions(attrs[2:])
        nonce = attrs[1][2:]
        if not is_printable_nonce(nonce):
            raise _malformed("bad nonce")
        try:
            cbind_input = b64decode_strict(attrs[0][2:])
            proof = b64decode_strict(proof_attr[2:])
        except ValueError:
            raise SASLFailure("incorrect-encoding", "invalid-encoding: bad base64") from None
        if len(proof) != self._digest_size:
            raise _malformed("proof has the wrong length")
        if not hmac.compare_digest(nonce.encode("ascii"), self._nonce.encode("ascii")):
            raise SASLFailure("not-authorized", "nonce mismatch")
        if not hmac.compare_digest(cbind_input, self._gs2_header + self._cb_data):
            raise SASLFailure("not-authorized", "channel-bindings-dont-match")

        creds = self._credentials
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = hmac.digest(creds.stored_key, auth_message, self._hash)
        client_key = _xor(proof, client_signature)
        stored_key = hashlib.new(self._hash, client_key).digest()
        if not hmac.compare_digest(stored_key, creds.stored_key) or self._fake:
            raise SASLFailure("not-authorized", "invalid-proof")

        authzid = check_authzid(self._authzid, self._username, self._context)
        server_signature = hmac.digest(creds.server_key, auth_message, self._hash)
        return Success(
            additional_data=b"v=" + _b64encode(server_signature).encode("ascii"),
            authcid=self._username,
            authzid=authzid,
        )


# --- client --------------------------------------------------------------------------


class ScramClient(_Machine):
    """The initiating entity's side of one SCRAM exchange.

    ``username`` is SASLprepped as a query and escaped (§5.1 ``n``); ``password`` is
    SASLprepped as a stored string (§2.2; ``ValueError`` if it cannot be); ``authzid`` is
    sent as ``a=`` when given.  With ``channel_binding`` the client runs the -PLUS
    variant with ``p=<type>``; without it, the flag is ``y`` if
    ``channel_binding_capable`` (the client could bind but the server offered no -PLUS,
    so the server can detect a downgrade) and ``n`` otherwise.  ``nonce`` is for tests;
    by default a fresh random one is made.

    Client rules (``_TABLE``)::

        INITIAL           --start()-------------------> WAIT_SERVER_FIRST  client-first
        WAIT_SERVER_FIRST --respond(server-first)-----> WAIT_SERVER_FINAL  client-final
        WAIT_SERVER_FINAL --finish(server-final)------> DONE
        WAIT_SERVER_FINAL --respond(server-final)-----> VERIFIED           b""
        VERIFIED          --finish(None | b"")--------> DONE

    (the last two serve servers that send ``v=`` in a challenge and then an empty
    ``<success/>``, as RFC 3920 required).  Any ``SASLClientError`` -> FAILED.
    """

    _TABLE: ClassVar[Mapping[tuple[_State, str], _State]] = {
        (_State.INITIAL, "start"): _State.WAIT_SERVER_FIRST,
        (_State.WAIT_SERVER_FIRST, "respond"): _State.WAIT_SERVER_FINAL,
        (_State.WAIT_SERVER_FINAL, "finish"): _State.DONE,
        (_State.WAIT_SERVER_FINAL, "respond"): _State.VERIFIED,
        (_State.VERIFIED, "finish"): _State.DONE,
    }

    def __init__(
        self,
        hash_name: str,
        *,
        username: str,
        password: str,
        authzid: str | None = None,
        channel_binding: ChannelBinding | None = None,
        channel_binding_capable: bool = False,
        nonce: str | None = None,
        min_iterations: int = MIN_SCRAM_ITERATIONS,
        max_iterations: int = MAX_SCRAM_ITERATIONS,
    ) -> None:
        super().__init__()
        self._name = _mechanism_name(hash_name, channel_binding is not None)
        self._hash = hash_name
        prepared_name = saslprep(username, allow_unassigned=True)
        self._password = saslprep(password).encode("utf-8")
        if not prepared_name or not self._password:
            raise ValueError("user name and password must not be empty")
        self._nonce = make_nonce() if nonce is None else nonce
        if not is_printable_nonce(self._nonce):
            raise ValueError("nonce must be printable ASCII without ','")
        if channel_binding is not None:
            flag, self._cb_data = f"p={channel_binding.type}", channel_binding.data
        else:
            flag, self._cb_data = ("y" if channel_binding_capable else "n"), b""
        authz = "" if authzid is None else "a=" + _escape_saslname(authzid)
        self._gs2_header = f"{flag},{authz},".encode()
        self._client_first_bare = f"n={_escape_saslname(prepared_name)},r={self._nonce}"
        self._min_iterations = min_iterations
        self._max_iterations = max_iterations
        self._server_signature = b""

    @property
    def name(self) -> str:
        return self._name

    def start(self) -> bytes:
        return self._run("start", lambda: self._gs2_header + self._client_first_bare.encode())

    def respond(self, challenge: bytes) -> bytes:
        if self._state is _State.WAIT_SERVER_FIRST:
            return self._run("respond", lambda: self._client_final(challenge))
        return self._run("respond", lambda: self._verify(challenge))

    def finish(self, additional_data: bytes | None) -> None:
        def check() -> None:
            if self._state is _State.VERIFIED:
                if additional_data:
                    raise SASLClientError("unexpected data in <success/> after v=")
            elif additional_data is None:
                raise SASLClientError("the server did not prove itself (no v=)")
            else:
                self._verify(additional_data)

        self._run("finish", check)

    # -- handlers

    def _client_final(self, challenge: bytes) -> bytes:
        try:
            server_first = challenge.decode("utf-8")
        except UnicodeDecodeError:
            raise SASLClientError("server-first-message is not UTF-8") from None
        attrs = server_first.split(",")
        if attrs[0].startswith("m="):
            raise SASLClientError("server requires an unsupported extension (m=)")
        if (
            len(attrs) < 3
            or not attrs[0].startswith("r=")
            or not attrs[1].startswith("s=")
            or not attrs[2].startswith("i=")
        ):
            raise SASLClientError("server-first-message must be r=...,s=...,i=...")
        for attr in attrs[3:]:
            if not _ATTR_VAL.fullmatch(attr) or attr.startswith("m="):
                raise SASLClientError(f"bad attribute in server-first-message: {attr[:20]!r}")
        nonce = attrs[0][2:]
        if not (
            is_printable_nonce(nonce)
            and nonce.startswith(self._nonce)
            and len(nonce) > len(self._nonce)
        ):
            raise SASLClientError("server nonce does not extend the client nonce")
        try:
            salt = b64decode_strict(attrs[1][2:])
        except ValueError:
            raise SASLClientError("salt is not valid base64") from None
        if not salt:
            raise SASLClientError("empty salt")
        if not _POSIT_NUMBER.fullmatch(attrs[2][2:]):
            raise SASLClientError("iteration count is not a positive number")
        iterations = int(attrs[2][2:])
        if not self._min_iterations <= iterations <= self._max_iterations:
            raise SASLClientError(
                f"iteration count {iterations} outside "
                f"[{self._min_iterations}, {self._max_iterations}]"
            )

        cbind = _b64encode(self._gs2_header + self._cb_data)
        without_proof = f"c={cbind},r={nonce}"
        auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode()
        salted = salted_password(self._hash, self._password, salt, iterations)
        client_key, stored_key, server_key = _keys(self._hash, salted)
        proof = _xor(client_key, hmac.digest(stored_key, auth_message, self._hash))
        self._server_signature = hmac.digest(server_key, auth_message, self._hash)
        return f"{without_proof},p={_b64encode(proof)}".encode("ascii")

    def _verify(self, server_final: bytes) -> bytes:
        try:
            text = server_final.decode("utf-8")
        except UnicodeDecodeError:
            raise SASLClientError("server-final-message is not UTF-8") from None
        first = text.split(",", 1)[0]
        if first.startswith("e="):
            raise SASLClientError(f"server error: {first[2:]}")
        if not first.startswith("v="):
            raise SASLClientError("server-final-message must start with v=")
        try:
            signature = b64decode_strict(first[2:])
        except ValueError:
            raise SASLClientError("server signature is not valid base64") from None
        if not hmac.compare_digest(signature, self._server_signature):
            raise SASLClientError("wrong server signature: the server does not know the keys")
        return b""
