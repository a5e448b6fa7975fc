"""Pure-Python JID preparation: the reference the Rust backend must match exactly.

RFC 7622 §3 splits a JID and RFC 6122 (Appendix A Nodeprep, Appendix B Resourceprep,
§2.2 with RFC 3490/3491 for the domainpart) prepares each part, on the Unicode 3.2 tables
of RFC 3454 (the stdlib ``stringprep`` module and ``unicodedata.ucd_3_2_0``).  The exact
rules, their order and the error texts are part of the contract: the native backend
returns the same strings and raises ``JIDError`` with the same ``rule`` *and* ``text``.

Profile steps (RFC 3454 §3-§6), applied by ``nodeprep``, ``nameprep``, ``resourceprep``:

1. Unassigned (RFC 3454 §7, table A.1): any code point unassigned in Unicode 3.2 is
   ``unassigned``.  It is checked on the *input*, before mapping: the mapping and NFKC
   never add or remove an unassigned code point, so this accepts and rejects exactly what
   a check after normalisation would, and it keeps newer Unicode data (the Rust NFKC, the
   interpreter's ``str.lower``) away from code points 3.2 did not know.
2. Map: B.1 code points are removed (soft hyphen, zero-width space/joiners, variation
   selectors, ...); Nodeprep and Nameprep then apply B.2 (case folding for NFKC, so
   ``ß`` becomes ``ss`` and final sigma ``ς`` becomes ``σ``).  Resourceprep does not fold.
   ``stringprep.map_table_b2`` uses the interpreter's current ``str.lower``; its few
   results that contain a code point unassigned in 3.2 (Georgian capitals to Nuskhuri,
   Cherokee, U+04C0) are mappings RFC 3454 never had, and are dropped here.
3. NFKC with Unicode 3.2 data (including the 3.2 decompositions of the five CJK
   compatibility ideographs that a later corrigendum changed).
4. Prohibit, scanning the normalised string in order, the first hit deciding the rule:
   ``prohibited`` for C.1.2, C.2.2, C.3-C.9 (all profiles), C.2.1 ASCII controls
   (Nodeprep, Resourceprep) and C.1.1 ASCII space (Nodeprep only);
   ``nodeprep-prohibited`` for the RFC 6122 A.5 characters ``" & ' / : < > @``.
5. Bidi (RFC 3454 §6): if any RandALCat (D.1) is present, any LCat (D.2) is ``bidi``,
   and then the first and the last character must be RandALCat (else ``bidi``).

``prep_jid`` (RFC 7622 §3.1, RFC 6122 §2): split at the first ``/`` (resourcepart is the
rest), then at the first ``@`` before it (RFC 7622 §3.2 step 2; ``@`` is prohibited in
both localpart and domainpart, so ``a@b@c`` is an error either way).  The parts are
prepared left to right (localpart, domainpart, resourcepart); the first error is raised.
A present localpart or resourcepart that is empty, before or after preparation, is
``empty``; more than 1023 UTF-8 bytes after preparation is ``too-long``.

Domainpart (RFC 6122 §2.2):

* ``""`` is ``empty``; one trailing label separator (``.``, U+3002, U+FF0E, U+FF61) is
  removed first, and if nothing is left the domainpart is ``empty``.
* ``[...]`` is an IPv6 literal (RFC 3986 ``IPv6address``, no zone identifier, no
  IPvFuture); it is kept in the RFC 5952 text form (lowercase, no leading zeros, the
  first longest run of two or more zero groups as ``::``, ``::ffff:a.b.c.d`` for an
  IPv4-mapped address); anything else in brackets is ``bad-domain``.
* Otherwise the name is split at every label separator and each label is prepared as
  IDNA2003 ToASCII with ``UseSTD3ASCIIRules`` set and ``AllowUnassigned`` unset would check
  it (RFC 6122 §2.2 requires exactly that), keeping the Unicode form: Nameprep (errors as
  above); an empty label is ``bad-domain``; an ASCII code point other than a letter,
  digit or ``-`` is ``bad-domain``, and so is a leading or trailing ``-``; the label's
  ASCII-compatible (ACE) form must be 1..63 octets (``bad-domain``).  A non-ASCII label
  may not start with ``xn--``.  An ASCII label starting with ``xn--`` is an ACE label: it
  is converted with ToUnicode (punycode-decoded, and it must round-trip: ToASCII of the
  result must give the label back, else ``bad-domain``), so ``xn--bcher-kva.example``
  and ``bücher.example`` are the same domainpart.
* Labels are joined with ``.``.  If the last label is all digits the name must be an
  IPv4 address in dotted-decimal form without leading zeros (RFC 3986 ``IPv4address``),
  else ``bad-domain``: no top-level domain is numeric (RFC 3696 §2), and accepting
  ``1.2.3.256`` or ``127.000.000.001`` as host names would let one host have several
  spellings that resolvers read as addresses.
* The total DNS limit of 253 octets is not enforced (RFC 6122 §2.2 only fixes the XMPP
  limit of 1023 bytes; a component's domainpart need not be a DNS name).

Fast paths: an all-ASCII localpart without C.1.1, C.2.1 or A.5 characters only needs
lowercasing, an ASCII domain label only lowercasing (Nameprep prohibits no ASCII
character), a plain ASCII host name (LDH labels of 1..63 octets, no ACE label, last label
not all digits) only lowercasing, an ASCII resourcepart without controls nothing; the
tests check every ASCII character, and every short host name, against the general path.

During development the profiles were compared with ICU's RFC 3491 Nameprep (which carries
its own copy of the RFC 3454 tables) on every code point and on 200 000 random strings,
without a difference; that is how the B.2 correction above was confirmed.
"""

from __future__ import annotations

import functools
import re
import stringprep
import unicodedata
from typing import Final

from xmppx.core._api import JIDError

__all__ = ["MAX_PART_BYTES", "nameprep", "nodeprep", "prep_jid", "resourceprep"]

#: RFC 7622 §3.1 (and RFC 6122 §2.1-§2.4): each part is at most 1023 bytes of UTF-8.
MAX_PART_BYTES: Final = 1023
#: RFC 3490 §5 (ToASCII step 8): a label's ACE form is 1..63 octets.
MAX_LABEL_OCTETS: Final = 63
ACE_PREFIX: Final = "xn--"

_ucd = unicodedata.ucd_3_2_0
_SEPARATORS: Final = ".\u3002\uff0e\uff61"
_SPLIT_LABELS = re.compile("[.\u3002\uff0e\uff61]")
#: RFC 6122 Appendix A.5: prohibited in a localpart on top of the stringprep tables.
_NODEPREP_EXTRA: Final = frozenset("\"&'/:<>@")
#: ASCII that Nodeprep only lowercases: 0x21..0x7E without the A.5 characters.
_LOCAL_UNSAFE = re.compile("[\\x00-\\x20\"&'/:<>@\\x7f]")
_RESOURCE_UNSAFE = re.compile("[\\x00-\\x1f\\x7f]")
_LDH = re.compile("[a-z0-9-]*")
_NON_LDH_ASCII = re.compile("[\\x00-\\x2c\\x2e-\\x2f\\x3a-\\x60\\x7b-\\x7f]")
_DIGITS = re.compile("[0-9]+")
#: An ASCII host name whose labels are 1..63 letters, digits and inner hyphens, none an
#: ACE label, the last not all digits: the general path would only lowercase it.
_PLAIN_LABEL = "(?![xX][nN]--)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_PLAIN_NAME = re.compile(f"(?:{_PLAIN_LABEL}\\.)*(?![0-9]+\\Z){_PLAIN_LABEL}")
_HEX = frozenset("0123456789abcdefABCDEF")

_LOCAL: Final = "localpart"
_DOMAIN: Final = "domainpart"
_RESOURCE: Final = "resourcepart"


def _u(c: str) -> str:
    return f"U+{ord(c):04X}"


@functools.lru_cache(maxsize=4096)
def _b2(c: str) -> str:
    """RFC 3454 table B.2 for one code point assigned in Unicode 3.2.

    ``stringprep.map_table_b2`` is right except where the interpreter's newer
    ``str.lower`` invents a mapping whose result 3.2 did not have; those are dropped."""
    m = stringprep.map_table_b2(c)
    if m != c and any(stringprep.in_table_a1(x) for x in m):
        return c
    return m


def _prohibited_common(c: str) -> bool:
    """C.1.2, C.2.2, C.3-C.9: prohibited by Nodeprep, Nameprep and Resourceprep."""
    return (
        stringprep.in_table_c12(c)
        or stringprep.in_table_c22(c)
        or stringprep.in_table_c3(c)
        or stringprep.in_table_c4(c)
        or stringprep.in_table_c5(c)
        or stringprep.in_table_c6(c)
        or stringprep.in_table_c7(c)
        or stringprep.in_table_c8(c)
        or stringprep.in_table_c9(c)
    )


def _profile(s: str, part: str) -> str:
    """The stringprep profile named by ``part`` (the general path, any input)."""
    for c in s:
        if stringprep.in_table_a1(c):
            raise JIDError("unassigned", f"{part}: {_u(c)} is unassigned in Unicode 3.2")
    fold = part != _RESOURCE
    mapped = "".join((_b2(c) if fold else c) for c in s if not stringprep.in_table_b1(c))
    out = _ucd.normalize("NFKC", mapped)
    for c in out:
        o = ord(c)
        if o < 0x80:
            if o < 0x20 or o == 0x7F:
                if part != _DOMAIN:
                    raise JIDError("prohibited", f"{part}: {_u(c)} is prohibited")
            elif part == _LOCAL:
                if o == 0x20:
                    raise JIDError("prohibited", f"{part}: {_u(c)} is prohibited")
                if c in _NODEPREP_EXTRA:
                    raise JIDError(
                        "nodeprep-prohibited", f"{part}: {_u(c)} is not allowed in a localpart"
                    )
        elif _prohibited_common(c):
            raise JIDError("prohibited", f"{part}: {_u(c)} is prohibited")
    if any(stringprep.in_table_d1(c) for c in out):
        if any(stringprep.in_table_d2(c) for c in out):
            raise JIDError(
                "bidi", f"{part}: right-to-left text mixed with left-to-right characters"
            )
        if not (stringprep.in_table_d1(out[0]) and stringprep.in_table_d1(out[-1])):
            raise JIDError(
                "bidi",
                f"{part}: right-to-left text must start and end with a right-to-left character",
            )
    return out


def _not_str(fn: str, s: object) -> TypeError:
    return TypeError(f"{fn}() needs a str, not {type(s).__name__}")


def nodeprep(s: str) -> str:
    """The Nodeprep profile (RFC 6122 Appendix A) of ``s``; raises ``JIDError``.

    No length or emptiness check (``prep_jid`` does those): ``nodeprep("")`` is ``""``.
    ``nodeprep("Foo")`` is ``"foo"``, ``nodeprep("ß")`` is ``"ss"``, ``nodeprep("a b")``
    raises ``prohibited``, ``nodeprep("a:b")`` raises ``nodeprep-prohibited``."""
    if not isinstance(s, str):
        raise _not_str("nodeprep", s)
    if s.isascii() and not _LOCAL_UNSAFE.search(s):
        return s.lower()
    return _profile(s, _LOCAL)


def nameprep(s: str) -> str:
    """The Nameprep profile (RFC 3491) of the whole string ``s``; raises ``JIDError``.

    Only the stringprep profile: label splitting, the STD3 host name rules, the ACE
    checks and IP literals belong to the domainpart and are applied by ``prep_jid``.
    ``nameprep("EXAMPLE.com")`` is ``"example.com"``."""
    if not isinstance(s, str):
        raise _not_str("nameprep", s)
    if s.isascii():
        return s.lower()
    return _profile(s, _DOMAIN)


def resourceprep(s: str) -> str:
    """The Resourceprep profile (RFC 6122 Appendix B) of ``s``; raises ``JIDError``.

    No case folding: ``resourceprep("Home")`` is ``"Home"``; spaces are allowed; a
    no-break space becomes a space (NFKC).  ``resourceprep("")`` is ``""``."""
    if not isinstance(s, str):
        raise _not_str("resourceprep", s)
    if s.isascii() and not _RESOURCE_UNSAFE.search(s):
        return s
    return _profile(s, _RESOURCE)


def _check_length(value: str, part: str) -> str:
    if not value:
        raise JIDError("empty", f"{part} is empty")
    if len(value) > MAX_PART_BYTES or not value.isascii():
        n = len(value.encode("utf-8"))
        if n > MAX_PART_BYTES:
            raise JIDError("too-long", f"{part} is {n} bytes, more than {MAX_PART_BYTES}")
    return value


def _bad(text: str) -> JIDError:
    return JIDError("bad-domain", f"{_DOMAIN}: {text}")


def _check_std3(label: str) -> None:
    """RFC 3490 §4.1 ToASCII step 3 (UseSTD3ASCIIRules) on a Nameprep'd label."""
    m = _NON_LDH_ASCII.search(label)
    if m is not None:
        raise _bad(f"{_u(m.group())} is not a letter, digit or hyphen")
    if label[0] == "-" or label[-1] == "-":
        raise _bad("label starts or ends with a hyphen")


def _ace_length_ok(label: str) -> bool:
    """Whether the ACE form (``xn--`` + punycode) of a non-ASCII label fits 63 octets.

    Punycode writes at least one octet per code point, so a label of more than 59 code
    points cannot fit; that bound also keeps the quadratic encoder off long input."""
    if len(label) > MAX_LABEL_OCTETS - len(ACE_PREFIX):
        return False
    return len(ACE_PREFIX) + len(label.encode("punycode")) <= MAX_LABEL_OCTETS


def _from_ace(label: str) -> str:
    """IDNA2003 ToUnicode (RFC 3490 §4.2) of a lowercase LDH label starting with
    ``xn--``; any failure is ``bad-domain`` (RFC 6122 §2.2 allows refusing it)."""
    if len(label) > MAX_LABEL_OCTETS:
        raise _bad("label is longer than 63 octets in ASCII form")
    try:
        decoded = label[len(ACE_PREFIX) :].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError, IndexError, OverflowError):
        raise _bad("invalid ACE label") from None
    if decoded.isascii():
        raise _bad("invalid ACE label")
    try:
        prepared = _profile(decoded, _DOMAIN)
    except JIDError:
        raise _bad("invalid ACE label") from None
    if (
        not prepared
        or _NON_LDH_ASCII.search(prepared)
        or prepared[0] == "-"
        or prepared[-1] == "-"
        or prepared.startswith(ACE_PREFIX)
        or prepared.isascii()
        or ACE_PREFIX + prepared.encode("punycode").decode("ascii") != label
    ):
        raise _bad("invalid ACE label")
    return prepared


def _prep_label(raw: str) -> str:
    """One domain label: Nameprep, then the ToASCII checks (see the module docstring)."""
    if not raw:
        raise _bad("empty label")
    label = raw.lower() if raw.isascii() else _profile(raw, _DOMAIN)
    if not label:
        raise _bad("empty label")
    if label.isascii():
        if _LDH.fullmatch(label) is None:
            _check_std3(label)
        elif label[0] == "-" or label[-1] == "-":
            raise _bad("label starts or ends with a hyphen")
        if label.startswith(ACE_PREFIX):
            return _from_ace(label)
        if len(label) > MAX_LABEL_OCTETS:
            raise _bad("label is longer than 63 octets in ASCII form")
        return label
    _check_std3(label)
    if label.startswith(ACE_PREFIX):
        raise _bad("label starts with the ACE prefix")
    if not _ace_length_ok(label):
        raise _bad("label is longer than 63 octets in ASCII form")
    return label


def _is_dec_octet(s: str) -> bool:
    """RFC 3986 ``dec-octet``: 0-255 without leading zeros."""
    return (
        0 < len(s) <= 3
        and _DIGITS.fullmatch(s) is not None
        and (s == "0" or s[0] != "0")
        and int(s) <= 255
    )


def _parse_ipv4(s: str) -> list[int] | None:
    parts = s.split(".")
    if len(parts) != 4 or not all(_is_dec_octet(p) for p in parts):
        return None
    return [int(p) for p in parts]


def _parse_ipv6(s: str) -> list[int] | None:
    """RFC 3986 ``IPv6address`` to eight 16-bit groups, or ``None``."""

    def groups(text: str, allow_v4: bool) -> list[int] | None:
        if not text:
            return []
        out: list[int] = []
        items = text.split(":")
        for i, item in enumerate(items):
            if allow_v4 and i == len(items) - 1 and "." in item:
                v4 = _parse_ipv4(item)
                if v4 is None:
                    return None
                out += [v4[0] << 8 | v4[1], v4[2] << 8 | v4[3]]
            elif 0 < len(item) <= 4 and all(c in _HEX for c in item):
                out.append(int(item, 16))
            else:
                return None
        return out

    if s.count("::") > 1:
        return None
    if "::" in s:
        head, tail = s.split("::")
        left = groups(head, False)
        right = groups(tail, True)
        if left is None or right is None or len(left) + len(right) > 7:
            return None
        return left + [0] * (8 - len(left) - len(right)) + right
    full = groups(s, True)
    if full is None or len(full) != 8:
        return None
    return full


def _format_ipv6(g: list[int]) -> str:
    """RFC 5952 §4 text form, with §5 mixed notation for IPv4-mapped addresses."""
    if g[:6] == [0, 0, 0, 0, 0, 0xFFFF]:
        return f"::ffff:{g[6] >> 8}.{g[6] & 0xFF}.{g[7] >> 8}.{g[7] & 0xFF}"
    best_start, best_len, i = -1, 1, 0
    while i < 8:
        if g[i] == 0:
            j = i
            while j < 8 and g[j] == 0:
                j += 1
            if j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    hexes = [f"{x:x}" for x in g]
    if best_start < 0:
        return ":".join(hexes)
    return ":".join(hexes[:best_start]) + "::" + ":".join(hexes[best_start + best_len :])


def _prep_domain(d: str) -> str:
    if not d:
        raise JIDError("empty", f"{_DOMAIN} is empty")
    if d[-1] in _SEPARATORS:
        d = d[:-1]
        if not d:
            raise JIDError("empty", f"{_DOMAIN} is empty")
    if d[0] == "[":
        g = _parse_ipv6(d[1:-1]) if d[-1] == "]" else None
        if g is None:
            raise _bad("invalid IPv6 literal")
        return "[" + _format_ipv6(g) + "]"
    if _PLAIN_NAME.fullmatch(d) is not None:
        return _check_length(d.lower(), _DOMAIN)
    return _check_length(_host_name(d), _DOMAIN)


def _host_name(d: str) -> str:
    """The general path for a host name (no IP-literal brackets, trailing dot removed)."""
    raw_labels = d.split(".") if d.isascii() else _SPLIT_LABELS.split(d)
    labels = [_prep_label(x) for x in raw_labels]
    if _DIGITS.fullmatch(labels[-1]) is not None and (
        len(labels) != 4 or not all(_is_dec_octet(x) for x in labels)
    ):
        raise _bad("numeric top-level label in a name that is not an IPv4 address")
    return ".".join(labels)


def prep_jid(s: str) -> tuple[str, str, str]:
    """Split (RFC 7622 §3.1) and prepare (RFC 6122 §2) a JID.

    Returns ``(localpart, domainpart, resourcepart)``, ``""`` for an absent part; raises
    ``JIDError``.  ``prep_jid("Juliet@Example.COM/Balcony")`` is
    ``("juliet", "example.com", "Balcony")``."""
    if not isinstance(s, str):
        raise _not_str("prep_jid", s)
    slash = s.find("/")
    rest = s if slash < 0 else s[:slash]
    at = rest.find("@")
    local = ""
    if at >= 0:
        raw = rest[:at]
        if not raw:
            raise JIDError("empty", f"{_LOCAL} is empty")
        local = _check_length(nodeprep(raw), _LOCAL)
        rest = rest[at + 1 :]
    domain = _prep_domain(rest)
    resource = ""
    if slash >= 0:
        raw = s[slash + 1 :]
        if not raw:
            raise JIDError("empty", f"{_RESOURCE} is empty")
        resource = _check_length(resourceprep(raw), _RESOURCE)
    return local, domain, resource
