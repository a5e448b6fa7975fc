//! The XML layer: incremental stream parser, lazy element tree and serializer.
//!
//! See `python/xmppx/core/_api.py` for the contract shared with the pure-Python backend.

pub mod chars;
pub mod decode;
pub mod element;
pub mod error;
mod names;
pub mod parser;
pub mod raw;
pub mod scope;
pub mod serialize;

pub use element::{
    equal, with_child, AttrIter, AttrList, AttrsRef, ChildRef, Element, Handle, LazyAttr, Node,
    PackedIter, RawView, View,
};
pub use error::{Condition, TreeError, XmlError};
pub use parser::{parse_fragment, Event, Header, Limits, Stanza, StreamParser};
pub use raw::Raw;
pub use scope::{Scope, NS_XML, NS_XMLNS};
pub use serialize::{check_default_ns, serialize, serialize_canonical, serialize_into};

/// Deepest element tree the recursive operations (serialize, compare, copy) accept;
/// deeper (or cyclic) trees are refused instead of exhausting the stack.
pub const MAX_TREE_DEPTH: usize = 1000;
