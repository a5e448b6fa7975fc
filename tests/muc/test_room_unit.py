"""``Room`` without a server: a recording host with a hand-driven clock, so history
windows and rate limits are tested exactly, and the configuration form's rules."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.muc.conftest import error_condition
from xmppx import ns
from xmppx.core import BareJID, Element, FullJID, parse, parse_jid
from xmppx.errors import StanzaError
from xmppx.modules.muc._config import RoomConfig, apply_form
from xmppx.modules.muc._room import AffiliationRecord, Limits, Room

ROOM = BareJID("coven@chat.shakespeare.lit")
CRONE = FullJID("crone1@shakespeare.lit/desktop")
HAG = FullJID("hag66@shakespeare.lit/pda")
WICCA = FullJID("wiccarocks@shakespeare.lit/laptop")
T0 = datetime.datetime(2002, 10, 13, 23, 58, tzinfo=datetime.UTC)


@dataclass
class FakeHost:
    domain: str = "chat.shakespeare.lit"
    limits: Limits = field(
        default_factory=lambda: Limits(
            max_occupants=5,
            admin_extra=1,
            history_size=10,
            history_bytes=4096,
            message_rate=1.0,
            message_burst=2,
            pending_iqs=2,
            subject_chars=40,
        )
    )
    sent: list[tuple[str, Element]] = field(default_factory=list)
    wall: datetime.datetime = T0
    mono: float = 0.0
    saved: list[str] = field(default_factory=list)
    closed: list[Room] = field(default_factory=list)

    def send(self, stanza: Element, to: BareJID | FullJID) -> None:
        stanza.set("to", str(to))
        self.sent.append((str(to), stanza))

    def now(self) -> datetime.datetime:
        return self.wall

    def clock(self) -> float:
        return self.mono

    def save_room(self, room: Room, *, affiliations: bool = False) -> None:
        self.saved.append("room")

    def save_affiliation(self, room: Room, user: str) -> None:
        self.saved.append(user)

    def delete_room(self, room: Room) -> None:
        self.saved.append("deleted")

    def room_closed(self, room: Room) -> None:
        self.closed.append(room)

    def load_vcard(
        self, user: BareJID, asker: BareJID, answer: Callable[[Element | StanzaError], None]
    ) -> bool:
        return False  # no vCards kept: a vCard request is forwarded like any other

    def session_joined(self, jid: FullJID, room: Room) -> None:
        pass

    def session_left(self, jid: FullJID, room: Room) -> None:
        pass

    def invite(
        self, room: Room, invitee: BareJID | FullJID, message: Element, original: Element
    ) -> None:
        room.admit_invitee(invitee.bare)
        self.send(message, invitee)

    def take(self, to: FullJID) -> list[Element]:
        out = [s for t, s in self.sent if t == str(to)]
        self.sent = [(t, s) for t, s in self.sent if t != str(to)]
        return out


def stanza(text: str, sender: FullJID) -> Element:
    el = parse(text.encode())
    el.set("from", str(sender))
    return el


def make_room(host: FakeHost, **config: object) -> Room:
    return Room(
        host,
        ROOM,
        RoomConfig(**config),  # type: ignore[arg-type]
        affiliations={str(CRONE.bare): AffiliationRecord(affiliation="owner")},
    )


def enter(room: Room, who: FullJID, nick: str, history: str = "") -> None:
    x = f"<x xmlns='{ns.MUC}'>{history}</x>"
    room.on_presence(
        who, stanza(f"<presence to='{ROOM}/{nick}'>{x}</presence>", who), nick, "available"
    )


def say(room: Room, who: FullJID, body: str) -> None:
    room.on_message(
        who,
        stanza(f"<message to='{ROOM}' type='groupchat'><body>{body}</body></message>", who),
        None,
        "groupchat",
    )


def bodies(stanzas: list[Element]) -> list[str]:
    return [
        s.findtext(ns.clark(ns.CLIENT, "body")) or ""
        for s in stanzas
        if s.name == "message"
        and s.get("type") != "error"
        and s.find(ns.clark(ns.CLIENT, "body")) is not None
    ]


def test_history_windows() -> None:
    """§7.2.14: seconds and since select by time; maxchars keeps whole stanzas."""
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    for n in range(4):
        host.wall = T0 + datetime.timedelta(minutes=n)
        host.mono += 10  # refill the bucket
        say(room, CRONE, f"line {n}")
    host.wall = T0 + datetime.timedelta(minutes=4)
    host.sent.clear()
    enter(room, HAG, "thirdwitch", "<history seconds='150'/>")
    assert bodies(host.take(HAG)) == ["line 2", "line 3"]
    room.on_presence(
        HAG, stanza("<presence type='unavailable'/>", HAG), "thirdwitch", "unavailable"
    )
    host.sent.clear()
    enter(room, HAG, "thirdwitch", "<history since='2002-10-13T23:59:00Z'/>")
    assert bodies(host.take(HAG)) == ["line 1", "line 2", "line 3"]
    room.on_presence(
        HAG, stanza("<presence type='unavailable'/>", HAG), "thirdwitch", "unavailable"
    )
    host.sent.clear()
    one = len(
        next(iter(room.history)).stanza.copy().serialize().decode()
    )  # a rough size: the delivered stanza is longer (to, delay)
    enter(room, HAG, "thirdwitch", f"<history maxchars='{one}'/>")
    assert bodies(host.take(HAG)) == [], "a stanza is never cut to fit"
    room.on_presence(
        HAG, stanza("<presence type='unavailable'/>", HAG), "thirdwitch", "unavailable"
    )
    host.sent.clear()
    enter(room, HAG, "thirdwitch", "<history maxchars='100000' maxstanzas='1'/>")
    assert bodies(host.take(HAG)) == ["line 3"]
    room.on_presence(
        HAG, stanza("<presence type='unavailable'/>", HAG), "thirdwitch", "unavailable"
    )
    host.sent.clear()
    # further back than any date (it used to raise OverflowError and drop the joiner)
    enter(room, HAG, "thirdwitch", "<history seconds='100000000000'/>")
    assert bodies(host.take(HAG)) == ["line 0", "line 1", "line 2", "line 3"]


def test_history_is_bounded_in_bytes() -> None:
    """§7.2.13 history within ``Limits.history_bytes`` (4096 here) as well as
    ``history_size`` messages: large messages push the oldest out, and one larger than
    the whole budget is delivered but not kept."""
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    for n in range(3):
        host.mono += 10  # refill the bucket
        say(room, CRONE, f"{n}" + "x" * 1500)
    assert [e.stanza.findtext(ns.clark(ns.CLIENT, "body"))[0] for e in room.history] == [
        "1",
        "2",
    ]
    assert sum(e.size for e in room.history) <= 4096
    host.mono += 10
    host.sent.clear()
    say(room, CRONE, "huge" + "y" * 5000)
    assert bodies(host.take(CRONE)) == ["huge" + "y" * 5000]  # reflected all the same
    assert len(room.history) == 0
    for n in range(12):
        host.mono += 10
        say(room, CRONE, f"short {n}")
    assert len(room.history) == 10  # history_size still counts
    assert room._history_bytes == sum(e.size for e in room.history)
    host.sent.clear()
    enter(room, HAG, "thirdwitch")
    assert bodies(host.take(HAG)) == [f"short {n}" for n in range(2, 12)]


def test_rate_limit_refills_with_time() -> None:
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    host.sent.clear()
    for n in range(3):
        say(room, CRONE, f"m{n}")
    got = host.take(CRONE)
    assert bodies(got) == ["m0", "m1"]
    errors = [s for s in got if s.get("type") == "error"]
    assert len(errors) == 1
    assert error_condition(errors[0]) == "policy-violation"
    host.mono += 1.0  # one token back at 1 message/second
    say(room, CRONE, "m3")
    assert bodies(host.take(CRONE)) == ["m3"]


def test_availability_and_nick_changes_share_the_rate_limit() -> None:
    """What the room copies to every occupant is paced like groupchat: availability
    changes (§7.7) and nick changes (§7.6) past the burst are policy-violation (wait),
    and the others keep seeing the presence before."""
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    enter(room, HAG, "thirdwitch")
    host.sent.clear()
    for n in range(3):
        status = f"<presence to='{ROOM}/thirdwitch'><status>s{n}</status></presence>"
        room.on_presence(HAG, stanza(status, HAG), "thirdwitch", "available")
    seen = [p.findtext(ns.clark(ns.CLIENT, "status")) for p in host.take(CRONE)]
    assert seen == ["s0", "s1"]
    (refusal,) = [s for s in host.take(HAG) if s.get("type") == "error"]
    assert error_condition(refusal) == "policy-violation"
    rename = stanza(f"<presence to='{ROOM}/hecate'/>", HAG)
    room.on_presence(HAG, rename, "hecate", "available")
    assert "thirdwitch" in room.occupants and not host.take(CRONE)
    (refusal,) = host.take(HAG)
    assert error_condition(refusal) == "policy-violation"
    host.mono += 1.0  # one token back
    room.on_presence(HAG, rename, "hecate", "available")
    assert "hecate" in room.occupants


def test_a_subject_longer_than_the_limit_is_not_acceptable() -> None:
    """``muc.max_subject_chars``: every entrant is sent the subject (§7.2.15), so its
    size is bounded; the refused one leaves the subject as it was."""
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    host.sent.clear()
    for text in ("x" * 41, "x" * 40):
        room.on_message(
            CRONE,
            stanza(
                f"<message to='{ROOM}' type='groupchat'><subject>{text}</subject></message>", CRONE
            ),
            None,
            "groupchat",
        )
    first, second = host.take(CRONE)
    assert error_condition(first) == "not-acceptable"
    assert second.findtext(ns.clark(ns.CLIENT, "subject")) == "x" * 40
    assert room.subject == "x" * 40


def test_admin_set_is_all_or_nothing() -> None:
    """§9.2: one refused item and none of the request is applied."""
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    enter(room, HAG, "thirdwitch")
    host.sent.clear()
    iq = stanza(
        f"<iq type='set' id='a1' to='{ROOM}'><query xmlns='{ns.MUC_ADMIN}'>"
        f"<item affiliation='member' jid='{WICCA.bare}'/>"
        f"<item affiliation='outcast' jid='{CRONE.bare}'/></query></iq>",
        CRONE,
    )
    room.on_iq(CRONE, iq, None, "set")
    (answer,) = host.take(CRONE)
    assert answer.get("type") == "error", answer.serialize()
    assert error_condition(answer) == "conflict"
    assert str(WICCA.bare) not in room.affiliations
    assert room.occupants.keys() == {"firstwitch", "thirdwitch"}


def test_empty_room_closes_unless_persistent() -> None:
    host = FakeHost()
    room = make_room(host, persistent=True)
    enter(room, CRONE, "firstwitch")
    room.session_gone(CRONE)
    assert host.closed == [] and room.occupants == {}
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    room.session_gone(CRONE)
    assert host.closed == [room]


def test_pending_iqs_are_bounded() -> None:
    """§17.4: forwarded iqs never answered are dropped oldest first, each answered with
    remote-server-timeout, so a silent occupant cannot grow the table."""
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    enter(room, HAG, "thirdwitch")
    host.sent.clear()
    for n in range(3):
        iq = stanza(
            f"<iq type='get' id='q{n}' to='{ROOM}/firstwitch'><query xmlns='jabber:iq:version'/>"
            "</iq>",
            HAG,
        )
        room.on_iq(HAG, iq, "firstwitch", "get")
    assert len(host.take(CRONE)) == 3
    (timeout,) = host.take(HAG)
    assert timeout.get("id") == "q0" and timeout.get("type") == "error"
    assert len(room._pending_iqs) == 2


def test_vcard_requests_to_an_occupant_without_a_vcard_store() -> None:
    """XEP-0054 through §17.4: with no vCards kept by the server (the host says so), a
    vCard get to an occupant JID is forwarded like any other iq; a set is forbidden
    either way (§3.2), the occupant's client never asked."""
    host = FakeHost()
    room = make_room(host)
    enter(room, CRONE, "firstwitch")
    enter(room, HAG, "thirdwitch")
    host.sent.clear()
    get = stanza(
        f"<iq type='get' id='v1' to='{ROOM}/firstwitch'><vCard xmlns='vcard-temp'/></iq>", HAG
    )
    room.on_iq(HAG, get, "firstwitch", "get")
    (forwarded,) = host.take(CRONE)
    assert forwarded.get("from") == f"{ROOM}/thirdwitch" and forwarded.get("id") != "v1"
    put = stanza(
        f"<iq type='set' id='v2' to='{ROOM}/firstwitch'><vCard xmlns='vcard-temp'/></iq>", HAG
    )
    room.on_iq(HAG, put, "firstwitch", "set")
    (refused,) = host.take(HAG)
    assert (refused.get("id"), error_condition(refused)) == ("v2", "forbidden")
    assert host.take(CRONE) == []


def test_config_form_rules() -> None:
    """§10.1.3: unacceptable values are not-acceptable; an empty submission keeps the
    configuration; a stored configuration with junk still loads."""
    base = RoomConfig()
    assert apply_form(base, {}, max_users_cap=10, history_cap=5) == base
    new = apply_form(
        base,
        {
            "muc#roomconfig_roomname": ["A Dark Cave"],
            "muc#roomconfig_moderatedroom": ["true"],
            "muc#roomconfig_maxusers": ["none"],
            "muc#maxhistoryfetch": ["5"],
        },
        max_users_cap=10,
        history_cap=5,
    )
    assert (new.name, new.moderated, new.max_users, new.history_fetch) == (
        "A Dark Cave",
        True,
        0,
        5,
    )
    for bad in (
        {"muc#roomconfig_moderatedroom": ["maybe"]},
        {"muc#roomconfig_maxusers": ["11"]},
        {"muc#roomconfig_maxusers": ["ten"]},
        {"muc#maxhistoryfetch": ["6"]},
        {"muc#roomconfig_whois": ["none"]},
        {"muc#roomconfig_allowpm": ["everybody"]},
        {"muc#roomconfig_passwordprotectedroom": ["1"]},
    ):
        with pytest.raises(StanzaError) as info:
            apply_form(base, bad, max_users_cap=10, history_cap=5)
        assert info.value.condition == "not-acceptable", bad
    stored = {**new.to_json(), "moderated": "yes", "unknown": 1}
    loaded = RoomConfig.from_json(stored)
    assert loaded.name == "A Dark Cave" and loaded.moderated is False


def test_domain_ban_matches_every_user_of_the_domain() -> None:
    """§9.2: banning a bare domain bans each user@domain."""
    host = FakeHost()
    room = make_room(host)
    room.affiliations["shakespeare.lit"] = AffiliationRecord(affiliation="outcast")
    assert room.affiliation(parse_jid("hag66@shakespeare.lit").bare) == "outcast"
    room.affiliations.pop("shakespeare.lit")
    assert room.affiliation(parse_jid("hag66@shakespeare.lit").bare) == "none"
