"""SCRAM credentials: what the server stores instead of passwords (RFC 5802 §3, §5).

From a password the server keeps only, per hash::

    SaltedPassword = Hi(SASLprep(password), salt, i)     # PBKDF2-HMAC (RFC 2898), §2.2
    ClientKey      = HMAC(SaltedPassword, "Client Key")
    StoredKey      = H(ClientKey)
    ServerKey      = HMAC(SaltedPassword, "Server Key")

``StoredKey`` checks a client proof and ``ServerKey`` signs the server's answer; neither
lets anyone log in as the user (they would need ``ClientKey``), and recovering the password
from them costs ``i`` PBKDF2 rounds per guess.  ``PLAIN`` logins are checked against the
same keys (``verify_password``), so one stored form serves every mechanism.

``ScramCredentials.to_rfc5803()`` gives the one-string form of RFC 5803 §3 for a storage
column: ``SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`` (base64 fields).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Final

from xmppx.auth._saslprep import SASLprepError, saslprep

__all__ = [
    "DEFAULT_SALT_BYTES",
    "DEFAULT_SCRAM_ITERATIONS",
    "HASH_NAMES",
    "ScramCredentials",
    "derive_scram_credentials",
    "fake_scram_credentials",
    "salted_password",
    "verify_password",
]

#: The SCRAM hashes, strongest first, as ``hashlib`` names them.
HASH_NAMES: Final = ("sha256", "sha1")

#: The SCRAM mechanism name of each hash (RFC 5802 §4, RFC 7677 §2).
SCRAM_MECHANISM_NAMES: Final = {"sha1": "SCRAM-SHA-1", "sha256": "SCRAM-SHA-256"}

#: PBKDF2 iterations for new credentials.  RFC 7677 §4 asks for at least 4096 (its 2015
#: figure); hardware has sped up since, so we take 10000.  Each PLAIN login costs the
#: server one derivation (about 2.5 ms of one core here, so a reconnect storm of 10000
#: PLAIN users costs about 25 s of CPU), and each SCRAM login costs the client one, which
#: a low-end phone still does well under a second.  Raising it strengthens stored keys
#: against offline guessing at exactly that price.  Config key ``auth.scram_iterations``.
DEFAULT_SCRAM_ITERATIONS: Final = 10_000

#: Salt length for new credentials: 128 random bits, as RFC 7677 §3's example uses and
#: NIST SP 800-132 §5.1 recommends as a minimum, so no two accounts share a salt.
DEFAULT_SALT_BYTES: Final = 16

_DIGEST_SIZE: Final = {name: hashlib.new(name).digest_size for name in HASH_NAMES}


@dataclass(frozen=True, kw_only=True, slots=True)
class ScramCredentials:
    """The SCRAM keys of one account for one hash (``"sha1"`` or ``"sha256"``).

    ``stored_key`` and ``server_key`` are secrets (with them one can impersonate the
    server to the user), so they are left out of ``repr``.
    """

    hash_name: str
    salt: bytes
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.hash_name not in HASH_NAMES:
            raise ValueError(f"hash_name must be one of {HASH_NAMES}, not {self.hash_name!r}")
        if not self.salt:
            raise ValueError("salt must not be empty")
        if self.iterations < 1:
            raise ValueError("iterations must be positive")
        size = _DIGEST_SIZE[self.hash_name]
        if len(self.stored_key) != size or len(self.server_key) != size:
            raise ValueError(f"{self.hash_name} keys are {size} bytes long")

    @property
    def mechanism(self) -> str:
        """The SCRAM mechanism these keys serve, e.g. ``"SCRAM-SHA-256"``."""
        return SCRAM_MECHANISM_NAMES[self.hash_name]

    def to_rfc5803(self) -> str:
        """The RFC 5803 §3 ``authPassword`` value: ``<mech>$<i>:<salt>$<stored>:<server>``."""
        b64 = base64.b64encode
        return (
            f"{self.mechanism}${self.iterations}:{b64(self.salt).decode()}"
            f"${b64(self.stored_key).decode()}:{b64(self.server_key).decode()}"
        )

    @classmethod
    def from_rfc5803(cls, value: str) -> ScramCredentials:
        """Parse ``to_rfc5803``'s form; ``ValueError`` if it is not one."""
        try:
            mech, info, keys = value.split("$")
            iterations, salt = info.split(":")
            stored_key, server_key = keys.split(":")
            hash_name = {v: k for k, v in SCRAM_MECHANISM_NAMES.items()}[mech]
            if not iterations.isdigit():
                raise ValueError(iterations)
            return cls(
                hash_name=hash_name,
                salt=b64decode_strict(salt),
                iterations=int(iterations),
                stored_key=b64decode_strict(stored_key),
                server_key=b64decode_strict(server_key),
            )
        except (ValueError, KeyError):
            raise ValueError("not an RFC 5803 SCRAM credential string") from None


def b64decode_strict(text: str) -> bytes:
    """Base64 exactly as RFC 4648 §4 writes it: the alphabet, padding to a multiple of 4,
    no whitespace.  Raises ``ValueError`` otherwise.  (``strict_mode`` alone still
    accepts surplus padding such as ``"biws="``.)"""
    if len(text) % 4:
        raise ValueError("base64 length is not a multiple of 4")
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("invalid base64") from None


def salted_password(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 §2.2 ``Hi(password, salt, i)``: PBKDF2-HMAC with the hash's output size.
    ``password`` is the UTF-8 of the SASLprepped password."""
    return hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)


def _keys(hash_name: str, salted: bytes) -> tuple[bytes, bytes, bytes]:
    """``(ClientKey, StoredKey, ServerKey)`` from a SaltedPassword (RFC 5802 §3)."""
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    server_key = hmac.digest(salted, b"Server Key", hash_name)
    return client_key, hashlib.new(hash_name, client_key).digest(), server_key


def derive_scram_credentials(
    password: str,
    hash_name: str,
    *,
    salt: bytes | None = None,
    iterations: int = DEFAULT_SCRAM_ITERATIONS,
) -> ScramCredentials:
    """The SCRAM keys to store for ``password`` (RFC 5802 §3).

    The password is prepared with SASLprep as a stored string (RFC 5802 §2.2
    ``Normalize``; unassigned code points refused).  ``salt`` defaults to
    ``DEFAULT_SALT_BYTES`` fresh random bytes.  Raises ``ValueError`` (``SASLprepError``
    for an unpreparable password) for an empty password, an unknown hash, an empty salt or
    a non-positive iteration count.
    """
    if hash_name not in HASH_NAMES:
        raise ValueError(f"hash_name must be one of {HASH_NAMES}, not {hash_name!r}")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    prepared = saslprep(password)
    if not prepared:
        raise ValueError("the password is empty after SASLprep")
    if salt is None:
        salt = os.urandom(DEFAULT_SALT_BYTES)
    elif not salt:
        raise ValueError("salt must not be empty")
    salted = salted_password(hash_name, prepared.encode("utf-8"), salt, iterations)
    _, stored_key, server_key = _keys(hash_name, salted)
    return ScramCredentials(
        hash_name=hash_name,
        salt=salt,
        iterations=iterations,
        stored_key=stored_key,
        server_key=server_key,
    )


def verify_password(password: str, credentials: ScramCredentials) -> bool:
    """Whether ``password`` is the one ``credentials`` were derived from, for ``PLAIN``
    (RFC 4616 §5 checks the password; we check it against the SCRAM keys).

    Derives ClientKey with the stored salt and iterations, hashes it to StoredKey and
    compares in constant time (``hmac.compare_digest``).  The password is SASLprepped as a
    query string; one that cannot be prepared cannot match and gives ``False`` after the
    same derivation work, so timing does not tell the two apart.
    """
    try:
        prepared = saslprep(password, allow_unassigned=True).encode("utf-8")
        ok = bool(prepared)
    except SASLprepError:
        prepared, ok = password.encode("utf-8", "surrogatepass"), False
    salted = salted_password(
        credentials.hash_name, prepared, credentials.salt, credentials.iterations
    )
    _, stored_key, _ = _keys(credentials.hash_name, salted)
    return hmac.compare_digest(stored_key, credentials.stored_key) and ok


def fake_scram_credentials(
    secret: bytes,
    hash_name: str,
    username: str,
    *,
    iterations: int = DEFAULT_SCRAM_ITERATIONS,
    salt_bytes: int = DEFAULT_SALT_BYTES,
) -> ScramCredentials:
    """Credentials for a user that does not exist, so its SCRAM exchange looks like a real
    one up to the final ``not-authorized`` (RFC 5802 §9 asks servers not to reveal whether
    a user exists).

    The salt is ``HMAC-SHA-256(secret, label || hash || username)`` truncated to
    ``salt_bytes``: the same name always gets the same salt (as a real account would),
    while without ``secret`` it cannot be told from a random one.  The keys come from the
    same HMAC under another label; no password matches them (that would need a SHA
    preimage), and mechanisms also refuse fake credentials explicitly.
    """
    if hash_name not in HASH_NAMES:
        raise ValueError(f"hash_name must be one of {HASH_NAMES}, not {hash_name!r}")
    tail = hash_name.encode("ascii") + b"\x00" + username.encode("utf-8", "surrogatepass")
    salt = hmac.digest(secret, b"xmppx fake salt\x00" + tail, "sha256")[:salt_bytes]
    keys = hmac.digest(secret, b"xmppx fake keys\x00" + tail, "sha512")
    size = _DIGEST_SIZE[hash_name]
    return ScramCredentials(
        hash_name=hash_name,
        salt=salt,
        iterations=iterations,
        stored_key=keys[:size],
        server_key=keys[32 : 32 + size],
    )
