"""SASLprep (RFC 4013): the §3 examples, then each step of §2 on its own."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmppx.auth import SASLPREP_RULES, SASLprepError, saslprep
from xmppx.auth import _saslprep as saslprep_module

# RFC 4013 §3: (input, output or the rule broken).
RFC4013_EXAMPLES = [
    ("I\u00adX", "IX"),  # 1: SOFT HYPHEN mapped to nothing
    ("user", "user"),  # 2: no transformation
    ("USER", "USER"),  # 3: case preserved, will not match #2
    ("\u00aa", "a"),  # 4: output is NFKC, input in ISO 8859-1
    ("\u2168", "IX"),  # 5: output is NFKC, will match #1
]
RFC4013_ERRORS = [
    ("\u0007", "prohibited"),  # 6: prohibited character
    ("\u0627\u0031", "bidi"),  # 7: bidirectional check
]


@pytest.mark.parametrize(("given_", "expected"), RFC4013_EXAMPLES)
def test_rfc4013_section3_examples(given_: str, expected: str) -> None:
    assert saslprep(given_) == expected


@pytest.mark.parametrize(("given_", "rule"), RFC4013_ERRORS)
def test_rfc4013_section3_errors(given_: str, rule: str) -> None:
    with pytest.raises(SASLprepError) as info:
        saslprep(given_)
    assert info.value.rule == rule
    assert rule in SASLPREP_RULES


def test_examples_1_and_5_match_but_2_and_3_do_not() -> None:
    assert saslprep("I\u00adX") == saslprep("\u2168")
    assert saslprep("user") != saslprep("USER")


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("a\u00a0b", "a b"),  # C.1.2 NO-BREAK SPACE -> SPACE
        ("a\u3000b", "a b"),  # C.1.2 IDEOGRAPHIC SPACE -> SPACE
        ("a\u200bb", "ab"),  # B.1 ZERO WIDTH SPACE -> nothing
        ("a\ufeffb", "ab"),  # B.1 ZERO WIDTH NO-BREAK SPACE -> nothing
        ("\ufb01", "fi"),  # NFKC of the ligature
        ("e\u0301", "\u00e9"),  # NFKC composes
        ("pass word", "pass word"),  # ASCII space is allowed
        ("\u0627\u0031\u0628", "\u0627\u0031\u0628"),  # RandAL at both ends, EN inside
        ("", ""),  # empty stays empty: callers decide
    ],
)
def test_mapping_and_normalization(given_: str, expected: str) -> None:
    assert saslprep(given_) == expected


@pytest.mark.parametrize(
    ("given_", "rule"),
    [
        ("a\x00b", "prohibited"),  # C.2.1 ASCII control
        ("a\x7fb", "prohibited"),  # C.2.1 DELETE
        ("a\u0085b", "prohibited"),  # C.2.2 non-ASCII control
        ("a\ue000b", "prohibited"),  # C.3 private use
        ("a\ufffeb", "prohibited"),  # C.4 non-character
        ("a\ud800b", "prohibited"),  # C.5 surrogate
        ("a\ufff9b", "prohibited"),  # C.6 inappropriate for plain text
        ("a\u2ff0b", "prohibited"),  # C.7 inappropriate for canonical representation
        ("a\u200eb", "prohibited"),  # C.8 LEFT-TO-RIGHT MARK
        ("a\U000e0001b", "prohibited"),  # C.9 tagging character
        ("\u0627a\u0628", "bidi"),  # RandAL and L mixed
        ("1\u0627", "bidi"),  # RandAL present but not first
    ],
)
def test_prohibited_and_bidi(given_: str, rule: str) -> None:
    with pytest.raises(SASLprepError) as info:
        saslprep(given_)
    assert info.value.rule == rule


def test_unassigned_code_points_are_refused_in_stored_strings_only() -> None:
    # U+0221 was assigned in Unicode 4.0, so it is unassigned in the 3.2 tables.
    with pytest.raises(SASLprepError) as info:
        saslprep("a\u0221")
    assert info.value.rule == "unassigned"
    assert saslprep("a\u0221", allow_unassigned=True) == "a\u0221"


@given(st.text())
def test_never_raises_anything_but_saslprep_error_and_is_idempotent(s: str) -> None:
    try:
        out = saslprep(s, allow_unassigned=True)
    except SASLprepError as exc:
        assert exc.rule in SASLPREP_RULES
        return
    assert saslprep(out, allow_unassigned=True) == out


def test_module_doctests() -> None:
    assert doctest.testmod(saslprep_module).failed == 0
