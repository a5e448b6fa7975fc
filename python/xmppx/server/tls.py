"""TLS for client streams: certificates, contexts and channel-binding data.

* On first run, when no certificate is configured, a self-signed one for the domain (and
  ``*.domain`` for components such as ``conference.domain``) is written into the data
  dir with the ``cryptography`` package; its key is readable by the owner only.
* Contexts allow TLS 1.2 and newer only (RFC 7590 §3.1 recommends TLS 1.2+), with ALPN
  ``xmpp-client`` for direct TLS (XEP-0368 §3).
* Channel binding: ``tls-server-end-point`` (RFC 5929 §4) is computed from our
  certificate by ``xmppx.auth.tls_server_end_point``.  ``tls-exporter`` (RFC 9266) needs
  the TLS keying-material exporter, which Python's ``ssl`` module does not expose, so it
  is not offered.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "CERT_VALIDITY_DAYS",
    "TLSFiles",
    "TLSSetupError",
    "ensure_certificate",
    "make_server_context",
]

#: A self-signed certificate for development and small deployments; a year, after which
#: a new one is made at start-up (operators with a real CA set ``tls.cert``/``tls.key``).
CERT_VALIDITY_DAYS: Final = 365


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
        ctx.set_alpn_protocols(["xmpp-client"])
    return ctx
