"""JID parsing and preparation (issue 2 §9) on seeded sets from ``jidgen``: about 90%
ASCII / 10% non-ASCII inputs, about 5% of them invalid.

Implementations:

``native-prep_jid`` / ``python-prep_jid``
    ``prep_jid`` of each xmppx backend: split + Nodeprep/Nameprep/Resourceprep, no cache.
``native-parse_jid`` / ``python-parse_jid``
    ``xmppx.core.parse_jid`` (``BareJID``/``FullJID`` values, bounded cache) on the
    backend this process runs (``XMPPX_CORE``); the other one is skipped, so run the
    file again with ``XMPPX_CORE=python`` for it (``report.py`` does).
``slixmpp``
    ``slixmpp.jid.JID(s)`` (its core is the Rust ``jid`` crate).
``aioxmpp``
    ``aioxmpp.JID.fromstr(s)``.

Modes (``extra_info["mode"]``, groups ``jid-cold`` / ``jid-warm``):

``cold``
    Every round parses a set of strings never seen before (a new seed per round; the
    sets are generated before timing).  xmppx has no public way to empty the
    ``parse_jid`` cache, so fresh strings are what makes it cold; libraries without a
    cache run the same way.
``warm``
    Every round parses the same set, already parsed twice before timing, so all of
    ``parse_jid``'s lookups hit (the set is smaller than ``CACHE_SIZE``).

Correctness, checked on the seed-1 set outside the timing: each input's result
(prepared ``(local, domain, resource)``, or rejected) is compared with ``jidgen``'s
expectation.  ``accepted_invalid`` (laxer), ``rejected_valid`` (stricter) and
``different_output`` are counted in ``extra_info``; xmppx implementations must have all
three at zero (asserted), other libraries' disagreements are recorded, not failed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

import pytest

import jidgen
from _common import record, require_backend
from jidgen import JidCase, Parts

N: Final = 2000
COLD_ROUNDS: Final = 25
WARM_ROUNDS: Final = 25
IMPLEMENTATIONS: Final = (
    "native-prep_jid",
    "python-prep_jid",
    "native-parse_jid",
    "python-parse_jid",
    "slixmpp",
    "aioxmpp",
)

Parse = Callable[[str], Any]
ToParts = Callable[[Any], Parts]


def _implementation(name: str) -> tuple[Parse, ToParts]:
    """The parse function of ``name`` (raising ``ValueError`` on an invalid JID) and the
    function turning its result into prepared parts."""
    if name.endswith("-prep_jid"):
        core = require_backend(name.split("-")[0])
        prep: Parse = core.prep_jid
        return prep, tuple
    if name.endswith("-parse_jid"):
        wanted = name.split("-")[0]
        require_backend(wanted)
        xcore = importlib.import_module("xmppx.core")
        if xcore.backend != wanted:
            pytest.skip(
                f"this process runs the {xcore.backend} backend; "
                f"run with XMPPX_CORE={wanted} for {name}"
            )
        parse: Parse = xcore.parse_jid
        return parse, lambda j: (j.local, j.domain, j.resource)
    if name == "slixmpp":
        slix_jid = pytest.importorskip("slixmpp.jid")
        return slix_jid.JID, lambda j: (j.node, j.domain, j.resource)
    if name == "aioxmpp":
        aioxmpp = pytest.importorskip("aioxmpp")
        return aioxmpp.JID.fromstr, lambda j: (j.localpart or "", j.domain, j.resource or "")
    raise ValueError(name)


def _runner(parse: Parse) -> Callable[[list[str]], list[Any]]:
    def run(strings: list[str]) -> list[Any]:
        out: list[Any] = []
        append = out.append
        for s in strings:
            try:
                append(parse(s))
            except ValueError:  # JIDError, slixmpp's InvalidJID, aioxmpp's ValueError
                append(None)
        return out

    return run


def _check(results: list[Any], cases: list[JidCase], to_parts: ToParts) -> dict[str, Any]:
    accepted_invalid = rejected_valid = different = 0
    examples: list[str] = []
    for result, case in zip(results, cases, strict=True):
        got = None if result is None else to_parts(result)
        if got == case.expected:
            continue
        if case.expected is None:
            accepted_invalid += 1
        elif got is None:
            rejected_valid += 1
        else:
            different += 1
        if len(examples) < 5:
            examples.append(f"{case.text[:60]!r}: got {got!r}, expected {case.expected!r}")
    return {
        "accepted_invalid": accepted_invalid,
        "rejected_valid": rejected_valid,
        "different_output": different,
        "disagreements": accepted_invalid + rejected_valid + different,
        "rejects_all_invalid": accepted_invalid == 0,
        "examples": examples,
    }


@pytest.fixture(scope="module")
def base_cases() -> list[JidCase]:
    return jidgen.jid_cases(seed=1, n=N)


@pytest.fixture(scope="module")
def cold_sets() -> list[list[str]]:
    """One fresh set per cold round (seeds 1001...), shared by all implementations."""
    return [jidgen.jid_strings(seed=1001 + i, n=N) for i in range(COLD_ROUNDS)]


def _finish(
    benchmark: Any, name: str, mode: str, base_cases: list[JidCase], parse: Parse, to_parts: ToParts
) -> None:
    checked = _check(_runner(parse)([c.text for c in base_cases]), base_cases, to_parts)
    is_xmppx = name.startswith(("native-", "python-"))
    record(
        benchmark,
        correct=checked["disagreements"] == 0,
        items=N,
        mode=mode,
        non_ascii=sum(c.non_ascii for c in base_cases),
        invalid=sum(c.expected is None for c in base_cases),
        backend=name.split("-")[0] if is_xmppx else "",
        **checked,
    )
    if is_xmppx:
        assert checked["disagreements"] == 0, checked["examples"]


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_jid_cold(
    benchmark: Any, name: str, base_cases: list[JidCase], cold_sets: list[list[str]]
) -> None:
    parse, to_parts = _implementation(name)
    run = _runner(parse)
    pending = iter(cold_sets)

    def next_set() -> tuple[tuple[list[str]], dict[str, Any]]:
        return (next(pending),), {}

    benchmark.group = "jid-cold"
    benchmark.pedantic(run, setup=next_set, rounds=len(cold_sets), iterations=1)
    _finish(benchmark, name, "cold", base_cases, parse, to_parts)


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_jid_warm(benchmark: Any, name: str, base_cases: list[JidCase]) -> None:
    parse, to_parts = _implementation(name)
    run = _runner(parse)
    strings = [c.text for c in base_cases]
    run(strings)  # two passes: whatever a full cache emptied in the first is back
    run(strings)
    benchmark.group = "jid-warm"
    benchmark.pedantic(run, args=(strings,), rounds=WARM_ROUNDS, iterations=1)
    _finish(benchmark, name, "warm", base_cases, parse, to_parts)
