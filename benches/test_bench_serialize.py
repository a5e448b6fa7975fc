"""Serializing stanzas to bytes (issue 2 §9): the xmppx serializer (native, pure Python)
vs ``xml.etree.ElementTree.tostring`` vs ``lxml.etree.tostring``.

All variants serialize the stanzas of the seeded mixed stream (``streamgen``), each built
beforehand, untimed, as that library's element objects from the same ``Node`` data
(``_common.node_to_*``); the timed loop is one ``serialize``/``tostring`` call per stanza
to UTF-8 bytes (no XML declaration).  xmppx writes relative to the ``jabber:client``
stream default namespace, ElementTree with ``ns0:``-style prefixes, lxml with the
``xmlns`` declarations the elements were built with.

``MB_per_s`` counts the stanzas' wire size as the generator wrote them (the same number
of bytes for every variant); ``output_bytes`` is what each variant wrote.

Correctness (``extra_info["correct"]``, asserted): every output, re-parsed with the
stdlib's expat (inside a ``jabber:client`` wrapper for xmppx output), equals the
reference tree.  The two xmppx backends must also write the same canonical bytes
(``extra_info["canonical_match"]`` when both are importable).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, Final

import pytest

import streamgen
from _common import (
    etree_to_tree,
    load_backend,
    lxml_etree,
    node_to_etree,
    node_to_lxml,
    node_to_tree,
    node_to_xmppx,
    record,
    require_backend,
)
from streamgen import NS_CLIENT, GeneratedStream

VARIANTS: Final = ("native", "python", "etree", "lxml")


@pytest.fixture(scope="module")
def stream() -> GeneratedStream:
    return streamgen.mixed_stream(seed=1)


def _reparse(data: bytes, *, in_client_stream: bool) -> Any:
    if in_client_stream:
        return ET.fromstring(b"<w xmlns='" + NS_CLIENT.encode() + b"'>" + data + b"</w>")[0]
    return ET.fromstring(data)


Serializer = Callable[[list[Any]], list[bytes]]


def _prepare(variant: str, stream: GeneratedStream) -> tuple[Serializer, list[Any]]:
    nodes = stream.stanzas
    if variant in ("native", "python"):
        core = require_backend(variant)
        serialize = core.serialize

        def run_xmppx(elements: list[Any]) -> list[bytes]:
            return [serialize(e, NS_CLIENT) for e in elements]

        return run_xmppx, [node_to_xmppx(core, n) for n in nodes]
    if variant == "etree":
        tostring = ET.tostring

        def run_etree(elements: list[Any]) -> list[bytes]:
            return [tostring(e, encoding="utf-8", xml_declaration=False) for e in elements]

        return run_etree, [node_to_etree(n) for n in nodes]
    if variant == "lxml":
        lxml_tostring = lxml_etree().tostring

        def run_lxml(elements: list[Any]) -> list[bytes]:
            return [lxml_tostring(e, encoding="utf-8") for e in elements]

        return run_lxml, [node_to_lxml(n) for n in nodes]
    raise ValueError(variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_serialize(benchmark: Any, variant: str, stream: GeneratedStream) -> None:
    run, elements = _prepare(variant, stream)
    benchmark.group = "serialize"
    outputs = benchmark(run, elements)

    in_stream = variant in ("native", "python")
    reference = [node_to_tree(n) for n in stream.stanzas]
    got = [etree_to_tree(_reparse(o, in_client_stream=in_stream)) for o in outputs]
    mismatches = sum(g != r for g, r in zip(got, reference, strict=True))
    extra: dict[str, object] = {}
    if in_stream:
        other = "python" if variant == "native" else "native"
        try:
            other_core = load_backend(other)
        except ImportError:
            pass
        else:
            theirs = [other_core.serialize(node_to_xmppx(other_core, n)) for n in stream.stanzas]
            extra["canonical_match"] = theirs == outputs
    correct = mismatches == 0 and extra.get("canonical_match", True) is True
    record(
        benchmark,
        correct=correct,
        nbytes=sum(map(len, stream.stanza_bytes)),
        items=len(outputs),
        output_bytes=sum(map(len, outputs)),
        tree_mismatches=mismatches,
        seed=stream.seed,
        **extra,
    )
    assert mismatches == 0
    assert correct, extra
