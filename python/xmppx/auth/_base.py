"""What every SASL mechanism shares: the steps, the errors, the server's context, the
payload codec and the authorization-identity rule (RFC 6120 §6, RFC 4422).

A server mechanism is a sans-I/O state machine driven by the stream layer::

    step = mech.start(initial_response)          # <auth mechanism='...'>data</auth>
    while True:
        match step:
            case NeedCredentials(username=u, hash_names=h):
                step = mech.provide_credentials(await accounts.scram_keys(u, h))
            case Challenge(data=d):
                send(<challenge>d</challenge>); step = mech.respond(await response())
            case Success(additional_data=d, authcid=u, authzid=z):
                send(<success>d</success>); break

and a ``SASLFailure(condition, text)`` raised by any call becomes
``<failure><condition/><text>text</text></failure>`` (RFC 6120 §6.4.5).  The credential
look-up is a step of its own so the machine stays synchronous while the server's storage
is asynchronous.  A mechanism that has failed or succeeded accepts no further input; a
call out of order is a bug in the caller and raises ``SASLStateError``.
"""

from __future__ import annotations

import binascii
import enum
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, Protocol, TypeVar

from xmppx.auth._credentials import DEFAULT_SCRAM_ITERATIONS, HASH_NAMES, b64decode_strict

if TYPE_CHECKING:
    from xmppx.auth._credentials import ScramCredentials

__all__ = [
    "MAX_SASL_MESSAGE_BYTES",
    "MAX_USERNAME_BYTES",
    "MIN_SERVER_SECRET_BYTES",
    "NONCE_BYTES",
    "SASL_FAILURE_CONDITIONS",
    "Challenge",
    "ClientMechanism",
    "NeedCredentials",
    "SASLClientError",
    "SASLFailure",
    "SASLStateError",
    "ServerContext",
    "ServerMechanism",
    "Step",
    "Success",
    "decode_payload",
    "encode_payload",
    "make_nonce",
]

#: RFC 6120 §6.5 defined SASL failure conditions.
SASL_FAILURE_CONDITIONS: Final = frozenset(
    {
        "aborted",
        "account-disabled",
        "credentials-expired",
        "encryption-required",
        "incorrect-encoding",
        "invalid-authzid",
        "invalid-mechanism",
        "malformed-request",
        "mechanism-too-weak",
        "not-authorized",
        "temporary-auth-failure",
    }
)

#: Largest decoded SASL message a mechanism accepts.  The longest valid one is a SCRAM
#: client-first-message with a maximal authzid (a bare JID: 1023 + 1 + 1023 bytes, RFC 7622
#: §3) and a maximal escaped user name (up to 3 x 1023 bytes), about 5.2 KiB; 8 KiB leaves
#: room for nonces and extensions while bounding the parsing work.  The stream's stanza
#: limit bounds the base64 text before it reaches us.  ``ServerContext.max_message_bytes``
#: overrides it (config key ``auth.max_message_bytes``).
MAX_SASL_MESSAGE_BYTES: Final = 8 * 1024

#: Longest user name (after preparation) a mechanism accepts: a user name is a JID
#: localpart, which RFC 7622 §3.3.1 limits to 1023 bytes.  Longer names cannot be
#: accounts, so they are refused before any look-up.
MAX_USERNAME_BYTES: Final = 1023

#: Random bytes in a nonce we generate: 144 bits makes a repeat across the life of the
#: service negligible (RFC 5802 §5.1 asks for a nonce "unique per authentication
#: exchange"), and 18 bytes encode to 24 base64 characters with no padding.
NONCE_BYTES: Final = 18

#: The server secret keys the fake salts of unknown users; below 128 bits it could be
#: guessed and the fake salts told apart from real ones.
MIN_SERVER_SECRET_BYTES: Final = 16


class SASLFailure(Exception):
    """The receiving entity refuses the exchange: ``condition`` is one of
    ``SASL_FAILURE_CONDITIONS`` (RFC 6120 §6.5), ``text`` a human-readable reason safe to
    send to the peer (it never says whether an account exists)."""

    def __init__(self, condition: str, text: str = "") -> None:
        if condition not in SASL_FAILURE_CONDITIONS:
            raise ValueError(f"not an RFC 6120 §6.5 SASL condition: {condition!r}")
        super().__init__(condition, text)
        self.condition = condition
        self.text = text

    def __str__(self) -> str:
        return f"{self.condition}: {self.text}" if self.text else self.condition


class SASLClientError(Exception):
    """A client mechanism refuses what the server sent: a malformed challenge, a nonce
    that does not extend ours, a wrong server signature (RFC 5802 §5: the server did not
    prove it knows the keys).  The client answers with ``<abort/>`` (RFC 6120 §6.4.4) or
    closes the stream, and does not trust the stream."""


class SASLStateError(RuntimeError):
    """A mechanism method was called in a state that does not accept it (e.g. ``respond``
    before ``provide_credentials``, or anything after success or failure): a caller bug."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Challenge:
    """Send ``<challenge>`` with ``data`` (``b""``: an empty challenge) and wait for a
    ``<response>`` to pass to ``respond``."""

    data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class NeedCredentials:
    """Look up the stored SCRAM keys of ``username`` (already SASLprepped and passed
    through ``ServerContext.prep_username``) for the first of ``hash_names`` the account
    has, and pass them, or ``None`` if there is no such account or no keys for those
    hashes, to ``provide_credentials``.  The mechanism makes both cases look the same to
    the client."""

    username: str
    hash_names: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Success:
    """Authentication succeeded: send ``<success>`` with ``additional_data`` (``None``:
    none).  ``authcid`` is the authenticated user name (the JID localpart), ``authzid``
    the identity the client asked to act as after ``prep_jid`` (``None`` if it asked for
    none); it is always the user's own bare JID."""

    additional_data: bytes | None
    authcid: str
    authzid: str | None


#: What a server mechanism asks of its driver next.
Step = Challenge | NeedCredentials | Success


def make_nonce() -> str:
    """A fresh random nonce: ``NONCE_BYTES`` from ``secrets``, URL-safe base64 (printable
    ASCII without ``,`` as RFC 5802 §7 ``printable`` requires)."""
    return secrets.token_urlsafe(NONCE_BYTES)


def _identity(s: str) -> str:
    return s


@dataclass(frozen=True, kw_only=True)
class ServerContext:
    """What a server mechanism needs from the server, for one stream.

    - ``domain``: the service domain; an authzid must be ``<authcid>@<domain>``.
    - ``secret``: a persistent server secret (at least ``MIN_SERVER_SECRET_BYTES``) from
      which fake salts for unknown users are derived.  Keep it stable across restarts, or
      a changing salt reveals that the user does not exist.
    - ``tls``: whether the stream is encrypted; ``PLAIN`` is offered only then.
    - ``channel_bindings``: channel-binding type (``"tls-exporter"``,
      ``"tls-server-end-point"``) to the data the server computed for this connection.
      Non-empty means the server offers the ``-PLUS`` mechanisms, so a client's ``y`` flag
      is a downgrade (RFC 5802 §6).
    - ``scram_hashes``: the hashes the server stores SCRAM keys for, strongest first.
    - ``scram_iterations``: the iteration count of new accounts; fake credentials use it.
    - ``prep_username``: the server's canonical form of a user name (JID localpart
      Nodeprep, RFC 6122 / RFC 7622); applied after SASLprep.  Raise ``ValueError`` for a
      name no account can have.  Default: unchanged.
    - ``prep_jid``: the server's canonical form of a bare JID, used to compare an authzid
      with the user's own JID; raise ``ValueError`` for an invalid JID.  Default:
      unchanged, i.e. the authzid must be exactly ``<authcid>@<domain>``.
    - ``nonce_factory``: makes the server nonce (tests inject the RFC's).
    - ``max_message_bytes``: the longest SASL message accepted (``MAX_SASL_MESSAGE_BYTES``).
    """

    domain: str
    secret: bytes = field(repr=False)
    tls: bool = False
    channel_bindings: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    scram_hashes: tuple[str, ...] = HASH_NAMES
    scram_iterations: int = DEFAULT_SCRAM_ITERATIONS
    prep_username: Callable[[str], str] = _identity
    prep_jid: Callable[[str], str] = _identity
    nonce_factory: Callable[[], str] = make_nonce
    max_message_bytes: int = MAX_SASL_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if not self.domain:
            raise ValueError("domain must not be empty")
        if len(self.secret) < MIN_SERVER_SECRET_BYTES:
            raise ValueError(f"secret must be at least {MIN_SERVER_SECRET_BYTES} bytes")
        if self.channel_bindings and not self.tls:
            raise ValueError("channel bindings exist only on a TLS stream")
        if not self.scram_hashes or not set(self.scram_hashes) <= set(HASH_NAMES):
            raise ValueError(f"scram_hashes must be a non-empty subset of {HASH_NAMES}")
        if self.scram_iterations < 1:
            raise ValueError("scram_iterations must be positive")
        if self.max_message_bytes < 1:
            raise ValueError("max_message_bytes must be positive")


class ServerMechanism(Protocol):
    """One SASL exchange on the receiving entity's side (see the module docstring)."""

    @property
    def name(self) -> str:
        """The IANA mechanism name, e.g. ``"SCRAM-SHA-256-PLUS"``."""
        ...

    def start(self, initial_response: bytes | None) -> Step:
        """Begin with the ``<auth/>`` element's data: ``None`` if it carried none (then the
        first step is an empty ``Challenge``), ``b""`` for ``=`` (RFC 6120 §6.4.2)."""
        ...

    def respond(self, data: bytes) -> Step:
        """Continue with the data of a ``<response/>`` element."""
        ...

    def provide_credentials(self, credentials: ScramCredentials | None) -> Step:
        """Answer a ``NeedCredentials`` step."""
        ...


class ClientMechanism(Protocol):
    """One SASL exchange on the initiating entity's side.  Raises ``SASLClientError``
    when the server misbehaves."""

    @property
    def name(self) -> str:
        """The IANA mechanism name to put in ``<auth mechanism='...'>``."""
        ...

    def start(self) -> bytes:
        """The initial response to send in ``<auth/>`` (RFC 6120 §6.4.2)."""
        ...

    def respond(self, challenge: bytes) -> bytes:
        """The response to a ``<challenge/>``."""
        ...

    def finish(self, additional_data: bytes | None) -> None:
        """Check the ``<success/>`` element's data; returns only if the server proved
        itself (for SCRAM: a correct server signature)."""
        ...


def decode_payload(text: str) -> bytes | None:
    """Decode the character data of ``<auth/>``, ``<challenge/>``, ``<response/>`` or
    ``<success/>`` (RFC 6120 §6.4.2, §6.4.6): ``""`` (no data) is ``None``, ``"="`` is
    ``b""`` (present but empty), anything else strict base64 (RFC 4648 §4: no whitespace,
    correct padding).  Raises ``SASLFailure("incorrect-encoding")`` for bad base64.

    For ``<response/>`` an absent payload means an empty response: use
    ``decode_payload(text) or b""``.
    """
    if text == "":
        return None
    if text == "=":
        return b""
    try:
        return b64decode_strict(text)
    except ValueError:
        raise SASLFailure("incorrect-encoding", "payload is not valid base64") from None


def encode_payload(data: bytes | None) -> str:
    """The inverse of ``decode_payload``: ``None`` is ``""``, ``b""`` is ``"="``."""
    if data is None:
        return ""
    if data == b"":
        return "="
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def check_authzid(authzid: str | None, authcid: str, context: ServerContext) -> str | None:
    """The authorization rule of RFC 6120 §6.3.8 as this server applies it: a client may
    only act as itself, so an authzid, if given, must be the user's own bare JID
    (``authcid@domain``) after ``context.prep_jid``.  Returns the prepared authzid (or
    ``None``); raises ``SASLFailure("invalid-authzid")`` otherwise.  Call it only after the
    credentials are verified, so it reveals nothing about other accounts."""
    if authzid is None:
        return None
    try:
        given = context.prep_jid(authzid)
        own = context.prep_jid(f"{authcid}@{context.domain}")
    except ValueError:
        raise SASLFailure("invalid-authzid", "authzid is not a valid JID") from None
    if given != own:
        raise SASLFailure("invalid-authzid", "authzid must be your own bare JID")
    return given


class _State(enum.Enum):
    """The states of every mechanism; each class's ``_TABLE`` says which it uses."""

    INITIAL = enum.auto()
    WAIT_FIRST = enum.auto()  # server: empty challenge sent, waiting for the first message
    WAIT_CREDENTIALS = enum.auto()  # server: NeedCredentials returned
    WAIT_FINAL = enum.auto()  # server: challenge sent, waiting for the final message
    WAIT_SERVER_FIRST = enum.auto()  # client: first message sent
    WAIT_SERVER_FINAL = enum.auto()  # client: final message sent
    VERIFIED = enum.auto()  # client: server signature checked, waiting for <success/>
    DONE = enum.auto()
    FAILED = enum.auto()


_T = TypeVar("_T")


class _Machine:
    """Runs a mechanism's transition table: ``_TABLE[(state, event)]`` is the state after
    ``event`` succeeds; a missing entry is a caller bug (``SASLStateError``); any
    exception from the handler (``SASLFailure``, ``SASLClientError``) leaves the machine
    in ``FAILED``, from which nothing is accepted."""

    _TABLE: ClassVar[Mapping[tuple[_State, str], _State]]

    def __init__(self) -> None:
        self._state = _State.INITIAL

    def _run(self, event: str, handler: Callable[[], _T]) -> _T:
        try:
            after = self._TABLE[(self._state, event)]
        except KeyError:
            raise SASLStateError(
                f"{type(self).__name__}: {event} is not allowed in state {self._state.name}"
            ) from None
        try:
            result = handler()
        except BaseException:
            self._state = _State.FAILED
            raise
        self._state = after
        return result


def is_printable_nonce(value: str) -> bool:
    """RFC 5802 §7 ``printable``: one or more of %x21-2B / %x2D-7E (ASCII without ``,``)."""
    return bool(value) and all("\x21" <= ch <= "\x7e" and ch != "," for ch in value)


def prepare_username(raw: str, context: ServerContext, *, encoding_error: str) -> str:
    """The account name a client authenticates as, shared by every mechanism: SASLprep
    as a query (RFC 4013), then the server's canonical form (``context.prep_username``,
    Nodeprep), at most ``MAX_USERNAME_BYTES``.  A name that cannot be prepared at all is
    ``malformed-request`` with ``encoding_error`` as text; one no account can have is
    ``not-authorized``, like a wrong password."""
    from xmppx.auth._saslprep import SASLprepError, saslprep

    try:
        username = saslprep(raw, allow_unassigned=True)
    except SASLprepError:
        raise SASLFailure("malformed-request", encoding_error) from None
    if not username:
        raise SASLFailure("malformed-request", "empty user name")
    try:
        username = context.prep_username(username)
    except ValueError:
        raise SASLFailure("not-authorized", "invalid user name") from None
    if not username or len(username.encode("utf-8")) > MAX_USERNAME_BYTES:
        raise SASLFailure("not-authorized", "invalid user name")
    return username
