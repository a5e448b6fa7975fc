//! JIDs: splitting (RFC 7622 §3.1-§3.2) and preparation with the RFC 6122 stringprep
//! profiles (Nodeprep, Nameprep with IDNA2003 for the domainpart, Resourceprep) on the
//! Unicode 3.2 tables of RFC 3454.
//!
//! The behaviour, including the order of the checks and the error texts, is identical to
//! the pure-Python reference `python/xmppx/core/_py/_stringprep.py` (its module
//! docstring is the detailed specification); `tests/vectors/jid/` holds the shared
//! vectors and `tests/test_jid_properties.py` compares both implementations on random
//! input.
//!
//! Nothing here panics or allocates more than a small multiple of the input on any input.
//! Common all-ASCII JIDs that are already in prepared form are returned borrowed,
//! without allocating.
//!
//! ```
//! use xmppx_core::jid::prep_jid;
//! let j = prep_jid("Juliet@Example.COM/Balcony").unwrap();
//! assert_eq!(j.local.as_deref(), Some("juliet"));
//! assert_eq!(j.domain, "example.com");
//! assert_eq!(j.resource.as_deref(), Some("Balcony"));
//! ```

mod domain;
mod punycode;
mod stringprep;
mod tables;
mod text;

use std::borrow::Cow;
use std::fmt;

use memchr::memchr;

pub use domain::{prep_domain, MAX_LABEL_OCTETS};
pub use stringprep::{is_assigned_3_2, nameprep, nfkc_3_2, nodeprep, resourceprep};
pub use text::{prep_jid_text, PreparedText};

use domain::check_length;
use stringprep::{prepare, Profile};

/// RFC 7622 §3.1: each part is at most 1023 bytes of UTF-8 after preparation.
pub const MAX_PART_BYTES: usize = 1023;

/// The rule a JID breaks: `xmppx.core._api.JID_RULES` on the Python side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JidRule {
    /// The domainpart, or a present localpart or resourcepart, is empty.
    Empty,
    /// A part exceeds 1023 bytes after preparation.
    TooLong,
    /// A character prohibited by the profile (RFC 3454 tables C.*).
    Prohibited,
    /// One of `" & ' / : < > @` in the localpart (RFC 6122 Appendix A.5).
    NodeprepProhibited,
    /// A code point unassigned in Unicode 3.2 (RFC 3454 table A.1).
    Unassigned,
    /// The RFC 3454 §6 bidirectional rule is broken.
    Bidi,
    /// The domainpart is not a valid IDNA2003 host name or IP literal.
    BadDomain,
}

impl JidRule {
    /// The rule's name as `JIDError.rule` spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            JidRule::Empty => "empty",
            JidRule::TooLong => "too-long",
            JidRule::Prohibited => "prohibited",
            JidRule::NodeprepProhibited => "nodeprep-prohibited",
            JidRule::Unassigned => "unassigned",
            JidRule::Bidi => "bidi",
            JidRule::BadDomain => "bad-domain",
        }
    }

    /// Parse a rule name (the inverse of [`JidRule::as_str`]).
    pub fn from_name(name: &str) -> Option<JidRule> {
        [
            JidRule::Empty,
            JidRule::TooLong,
            JidRule::Prohibited,
            JidRule::NodeprepProhibited,
            JidRule::Unassigned,
            JidRule::Bidi,
            JidRule::BadDomain,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// A string is not a valid JID: the rule broken and a text saying where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JidError {
    rule: JidRule,
    text: String,
}

impl JidError {
    pub(crate) fn new(rule: JidRule, text: String) -> JidError {
        JidError { rule, text }
    }

    /// The rule broken.
    pub fn rule(&self) -> JidRule {
        self.rule
    }

    /// The human-readable reason (the same text as the Python reference gives).
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule.as_str(), self.text)
    }
}

impl std::error::Error for JidError {}

/// A prepared JID; `None` for an absent localpart or resourcepart (a present one is
/// never empty).  Parts already in prepared form borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedJid<'a> {
    /// The localpart after Nodeprep.
    pub local: Option<Cow<'a, str>>,
    /// The domainpart after Nameprep/IDNA (or the normalised IP literal).
    pub domain: Cow<'a, str>,
    /// The resourcepart after Resourceprep.
    pub resource: Option<Cow<'a, str>>,
}

/// `s` before and after the byte at `i`, an ASCII separator (so both are char
/// boundaries).
fn split_around(s: &str, i: usize) -> (&str, &str) {
    (s.get(..i).unwrap_or(s), s.get(i + 1..).unwrap_or(""))
}

fn prep_part<'a>(raw: &'a str, profile: Profile) -> Result<Cow<'a, str>, JidError> {
    let part = profile.part();
    if raw.is_empty() {
        return Err(JidError::new(JidRule::Empty, format!("{part} is empty")));
    }
    check_length(prepare(raw, profile)?, part)
}

/// Split (RFC 7622 §3.1-§3.2) and prepare (RFC 6122 §2) a JID.
///
/// Splits at the first `/` (the resourcepart is everything after it), then at the first
/// `@` before it; prepares localpart, domainpart, resourcepart in that order and returns
/// the first error.  `prep_jid("a@b@c")` is `bad-domain` (`@` is not a host name
/// character), `prep_jid("@d")` and `prep_jid("d/")` are `empty`.
///
/// # Errors
/// The first [`JidError`] found, parts checked left to right.
pub fn prep_jid(s: &str) -> Result<PreparedJid<'_>, JidError> {
    let (rest, resource_raw) = match memchr(b'/', s.as_bytes()) {
        Some(i) => {
            let (rest, resource) = split_around(s, i);
            (rest, Some(resource))
        }
        None => (s, None),
    };
    let (local_raw, domain_raw) = match memchr(b'@', rest.as_bytes()) {
        Some(i) => {
            let (local, domain) = split_around(rest, i);
            (Some(local), domain)
        }
        None => (None, rest),
    };
    let local = local_raw
        .map(|l| prep_part(l, Profile::Nodeprep))
        .transpose()?;
    let domain = prep_domain(domain_raw)?;
    let resource = resource_raw
        .map(|r| prep_part(r, Profile::Resourceprep))
        .transpose()?;
    Ok(PreparedJid {
        local,
        domain,
        resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rules() {
        let j = prep_jid("a/b@c").unwrap();
        assert_eq!(
            (j.local, j.domain.as_ref(), j.resource.as_deref()),
            (None, "a", Some("b@c"))
        );
        let j = prep_jid("a@b/c/d").unwrap();
        assert_eq!(j.resource.as_deref(), Some("c/d"));
        assert_eq!(prep_jid("a@b@c").unwrap_err().rule(), JidRule::BadDomain);
        assert_eq!(prep_jid("@d").unwrap_err().rule(), JidRule::Empty);
        assert_eq!(prep_jid("d/").unwrap_err().rule(), JidRule::Empty);
        assert_eq!(prep_jid("").unwrap_err().rule(), JidRule::Empty);
        assert_eq!(prep_jid("a@").unwrap_err().rule(), JidRule::Empty);
    }

    #[test]
    fn borrowed_when_already_prepared() {
        let j = prep_jid("juliet@example.com/balcony").unwrap();
        assert!(matches!(j.local, Some(Cow::Borrowed(_))));
        assert!(matches!(j.domain, Cow::Borrowed(_)));
        assert!(matches!(j.resource, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn rule_names_round_trip() {
        for name in [
            "empty",
            "too-long",
            "prohibited",
            "nodeprep-prohibited",
            "unassigned",
            "bidi",
            "bad-domain",
        ] {
            assert_eq!(JidRule::from_name(name).map(JidRule::as_str), Some(name));
        }
        assert_eq!(JidRule::from_name("nope"), None);
    }
}
