"""``Element`` (``xmppx/_native.pyi``) on both backends: construction and validation,
attributes, children, lookup, copies, ElementTree conversion and structural equality."""

from __future__ import annotations

import copy
import pickle
import xml.etree.ElementTree as ET
from types import ModuleType
from typing import Any

import pytest

from xmppx.core._api import NS_XML

LANG = f"{{{NS_XML}}}lang"


def message(core: ModuleType) -> object:
    msg = core.Element("message", "jabber:client", {"to": "juliet@example.com", "type": "chat"})
    msg.append(core.Element("body", "jabber:client", text="hi", tail="\n"))
    msg.append(core.Element("active", "http://jabber.org/protocol/chatstates"))
    return msg


# -- construction -----------------------------------------------------------------------
def test_defaults(core: ModuleType) -> None:
    el = core.Element("presence")
    assert (el.name, el.namespace, el.tag, el.text, el.tail) == ("presence", "", "presence", "", "")
    assert el.attrs == {}
    assert len(el) == 0
    assert el.children == []


def test_tag_is_clark_notation(core: ModuleType) -> None:
    assert core.Element("query", "jabber:iq:roster").tag == "{jabber:iq:roster}query"


@pytest.mark.parametrize("name", ["", "1a", "a:b", "a b", "-a", ".a", "a>", "\u00b7a", "a\x00"])
def test_name_must_be_an_ncname(core: ModuleType, name: str) -> None:
    with pytest.raises(ValueError):
        core.Element(name)


@pytest.mark.parametrize("name", ["a", "_", "a-b.c_d1", "é", "日本", "a\u00b7", "A\u0300"])
def test_valid_names(core: ModuleType, name: str) -> None:
    assert core.Element(name).name == name


def test_constructor_copies_the_attribute_mapping(core: ModuleType) -> None:
    attrs = {"a": "1"}
    el = core.Element("x", attrs=attrs)
    attrs["b"] = "2"
    assert el.attrs == {"a": "1"}


def test_name_and_namespace_are_read_only(core: ModuleType) -> None:
    el = core.Element("x", "urn:x")
    with pytest.raises(AttributeError):
        el.name = "y"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        el.namespace = "urn:y"  # type: ignore[misc]


def test_text_and_tail_are_writable_strings(core: ModuleType) -> None:
    el = core.Element("x")
    el.text = "a"
    el.tail = "b"
    assert (el.text, el.tail) == ("a", "b")
    with pytest.raises(TypeError):
        el.text = None  # type: ignore[assignment]


# -- attributes ---------------------------------------------------------------------------
def test_attributes_keep_document_order(core: ModuleType) -> None:
    el = core.Element("x", attrs={"b": "1", "a": "2"})
    el.set(LANG, "en")
    el.set("b", "3")  # replacing keeps the position
    assert list(el.attrs.items()) == [("b", "3"), ("a", "2"), (LANG, "en")]


def test_attrs_is_a_copy(core: ModuleType) -> None:
    el = core.Element("x", attrs={"a": "1"})
    el.attrs["a"] = "changed"
    assert el.get("a") == "1"


def test_get_set_pop(core: ModuleType) -> None:
    el = core.Element("x")
    assert el.get("a") is None
    assert el.get("a", "d") == "d"
    el.set("a", "1")
    assert el.get("a") == "1"
    assert el.pop_attr("a") == "1"
    assert el.pop_attr("a") is None
    assert el.pop_attr("a", "gone") == "gone"
    assert el.attrs == {}
    # the signature the stub declares: default by keyword, called through the class
    assert el.get("a", default="d") == "d"
    el.set("a", "2")
    assert type(el).get(el, "a") == "2"


# -- children -----------------------------------------------------------------------------
def test_children_sequence_protocol(core: ModuleType) -> None:
    msg = message(core)
    assert len(msg) == 2
    assert [c.name for c in msg] == ["body", "active"]
    assert msg[0].name == "body"
    assert msg[-1].name == "active"
    with pytest.raises(IndexError):
        msg[2]
    kids = msg.children
    kids.clear()
    assert len(msg) == 2  # a new list each time ...
    msg.children[0].text = "changed"
    assert msg[0].text == "changed"  # ... of the live elements


def test_append_insert_remove_clear(core: ModuleType) -> None:
    parent = core.Element("p")
    a, b, c = core.Element("a"), core.Element("b"), core.Element("c")
    parent.append(a)
    parent.append(c)
    parent.insert(1, b)
    assert [x.name for x in parent] == ["a", "b", "c"]
    parent.remove(b)
    assert [x.name for x in parent] == ["a", "c"]
    parent.clear_children()
    assert len(parent) == 0


def test_remove_is_by_identity(core: ModuleType) -> None:
    parent = core.Element("p")
    first, twin = core.Element("a"), core.Element("a")
    parent.append(first)
    assert twin == first
    with pytest.raises(ValueError):
        parent.remove(twin)
    parent.append(twin)
    parent.remove(twin)
    assert len(parent) == 1
    assert parent[0] is first


def test_append_rejects_non_elements(core: ModuleType) -> None:
    with pytest.raises(TypeError):
        core.Element("p").append("not an element")  # type: ignore[arg-type]


# -- lookup -------------------------------------------------------------------------------
def test_find_bare_name_means_own_namespace(core: ModuleType) -> None:
    msg = message(core)
    assert msg.find("body") is msg[0]
    assert msg.find("active") is None  # a different namespace
    assert msg.find("{http://jabber.org/protocol/chatstates}active") is msg[1]
    assert msg.find("{jabber:client}body") is msg[0]
    assert msg.find("{}body") is None


def test_find_empty_namespace(core: ModuleType) -> None:
    el = core.Element("x")
    el.append(core.Element("y"))
    assert el.find("y") is el[0]
    assert el.find("{}y") is el[0]


def test_findall_and_findtext(core: ModuleType) -> None:
    msg = core.Element("message", "jabber:client")
    for text in ("one", "two"):
        msg.append(core.Element("body", "jabber:client", text=text))
    msg.append(core.Element("subject", "jabber:client"))
    assert [b.text for b in msg.findall("body")] == ["one", "two"]
    assert msg.findall("thread") == []
    assert msg.findtext("body") == "one"
    assert msg.findtext("subject") == ""
    assert msg.findtext("thread") is None
    assert msg.findtext("thread", "none") == "none"


def test_first_child_namespace(core: ModuleType) -> None:
    iq = core.Element("iq", "jabber:client")
    assert iq.first_child_namespace() is None
    iq.append(core.Element("query", "jabber:iq:roster"))
    iq.append(core.Element("other", "urn:other"))
    assert iq.first_child_namespace() == "jabber:iq:roster"


# -- copies and conversions ---------------------------------------------------------------
def test_copy_is_deep(core: ModuleType) -> None:
    msg = message(core)
    dup = msg.copy()
    assert dup == msg
    assert dup is not msg
    assert dup[0] is not msg[0]
    dup[0].text = "changed"
    dup.set("to", "other")
    dup[1].set("x", "1")
    assert msg[0].text == "hi"
    assert msg.get("to") == "juliet@example.com"
    assert msg[1].attrs == {}


def test_to_etree(core: ModuleType) -> None:
    msg = message(core)
    msg.set(LANG, "en")
    et = msg.to_etree()
    assert isinstance(et, ET.Element)
    assert et.tag == "{jabber:client}message"
    assert et.attrib == {"to": "juliet@example.com", "type": "chat", LANG: "en"}
    assert et.text is None  # "" becomes None
    assert et.tail is None
    assert [c.tag for c in et] == [
        "{jabber:client}body",
        "{http://jabber.org/protocol/chatstates}active",
    ]
    assert et[0].text == "hi"
    assert et[0].tail == "\n"


def test_from_etree(core: ModuleType) -> None:
    et = ET.fromstring("<m xmlns='urn:m' xmlns:p='urn:p' p:a='1' b='2'>t<c>x</c>tail<d/></m>")
    el = core.Element.from_etree(et)
    assert (el.name, el.namespace, el.text) == ("m", "urn:m", "t")
    assert el.attrs == {"{urn:p}a": "1", "b": "2"}
    assert [(c.name, c.text, c.tail) for c in el] == [("c", "x", "tail"), ("d", "", "")]
    assert core.Element.from_etree(el.to_etree()) == el


def test_from_etree_rejects_comments_and_bad_names(core: ModuleType) -> None:
    with pytest.raises((ValueError, TypeError)):
        core.Element.from_etree(ET.Comment("c"))
    with pytest.raises(ValueError):
        core.Element.from_etree(ET.Element("{urn:x}1bad"))


# -- equality -----------------------------------------------------------------------------
def test_equality_is_structural(core: ModuleType) -> None:
    assert message(core) == message(core)
    assert (message(core) != message(core)) is False
    # attributes compare as a mapping: order does not matter
    assert core.Element("x", attrs={"a": "1", "b": "2"}) == core.Element(
        "x", attrs={"b": "2", "a": "1"}
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.set("to", "x"),
        lambda m: m.pop_attr("type"),
        lambda m: setattr(m, "text", "t"),
        lambda m: setattr(m, "tail", "t"),
        lambda m: setattr(m[0], "text", "other"),
        lambda m: setattr(m[0], "tail", ""),
        lambda m: m.remove(m[1]),
        lambda m: m[1].append(m[1].copy()),
    ],
)
def test_any_difference_breaks_equality(core: ModuleType, change: object) -> None:
    a, b = message(core), message(core)
    change(b)  # type: ignore[operator]
    assert a != b
    assert (a == b) is False


def test_name_and_namespace_matter(core: ModuleType) -> None:
    assert core.Element("x", "urn:a") != core.Element("x", "urn:b")
    assert core.Element("x", "urn:a") != core.Element("y", "urn:a")


def test_unhashable_and_not_equal_to_other_types(core: ModuleType) -> None:
    el = core.Element("x")
    with pytest.raises(TypeError):
        hash(el)
    assert el != "x"
    assert el != ET.Element("x")


# -- one API on both backends: cycles, depth, iteration, copies, argument types ----------
def chain(core: ModuleType, levels: int) -> object:
    """An element with ``levels - 1`` descendants, each the only child of the one above."""
    root = el = core.Element("x")
    for _ in range(levels - 1):
        child = core.Element("x")
        el.append(child)
        el = child
    return root


def test_an_element_cannot_be_its_own_child(core: ModuleType) -> None:
    el = core.Element("x")
    with pytest.raises(ValueError, match="own child"):
        el.append(el)
    with pytest.raises(ValueError, match="own child"):
        el.insert(0, el)
    assert len(el) == 0


@pytest.mark.parametrize(
    "walk",
    [
        lambda e: e == e.copy(),
        lambda e: e.copy(),
        lambda e: e.serialize(),
        lambda e: e.to_etree(),
        lambda e: pickle.loads(pickle.dumps(e)) == e,
    ],
    ids=["eq", "copy", "serialize", "to_etree", "pickle"],
)
def test_trees_walk_to_1001_levels_and_no_deeper(core: ModuleType, walk: Any) -> None:
    walk(chain(core, 1001))  # the root and 1000 levels below it
    with pytest.raises(ValueError, match="too deep or cyclic"):
        walk(chain(core, 1002))


def test_from_etree_walks_to_1001_levels_and_no_deeper(core: ModuleType) -> None:
    def et_chain(levels: int) -> ET.Element:
        root = e = ET.Element("x")
        for _ in range(levels - 1):
            e = ET.SubElement(e, "x")
        return root

    assert len(core.Element.from_etree(et_chain(1001))) == 1
    with pytest.raises(ValueError, match="too deep or cyclic"):
        core.Element.from_etree(et_chain(1002))


def test_a_cycle_is_a_value_error_not_a_crash(core: ModuleType) -> None:
    a, b = core.Element("x"), core.Element("x")
    a.append(b)
    b.append(a)
    for walk in (lambda: a == b, a.copy, a.serialize, a.to_etree, lambda: pickle.dumps(a)):
        with pytest.raises(ValueError, match="too deep or cyclic"):
            walk()


def test_iteration_sees_the_children_as_they_were(core: ModuleType) -> None:
    el = core.Element("a")
    for name in "bcde":
        el.append(core.Element(name))
    seen = []
    for c in el:
        seen.append(c.name)
        el.remove(c)
        el.append(core.Element("new"))
    assert seen == ["b", "c", "d", "e"]
    assert [c.name for c in el] == ["new"] * 4


def test_copy_module_shallow_copy_shares_children_not_attributes(core: ModuleType) -> None:
    msg = message(core)
    shallow = copy.copy(msg)
    assert shallow == msg and shallow is not msg
    shallow.set("id", "1")
    shallow.append(core.Element("x"))
    assert msg.get("id") is None and len(msg) == 2
    assert shallow[0] is msg[0]  # ElementTree's copy.copy: the same child elements
    deep = copy.deepcopy(msg)
    assert deep == msg and deep[0] is not msg[0]


@pytest.mark.parametrize("lazy", [False, True], ids=["built", "parsed"])
def test_pickle_round_trip(core: ModuleType, lazy: bool) -> None:
    msg = message(core)
    if lazy:
        msg = core.parse(core.serialize(msg))
    again = pickle.loads(pickle.dumps(msg))
    assert type(again) is core.Element
    assert again == msg
    assert again.serialize() == msg.serialize()


def test_the_pickled_state_lists_the_descendants_flat(core: ModuleType) -> None:
    """Pickle's own recursion would stop a few hundred levels down; the state is one
    flat list in document order, each descendant with its number of children."""
    root = core.Element("r", "urn:r", {"k": "v"}, text="t")
    a = core.Element("a", tail="1")
    a.append(core.Element("b", attrs={"{urn:x}q": "2"}))
    root.append(a)
    root.append(core.Element("c"))
    cls, args, state = root.__reduce__()
    assert (cls, args) == (core.Element, ("r", "urn:r", {"k": "v"}))
    assert state == (
        "t",
        "",
        [
            ("a", "", {}, "", "1", 1),
            ("b", "", {"{urn:x}q": "2"}, "", "", 0),
            ("c", "", {}, "", "", 0),
        ],
    )
    again = core.Element("r", "urn:r", {"k": "v"})
    again.__setstate__(state)
    assert again == root
    short = core.Element("r")
    with pytest.raises(ValueError, match="fewer descendants"):
        short.__setstate__(("", "", [("a", "", {}, "", "", 2), ("b", "", {}, "", "", 0)]))
    with pytest.raises(ValueError):
        short.__setstate__(("", "", [("not a name", "", {}, "", "", 0)]))


def test_a_key_that_is_not_a_string_finds_nothing(core: ModuleType) -> None:
    el = core.Element("x", attrs={"1": "one"})
    assert el.get(1) is None  # type: ignore[arg-type]
    assert el.get(1, "d") == "d"  # type: ignore[arg-type]
    assert el.pop_attr(1, "d") == "d"  # type: ignore[arg-type]
    assert el.attrs == {"1": "one"}


@pytest.mark.parametrize(
    "make",
    [
        lambda core: core.Element("x", text="\ud800"),
        lambda core: core.Element("x", tail="a\udfff"),
        lambda core: core.Element("x", "urn:\ud800"),
        lambda core: core.Element("x", attrs={"a": "\ud800"}),
        lambda core: setattr(core.Element("x"), "text", "\ud800"),
        lambda core: core.Element("x").set("a", "\ud800"),
    ],
)
def test_a_lone_surrogate_is_refused_when_given(core: ModuleType, make: Any) -> None:
    with pytest.raises(UnicodeEncodeError):
        make(core)


def test_remove_needs_an_element(core: ModuleType) -> None:
    with pytest.raises(TypeError):
        core.Element("x").remove(1)


def test_repr_names_the_tag_and_counts_attributes(core: ModuleType) -> None:
    assert repr(core.Element("a", "urn:x", {"k": "v"})) == "<Element '{urn:x}a' attrs=1>"
