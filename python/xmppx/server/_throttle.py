"""Slowing down password guessing (issue: "failed logins slowed per account and per
address with growing delays").

A delay on the *answer* to a failed login slows nobody: a guesser that gives up on an
answer that is late knows the guess was wrong, as a correct one is answered at once.  So
the schedule applies *before* a password is checked, whatever its outcome:

* Each key (the account; the client's address once it has failed) has a time of its
  next check.  A login waits for the latest of its keys', and takes that turn: the
  key's next check moves one delay further, ``base * 2**(n-1)`` after ``n``
  consecutive failures (``base`` before any), capped at ``cap``.  Parallel connections
  queue behind one another, so 200 guesses against one account or from one address
  take minutes (``cap`` each once the delay is at its cap).
* A login that would have to wait more than ``cap`` is not checked at all: it is
  answered at once with SASL ``temporary-auth-failure`` (RFC 6120 §6.5.12; for XEP-0078
  ``resource-constraint``), and counts as no guess.
* A correct password clears nothing (an attacker holding one valid account cannot reset
  the schedule of its address).  The price: while an account is under attack its real
  user waits too, up to ``cap``, or is told to try again later, as with Prosody's and
  ejabberd's failure limits.

State is bounded (``MAX_TRACKED`` keys, oldest forgotten first) and a key is forgotten
``FORGET_AFTER`` seconds after its last failure.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["FORGET_AFTER", "MAX_TRACKED", "AuthThrottle"]

#: Accounts plus addresses remembered at once; enough for a large attack, bounded memory.
MAX_TRACKED: Final = 100_000
#: After 15 minutes without failures a key starts again from the first delay.
FORGET_AFTER: Final = 900.0


@dataclass(slots=True)
class _Entry:
    failures: int
    #: when the next check of this key may run
    next_at: float
    #: the last failure
    last: float


class AuthThrottle:
    """Per-account and per-address scheduling of password checks; see the module
    docstring."""

    def __init__(
        self, *, base: float, cap: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.base = base
        self.cap = cap
        self._clock = clock
        self._keys: OrderedDict[str, _Entry] = OrderedDict()

    def _delay(self, failures: int) -> float:
        return min(self.cap, self.base * float(2 ** min(max(failures, 1) - 1, 30)))

    def turn(self, account: str | None, address: str) -> float | None:
        """Take the next turn to check a password for ``account`` from ``address``: the
        seconds to wait before checking it, or None when that would be more than
        ``cap`` (then do not check it: try again later)."""
        now = self._clock()
        entries = []
        for key in _key_names(account, address):
            entry = self._live(key, now)
            if entry is None and key[0] == "a":
                # logins to one account take turns even before any failure, so that a
                # burst of parallel guesses is not checked all at once; an address only
                # once it has failed (many users may share one)
                entry = self._keys[key] = _Entry(failures=0, next_at=now, last=now)
                self._forget_oldest()
            if entry is not None:
                entries.append(entry)
        at = max([now, *(e.next_at for e in entries)])
        if at - now > self.cap:
            return None
        for entry in entries:
            entry.next_at = at + self._delay(entry.failures)
        return at - now

    def failure(self, account: str | None, address: str) -> None:
        """Record a failed login: the keys' next checks are one longer delay away."""
        now = self._clock()
        for key in _key_names(account, address):
            entry = self._live(key, now) or _Entry(failures=0, next_at=now, last=now)
            entry.failures += 1
            entry.next_at = max(entry.next_at, now + self._delay(entry.failures))
            entry.last = now
            self._keys[key] = entry
            self._keys.move_to_end(key)
        self._forget_oldest()

    def _live(self, key: str, now: float) -> _Entry | None:
        """``key``'s entry, unless it is forgotten: ``FORGET_AFTER`` past its last
        failure, or with none and its turn past."""
        entry = self._keys.get(key)
        if entry is not None and (
            now - entry.last > FORGET_AFTER or (not entry.failures and entry.next_at <= now)
        ):
            del self._keys[key]
            return None
        return entry

    def _forget_oldest(self) -> None:
        while len(self._keys) > MAX_TRACKED:
            self._keys.popitem(last=False)


def _key_names(account: str | None, address: str) -> list[str]:
    """The throttle's keys for a login: the account's, if known, and the address's."""
    return [f"a:{account}", f"i:{address}"] if account else [f"i:{address}"]
