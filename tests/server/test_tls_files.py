"""The server's own TLS files: the self-signed certificate made on first run (RFC 6125
names, a private data dir), and reading an operator's PEM file as OpenSSL does."""

from __future__ import annotations

import logging
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from xmppx.server._server import _first_cert_der
from xmppx.server.tls import ensure_certificate


def test_an_internationalized_domain_is_named_by_its_a_label(tmp_path: Path) -> None:
    """RFC 5280 §4.2.1.6: a dNSName is an A-label; 'münchen.example' used to crash the
    first run."""
    files = ensure_certificate(tmp_path / "data", "münchen.example")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "xn--mnchen-3ya.example",
        "*.xn--mnchen-3ya.example",
    ]


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    """The data dir holds the key, the server secret and the database (SCRAM keys,
    messages): made readable by its owner only."""
    data = tmp_path / "data"
    ensure_certificate(data, "localhost")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_the_certificate_is_read_after_whatever_precedes_it(tmp_path: Path) -> None:
    """A PEM file from ``openssl pkcs12 -nokeys`` starts with "Bag Attributes", and a
    key and its certificate may share one file: the channel-binding hash (RFC 5929)
    is taken from the first certificate, wherever it starts."""
    files = ensure_certificate(tmp_path / "data", "localhost")
    pem = files.cert.read_text()
    mixed = tmp_path / "mixed.pem"
    mixed.write_text("Bag Attributes\n    friendlyName: xmpp\n" + files.key.read_text() + pem)
    assert _first_cert_der(mixed) == ssl.PEM_cert_to_DER_cert(pem)


async def test_a_data_dir_others_may_enter_is_warned_about(
    tmp_path: Path, make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An existing data dir keeps the mode the operator gave it, but one that other
    users may enter (0755, a common default) is named at startup with what to do; a
    private one is not."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="xmppx.server"):
        await make_server(data_dir=str(shared), users=())
    warned = [r.getMessage() for r in caplog.records if "chmod 700" in r.getMessage()]
    assert warned == [
        f"data dir {shared} has mode 0755: other users may read what it holds "
        "(SCRAM keys, messages, the TLS key); chmod 700 it"
    ]
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755, "the mode is the operator's"
    caplog.clear()
    private = tmp_path / "private"
    with caplog.at_level(logging.WARNING, logger="xmppx.server"):
        await make_server(data_dir=str(private), users=())
    assert not [r for r in caplog.records if "chmod 700" in r.getMessage()]
