"""A real console client: Profanity (Debian's package) logs into xmppx over STARTTLS and
chats with a slixmpp user, driven through tmux the way a person types (issue 3's "done
when").  Skipped, with the reason, where profanity or tmux is not installed; scripts/check
installs both."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import PASSWORD, slix_close, slix_connect

pytestmark = pytest.mark.skipif(
    shutil.which("profanity") is None or shutil.which("tmux") is None,
    reason="needs Debian's profanity and tmux (apt-get install profanity tmux)",
)


class Tmux:
    """One detached tmux session running a program in its own HOME."""

    def __init__(self, home: Path, command: str) -> None:
        self.name = "xmppx-" + uuid.uuid4().hex[:8]
        self.home = home
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                "200",
                "-y",
                "50",
                f"env HOME={home} TERM=xterm-256color {command}",
            ],
            check=True,
        )

    def type(self, text: str, enter: bool = True) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        if enter:
            subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    async def wait_for(self, text: str, timeout: float = 30) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            await asyncio.sleep(0.2)
        raise AssertionError(f"{text!r} not on screen:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False, capture_output=True)


async def test_profanity_logs_in_over_tls_and_chats(make_server: Any, tmp_path: Path) -> None:
    server = await make_server()
    port = server.ports["c2s"]
    juliet = await slix_connect(server, "juliet@localhost/balcony")
    juliet.send_presence()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    juliet.add_event_handler("message", inbox.put_nowait)
    home = tmp_path / "home"
    home.mkdir()
    term = Tmux(home, "profanity")
    try:
        await term.wait_for("Profanity", 30)
        term.type(f"/connect romeo@localhost server 127.0.0.1 port {port} tls trust")
        await term.wait_for("password", 30)
        term.type(PASSWORD)
        await term.wait_for("logged in successfully", 30)
        term.type("/msg juliet@localhost Wherefore art thou, Juliet?")
        msg = await asyncio.wait_for(inbox.get(), 30)
        assert msg["body"] == "Wherefore art thou, Juliet?"
        assert str(msg["from"]).startswith("romeo@localhost/")
        juliet.send_message(mto=msg["from"], mbody="Here, on the balcony", mtype="chat")
        await term.wait_for("Here, on the balcony", 30)
        term.type("/quit")
    finally:
        term.kill()
        await slix_close(juliet)
