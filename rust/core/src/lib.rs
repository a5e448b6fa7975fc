//! `xmppx-core`: the XMPP XML stream parser, lazy element tree, serializer and JID
//! preparation, in pure Rust (no Python; the PyO3 glue lives in `rust/python`).
//!
//! The normative contract is `python/xmppx/core/_api.py`; both this crate and the
//! pure-Python backend implement it and are checked against `tests/vectors/`.
#![forbid(unsafe_code)]

pub mod jid;
pub mod xml;
