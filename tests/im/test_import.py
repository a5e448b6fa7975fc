"""``xmppx-server import`` with rosters (benchmark provisioning): imported rosters are
what a logged-in client then gets, and presence flows between imported contacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.im.conftest import Peer, is_presence
from tests.server.test_cli import run


async def test_import_with_rosters(
    tmp_path: Path, make_server: Any, server_storage_url: str | None
) -> None:
    lines = [
        {
            "jid": "romeo@localhost",
            "password": "pw",
            "roster": [
                {
                    "jid": "juliet@localhost",
                    "name": "Juliet",
                    "groups": ["Capulets", "Friends"],
                    "subscription": "both",
                }
            ],
        },
        {
            "jid": "juliet@localhost",
            "password": "pw",
            "roster": [{"jid": "romeo@localhost", "subscription": "both"}],
        },
    ]
    src = tmp_path / "users.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    data = tmp_path / "xdg" / "xmppx"
    storage = ["--storage", server_storage_url] if server_storage_url else []
    r = run(["import", str(src), "--data-dir", str(data), *storage], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "imported 2 accounts and 2 roster items" in r.stderr

    server = await make_server(users=(), data_dir=str(data))
    romeo = await Peer.connect(server, "romeo@localhost/orchard", "pw")
    items = await romeo.items()
    assert items["juliet@localhost"] == {
        "jid": "juliet@localhost",
        "name": "Juliet",
        "subscription": "both",
    }
    juliet = await Peer.connect(server, "juliet@localhost/balcony", "pw")
    juliet.presence()
    romeo.presence()
    await romeo.expect(is_presence("juliet@localhost/balcony"))
    await juliet.expect(is_presence("romeo@localhost/orchard"))
    await romeo.close()
    await juliet.close()


def test_import_rejects_bad_rosters(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    for roster in (
        [{"jid": "juliet@localhost", "subscription": "sometimes"}],
        [{"jid": "juliet@localhost/balcony"}],
        [{"jid": "juliet@localhost", "groups": ["a", "a"]}],
        {"jid": "juliet@localhost"},
    ):
        src.write_text(json.dumps({"jid": "romeo@localhost", "password": "pw", "roster": roster}))
        r = run(["import", str(src)], tmp_path)
        assert r.returncode == 2 and "bad.jsonl:1:" in r.stderr, (roster, r.stderr)
    assert run(["listusers"], tmp_path).stdout == "", "nothing is written on a bad line"
