"""Slowing down password guessing (issue: "failed logins slowed per account and per
address with growing delays").

Each failed login is answered late.  For the account and for the address it came from,
failures are *scheduled*: the n-th consecutive failure of a key is answered no earlier
than ``base * 2**(n-1)`` (capped at ``cap``) after the previous one of that key, whatever
the number of parallel connections, so 200 wrong passwords from one address or against
one account take minutes.  A correct password is never delayed (and clears nothing: an attacker
holding one valid account cannot reset the schedule), so the real user logging in from
another address gets in at once.  State is bounded (``MAX_TRACKED`` keys, oldest
forgotten first) and a key is forgotten ``FORGET_AFTER`` seconds after its last failure.
"""

from __future__ import annotations

import time
from collections import OrderedDict
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
    next_at: float
    last: float


class AuthThrottle:
    """Per-account and per-address failure scheduling; see the module docstring."""

    def __init__(self, *, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self._keys: OrderedDict[str, _Entry] = OrderedDict()

    def failure(self, account: str | None, address: str) -> float:
        """Record a failure; return how many seconds to wait before answering it."""
        now = time.monotonic()
        answer_at = now
        for key in (f"a:{account}" if account else None, f"i:{address}"):
            if key is None:
                continue
            entry = self._keys.get(key)
            if entry is None or now - entry.last > FORGET_AFTER:
                entry = _Entry(failures=0, next_at=now, last=now)
            entry.failures += 1
            delay = min(self.cap, self.base * (2 ** min(entry.failures - 1, 30)))
            entry.next_at = max(now, entry.next_at) + delay
            entry.last = now
            self._keys[key] = entry
            self._keys.move_to_end(key)
            answer_at = max(answer_at, entry.next_at)
        while len(self._keys) > MAX_TRACKED:
            self._keys.popitem(last=False)
        return answer_at - now
