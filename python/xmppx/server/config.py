"""Server configuration: every option, its default and its meaning, in one table.

The same table drives the TOML loader (``--config FILE``), the CLI flags that override it,
``--check-config`` and the README's configuration reference.  With no file and no flags the
server serves ``localhost`` from a per-user data directory with SQLite storage and a
self-signed certificate made on first run.

Errors name the problem in one line (``ConfigError``): an unknown key, a wrong type, a bad
value.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from xmppx.core import JIDError, parse_jid

__all__ = ["OPTIONS", "Config", "ConfigError", "Option", "default_data_dir", "load_config"]


class ConfigError(Exception):
    """A configuration problem, with a one-line message naming the key and the fault."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Option:
    """One configuration key: dotted TOML path, Python type, default and documentation."""

    key: str
    type: type
    default: Any
    doc: str
    flag: str | None = None  # the CLI flag that overrides it, if any


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/xmppx`` (``~/.local/share/xmppx``), or ``/var/lib/xmppx`` as root."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "xmppx"
    if os.geteuid() == 0 if hasattr(os, "geteuid") else False:
        return Path("/var/lib/xmppx")
    return Path.home() / ".local" / "share" / "xmppx"


#: Every option.  Limits carry the reason for their number in ``doc``.
OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        key="domain",
        type=str,
        default="localhost",
        flag="--domain",
        doc="The XMPP domain served (the part after @ in user JIDs).",
    ),
    Option(
        key="data_dir",
        type=str,
        default="",
        flag="--data-dir",
        doc="Where the database, certificate and key live "
        "(default: $XDG_DATA_HOME/xmppx, ~/.local/share/xmppx, or /var/lib/xmppx as root); "
        "a relative path is taken from the directory the server starts in.",
    ),
    Option(
        key="storage",
        type=str,
        default="",
        flag="--storage",
        doc="Storage URL: sqlite:///path/to/file.db or postgresql://user:pass@host:port/db "
        "(default: sqlite in the data dir).",
    ),
    Option(
        key="storage.pool_size",
        type=int,
        default=10,
        doc="PostgreSQL connections this server keeps: enough to overlap a busy node's "
        "store calls, while ~9 nodes stay below PostgreSQL's default max_connections=100.",
    ),
    Option(
        key="storage.timeout",
        type=float,
        default=30.0,
        doc="Seconds PostgreSQL may take to accept a connection, lend a pooled one or run "
        "one statement before the call fails (the client gets an error, the log says "
        "why): a database that stops answering must not hang the server.",
    ),
    Option(
        key="admins",
        type=list,
        default=[],
        doc="Bare JIDs allowed to run the XEP-0133 admin commands.",
    ),
    Option(
        key="c2s.hosts",
        type=list,
        default=["0.0.0.0", "::"],
        flag="--host",
        doc="Addresses the client listeners bind (IPv4 and IPv6 by default).",
    ),
    Option(
        key="c2s.port",
        type=int,
        default=5222,
        flag="--c2s-port",
        doc="Client port with STARTTLS (RFC 6120 §5); -1 disables it, 0 picks a free port.",
    ),
    Option(
        key="c2s.tls_port",
        type=int,
        default=5223,
        flag="--c2s-tls-port",
        doc="Client port with direct TLS (XEP-0368); -1 disables it, 0 picks a free port.",
    ),
    Option(
        key="tls.enabled",
        type=bool,
        default=True,
        doc="Offer TLS at all.  Turning it off (plaintext only) is meant for loopback tests.",
    ),
    Option(
        key="tls.required",
        type=bool,
        default=True,
        doc="Refuse authentication until TLS is active (RFC 6120 §5.3.1, 'encryption-required').",
    ),
    Option(
        key="tls.cert",
        type=str,
        default="",
        doc="PEM certificate chain; empty: a self-signed one is made in the data dir.",
    ),
    Option(key="tls.key", type=str, default="", doc="PEM private key for tls.cert."),
    Option(key="auth.plain", type=bool, default=True, doc="Offer SASL PLAIN (only ever over TLS)."),
    Option(
        key="auth.max_attempts",
        type=int,
        default=3,
        doc="Failed SASL (and XEP-0078) attempts per stream before it is closed (RFC 6120 "
        "§6.4.5: 2 to 5).",
    ),
    Option(
        key="auth.legacy_iq_auth",
        type=bool,
        default=False,
        doc="Allow XEP-0078 jabber:iq:auth for old clients (plaintext variant over TLS only).",
    ),
    Option(
        key="auth.throttle_base_ms",
        type=int,
        default=100,
        doc="Spacing of password checks for one account, and for an address once it has "
        "failed: a login waits its turn before its password is checked, right or wrong, and "
        "the spacing doubles per failure, so 200 guesses take over a minute however many "
        "connections make them.",
    ),
    Option(
        key="auth.throttle_max_ms",
        type=int,
        default=5000,
        doc="Largest spacing, and the longest a login waits for its turn: one that would "
        "wait longer is not checked but answered 'temporary-auth-failure' (RFC 6120 "
        "§6.5.12).",
    ),
    Option(
        key="register.enabled", type=bool, default=False, doc="Allow XEP-0077 in-band registration."
    ),
    Option(
        key="register.per_address_per_hour",
        type=int,
        default=5,
        doc="In-band registrations allowed per client address per hour.",
    ),
    Option(
        key="limits.preauth_stanza_bytes",
        type=int,
        default=10_000,
        doc="Largest element before authentication (announced with XEP-0478); negotiation "
        "needs a few hundred bytes.",
    ),
    Option(
        key="limits.stanza_bytes",
        type=int,
        default=262_144,
        doc="Largest stanza after authentication (256 KiB, as Prosody and ejabberd).",
    ),
    Option(
        key="limits.max_depth",
        type=int,
        default=32,
        doc="Deepest element nesting in a stanza (real stanzas stay under 10).",
    ),
    Option(
        key="limits.max_attributes", type=int, default=64, doc="Most attributes on one element."
    ),
    Option(
        key="limits.header_timeout",
        type=float,
        default=10.0,
        doc="Seconds a new connection has to send its stream header ('connection-timeout').",
    ),
    Option(
        key="limits.negotiation_timeout",
        type=float,
        default=30.0,
        doc="Seconds from connect to a bound resource ('connection-timeout').",
    ),
    Option(
        key="limits.close_timeout",
        type=float,
        default=5.0,
        doc="Seconds to wait for the peer's </stream:stream> before closing the socket.",
    ),
    Option(
        key="limits.max_unauthenticated_per_address",
        type=int,
        default=64,
        doc="Concurrent connections per address that have not authenticated yet.",
    ),
    Option(
        key="limits.max_connections",
        type=int,
        default=50_000,
        doc="Concurrent client connections in all; new ones beyond are refused.",
    ),
    Option(
        key="limits.c2s_rate",
        type=int,
        default=65_536,
        doc="Bytes per second one client connection may send, sustained (a token bucket, "
        "as ejabberd's shapers and Prosody's mod_limits); above it the server stops "
        "reading that connection until it is back within the rate.  0: no limit; else at "
        "least 1024.",
    ),
    Option(
        key="limits.c2s_burst",
        type=int,
        default=524_288,
        doc="Bytes a client connection may send at once above limits.c2s_rate (an avatar "
        "or a large roster upload passes without a pause).",
    ),
    Option(
        key="limits.write_buffer_bytes",
        type=int,
        default=1_048_576,
        doc="Bytes queued towards one slow reader before its connection is cut (no "
        "stream error: it is not reading); at a quarter of this, reading from it pauses "
        "and offline delivery waits.  At least limits.stanza_bytes.",
    ),
    Option(
        key="roster.max_items",
        type=int,
        default=1000,
        doc="Contacts per roster; adding one more is 'not-allowed' (RFC 6121 §2.3.3).  "
        "Generous for people, bounded for the storage and every login's roster read.",
    ),
    Option(
        key="offline.quota",
        type=int,
        default=100,
        doc="Offline messages kept per user; beyond it the sender gets "
        "'service-unavailable' (XEP-0160 §3).  ejabberd's default for ordinary users.",
    ),
    Option(
        key="presence.max_directed",
        type=int,
        default=1000,
        doc="JIDs one session may have sent directed presence to (RFC 6121 §4.6), each "
        "told when it goes offline; presence to one more is 'policy-violation'.  Every "
        "room joined is one, until the room says the occupant is gone (left, kicked, "
        "renamed).",
    ),
    Option(
        key="blocking.max_items",
        type=int,
        default=1000,
        doc="JIDs on one user's blocklist (XEP-0191); more is 'not-allowed'.",
    ),
    Option(
        key="vcard.max_bytes",
        type=int,
        default=131_072,
        doc="Largest vcard-temp (XEP-0054) a user may store: room for a small avatar "
        "photo; larger is 'not-acceptable'.",
    ),
    Option(
        key="private.max_bytes",
        type=int,
        default=65_536,
        doc="Largest XEP-0049 private XML fragment; larger is 'not-acceptable'.",
    ),
    Option(
        key="private.quota_bytes",
        type=int,
        default=1_048_576,
        doc="All of one account's XEP-0049 private XML fragments together; a set beyond "
        "it is 'not-acceptable'.  At least private.max_bytes.",
    ),
    Option(
        key="muc.enabled",
        type=bool,
        default=True,
        doc="Run the XEP-0045 multi-user chat service.",
    ),
    Option(
        key="muc.domain",
        type=str,
        default="",
        doc="Domain of the multi-user chat service (default: conference.<domain>).",
    ),
    Option(
        key="muc.max_rooms_per_user",
        type=int,
        default=50,
        doc="Rooms one user may own; creating another is 'not-allowed' (XEP-0045 §10.1.1).",
    ),
    Option(
        key="muc.max_occupants",
        type=int,
        default=500,
        doc="Occupants per room, and the highest maxusers an owner may configure; a join "
        "beyond it is 'service-unavailable' (XEP-0045 §7.2.9), though admins and owners "
        "get 10 more seats.",
    ),
    Option(
        key="muc.history_size",
        type=int,
        default=50,
        doc="Messages of discussion history kept per room (XEP-0045 §7.2.15); 0 keeps none.",
    ),
    Option(
        key="muc.history_max_bytes",
        type=int,
        default=1_048_576,
        doc="Bytes of discussion history kept per room, as serialized: past it the oldest "
        "messages go first, so a room full of large messages holds no more than this.",
    ),
    Option(
        key="muc.max_subject_chars",
        type=int,
        default=1024,
        doc="Characters of a room's subject (XEP-0045 §8.1), which every entrant gets; "
        "a longer one is 'not-acceptable'.",
    ),
    Option(
        key="muc.message_rate",
        type=float,
        default=2.0,
        doc="Groupchat messages, subject changes, availability and nick changes per second "
        "one occupant may send to a room, sustained (the room copies each to every "
        "occupant); beyond the burst it is answered with 'policy-violation' (RFC 6120 "
        "§8.3.3.12).",
    ),
    Option(
        key="muc.message_burst",
        type=int,
        default=10,
        doc="Groupchat messages an occupant may send at once above muc.message_rate "
        "(a pasted paragraph fits, a flood does not).",
    ),
    Option(
        key="csi.queue_size",
        type=int,
        default=100,
        doc="Stanzas held for a client that said it is inactive (XEP-0352) before they are "
        "sent anyway (as they are once they reach half of limits.write_buffer_bytes); "
        "0 holds none.",
    ),
    Option(
        key="sm.enabled",
        type=bool,
        default=True,
        doc="Offer XEP-0198 stream management (acknowledgements and resumption).",
    ),
    Option(
        key="sm.resume_timeout",
        type=float,
        default=300.0,
        doc="Seconds a resumable session whose connection broke waits for its client to "
        "resume it (XEP-0198 §5), still available, its stanzas queued (at most "
        "limits.write_buffer_bytes of them); 0 makes sessions not resumable.",
    ),
    Option(
        key="sm.max_queue",
        type=int,
        default=1000,
        doc="Stanzas a client is given without acknowledging them (XEP-0198), hibernating "
        "or not; one more is not written: the stream ends with 'resource-constraint' and "
        "what was not acknowledged counts as undelivered.",
    ),
    Option(
        key="ping.interval",
        type=float,
        default=300.0,
        doc="Seconds of silence after which the server pings a client (XEP-0199).",
    ),
    Option(
        key="ping.timeout",
        type=float,
        default=60.0,
        doc="Seconds a client has to answer that ping before it is disconnected.",
    ),
    Option(
        key="log.level",
        type=str,
        default="info",
        flag="--log-level",
        doc="debug, info, warning or error.",
    ),
    Option(
        key="log.format",
        type=str,
        default="text",
        doc="'text' for people, 'json' for one JSON object per line.",
    ),
)

_BY_KEY: Final = {o.key: o for o in OPTIONS}


@dataclass(frozen=True, kw_only=True)
class Config:
    """The resolved configuration: ``values`` maps every option key to its value."""

    values: dict[str, Any] = field(default_factory=dict)
    source: str = "(defaults)"

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def domain(self) -> str:
        return str(self.values["domain"])

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"])

    @property
    def storage_url(self) -> str:
        return str(self.values["storage"])

    @property
    def storage_options(self) -> dict[str, Any]:
        """The keyword arguments of ``xmppx.storage.open_storage`` besides the URL."""
        return {"pool_size": self["storage.pool_size"], "timeout": self["storage.timeout"]}

    def with_values(self, **overrides: Any) -> Config:
        """A copy with ``key=value`` overrides (dots in keys written as ``__``)."""
        values = dict(self.values)
        for k, v in overrides.items():
            key = k.replace("__", ".")
            if key not in _BY_KEY:
                raise ConfigError(f"unknown option {key!r}")
            values[key] = _check(_BY_KEY[key], v)
        return _finish(replace(self, values=values))


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check(opt: Option, value: Any) -> Any:
    if opt.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if opt.type is list and isinstance(value, str):
        value = [value]
    if not isinstance(value, opt.type) or (opt.type is int and isinstance(value, bool)):
        raise ConfigError(
            f"option {opt.key!r} must be {opt.type.__name__}, not {type(value).__name__} "
            f"({value!r})"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"option {opt.key!r} must be a finite number, not {value!r}")
    return value


def _domain_option(values: dict[str, Any], key: str) -> str:
    """The prepared domain (RFC 7622 §3.2) that option ``key`` names."""
    raw = values[key]
    try:
        jid = parse_jid(str(raw))
    except JIDError as exc:
        raise ConfigError(f"option {key!r}: {raw!r} is not a valid domain ({exc})") from None
    if jid.local or jid.resource:
        raise ConfigError(f"option {key!r}: {raw!r} must be a bare domain")
    return jid.domain


def _check_storage_url(url: str, options: dict[str, Any]) -> None:
    """The storage URL's scheme and form (no I/O; its password is never shown)."""
    from xmppx.storage import StorageConfigError, create_storage

    try:
        create_storage(url, **options)
    except StorageConfigError as exc:
        raise ConfigError(f"option 'storage': {exc}") from None


def _finish(cfg: Config) -> Config:
    v = cfg.values
    v["domain"] = _domain_option(v, "domain")
    if not v["data_dir"]:
        v["data_dir"] = str(default_data_dir())
    # a relative data dir is taken from the directory the server starts in, once: the
    # database URL made from it below must not read it from the root
    v["data_dir"] = str(Path(v["data_dir"]).expanduser().absolute())
    if not v["storage"]:
        v["storage"] = "sqlite:///" + str(Path(v["data_dir"]) / "xmppx.db")
    for port_key in ("c2s.port", "c2s.tls_port"):
        if not -1 <= v[port_key] <= 65535:
            raise ConfigError(f"option {port_key!r}: {v[port_key]} is not a port number")
    if v["log.level"] not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"option 'log.level': {v['log.level']!r} is not a log level")
    if v["log.format"] not in ("text", "json"):
        raise ConfigError(f"option 'log.format': {v['log.format']!r} must be 'text' or 'json'")
    if bool(v["tls.cert"]) != bool(v["tls.key"]):
        raise ConfigError("options 'tls.cert' and 'tls.key' must be set together")
    for key in ("admins", "c2s.hosts"):
        for item in v[key]:
            if not isinstance(item, str):
                raise ConfigError(f"option {key!r}: {item!r} is not a string")
    if not v["c2s.hosts"]:
        raise ConfigError("option 'c2s.hosts' must name at least one address")
    for admin in v["admins"]:
        try:
            parse_jid(admin)
        except JIDError as exc:
            raise ConfigError(f"option 'admins': {admin!r} is not a JID ({exc})") from None
    for key in (
        "limits.preauth_stanza_bytes",
        "limits.stanza_bytes",
        "limits.max_depth",
        "limits.max_attributes",
        "limits.max_connections",
        "limits.c2s_burst",
        "auth.max_attempts",
        "roster.max_items",
        "offline.quota",
        "blocking.max_items",
        "presence.max_directed",
        "vcard.max_bytes",
        "private.max_bytes",
        "private.quota_bytes",
        "muc.max_rooms_per_user",
        "muc.max_occupants",
        "muc.max_subject_chars",
        "muc.history_max_bytes",
        "muc.message_rate",
        "muc.message_burst",
        "storage.pool_size",
        "storage.timeout",
        "limits.header_timeout",
        "limits.negotiation_timeout",
        "limits.close_timeout",
        "limits.max_unauthenticated_per_address",
        "limits.write_buffer_bytes",
        "ping.interval",
        "ping.timeout",
        "auth.throttle_max_ms",
    ):
        if v[key] <= 0:
            raise ConfigError(f"option {key!r} must be positive")
    for key in ("auth.throttle_base_ms", "register.per_address_per_hour"):
        if v[key] < 0:
            raise ConfigError(f"option {key!r} must not be negative")
    if v["auth.throttle_base_ms"] > v["auth.throttle_max_ms"]:
        raise ConfigError("option 'auth.throttle_base_ms' must not exceed 'auth.throttle_max_ms'")
    if v["limits.write_buffer_bytes"] < v["limits.stanza_bytes"]:
        # smaller, writing one large stanza to a client would cut its connection
        raise ConfigError(
            "option 'limits.write_buffer_bytes' must be at least 'limits.stanza_bytes'"
        )
    if v["private.quota_bytes"] < v["private.max_bytes"]:
        raise ConfigError("option 'private.quota_bytes' must be at least 'private.max_bytes'")
    if v["limits.c2s_rate"] < 0 or 0 < v["limits.c2s_rate"] < 1024:
        # Slower, one large read could keep a client unread past its ping timeout.
        raise ConfigError("option 'limits.c2s_rate' must be 0 (no limit) or at least 1024")
    if not 2 <= v["auth.max_attempts"] <= 5:
        # RFC 6120 §6.4.5: "at least 2 and no more than 5"
        raise ConfigError("option 'auth.max_attempts' must be from 2 to 5 (RFC 6120 §6.4.5)")
    if v["csi.queue_size"] < 0:
        raise ConfigError("option 'csi.queue_size' must not be negative")
    if v["sm.resume_timeout"] != 0 and not v["sm.resume_timeout"] >= 1:
        raise ConfigError("option 'sm.resume_timeout' must be 0 (no resumption) or at least 1")
    if v["sm.max_queue"] < 1:
        raise ConfigError("option 'sm.max_queue' must be at least 1")
    if v["muc.history_size"] < 0:
        raise ConfigError("option 'muc.history_size' must not be negative")
    if v["muc.domain"]:
        v["muc.domain"] = _domain_option(v, "muc.domain")
        if v["muc.domain"] == v["domain"]:
            raise ConfigError("option 'muc.domain' must differ from 'domain'")
    _check_storage_url(v["storage"], cfg.storage_options)
    return cfg


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Config:
    """Defaults, then the TOML file at ``path`` (if any), then ``overrides`` (CLI flags;
    ``None`` values are ignored).  Raises ``ConfigError`` with a one-line reason."""
    values = {
        o.key: (list(o.default) if isinstance(o.default, list) else o.default) for o in OPTIONS
    }
    source = "(defaults)"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                table = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {source} does not exist") from None
        except PermissionError:
            raise ConfigError(f"config file {source} is not readable") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
        for key, value in _flatten(table).items():
            opt = _BY_KEY.get(key)
            if opt is None:
                raise ConfigError(f"{source}: unknown option {key!r}")
            values[key] = _check(opt, value)
    for k, v in overrides.items():
        if v is None:
            continue
        key = k.replace("__", ".")
        if key not in _BY_KEY:
            raise ConfigError(f"unknown option {key!r}")
        values[key] = _check(_BY_KEY[key], v)
    return _finish(Config(values=values, source=source))
