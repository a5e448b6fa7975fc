//! The three stringprep profiles of RFC 6122 (Appendix A Nodeprep, Appendix B
//! Resourceprep) and RFC 3491 (Nameprep) on the Unicode 3.2 tables of RFC 3454.
//!
//! The steps, their order and the error texts are those of the Python reference
//! (`python/xmppx/core/_py/_stringprep.py`, whose docstring is the specification):
//! unassigned code points (A.1) are checked on the input, then B.1/B.2 mapping, NFKC
//! with Unicode 3.2 data, the prohibition scan and the RFC 3454 §6 bidi rule.

use std::borrow::Cow;

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use super::tables::{A1, B1, B2, B2_MAP, FIXUP, L_CAT, NFKC_FIXUPS, PROHIBITED, RAND_AL, RUNS};
use super::{JidError, JidRule};

/// Which profile, and so which part of a JID the error texts name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// RFC 6122 Appendix A, for the localpart.
    Nodeprep,
    /// RFC 3491, for each label of the domainpart.
    Nameprep,
    /// RFC 6122 Appendix B, for the resourcepart.
    Resourceprep,
}

impl Profile {
    pub(crate) const fn part(self) -> &'static str {
        match self {
            Profile::Nodeprep => "localpart",
            Profile::Nameprep => "domainpart",
            Profile::Resourceprep => "resourcepart",
        }
    }
}

/// The flags of `cp` in the generated run table (see `tables.rs`).
#[inline]
pub(crate) fn flags(cp: u32) -> u8 {
    let i = RUNS.partition_point(|&(start, _)| start <= cp);
    // RUNS starts at 0, so i >= 1 for every cp; `checked_sub` keeps this panic-free.
    match i.checked_sub(1).and_then(|j| RUNS.get(j)) {
        Some(&(_, f)) => f,
        None => 0,
    }
}

/// Whether `cp` is assigned in Unicode 3.2 (not in table A.1; surrogates are not chars).
pub fn is_assigned_3_2(c: char) -> bool {
    flags(c as u32) & A1 == 0
}

fn b2_mapping(cp: u32) -> Option<&'static str> {
    B2_MAP
        .binary_search_by_key(&cp, |&(k, _)| k)
        .ok()
        .and_then(|i| B2_MAP.get(i))
        .map(|&(_, m)| m)
}

#[inline]
fn fixup(c: char) -> char {
    if flags(c as u32) & FIXUP == 0 {
        return c;
    }
    match NFKC_FIXUPS.binary_search_by_key(&(c as u32), |&(k, _)| k) {
        Ok(i) => NFKC_FIXUPS.get(i).map_or(c, |&(_, t)| t),
        Err(_) => c,
    }
}

/// NFKC as Unicode 3.2 defines it, for a string of code points assigned in 3.2.
///
/// `unicode-normalization` implements a newer Unicode; for code points assigned in 3.2
/// the only difference is the decomposition of five CJK compatibility ideographs that
/// Unicode 4.0 Corrigendum #4 changed, which are mapped to their 3.2 result first.
/// `rust/core/tests/jid_vectors.rs` proves the equality exhaustively against
/// `tests/vectors/jid/nfkc32.txt` (generated from Python's `unicodedata.ucd_3_2_0`).
/// For code points unassigned in 3.2 the result is unspecified (the profiles reject
/// them before normalising).
pub fn nfkc_3_2(s: &str) -> String {
    s.chars().map(fixup).nfkc().collect()
}

fn err(rule: JidRule, part: &str, what: &str) -> JidError {
    JidError::new(rule, format!("{part}: {what}"))
}

fn cp_text(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// ASCII characters that the profile passes through, up to lowercasing: for these the
/// whole profile is the identity or `to_ascii_lowercase` (checked for every ASCII
/// character against the general path by the tests).
#[inline]
fn ascii_safe(b: u8, profile: Profile) -> bool {
    match profile {
        Profile::Nodeprep => {
            (0x21..0x7f).contains(&b)
                && !matches!(b, b'"' | b'&' | b'\'' | b'/' | b':' | b'<' | b'>' | b'@')
        }
        Profile::Nameprep => b < 0x80,
        Profile::Resourceprep => (0x20..0x7f).contains(&b),
    }
}

/// Apply `profile` to `s`: the fast ASCII path when it applies, else the general one.
pub(crate) fn prepare(s: &str, profile: Profile) -> Result<Cow<'_, str>, JidError> {
    let bytes = s.as_bytes();
    if bytes.iter().all(|&b| ascii_safe(b, profile)) {
        if profile == Profile::Resourceprep || !bytes.iter().any(u8::is_ascii_uppercase) {
            return Ok(Cow::Borrowed(s));
        }
        return Ok(Cow::Owned(s.to_ascii_lowercase()));
    }
    general(s, profile).map(Cow::Owned)
}

/// The full profile, for any input (RFC 3454 §3-§7 in the order of the reference).
fn general(s: &str, profile: Profile) -> Result<String, JidError> {
    let part = profile.part();
    for c in s.chars() {
        if flags(c as u32) & A1 != 0 {
            return Err(err(
                JidRule::Unassigned,
                part,
                &format!("{} is unassigned in Unicode 3.2", cp_text(c)),
            ));
        }
    }
    let fold = profile != Profile::Resourceprep;
    let mut mapped = String::with_capacity(s.len());
    for c in s.chars() {
        let f = flags(c as u32);
        if f & B1 != 0 {
            continue;
        }
        if fold && f & B2 != 0 {
            if let Some(m) = b2_mapping(c as u32) {
                mapped.push_str(m);
                continue;
            }
        }
        mapped.push(c);
    }
    // The fix-up code points are singletons, never NFKC_QC=Yes, so the quick check
    // sends them to `nfkc_3_2`.
    let out = if is_nfkc_quick(mapped.chars()) == IsNormalized::Yes {
        mapped
    } else {
        nfkc_3_2(&mapped)
    };
    let mut has_rand_al = false;
    let mut has_l = false;
    for c in out.chars() {
        let cp = c as u32;
        if cp < 0x80 {
            let ctl = cp < 0x20 || cp == 0x7f;
            let banned = match profile {
                Profile::Nameprep => None,
                Profile::Resourceprep => ctl.then_some(JidRule::Prohibited),
                Profile::Nodeprep => {
                    if ctl || cp == 0x20 {
                        Some(JidRule::Prohibited)
                    } else if matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@') {
                        Some(JidRule::NodeprepProhibited)
                    } else {
                        None
                    }
                }
            };
            match banned {
                Some(JidRule::NodeprepProhibited) => {
                    return Err(err(
                        JidRule::NodeprepProhibited,
                        part,
                        &format!("{} is not allowed in a localpart", cp_text(c)),
                    ))
                }
                Some(rule) => {
                    return Err(err(rule, part, &format!("{} is prohibited", cp_text(c))))
                }
                None => {}
            }
        }
        let f = flags(cp);
        if f & PROHIBITED != 0 {
            return Err(err(
                JidRule::Prohibited,
                part,
                &format!("{} is prohibited", cp_text(c)),
            ));
        }
        has_rand_al |= f & RAND_AL != 0;
        has_l |= f & L_CAT != 0;
    }
    if has_rand_al {
        if has_l {
            return Err(err(
                JidRule::Bidi,
                part,
                "right-to-left text mixed with left-to-right characters",
            ));
        }
        let is_ral = |c: Option<char>| c.is_some_and(|c| flags(c as u32) & RAND_AL != 0);
        if !is_ral(out.chars().next()) || !is_ral(out.chars().next_back()) {
            return Err(err(
                JidRule::Bidi,
                part,
                "right-to-left text must start and end with a right-to-left character",
            ));
        }
    }
    Ok(out)
}

/// The Nodeprep profile (RFC 6122 Appendix A); no length or emptiness check.
///
/// `nodeprep("Foo")` is `"foo"`, `nodeprep("ß")` is `"ss"`.
///
/// # Errors
/// `Unassigned`, `Prohibited`, `NodeprepProhibited` or `Bidi`, as the reference says.
pub fn nodeprep(s: &str) -> Result<Cow<'_, str>, JidError> {
    prepare(s, Profile::Nodeprep)
}

/// The Nameprep profile (RFC 3491) of the whole string; label splitting, STD3 rules,
/// ACE and IP literals are the domainpart's business ([`super::prep_domain`]).
///
/// # Errors
/// `Unassigned`, `Prohibited` or `Bidi`.
pub fn nameprep(s: &str) -> Result<Cow<'_, str>, JidError> {
    prepare(s, Profile::Nameprep)
}

/// The Resourceprep profile (RFC 6122 Appendix B): no case folding, spaces allowed.
///
/// # Errors
/// `Unassigned`, `Prohibited` or `Bidi`.
pub fn resourceprep(s: &str) -> Result<Cow<'_, str>, JidError> {
    prepare(s, Profile::Resourceprep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_everything_sorted() {
        assert_eq!(RUNS.first().map(|r| r.0), Some(0));
        assert!(RUNS.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1));
        assert!(B2_MAP.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(NFKC_FIXUPS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn ascii_fast_path_equals_general_path() {
        for profile in [Profile::Nodeprep, Profile::Nameprep, Profile::Resourceprep] {
            for b in 0u8..0x80 {
                let s = char::from(b).to_string();
                let general = general(&s, profile);
                if ascii_safe(b, profile) {
                    let fast = prepare(&s, profile).map(Cow::into_owned);
                    assert_eq!(fast, general, "{profile:?} {b:#x}");
                } else {
                    assert!(general.is_err(), "{profile:?} {b:#x} must be rejected");
                }
            }
        }
    }

    #[test]
    fn examples() {
        assert_eq!(nodeprep("ÄßΣ").unwrap(), "äss\u{3c3}");
        assert_eq!(resourceprep("Home\u{a0}Office").unwrap(), "Home Office");
        assert_eq!(nameprep("\u{fb00}.COM").unwrap(), "ff.com");
        assert_eq!(nodeprep("a\u{200b}b").unwrap(), "ab");
        assert_eq!(nodeprep("\u{221}").unwrap_err().rule(), JidRule::Unassigned);
        assert_eq!(
            nodeprep("a:b").unwrap_err().rule(),
            JidRule::NodeprepProhibited
        );
        assert_eq!(nodeprep("a b").unwrap_err().rule(), JidRule::Prohibited);
        assert_eq!(
            resourceprep("\u{5d0}a\u{5d0}").unwrap_err().rule(),
            JidRule::Bidi
        );
        assert_eq!(resourceprep("\u{5d0}1").unwrap_err().rule(), JidRule::Bidi);
        assert_eq!(resourceprep("\u{5d0}1\u{5d1}").unwrap(), "\u{5d0}1\u{5d1}");
        assert_eq!(nfkc_3_2("\u{2f868}"), "\u{2136a}");
    }
}
