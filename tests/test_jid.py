"""JIDs on both backends: the shared vectors (``tests/vectors/jid/``, format in
``tests/vectors/README.md``), the profiles' ASCII fast paths, the generated Rust tables,
an IDNA cross-check against the stdlib, and the ``BareJID``/``FullJID``/``parse_jid``
values, run on both implementations (the Rust classes of ``xmppx._native`` and the
Python ones of ``xmppx.core._jid``)."""

from __future__ import annotations

import copy
import encodings.idna
import pickle
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import xmppx.core
from xmppx.core import JID_RULES, JIDError
from xmppx.core import _jid as jid_module
from xmppx.core._py import _stringprep

from .conftest import load_backend
from .scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
JID_DIR = ROOT / "tests" / "vectors" / "jid"

_ESCAPE = re.compile(r"\\(\\|t|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})|\\")


def unescape(text: str) -> str:
    """Undo the ``\\\\``, ``\\t``, ``\\uXXXX``, ``\\UXXXXXXXX`` escapes of the format."""

    def one(m: re.Match[str]) -> str:
        g = m.group(1)
        if g is None:
            raise ValueError(f"bad escape in {text!r}")
        if g == "\\":
            return "\\"
        if g == "t":
            return "\t"
        return chr(int(g[1:], 16))

    return _ESCAPE.sub(one, text)


def read_cases(name: str) -> list[tuple[str, ...]]:
    """The data lines of a vector file: TAB-separated fields, unescaped."""
    out = []
    for line in (JID_DIR / name).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            out.append(tuple(unescape(f) for f in line.split("\t")))
    return out


def join_jid(local: str, domain: str, resource: str) -> str:
    """The string form of prepared parts (``""`` meaning absent)."""
    s = f"{local}@{domain}" if local else domain
    return f"{s}/{resource}" if resource else s


def case_id(s: str) -> str:
    text = s.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= 40 else f"{text[:30]}...({len(s)})"


VALID = read_cases("valid.txt")
INVALID = read_cases("invalid.txt")


def test_vector_files_are_well_formed() -> None:
    assert len(VALID) >= 80 and len(INVALID) >= 80
    assert all(len(c) == 4 for c in VALID)
    assert all(len(c) == 2 and c[1] in JID_RULES for c in INVALID)
    inputs = [c[0] for c in VALID + INVALID]
    assert len(inputs) == len(set(inputs)), "duplicate vector"


@pytest.mark.parametrize("case", VALID, ids=[case_id(c[0]) for c in VALID])
def test_valid_vector(core: ModuleType, case: tuple[str, str, str, str]) -> None:
    s, local, domain, resource = case
    assert core.prep_jid(s) == (local, domain, resource)
    # Idempotence: the prepared JID and each prepared part prepare to themselves.
    assert core.prep_jid(join_jid(local, domain, resource)) == (local, domain, resource)
    assert core.nodeprep(local) == local
    assert core.resourceprep(resource) == resource


@pytest.mark.parametrize("case", INVALID, ids=[case_id(c[0]) for c in INVALID])
def test_invalid_vector(core: ModuleType, case: tuple[str, str]) -> None:
    s, rule = case
    with pytest.raises(JIDError) as info:
        core.prep_jid(s)
    assert info.value.rule == rule, info.value.text
    assert info.value.text


@pytest.mark.parametrize(
    ("name", "s", "expected"),
    [
        ("nodeprep", "Foo\u00df", "fooss"),
        ("nodeprep", "", ""),
        ("nameprep", "EXAMPLE.\u0130", "example.i\u0307"),
        ("nameprep", "a_b c", "a_b c"),
        ("resourceprep", "Home\u00a0Office", "Home Office"),
        ("resourceprep", "", ""),
    ],
)
def test_profile_functions(core: ModuleType, name: str, s: str, expected: str) -> None:
    assert getattr(core, name)(s) == expected


@pytest.mark.parametrize("name", ["nodeprep", "nameprep", "resourceprep", "prep_jid"])
def test_profile_functions_take_only_strings(core: ModuleType, name: str) -> None:
    with pytest.raises(TypeError):
        getattr(core, name)(b"x")


@pytest.mark.parametrize(
    ("name", "s", "rule"),
    [
        ("nodeprep", "a b", "prohibited"),
        ("nodeprep", "a/b", "nodeprep-prohibited"),
        ("nameprep", "\u0221", "unassigned"),
        ("nameprep", "\u05d0a", "bidi"),
        ("resourceprep", "\u0007", "prohibited"),
    ],
)
def test_profile_function_errors(core: ModuleType, name: str, s: str, rule: str) -> None:
    with pytest.raises(JIDError) as info:
        getattr(core, name)(s)
    assert info.value.rule == rule


def test_error_texts(core: ModuleType) -> None:
    cases = {
        "a b@x": "localpart: U+0020 is prohibited",
        "a:b@x": "localpart: U+003A is not allowed in a localpart",
        "a@b/\u0221": "resourcepart: U+0221 is unassigned in Unicode 3.2",
        "a@b_c": "domainpart: U+005F is not a letter, digit or hyphen",
        "@x": "localpart is empty",
        "x/" + "r" * 1024: "resourcepart is 1024 bytes, more than 1023",
    }
    for s, text in cases.items():
        with pytest.raises(JIDError) as info:
            core.prep_jid(s)
        assert info.value.text == text


def test_errors_are_jid_errors_as_python_makes_them(core: ModuleType) -> None:
    """The native backend builds ``JIDError`` without running ``__init__`` (it is
    cheaper): the result must be the same as ``JIDError(rule, text)``."""
    for call in (
        lambda: core.prep_jid("a:b@x"),
        lambda: core.nodeprep("a b"),
        lambda: core.resourceprep("\u0221"),
    ):
        with pytest.raises(JIDError) as info:
            call()
        e = info.value
        made = JIDError(e.rule, e.text)
        assert type(e) is JIDError
        assert e.args == made.args == (e.rule, e.text)
        assert e.__dict__ == made.__dict__
        assert (str(e), repr(e)) == (str(made), repr(made))
        again = pickle.loads(pickle.dumps(e))
        assert (again.rule, again.text, again.args) == (e.rule, e.text, e.args)


def test_native_returns_the_input_object_when_unchanged(core: ModuleType) -> None:
    s = "".join(["example", ".com"])  # a fresh object, not an interned constant
    assert core.prep_jid(s)[1] == s
    if core.__name__ == "xmppx._native":
        assert core.prep_jid(s)[1] is s
        assert core.nodeprep(s) is s


def test_ascii_fast_paths_equal_the_full_profiles() -> None:
    """Every ASCII character, through the fast path and through the general path."""
    for name, part in [
        ("nodeprep", "localpart"),
        ("nameprep", "domainpart"),
        ("resourceprep", "resourcepart"),
    ]:
        fast = getattr(_stringprep, name)
        for cp in range(0x80):
            c = chr(cp)
            try:
                want: str | tuple[str, str] = _stringprep._profile(c, part)
            except JIDError as e:
                want = (e.rule, e.text)
            try:
                got: str | tuple[str, str] = fast(c)
            except JIDError as e:
                got = (e.rule, e.text)
            assert got == want, (name, hex(cp))


def test_plain_host_name_fast_path_equals_the_general_path() -> None:
    """Every string of up to 4 characters over an alphabet covering each branch of the
    ``_PLAIN_NAME`` pattern, and some around the 63-octet label limit."""
    inputs = [""]
    for _ in range(4):
        inputs += [s + c for s in inputs if len(s) == len(inputs[-1]) for c in "aZ09-.xn_"]
    for n in (62, 63, 64):
        inputs += ["a" * n, "b." + "a" * n, "xn--" + "a" * n]
    inputs += ["1.2.3.4", "1.2.3.256", "a.1", "a.1b", "XN--bcher-kva.de", "\u212a.com"]
    matched = 0
    for d in filter(None, inputs):
        if _stringprep._PLAIN_NAME.fullmatch(d) is not None:
            matched += 1
            assert _stringprep._host_name(d) == d.lower(), d
    assert matched > 1000


def test_b2_drops_mappings_unicode_3_2_did_not_have() -> None:
    """``stringprep.map_table_b2`` uses today's ``str.lower``; RFC 3454 B.2 does not map
    Georgian capitals, Cherokee or U+04C0 (their lowercase forms came after 3.2)."""
    for c in ("\u10a0", "\u13a0", "\u04c0"):
        assert _stringprep._b2(c) == c
        assert _stringprep.nodeprep(c) == c
    assert _stringprep._b2("A") == "a"
    assert _stringprep._b2("\u00df") == "ss"


def test_generated_files_match_the_generator() -> None:
    """The Rust tables and the NFKC vectors cannot drift from the Python reference."""
    gen = load_script("gen_stringprep_tables.py")
    assert gen.TABLES_RS.read_text(encoding="utf-8") == gen.render_tables()
    assert gen.NFKC_VECTORS.read_text(encoding="utf-8") == gen.render_nfkc_vectors()


@pytest.mark.parametrize(
    "label", ["bücher", "日本語", "ελλασ", "пример", "\u05e9\u05dc\u05d5\u05dd", "faß", "ǆ"]
)
def test_domain_labels_agree_with_stdlib_idna(core: ModuleType, label: str) -> None:
    """Cross-check with ``encodings.idna`` (IDNA2003 without STD3 rules)."""
    ace = encodings.idna.ToASCII(label).decode("ascii")
    unicode_form = encodings.idna.ToUnicode(ace)
    assert core.prep_jid(f"{label}.example")[1] == f"{unicode_form}.example"
    assert core.prep_jid(f"{ace}.example")[1] == f"{unicode_form}.example"
    assert core.prep_jid(f"{ace.upper()}.example")[1] == f"{unicode_form}.example"


# The values: the same tests on the native classes and on the Python ones.


@dataclass(frozen=True)
class Impl:
    """One implementation of the JID values, and a view of its ``parse_jid`` cache."""

    name: str
    BareJID: Any
    FullJID: Any
    parse_jid: Callable[[object], Any]
    cache: Callable[[], dict[str, Any]]
    cache_size: int


def load_impl(name: str) -> Impl:
    if name == "native":
        native = load_backend("native")
        return Impl(
            "native",
            native.BareJID,
            native.FullJID,
            native.parse_jid,
            native.jid_cache,
            native.JID_CACHE_SIZE,
        )
    return Impl(
        "python",
        jid_module.BareJID,
        jid_module.FullJID,
        jid_module.parse_jid,
        lambda: jid_module._CACHE,
        jid_module.CACHE_SIZE,
    )


@pytest.fixture(params=["native", "python"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Impl]:
    """Each implementation with an empty cache; the Python classes on the Python
    ``prep_jid`` (on the native backend they would otherwise use the native one)."""
    try:
        im = load_impl(request.param)
    except ImportError as exc:  # pragma: no cover - only without a built extension
        pytest.skip(f"native backend not importable: {exc}")
    if im.name == "python":
        monkeypatch.setattr(jid_module, "_prep", _stringprep.prep_jid)
    im.cache().clear()
    yield im
    im.cache().clear()


class TestValues:
    def test_parse_gives_the_right_class(self, impl: Impl) -> None:
        full = impl.parse_jid("Juliet@Example.COM/Balcony")
        assert type(full) is impl.FullJID
        assert (full.local, full.domain, full.resource) == ("juliet", "example.com", "Balcony")
        assert str(full) == "juliet@example.com/Balcony"
        bare = impl.parse_jid("example.com")
        assert type(bare) is impl.BareJID
        assert (bare.local, bare.domain, bare.resource) == ("", "example.com", "")
        assert str(impl.parse_jid("example.com/r")) == "example.com/r"
        domain_full = impl.parse_jid("Example.com/R")
        assert (domain_full.local, domain_full.domain, domain_full.resource) == (
            "",
            "example.com",
            "R",
        )
        assert (domain_full.bare.local, domain_full.bare.domain) == ("", "example.com")

    def test_parts_of_non_ascii_jids(self, impl: Impl) -> None:
        j = impl.parse_jid("Ζωή@Bücher.example/Büro PC")
        assert (j.local, j.domain, j.resource) == ("ζωή", "bücher.example", "Büro PC")
        assert str(j) == "ζωή@bücher.example/Büro PC"
        assert str(j.bare) == "ζωή@bücher.example"
        assert (j.bare.local, j.bare.domain, j.bare.resource) == ("ζωή", "bücher.example", "")
        assert str(impl.parse_jid("[::FFFF:1.2.3.4]/x").bare) == "[::ffff:1.2.3.4]"

    def test_equality_and_hash_use_the_prepared_form(self, impl: Impl) -> None:
        a, b = impl.parse_jid("JULIET@example.com"), impl.parse_jid("juliet@EXAMPLE.com.")
        assert a is not b and a == b and hash(a) == hash(b)
        assert (a != b) is False
        assert impl.parse_jid("a@b/R") != impl.parse_jid("a@b/r")
        assert {a: 1}[b] == 1

    def test_equal_and_same_hash_across_parse_paths(self, impl: Impl) -> None:
        bares = [
            impl.parse_jid("Romeo@Example.NET"),
            impl.parse_jid("romeo@example.net."),
            impl.BareJID("ROMEO@example.net"),
            impl.FullJID("romeo@Example.net/Orchard").bare,
            impl.parse_jid("romeo@example.net").with_resource("x").bare,
            pickle.loads(pickle.dumps(impl.parse_jid("romeo@EXAMPLE.net"))),
            copy.copy(impl.parse_jid("Romeo@example.net")),
        ]
        fulls = [
            impl.parse_jid("Romeo@Example.NET/Orchard"),
            impl.FullJID("romeo@example.net./Orchard"),
            impl.BareJID("ROMEO@example.net").with_resource("Orchard"),
            copy.deepcopy(impl.parse_jid("romeo@example.net/Orchard")),
        ]
        for group, cls in ((bares, impl.BareJID), (fulls, impl.FullJID)):
            assert all(type(j) is cls for j in group)
            assert len({str(j) for j in group}) == 1
            assert len({hash(j) for j in group}) == 1
            assert len(set(group)) == 1
            assert all(x == y for x in group for y in group)
        sessions = {bares[0]: "session"}
        assert all(sessions[j.bare] == "session" for j in bares + fulls)

    def test_bare_never_equals_full_nor_other_values(self, impl: Impl) -> None:
        full = impl.parse_jid("a@b/c")
        bare = impl.parse_jid("a@b")
        assert full != full.bare and full.bare != full
        assert full.bare == bare
        assert bare.bare is bare
        for other in ("a@b", ("a", "b", ""), ("a", "b", "", "a@b"), None, 1, object()):
            assert bare != other and other != bare
            assert (bare == other) is False
        assert full != "a@b/c" and full != ("a", "b", "c", "a@b/c")
        assert bare not in {"a@b": 1}
        # Nor a JID of the other implementation.
        other_impl = load_impl("python" if impl.name == "native" else "native")
        assert bare != other_impl.BareJID("a@b")

    def test_no_order(self, impl: Impl) -> None:
        a, b = impl.parse_jid("a@b"), impl.parse_jid("c@d")
        for compare in (
            lambda: a < b,
            lambda: a <= b,
            lambda: a > b,
            lambda: a >= b,
            lambda: sorted([a, b]),
        ):
            with pytest.raises(TypeError):
                compare()

    def test_bare_of_full_and_with_resource(self, impl: Impl) -> None:
        full = impl.parse_jid("Romeo@Example.net/Orchard")
        assert type(full.bare) is impl.BareJID and str(full.bare) == "romeo@example.net"
        assert full.bare is full.bare
        again = full.bare.with_resource("Orchard")
        assert again == full and type(again) is impl.FullJID
        assert str(impl.BareJID("a@b").with_resource("Home\u00a0Office")) == "a@b/Home Office"
        assert impl.BareJID("example.com").with_resource("r") == impl.FullJID("example.com/r")
        assert impl.BareJID("a@b").with_resource("x/y").resource == "x/y"
        with pytest.raises(JIDError) as info:
            impl.BareJID("a@b").with_resource("")
        assert info.value.rule == "empty"
        with pytest.raises(JIDError) as info:
            impl.BareJID("a@b").with_resource("\u0221")
        assert info.value.rule == "unassigned"
        with pytest.raises(JIDError) as info:
            impl.BareJID("a@b").with_resource("\ud800")
        assert info.value.rule == "prohibited"

    def test_bare_of_full_is_the_cached_bare_jid(self, impl: Impl) -> None:
        bare = impl.parse_jid("a@b")
        assert impl.parse_jid("a@b/c").bare is bare

    def test_constructors_check_the_kind(self, impl: Impl) -> None:
        assert impl.BareJID("A@B") == impl.parse_jid("a@b")
        assert impl.FullJID("A@B/C") == impl.parse_jid("a@b/C")
        with pytest.raises(JIDError) as info:
            impl.BareJID("a@b/c")
        assert (info.value.rule, info.value.text) == ("not-bare", "'a@b/c' has a resourcepart")
        with pytest.raises(JIDError) as info:
            impl.FullJID("a@b")
        assert (info.value.rule, info.value.text) == ("not-full", "'a@b' has no resourcepart")
        with pytest.raises(JIDError) as info:
            impl.FullJID(impl.parse_jid("a@b"))
        assert info.value.text == "BareJID('a@b') has no resourcepart"
        with pytest.raises(JIDError) as info:
            impl.BareJID("a b@c")
        assert info.value.rule == "prohibited"
        assert "not-bare" in JID_RULES and "not-full" in JID_RULES

    def test_constructors_return_the_cached_object(self, impl: Impl) -> None:
        j = impl.parse_jid("a@b/c")
        assert impl.FullJID("a@b/c") is j
        assert impl.FullJID(j) is j
        b = impl.parse_jid("a@b")
        assert impl.BareJID("a@b") is b
        assert impl.BareJID(b) is b

    def test_immutable(self, impl: Impl) -> None:
        for j in (impl.parse_jid("a@b/c"), impl.parse_jid("a@b")):
            for name in ("local", "domain", "resource", "bare"):
                with pytest.raises(AttributeError):
                    setattr(j, name, "x")
            with pytest.raises(AttributeError):
                j.extra = 1

    def test_cache_returns_the_same_object(self, impl: Impl) -> None:
        assert impl.parse_jid("a@b/c") is impl.parse_jid("a@b/c")
        s = "".join(["Juliet@", "Example.com"])  # equal, not identical, strings
        assert impl.parse_jid(s) is impl.parse_jid("Juliet@Example.com")
        assert set(impl.cache()) == {"a@b/c", "Juliet@Example.com"}
        assert impl.cache()["Juliet@Example.com"] is impl.parse_jid(s)

    def test_cache_is_bounded_and_emptied_when_full(self, impl: Impl) -> None:
        assert impl.cache_size == 4096
        for i in range(impl.cache_size):
            impl.parse_jid(f"u{i}@example.com")
        assert len(impl.cache()) == impl.cache_size
        first = impl.parse_jid("u0@example.com")  # a hit: nothing changes
        assert len(impl.cache()) == impl.cache_size
        impl.parse_jid("one-more@example.com")  # full: emptied, then this one stored
        assert list(impl.cache()) == ["one-more@example.com"]
        again = impl.parse_jid("u0@example.com")
        assert again == first and again is not first
        for i in range(3 * impl.cache_size):
            impl.parse_jid(f"v{i}@example.com/r")
            assert 0 < len(impl.cache()) <= impl.cache_size

    def test_invalid_strings_are_not_cached(self, impl: Impl) -> None:
        for _ in range(2):
            with pytest.raises(JIDError) as info:
                impl.parse_jid("a@b@c")
            assert info.value.rule == "bad-domain"
        assert "a@b@c" not in impl.cache()
        assert len(impl.cache()) == 0

    def test_errors_are_those_of_prep_jid(self, impl: Impl) -> None:
        for s, _ in INVALID:
            with pytest.raises(JIDError) as got:
                impl.parse_jid(s)
            with pytest.raises(JIDError) as want:
                _stringprep.prep_jid(s)
            assert (got.value.rule, got.value.text) == (want.value.rule, want.value.text)

    def test_vectors(self, impl: Impl) -> None:
        for s, local, domain, resource in VALID:
            j = impl.parse_jid(s)
            assert type(j) is (impl.FullJID if resource else impl.BareJID)
            assert (j.local, j.domain, j.resource) == (local, domain, resource)
            assert str(j) == join_jid(local, domain, resource)
            assert impl.parse_jid(str(j)) == j
            if resource:
                assert str(j.bare) == join_jid(local, domain, "")

    def test_surrogates_are_rejected(self, impl: Impl) -> None:
        for s in ("\ud800@example.com", "a@b/\udfff", "\udc80"):
            with pytest.raises(JIDError) as info:
                impl.parse_jid(s)
            assert info.value.rule == "prohibited"

    def test_non_strings(self, impl: Impl) -> None:
        j = impl.parse_jid("a@b")
        assert impl.parse_jid(j) is j
        full = impl.parse_jid("a@b/c")
        assert impl.parse_jid(full) is full
        for bad in (b"a@b", 1, None):
            with pytest.raises(TypeError):
                impl.parse_jid(bad)

    def test_str_subclass_input(self, impl: Impl) -> None:
        class S(str):
            pass

        j = impl.parse_jid(S("a@b/c"))
        assert j == impl.parse_jid("a@b/c") and str(j) == "a@b/c"

    @pytest.mark.parametrize("resource", [None, b"x", 1])
    def test_with_resource_takes_only_a_string(self, impl: Impl, resource: object) -> None:
        with pytest.raises(TypeError):
            impl.parse_jid("a@b").with_resource(resource)

    def test_a_jid_is_not_a_sequence(self, impl: Impl) -> None:
        j = impl.parse_jid("a@b/c")
        assert j  # always true
        for use in (lambda: list(j), lambda: j[1], lambda: "a" in j):
            with pytest.raises(TypeError):
                use()
        assert j != ("a", "b", "c") and j != "a@b/c"

    def test_pickle_copy_repr(self, impl: Impl) -> None:
        for j in (impl.parse_jid("a@b/c"), impl.parse_jid("a@b"), impl.parse_jid("ä@b/ü")):
            for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
                k = pickle.loads(pickle.dumps(j, protocol))
                assert k == j and type(k) is type(j)
            assert copy.deepcopy(j) == j and copy.copy(j) == j
        assert repr(impl.parse_jid("a@b/c")) == "FullJID('a@b/c')"
        assert repr(impl.parse_jid("a@b")) == "BareJID('a@b')"
        assert repr(impl.parse_jid("A@B/C'\"")) == "FullJID('a@b/C\\'\"')"


def test_native_values_reuse_the_input_string() -> None:
    """When preparation changes nothing, the value's string form is the input object
    (no copy); a ``str`` subclass is copied to a plain ``str``."""
    native = pytest.importorskip("xmppx._native")
    native.jid_cache().clear()
    s = "".join(["juliet@", "example.com/balcony"])
    assert str(native.parse_jid(s)) is s
    t = "".join(["Juliet@", "example.com"])
    assert str(native.parse_jid(t)) == "juliet@example.com"

    class S(str):
        pass

    assert type(str(native.parse_jid(S("x@y")))) is str
    native.jid_cache().clear()


def test_the_facade_exports_the_active_backend_classes() -> None:
    if xmppx.core.backend == "native":
        native = load_backend("native")
        assert xmppx.core.BareJID is native.BareJID
        assert xmppx.core.FullJID is native.FullJID
        assert xmppx.core.parse_jid is native.parse_jid
    else:
        assert xmppx.core.BareJID is jid_module.BareJID
        assert xmppx.core.FullJID is jid_module.FullJID
        assert xmppx.core.parse_jid is jid_module.parse_jid
    j = xmppx.core.parse_jid("a@b/c")
    assert isinstance(j, xmppx.core.FullJID) and isinstance(j, xmppx.core.JID)
    assert isinstance(j.bare, xmppx.core.BareJID) and isinstance(j.bare, xmppx.core.JID)
    assert not isinstance(j, xmppx.core.BareJID)


def test_python_classes_use_the_active_backend() -> None:
    assert jid_module._prep is xmppx.core.prep_jid  # type: ignore[attr-defined]
