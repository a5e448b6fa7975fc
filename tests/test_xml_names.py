"""Which characters make a name: expat's classes (XML 1.0 Fourth Edition, Appendix B),
in both backends, for parsing and for building and writing elements.

The pure-Python backend reads with expat, and so does every XMPP peer built on it; the
Fifth Edition's wider classes would let the native backend accept, and both write,
names that expat refuses (``scripts/gen_xml_name_tables.py``)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.scripts import load_script
from tests.xmlruns import NATIVE, PY, feed_all

BACKENDS = [PY] + ([NATIVE] if NATIVE is not None else [])
HEADER = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"


GEN = load_script("gen_xml_name_tables.py")
START = GEN.name_start_ranges()
CHAR = GEN.name_char_ranges()


def _in(ranges: list[tuple[int, int]], cp: int) -> bool:
    return any(a <= cp <= b for a, b in ranges)


def test_the_committed_tables_are_what_expat_reads() -> None:
    assert GEN.NAMES_RS.read_text(encoding="utf-8") == GEN.render_rust(START, CHAR)
    assert GEN.NAMES_PY.read_text(encoding="utf-8") == GEN.render_python(START, CHAR)


def _valid_name(core: ModuleType, name: str) -> bool:
    try:
        core.Element(name)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("core", BACKENDS, ids=lambda c: c.__name__.rsplit(".", 1)[-1])
def test_element_names_are_what_expat_reads(core: ModuleType) -> None:
    """Every code point above U+007F, first in a name and after a first 'a': the
    ``Element`` constructor (and so the serializer) takes it exactly where expat does."""
    start_chars = set()
    name_chars = set()
    for cp in GEN.bmp_above_ascii():
        if _valid_name(core, chr(cp)):
            start_chars.add(cp)
        if _valid_name(core, "a" + chr(cp)):
            name_chars.add(cp)
    assert start_chars == {cp for a, b in START for cp in range(a, b + 1)}
    assert name_chars == {cp for a, b in CHAR for cp in range(a, b + 1)}
    for astral in ("\U00010000", "\U0001d400", "\U00020000", "\U000e0100"):
        assert not _valid_name(core, astral)
        assert not _valid_name(core, "a" + astral)


@pytest.mark.parametrize("core", BACKENDS, ids=lambda c: c.__name__.rsplit(".", 1)[-1])
def test_the_parsers_read_names_as_expat_does(core: ModuleType) -> None:
    """Every name-start character as an element, then as an attribute, in one stream;
    the refused ones (every 7th, and the notable ones) each end the stream with
    ``not-well-formed``, as in expat."""
    starts = [chr(cp) for a, b in START for cp in range(a, b + 1)]
    stanzas = b"".join(f"<{c}/><m {c}='1' a{c}='2'/>".encode() for c in starts)
    events, error = feed_all(core, [HEADER + stanzas])
    assert error is None
    assert [e.name for e in events[1::2]] == starts
    refused = [cp for cp in GEN.bmp_above_ascii() if not _in(START, cp)][::7]
    refused += [0x219, 0x21B, 0x400, 0x3400, 0xF900, 0xFEFF, 0xFFFD, 0x200C, 0x10000]
    for cp in refused:
        for stanza in (f"<{chr(cp)}/>", f"<m {chr(cp)}='1'/>", f"<x:{chr(cp)} xmlns:x='u'/>"):
            events, error = feed_all(core, [HEADER, stanza.encode()])
            assert error == "not-well-formed", (hex(cp), stanza)
            assert not GEN.expat_reads(stanza.encode().replace(b"x:", b""))


def test_a_name_one_backend_writes_the_other_reads() -> None:
    """The Romanian s-comma (Unicode 3.0) and a CJK Extension A ideograph were names
    the native backend read and both wrote, which the Python one refused."""
    for name in ("\u0219", "a\u0219", "\u3400"):
        for core in BACKENDS:
            with pytest.raises(ValueError):
                core.Element(name)
        assert not GEN.expat_reads(f"<{name}/>".encode())
