"""A real console client: Profanity (Debian's package) driven through tmux the way a
person types.  One Profanity logs into xmppx over STARTTLS and chats with a slixmpp user
(issue 3's "done when"); two Profanity users add each other, see each other come and go,
and one gets the message sent while she was offline (issue 4's).  Skipped, with the
reason, where profanity or tmux is not installed; scripts/check installs both."""

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

    async def login(self, jid: str, port: int) -> None:
        """``/connect`` over STARTTLS, trusting the self-signed certificate; waits for
        this login's own password prompt and success line (not an earlier one's)."""
        await self.wait_for("Profanity", 30)
        screen = self.screen()
        prompts, logins = screen.count("password"), screen.count("logged in successfully")
        self.type(f"/connect {jid} server 127.0.0.1 port {port} tls trust")
        await self.wait_for_count("password", prompts + 1)
        self.type(PASSWORD)
        await self.wait_for_count("logged in successfully", logins + 1)

    async def wait_for_count(self, text: str, count: int, timeout: float = 30) -> None:
        """Wait until ``text`` is on screen ``count`` times (a line that comes again)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.screen().count(text) >= count:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{text!r} not {count} times on screen:\n{self.screen()}")

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
        await term.login("romeo@localhost", port)
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


async def test_two_profanity_users_subscribe_see_presence_and_get_offline_messages(
    make_server: Any, tmp_path: Path
) -> None:
    """RFC 6121 end to end with two people at their consoles: romeo asks for juliet's
    presence (§3.1), she approves and asks back, both rosters end in ``both``; romeo
    sees her go offline (§4.5) and come back (§4.2); the message he sent meanwhile is
    stored and delivered when she returns (§8.5.2.2.1, XEP-0160)."""
    server = await make_server()
    port = server.ports["c2s"]
    homes = [tmp_path / "romeo", tmp_path / "juliet"]
    for home in homes:
        home.mkdir()
    romeo, juliet = Tmux(homes[0], "profanity"), Tmux(homes[1], "profanity")
    try:
        await romeo.login("romeo@localhost", port)
        await juliet.login("juliet@localhost", port)

        romeo.type("/sub request juliet@localhost")
        await juliet.wait_for("Received authorization request from romeo@localhost")
        juliet.type("/sub allow romeo@localhost")
        await romeo.wait_for("Subscription received from juliet@localhost")
        juliet.type("/sub request romeo@localhost")
        await romeo.wait_for("Received authorization request from juliet@localhost")
        romeo.type("/sub allow juliet@localhost")
        await juliet.wait_for("Subscription received from romeo@localhost")
        for user, contact in (("romeo", "juliet"), ("juliet", "romeo")):
            item = await server.storage.roster.get_item(f"{user}@localhost", f"{contact}@localhost")
            assert item is not None and (item.subscription, item.ask) == ("both", False)
        romeo.type("/roster")
        await romeo.wait_for("juliet@localhost - both")

        juliet.type("/disconnect")
        await romeo.wait_for("-- juliet@localhost")
        assert "is offline" in romeo.screen()
        romeo.type("/msg juliet@localhost Parting is such sweet sorrow")
        await romeo.wait_for("me: Parting is such sweet sorrow")
        # stored durably before juliet is back (the sender's stanza is accepted then)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not await server.storage.offline.count("juliet@localhost"):
            assert loop.time() < deadline, "the message was not stored for juliet"
            await asyncio.sleep(0.1)

        await juliet.login("juliet@localhost", port)
        await juliet.wait_for("<< chat message: romeo@localhost")
        juliet.type("/win 2")
        await juliet.wait_for("Parting is such sweet sorrow")
        assert await server.storage.offline.count("juliet@localhost") == 0
        romeo.type("/win 1")
        await romeo.wait_for_count("++ juliet@localhost", 1)
        romeo.type("/quit")
        juliet.type("/quit")
    finally:
        romeo.kill()
        juliet.kill()
