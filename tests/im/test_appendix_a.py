"""RFC 6121 Appendix A, row by row: the state machine as a pure function of (state,
stanza), checked against the RFC's tables transcribed here as the RFC prints them."""

from __future__ import annotations

import pytest

from xmppx.modules.roster import (
    BOTH,
    FROM,
    FROM_PO,
    INBOUND,
    NONE,
    NONE_PO,
    OUTBOUND,
    STATES,
    TO,
    inbound,
    item_state,
    outbound,
    state_parts,
)
from xmppx.storage import RosterItem

# The tables of §A.2 (ROUTE?) and §A.3 (DELIVER?), in the RFC's own layout.
TABLES = {
    ("outbound", "subscribe"): """
        | "None"                  |  yes   |  "None + Pending Out"     |
        | "None + Pending Out"    |  yes   |  no state change          |
        | "None + Pending In"     |  yes   |  "None + Pending Out/In"  |
        | "None + Pending Out/In" |  yes   |  no state change          |
        | "To"                    |  yes   |  no state change          |
        | "To + Pending In"       |  yes   |  no state change          |
        | "From"                  |  yes   |  "From + Pending Out"     |
        | "From + Pending Out"    |  yes   |  no state change          |
        | "Both"                  |  yes   |  no state change          |
    """,
    ("outbound", "unsubscribe"): """
        | "None"                  |  yes   |  no state change          |
        | "None + Pending Out"    |  yes   |  "None"                   |
        | "None + Pending In"     |  yes   |  no state change          |
        | "None + Pending Out/In" |  yes   |  "None + Pending In"      |
        | "To"                    |  yes   |  "None"                   |
        | "To + Pending In"       |  yes   |  "None + Pending In"      |
        | "From"                  |  yes   |  no state change          |
        | "From + Pending Out"    |  yes   |  "From"                   |
        | "Both"                  |  yes   |  "From"                   |
    """,
    ("outbound", "subscribed"): """
        | "None"                  |  no    |  no state change          |
        | "None + Pending Out"    |  no    |  no state change          |
        | "None + Pending In"     |  yes   |  "From"                   |
        | "None + Pending Out/In" |  yes   |  "From + Pending Out"     |
        | "To"                    |  no    |  no state change          |
        | "To + Pending In"       |  yes   |  "Both"                   |
        | "From"                  |  no    |  no state change          |
        | "From + Pending Out"    |  no    |  no state change          |
        | "Both"                  |  no    |  no state change          |
    """,
    ("outbound", "unsubscribed"): """
        | "None"                  |  no    |  no state change          |
        | "None + Pending Out"    |  no    |  no state change          |
        | "None + Pending In"     |  yes   |  "None"                   |
        | "None + Pending Out/In" |  yes   |  "None + Pending Out"     |
        | "To"                    |  no    |  no state change          |
        | "To + Pending In"       |  yes   |  "To"                     |
        | "From"                  |  yes   |  "None"                   |
        | "From + Pending Out"    |  yes   |  "None + Pending Out"     |
        | "Both"                  |  yes   |  "To"                     |
    """,
    ("inbound", "subscribe"): """
        | "None"                  |  yes   |  "None + Pending In"      |
        | "None + Pending Out"    |  yes   |  "None + Pending Out/In"  |
        | "None + Pending In"     |  no    |  no state change          |
        | "None + Pending Out/In" |  no    |  no state change          |
        | "To"                    |  yes   |  "To + Pending In"        |
        | "To + Pending In"       |  no    |  no state change          |
        | "From"                  |  no *  |  no state change          |
        | "From + Pending Out"    |  no *  |  no state change          |
        | "Both"                  |  no *  |  no state change          |
    """,
    ("inbound", "unsubscribe"): """
        | "None"                  |  no    |  no state change          |
        | "None + Pending Out"    |  no    |  no state change          |
        | "None + Pending In"     |  yes   |  "None"                   |
        | "None + Pending Out/In" |  yes   |  "None + Pending Out"     |
        | "To"                    |  no    |  no state change          |
        | "To + Pending In"       |  yes   |  "To"                     |
        | "From"                  |  yes   |  "None"                   |
        | "From + Pending Out"    |  yes   |  "None + Pending Out"     |
        | "Both"                  |  yes   |  "To"                     |
    """,
    ("inbound", "subscribed"): """
        | "None"                  |  no    |  no state change          |
        | "None + Pending Out"    |  yes   |  "To"                     |
        | "None + Pending In"     |  no    |  no state change          |
        | "None + Pending Out/In" |  yes   |  "To + Pending In"        |
        | "To"                    |  no    |  no state change          |
        | "To + Pending In"       |  no    |  no state change          |
        | "From"                  |  no    |  no state change          |
        | "From + Pending Out"    |  yes   |  "Both"                   |
        | "Both"                  |  no    |  no state change          |
    """,
    ("inbound", "unsubscribed"): """
        | "None"                  |  no    |  no state change          |
        | "None + Pending Out"    |  yes   |  "None"                   |
        | "None + Pending In"     |  no    |  no state change          |
        | "None + Pending Out/In" |  yes   |  "None + Pending In"      |
        | "To"                    |  yes   |  "None"                   |
        | "To + Pending In"       |  yes   |  "None + Pending In"      |
        | "From"                  |  no    |  no state change          |
        | "From + Pending Out"    |  yes   |  "From"                   |
        | "Both"                  |  yes   |  "From"                   |
    """,
}


def _rows() -> list[tuple[str, str, str, bool, str, bool]]:
    rows = []
    for (direction, stype), text in TABLES.items():
        for line in text.strip().splitlines():
            state, forward, new = (c.strip() for c in line.strip().strip("|").split("|"))
            state = state.strip('"')
            auto = forward.endswith("*")
            new_state = state if new == "no state change" else new.strip('"')
            rows.append((direction, stype, state, forward.startswith("yes"), new_state, auto))
    return rows


ROWS = _rows()


def test_every_state_appears_in_every_table() -> None:
    assert len(ROWS) == 8 * 9
    for (direction, stype), _ in TABLES.items():
        states = {r[2] for r in ROWS if r[0] == direction and r[1] == stype}
        assert states == set(STATES)


@pytest.mark.parametrize(
    ("direction", "stype", "state", "forward", "new", "auto"),
    ROWS,
    ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in ROWS],
)
def test_row(direction: str, stype: str, state: str, forward: bool, new: str, auto: bool) -> None:
    table = OUTBOUND if direction == "outbound" else INBOUND
    assert table[stype][state] == (forward, new)
    t = (outbound if direction == "outbound" else inbound)(stype, state)
    assert (t.forward, t.state) == (forward, new)
    # "*" (§A.3.1): not delivered, the server answers 'subscribed' for the user
    assert (t.reply == "subscribed") == auto


@pytest.mark.parametrize("state", STATES)
def test_states_round_trip_through_roster_items(state: str) -> None:
    sub, ask, pending_in = state_parts(state)
    item = RosterItem(contact="juliet@localhost", subscription=sub, ask=ask)
    assert item_state(item, pending_in) == state
    if sub == "none" and not ask:
        assert item_state(None, pending_in) == state


# §3.4 pre-approval, on top of the tables
@pytest.mark.parametrize("state", [NONE, NONE_PO, TO])
def test_outbound_subscribed_pre_approves(state: str) -> None:
    t = outbound("subscribed", state)
    assert (t.forward, t.state, t.approved) == (False, state, True)
    cancel = outbound("unsubscribed", state, approved=True)
    assert (cancel.forward, cancel.state, cancel.approved) == (False, state, False)


@pytest.mark.parametrize(("state", "after"), [(NONE, FROM), (NONE_PO, FROM_PO), (TO, BOTH)])
def test_pre_approved_request_is_approved_by_the_server(state: str, after: str) -> None:
    t = inbound("subscribe", state, approved=True)
    assert (t.forward, t.state, t.approved, t.reply) == (False, after, False, "subscribed")


def test_approval_is_kept_through_unrelated_changes_and_spent_by_from() -> None:
    assert outbound("subscribe", NONE, approved=True).approved
    assert inbound("subscribed", NONE_PO, approved=True).approved
    assert not outbound("subscribed", "None + Pending In", approved=True).approved
