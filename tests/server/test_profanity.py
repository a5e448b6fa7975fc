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
from xmppx.core import parse_jid
from xmppx.modules.carbons import Carbons

ROMEO = parse_jid("romeo@localhost")

pytestmark = pytest.mark.skipif(
    shutil.which("profanity") is None or shutil.which("tmux") is None,
    reason="needs Debian's profanity and tmux (apt-get install profanity tmux)",
)


class Tmux:
    """A program in a detached tmux session on a private tmux server (its own socket,
    so no other tmux server's environment leaks in), with its own HOME and XDG dirs."""

    def __init__(self, home: Path, command: str) -> None:
        self.name = "xmppx-" + uuid.uuid4().hex[:8]
        self.home = home
        env = (
            f"env HOME={home} XDG_CONFIG_HOME={home}/.config XDG_DATA_HOME={home}/.local/share "
            "TERM=xterm-256color"
        )
        self._tmux(
            "new-session", "-d", "-s", self.name, "-x", "200", "-y", "50", f"{env} {command}"
        )

    def _tmux(self, *args: str, check: bool = True) -> str:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], check=check, capture_output=True, text=True
        ).stdout

    def type(self, text: str, enter: bool = True) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        if enter:
            self._tmux("send-keys", "-t", self.name, "Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    async def wait_for(self, text: str, timeout: float = 30) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            await asyncio.sleep(0.2)
        raise AssertionError(f"{text!r} not on screen:\n{self.screen()}")

    async def clear(self) -> None:
        """``/clear`` the current window, so that what is awaited next is new."""
        self.type("/clear")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while "/clear" in self.screen() or len(self.screen().split()) > 40:
            assert loop.time() < deadline, f"the window did not clear:\n{self.screen()}"
            await asyncio.sleep(0.1)

    async def login(self, jid: str, port: int) -> None:
        """``/connect`` over STARTTLS, trusting the self-signed certificate, in a
        cleared console (so the prompt and success line are this login's)."""
        await self.wait_for("Profanity", 30)
        await self.clear()
        self.type(f"/connect {jid} server 127.0.0.1 port {port} tls trust")
        await self.wait_for("password", 30)
        self.type(PASSWORD)
        await self.wait_for("logged in successfully", 30)

    def kill(self) -> None:
        self._tmux("kill-server", check=False)


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
        # Profanity enables XEP-0280 carbons after login, and reports a refusal
        carbons = next(m for m in server.modules if isinstance(m, Carbons))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not any(carbons.enabled(s) for s in server.sessions.resources(ROMEO)):
            assert loop.time() < deadline, f"carbons never enabled:\n{term.screen()}"
            await asyncio.sleep(0.1)
        assert "carbons" not in term.screen().lower(), term.screen()
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

        romeo.type("/win 1")
        await romeo.wait_for("-- juliet@localhost")
        await romeo.clear()
        await juliet.login("juliet@localhost", port)
        await juliet.wait_for("<< chat message: romeo@localhost")
        juliet.type("/win 2")
        await juliet.wait_for("Parting is such sweet sorrow")
        await romeo.wait_for("++ juliet@localhost")  # she is back, in a cleared console
        deadline = loop.time() + 10  # delivered, then deleted from the store
        while await server.storage.offline.count("juliet@localhost"):
            assert loop.time() < deadline, "the delivered message stayed stored"
            await asyncio.sleep(0.1)
        romeo.type("/quit")
        juliet.type("/quit")
    finally:
        romeo.kill()
        juliet.kill()
