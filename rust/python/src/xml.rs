//! PyO3 glue for the XML core: `Element`, `StreamParser`, `parse`, `serialize`.
//!
//! Thin by design: all behaviour is in `xmppx_core::xml`; this file converts values
//! and errors.  Events are the classes of `xmppx.core._api` (`StreamHeader`,
//! `StreamEnd`, `XMLStreamError`), imported once and cached, so both backends return
//! the same types; the stanza event is the native `Element` itself.

use std::cell::{Ref, RefCell, RefMut};

use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::{GILOnceCell, GILProtected};
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyType};

use crate::xml_strcache::cached;
use xmppx_core::xml::chars::is_ncname;
use xmppx_core::xml::{
    self as core, with_child, AttrList, AttrsRef, Element as CoreElement, Event, Handle, Limits,
    TreeError, View, XmlError, MAX_TREE_DEPTH,
};

/// A child handle: a Python `Element` object.
pub struct PyHandle(Py<Element>);

impl Handle for PyHandle {
    type Guard<'g> = Python<'g>;
    fn guarded<R>(f: impl for<'g> FnOnce(Python<'g>) -> R) -> R {
        Python::with_gil(f)
    }
    fn wrap(e: CoreElement<Self>) -> Result<Self, TreeError> {
        Python::with_gil(|py| Py::new(py, Element::from_core(e)).map(PyHandle))
            .map_err(|_| TreeError::Callback)
    }
    fn read_in<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&CoreElement<Self>) -> R,
    ) -> Result<R, TreeError> {
        let b = self
            .0
            .get()
            .inner
            .get(py)
            .try_borrow()
            .map_err(|_| TreeError::Busy)?;
        Ok(f(&b))
    }
    fn write<R>(&self, f: impl FnOnce(&mut CoreElement<Self>) -> R) -> Result<R, TreeError> {
        Python::with_gil(|py| {
            let mut b = self
                .0
                .get()
                .inner
                .get(py)
                .try_borrow_mut()
                .map_err(|_| TreeError::Busy)?;
            Ok(f(&mut b))
        })
    }
    fn same(&self, other: &Self) -> bool {
        self.0.is(&other.0)
    }
    fn share(&self) -> Self {
        Python::with_gil(|py| PyHandle(self.0.clone_ref(py)))
    }
}

fn tree_err(e: TreeError) -> PyErr {
    match e {
        TreeError::Value(s) => PyValueError::new_err(s),
        TreeError::TooDeep => PyValueError::new_err(e.to_string()),
        TreeError::Busy => PyRuntimeError::new_err(e.to_string()),
        TreeError::Index => PyIndexError::new_err("child index out of range"),
        TreeError::Callback => PyRuntimeError::new_err("element callback failed"),
    }
}

/// The classes of `xmppx.core._api`, imported once.
struct Api {
    header: Py<PyType>,
    end: Py<PyType>,
    error: Py<PyType>,
}

fn api(py: Python<'_>) -> PyResult<&'static Api> {
    static API: GILOnceCell<Api> = GILOnceCell::new();
    API.get_or_try_init(py, || {
        let m = py.import("xmppx.core._api")?;
        Ok(Api {
            header: m
                .getattr("StreamHeader")?
                .downcast_into::<PyType>()?
                .unbind(),
            end: m.getattr("StreamEnd")?.downcast_into::<PyType>()?.unbind(),
            error: m
                .getattr("XMLStreamError")?
                .downcast_into::<PyType>()?
                .unbind(),
        })
    })
}

fn et_element_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static ET: GILOnceCell<PyObject> = GILOnceCell::new();
    Ok(ET
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("xml.etree.ElementTree")?
                    .getattr("Element")?
                    .unbind(),
            )
        })?
        .bind(py))
}

fn stream_error(py: Python<'_>, e: &XmlError, events: Vec<PyObject>) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = api(py)?.error.bind(py);
        let list = PyList::new(py, events)?;
        let v = cls.call1((e.condition.as_str(), e.reason.as_str(), list))?;
        Ok(PyErr::from_value(v))
    };
    build().unwrap_or_else(|err| err)
}

fn pairs_dict<'py>(py: Python<'py>, pairs: &[(String, String)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in pairs {
        d.set_item(k, v)?;
    }
    Ok(d)
}

fn attrs_dict<'py>(py: Python<'py>, attrs: &AttrsRef<'_>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in attrs.iter() {
        d.set_item(k, v)?;
    }
    Ok(d)
}

fn event_to_py(py: Python<'_>, ev: Event) -> PyResult<PyObject> {
    match ev {
        Event::Header(h) => {
            let kw = PyDict::new(py);
            kw.set_item(intern!(py, "name"), h.name)?;
            kw.set_item(intern!(py, "namespace"), h.namespace)?;
            kw.set_item(intern!(py, "attrs"), pairs_dict(py, &h.attrs)?)?;
            kw.set_item(intern!(py, "nsmap"), pairs_dict(py, &h.nsmap)?)?;
            Ok(api(py)?.header.bind(py).call((), Some(&kw))?.unbind())
        }
        Event::Stanza(s) => {
            Ok(Py::new(py, Element::from_core(CoreElement::from_stanza(s)))?.into_any())
        }
        Event::End => Ok(api(py)?.end.bind(py).call0()?.unbind()),
    }
}

fn check_name(name: &str) -> PyResult<()> {
    if is_ncname(name) {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "element name {name:?} is not an XML NCName"
        )))
    }
}

/// `"{ns}name"` → `("ns", "name")`; a bare `"name"` → `("", "name")` (last `}`).
fn split_clark(tag: &str) -> (&str, &str) {
    if let Some(rest) = tag.strip_prefix('{') {
        if let Some((ns, name)) = rest.rsplit_once('}') {
            return (ns, name);
        }
    }
    ("", tag)
}

/// An XML element (ElementTree model, see `xmppx.core._api`).  Parsed elements keep
/// their input bytes and build child objects only when asked.
///
/// `frozen`, with the mutable element in a `RefCell` that only the GIL holder can
/// reach: reading a child while walking a tree (serializing, comparing) then costs a
/// plain borrow-count update next to the element's fields, where PyO3's own borrow
/// flag (after the fields) takes atomic operations on one more cache line, plus a
/// reference count update, per element.  Conflicting borrows still raise
/// `RuntimeError`.  (`GILProtected` exists for interpreters with a GIL, the only
/// ones the package is built for.)
#[pyclass(module = "xmppx._native", name = "Element", frozen)]
pub struct Element {
    inner: GILProtected<RefCell<CoreElement<PyHandle>>>,
}

impl Element {
    fn from_core(e: CoreElement<PyHandle>) -> Self {
        Element {
            inner: GILProtected::new(RefCell::new(e)),
        }
    }

    /// Shared access to the element (`RuntimeError` while it is being modified).
    fn read<'py>(&'py self, py: Python<'py>) -> PyResult<Ref<'py, CoreElement<PyHandle>>> {
        self.inner
            .get(py)
            .try_borrow()
            .map_err(|_| tree_err(TreeError::Busy))
    }

    /// Exclusive access to the element (`RuntimeError` while it is being read).
    fn write<'py>(&'py self, py: Python<'py>) -> PyResult<RefMut<'py, CoreElement<PyHandle>>> {
        self.inner
            .get(py)
            .try_borrow_mut()
            .map_err(|_| tree_err(TreeError::Busy))
    }

    fn find_impl(&self, py: Python<'_>, tag: &str, first: bool) -> PyResult<Vec<PyHandle>> {
        let (ns, name) = split_clark(tag);
        let t = if tag.starts_with('{') && tag.contains('}') {
            format!("{{{ns}}}{name}")
        } else {
            tag.to_owned()
        };
        self.write(py)?.findall(&t, first).map_err(tree_err)
    }
}

fn to_etree_view<'py>(
    py: Python<'py>,
    v: &dyn View<PyHandle>,
    depth: usize,
    err: &mut Option<PyErr>,
) -> Result<Bound<'py, PyAny>, TreeError> {
    if depth > MAX_TREE_DEPTH {
        return Err(TreeError::TooDeep);
    }
    let build = |err: &mut Option<PyErr>| -> PyResult<Bound<'py, PyAny>> {
        let tag = if v.namespace().is_empty() {
            v.name().to_owned()
        } else {
            format!("{{{}}}{}", v.namespace(), v.name())
        };
        let e = et_element_class(py)?.call1((tag, attrs_dict(py, &v.attrs_ref())?))?;
        let text = v.text();
        if !text.is_empty() {
            e.setattr(intern!(py, "text"), &*text)?;
        }
        if !v.tail().is_empty() {
            e.setattr(intern!(py, "tail"), v.tail())?;
        }
        let children = v.children_list().map_err(tree_err)?;
        for c in &children {
            let child = with_child(c, |c| to_etree_view(py, c, depth + 1, err))
                .map_err(tree_err)?
                .map_err(|te| err.take().unwrap_or_else(|| tree_err(te)))?;
            e.call_method1(intern!(py, "append"), (child,))?;
        }
        Ok(e)
    };
    build(err).map_err(|e| {
        *err = Some(e);
        TreeError::Callback
    })
}

/// `v` and its subtree onto `out`, as `__reduce__` pickles them (`depth`: `v`'s, below
/// the element pickled).
fn push_subtree<'py>(
    py: Python<'py>,
    v: &dyn View<PyHandle>,
    depth: usize,
    out: &Bound<'py, PyList>,
    err: &mut Option<PyErr>,
) -> Result<(), TreeError> {
    if depth > MAX_TREE_DEPTH {
        return Err(TreeError::TooDeep);
    }
    let children = v.children_list()?;
    let item = || -> PyResult<()> {
        let attrs = attrs_dict(py, &v.attrs_ref())?;
        out.append((
            PyString::new(py, v.name()),
            PyString::new(py, v.namespace()),
            attrs,
            PyString::new(py, &v.text()),
            PyString::new(py, v.tail()),
            children.len(),
        ))
    };
    if let Err(e) = item() {
        *err = Some(e);
        return Err(TreeError::Callback);
    }
    for c in &children {
        with_child(c, |c| push_subtree(py, c, depth + 1, out, err))??;
    }
    Ok(())
}

/// One descendant as `__reduce__` pickles it (each string checked when it is read).
type PickledItem<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    usize,
);

/// The next element of a pickled `(name, namespace, attributes, text, tail, number of
/// children)` list with its subtree, `None` at the list's end.
fn rebuild_subtree(
    py: Python<'_>,
    items: &mut Bound<'_, pyo3::types::PyIterator>,
    depth: usize,
) -> PyResult<Option<PyHandle>> {
    let Some(item) = items.next() else {
        return Ok(None);
    };
    if depth > MAX_TREE_DEPTH {
        return Err(tree_err(TreeError::TooDeep));
    }
    let (name, ns, attrs, text, tail, n): PickledItem<'_> = item?.extract()?;
    let name = extract_str(&name, "name")?;
    check_name(&name)?;
    let ns = extract_str(&ns, "namespace")?;
    let attrs = extract_attr_list(&attrs)?;
    let text = extract_str(&text, "text")?;
    let tail = extract_str(&tail, "tail")?;
    let mut el = CoreElement::with_attr_list(&name, &ns, attrs, text, tail);
    for _ in 0..n {
        let Some(kid) = rebuild_subtree(py, items, depth + 1)? else {
            return Err(PyValueError::new_err(
                "pickled element: fewer descendants than its children counts",
            ));
        };
        el.append(kid).map_err(tree_err)?;
    }
    Ok(Some(PyHandle(Py::new(py, Element::from_core(el))?)))
}

fn from_etree_impl(py: Python<'_>, e: &Bound<'_, PyAny>, depth: usize) -> PyResult<Element> {
    if depth > MAX_TREE_DEPTH {
        return Err(tree_err(TreeError::TooDeep));
    }
    let tag = e.getattr(intern!(py, "tag"))?;
    let Ok(tag) = tag.downcast::<PyString>() else {
        return Err(PyValueError::new_err(format!(
            "not an element: {}",
            e.repr()?
        )));
    };
    let tag = tag.to_str()?;
    let (ns, name) = split_clark(tag);
    check_name(name)?;
    let attrs = extract_attr_list(&e.getattr(intern!(py, "attrib"))?)?;
    let opt_str = |v: Bound<'_, PyAny>| -> PyResult<String> {
        if v.is_none() {
            Ok(String::new())
        } else {
            v.extract::<String>()
        }
    };
    let text = opt_str(e.getattr(intern!(py, "text"))?)?;
    let tail = opt_str(e.getattr(intern!(py, "tail"))?)?;
    let mut el = CoreElement::with_attr_list(name, ns, attrs, text, tail);
    for c in e.try_iter()? {
        let child = from_etree_impl(py, &c?, depth + 1)?;
        el.append(PyHandle(Py::new(py, child)?)).map_err(tree_err)?;
    }
    Ok(Element::from_core(el))
}

/// The attributes of a mapping, packed.  A `dict` (keys unique) is read in place;
/// another mapping through `items()`, a repeated key keeping its first position.
fn extract_attr_list(attrs: &Bound<'_, PyAny>) -> PyResult<AttrList> {
    if let Ok(d) = attrs.downcast_exact::<PyDict>() {
        let mut out = AttrList::with_capacity(d.len());
        for (k, v) in d.iter() {
            out.push(
                str_ref(&k, "attribute name")?,
                str_ref(&v, "attribute value")?,
            );
        }
        return Ok(out);
    }
    let pairs = extract_attrs(attrs)?;
    let mut out = AttrList::with_capacity(pairs.len());
    for (k, v) in &pairs {
        out.push(k, v);
    }
    Ok(out)
}

/// A `str` borrowed as UTF-8: `TypeError` for another type, the `UnicodeEncodeError`
/// (a `ValueError`) of a lone surrogate, which XML cannot carry.
fn str_ref<'a>(v: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
    match v.downcast::<PyString>() {
        Ok(s) => s.to_str(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be str, not {}",
            v.get_type().name()?
        ))),
    }
}

fn extract_attrs(attrs: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let items = attrs.call_method0(intern!(attrs.py(), "items"))?;
    for item in items.try_iter()? {
        let item = item?;
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let k = extract_str(&k, "attribute name")?;
        let v = extract_str(&v, "attribute value")?;
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    Ok(out)
}

/// A `str` as a Rust string: `TypeError` for another type, the `UnicodeEncodeError`
/// (a `ValueError`) of a lone surrogate, which XML cannot carry.
fn extract_str(v: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    if !v.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be str, not {}",
            v.get_type().name()?
        )));
    }
    v.extract()
}

/// An attribute key as a lookup sees it: `None` for what no attribute can be named
/// (not a `str`, or one with a lone surrogate), which then finds nothing.
fn key_str<'a>(key: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    key.downcast::<PyString>().ok()?.to_str().ok()
}

fn check_element(obj: &Bound<'_, PyAny>) -> PyResult<Py<Element>> {
    obj.downcast::<Element>()
        .map(|b| b.clone().unbind())
        .map_err(|_| not_element(obj))
}

fn not_element(obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "expected an Element, not {}",
        obj.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    ))
}

#[pymethods]
impl Element {
    #[new]
    #[pyo3(signature = (name, namespace = "", attrs = None, *, text = "", tail = ""))]
    fn py_new(
        name: &str,
        namespace: &str,
        attrs: Option<&Bound<'_, PyAny>>,
        text: &str,
        tail: &str,
    ) -> PyResult<Self> {
        check_name(name)?;
        let attrs = match attrs {
            Some(a) if !a.is_none() => extract_attr_list(a)?,
            _ => AttrList::default(),
        };
        Ok(Element::from_core(CoreElement::with_attr_list(
            name,
            namespace,
            attrs,
            text.to_owned(),
            tail.to_owned(),
        )))
    }

    /// The local name.
    #[getter]
    fn name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        Ok(cached(py, &[self.read(py)?.name()]))
    }

    /// The namespace URI (`""` for none).
    #[getter]
    fn namespace<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        Ok(cached(py, &[self.read(py)?.namespace()]))
    }

    /// Clark notation: `{namespace}name` (just `name` without namespace).
    #[getter]
    fn tag<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let e = self.read(py)?;
        let ns = e.namespace();
        Ok(if ns.is_empty() {
            cached(py, &[e.name()])
        } else {
            cached(py, &["{", ns, "}", e.name()])
        })
    }

    /// Character data before the first child (`""` when none).
    #[getter]
    fn get_text<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        Ok(PyString::new(py, &self.read(py)?.text()))
    }

    #[setter]
    fn set_text(&self, py: Python<'_>, value: String) -> PyResult<()> {
        self.write(py)?.set_text(value);
        Ok(())
    }

    /// Character data after this element's end tag, inside its parent.
    #[getter]
    fn get_tail<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        Ok(PyString::new(py, self.read(py)?.tail()))
    }

    #[setter]
    fn set_tail(&self, py: Python<'_>, value: String) -> PyResult<()> {
        self.write(py)?.set_tail(value);
        Ok(())
    }

    /// A new dict of the attributes, in document order.
    #[getter]
    fn attrs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        attrs_dict(py, &self.read(py)?.attrs_ref())
    }

    /// The value of attribute `key` (Clark notation when namespaced), or `default`
    /// (also for a `key` that is not a `str`, as `dict.get` does).
    #[pyo3(signature = (key, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<PyObject>,
    ) -> PyResult<Option<PyObject>> {
        let Some(key) = key_str(key) else {
            return Ok(default);
        };
        Ok(match self.read(py)?.get(key) {
            Some(v) => Some(PyString::new(py, &v).into_any().unbind()),
            None => default,
        })
    }

    /// Set attribute `key`; a new key goes last in document order.
    fn set(&self, py: Python<'_>, key: String, value: String) -> PyResult<()> {
        self.write(py)?.set(&key, value);
        Ok(())
    }

    /// Remove an attribute and return its value (`default` if absent, as for a `key`
    /// that is not a `str`).
    #[pyo3(signature = (key, default = None))]
    fn pop_attr(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<PyObject>,
    ) -> PyResult<Option<PyObject>> {
        let Some(key) = key_str(key) else {
            return Ok(default);
        };
        Ok(match self.write(py)?.pop_attr(key) {
            Some(v) => Some(PyString::new(py, &v).into_any().unbind()),
            None => default,
        })
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.write(py)?.len().map_err(tree_err)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c: Vec<Py<Element>> = self
            .write(py)?
            .children()
            .map_err(tree_err)?
            .into_iter()
            .map(|h| h.0)
            .collect();
        Ok(PyList::new(py, c)?.into_any().try_iter()?.into_any())
    }

    fn __getitem__(&self, index: &Bound<'_, PyAny>) -> PyResult<Py<Element>> {
        let Ok(i) = index.extract::<isize>() else {
            return Err(PyTypeError::new_err(format!(
                "Element indices must be integers, not {}",
                index.get_type().name()?
            )));
        };
        self.write(index.py())?
            .child(i)
            .map(|h| h.0)
            .map_err(tree_err)
    }

    /// A new list of the children (the elements themselves are live).
    #[getter]
    fn children<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let c: Vec<Py<Element>> = self
            .write(py)?
            .children()
            .map_err(tree_err)?
            .into_iter()
            .map(|h| h.0)
            .collect();
        PyList::new(py, c)
    }

    /// Add `child` as the last child.
    fn append(slf: &Bound<'_, Self>, child: &Bound<'_, PyAny>) -> PyResult<()> {
        let c = check_element(child)?;
        if c.is(slf) {
            return Err(PyValueError::new_err("an element cannot be its own child"));
        }
        slf.get()
            .write(slf.py())?
            .append(PyHandle(c))
            .map_err(tree_err)
    }

    /// Insert `child` before position `index` (`list.insert` semantics).
    fn insert(slf: &Bound<'_, Self>, index: isize, child: &Bound<'_, PyAny>) -> PyResult<()> {
        let c = check_element(child)?;
        if c.is(slf) {
            return Err(PyValueError::new_err("an element cannot be its own child"));
        }
        slf.get()
            .write(slf.py())?
            .insert(index, PyHandle(c))
            .map_err(tree_err)
    }

    /// Remove the first child that *is* `child`; `ValueError` if none.
    fn remove(&self, child: &Bound<'_, PyAny>) -> PyResult<()> {
        let c = check_element(child)?;
        let removed = self
            .write(child.py())?
            .remove(&PyHandle(c))
            .map_err(tree_err)?;
        if removed {
            Ok(())
        } else {
            Err(PyValueError::new_err("Element.remove(x): x is not a child"))
        }
    }

    /// Remove all children.
    fn clear_children(&self, py: Python<'_>) -> PyResult<()> {
        self.write(py)?.clear_children();
        Ok(())
    }

    /// First child matching `tag`: `{ns}name`, or a bare `name` meaning that name in
    /// this element's own namespace (`msg.find("body")`).
    fn find(&self, py: Python<'_>, tag: &str) -> PyResult<Option<Py<Element>>> {
        Ok(self
            .find_impl(py, tag, true)?
            .into_iter()
            .next()
            .map(|h| h.0))
    }

    /// All children matching `tag` (same matching as `find`), in order.
    fn findall(&self, py: Python<'_>, tag: &str) -> PyResult<Vec<Py<Element>>> {
        Ok(self
            .find_impl(py, tag, false)?
            .into_iter()
            .map(|h| h.0)
            .collect())
    }

    /// The `text` of the first child matching `tag`, or `default` if none.
    #[pyo3(signature = (tag, default = None))]
    fn findtext(
        &self,
        py: Python<'_>,
        tag: &str,
        default: Option<PyObject>,
    ) -> PyResult<Option<PyObject>> {
        match self.find_impl(py, tag, true)?.into_iter().next() {
            Some(h) => {
                let t = h.read(|e| e.text().into_owned()).map_err(tree_err)?;
                Ok(Some(PyString::new(py, &t).into_any().unbind()))
            }
            None => Ok(default),
        }
    }

    /// Namespace of the first child element (an iq's payload), `None` if none; does
    /// not build the children.
    fn first_child_namespace(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.read(py)?.first_child_namespace().map_err(tree_err)
    }

    /// A deep copy (sharing the immutable input bytes).
    fn copy(&self, py: Python<'_>) -> PyResult<Element> {
        let e = self.read(py)?.deep_copy(0).map_err(tree_err)?;
        Ok(Element::from_core(e))
    }

    /// `copy.copy`: a new element with a copy of the attributes and the same child
    /// elements (ElementTree's shallow copy).
    fn __copy__(&self, py: Python<'_>) -> PyResult<Element> {
        let mut e = self.write(py)?;
        let children = e.children().map_err(tree_err)?;
        let attrs = e.attrs().into_owned();
        let mut new = CoreElement::new(
            e.name(),
            e.namespace(),
            attrs,
            e.text().into_owned(),
            e.tail().to_owned(),
        );
        for c in children {
            new.append(c).map_err(tree_err)?;
        }
        Ok(Element::from_core(new))
    }

    /// `copy.deepcopy`: `copy()`.
    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> PyResult<Element> {
        self.copy(py)
    }

    /// Pickled as its name, namespace and attributes, then its text, tail and its
    /// descendants in document order, each as `(name, namespace, attributes, text, tail,
    /// number of children)` (`__setstate__`): a flat list, so that pickle needs no
    /// recursion of its own however deep the tree.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let e = slf.get().read(py)?;
        let args = (
            PyString::new(py, e.name()),
            PyString::new(py, e.namespace()),
            attrs_dict(py, &e.attrs_ref())?,
        );
        let flat = PyList::empty(py);
        let mut err = None;
        let children = e.children_list().map_err(tree_err)?;
        for c in &children {
            with_child(c, |c| push_subtree(py, c, 1, &flat, &mut err))
                .and_then(|r| r)
                .map_err(|te| err.take().unwrap_or_else(|| tree_err(te)))?;
        }
        let state = (
            PyString::new(py, &e.text()),
            PyString::new(py, e.tail()),
            flat,
        );
        Ok((slf.get_type(), args, state).into_pyobject(py)?.into_any())
    }

    /// Restore what `__reduce__` saved after the name, namespace and attributes.
    fn __setstate__(&self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = state.py();
        let (text, tail, flat): (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>) =
            state.extract()?;
        let text = extract_str(&text, "text")?;
        let tail = extract_str(&tail, "tail")?;
        let mut items = flat.try_iter()?;
        let mut kids = Vec::new();
        while let Some(kid) = rebuild_subtree(py, &mut items, 1)? {
            kids.push(kid);
        }
        let mut e = self.write(py)?;
        e.set_text(text);
        e.set_tail(tail);
        e.clear_children();
        for k in kids {
            e.append(k).map_err(tree_err)?;
        }
        Ok(())
    }

    /// An `xml.etree.ElementTree.Element` with Clark tags; `""` text/tail become `None`.
    fn to_etree<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut err = None;
        let e = self.read(py)?;
        to_etree_view(py, &*e, 0, &mut err).map_err(|te| err.take().unwrap_or_else(|| tree_err(te)))
    }

    /// Build from an ElementTree element (Clark tags; `None` text/tail become `""`).
    #[staticmethod]
    fn from_etree(py: Python<'_>, element: &Bound<'_, PyAny>) -> PyResult<Element> {
        from_etree_impl(py, element, 0)
    }

    /// UTF-8 bytes as a child of a stream whose default namespace is `default_ns`:
    /// canonical, or the retained input bytes of unchanged parsed spans.
    #[pyo3(signature = (default_ns = "jabber:client"))]
    fn serialize<'py>(&self, py: Python<'py>, default_ns: &str) -> PyResult<Bound<'py, PyBytes>> {
        serialize_to_bytes(py, &*self.read(py)?, default_ns)
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: pyo3::basic::CompareOp,
    ) -> PyResult<PyObject> {
        let py = slf.py();
        use pyo3::basic::CompareOp;
        let Ok(other) = other.downcast::<Element>() else {
            return Ok(py.NotImplemented());
        };
        let eq = match op {
            CompareOp::Eq => true,
            CompareOp::Ne => false,
            _ => return Ok(py.NotImplemented()),
        };
        let same = if slf.is(other) {
            true
        } else {
            let a = slf.get().read(py)?;
            let b = other.get().read(py)?;
            core::equal::<PyHandle>(&*a, &*b, 0).map_err(tree_err)?
        };
        Ok(PyBool::new(py, same == eq).to_owned().into_any().unbind())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let e = self.read(py)?;
        let tag = PyString::new(py, &e.tag()).repr()?;
        Ok(format!("<Element {tag} attrs={}>", e.attr_count()))
    }
}

fn limit(v: Option<&Bound<'_, PyAny>>, name: &str, default: usize) -> PyResult<usize> {
    let Some(v) = v else { return Ok(default) };
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("{name} must be int")));
    }
    let n: i128 = v
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be int")))?;
    if n < 0 {
        return Err(PyValueError::new_err(format!("{name} must be >= 0")));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Run `f` on the bytes of `data`: `bytes` in place, a `bytearray` or `memoryview`
/// copied; `TypeError` naming `what` for anything else.
fn with_bytes<R>(data: &Bound<'_, PyAny>, what: &str, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.downcast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if data.is_instance_of::<pyo3::types::PyByteArray>()
        || data.is_instance_of::<pyo3::types::PyMemoryView>()
    {
        let v: Vec<u8> = data
            .py()
            .import("builtins")?
            .getattr("bytes")?
            .call1((data,))?
            .extract()?;
        return Ok(f(&v));
    }
    Err(PyTypeError::new_err(format!(
        "{what}() needs bytes, not {}",
        data.get_type().name()?
    )))
}

/// Incremental XMPP stream parser; see `xmppx.core._api` for the contract.
#[pyclass(module = "xmppx._native", name = "StreamParser")]
pub struct StreamParser {
    inner: core::StreamParser,
    events: Vec<Event>,
}

#[pymethods]
impl StreamParser {
    #[new]
    #[pyo3(
        signature = (*, max_stanza_bytes = None, max_depth = None, max_attributes = None, max_buffer_bytes = None),
        text_signature = "(*, max_stanza_bytes=262144, max_depth=32, max_attributes=64, max_buffer_bytes=16384)"
    )]
    fn py_new(
        max_stanza_bytes: Option<&Bound<'_, PyAny>>,
        max_depth: Option<&Bound<'_, PyAny>>,
        max_attributes: Option<&Bound<'_, PyAny>>,
        max_buffer_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let d = Limits::default();
        let limits = Limits {
            max_stanza_bytes: limit(max_stanza_bytes, "max_stanza_bytes", d.max_stanza_bytes)?,
            max_depth: match limit(max_depth, "max_depth", d.max_depth)? {
                n if n > MAX_TREE_DEPTH => {
                    return Err(PyValueError::new_err(format!(
                        "max_depth must be <= {MAX_TREE_DEPTH} (the deepest tree the \
                         element operations take)"
                    )))
                }
                n => n,
            },
            max_attributes: limit(max_attributes, "max_attributes", d.max_attributes)?,
            max_buffer_bytes: limit(max_buffer_bytes, "max_buffer_bytes", d.max_buffer_bytes)?,
        };
        Ok(StreamParser {
            inner: core::StreamParser::new(limits),
            events: Vec::new(),
        })
    }

    /// Parse the next bytes of the stream; return the events they complete, or raise
    /// `XMLStreamError` carrying the events completed before the error.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let events = &mut self.events;
        let inner = &mut self.inner;
        let r = with_bytes(data, "feed", |b| inner.feed(b, events))?;
        let mut out = Vec::with_capacity(self.events.len());
        for ev in self.events.drain(..) {
            out.push(event_to_py(py, ev)?);
        }
        match r {
            Ok(()) => PyList::new(py, out),
            Err(e) => Err(stream_error(py, &e, out)),
        }
    }

    /// Discard all input and state: the next bytes are a new stream.
    fn reset(&mut self) {
        self.inner.reset();
        self.events.clear();
    }
}

/// Parse one standalone element, as if it were a stanza in a stream whose default
/// namespace is `default_ns`; the same rules and errors as `StreamParser`.
#[pyfunction]
#[pyo3(signature = (data, default_ns = "jabber:client"))]
fn parse(py: Python<'_>, data: &Bound<'_, PyAny>, default_ns: &str) -> PyResult<Element> {
    core::check_default_ns(default_ns).map_err(tree_err)?;
    let r = with_bytes(data, "parse", |b| {
        core::parse_fragment(b, default_ns, Limits::default())
    })?;
    match r {
        Ok(s) => Ok(Element::from_core(CoreElement::from_stanza(s))),
        Err(e) => Err(stream_error(py, &e, Vec::new())),
    }
}

/// Serialize `element` as a child of a stream whose default namespace is `default_ns`.
#[pyfunction]
#[pyo3(signature = (element, default_ns = "jabber:client"))]
fn serialize<'py>(
    py: Python<'py>,
    element: &Bound<'py, PyAny>,
    default_ns: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let e = element
        .downcast::<Element>()
        .map_err(|_| not_element(element))?;
    serialize_to_bytes(py, &*e.get().read(py)?, default_ns)
}

/// Scratch buffers above this capacity are not kept between calls (a 256 KiB stanza
/// limit leaves room for its escaping growth).
const MAX_KEPT_BUFFER: usize = 1 << 20;

thread_local! {
    /// The output buffer reused by `serialize` calls on this thread, so a call does not
    /// grow a new one from scratch.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Serialize into this thread's scratch buffer and copy the result into `bytes`.
fn serialize_to_bytes<'py>(
    py: Python<'py>,
    e: &CoreElement<PyHandle>,
    default_ns: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let run = |buf: &mut Vec<u8>| -> PyResult<Bound<'py, PyBytes>> {
        buf.clear();
        let r = core::serialize_into(buf, e, default_ns);
        let out = r.map(|()| PyBytes::new(py, buf)).map_err(tree_err);
        if buf.capacity() > MAX_KEPT_BUFFER {
            *buf = Vec::new();
        } else {
            buf.clear();
        }
        out
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        // Re-entered (not expected: serializing runs no Python code): a fresh buffer.
        Err(_) => run(&mut Vec::with_capacity(256)),
    })
}

/// Register the XML classes and functions on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Element>()?;
    m.add_class::<StreamParser>()?;
    m.add_function(wrap_pyfunction!(parse, m)?)?;
    m.add_function(wrap_pyfunction!(serialize, m)?)?;
    Ok(())
}
