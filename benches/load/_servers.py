"""The three servers under test: detect, configure, provision, start and stop by PID.

Each server gets its own directory under the run's temporary directory (configuration,
data, logs), one loopback port, plain TCP c2s with SCRAM-SHA-1 allowed without TLS, the
same accounts (``_accounts``) and rosters, a listen backlog of 100 (asyncio's fixed
default, which xmppx uses), no rate limits or shapers, a 256 KiB stanza limit,
warning-level logs to a file, no server-initiated pings, and the same module set: what
xmppx loads by default (roster, offline, blocking, last activity, vcard-temp, private
XML, disco, ping, time, version, and the XEP-0045 service at ``conference.<domain>``;
xmppx's admin commands have no counterpart loaded here) and no s2s.  The MUC services
keep no history, allow ``MUC_MAX_USERS`` occupants and limit no occupant's rate; every
server keeps ``OFFLINE_LIMIT`` offline messages per user.  Every process is started in
its own session (process group) pinned with ``taskset`` and stopped by its PID: SIGTERM
to the group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import abc
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final
from xml.sax.saxutils import escape, quoteattr

from ._accounts import DOMAIN, ITERATIONS, MUC_DOMAIN, Account, RosterEntry, rfc5803

__all__ = ["SERVER_TYPES", "Detected", "Server", "free_port", "stop_process"]

#: The listen backlog every server gets (xmppx: asyncio's create_server default).
BACKLOG: Final = 100
#: Largest stanza after authentication, for all three (xmppx and Prosody's default).
STANZA_LIMIT: Final = 262_144
#: How long a server has to open its port (ejabberd takes a few seconds).
START_TIMEOUT: Final = 60.0
#: Grace between SIGTERM and SIGKILL.
STOP_GRACE: Final = 10.0
#: Offline messages kept per user, on all three (the offline scenario sends 10 000; the
#: defaults are xmppx 100, Prosody 10 000 (``storage_archive_item_limit``), ejabberd
#: unlimited unless a ``max_user_offline_messages`` rule says otherwise).
OFFLINE_LIMIT: Final = 20_000
#: Occupants allowed in one room, on all three (the MUC scenario has up to 200; xmppx
#: allows 500 by default, ejabberd 200, Prosody has no limit).
MUC_MAX_USERS: Final = 1000
#: Per-occupant groupchat rate limit: none on Prosody (mod_muc has none; the community
#: mod_muc_limits is not loaded) and ejabberd (``room_shaper``/``user_message_shaper``
#: none, ``min_message_interval`` 0: its defaults, written out); xmppx's token bucket
#: (default 2 msg/s, burst 10) is raised to this, which no scenario approaches.
MUC_MESSAGE_RATE: Final = 1_000_000.0
MUC_MESSAGE_BURST: Final = 1_000_000

Rosters = Mapping[str, Sequence[RosterEntry]]

Log = Callable[[str], None]
REPO: Final = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True, slots=True)
class Detected:
    """Whether a server can run here: ``version`` or, if it cannot, ``reason``."""

    name: str
    version: str | None
    reason: str = ""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _dpkg_version(package: str) -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def stop_process(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group led by ``proc`` (its own session), wait, then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


class Server(abc.ABC):
    """One server under test in ``workdir``, listening on 127.0.0.1:``port``."""

    name: ClassVar[str]

    def __init__(self, workdir: Path, *, port: int, cpus: str, log: Log) -> None:
        self.workdir = workdir
        self.port = port
        self.cpus = cpus
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.provision_info: dict[str, object] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    # -- to implement ---------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def detect(cls) -> Detected:
        """Is it installed, and which version."""

    @abc.abstractmethod
    def configure(self) -> None:
        """Write the configuration files."""

    @abc.abstractmethod
    def provision(self, accounts: Sequence[Account], rosters: Rosters | None = None) -> None:
        """Create ``accounts`` with the roster items in ``rosters`` (localpart -> items;
        may start and stop the server); fills ``provision_info``."""

    @abc.abstractmethod
    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line (without taskset) and extra environment that run the server in
        the foreground."""

    # -- common ---------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The PID whose process tree is measured (the server process itself)."""
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start pinned to ``cpus`` in a new session; return once the port accepts."""
        if self.running:
            return
        argv, extra = self.command()
        env = dict(os.environ)
        env.update(extra)
        logf = (self.workdir / "stdout.log").open("ab")
        try:
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.cpus, *argv],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            logf.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode} at start; "
                    f"see {self.workdir / 'stdout.log'}:\n{self._log_tail()}"
                )
            if _port_open(self.port):
                self.after_start()
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not open port {self.port} in {START_TIMEOUT} s")

    def after_start(self) -> None:  # noqa: B027 - an optional hook
        """Hook: wait until the server really serves (ejabberd opens its port early)."""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def close(self) -> None:
        """Stop the server and any helper process (e.g. ejabberd's epmd)."""
        self.stop()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.workdir / "stdout.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# --- xmppx -----------------------------------------------------------------------------


class XmppxServer(Server):
    """``python -m xmppx.server.cli --config xmppx.toml`` from this checkout's ``python/``
    (or the installed package), accounts by ``import`` of RFC 5803 SCRAM keys."""

    name = "xmppx"

    @classmethod
    def detect(cls) -> Detected:
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import xmppx, xmppx.core; print(xmppx.__version__, xmppx.core.backend)",
                ],
                env=cls._env_full(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Detected(name=cls.name, version=None, reason=str(exc))
        if out.returncode != 0:
            return Detected(name=cls.name, version=None, reason=out.stderr.strip()[-300:])
        version, backend = out.stdout.split()
        return Detected(name=cls.name, version=f"{version} (core: {backend})")

    @staticmethod
    def _env() -> dict[str, str]:
        src = str(REPO / "python")
        path = os.environ.get("PYTHONPATH", "")
        parts = [p for p in path.split(os.pathsep) if p]
        if src not in parts:
            parts.insert(0, src)
        return {"PYTHONPATH": os.pathsep.join(parts)}

    @classmethod
    def _env_full(cls) -> dict[str, str]:
        env = dict(os.environ)
        env.update(cls._env())
        return env

    @property
    def config_path(self) -> Path:
        return self.workdir / "xmppx.toml"

    def configure(self) -> None:
        data = self.workdir / "data"
        self.config_path.write_text(
            f'domain = "{DOMAIN}"\n'
            f'data_dir = "{data}"\n'
            "\n[c2s]\n"
            'hosts = ["127.0.0.1"]\n'
            f"port = {self.port}\n"
            "tls_port = -1\n"
            "\n[tls]\n"
            "enabled = false\n"
            "required = false\n"
            "\n[limits]\n"
            "# Prosody and ejabberd have no per-address limit on unauthenticated streams.\n"
            "max_unauthenticated_per_address = 1000000\n"
            f"stanza_bytes = {STANZA_LIMIT}\n"
            "# no shapers, as configured for Prosody and ejabberd\n"
            "c2s_rate = 0\n"
            "\n[ping]\n"
            "# Prosody and ejabberd (mod_ping send_pings: false) do not ping clients.\n"
            "interval = 86400.0\n"
            "\n[log]\n"
            'level = "warning"\n'
            "\n[offline]\n"
            f"quota = {OFFLINE_LIMIT}\n"
            "\n[muc]\n"
            "history_size = 0\n"
            f"max_occupants = {MUC_MAX_USERS}\n"
            f"message_rate = {MUC_MESSAGE_RATE!r}\n"
            f"message_burst = {MUC_MESSAGE_BURST}\n"
        )

    def provision(self, accounts: Sequence[Account], rosters: Rosters | None = None) -> None:
        jsonl = self.workdir / "accounts.jsonl"
        items = 0
        with jsonl.open("w", encoding="utf-8") as fh:
            for a in accounts:
                line: dict[str, object] = {"jid": a.jid, "scram": [rfc5803(a)]}
                roster = (rosters or {}).get(a.user)
                if roster:
                    line["roster"] = [
                        {
                            "jid": r.jid,
                            "name": r.name,
                            "groups": list(r.groups),
                            "subscription": r.subscription,
                        }
                        for r in roster
                    ]
                    items += len(roster)
                fh.write(json.dumps(line) + "\n")
        # Options go after the subcommand: in front of it the subcommand's defaults
        # override them (an argparse parents/subparsers quirk of cli.py).
        argv = [
            sys.executable,
            "-m",
            "xmppx.server.cli",
            "import",
            "--config",
            str(self.config_path),
            str(jsonl),
        ]
        t0 = time.monotonic()
        out = subprocess.run(
            argv,
            env=self._env_full(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        secs = time.monotonic() - t0
        if out.returncode != 0:
            raise RuntimeError(f"xmppx import failed: {out.stderr.strip()[-500:]}")
        self.provision_info = {
            "method": "xmppx-server import (JSON lines with RFC 5803 SCRAM-SHA-1 keys and "
            "'roster' lists)",
            "accounts": len(accounts),
            "roster_items": items,
            "seconds": round(secs, 2),
        }

    def command(self) -> tuple[list[str], dict[str, str]]:
        return (
            [sys.executable, "-m", "xmppx.server.cli", "--config", str(self.config_path)],
            self._env(),
        )


# --- Prosody ---------------------------------------------------------------------------


def _lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ProsodyServer(Server):
    """``prosody --config prosody.cfg.lua -F`` (0.12), accounts written straight into its
    ``internal_hashed`` store: ``data/<host>/accounts/<user>.dat`` Lua files with hex
    ``stored_key``/``server_key``, the salt and ``iteration_count`` (the format
    mod_auth_internal_hashed writes)."""

    name = "prosody"

    @classmethod
    def detect(cls) -> Detected:
        if shutil.which("prosody") is None:
            return Detected(
                name=cls.name,
                version=None,
                reason="prosody is not installed (Debian: apt-get install prosody)",
            )
        version = _dpkg_version("prosody")
        if version is None and shutil.which("prosodyctl") is not None:
            # Not `prosody --version`: that starts a server.
            try:
                out = subprocess.run(
                    ["prosodyctl", "about"], capture_output=True, text=True, timeout=30, check=False
                )
                version = out.stdout.splitlines()[0].strip() if out.stdout else None
            except (OSError, subprocess.TimeoutExpired):
                version = None
        return Detected(name=cls.name, version=version or "unknown")

    @property
    def config_path(self) -> Path:
        return self.workdir / "prosody.cfg.lua"

    def configure(self) -> None:
        w = self.workdir
        (w / "data").mkdir(exist_ok=True)
        (w / "certs").mkdir(exist_ok=True)
        logfile = _lua_string(str(w / "prosody.log"))
        self.config_path.write_text(
            f"""-- written by benches/load
run_as_root = true
daemonize = false
pidfile = {_lua_string(str(w / "prosody.pid"))}
data_path = {_lua_string(str(w / "data"))}
certificates = {_lua_string(str(w / "certs"))}
log = {{ {{ levels = {{ min = "warn" }}, to = "file", filename = {logfile} }} }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.port} }}
c2s_direct_tls_ports = {{}}
legacy_ssl_ports = {{}}
s2s_ports = {{}}
http_ports = {{}}
https_ports = {{}}
network_settings = {{ tcp_backlog = {BACKLOG} }}
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
storage = "internal"
c2s_stanza_size_limit = {STANZA_LIMIT}
storage_archive_item_limit = {OFFLINE_LIMIT}
modules_enabled = {{
  "saslauth", "disco", "ping", "time", "version",
  "roster", "offline", "blocklist", "lastactivity", "vcard", "private",
}}
modules_disabled = {{ "s2s" }}

VirtualHost {_lua_string(DOMAIN)}

Component {_lua_string(MUC_DOMAIN)} "muc"
  -- history off (as on xmppx and ejabberd); all rooms live (the default cache holds 100)
  max_history_messages = 0
  muc_room_cache_size = {MUC_MAX_USERS}
"""
        )

    def provision(self, accounts: Sequence[Account], rosters: Rosters | None = None) -> None:
        t0 = time.monotonic()
        host = self.workdir / "data" / DOMAIN.replace(".", "%2e")
        folder = host / "accounts"
        folder.mkdir(parents=True, exist_ok=True)
        roster_dir = host / "roster"
        roster_dir.mkdir(parents=True, exist_ok=True)
        items = 0
        for a in accounts:
            roster = (rosters or {}).get(a.user)
            if roster:
                (roster_dir / f"{a.user}.dat").write_text(_prosody_roster(roster))
                items += len(roster)
            (folder / f"{a.user}.dat").write_text(
                "return {\n"
                f'\t["iteration_count"] = {ITERATIONS};\n'
                f'\t["salt"] = {_lua_string(a.salt.decode())};\n'
                f'\t["server_key"] = "{a.server_key.hex()}";\n'
                f'\t["stored_key"] = "{a.stored_key.hex()}";\n'
                "};\n"
            )
        self.provision_info = {
            "method": "accounts/*.dat and roster/*.dat files written directly "
            "(mod_auth_internal_hashed's and rostermanager's formats)",
            "accounts": len(accounts),
            "roster_items": items,
            "seconds": round(time.monotonic() - t0, 2),
            "alternative": "prosodyctl register: one Lua process start and a PBKDF2 per "
            "account (50-75 ms each here, see benches/load_README.md)",
        }

    def command(self) -> tuple[list[str], dict[str, str]]:
        return (["prosody", "--config", str(self.config_path), "-F"], {})


def _prosody_roster(items: Sequence[RosterEntry]) -> str:
    """A ``roster/<user>.dat`` as Prosody's rostermanager saves it: ``[false]`` holds the
    metadata (version, pending inbound requests), every other key is a contact."""
    out = ["return {", '\t[false] = { ["version"] = 1; ["pending"] = {}; };']
    for r in items:
        groups = " ".join(f"[{_lua_string(g)}] = true;" for g in r.groups)
        out.append(
            f"\t[{_lua_string(r.jid)}] = {{ "
            f'["subscription"] = {_lua_string(r.subscription)}; '
            f'["name"] = {_lua_string(r.name)}; ["groups"] = {{ {groups} }}; }};'
        )
    out.append("};")
    return "\n".join(out) + "\n"


# --- ejabberd --------------------------------------------------------------------------


def _ejabberd_libs() -> str | None:
    """The ERL_LIBS directory that holds ejabberd-<version>/ebin (Debian's layout, or a
    source install's)."""
    for pattern in (
        "/usr/lib/*/ejabberd-*/ebin/ejabberd.app",
        "/usr/lib/ejabberd-*/ebin/ejabberd.app",
        "/usr/local/lib/ejabberd-*/ebin/ejabberd.app",
        "/opt/ejabberd*/lib/ejabberd-*/ebin/ejabberd.app",
    ):
        hits = sorted(glob.glob(pattern))
        if hits:
            return str(Path(hits[-1]).parents[2])
    return None


class EjabberdServer(Server):
    """ejabberd run as ``erl ... -s ejabberd`` exactly as ``ejabberdctl foreground`` runs
    it, minus its ``su ejabberd`` (so the PID is the BEAM's and the files stay in our
    directory), with its own epmd on a free port.  Accounts: one
    ``ejabberd_ctl import_piefxis`` of a XEP-0227 file carrying the SCRAM keys
    (``<scram-credentials xmlns='urn:xmpp:pie:0#scram'>``, values base64 of the base64
    that Mnesia keeps), the same command ``ejabberdctl import_piefxis`` runs.

    The BEAM gets one scheduler (``+S 1:1``, ``+SDcpu 1:1``: it has one core) and no
    scheduler busy-waiting (``+sbwt none`` ...): spinning schedulers would be counted as
    CPU time per message that does no work."""

    name = "ejabberd"

    def __init__(self, workdir: Path, *, port: int, cpus: str, log: Log) -> None:
        super().__init__(workdir, port=port, cpus=cpus, log=log)
        self.epmd_port = free_port()
        self.node = f"xmppxbench{port}@localhost"
        self.cookie = f"bench{os.getpid()}{port}"
        self.epmd: subprocess.Popen[bytes] | None = None
        self._ctl_seq = 0

    @classmethod
    def detect(cls) -> Detected:
        if shutil.which("erl") is None or _ejabberd_libs() is None:
            return Detected(
                name=cls.name,
                version=None,
                reason="ejabberd is not installed (Debian: apt-get install ejabberd)",
            )
        version = _dpkg_version("ejabberd")
        if version is None:
            libs = _ejabberd_libs() or ""
            hits = sorted(glob.glob(f"{libs}/ejabberd-*"))
            version = Path(hits[-1]).name.removeprefix("ejabberd-") if hits else "unknown"
        return Detected(name=cls.name, version=version)

    @property
    def config_path(self) -> Path:
        return self.workdir / "ejabberd.yml"

    def configure(self) -> None:
        (self.workdir / "spool").mkdir(exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self.config_path.write_text(
            f"""# written by benches/load
hosts:
  - {DOMAIN}
loglevel: warning
log_rotate_count: 0
listen:
  -
    port: {self.port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    starttls_required: false
    max_stanza_size: {STANZA_LIMIT}
    backlog: {BACKLOG}
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
shaper_rules:
  max_user_offline_messages: {OFFLINE_LIMIT}
modules:
  mod_disco: {{}}
  mod_ping:
    send_pings: false
  mod_time: {{}}
  mod_version: {{}}
  mod_roster: {{}}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_blocking: {{}}
  mod_privacy: {{}}
  mod_last: {{}}
  mod_vcard: {{}}
  mod_private: {{}}
  mod_muc:
    host: "conference.@HOST@"
    access: all
    access_create: all
    history_size: 0
    max_users: {MUC_MAX_USERS}
    max_user_conferences: {MUC_MAX_USERS}
    min_message_interval: 0
    min_presence_interval: 0
    room_shaper: none
    user_message_shaper: none
    user_presence_shaper: none
    default_room_options:
      persistent: false
      mam: false
      max_users: {MUC_MAX_USERS}
"""
        )

    def _erl_env(self) -> dict[str, str]:
        return {
            "ERL_LIBS": _ejabberd_libs() or "",
            "EJABBERD_CONFIG_PATH": str(self.config_path),
            "EJABBERD_LOG_PATH": str(self.workdir / "logs" / "ejabberd.log"),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_CRASH_DUMP": str(self.workdir / "logs" / "erl_crash.dump"),
            "ERL_CRASH_DUMP_BYTES": "0",
            "ERL_MAX_PORTS": "65536",
            "HOME": str(self.workdir),
        }

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [
            "erl",
            "-sname",
            self.node,
            "-setcookie",
            self.cookie,
            "-start_epmd",
            "false",
            "+K",
            "true",
            "+P",
            "250000",
            "+Q",
            "65536",
            "+S",
            "1:1",
            "+SDcpu",
            "1:1",
            "+sbwt",
            "none",
            "+sbwtdcpu",
            "none",
            "+sbwtdio",
            "none",
            "-noinput",
            "-mnesia",
            "dir",
            f'"{self.workdir / "spool"}"',
            "-s",
            "ejabberd",
        ]
        return argv, self._erl_env()

    def _start_epmd(self) -> None:
        if self.epmd is not None and self.epmd.poll() is None:
            return
        epmd = shutil.which("epmd") or "epmd"
        self.epmd = subprocess.Popen(
            [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _port_open(self.epmd_port):
            time.sleep(0.05)

    def start(self) -> None:
        self._start_epmd()
        super().start()

    def after_start(self) -> None:
        # The listener opens before every module is up; 'status' answers once started.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            rc, out = self.ctl("status", timeout=30)
            if rc == 0 and "is running" in out:
                return
            time.sleep(0.5)
        raise RuntimeError(f"ejabberd did not report 'running': {out.strip()[-300:]}")

    def ctl(self, *args: str, timeout: float = 600) -> tuple[int, str]:
        """``ejabberdctl ARGS`` against our node (same erl command line, no su)."""
        self._ctl_seq += 1
        argv = [
            "erl",
            "-sname",
            f"ctl{os.getpid()}x{self._ctl_seq}@localhost",
            "-setcookie",
            self.cookie,
            "-start_epmd",
            "false",
            "-hidden",
            "-noinput",
            "-s",
            "ejabberd_ctl",
            "-extra",
            self.node,
            *args,
        ]
        env = dict(os.environ)
        env.update(self._erl_env())
        try:
            out = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return 124, "timeout"
        return out.returncode, out.stdout + out.stderr

    def provision(self, accounts: Sequence[Account], rosters: Rosters | None = None) -> None:
        import base64

        def bb(b: bytes) -> str:
            return base64.b64encode(base64.b64encode(b)).decode()

        xml = self.workdir / "accounts.xml"
        items = 0
        with xml.open("w", encoding="utf-8") as fh:
            fh.write("<?xml version='1.0' encoding='UTF-8'?>\n")
            fh.write(f"<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='{DOMAIN}'>\n")
            for a in accounts:
                fh.write(
                    f"<user name='{a.user}'><scram-credentials xmlns='urn:xmpp:pie:0#scram' "
                    f"mechanism='SCRAM-SHA-1'><iter-count>{ITERATIONS}</iter-count>"
                    f"<salt>{bb(a.salt)}</salt><server-key>{bb(a.server_key)}</server-key>"
                    f"<stored-key>{bb(a.stored_key)}</stored-key></scram-credentials>"
                )
                roster = (rosters or {}).get(a.user)
                if roster:
                    fh.write("<query xmlns='jabber:iq:roster'>")
                    for r in roster:
                        groups = "".join(f"<group>{escape(g)}</group>" for g in r.groups)
                        fh.write(
                            f"<item jid={quoteattr(r.jid)} name={quoteattr(r.name)} "
                            f"subscription={quoteattr(r.subscription)}>{groups}</item>"
                        )
                    fh.write("</query>")
                    items += len(roster)
                fh.write("</user>\n")
            fh.write("</host>\n</server-data>\n")
        was_running = self.running
        self.start()
        try:
            t0 = time.monotonic()
            rc, out = self.ctl("import_piefxis", str(xml))
            secs = time.monotonic() - t0
            if rc != 0:
                raise RuntimeError(f"ejabberd import_piefxis failed ({rc}): {out[-500:]}")
            rc, out = self.ctl("registered_users", DOMAIN)
            count = len(out.split()) if rc == 0 else -1
            if count < len(accounts):
                raise RuntimeError(
                    f"ejabberd has {count} accounts after the import ({rc}): {out[-300:]}"
                )
        finally:
            if not was_running:
                self.stop()
        self.provision_info = {
            "method": "ejabberd_ctl import_piefxis (XEP-0227 with scram-credentials and "
            "jabber:iq:roster queries)",
            "accounts": len(accounts),
            "roster_items": items,
            "seconds": round(secs, 2),
            "alternative": "ejabberdctl register: one Erlang node start per account "
            "(about 0.55 s each here, see benches/load_README.md)",
        }

    def close(self) -> None:
        super().close()
        if self.epmd is not None:
            stop_process(self.epmd, grace=5)
            self.epmd = None


SERVER_TYPES: Final[dict[str, type[Server]]] = {
    cls.name: cls for cls in (XmppxServer, ProsodyServer, EjabberdServer)
}
