//! JID preparation bindings: `nodeprep`, `nameprep`, `resourceprep`, `prep_jid` over
//! `xmppx_core::jid` (the rules and error texts are documented there and in the Python
//! reference `xmppx.core._py._stringprep`, which returns identical results).
//!
//! Errors are raised as `xmppx.core._api.JIDError(rule, text)`, the class imported once
//! and cached.  A Python `str` holding a lone surrogate has no UTF-8 form, so it cannot
//! reach the Rust core; such strings (which never come from the network: the XML parser
//! rejects them) are handed to the Python reference, which reports them exactly as the
//! contract says.  A part that preparation leaves unchanged and that is the whole input
//! is returned as the input object itself, without a copy.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyString, PyTuple, PyType};

use xmppx_core::jid::{self as core, JidError};

fn jid_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static JID_ERROR: GILOnceCell<Py<PyType>> = GILOnceCell::new();
    JID_ERROR
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("xmppx.core._api")?
                    .getattr("JIDError")?
                    .downcast_into::<PyType>()?
                    .unbind(),
            )
        })
        .map(|t| t.bind(py))
}

/// `BaseException.__new__` as `ValueError` has it (`JIDError`'s `__new__`).
fn exception_new(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static NEW: GILOnceCell<PyObject> = GILOnceCell::new();
    NEW.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.get_type::<PyValueError>()
                .getattr(intern!(py, "__new__"))?
                .unbind(),
        )
    })
    .map(|f| f.bind(py))
}

/// `JIDError(rule, text)`, the error raised for `rule` with `text`.
///
/// Built as `JIDError.__init__` would build it (`args` is `(rule, text)`; `rule` and
/// `text` are attributes) but without running that Python method, which costs more
/// than the rest of raising the error; `tests/test_jid.py` checks that the result
/// equals a `JIDError(rule, text)` made in Python.
pub(crate) fn jid_error(py: Python<'_>, rule: &str, text: &str) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let t = jid_error_type(py)?;
        let (rule, text) = (PyString::new(py, rule), PyString::new(py, text));
        let exc = exception_new(py)?.call1((t, &rule, &text))?;
        exc.setattr(intern!(py, "rule"), rule)?;
        exc.setattr(intern!(py, "text"), text)?;
        Ok(PyErr::from_value(exc))
    };
    match make() {
        Ok(e) | Err(e) => e,
    }
}

pub(crate) fn to_py_err(py: Python<'_>, e: &JidError) -> PyErr {
    jid_error(py, e.rule().as_str(), e.text())
}

/// The pure-Python implementation of `name`, for strings with lone surrogates.
pub(crate) fn reference<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    static MODULE: GILOnceCell<Py<PyModule>> = GILOnceCell::new();
    MODULE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("xmppx.core._py._stringprep")?.unbind())
        })?
        .bind(py)
        .getattr(name)
}

/// `part` as a Python string: the input object itself when the part is all of it
/// (a slice of the input at the same address with the same length).
fn part_to_py<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyString>,
    input_str: &str,
    part: &str,
) -> Bound<'py, PyString> {
    if std::ptr::eq(part.as_ptr(), input_str.as_ptr()) && part.len() == input_str.len() {
        input.clone()
    } else {
        PyString::new(py, part)
    }
}

type Profile = for<'a> fn(&'a str) -> Result<Cow<'a, str>, JidError>;

fn run_profile<'py>(
    py: Python<'py>,
    s: &Bound<'py, PyString>,
    profile: Profile,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    let Ok(text) = s.to_str() else {
        return reference(py, name)?.call1((s,));
    };
    match profile(text) {
        Ok(out) => Ok(part_to_py(py, s, text, &out).into_any()),
        Err(e) => Err(to_py_err(py, &e)),
    }
}

/// The Nodeprep profile (RFC 6122 Appendix A); raises `JIDError`.
#[pyfunction]
fn nodeprep<'py>(py: Python<'py>, s: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    run_profile(py, s, core::nodeprep, intern!(py, "nodeprep"))
}

/// The Nameprep profile (RFC 3491) of the whole string; raises `JIDError`.
#[pyfunction]
fn nameprep<'py>(py: Python<'py>, s: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    run_profile(py, s, core::nameprep, intern!(py, "nameprep"))
}

/// The Resourceprep profile (RFC 6122 Appendix B); raises `JIDError`.
#[pyfunction]
fn resourceprep<'py>(py: Python<'py>, s: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    run_profile(py, s, core::resourceprep, intern!(py, "resourceprep"))
}

/// Split and prepare a JID: `(localpart, domainpart, resourcepart)`, `""` for an absent
/// part; raises `JIDError` (RFC 7622 §3, RFC 6122 §2).
#[pyfunction]
fn prep_jid<'py>(py: Python<'py>, s: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    let Ok(text) = s.to_str() else {
        return reference(py, intern!(py, "prep_jid"))?.call1((s,));
    };
    let j = core::prep_jid(text).map_err(|e| to_py_err(py, &e))?;
    let empty = intern!(py, "");
    let local = j
        .local
        .as_ref()
        .map_or_else(|| empty.clone(), |l| part_to_py(py, s, text, l));
    let domain = part_to_py(py, s, text, &j.domain);
    let resource = j
        .resource
        .as_ref()
        .map_or_else(|| empty.clone(), |r| part_to_py(py, s, text, r));
    Ok(PyTuple::new(py, [local, domain, resource])?.into_any())
}

/// Register the JID functions on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nodeprep, m)?)?;
    m.add_function(wrap_pyfunction!(nameprep, m)?)?;
    m.add_function(wrap_pyfunction!(resourceprep, m)?)?;
    m.add_function(wrap_pyfunction!(prep_jid, m)?)?;
    Ok(())
}
