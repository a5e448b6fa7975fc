//! JIDs as values for the native backend: `BareJID`, `FullJID` and `parse_jid` with its
//! bounded cache.  The contract is the one of the pure-Python classes in
//! `python/xmppx/core/_jid.py` (its docstring is the specification; `tests/test_jid.py`
//! runs the same tests on both):
//!
//! * `parse_jid(s)` looks `s` up in a cache of at most [`CACHE_SIZE`] input strings
//!   (emptied when full, as the Python cache is); on a miss it prepares `s` with
//!   `xmppx_core::jid::prep_jid_text`, builds a `FullJID` (a resourcepart is present) or
//!   a `BareJID`, stores and returns it.  Invalid strings raise `JIDError` and are not
//!   stored.  A JID object is returned as it is; anything else is a `TypeError`.
//! * A value holds its prepared string form and the byte offsets of its parts: the
//!   input object itself when preparation changed nothing (most JIDs), else the Rust
//!   string, made a Python string when Python first needs it.  The part strings and a
//!   `FullJID`'s `bare` are made on first access and kept.  So a cache miss allocates
//!   one Python object, the value, and no Python string (DESIGN.md §2: build Python
//!   objects only when Python code asks for them).
//! * Equality and hash are those of the prepared string form; the two classes never
//!   compare equal to each other (a bare form has no `/`, a full one has) nor to
//!   anything else, and have no order.

use std::borrow::Cow;
use std::ops::Range;

use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyDict, PyString, PyType};

use xmppx_core::jid as core;

use crate::jid::{jid_error, reference, to_py_err};

/// Distinct input strings `parse_jid` keeps; the same number and policy as
/// `xmppx.core._jid.CACHE_SIZE` (see there for why).
pub const CACHE_SIZE: usize = 4096;

/// The cache: a `dict` from input `str` to JID object, so a hit reuses the string's
/// cached hash and costs one lookup.
fn cache(py: Python<'_>) -> &Bound<'_, PyDict> {
    static CACHE: GILOnceCell<Py<PyDict>> = GILOnceCell::new();
    CACHE.get_or_init(py, || PyDict::new(py).unbind()).bind(py)
}

fn offset(n: usize) -> PyResult<u32> {
    u32::try_from(n).map_err(|_| PyRuntimeError::new_err("JID offset out of range"))
}

/// A JID's prepared form, `localpart@domainpart/resourcepart`.
enum Text {
    /// The input string object, which preparation left unchanged.
    Input(Py<PyString>),
    /// The prepared text, and its Python string once made.
    Prepared(Box<str>, GILOnceCell<Py<PyString>>),
}

impl Text {
    fn prepared(text: impl Into<Box<str>>) -> Text {
        Text::Prepared(text.into(), GILOnceCell::new())
    }

    /// The text (for an input string, its UTF-8 form, which `str` caches).
    fn as_str<'a>(&'a self, py: Python<'a>) -> PyResult<&'a str> {
        match self {
            Text::Input(s) => s.bind(py).to_str(),
            Text::Prepared(text, _) => Ok(text),
        }
    }

    /// The Python string.
    fn py_str<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        match self {
            Text::Input(s) => s.bind(py).clone(),
            Text::Prepared(text, cell) => cell
                .get_or_init(py, || PyString::new(py, text).unbind())
                .bind(py)
                .clone(),
        }
    }

    /// `self[range]` as a Python string (the string itself when the range is all of it).
    fn slice<'py>(&self, py: Python<'py>, range: Range<usize>) -> PyResult<Bound<'py, PyString>> {
        let s = self.as_str(py)?;
        if range.start == 0 && range.end == s.len() {
            return Ok(self.py_str(py));
        }
        let part = s
            .get(range)
            .ok_or_else(|| PyRuntimeError::new_err("JID part offsets out of range"))?;
        Ok(PyString::new(py, part))
    }

    /// Python's hash of the string: equal texts hash alike whatever their form.
    fn hash(&self, py: Python<'_>) -> PyResult<isize> {
        self.py_str(py).hash()
    }

    fn equals(&self, py: Python<'_>, other: &Text) -> PyResult<bool> {
        if let (Text::Input(a), Text::Input(b)) = (self, other) {
            if a.is(b) {
                return Ok(true);
            }
        }
        Ok(self.as_str(py)? == other.as_str(py)?)
    }

    fn repr(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.py_str(py).repr()?.to_string())
    }
}

fn domain_start(local_len: u32) -> usize {
    if local_len == 0 {
        0
    } else {
        local_len as usize + 1
    }
}

/// The localpart, `""` when absent.
fn local_part<'py>(py: Python<'py>, text: &Text, local_len: u32) -> PyResult<Py<PyString>> {
    if local_len == 0 {
        return Ok(intern!(py, "").clone().unbind());
    }
    Ok(text.slice(py, 0..local_len as usize)?.unbind())
}

/// `__eq__`/`__ne__` of two texts; `NotImplemented` for the order comparisons.
fn compare(py: Python<'_>, a: &Text, b: &Text, op: CompareOp) -> PyResult<PyObject> {
    let want_equal = match op {
        CompareOp::Eq => true,
        CompareOp::Ne => false,
        _ => return Ok(py.NotImplemented()),
    };
    let equal = a.equals(py, b)?;
    Ok(PyBool::new(py, equal == want_equal)
        .to_owned()
        .into_any()
        .unbind())
}

/// A JID without resourcepart: `localpart@domainpart` or `domainpart`.
///
/// `BareJID(s)` parses `s` (as `parse_jid`) and raises `JIDError("not-bare", ...)` when
/// it has a resourcepart.
#[pyclass(frozen, module = "xmppx._native", name = "BareJID")]
pub struct BareJid {
    text: Text,
    /// Bytes of the localpart in the text, 0 when absent (a present one is never empty).
    local_len: u32,
    /// `(local, domain)`, made on first access.
    parts: GILOnceCell<[Py<PyString>; 2]>,
}

impl BareJid {
    fn new_value(text: Text, local_len: u32) -> BareJid {
        BareJid {
            text,
            local_len,
            parts: GILOnceCell::new(),
        }
    }

    fn parts<'a>(&'a self, py: Python<'_>) -> PyResult<&'a [Py<PyString>; 2]> {
        self.parts.get_or_try_init(py, || {
            let end = self.text.as_str(py)?.len();
            Ok([
                local_part(py, &self.text, self.local_len)?,
                self.text
                    .slice(py, domain_start(self.local_len)..end)?
                    .unbind(),
            ])
        })
    }
}

#[pymethods]
impl BareJid {
    #[new]
    fn py_new(py: Python<'_>, s: &Bound<'_, PyAny>) -> PyResult<Py<BareJid>> {
        match parse_jid(py, s)?.downcast_into::<BareJid>() {
            Ok(j) => Ok(j.unbind()),
            Err(_) => Err(jid_error(
                py,
                "not-bare",
                &format!("{} has a resourcepart", s.repr()?),
            )),
        }
    }

    /// The prepared localpart, '' when absent.
    #[getter]
    fn local<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let [local, _] = self.parts(py)?;
        Ok(local.bind(py).clone())
    }

    /// The prepared domainpart.
    #[getter]
    fn domain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let [_, domain] = self.parts(py)?;
        Ok(domain.bind(py).clone())
    }

    /// Always '' for a bare JID.
    #[getter]
    fn resource<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        intern!(py, "").clone()
    }

    /// The bare JID: this one.
    #[getter]
    fn bare<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.clone()
    }

    /// This JID with a resourcepart, prepared with Resourceprep (`JIDError` if the
    /// resourcepart is invalid or empty).
    fn with_resource<'py>(
        &self,
        py: Python<'py>,
        resource: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, FullJid>> {
        let resource = resource.downcast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "a resourcepart must be a str, not {}",
                resource
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let joined = match (self.text.as_str(py), resource.to_str()) {
            (Ok(t), Ok(r)) => PyString::new(py, &format!("{t}/{r}")).into_any(),
            // Lone surrogates have no UTF-8 form: let Python join them (and reject them).
            _ => self.text.py_str(py).as_any().add("/")?.add(resource)?,
        };
        match parse_jid(py, &joined)?.downcast_into::<FullJid>() {
            Ok(j) => Ok(j),
            Err(_) => Err(jid_error(
                py,
                "not-full",
                &format!("{} is not a resourcepart", resource.repr()?),
            )),
        }
    }

    fn __str__<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.text.py_str(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("BareJID({})", self.text.repr(py)?))
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.text.hash(py)
    }

    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<PyObject> {
        match other.downcast::<BareJid>() {
            Ok(o) => compare(py, &self.text, &o.get().text, op),
            Err(_) => Ok(py.NotImplemented()),
        }
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> (Bound<'py, PyType>, (Bound<'py, PyString>,)) {
        (py.get_type::<BareJid>(), (self.text.py_str(py),))
    }
}

/// A JID with a resourcepart: `localpart@domainpart/resourcepart` or
/// `domainpart/resourcepart`.
///
/// `FullJID(s)` parses `s` (as `parse_jid`) and raises `JIDError("not-full", ...)` when
/// it has no resourcepart.
#[pyclass(frozen, module = "xmppx._native", name = "FullJID")]
pub struct FullJid {
    text: Text,
    /// Bytes of the localpart in the text, 0 when absent.
    local_len: u32,
    /// Byte offset of the `/` that ends the domainpart.
    slash: u32,
    /// `(local, domain, resource)`, made on first access.
    parts: GILOnceCell<[Py<PyString>; 3]>,
    bare: GILOnceCell<Py<BareJid>>,
}

impl FullJid {
    fn parts<'a>(&'a self, py: Python<'_>) -> PyResult<&'a [Py<PyString>; 3]> {
        self.parts.get_or_try_init(py, || {
            let slash = self.slash as usize;
            let end = self.text.as_str(py)?.len();
            Ok([
                local_part(py, &self.text, self.local_len)?,
                self.text
                    .slice(py, domain_start(self.local_len)..slash)?
                    .unbind(),
                self.text.slice(py, slash + 1..end)?.unbind(),
            ])
        })
    }
}

#[pymethods]
impl FullJid {
    #[new]
    fn py_new(py: Python<'_>, s: &Bound<'_, PyAny>) -> PyResult<Py<FullJid>> {
        match parse_jid(py, s)?.downcast_into::<FullJid>() {
            Ok(j) => Ok(j.unbind()),
            Err(_) => Err(jid_error(
                py,
                "not-full",
                &format!("{} has no resourcepart", s.repr()?),
            )),
        }
    }

    /// The prepared localpart, '' when absent.
    #[getter]
    fn local<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let [local, _, _] = self.parts(py)?;
        Ok(local.bind(py).clone())
    }

    /// The prepared domainpart.
    #[getter]
    fn domain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let [_, domain, _] = self.parts(py)?;
        Ok(domain.bind(py).clone())
    }

    /// The prepared resourcepart (never empty).
    #[getter]
    fn resource<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let [_, _, resource] = self.parts(py)?;
        Ok(resource.bind(py).clone())
    }

    /// The BareJID of this JID.
    #[getter]
    fn bare<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, BareJid>> {
        let bare = self.bare.get_or_try_init(py, || -> PyResult<Py<BareJid>> {
            let text = self
                .text
                .as_str(py)?
                .get(..self.slash as usize)
                .ok_or_else(|| PyRuntimeError::new_err("JID part offsets out of range"))?;
            // The cached object for the same string when there is one (one object per
            // address in the routing tables), else a new one.
            if let Some(hit) = cache(py).get_item(text)? {
                if let Ok(b) = hit.downcast_into::<BareJid>() {
                    return Ok(b.unbind());
                }
            }
            Py::new(py, BareJid::new_value(Text::prepared(text), self.local_len))
        })?;
        Ok(bare.bind(py).clone())
    }

    fn __str__<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.text.py_str(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("FullJID({})", self.text.repr(py)?))
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.text.hash(py)
    }

    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<PyObject> {
        match other.downcast::<FullJid>() {
            Ok(o) => compare(py, &self.text, &o.get().text, op),
            Err(_) => Ok(py.NotImplemented()),
        }
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> (Bound<'py, PyType>, (Bound<'py, PyString>,)) {
        (py.get_type::<FullJid>(), (self.text.py_str(py),))
    }
}

/// The JID object for a prepared form whose domainpart ends at `domain_end`.
fn make<'py>(
    py: Python<'py>,
    text: Text,
    local_len: usize,
    domain_end: usize,
    full: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let local_len = offset(local_len)?;
    Ok(if full {
        Bound::new(
            py,
            FullJid {
                text,
                local_len,
                slash: offset(domain_end)?,
                parts: GILOnceCell::new(),
                bare: GILOnceCell::new(),
            },
        )?
        .into_any()
    } else {
        Bound::new(py, BareJid::new_value(text, local_len))?.into_any()
    })
}

/// Prepare `s` and build its JID object (not cached here).
fn prepare<'py>(py: Python<'py>, s: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    let Ok(input) = s.to_str() else {
        // Lone surrogates: the Python reference reports them (see `jid.rs`).
        let parts = reference(py, intern!(py, "prep_jid"))?.call1((s,))?;
        let (local, domain, resource): (String, String, String) = parts.extract()?;
        let bare = if local.is_empty() {
            domain
        } else {
            format!("{local}@{domain}")
        };
        let domain_end = bare.len();
        let text = if resource.is_empty() {
            bare
        } else {
            format!("{bare}/{resource}")
        };
        let full = !resource.is_empty();
        return make(py, Text::prepared(text), local.len(), domain_end, full);
    };
    let j = core::prep_jid_text(input).map_err(|e| to_py_err(py, &e))?;
    let full = j.domain_end < j.text.len();
    let text = match j.text {
        // A `str` subclass is not kept: `str()` of a JID is a plain `str`.
        Cow::Borrowed(_) if s.is_exact_instance_of::<PyString>() => Text::Input(s.clone().unbind()),
        t => Text::prepared(t.into_owned()),
    };
    make(py, text, j.local_len, j.domain_end, full)
}

/// `parse_jid(s)`: a `FullJID` when `s` has a resourcepart, else a `BareJID`, from the
/// cache when `s` was parsed recently; raises `JIDError` (RFC 7622 §3, RFC 6122).
#[pyfunction]
pub fn parse_jid<'py>(py: Python<'py>, s: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(text) = s.downcast::<PyString>() {
        let cache = cache(py);
        if let Some(hit) = cache.get_item(text)? {
            return Ok(hit);
        }
        let j = prepare(py, text)?;
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.set_item(text, &j)?;
        return Ok(j);
    }
    if s.is_instance_of::<BareJid>() || s.is_instance_of::<FullJid>() {
        return Ok(s.clone());
    }
    Err(PyTypeError::new_err(format!(
        "a JID must be a str, not {}",
        s.get_type().name()?
    )))
}

/// The live `parse_jid` cache (input string to JID), for tests and introspection; do
/// not add to it.
#[pyfunction]
fn jid_cache(py: Python<'_>) -> Bound<'_, PyDict> {
    cache(py).clone()
}

/// Register the JID classes, `parse_jid`, `jid_cache` and `JID_CACHE_SIZE`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BareJid>()?;
    m.add_class::<FullJid>()?;
    m.add_function(wrap_pyfunction!(parse_jid, m)?)?;
    m.add_function(wrap_pyfunction!(jid_cache, m)?)?;
    m.add("JID_CACHE_SIZE", CACHE_SIZE)?;
    Ok(())
}
