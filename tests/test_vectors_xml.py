"""The shared stream-parser vectors (``tests/vectors/xml/``, format in
``tests/vectors/README.md``) on both backends.

Each case is fed whole, one byte at a time and in a few seeded random chunkings; the
events of every ``feed()`` plus ``error.events`` must equal the JSON's ``events`` (in
the JSON form, attributes and ``nsmap`` compared as mappings), and ``n_`` cases must
raise ``XMLStreamError`` with the JSON's ``error`` condition, after which the parser
stays dead.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"
XML_DIR = VECTORS / "xml"
CASES = sorted(XML_DIR.glob("*.json"))


def element_json(el: Any) -> dict[str, Any]:
    """An ``Element`` in the vector JSON form."""
    return {
        "name": el.name,
        "namespace": el.namespace,
        "attrs": [[k, v] for k, v in el.attrs.items()],
        "text": el.text,
        "tail": el.tail,
        "children": [element_json(c) for c in el],
    }


def event_json(core: ModuleType, ev: Any) -> dict[str, Any]:
    """A parser event in the vector JSON form."""
    if isinstance(ev, core.Element):
        return {"element": element_json(ev)}
    if type(ev).__name__ == "StreamHeader":
        return {
            "header": {
                "name": ev.name,
                "namespace": ev.namespace,
                "attrs": [[k, v] for k, v in ev.attrs.items()],
                "nsmap": [[k, v] for k, v in ev.nsmap.items()],
            }
        }
    assert type(ev).__name__ == "StreamEnd", ev
    return {"end": True}


def canonical(obj: Any) -> Any:
    """Attribute and nsmap pair lists become dicts (compared as mappings)."""
    if isinstance(obj, dict):
        return {
            k: dict(map(tuple, v)) if k in ("attrs", "nsmap") else canonical(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [canonical(x) for x in obj]
    return obj


def chunkings(data: bytes) -> dict[str, list[bytes]]:
    """Whole, byte at a time, and three seeded random chunkings of ``data``."""
    out = {"whole": [data], "bytewise": [data[i : i + 1] for i in range(len(data))]}
    for seed in range(3):
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
        bounds = [0, *cuts, len(data)]
        out[f"random{seed}"] = [data[a:b] for a, b in itertools.pairwise(bounds)]
    return out


def run(core: ModuleType, chunks: list[bytes], limits: dict[str, int]) -> tuple[list[Any], Any]:
    """Feed ``chunks``; return (events in JSON form, the error or None)."""
    parser = core.StreamParser(**limits)
    events: list[Any] = []
    for chunk in chunks:
        try:
            got = parser.feed(chunk)
        except core_error() as exc:
            events.extend(exc.events)
            return [event_json(core, e) for e in events], (exc, parser)
        events.extend(got)
    return [event_json(core, e) for e in events], None


def core_error() -> type[Exception]:
    from xmppx.core._api import XMLStreamError

    return XMLStreamError


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_vector(core: ModuleType, case: Path) -> None:
    spec = json.loads(case.read_text(encoding="utf-8"))
    data = case.with_suffix(".xml").read_bytes()
    limits = spec.get("limits", {})
    expected = canonical(spec["events"])
    for how, chunks in chunkings(data).items():
        events, failure = run(core, chunks, limits)
        assert canonical(events) == expected, how
        if "error" not in spec:
            assert failure is None, f"{how}: unexpected {failure[0]}"
            continue
        assert failure is not None, f"{how}: no error, expected {spec['error']}"
        exc, parser = failure
        assert exc.condition == spec["error"], f"{how}: {exc}"
        # dead until reset: the same condition, no events
        with pytest.raises(core_error()) as again:
            parser.feed(b" ")
        assert again.value.condition == spec["error"]
        assert again.value.events == []


def _load_make_expected() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_expected", VECTORS / "make_expected.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vector_files_match_their_elementtree_derivation() -> None:
    """The committed ``y_``/``n_`` files are exactly what ``make_expected.py`` derives
    with ElementTree (nobody pasted a backend's output in)."""
    make_expected = _load_make_expected()
    for stem, (data, obj) in make_expected.cases().items():
        assert (XML_DIR / f"{stem}.xml").read_bytes() == data, stem
        on_disk = json.loads((XML_DIR / f"{stem}.json").read_text(encoding="utf-8"))
        assert on_disk == obj, stem


def test_vector_set_covers_the_contract() -> None:
    stems = {p.stem for p in CASES}
    assert sum(s.startswith("y_") for s in stems) >= 40
    assert sum(s.startswith("n_") for s in stems) >= 50
    conditions = {json.loads(p.read_text(encoding="utf-8")).get("error") for p in CASES} - {None}
    assert conditions == {
        "not-well-formed",
        "restricted-xml",
        "policy-violation",
        "unsupported-encoding",
        "bad-format",
    }
    for stem in stems:
        assert (XML_DIR / f"{stem}.xml").exists(), stem


def _failing_feed(core: ModuleType, data: bytes, limits: dict[str, int]) -> tuple[int, str]:
    """Fed ``data`` a byte at a time: the index of the byte whose feed raised, and the
    condition."""
    parser = core.StreamParser(**limits)
    for i in range(len(data)):
        try:
            parser.feed(data[i : i + 1])
        except core_error() as exc:
            return i, exc.condition
    raise AssertionError("no error")


@pytest.mark.parametrize(
    "case", [p for p in CASES if p.stem.startswith("n_")], ids=lambda p: p.stem
)
def test_backends_reject_at_the_same_byte(case: Path) -> None:
    """The error comes with the byte that shows it, in both backends: the pure-Python
    parser does not wait, as its expat does, for the rest of a token or a character
    that is already wrong (``\\xe0<``, a first byte ``C0``, text before the header)."""
    from tests.xmlruns import NATIVE, PY

    if NATIVE is None:
        pytest.skip("xmppx._native is not built")
    data = case.with_suffix(".xml").read_bytes()
    limits = json.loads(case.read_text(encoding="utf-8")).get("limits", {})
    assert _failing_feed(PY, data, limits) == _failing_feed(NATIVE, data, limits)
