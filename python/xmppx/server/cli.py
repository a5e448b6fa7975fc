"""``xmppx-server``: run the server, manage accounts, import users.

    xmppx-server [options]                      run (zero configuration: localhost)
    xmppx-server adduser|passwd USER@DOMAIN     password from a prompt, or stdin if piped
    xmppx-server deluser USER@DOMAIN
    xmppx-server listusers [DOMAIN]
    xmppx-server import FILE                    JSON lines: {"jid": ..., "password": ...}
                                                or {"jid": ..., "scram": [RFC 5803 strings]},
                                                optionally with "roster": [{"jid": ...,
                                                "name": ..., "groups": [...],
                                                "subscription": "none|to|from|both"}]
    xmppx-server --check-config | --version

SIGTERM and SIGINT stop the server gracefully (``system-shutdown`` to every stream);
SIGHUP reads the TLS certificate and key again.

Every command takes ``--config FILE``, ``--data-dir``, ``--storage`` and ``--domain`` so it
acts on the store the server uses.  Problems are reported as one line on stderr with exit
status 2 (configuration, usage) or 1 (runtime).  Passwords are never taken from argv.

A running server holds ``server.pid`` in its data dir locked; a second server on the
same data dir refuses to start.  ``deluser`` does what the server does when it removes an
account (its contacts' subscriptions are cancelled, XEP-0077 §3.2), so it refuses while a
server runs (whose sessions of the account would live on): there, an admin removes the
account with the XEP-0133 ``delete-user`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, Any, Final

from xmppx import __version__
from xmppx.server.config import OPTIONS, Config, ConfigError, load_config

__all__ = ["main"]

#: Accounts written per storage transaction during ``import``.
IMPORT_BATCH: Final = 500

_IMPORT_HELP: Final = """\
Create accounts from a file of JSON lines, one account per line:

  {"jid": "juliet@example.com", "password": "..."}
  {"jid": "juliet@example.com", "scram": ["SCRAM-SHA-1$4096:...$...:..."]}

Any line may also carry the account's roster (RFC 6121 §2), e.g. for benchmarks:

  {"jid": "juliet@example.com", "password": "...",
   "roster": [{"jid": "romeo@example.net", "name": "Romeo",
               "groups": ["Friends"], "subscription": "both"}]}

"subscription" is "none", "to", "from" or "both" as seen from this account (default
"none"); "name" and "groups" are optional.  The other side is not inferred: give
romeo's line the matching item ("both" on both sides for a mutual subscription).
Every line is checked before anything is written; accounts that exist already stop
the import.
"""

log = logging.getLogger("xmppx")


def _common(p: argparse.ArgumentParser, default: object) -> None:
    """The options every command takes.  The subcommands' copies default to SUPPRESS so
    that an option given before the subcommand is not overwritten by its default."""
    p.add_argument("--config", metavar="FILE", default=default, help="TOML configuration file")
    for opt in OPTIONS:
        if opt.flag is None:
            continue
        kind = int if opt.type is int else str
        p.add_argument(
            opt.flag,
            dest=opt.key.replace(".", "__"),
            type=kind,
            metavar=opt.key.split(".")[-1].upper(),
            default=default,
            help=f"{opt.doc} [config: {opt.key}]",
        )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common(common, None)
    sub_common = argparse.ArgumentParser(add_help=False)
    _common(sub_common, argparse.SUPPRESS)
    p = argparse.ArgumentParser(
        prog="xmppx-server", parents=[common], description="xmppx: an XMPP server (RFC 6120/6121)."
    )
    p.add_argument("--version", action="version", version=f"xmppx {__version__}")
    p.add_argument(
        "--check-config", action="store_true", help="validate the configuration, print it, and exit"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, helptext in (
        ("adduser", "create an account"),
        ("passwd", "set a password"),
        ("deluser", "delete an account and all its data"),
    ):
        sp = sub.add_parser(name, parents=[sub_common], help=helptext)
        sp.add_argument("jid", metavar="USER@DOMAIN")
    sp = sub.add_parser("listusers", parents=[sub_common], help="list accounts")
    sp.add_argument("domain", nargs="?", default=None)
    sp = sub.add_parser(
        "import",
        parents=[sub_common],
        help="bulk-create accounts (and their rosters) from JSON lines",
        description=_IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument("file", metavar="FILE", help="JSON lines file, or - for stdin")
    return p


def _check_config(cfg: Config) -> int:
    """``--check-config``: the configuration (the storage password shown as ``***``),
    and whether the server could use it: the TLS files load as a certificate and its
    key.  Nothing is written, no port opened, no database reached."""
    from xmppx.server.tls import TLSFiles, TLSSetupError, make_server_context
    from xmppx.storage._util import redact_url

    if cfg["tls.enabled"] and cfg["tls.cert"]:
        try:
            make_server_context(TLSFiles(cert=Path(cfg["tls.cert"]), key=Path(cfg["tls.key"])))
        except TLSSetupError as exc:
            print(f"xmppx-server: {exc}", file=sys.stderr)
            return 2
    for opt in OPTIONS:
        value = cfg[opt.key]
        if opt.key == "storage":
            value = redact_url(value)
        print(f"{opt.key} = {value!r}")
    print(f"# configuration from {cfg.source} is valid", file=sys.stderr)
    return 0


def _config(args: argparse.Namespace) -> Config:
    overrides = {
        o.key.replace(".", "__"): getattr(args, o.key.replace(".", "__"), None)
        for o in OPTIONS
        if o.flag is not None
    }
    if overrides.get("c2s__hosts") is not None:
        overrides["c2s__hosts"] = [overrides["c2s__hosts"]]
    return load_config(args.config, **overrides)


def _setup_logging(cfg: Config) -> None:
    level = getattr(logging, str(cfg["log.level"]).upper())
    handler = logging.StreamHandler(sys.stderr)
    if cfg["log.format"] == "json":
        handler.setFormatter(_JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _read_password(prompt_twice: bool = True) -> str:
    """From a prompt when stdin is a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        pw = getpass.getpass("Password: ")
        if prompt_twice and getpass.getpass("Retype password: ") != pw:
            raise SystemExit("xmppx-server: the passwords do not match")
        return pw
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


#: The file a running server keeps locked in its data dir, holding its pid.
PID_FILE: Final = "server.pid"


def _lock_data_dir(data_dir: Path) -> IO[str] | str:
    """Lock ``data_dir`` for this process: the locked file (kept open while the lock
    holds), or, when another process holds it, that process's pid as it wrote it."""
    import fcntl

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    f = open(data_dir / PID_FILE, "a+", encoding="ascii")  # noqa: SIM115 - held open
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        return holder
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


async def _run_server(cfg: Config) -> int:
    from xmppx.server._server import XMPPServer

    lock = _lock_data_dir(cfg.data_dir)
    if isinstance(lock, str):
        print(
            f"xmppx-server: data dir {cfg.data_dir} is in use by process {lock} "
            "(a running server, or an account command)",
            file=sys.stderr,
        )
        return 1
    with lock:
        return await _serve(XMPPServer(cfg), cfg)


async def _serve(server: Any, cfg: Config) -> int:
    try:
        await server.start()
    except OSError as exc:
        await server.stop()
        what = "address in use" if exc.errno in (98, 48) else exc.strerror or str(exc)
        print(f"xmppx-server: cannot listen ({what}): {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # a renewed certificate is taken without a restart
    loop.add_signal_handler(signal.SIGHUP, server.reload_tls)
    ports = ", ".join(f"{k} {v}" for k, v in server.ports.items())
    banner = (
        f"xmppx {__version__} serving {cfg.domain} ({ports}); data in {cfg.data_dir}; "
        f"event loop {type(loop).__module__.split('.')[0]}"
    )
    if cfg["log.format"] == "json":  # whatever the level, in the log's own form
        record = log.makeRecord(log.name, logging.INFO, __file__, 0, banner, (), None)
        banner = _JSONFormatter().format(record)
    print(banner, file=sys.stderr)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    return 0


async def _with_storage(cfg: Config, args: argparse.Namespace) -> int:
    from xmppx.server.accounts import AccountError, create_account, parse_user, set_password
    from xmppx.storage import AccountExists, AccountNotFound, open_storage

    cfg.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    storage = await open_storage(cfg.storage_url, **cfg.storage_options)
    try:
        cmd = args.command
        if cmd == "listusers":
            after = None
            domain = args.domain or cfg.domain
            while True:
                page = await storage.accounts.list_users(domain=domain, after=after)
                if not page:
                    break
                for name in page:
                    print(name)
                after = page[-1]
            return 0
        if cmd == "import":
            return await _import(storage, cfg, args.file)
        try:
            user = parse_user(args.jid, cfg.domain)
        except AccountError as exc:
            print(f"xmppx-server: {exc}", file=sys.stderr)
            return 2
        if cmd == "deluser":
            return await _delete_user(cfg, storage, user)
        password = _read_password()
        if not password:
            print("xmppx-server: the password is empty", file=sys.stderr)
            return 2
        try:
            if cmd == "adduser":
                await create_account(storage, user, password)
                print(f"created {user}", file=sys.stderr)
            else:
                await set_password(storage, user, password)
                print(f"password of {user} changed", file=sys.stderr)
        except AccountExists:
            print(f"xmppx-server: {user} exists already", file=sys.stderr)
            return 1
        except AccountNotFound:
            print(f"xmppx-server: {user} does not exist", file=sys.stderr)
            return 1
        except AccountError as exc:
            print(f"xmppx-server: {exc}", file=sys.stderr)
            return 2
        return 0
    finally:
        await storage.close()


async def _delete_user(cfg: Config, storage: Any, user: Any) -> int:
    """Remove ``user`` as the server does (``XMPPServer.remove_account``): its contacts'
    subscriptions cancelled, then everything stored for it deleted.  Not while a server
    runs on this data dir."""
    from xmppx.server._server import XMPPServer

    lock = _lock_data_dir(cfg.data_dir)
    if isinstance(lock, str):
        print(
            f"xmppx-server: a server is running on {cfg.data_dir} (process {lock}); "
            f"remove {user} with the XEP-0133 delete-user command from an admin account, "
            "or stop the server first",
            file=sys.stderr,
        )
        return 1
    with lock:
        if not await storage.accounts.exists(str(user)):
            print(f"xmppx-server: {user} does not exist", file=sys.stderr)
            return 1
        # the server's own account removal, with nothing listening
        server = XMPPServer(cfg.with_values(c2s__port=-1, c2s__tls_port=-1), storage=storage)
        await server.start()
        try:
            await server.remove_account(user, "the account was deleted")
        finally:
            with contextlib.suppress(Exception):
                await server.stop()
    print(f"deleted {user}", file=sys.stderr)
    return 0


def _derive(item: tuple[str, str]) -> tuple[str, Any]:
    from xmppx.server.accounts import credentials_for

    jid, password = item
    return jid, credentials_for(password)


def _derive_all(pool: ProcessPoolExecutor, chunk: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    return list(pool.map(_derive, chunk, chunksize=32))


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    fh = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        yield from enumerate(fh, 1)
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


async def _import(storage: Any, cfg: Config, path: str) -> int:
    """Bulk-create accounts.  Plain passwords are turned into SCRAM keys on every core;
    lines with ready ``scram`` keys (RFC 5803 strings, as exported by other servers) skip
    that work.  All lines are checked before anything is written."""
    from xmppx.auth import SASLprepError, saslprep
    from xmppx.auth import ScramCredentials as AuthCreds
    from xmppx.server.accounts import AccountError, parse_user
    from xmppx.storage import AccountExists, NewAccount
    from xmppx.storage import ScramCredentials as Stored

    plain: list[tuple[str, str]] = []
    ready: list[tuple[str, tuple[Stored, ...]]] = []
    rosters: list[tuple[str, list[Any]]] = []
    seen: dict[str, int] = {}
    try:
        for lineno, raw in _lines(path):
            if not raw.strip():
                continue
            try:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError("not UTF-8 text") from None
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise TypeError("each line must be a JSON object")
                if not isinstance(obj.get("jid"), str):
                    raise TypeError("'jid' must be a string")
                user = str(parse_user(obj["jid"], cfg.domain))
                if user in seen:
                    raise ValueError(f"{user} is on line {seen[user]} already")
                seen[user] = lineno
                if "roster" in obj:
                    rosters.append((user, _roster_items(obj["roster"])))
                if "scram" in obj:
                    creds = tuple(
                        Stored(
                            hash_name=c.hash_name,
                            salt=c.salt,
                            iterations=c.iterations,
                            stored_key=c.stored_key,
                            server_key=c.server_key,
                        )
                        for c in (AuthCreds.from_rfc5803(s) for s in obj["scram"])
                    )
                    ready.append((user, creds))
                else:
                    password = obj["password"]
                    if not isinstance(password, str) or not password:
                        raise ValueError("password must be a non-empty string")
                    if not saslprep(password):  # checked now, not once half is written
                        raise ValueError("the password is empty after SASLprep")
                    plain.append((user, password))
            except SASLprepError as exc:
                print(f"xmppx-server: {path}:{lineno}: unusable password: {exc}", file=sys.stderr)
                return 2
            except (ValueError, KeyError, TypeError, AccountError) as exc:
                print(f"xmppx-server: {path}:{lineno}: {exc}", file=sys.stderr)
                return 2
    except OSError as exc:
        print(f"xmppx-server: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    total = len(plain) + len(ready)
    done = 0
    started = time.monotonic()
    bar = _Progress(total)

    async def write(batch: Sequence[tuple[str, tuple[Stored, ...]]]) -> None:
        nonlocal done
        await storage.accounts.create_many([NewAccount(user=u, credentials=c) for u, c in batch])
        done += len(batch)
        bar.update(done)

    try:
        for i in range(0, len(ready), IMPORT_BATCH):
            await write(ready[i : i + IMPORT_BATCH])
        if plain:
            loop = asyncio.get_running_loop()
            workers = max(1, os.cpu_count() or 1)
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for i in range(0, len(plain), IMPORT_BATCH):
                    chunk = plain[i : i + IMPORT_BATCH]
                    derived = await loop.run_in_executor(None, _derive_all, pool, chunk)
                    await write(derived)
    except AccountExists as exc:
        bar.finish()
        print(
            f"xmppx-server: {exc}; {done} of {total} accounts were imported before it",
            file=sys.stderr,
        )
        return 1
    bar.finish()
    items = 0
    for user, roster in rosters:
        for item in roster:
            await storage.roster.put_item(user, item)
            items += 1
    secs = max(time.monotonic() - started, 1e-9)
    extra = f" and {items} roster items" if items else ""
    print(
        f"imported {done} accounts{extra} in {secs:.1f} s ({done / secs:,.0f}/s)",
        file=sys.stderr,
    )
    return 0


def _roster_items(value: Any) -> list[Any]:
    """The ``roster`` of an import line as ``RosterItem`` records (``ValueError`` when
    malformed)."""
    from xmppx.core import BareJID, JIDError, parse_jid
    from xmppx.storage import RosterItem

    if not isinstance(value, list):
        raise ValueError("roster must be a list of items")
    items: list[Any] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ValueError("a roster item must be an object")
        try:
            contact = parse_jid(str(entry["jid"]))
        except JIDError as exc:
            raise ValueError(f"roster item jid: {exc}") from None
        if not isinstance(contact, BareJID):
            raise ValueError(f"roster item {contact} must be a bare JID")
        name = entry.get("name")
        groups = entry.get("groups", [])
        if name is not None and not isinstance(name, str):
            raise ValueError("roster item name must be a string")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError("roster item groups must be a list of strings")
        items.append(
            RosterItem(
                contact=str(contact),
                name=name,
                subscription=entry.get("subscription", "none"),
                groups=tuple(groups),
            )
        )
    return items


class _Progress:
    """A one-line progress bar on stderr (only when it is a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.tty = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if self.tty:
            width = 30
            filled = width * done // self.total
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    """``uvloop.run`` when uvloop is installed (``pip install xmppx[uvloop]``), else
    ``asyncio.run``."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xmppx-server``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        cfg = _config(args)
    except ConfigError as exc:
        print(f"xmppx-server: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        return _check_config(cfg)
    _setup_logging(cfg)
    runner = _event_loop_runner()
    try:
        if args.command is None:
            return int(runner(_run_server(cfg)))
        return int(runner(_with_storage(cfg, args)))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for the operator; details at debug level
        from xmppx.server.tls import TLSSetupError
        from xmppx.storage import StorageError

        if isinstance(exc, TLSSetupError | StorageError | ConfigError):
            print(f"xmppx-server: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
