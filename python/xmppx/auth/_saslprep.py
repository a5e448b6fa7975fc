"""SASLprep (RFC 4013): the stringprep profile for SASL user names and passwords.

The profile, step by step (RFC 4013 §2, using the RFC 3454 tables of Unicode 3.2 that the
stdlib ``stringprep`` module implements):

1. Map (§2.1): non-ASCII spaces (table C.1.2) become U+0020 SPACE; the characters
   "commonly mapped to nothing" (table B.1, e.g. SOFT HYPHEN, ZERO WIDTH SPACE) are removed.
2. Normalize (§2.2): Unicode normalization form KC, with the Unicode 3.2 database
   (``unicodedata.ucd_3_2_0``) so results do not drift with the Python version.
3. Prohibit (§2.3): tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9.
4. Bidi (§2.4, RFC 3454 §6): a string with any RandALCat character has no LCat character
   and starts and ends with a RandALCat character.
5. Unassigned code points (§2.5, RFC 3454 §7): prohibited in "stored strings" (passwords
   being set, which is the default here), allowed in "queries" (``allow_unassigned=True``,
   e.g. a user name the client presents, RFC 5802 §5.1 ``n``).

The RFC 4013 §3 examples::

    >>> saslprep("I\\u00adX"), saslprep("user"), saslprep("USER")
    ('IX', 'user', 'USER')
    >>> saslprep("\\u00aa"), saslprep("\\u2168")
    ('a', 'IX')
    >>> saslprep("\\u0007")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    SASLprepError: prohibited: U+0007 is prohibited (RFC 4013 §2.3)

An empty result is returned as is: whether an empty name or password is acceptable is the
caller's rule (SCRAM and PLAIN both refuse it).
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable
from typing import Final

__all__ = ["SASLPREP_RULES", "SASLprepError", "saslprep"]

#: The rules a string can break, as ``SASLprepError.rule`` names them.
SASLPREP_RULES: Final = frozenset({"prohibited", "bidi", "unassigned"})

# RFC 4013 §2.3: the prohibited output tables.  C.1.2 is also a mapping source (step 1),
# so it can only reappear through normalization; checking it again is what the RFC says.
_PROHIBITED: Final[tuple[Callable[[str], bool], ...]] = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


class SASLprepError(ValueError):
    """A string cannot be prepared: ``rule`` is one of ``SASLPREP_RULES``."""

    def __init__(self, rule: str, text: str) -> None:
        super().__init__(rule, text)
        self.rule = rule
        self.text = text

    def __str__(self) -> str:
        return f"{self.rule}: {self.text}"


def saslprep(s: str, *, allow_unassigned: bool = False) -> str:
    """Prepare ``s`` with the SASLprep profile (RFC 4013) and return the result.

    ``allow_unassigned=False`` (the default) treats ``s`` as a stored string (RFC 3454 §7):
    use it when a password is set.  ``allow_unassigned=True`` treats it as a query: use it
    for what a peer presents (RFC 5802 §5.1 prepares the user name as a query).

    Raises ``SASLprepError`` naming the broken rule.  A pure-ASCII string of printable
    characters maps to itself, which is checked first as the common fast path.
    """
    if s.isascii() and s.isprintable():
        return s
    if not allow_unassigned:
        for ch in s:
            if stringprep.in_table_a1(ch):
                raise SASLprepError(
                    "unassigned", f"U+{ord(ch):04X} is unassigned in Unicode 3.2 (RFC 4013 §2.5)"
                )
    # §2.1 mapping.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in s if not stringprep.in_table_b1(ch)
    )
    # §2.2 normalization.
    out = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    # §2.3 prohibited output.
    for ch in out:
        if any(table(ch) for table in _PROHIBITED):
            raise SASLprepError("prohibited", f"U+{ord(ch):04X} is prohibited (RFC 4013 §2.3)")
    # §2.4 bidirectional characters (RFC 3454 §6).
    if any(stringprep.in_table_d1(ch) for ch in out):
        if any(stringprep.in_table_d2(ch) for ch in out):
            raise SASLprepError(
                "bidi", "mixes right-to-left and left-to-right characters (RFC 3454 §6)"
            )
        if not (stringprep.in_table_d1(out[0]) and stringprep.in_table_d1(out[-1])):
            raise SASLprepError(
                "bidi", "right-to-left text must start and end with a right-to-left character"
            )
    return out
