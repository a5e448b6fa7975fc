"""Channel-binding types for the SCRAM ``-PLUS`` mechanisms (RFC 5056, RFC 5802 §6).

The server computes the binding data of each TLS connection and passes it to the
mechanisms as ``{type: data}`` (``ServerContext.channel_bindings``); the client does the
same on its side.  The two types this server supports:

- ``tls-exporter`` (RFC 9266 §2): the TLS exporter (RFC 5705 / RFC 8446 §7.5) with label
  ``TLS_EXPORTER_LABEL``, an empty context and ``TLS_EXPORTER_LENGTH`` bytes.  The one
  type defined for TLS 1.3, and the one to prefer.  (Python's ``ssl`` module has no
  exporter API; the server gets it from its TLS layer.)
- ``tls-server-end-point`` (RFC 5929 §4): a hash of the server's certificate, computed
  by ``tls_server_end_point`` from the DER certificate alone, so it works with any TLS
  library, and only binds to the certificate, not the connection.

``tls-unique`` (RFC 5929 §3) is not offered: it is undefined for TLS 1.3 (RFC 9266 §1).
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = [
    "CB_TLS_EXPORTER",
    "CB_TLS_SERVER_END_POINT",
    "CHANNEL_BINDING_TYPES",
    "TLS_EXPORTER_LABEL",
    "TLS_EXPORTER_LENGTH",
    "tls_server_end_point",
]

CB_TLS_EXPORTER: Final = "tls-exporter"
CB_TLS_SERVER_END_POINT: Final = "tls-server-end-point"
#: The supported types, preferred first (RFC 9266 binds the connection itself).
CHANNEL_BINDING_TYPES: Final = (CB_TLS_EXPORTER, CB_TLS_SERVER_END_POINT)

#: RFC 9266 §2 exporter inputs: this label, no NUL, an empty context, 32 bytes.
TLS_EXPORTER_LABEL: Final = b"EXPORTER-Channel-Binding"
TLS_EXPORTER_LENGTH: Final = 32


def _oid(dotted: str) -> bytes:
    """DER content octets of an OBJECT IDENTIFIER (X.690 §8.19)."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


# RFC 5929 §4.1: the certificate's signature hash, except MD5 and SHA-1 become SHA-256.
_SIGNATURE_HASH: Final = {
    _oid("1.2.840.113549.1.1.4"): "sha256",  # md5WithRSAEncryption
    _oid("1.2.840.113549.1.1.5"): "sha256",  # sha1WithRSAEncryption
    _oid("1.2.840.113549.1.1.14"): "sha224",  # sha224WithRSAEncryption
    _oid("1.2.840.113549.1.1.11"): "sha256",  # sha256WithRSAEncryption
    _oid("1.2.840.113549.1.1.12"): "sha384",  # sha384WithRSAEncryption
    _oid("1.2.840.113549.1.1.13"): "sha512",  # sha512WithRSAEncryption
    _oid("1.2.840.10045.4.1"): "sha256",  # ecdsa-with-SHA1
    _oid("1.2.840.10045.4.3.1"): "sha224",  # ecdsa-with-SHA224
    _oid("1.2.840.10045.4.3.2"): "sha256",  # ecdsa-with-SHA256
    _oid("1.2.840.10045.4.3.3"): "sha384",  # ecdsa-with-SHA384
    _oid("1.2.840.10045.4.3.4"): "sha512",  # ecdsa-with-SHA512
    _oid("1.2.840.10040.4.3"): "sha256",  # dsa-with-sha1
    _oid("2.16.840.1.101.3.4.3.1"): "sha224",  # dsa-with-sha224
    _oid("2.16.840.1.101.3.4.3.2"): "sha256",  # dsa-with-sha256
}
_RSASSA_PSS: Final = _oid("1.2.840.113549.1.1.10")
# RFC 4055 §3.1 hashAlgorithm of RSASSA-PSS-params; SHA-1 (also the default) -> SHA-256.
_DIGEST_HASH: Final = {
    _oid("1.3.14.3.2.26"): "sha256",  # id-sha1
    _oid("2.16.840.1.101.3.4.2.4"): "sha224",
    _oid("2.16.840.1.101.3.4.2.1"): "sha256",
    _oid("2.16.840.1.101.3.4.2.2"): "sha384",
    _oid("2.16.840.1.101.3.4.2.3"): "sha512",
}

_SEQUENCE: Final = 0x30
_OBJECT_IDENTIFIER: Final = 0x06
_CONTEXT_0: Final = 0xA0  # [0] EXPLICIT, constructed


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read one DER TLV at ``pos``: ``(tag, content_start, content_end)``.  Only
    single-byte tags and definite lengths, which is all DER certificates use."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _expect(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    got, start, end = _read_tlv(data, pos)
    if got != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{got:02x}")
    return start, end


def _signature_hash(cert_der: bytes) -> str | None:
    """The hash RFC 5929 §4.1 names for this certificate, or ``None`` if undefined."""
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    start, _ = _expect(cert_der, 0, _SEQUENCE)
    _, _, tbs_end = _read_tlv(cert_der, start)
    alg_start, alg_end = _expect(cert_der, tbs_end, _SEQUENCE)
    # AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
    oid_start, oid_end = _expect(cert_der, alg_start, _OBJECT_IDENTIFIER)
    oid = cert_der[oid_start:oid_end]
    if oid in _SIGNATURE_HASH:
        return _SIGNATURE_HASH[oid]
    if oid != _RSASSA_PSS:
        return None  # e.g. Ed25519: no hash, so "undefined at this time" (RFC 5929 §4.1)
    # RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1,
    # ... }; absent parameters or an absent [0] mean SHA-1, hence SHA-256.
    if oid_end == alg_end:
        return "sha256"
    params_start, params_end = _expect(cert_der, oid_end, _SEQUENCE)
    if params_start == params_end:
        return "sha256"
    tag, inner_start, _ = _read_tlv(cert_der, params_start)
    if tag != _CONTEXT_0:
        return "sha256"
    hash_start, _ = _expect(cert_der, inner_start, _SEQUENCE)
    h_start, h_end = _expect(cert_der, hash_start, _OBJECT_IDENTIFIER)
    return _DIGEST_HASH.get(cert_der[h_start:h_end])


def tls_server_end_point(cert_der: bytes) -> bytes | None:
    """The ``tls-server-end-point`` channel-binding data for the server certificate
    ``cert_der`` (RFC 5929 §4.1): its hash with the certificate's signature hash, SHA-256
    when that is MD5 or SHA-1.  ``None`` when the binding is undefined (a signature with
    no single hash, e.g. Ed25519); raises ``ValueError`` for data that is not a DER
    certificate."""
    hash_name = _signature_hash(cert_der)
    if hash_name is None:
        return None
    return hashlib.new(hash_name, cert_der).digest()
