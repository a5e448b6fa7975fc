"""The configuration table: defaults, files, overrides, errors, and the README reference."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from xmppx.server.config import OPTIONS, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_readme_documents_every_option_exactly() -> None:
    """README's table is scripts/config-reference's output: docs cannot drift."""
    table = runpy.run_path(str(ROOT / "scripts" / "config-reference"))["table"]()
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")


def test_defaults_serve_localhost_with_tls_required(tmp_path: Path) -> None:
    cfg = load_config(None, data_dir=str(tmp_path))
    assert cfg.domain == "localhost"
    assert cfg["tls.enabled"] and cfg["tls.required"]
    assert cfg.storage_url == f"sqlite:///{tmp_path}/xmppx.db"
    assert cfg["c2s.port"] == 5222 and cfg["c2s.tls_port"] == 5223
    assert not cfg["register.enabled"] and not cfg["auth.legacy_iq_auth"]
    assert {o.key for o in OPTIONS} == set(cfg.values)


def test_a_relative_data_dir_is_taken_from_where_the_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--data-dir srv: the database and the certificate both go to ./srv, not /srv."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, data_dir="srv")
    assert cfg.data_dir == tmp_path / "srv"
    assert cfg.storage_url == f"sqlite:///{tmp_path}/srv/xmppx.db"


def test_file_then_flags(tmp_path: Path) -> None:
    conf = tmp_path / "x.toml"
    conf.write_text("domain = 'Example.COM.'\n[c2s]\nport = 15222\n[limits]\nmax_depth = 8\n")
    cfg = load_config(conf, c2s__port=25222, data_dir=str(tmp_path))
    assert cfg.domain == "example.com", "the domain is a prepared JID domainpart"
    assert cfg["c2s.port"] == 25222, "flags override the file"
    assert cfg["limits.max_depth"] == 8


def test_im_and_muc_limits_from_a_file(tmp_path: Path) -> None:
    """The IM and MUC limits are ordinary options (issues 4 and 5): a TOML file sets
    them, integers are accepted where a float is meant, and the domain is prepared."""
    conf = tmp_path / "x.toml"
    conf.write_text(
        "[offline]\nquota = 20000\n[roster]\nmax_items = 5000\n"
        "[muc]\ndomain = 'Rooms.Localhost'\nmax_occupants = 1000\nhistory_size = 0\n"
        "message_rate = 1000000\nmessage_burst = 1000000\nmax_rooms_per_user = 3\n"
    )
    cfg = load_config(conf, data_dir=str(tmp_path))
    assert cfg["offline.quota"] == 20_000 and cfg["roster.max_items"] == 5000
    assert cfg["muc.domain"] == "rooms.localhost"
    assert cfg["muc.message_rate"] == 1e6 and isinstance(cfg["muc.message_rate"], float)
    assert (cfg["muc.max_occupants"], cfg["muc.history_size"], cfg["muc.message_burst"]) == (
        1000,
        0,
        1_000_000,
    )
    assert cfg["muc.max_rooms_per_user"] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[c2s]\nport = 70000\n", "option 'c2s.port': 70000 is not a port number"),
        ("[limits]\nmax_depth = 0\n", "option 'limits.max_depth' must be positive"),
        ("[tls]\ncert = '/x.crt'\n", "options 'tls.cert' and 'tls.key' must be set together"),
        ("admins = ['not a jid@']\n", "option 'admins': 'not a jid@' is not a JID"),
        ("[log]\nlevel = 'loud'\n", "option 'log.level': 'loud' is not a log level"),
        ("domain = 'user@example.com'\n", "must be a bare domain"),
        ("[c2s]\nport = true\n", "option 'c2s.port' must be int, not bool"),
        ("[offline]\nquota = 0\n", "option 'offline.quota' must be positive"),
        ("[limits]\nc2s_rate = -1\n", "option 'limits.c2s_rate' must be 0 (no limit) or"),
        ("[limits]\nc2s_rate = 100\n", "option 'limits.c2s_rate' must be 0 (no limit) or"),
        ("[limits]\nc2s_burst = 0\n", "option 'limits.c2s_burst' must be positive"),
        ("[roster]\nmax_items = -1\n", "option 'roster.max_items' must be positive"),
        ("[muc]\nmessage_rate = 0\n", "option 'muc.message_rate' must be positive"),
        ("[storage]\ntimeout = 0\n", "option 'storage.timeout' must be positive"),
        ("[storage]\npool_size = 0\n", "option 'storage.pool_size' must be positive"),
        ("[muc]\nhistory_size = -1\n", "option 'muc.history_size' must not be negative"),
        ("[muc]\nmessage_rate = nan\n", "option 'muc.message_rate' must be a finite number"),
        ("[ping]\ninterval = inf\n", "option 'ping.interval' must be a finite number"),
        ("[muc]\ndomain = 'localhost'\n", "option 'muc.domain' must differ from 'domain'"),
        ("[muc]\ndomain = 'rooms@localhost'\n", "option 'muc.domain': 'rooms@localhost' must"),
        ("[muc]\ndomain = 'a b'\n", "option 'muc.domain': 'a b' is not a valid domain"),
        ("[muc]\nmax_occupants = '500'\n", "option 'muc.max_occupants' must be int, not str"),
        ("[limits]\nheader_timeout = 0\n", "option 'limits.header_timeout' must be positive"),
        ("[limits]\nclose_timeout = -1\n", "option 'limits.close_timeout' must be positive"),
        ("[ping]\ntimeout = 0\n", "option 'ping.timeout' must be positive"),
        (
            "[limits]\nmax_unauthenticated_per_address = 0\n",
            "option 'limits.max_unauthenticated_per_address' must be positive",
        ),
        (
            "[limits]\nwrite_buffer_bytes = 1000\n",
            "option 'limits.write_buffer_bytes' must be at least 'limits.stanza_bytes'",
        ),
        (
            "[auth]\nthrottle_base_ms = 9000\nthrottle_max_ms = 100\n",
            "option 'auth.throttle_base_ms' must not exceed 'auth.throttle_max_ms'",
        ),
        ("admins = [5]\n", "option 'admins': 5 is not a string"),
        ("[c2s]\nhosts = []\n", "option 'c2s.hosts' must name at least one address"),
        ("storage = 'mysql://db/x'\n", "option 'storage': unsupported storage URL scheme 'mysql'"),
        ("storage = 'xmppx.db'\n", "option 'storage': storage URL 'xmppx.db' has no scheme"),
    ],
)
def test_errors_name_the_option(tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    assert message in str(info.value)


def test_module_fallbacks_are_the_documented_defaults() -> None:
    """A module embedded with a hand-made ``Config`` that lacks one of its keys falls
    back to its own constant (``Module.setting``); each must be the default the README
    documents for that key, so the two never disagree."""
    from xmppx.modules import blocking, offline, private, roster, vcard
    from xmppx.modules.muc import _service as muc

    defaults = {o.key: o.default for o in OPTIONS}
    fallbacks = {
        "roster.max_items": roster.MAX_ROSTER_ITEMS,
        "offline.quota": offline.OFFLINE_QUOTA,
        "blocking.max_items": blocking.MAX_BLOCKED,
        "vcard.max_bytes": vcard.MAX_VCARD_BYTES,
        "private.max_bytes": private.MAX_PRIVATE_BYTES,
        "private.quota_bytes": private.PRIVATE_QUOTA_BYTES,
        "muc.max_rooms_per_user": muc.MAX_ROOMS_PER_USER,
        "muc.max_occupants": muc.MAX_OCCUPANTS,
        "muc.history_size": muc.HISTORY_SIZE,
        "muc.history_max_bytes": muc.HISTORY_BYTES,
        "muc.max_subject_chars": muc.MAX_SUBJECT_CHARS,
        "muc.message_rate": muc.MESSAGE_RATE,
        "muc.message_burst": muc.MESSAGE_BURST,
    }
    assert {key: defaults[key] for key in fallbacks} == fallbacks
