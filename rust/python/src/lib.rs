//! `xmppx._native`: the PyO3 module over `xmppx-core` (thin glue; the behaviour and
//! its documentation live in the core crate and in `python/xmppx/core/_api.py`).
#![forbid(unsafe_code)]

use pyo3::prelude::*;

mod jid;
mod jid_value;
mod xml;
mod xml_strcache;

/// The Rust core of xmppx: XML stream parser, elements, serializer, JID preparation.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    xml::register(m)?;
    jid::register(m)?;
    jid_value::register(m)?;
    // PyO3 keeps an `__all__`; the stub (`_native.pyi`, checked by stubtest) has none.
    if m.hasattr("__all__")? {
        m.delattr("__all__")?;
    }
    Ok(())
}
