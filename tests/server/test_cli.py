"""``xmppx-server`` as an operator runs it: a subprocess, real files, real ports."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.conftest import client_tls_context
from xmppx import __version__

CLI = [sys.executable, "-m", "xmppx.server.cli"]


def run(
    args: list[str], tmp: Path, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "xdg"))
    return subprocess.run(
        CLI + args,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    r = run(["--version"], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"xmppx {__version__}"


def test_check_config_defaults_and_errors(tmp_path: Path) -> None:
    r = run(["--check-config"], tmp_path)
    assert r.returncode == 0
    assert "domain = 'localhost'" in r.stdout
    assert f"data_dir = '{tmp_path / 'xdg' / 'xmppx'}'" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[c2s]\nport = 'five'\n")
    r = run(["--config", str(bad), "--check-config"], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "xmppx-server: option 'c2s.port' must be int, not str ('five')"
    bad.write_text("colour = 'blue'\n")
    r = run(["--config", str(bad), "--check-config"], tmp_path)
    assert r.returncode == 2 and "unknown option 'colour'" in r.stderr
    bad.write_text("domain = \n")
    r = run(["--config", str(bad), "--check-config"], tmp_path)
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    r = run(["--config", str(tmp_path / "missing.toml")], tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run(["--domain", "bad domain!", "--check-config"], tmp_path)
    assert r.returncode == 2 and "option 'domain'" in r.stderr
    # the storage password is not printed; TLS files are tried
    url = "postgresql://xmppx:s3cret@127.0.0.1:5432/xmppx"
    r = run(["--storage", url, "--check-config"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout and "storage = 'postgresql://xmppx:***@" in r.stdout
    bad.write_text(f"[tls]\ncert = '{tmp_path}/none.crt'\nkey = '{tmp_path}/none.key'\n")
    r = run(["--config", str(bad), "--check-config"], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == f"xmppx-server: TLS file {tmp_path}/none.crt does not exist"


def test_account_commands(tmp_path: Path) -> None:
    r = run(["adduser", "romeo@localhost"], tmp_path, stdin="s3cret\n")
    assert r.returncode == 0, r.stderr
    r = run(["adduser", "romeo@localhost"], tmp_path, stdin="again\n")
    assert r.returncode == 1 and "exists already" in r.stderr
    r = run(["adduser", "juliet"], tmp_path, stdin="pw\n")  # domain defaults to ours
    assert r.returncode == 0, r.stderr
    r = run(["adduser", "tybalt@example.org"], tmp_path, stdin="pw\n")
    assert r.returncode == 2 and "not on this server's domain" in r.stderr
    r = run(["listusers"], tmp_path)
    assert r.stdout.split() == ["juliet@localhost", "romeo@localhost"]
    r = run(["passwd", "romeo@localhost"], tmp_path, stdin="n3w\n")
    assert r.returncode == 0, r.stderr
    r = run(["passwd", "nobody@localhost"], tmp_path, stdin="x\n")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = run(["deluser", "juliet@localhost"], tmp_path)
    assert r.returncode == 0
    r = run(["deluser", "juliet@localhost"], tmp_path)
    assert r.returncode == 1
    assert run(["listusers"], tmp_path).stdout.split() == ["romeo@localhost"]
    db = (tmp_path / "xdg" / "xmppx" / "xmppx.db").read_bytes()
    assert b"s3cret" not in db and b"n3w" not in db, "passwords must never be stored"


def test_import(tmp_path: Path) -> None:
    from xmppx.auth import derive_scram_credentials

    ready = [
        derive_scram_credentials("pw", h, iterations=4096).to_rfc5803() for h in ("sha1", "sha256")
    ]
    lines = [json.dumps({"jid": f"user{i}@localhost", "password": f"pw{i}"}) for i in range(20)]
    lines.append(json.dumps({"jid": "hashed@localhost", "scram": ready}))
    src = tmp_path / "users.jsonl"
    src.write_text("\n".join(lines) + "\n")
    r = run(["import", str(src)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"imported 21 accounts in [\d.]+ s", r.stderr)
    assert len(run(["listusers"], tmp_path).stdout.split()) == 21
    src.write_text(json.dumps({"jid": "x@localhost"}) + "\n")
    r = run(["import", str(src)], tmp_path)
    assert r.returncode == 2 and "users.jsonl:1:" in r.stderr


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ({"jid": 5, "password": "pw"}, "users.jsonl:2: 'jid' must be a string"),
        ({"jid": "a@localhost", "password": "pw"}, "users.jsonl:2: a@localhost is on line 1"),
        ({"jid": "b@localhost", "password": "bell\u0007"}, "users.jsonl:2: unusable password"),
        (["b@localhost", "pw"], "users.jsonl:2: each line must be a JSON object"),
        (b"\xff\xfe not text", "users.jsonl:2: not UTF-8 text"),
    ],
)
def test_import_checks_every_line_before_writing(
    tmp_path: Path, second_line: object, message: str
) -> None:
    """A bad line anywhere is reported with its number, and nothing is imported."""
    src = tmp_path / "users.jsonl"
    first = json.dumps({"jid": "a@localhost", "password": "pw"}).encode() + b"\n"
    rest = second_line if isinstance(second_line, bytes) else json.dumps(second_line).encode()
    src.write_bytes(first + rest + b"\n")
    r = run(["import", str(src)], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"xmppx-server: {src.parent}/{message}"), r.stderr
    assert run(["listusers"], tmp_path).stdout.split() == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_in_use_and_bad_certificate(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(["--host", "127.0.0.1", "--c2s-port", str(port), "--c2s-tls-port", "-1"], tmp_path)
    assert r.returncode == 1
    assert "cannot listen (address in use)" in r.stderr.strip().splitlines()[-1]
    conf = tmp_path / "tls.toml"
    conf.write_text(f"[tls]\ncert = '{tmp_path}/none.crt'\nkey = '{tmp_path}/none.key'\n")
    r = run(["--config", str(conf), "--host", "127.0.0.1", "--c2s-port", "0"], tmp_path)
    assert r.returncode == 1
    assert (
        r.stderr.strip().splitlines()[-1]
        == f"xmppx-server: TLS file {tmp_path}/none.crt does not exist"
    )


async def test_zero_config_run_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    """No config file: domain localhost, data in $XDG_DATA_HOME/xmppx, a self-signed
    certificate made on first run; SIGTERM shuts down cleanly."""
    assert run(["adduser", "romeo@localhost"], tmp_path, stdin="pw\n").returncode == 0
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    c2s, tls = _free_port(), _free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "--host",
        "127.0.0.1",
        "--c2s-port",
        str(c2s),
        "--c2s-tls-port",
        str(tls),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    line = b""
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
        while b"serving localhost (" not in line:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert f"c2s {c2s}".encode() in line and f"c2s_tls {tls}".encode() in line
        # uvloop when installed (the test extras install it), so slixmpp below logs in
        # through uvloop's transports
        expected_loop = b"uvloop" if importlib.util.find_spec("uvloop") else b"asyncio"
        assert line.rstrip().endswith(b"event loop " + expected_loop), line
        data_dir = tmp_path / "xdg" / "xmppx"
        assert (data_dir / "localhost.crt").exists()
        assert (data_dir / "localhost.key").stat().st_mode & 0o077 == 0, "the key is private"
        import slixmpp

        client = slixmpp.ClientXMPP("romeo@localhost/cli", "pw")
        client.ssl_context = client_tls_context(data_dir)
        started = asyncio.get_running_loop().create_future()
        client.add_event_handler("session_start", lambda _: started.done() or started.set_result(1))
        client.connect("127.0.0.1", c2s)
        await asyncio.wait_for(started, 60)
        ended = asyncio.get_running_loop().create_future()
        client.add_event_handler("stream_error", lambda e: ended.done() or ended.set_result(e))
        proc.send_signal(signal.SIGTERM)
        assert (await asyncio.wait_for(ended, 10))["condition"] == "system-shutdown"
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        rest = await proc.stderr.read() if proc.stderr is not None else b""
        print("server stderr:", (line + rest).decode(errors="replace")[-3000:])
        raise
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_empty_password_refused(tmp_path: Path, stdin: str) -> None:
    r = run(["adduser", "romeo@localhost"], tmp_path, stdin=stdin)
    assert r.returncode == 2 and "empty" in r.stderr


def test_common_options_before_or_after_the_subcommand(tmp_path: Path) -> None:
    """--data-dir (like --config, --storage, --domain) works on either side of it."""
    before, after = tmp_path / "before", tmp_path / "after"
    r = run(["--data-dir", str(before), "adduser", "romeo@localhost"], tmp_path, stdin="pw\n")
    assert r.returncode == 0, r.stderr
    r = run(["adduser", "--data-dir", str(after), "juliet@localhost"], tmp_path, stdin="pw\n")
    assert r.returncode == 0, r.stderr
    assert run(["--data-dir", str(before), "listusers"], tmp_path).stdout.split() == [
        "romeo@localhost"
    ]
    assert run(["listusers", "--data-dir", str(after)], tmp_path).stdout.split() == [
        "juliet@localhost"
    ]
    assert not (tmp_path / "xdg" / "xmppx" / "xmppx.db").exists()


def _roster_of(tmp_path: Path, user: str) -> dict[str, str]:
    """{contact: subscription} of ``user``, read from the store the CLI wrote."""
    from xmppx.server import load_config
    from xmppx.storage import open_storage

    url = load_config(None, data_dir=str(tmp_path / "xdg" / "xmppx")).storage_url

    async def read() -> dict[str, str]:
        storage = await open_storage(url)
        try:
            roster = await storage.roster.get_roster(user)
        finally:
            await storage.close()
        return {item.contact: item.subscription for item in roster.items}

    return asyncio.run(read())


def test_deluser_cancels_the_accounts_subscriptions(tmp_path: Path) -> None:
    """``deluser`` removes an account as the server does (XEP-0077 §3.2): the contacts'
    rosters no longer share presence with the name, whoever registers it next."""
    lines = [
        {"jid": "juliet@localhost", "password": "pw", "roster": [
            {"jid": "romeo@localhost", "subscription": "both"}]},
        {"jid": "romeo@localhost", "password": "pw", "roster": [
            {"jid": "juliet@localhost", "subscription": "both"}]},
    ]  # fmt: skip
    src = tmp_path / "users.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run(["import", str(src)], tmp_path).returncode == 0
    assert _roster_of(tmp_path, "romeo@localhost") == {"juliet@localhost": "both"}
    r = run(["deluser", "juliet@localhost"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert run(["listusers"], tmp_path).stdout.split() == ["romeo@localhost"]
    assert _roster_of(tmp_path, "romeo@localhost").get("juliet@localhost", "none") == "none"


async def _serving(proc: asyncio.subprocess.Process) -> str:
    """Wait for the server's start line; return it."""
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 60)
    while b"serving localhost (" not in line:
        assert line, "the server exited before serving"
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
    return line.decode()


async def _stderr_line(proc: asyncio.subprocess.Process, needle: bytes) -> bytes:
    assert proc.stderr is not None
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert line, f"the server exited before logging {needle!r}"
        if needle in line:
            return line


SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


async def _plain_login(port: int, user: str, password: str) -> bytes:
    """SASL PLAIN over direct TLS: what the server answered."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    writer.write(
        b"<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams'>"
        + f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>".encode()
    )
    got = b""
    while b"</failure>" not in got and b"<success" not in got:
        chunk = await asyncio.wait_for(reader.read(4096), 30)
        assert chunk, got
        got += chunk
    writer.close()
    return got


async def _presented_certificate(port: int) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test compares the certificate itself
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    writer.close()
    return bytes(der)


async def test_a_running_server_holds_its_data_dir_and_reloads_its_certificate(
    tmp_path: Path,
) -> None:
    """While ``xmppx-server`` runs: ``deluser`` refuses (the account's sessions would
    live on) and names the XEP-0133 command to use, a second server on the same data dir
    refuses to start; SIGHUP reads the certificate again (a broken file leaves the one
    in use)."""
    from xmppx.server.tls import ensure_certificate

    first = ensure_certificate(tmp_path / "first", "localhost")
    second = ensure_certificate(tmp_path / "second", "localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(first.cert.read_bytes())
    key.write_bytes(first.key.read_bytes())
    conf = tmp_path / "xmppx.toml"
    conf.write_text(f"[tls]\ncert = '{cert}'\nkey = '{key}'\n[log]\nformat = 'json'\n")
    assert run(["adduser", "romeo@localhost"], tmp_path, stdin="pw\n").returncode == 0
    tls = _free_port()
    ports = ["--host", "127.0.0.1", "--c2s-port", str(_free_port()), "--c2s-tls-port", str(tls)]
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--config", str(conf), *ports, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        banner = json.loads(await _serving(proc))  # the log is JSON lines, the banner too
        assert banner["level"] == "info" and "serving localhost (" in banner["msg"]
        # a failed login is logged with the address it came from
        assert b"<failure" in await _plain_login(tls, "romeo", "wrong")
        failed = json.loads(await _stderr_line(proc, b"authentication failure"))
        assert failed["msg"].startswith("authentication failure from 127.0.0.1 for romeo")
        r = await asyncio.to_thread(run, ["deluser", "romeo@localhost"], tmp_path)
        assert r.returncode == 1
        assert f"(process {proc.pid})" in r.stderr and "delete-user" in r.stderr, r.stderr
        assert run(["listusers"], tmp_path).stdout.split() == ["romeo@localhost"]
        again = await asyncio.to_thread(
            run, ["--host", "127.0.0.1", "--c2s-port", "0", "--c2s-tls-port", "-1"], tmp_path
        )
        assert again.returncode == 1
        assert f"in use by process {proc.pid}" in again.stderr, again.stderr
        der = ssl.PEM_cert_to_DER_cert
        assert await _presented_certificate(tls) == der(first.cert.read_text())
        cert.write_bytes(second.cert.read_bytes())
        key.write_bytes(second.key.read_bytes())
        proc.send_signal(signal.SIGHUP)
        await _stderr_line(proc, b"TLS certificate reloaded")
        assert await _presented_certificate(tls) == der(second.cert.read_text())
        cert.write_text("not a certificate\n")
        proc.send_signal(signal.SIGHUP)
        await _stderr_line(proc, b"not reloaded")
        assert await _presented_certificate(tls) == der(second.cert.read_text())
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # the server gone, deluser works
    assert run(["deluser", "romeo@localhost"], tmp_path).returncode == 0
