"""Seeded JID sets for the JID benchmark (issue 2 §9): about 90% ASCII and 10% non-ASCII
inputs, about 5% of them invalid, each with its expected result.

Valid inputs are built from parts whose preparation is known: the expected parts are
computed with the stdlib's RFC 3454 tables (``stringprep``: B.1 map to nothing, B.2 case
folding) and Unicode 3.2 NFKC (``unicodedata.ucd_3_2_0``), as RFC 6122 Nodeprep,
Resourceprep and RFC 3491 Nameprep map (a ``xn--`` label is decoded, IDNA ToUnicode).  The
inputs are chosen so that no prohibition, bidi or length rule applies to them.  Invalid
inputs each break one RFC 6122/7622 rule (empty part, prohibited or unassigned character,
bidi, a Nodeprep-excluded character, bad domain, a part over 1023 bytes).

Within one call every string is distinct, and as each embeds a random token, sets made
with different seeds practically never share one: the cold-cache benchmark uses a new
seed for every round.
"""

from __future__ import annotations

import random
import stringprep
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["JidCase", "Parts", "jid_cases", "jid_strings"]

Parts = tuple[str, str, str]
"""``(localpart, domainpart, resourcepart)``, ``""`` for an absent part."""

_ALNUM: Final = "abcdefghijklmnopqrstuvwxyz0123456789"
_NAMES: Final = (
    "alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "oscar", "peggy", "romeo", "juliet", "support", "noreply", "admin", "bot",
)  # fmt: skip
_DOMAINS: Final = (
    "example.com", "example.net", "jabber.example.org", "xmpp.example.net",
    "conference.example.com", "im.example.co.uk", "chat.example.org",
)  # fmt: skip
_RESOURCES: Final = (
    "Conversations.", "gajim.", "Dino.", "Monal-iOS.", "phone-", "laptop-", "Home Desktop ",
    "work/", "res@", "Psi+ ",
)  # fmt: skip
_NA_LOCALS: Final = (
    "josé", "Zoë", "Øyvind", "Ελένη", "мария", "Дмитрий", "李雷", "さくら", "Ñandú", "Þór",
    "Straße", "henryⅣ", "محمد", "ömer", "ČESKÝ",
)  # fmt: skip
_NA_DOMAINS: Final = (
    "münchen.example", "Bücher.example", "ΕΛΛΑΔΑ.example", "пример.example", "例え.jp",
    "ＥＸＡＭＰＬＥ.com", "xn--bcher-kva.example", "例え。jp", "café.example.org",
)  # fmt: skip
_NA_RESOURCES: Final = ("Téléphone", "ноутбук", "携帯", "ﬁle-server", "Büro PC", "שלום", "Ⅸ")
_SEPARATORS: Final = (".", "\u3002", "\uff0e", "\uff61")


@dataclass(frozen=True, slots=True)
class JidCase:
    """One input and its expected prepared parts (``None`` when it must be rejected)."""

    text: str
    expected: Parts | None
    non_ascii: bool


# ------------------------------------------------------------ expected preparation
def _nfkc32(s: str) -> str:
    return unicodedata.ucd_3_2_0.normalize("NFKC", s)


def _node(s: str) -> str:
    return _nfkc32("".join(stringprep.map_table_b2(c) for c in s if not stringprep.in_table_b1(c)))


def _resource(s: str) -> str:
    return _nfkc32("".join(c for c in s if not stringprep.in_table_b1(c)))


def _domain(s: str) -> str:
    for sep in _SEPARATORS[1:]:
        s = s.replace(sep, ".")
    labels = s.split(".")
    if labels[-1] == "":
        labels.pop()
    out = []
    for label in labels:
        if label.lower().startswith("xn--"):
            out.append(label[4:].encode("ascii").decode("punycode"))
        else:
            out.append(_node(label))  # Nameprep maps as Nodeprep does (B.1, B.2, NFKC)
    return ".".join(out)


# ----------------------------------------------------------------------- generators
def _token(rng: random.Random) -> str:
    return "".join(rng.choices(_ALNUM, k=rng.randint(3, 6)))


def _ascii_local(rng: random.Random) -> str:
    local = f"{rng.choice(_NAMES)}{rng.choice(('', '.', '_', '-', '+'))}{_token(rng)}"
    return local.capitalize() if rng.random() < 0.15 else local


def _ascii_domain(rng: random.Random) -> str:
    domain = rng.choice(_DOMAINS)
    return domain.upper() if rng.random() < 0.05 else domain


def _valid_ascii(rng: random.Random) -> JidCase:
    r = rng.random()
    if r < 0.02:  # IP literals
        if rng.random() < 0.5:
            domain = f"192.0.2.{rng.randrange(256)}"
            expected_domain = domain
        else:
            last = f"{rng.getrandbits(16):x}"
            domain = f"[2001:DB8::{last.upper()}]"
            expected_domain = f"[2001:db8::{last}]"
        local = _ascii_local(rng)
        return JidCase(f"{local}@{domain}", (local.lower(), expected_domain, ""), False)
    if r < 0.07:  # a server or component: domain, maybe with a resource
        domain = f"{_token(rng)}.{_ascii_domain(rng)}"
        if rng.random() < 0.5:
            return JidCase(domain, ("", domain.lower(), ""), False)
        res = f"{rng.choice(_RESOURCES)}{_token(rng)}"
        return JidCase(f"{domain}/{res}", ("", domain.lower(), res), False)
    local, domain = _ascii_local(rng), _ascii_domain(rng)
    if r < 0.5:
        return JidCase(f"{local}@{domain}", (local.lower(), domain.lower(), ""), False)
    res = f"{rng.choice(_RESOURCES)}{_token(rng)}"
    return JidCase(f"{local}@{domain}/{res}", (local.lower(), domain.lower(), res), False)


def _valid_non_ascii(rng: random.Random) -> JidCase:
    kind = rng.randrange(3)
    local = f"{rng.choice(_NA_LOCALS)}{rng.randrange(10**6)}" if kind != 1 else _ascii_local(rng)
    if local[0] in "مש":  # keep a right-to-left part wholly right-to-left (RFC 3454 §6)
        local = rng.choice(_NA_LOCALS[:10]) + str(rng.randrange(10**6))
    domain = rng.choice(_NA_DOMAINS) if kind != 0 else _ascii_domain(rng)
    parts = [local, "@", domain]
    res = ""
    if rng.random() < 0.5:
        res = rng.choice(_NA_RESOURCES)
        if res != "שלום":
            res += f" {_token(rng)}"
        parts += ["/", res]
    expected = (_node(local), _domain(domain), _resource(res))
    text = "".join(parts)
    return JidCase(text, expected, not text.isascii())


Maker = Callable[[str, str, str], str]


def _invalid_templates() -> tuple[list[Maker], list[Maker]]:
    """(ASCII, non-ASCII) makers of invalid JIDs from a local, domain and token."""
    ascii_bad: list[Maker] = [
        lambda lo, d, t: f"@{d}/{t}",  # empty localpart
        lambda lo, d, t: f"{lo}@{d}/",  # empty resourcepart
        lambda lo, d, t: f"{lo}@",  # empty domainpart
        lambda lo, d, t: f"{lo}@/{t}",
        lambda lo, d, t: f"{lo} {t}@{d}",  # space (C.1.1)
        lambda lo, d, t: f'"{lo}"@{d}',  # Nodeprep-excluded characters (RFC 6122 A.5)
        lambda lo, d, t: f"{lo}&{t}@{d}",
        lambda lo, d, t: f"{lo}:{t}@{d}",
        lambda lo, d, t: f"{lo}<{t}>@{d}",
        lambda lo, d, t: f"{lo}'{t}@{d}",
        lambda lo, d, t: f"{lo}@{t}@{d}",
        lambda lo, d, t: f"{lo}\x07{t}@{d}",  # ASCII control (C.2.1)
        lambda lo, d, t: f"{lo}@{d}/{t}\x00",
        lambda lo, d, t: f"{lo}@exa mple{t}.com",  # not a hostname (STD3)
        lambda lo, d, t: f"{lo}@-{t}.{d}",
        lambda lo, d, t: f"{lo}@{t}_x.{d}",
        lambda lo, d, t: f"{lo}@{t}..{d}",
        lambda lo, d, t: f"{lo}@{'a' * 64}{t}.com",  # a label over 63 octets
        lambda lo, d, t: f"{lo}{'x' * 1024}@{d}",  # parts over 1023 bytes
        lambda lo, d, t: f"{lo}@{d}/{t}{'r' * 1024}",
    ]
    non_ascii_bad: list[Maker] = [
        lambda lo, d, t: f"\u05d0{lo}@{d}",  # bidi: R and L in one part
        lambda lo, d, t: f"{lo}@{d}/\u05d0{t}",
        lambda lo, d, t: f"{lo}\u0221@{d}",  # unassigned in Unicode 3.2
        lambda lo, d, t: f"{lo}@{d}/{t}\U0001f4f1",  # emoji: unassigned in 3.2
        lambda lo, d, t: f"{lo}\u3000{t}@{d}",  # non-ASCII space (C.1.2)
        lambda lo, d, t: f"{lo}\u2028{t}@{d}",  # non-ASCII control (C.2.2)
        lambda lo, d, t: f"{lo}\ue000{t}@{d}",  # private use (C.3)
        lambda lo, d, t: f"{lo}@{t}.\u05d0a.example",  # bidi in a domain label
        lambda lo, d, t: f"{lo}@{d}/{t}\u200e",  # LRM: change display (C.8)
    ]
    return ascii_bad, non_ascii_bad


_ASCII_BAD, _NON_ASCII_BAD = _invalid_templates()


def _invalid(rng: random.Random, non_ascii: bool) -> JidCase:
    maker = rng.choice(_NON_ASCII_BAD if non_ascii else _ASCII_BAD)
    local = _ascii_local(rng).lower()
    text = maker(local, rng.choice(_DOMAINS), _token(rng))
    return JidCase(text, None, not text.isascii())


def jid_cases(
    seed: int = 1, n: int = 2000, *, non_ascii: float = 0.10, invalid: float = 0.05
) -> list[JidCase]:
    """``n`` distinct cases: a share ``non_ascii`` with non-ASCII input, a share
    ``invalid`` (drawn independently) that must be rejected."""
    rng = random.Random(f"jids-{seed}")
    seen: set[str] = set()
    out: list[JidCase] = []
    while len(out) < n:
        wide = rng.random() < non_ascii
        if rng.random() < invalid:
            case = _invalid(rng, wide)
        else:
            case = _valid_non_ascii(rng) if wide else _valid_ascii(rng)
        if case.text not in seen:
            seen.add(case.text)
            out.append(case)
    return out


def jid_strings(seed: int, n: int = 2000) -> list[str]:
    """Just the inputs of ``jid_cases(seed, n)``."""
    return [c.text for c in jid_cases(seed, n)]


if __name__ == "__main__":
    cases = jid_cases()
    print(
        f"{len(cases)} JIDs, {sum(c.non_ascii for c in cases)} non-ASCII, "
        f"{sum(c.expected is None for c in cases)} invalid"
    )
    for c in cases[:: len(cases) // 25]:
        print(repr(c.text), c.expected)
