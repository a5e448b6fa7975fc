//! Errors of the XML layer: stream errors carry the RFC 6120 §4.9.3 condition.

use std::fmt;

/// An RFC 6120 §4.9.3 stream error condition the parser can detect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// Malformed XML (XML 1.0 well-formedness, Namespaces in XML).
    NotWellFormed,
    /// Restricted XML (RFC 6120 §11.1): DTD, comment, PI, undefined entity.
    RestrictedXml,
    /// A configured limit was exceeded.
    PolicyViolation,
    /// A byte-order mark, an encoding other than UTF-8 declared, or bytes that are not
    /// UTF-8 (RFC 6120 §4.9.3.22).
    UnsupportedEncoding,
    /// Character data at the stream level (between stanzas).
    BadFormat,
}

impl Condition {
    /// The condition's element name as RFC 6120 §4.9.3 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::NotWellFormed => "not-well-formed",
            Condition::RestrictedXml => "restricted-xml",
            Condition::PolicyViolation => "policy-violation",
            Condition::UnsupportedEncoding => "unsupported-encoding",
            Condition::BadFormat => "bad-format",
        }
    }
}

/// A stream error: the condition to send and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// The RFC 6120 condition.
    pub condition: Condition,
    /// Why, for logs and the `<text/>` of the stream error.
    pub reason: String,
}

impl XmlError {
    /// A new error.
    pub fn new(condition: Condition, reason: impl Into<String>) -> Self {
        XmlError {
            condition,
            reason: reason.into(),
        }
    }
    pub(crate) fn nwf(reason: impl Into<String>) -> Self {
        Self::new(Condition::NotWellFormed, reason)
    }
    pub(crate) fn restricted(reason: impl Into<String>) -> Self {
        Self::new(Condition::RestrictedXml, reason)
    }
    pub(crate) fn policy(reason: impl Into<String>) -> Self {
        Self::new(Condition::PolicyViolation, reason)
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.condition.as_str(), self.reason)
    }
}

impl std::error::Error for XmlError {}

/// Errors of element operations (serializing, building, walking a tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeError {
    /// A value cannot be written as XML (Python `ValueError`).
    Value(String),
    /// The tree is deeper than [`crate::xml::MAX_TREE_DEPTH`] or contains a cycle.
    TooDeep,
    /// An element was being modified while read (or read while modified).
    Busy,
    /// A callback failed; the caller holds the details.
    Callback,
    /// Index out of range.
    Index,
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::Value(s) => f.write_str(s),
            TreeError::TooDeep => f.write_str("element tree too deep or cyclic"),
            TreeError::Busy => f.write_str("element is being modified"),
            TreeError::Callback => f.write_str("callback failed"),
            TreeError::Index => f.write_str("child index out of range"),
        }
    }
}

impl std::error::Error for TreeError {}
