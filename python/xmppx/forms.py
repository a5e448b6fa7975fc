"""XEP-0004 data forms: just what the server's forms need (build a form, read a submit).

Example::

    <x xmlns='jabber:x:data' type='form'>
      <title>Add a user</title>
      <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/admin</value></field>
      <field var='accountjid' type='jid-single' label='The Jabber ID'><required/></field>
    </x>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xmppx import ns
from xmppx.core import Element

__all__ = ["Field", "build_form", "form_values"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Field:
    var: str
    type: str = "text-single"
    label: str = ""
    required: bool = False
    values: Sequence[str] = ()


def build_form(
    fields: Sequence[Field],
    *,
    title: str = "",
    instructions: str = "",
    form_type: str = "",
    type: str = "form",
) -> Element:
    """An ``<x type='form'/>`` (or ``result``) with a hidden ``FORM_TYPE`` first if given."""
    x = Element("x", ns.DATA_FORMS, {"type": type})
    if title:
        x.append(Element("title", ns.DATA_FORMS, text=title))
    if instructions:
        x.append(Element("instructions", ns.DATA_FORMS, text=instructions))
    all_fields = list(fields)
    if form_type:
        all_fields.insert(0, Field(var="FORM_TYPE", type="hidden", values=(form_type,)))
    for f in all_fields:
        attrs = {"var": f.var, "type": f.type}
        if f.label:
            attrs["label"] = f.label
        el = Element("field", ns.DATA_FORMS, attrs)
        if f.required:
            el.append(Element("required", ns.DATA_FORMS))
        for v in f.values:
            el.append(Element("value", ns.DATA_FORMS, text=v))
        x.append(el)
    return x


def form_values(x: Element) -> dict[str, list[str]]:
    """The submitted values of a form, by ``var`` (XEP-0004 §3.4)."""
    out: dict[str, list[str]] = {}
    for field in x.findall(ns.clark(ns.DATA_FORMS, "field")):
        var = field.get("var")
        if var:
            out[var] = [v.text for v in field.findall(ns.clark(ns.DATA_FORMS, "value"))]
    return out
