"""TLS for client streams: certificates, contexts and channel-binding data.

* On first run, when no certificate is configured, a self-signed one for the domain (and
  ``*.domain`` for components such as ``conference.domain``) is written into the data
  dir with the ``cryptography`` package; its key is readable by the owner only.
* Contexts allow TLS 1.2 and newer only (RFC 7590 §3.1 recommends TLS 1.2+), with ALPN
  ``xmpp-client`` for direct TLS (XEP-0368 §3).
* On the direct TLS port the ClientHello is read before the handshake
  (``client_hello_alpn``, ``peek_client_hello``): one whose ALPN list lacks
  ``xmpp-client`` is refused with a fatal ``no_application_protocol`` alert, as RFC 7301
  §3.2 requires and as the defence against cross-protocol attacks (ALPACA) needs.
  Python's ``ssl`` cannot do this itself: with no protocol in common it completes the
  handshake without ALPN, exactly as for a client that offered none.  A ClientHello
  with no ALPN extension is accepted (clients from before XEP-0368 named it); one that
  cannot be read here (``HelloRead.UNREADABLE``) is refused, so that no way of cutting
  the bytes hides a list from this check and not from OpenSSL.
* Channel binding: ``tls-server-end-point`` (RFC 5929 §4) is computed from our
  certificate by ``xmppx.auth.tls_server_end_point``.  ``tls-exporter`` (RFC 9266) needs
  the TLS keying-material exporter, which Python's ``ssl`` module does not expose, so it
  is not offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "ALPN_XMPP_CLIENT",
    "CERT_VALIDITY_DAYS",
    "CLIENT_HELLO_MAX_BYTES",
    "NEED_MORE",
    "UNREADABLE",
    "HelloRead",
    "TLSFiles",
    "TLSSetupError",
    "client_hello_alpn",
    "ensure_certificate",
    "make_server_context",
    "peek_client_hello",
    "refuse_application_protocol",
]

#: A self-signed certificate for development and small deployments; a year, after which
#: a new one is made at start-up (operators with a real CA set ``tls.cert``/``tls.key``).
CERT_VALIDITY_DAYS: Final = 365
#: The ALPN protocol name of client-to-server XMPP (XEP-0368 §3).
ALPN_XMPP_CLIENT: Final = b"xmpp-client"


class TLSSetupError(Exception):
    """The certificate or key cannot be read or used; the message names the file."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TLSFiles:
    cert: Path
    key: Path


def ensure_certificate(data_dir: Path, domain: str) -> TLSFiles:
    """Return the self-signed certificate for ``domain`` in ``data_dir``, making one if it
    is missing, expired or for another domain."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path = data_dir / f"{domain}.crt"
    key_path = data_dir / f"{domain}.key"
    now = datetime.datetime.now(datetime.UTC)
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.not_valid_after_utc > now + datetime.timedelta(days=1):
                return TLSFiles(cert=cert_path, key=key_path)
        except ValueError:
            pass  # unreadable: make a new one
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    alt: list[x509.GeneralName]
    try:
        alt = [x509.IPAddress(ipaddress.ip_address(domain))]
    except ValueError:
        # an internationalized domain goes in as its A-label (RFC 5280 §4.2.1.6)
        a_label = domain.encode("idna").decode("ascii")
        alt = [x509.DNSName(a_label), x509.DNSName(f"*.{a_label}")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TLSFiles(cert=cert_path, key=key_path)


def make_server_context(files: TLSFiles, *, alpn: bool = False) -> ssl.SSLContext:
    """A server ``SSLContext``: TLS 1.2+, our certificate, ALPN ``xmpp-client`` if asked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    for path in (files.cert, files.key):
        if not path.exists():
            raise TLSSetupError(f"TLS file {path} does not exist")
        if not os.access(path, os.R_OK):
            raise TLSSetupError(f"TLS file {path} is not readable")
    try:
        ctx.load_cert_chain(str(files.cert), str(files.key))
    except OSError as exc:
        raise TLSSetupError(f"cannot read TLS files {files.cert}, {files.key}: {exc}") from None
    except ssl.SSLError as exc:
        raise TLSSetupError(
            f"cannot use certificate {files.cert} with key {files.key}: {exc.reason}"
        ) from None
    if alpn:
        ctx.set_alpn_protocols([ALPN_XMPP_CLIENT.decode()])
    return ctx


# -- ALPN on the direct TLS port (RFC 7301 §3.2) -------------------------------------------
#: The most bytes read (peeked at) for a ClientHello before the handshake, records
#: included: a ClientHello with post-quantum key shares is a few KiB.  One that does
#: not fit is refused (``UNREADABLE``), as one that cannot be read is.
CLIENT_HELLO_MAX_BYTES: Final = 1 << 15


class HelloRead(enum.Enum):
    """What ``client_hello_alpn`` says when it has no list of names to give."""

    #: The bytes end before the ClientHello does.
    NEED_MORE = "need more"
    #: Not a ClientHello that can be read within ``CLIENT_HELLO_MAX_BYTES``: another
    #: record type first, an SSL 2 hello, a length running past its container, a
    #: malformed ALPN list.  A client that means to speak TLS sends none of these, and
    #: what the TLS library would make of them cannot be told here, so it is refused.
    UNREADABLE = "unreadable"


NEED_MORE: Final = HelloRead.NEED_MORE
UNREADABLE: Final = HelloRead.UNREADABLE
#: A fatal ``no_application_protocol`` alert (RFC 7301 §3.2, code 120; RFC 8446 §6) in a
#: plaintext TLS record, as sent before any handshake message.
_NO_APPLICATION_PROTOCOL_ALERT: Final = bytes((21, 3, 3, 0, 2, 2, 120))

_HANDSHAKE_RECORD: Final = 22
_CLIENT_HELLO: Final = 1
_ALPN_EXTENSION: Final = 16
_MAX_RECORD: Final = 1 << 14


def client_hello_alpn(data: bytes) -> tuple[bytes, ...] | HelloRead | None:
    """The ALPN protocol names the ClientHello at the start of ``data`` offers (RFC 7301
    §3.1, in the ``application_layer_protocol_negotiation`` extension), read across as
    many handshake records as it spans (RFC 8446 §5.1: how a handshake message is cut
    into records is not part of the handshake, and a man in the middle may change it).

    Returns the names (an empty tuple for an empty list); ``None`` when there is no
    ALPN extension; ``NEED_MORE`` when ``data`` ends before the ClientHello does;
    ``UNREADABLE`` otherwise (``HelloRead``).  An empty handshake record, which RFC 8446
    §5.1 forbids sending but OpenSSL reads as nothing, is read as nothing here too.
    """
    body = bytearray()
    pos = 0
    while True:
        if pos > CLIENT_HELLO_MAX_BYTES:
            return UNREADABLE
        if len(data) < pos + 5:
            return NEED_MORE
        if data[pos] != _HANDSHAKE_RECORD:
            return UNREADABLE
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length > _MAX_RECORD:
            return UNREADABLE
        if len(data) < pos + 5 + length:
            return NEED_MORE
        body += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(body) >= 4:
            if body[0] != _CLIENT_HELLO:
                return UNREADABLE
            size = int.from_bytes(body[1:4], "big")
            if 4 + size > CLIENT_HELLO_MAX_BYTES:
                return UNREADABLE
            if len(body) >= 4 + size:
                return _alpn_of_hello(bytes(body[4 : 4 + size]))


def _alpn_of_hello(hello: bytes) -> tuple[bytes, ...] | HelloRead | None:
    """RFC 8446 §4.1.2's ClientHello body (the TLS 1.2 layout is the same up to the
    extensions): version, random, session id, cipher suites, compression methods,
    extensions."""
    try:
        p = 2 + 32
        p += 1 + hello[p]  # legacy_session_id
        p += 2 + int.from_bytes(hello[p : p + 2], "big")  # cipher_suites
        p += 1 + hello[p]  # legacy_compression_methods
        if p == len(hello):
            return None  # no extensions at all
        end = p + 2 + int.from_bytes(hello[p : p + 2], "big")
        if end != len(hello):
            return UNREADABLE
        p += 2
        while p < end:
            if p + 4 > end:
                return UNREADABLE
            kind = int.from_bytes(hello[p : p + 2], "big")
            size = int.from_bytes(hello[p + 2 : p + 4], "big")
            p += 4
            if p + size > end:
                return UNREADABLE
            if kind == _ALPN_EXTENSION:
                return _protocol_names(hello[p : p + size])
            p += size
    except IndexError:
        return UNREADABLE
    return None


def _protocol_names(ext: bytes) -> tuple[bytes, ...] | HelloRead:
    """RFC 7301 §3.1's ``ProtocolNameList``."""
    if len(ext) < 2 or int.from_bytes(ext[:2], "big") != len(ext) - 2:
        return UNREADABLE
    names: list[bytes] = []
    p = 2
    while p < len(ext):
        size = ext[p]
        if size == 0 or p + 1 + size > len(ext):
            return UNREADABLE
        names.append(ext[p + 1 : p + 1 + size])
        p += 1 + size
    return tuple(names)


async def peek_client_hello(sock: socket.socket) -> tuple[bytes, ...] | HelloRead | None:
    """Wait for the ClientHello on the accepted, non-blocking ``sock`` and return what
    ``client_hello_alpn`` reads in it (never ``NEED_MORE``), without taking the bytes off
    the socket (``MSG_PEEK``): the TLS handshake reads them afterwards.  A peer that
    closes first, or sends more than ``CLIENT_HELLO_MAX_BYTES`` without completing one,
    is ``UNREADABLE``.  Bytes already there do not make the socket unreadable, so while
    a ClientHello arrives in pieces it is looked at again after a pause (5 ms, doubling
    to 200 ms); the caller bounds the wait."""
    loop = asyncio.get_running_loop()
    pause = 0.005
    while True:
        ready = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        try:
            data = sock.recv(CLIENT_HELLO_MAX_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            return UNREADABLE
        if not data:
            return UNREADABLE
        offer = client_hello_alpn(data)
        if offer is not NEED_MORE:
            return offer
        if len(data) >= CLIENT_HELLO_MAX_BYTES:
            return UNREADABLE
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)


def refuse_application_protocol(sock: socket.socket) -> None:
    """End a direct TLS connection whose ClientHello offers no protocol of ours with
    RFC 7301 §3.2's fatal ``no_application_protocol`` alert, and close ``sock``.  The
    ClientHello is read off the socket first: closing a socket with unread bytes sends
    a reset, which could reach the client before the alert."""
    with contextlib.suppress(OSError):
        sock.recv(CLIENT_HELLO_MAX_BYTES)
        sock.send(_NO_APPLICATION_PROTOCOL_ALERT)
        sock.shutdown(socket.SHUT_WR)
    sock.close()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
