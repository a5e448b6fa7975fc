"""Differential and algebraic properties of JID preparation (hypothesis).

* The native and the pure-Python backends give identical results, and identical errors
  (same ``rule`` and same ``text``), for ``prep_jid`` and each profile, on JID-shaped
  strings (mostly ASCII, sprinkled with interesting non-ASCII) and on arbitrary Unicode.
* Preparing an already prepared JID gives it back unchanged (idempotence).
* IP literals: the IPv6 text form agrees with the stdlib ``ipaddress`` module.
"""

from __future__ import annotations

import importlib
import ipaddress
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmppx.core import JIDError
from xmppx.core._py import _stringprep as python_backend

native_backend: ModuleType | None
try:
    native_backend = importlib.import_module("xmppx._native")
except ImportError as exc:  # pragma: no cover - only without a built extension
    native_backend = None
    NATIVE_MISSING = f"native backend not importable: {exc}"
else:
    NATIVE_MISSING = ""

needs_native = pytest.mark.skipif(native_backend is None, reason=NATIVE_MISSING or "n/a")

#: Characters that exercise every rule: case folding, B.1, NFKC expansions and
#: compositions, the C tables, bidi, label separators, unassigned (3.2) code points.
INTERESTING = (
    "AZaz09-._~!$()*+,;=\"&'/:<>@[]\\ \t\x00\x7f"
    "\u00df\u03a3\u03c2\u0130\u01c5\u0587\u0390\u00c4\u00e9\u0301\u0323\u0307"
    "\u00ad\u200b\u200c\u200d\u2060\ufeff\ufe0f\u180b"
    "\u00a0\u3000\u1680\u2028\u200e\u202e\u0340\ue000\ufdd0\uffff\ufffd\u2ff0"
    "\U000e0001\U000f0000\ud800"
    "\u05d0\u05d1\u0627\u0628\u0661"
    "\u3002\uff0e\uff61\u2024\ufe52\uff20\uff0f\uff1c\u2474\u2163\u2121\ufb00\ufdfa"
    "\u1100\u1161\uac00\uf900\U0002f868\u10a0\u13a0\u04c0"
    "\u0221\u0370\u1e9e\U0001f600\u00fc\u65e5"
)

ascii_word = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789-"),
    min_size=0,
    max_size=8,
)
sprinkle = st.text(alphabet=st.sampled_from(INTERESTING), min_size=0, max_size=3)
any_text = st.text(st.characters(exclude_categories=()), max_size=12)


@st.composite
def jid_like(draw: st.DrawFn) -> str:
    """A JID-shaped string: parts of ASCII words, often with a few odd characters,
    sometimes an IDN/ACE label, an IP literal, or arbitrary Unicode."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(any_text)

    def part() -> str:
        if draw(st.integers(0, 9)) < 7:
            return draw(ascii_word)
        return draw(ascii_word) + draw(sprinkle) + draw(ascii_word)

    if kind == 1:
        domain = draw(
            st.sampled_from(
                ["[::1]", "[2001:DB8::1]", "127.0.0.1", "1.2.3.256", "xn--bcher-kva.x", "xn--zz"]
            )
        )
    else:
        labels = [part() for _ in range(draw(st.integers(1, 3)))]
        domain = draw(st.sampled_from([".", "\u3002"])).join(labels)
    s = domain
    if draw(st.booleans()):
        s = part() + "@" + s
    if draw(st.booleans()):
        s = s + "/" + part()
    return s


def outcome(f: object, s: str) -> tuple[str, object]:
    try:
        return ("ok", f(s))  # type: ignore[operator]
    except JIDError as e:
        return ("error", (e.rule, e.text))


def join_jid(parts: tuple[str, str, str]) -> str:
    local, domain, resource = parts
    s = f"{local}@{domain}" if local else domain
    return f"{s}/{resource}" if resource else s


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_native
@SETTINGS
@given(jid_like())
def test_prep_jid_native_equals_python(s: str) -> None:
    assert native_backend is not None
    assert outcome(native_backend.prep_jid, s) == outcome(python_backend.prep_jid, s)


@needs_native
@SETTINGS
@given(st.one_of(any_text, sprinkle, jid_like()))
def test_profiles_native_equal_python(s: str) -> None:
    for name in ("nodeprep", "nameprep", "resourceprep"):
        assert outcome(getattr(native_backend, name), s) == outcome(
            getattr(python_backend, name), s
        ), name


#: Domain labels near the limits: ACE labels (valid and invalid Punycode) and long
#: non-ASCII labels whose ACE form is around 63 octets.
long_label = st.text(alphabet=st.sampled_from("aeiouüéßΣπжЖ日"), min_size=30, max_size=70)
short_label = st.text(alphabet=st.sampled_from("aeiouüéßΣπжЖ日-"), min_size=1, max_size=12)
ace_label = st.one_of(
    st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), max_size=30),
    st.one_of(short_label, long_label).map(lambda t: t.encode("punycode").decode("ascii")),
).map(lambda t: "xn--" + t)


@needs_native
@SETTINGS
@given(st.lists(st.one_of(ace_label, long_label), min_size=1, max_size=3))
def test_domain_labels_native_equal_python(labels: list[str]) -> None:
    assert native_backend is not None
    s = "user@" + ".".join(labels)
    assert outcome(native_backend.prep_jid, s) == outcome(python_backend.prep_jid, s)


@pytest.mark.parametrize("backend", ["native", "python"])
@SETTINGS
@given(s=jid_like())
def test_prepared_jids_are_fixed_points(backend: str, s: str) -> None:
    core: ModuleType | None = native_backend if backend == "native" else python_backend
    if core is None:
        pytest.skip(NATIVE_MISSING)
    try:
        parts = core.prep_jid(s)
    except JIDError:
        return
    assert core.prep_jid(join_jid(parts)) == parts
    local, domain, resource = parts
    assert core.nodeprep(local) == local
    assert core.resourceprep(resource) == resource
    assert 0 < len(domain.encode()) <= 1023


@pytest.mark.parametrize("backend", ["native", "python"])
@SETTINGS
@given(
    groups=st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xDB8, 0x2001]), min_size=8, max_size=8)
)
def test_ipv6_literals_agree_with_ipaddress(backend: str, groups: list[int]) -> None:
    core: ModuleType | None = native_backend if backend == "native" else python_backend
    if core is None:
        pytest.skip(NATIVE_MISSING)
    address = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
    want = address.compressed
    if address.ipv4_mapped is not None:  # RFC 5952 §5 mixed notation
        want = f"::ffff:{address.ipv4_mapped}"
    for text in (address.exploded, address.exploded.upper(), address.compressed):
        assert core.prep_jid(f"[{text}]") == ("", f"[{want}]", "")


def value_outcome(parse: object, s: str) -> tuple[str, object]:
    """What a ``parse_jid`` gives for ``s``, comparable across implementations."""
    try:
        j = parse(s)  # type: ignore[operator]
    except JIDError as e:
        return ("error", (e.rule, e.text))
    return (
        type(j).__name__,
        (str(j), j.local, j.domain, j.resource, str(j.bare), j.bare.local, j.bare.domain),
    )


@needs_native
@SETTINGS
@given(st.lists(jid_like(), min_size=1, max_size=4))
def test_native_values_equal_python_values(strings: list[str]) -> None:
    """The Rust ``BareJID``/``FullJID``/``parse_jid`` and the Python classes of
    ``xmppx.core._jid`` agree on everything observable, from their caches or not (each
    string is parsed twice); a value's string form parses to an equal value with an
    equal hash."""
    assert native_backend is not None
    from xmppx.core import _jid

    for s in strings + strings:
        want = value_outcome(_jid.parse_jid, s)
        assert value_outcome(native_backend.parse_jid, s) == want
        if want[0] != "error":
            j = native_backend.parse_jid(s)
            again = native_backend.parse_jid(str(j))
            assert again == j and hash(again) == hash(j)
