"""Helpers shared by the benchmarks: backend loading, building each library's element
objects from ``streamgen.Node`` data, tree normalisation for the correctness checks, and
recording rates in pytest-benchmark's ``extra_info``."""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from types import ModuleType
from typing import Any, Final

import pytest

from streamgen import Node

__all__ = [
    "MAX_STANZA_BYTES",
    "XMPPX_BACKENDS",
    "Tree",
    "etree_to_tree",
    "load_backend",
    "lxml_etree",
    "node_to_etree",
    "node_to_lxml",
    "node_to_tree",
    "node_to_xmppx",
    "record",
    "require_backend",
    "xmppx_to_tree",
]

XMPPX_BACKENDS: Final = ("native", "python")

#: The generated mixed stream holds roster results of up to ~500 KB and the memory case
#: one of 565 KB: above the 256 KiB default, as a server allows after authentication
#: for large rosters.  All xmppx parsers in the benchmarks use this limit.
MAX_STANZA_BYTES: Final = 2 * 1024 * 1024

#: A normalised element: (clark tag, sorted attributes, text, tail, children).
Tree = tuple[str, tuple[tuple[str, str], ...], str, str, tuple[Any, ...]]


def load_backend(name: str) -> ModuleType:
    """The module implementing xmppx backend ``name`` (as ``tests/conftest.py`` does)."""
    if name == "native":
        return importlib.import_module("xmppx._native")
    if name == "python":
        return importlib.import_module("xmppx.core._py")
    raise ValueError(f"unknown backend {name!r}")


def require_backend(name: str) -> ModuleType:
    """``load_backend(name)``, or skip the benchmark when it is not importable."""
    try:
        return load_backend(name)
    except ImportError as exc:
        pytest.skip(f"xmppx backend {name} not importable: {exc}")


def lxml_etree() -> ModuleType:
    """``lxml.etree``, or skip."""
    etree: ModuleType = pytest.importorskip("lxml.etree")
    return etree


# ---------------------------------------------------------------- building elements
def node_to_xmppx(core: ModuleType, node: Node) -> Any:
    """``node`` as an ``Element`` of the xmppx backend module ``core``."""
    el = core.Element(node.name, node.ns, dict(node.attrs), text=node.text, tail=node.tail)
    for child in node.children:
        el.append(node_to_xmppx(core, child))
    return el


def node_to_etree(node: Node) -> ET.Element:
    """``node`` as an ``xml.etree.ElementTree`` element (Clark tags, ``None`` for no text)."""
    el = ET.Element(node.tag, dict(node.attrs))
    el.text = node.text or None
    el.tail = node.tail or None
    el.extend(node_to_etree(c) for c in node.children)
    return el


def node_to_lxml(node: Node, parent_ns: str | None = None) -> Any:
    """``node`` as an ``lxml.etree`` element, built as XMPP code on lxml does: each
    element whose namespace differs from its parent's declares it as the default
    (``nsmap={None: ns}``), so lxml writes ``xmlns='...'`` rather than ``ns0:``
    prefixes; the stanza itself (``parent_ns=None``) declares its own."""
    etree = lxml_etree()
    nsmap = {None: node.ns} if node.ns != parent_ns else None
    el = etree.Element(node.tag, dict(node.attrs), nsmap=nsmap)
    el.text = node.text or None
    el.tail = node.tail or None
    for child in node.children:
        el.append(node_to_lxml(child, node.ns))
    return el


# ----------------------------------------------------------------- normalised trees
def node_to_tree(node: Node, *, top: bool = True) -> Tree:
    return (
        node.tag,
        tuple(sorted(node.attrs.items())),
        node.text,
        "" if top else node.tail,
        tuple(node_to_tree(c, top=False) for c in node.children),
    )


def etree_to_tree(el: Any, *, top: bool = True) -> Tree:
    """An ``xml.etree`` or ``lxml.etree`` element, normalised (``None`` text is ``""``;
    a stanza's own tail, a keepalive outside it, is dropped)."""
    return (
        el.tag,
        tuple(sorted(el.attrib.items())),
        el.text or "",
        "" if top else (el.tail or ""),
        tuple(etree_to_tree(c, top=False) for c in el),
    )


def xmppx_to_tree(el: Any, *, top: bool = True) -> Tree:
    """An xmppx ``Element`` (either backend), normalised."""
    return (
        el.tag,
        tuple(sorted(el.attrs.items())),
        el.text,
        "" if top else el.tail,
        tuple(xmppx_to_tree(c, top=False) for c in el),
    )


# ------------------------------------------------------------------------- recording
def record(
    benchmark: Any,
    *,
    correct: bool,
    nbytes: int | None = None,
    items: int | None = None,
    **extra: object,
) -> None:
    """Store the correctness flag and sizes in ``extra_info``, and the rates computed
    from the median round (``MB_per_s`` = 10^6 bytes per second, ``items_per_s``) when
    the benchmark was timed (not under ``--benchmark-disable``)."""
    info = benchmark.extra_info
    info["correct"] = correct
    info.update(extra)
    if nbytes is not None:
        info["bytes"] = nbytes
    if items is not None:
        info["items"] = items
    metadata = getattr(benchmark, "stats", None)
    if metadata is None:
        return
    median = metadata.stats.median
    if median > 0:
        if nbytes is not None:
            info["MB_per_s"] = round(nbytes / median / 1e6, 3)
        if items is not None:
            info["items_per_s"] = round(items / median, 1)
