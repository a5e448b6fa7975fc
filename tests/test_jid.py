"""JIDs on both backends: the shared vectors (``tests/vectors/jid/``, format in
``tests/vectors/README.md``), the profiles' ASCII fast paths, the generated Rust tables,
an IDNA cross-check against the stdlib, and the ``BareJID``/``FullJID`` classes."""

from __future__ import annotations

import copy
import encodings.idna
import importlib.util
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import xmppx.core
from xmppx.core import JID_RULES, BareJID, FullJID, JIDError, parse_jid
from xmppx.core import _jid as jid_module
from xmppx.core._py import _stringprep

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


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_stringprep_tables", ROOT / "scripts" / "gen_stringprep_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_match_the_generator() -> None:
    """The Rust tables and the NFKC vectors cannot drift from the Python reference."""
    gen = _load_generator()
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


# The classes, run on each backend by pointing ``_jid`` at that backend's ``prep_jid``.


@pytest.fixture
def jids(core: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(jid_module, "_prep", core.prep_jid)
    jid_module._CACHE.clear()
    yield
    jid_module._CACHE.clear()


@pytest.mark.usefixtures("jids")
class TestClasses:
    def test_parse_gives_the_right_class(self) -> None:
        full = parse_jid("Juliet@Example.COM/Balcony")
        assert type(full) is FullJID
        assert (full.local, full.domain, full.resource) == ("juliet", "example.com", "Balcony")
        assert str(full) == "juliet@example.com/Balcony"
        bare = parse_jid("example.com")
        assert type(bare) is BareJID
        assert (bare.local, bare.domain, bare.resource) == ("", "example.com", "")
        assert str(parse_jid("example.com/r")) == "example.com/r"

    def test_equality_and_hash_use_the_prepared_form(self) -> None:
        a, b = parse_jid("JULIET@example.com"), parse_jid("juliet@EXAMPLE.com.")
        assert a is not b and a == b and hash(a) == hash(b)
        assert parse_jid("a@b/R") != parse_jid("a@b/r")
        assert {a: 1}[b] == 1

    def test_bare_never_equals_full(self) -> None:
        full = parse_jid("a@b/c")
        assert full != full.bare and full.bare != full
        assert full.bare == parse_jid("a@b")
        assert parse_jid("a@b").bare is parse_jid("a@b")

    def test_bare_of_full_and_with_resource(self) -> None:
        full = parse_jid("Romeo@Example.net/Orchard")
        assert type(full.bare) is BareJID and str(full.bare) == "romeo@example.net"
        again = full.bare.with_resource("Orchard")
        assert again == full and type(again) is FullJID
        assert str(BareJID("a@b").with_resource("Home\u00a0Office")) == "a@b/Home Office"
        with pytest.raises(JIDError) as info:
            BareJID("a@b").with_resource("")
        assert info.value.rule == "empty"
        with pytest.raises(JIDError) as info:
            BareJID("a@b").with_resource("\u0221")
        assert info.value.rule == "unassigned"

    def test_constructors_check_the_kind(self) -> None:
        assert BareJID("A@B") == parse_jid("a@b")
        assert FullJID("A@B/C") == parse_jid("a@b/C")
        with pytest.raises(JIDError) as info:
            BareJID("a@b/c")
        assert info.value.rule == "not-bare"
        with pytest.raises(JIDError) as info:
            FullJID("a@b")
        assert info.value.rule == "not-full"
        with pytest.raises(JIDError) as info:
            BareJID("a b@c")
        assert info.value.rule == "prohibited"
        assert "not-bare" in JID_RULES and "not-full" in JID_RULES

    def test_immutable(self) -> None:
        j = parse_jid("a@b/c")
        with pytest.raises(AttributeError):
            j.local = "x"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            j.extra = 1  # type: ignore[union-attr]

    def test_cache_returns_the_same_object_and_is_bounded(self) -> None:
        assert parse_jid("a@b/c") is parse_jid("a@b/c")
        for i in range(jid_module.CACHE_SIZE + 10):
            parse_jid(f"u{i}@example.com")
        assert 0 < len(jid_module._CACHE) <= jid_module.CACHE_SIZE

    def test_invalid_strings_are_not_cached(self) -> None:
        for _ in range(2):
            with pytest.raises(JIDError):
                parse_jid("a@b@c")
        assert "a@b@c" not in jid_module._CACHE

    def test_non_strings(self) -> None:
        j = parse_jid("a@b")
        assert parse_jid(j) is j  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            parse_jid(b"a@b")  # type: ignore[arg-type]

    def test_pickle_copy_repr(self) -> None:
        for j in (parse_jid("a@b/c"), parse_jid("a@b")):
            assert pickle.loads(pickle.dumps(j)) == j
            assert copy.deepcopy(j) == j
        assert repr(parse_jid("a@b/c")) == "FullJID('a@b/c')"
        assert repr(parse_jid("a@b")) == "BareJID('a@b')"


def test_classes_use_the_active_backend() -> None:
    assert jid_module._prep is xmppx.core.prep_jid  # type: ignore[attr-defined]
