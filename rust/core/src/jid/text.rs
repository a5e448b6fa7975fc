//! A prepared JID as one string, `localpart@domainpart/resourcepart`, with the byte
//! ranges of its parts: what a JID value holds (the PyO3 `BareJID`/`FullJID` keep the
//! string and make the part strings only when asked).
//!
//! [`prep_jid_text`] gives exactly what [`super::prep_jid`] gives, joined; the string is
//! borrowed from the input when preparation changed nothing.  Its fast path handles,
//! reading each byte once and allocating once at most, the common JID: all ASCII, a
//! localpart of Nodeprep-safe characters, a plain host name (labels of letters, digits
//! and inner hyphens, 1..63 octets, none with hyphens as its third and fourth octet,
//! which excludes ACE labels, the last not all digits, one trailing dot allowed), a
//! resourcepart of printable characters, each part 1..1023 bytes.  For these the
//! profiles only lowercase the localpart and domainpart (the same rules as the ASCII
//! fast paths of `stringprep.rs` and `domain.rs`); anything else, errors included,
//! takes the general path.  The tests compare both paths exhaustively on short strings
//! and on random JID-shaped ones.

use std::borrow::Cow;

use super::{prep_jid, JidError, PreparedJid, MAX_LABEL_OCTETS, MAX_PART_BYTES};

/// A prepared JID in string form; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedText<'a> {
    /// `localpart@domainpart/resourcepart`, absent parts (and their separators) left out.
    pub text: Cow<'a, str>,
    /// Bytes of the localpart, 0 when absent (a present one is never empty).
    pub local_len: usize,
    /// Byte offset where the domainpart ends: the `/` before the resourcepart, or the
    /// end of `text` when there is none.
    pub domain_end: usize,
}

impl PreparedText<'_> {
    /// The localpart, `None` when absent.
    pub fn local(&self) -> Option<&str> {
        match self.local_len {
            0 => None,
            n => self.text.get(..n),
        }
    }

    /// Byte offset where the domainpart starts.
    pub fn domain_start(&self) -> usize {
        match self.local_len {
            0 => 0,
            n => n + 1,
        }
    }

    /// The domainpart.
    pub fn domain(&self) -> &str {
        self.text
            .get(self.domain_start()..self.domain_end)
            .unwrap_or("")
    }

    /// The resourcepart, `None` when absent.
    pub fn resource(&self) -> Option<&str> {
        if self.domain_end == self.text.len() {
            return None;
        }
        self.text.get(self.domain_end + 1..)
    }

    /// The bare JID's string form, `localpart@domainpart` or `domainpart`.
    pub fn bare(&self) -> &str {
        self.text.get(..self.domain_end).unwrap_or("")
    }
}

/// Bits of [`CLASS`].
const NODE: u8 = 1; // passes Nodeprep unchanged up to lowercasing
const RESOURCE: u8 = 2; // passes Resourceprep unchanged
const HOST: u8 = 4; // a letter, digit, hyphen or dot
const UPPER: u8 = 8; // an uppercase letter
const DIGIT: u8 = 16; // 0-9
const AT_OR_SLASH: u8 = 32; // '@' or '/', the separators before the domainpart ends
const DOT_OR_SLASH: u8 = 64; // '.' or '/', the separators inside or after the domainpart

/// The class bits of each byte (0 for the bytes of non-ASCII characters).
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0u8;
    while b < 0x80 {
        let mut class = 0;
        if b >= 0x21
            && b < 0x7f
            && !matches!(b, b'"' | b'&' | b'\'' | b'/' | b':' | b'<' | b'>' | b'@')
        {
            class |= NODE;
        }
        if b >= 0x20 && b < 0x7f {
            class |= RESOURCE;
        }
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            class |= HOST;
        }
        if b.is_ascii_uppercase() {
            class |= UPPER;
        }
        if b.is_ascii_digit() {
            class |= DIGIT;
        }
        if b == b'@' || b == b'/' {
            class |= AT_OR_SLASH;
        }
        if b == b'.' || b == b'/' {
            class |= DOT_OR_SLASH;
        }
        table[b as usize] = class;
        b += 1;
    }
    table
};

#[inline]
fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

/// Whether `label` (its bytes all [`HOST`] but `.`) is a plain host name label: 1..63
/// octets, no leading or trailing hyphen, and no hyphens at its third and fourth
/// position (which excludes ACE labels, `xn--`, and declines the rare other such
/// labels to the general path).
#[inline]
fn plain_label(label: &[u8]) -> bool {
    match (label.first(), label.last()) {
        (Some(&first), Some(&end)) if first != b'-' && end != b'-' => {}
        _ => return false,
    }
    label.len() <= MAX_LABEL_OCTETS && label.get(2..4) != Some(b"--")
}

/// The domainpart from `start` up to the first `/` (or the end), if it is a plain host
/// name with at most one trailing dot: `(end of the name without the dot, the end,
/// the OR of its class bits)`.  Plain: labels as [`plain_label`] says, the last not
/// all digits.  One pass.
#[inline]
fn plain_domain(bytes: &[u8], start: usize) -> Option<(usize, usize, u8)> {
    let (mut all, mut any) = (HOST, 0);
    let mut label_start = start;
    let mut digits_only = true; // the current label so far
    let mut before_dot_digits_only = true; // the label before the last dot
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        let c = class(b);
        if c & DOT_OR_SLASH != 0 {
            if b == b'/' {
                break;
            }
            if !plain_label(bytes.get(label_start..i)?) {
                return None;
            }
            before_dot_digits_only = digits_only;
            digits_only = true;
            label_start = i + 1;
        } else {
            all &= c;
            any |= c;
            digits_only &= c & DIGIT != 0;
        }
        i += 1;
    }
    if all == 0 {
        return None;
    }
    // One trailing dot is removed: the name then ends before it, and its top-level
    // label is the one before it (checked when the dot was read).
    let (name_end, tld_digits_only) = if label_start == i && i > start {
        (i - 1, before_dot_digits_only)
    } else {
        if !plain_label(bytes.get(label_start..i)?) {
            return None;
        }
        (i, digits_only)
    };
    if tld_digits_only || name_end - start > MAX_PART_BYTES {
        return None;
    }
    Some((name_end, i, any))
}

/// The fast path (module documentation); `None` sends `s` to the general path.
fn fast(s: &str) -> Option<PreparedText<'_>> {
    let bytes = s.as_bytes();
    // The localpart, if any: the bytes before the first '@' that comes before any '/'.
    let (mut local_all, mut local_any) = (NODE, 0);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let c = class(b);
        if c & AT_OR_SLASH != 0 {
            break;
        }
        local_all &= c;
        local_any |= c;
        i += 1;
    }
    let (local_len, domain_start) = if bytes.get(i) == Some(&b'@') {
        if i == 0 || i > MAX_PART_BYTES || local_all == 0 {
            return None;
        }
        (i, i + 1)
    } else {
        local_any = 0;
        (0, 0)
    };
    let (domain_end, bare_end, domain_any) = plain_domain(bytes, domain_start)?;
    let has_resource = bare_end < bytes.len();
    if has_resource {
        let resource = bytes.get(bare_end + 1..)?;
        if resource.is_empty() || resource.len() > MAX_PART_BYTES {
            return None;
        }
        if resource.iter().fold(RESOURCE, |all, &b| all & class(b)) == 0 {
            return None;
        }
    }
    if (local_any | domain_any) & UPPER == 0 && domain_end == bare_end {
        return Some(PreparedText {
            text: Cow::Borrowed(s),
            local_len,
            domain_end,
        });
    }
    let mut text = String::with_capacity(s.len());
    text.push_str(s.get(..domain_end)?);
    text.make_ascii_lowercase();
    if has_resource {
        text.push_str(s.get(bare_end..)?);
    }
    Some(PreparedText {
        text: Cow::Owned(text),
        local_len,
        domain_end,
    })
}

/// Whether `input` is `j` joined (`local@domain/resource`): the prepared form is then
/// the input itself.
fn is_unchanged(input: &str, j: &PreparedJid<'_>) -> bool {
    let mut rest = input;
    if let Some(local) = &j.local {
        match rest
            .strip_prefix(local.as_ref())
            .and_then(|r| r.strip_prefix('@'))
        {
            Some(r) => rest = r,
            None => return false,
        }
    }
    match rest.strip_prefix(j.domain.as_ref()) {
        Some(r) => rest = r,
        None => return false,
    }
    match &j.resource {
        Some(resource) => rest.strip_prefix('/') == Some(resource.as_ref()),
        None => rest.is_empty(),
    }
}

/// Join prepared parts into their string form.
fn join<'a>(input: &'a str, j: &PreparedJid<'_>) -> PreparedText<'a> {
    let local_len = j.local.as_ref().map_or(0, |l| l.len());
    let domain_start = if local_len == 0 { 0 } else { local_len + 1 };
    let domain_end = domain_start + j.domain.len();
    if is_unchanged(input, j) {
        return PreparedText {
            text: Cow::Borrowed(input),
            local_len,
            domain_end,
        };
    }
    let resource = j.resource.as_deref();
    let mut text = String::with_capacity(domain_end + resource.map_or(0, |r| r.len() + 1));
    if let Some(local) = &j.local {
        text.push_str(local);
        text.push('@');
    }
    text.push_str(&j.domain);
    if let Some(r) = resource {
        text.push('/');
        text.push_str(r);
    }
    PreparedText {
        text: Cow::Owned(text),
        local_len,
        domain_end,
    }
}

/// Split and prepare a JID (as [`prep_jid`]) into its string form: the same result and
/// the same errors, joined; borrowed from `s` when preparation changed nothing.
///
/// ```
/// use xmppx_core::jid::prep_jid_text;
/// let j = prep_jid_text("Juliet@Example.COM/Balcony").unwrap();
/// assert_eq!(j.text, "juliet@example.com/Balcony");
/// assert_eq!(j.local(), Some("juliet"));
/// assert_eq!(j.domain(), "example.com");
/// assert_eq!(j.resource(), Some("Balcony"));
/// assert_eq!(j.bare(), "juliet@example.com");
/// ```
///
/// # Errors
/// The first [`JidError`] found, parts checked left to right.
pub fn prep_jid_text(s: &str) -> Result<PreparedText<'_>, JidError> {
    if let Some(t) = fast(s) {
        return Ok(t);
    }
    let j = prep_jid(s)?;
    Ok(join(s, &j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(s: &str) -> Result<PreparedText<'_>, JidError> {
        prep_jid(s).map(|j| join(s, &j))
    }

    fn check(s: &str) {
        let got = prep_jid_text(s);
        let want = general(s);
        assert_eq!(got, want, "{s:?}");
        if let Ok(t) = &got {
            let j = prep_jid(s).unwrap();
            assert_eq!(t.local(), j.local.as_deref(), "{s:?}");
            assert_eq!(t.domain(), j.domain, "{s:?}");
            assert_eq!(t.resource(), j.resource.as_deref(), "{s:?}");
            assert_eq!(
                matches!(t.text, Cow::Borrowed(_)),
                t.text == s,
                "{s:?} borrowed exactly when unchanged"
            );
        }
    }

    #[test]
    fn fast_path_equals_general_path_exhaustively() {
        // Every string of up to 5 characters over an alphabet covering each branch.
        let alphabet = [
            'a', 'Z', '0', '-', '.', '@', '/', ' ', ':', '_', 'x', '\u{e9}',
        ];
        let mut layer: Vec<String> = vec![String::new()];
        let mut n = 0;
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &layer {
                for c in alphabet {
                    let t = format!("{s}{c}");
                    check(&t);
                    n += 1;
                    next.push(t);
                }
            }
            layer = next;
        }
        assert!(n > 200_000);
        check("");
    }

    #[test]
    fn fast_path_equals_general_path_on_random_jids() {
        // JID-shaped strings of up to some 100 bytes, from a fixed-seed LCG.
        let pieces = [
            "a", "b", "Z", "x", "n", "0", "9", "-", "--", ".", "..", "@", "/", " ", "_", "xn--",
            "XN--", "juliet", "Example", "com", "1", "\u{e9}", "\t", ":",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % bound
        };
        for _ in 0..200_000 {
            let mut s = String::new();
            for _ in 0..next(24) {
                s.push_str(pieces[next(pieces.len())]);
            }
            check(&s);
        }
    }

    #[test]
    fn fast_path_equals_general_path_on_examples() {
        let long = |n: usize| "a".repeat(n);
        let mut cases: Vec<String> = [
            "juliet@example.com/balcony",
            "Juliet@Example.COM/Balcony",
            "example.com",
            "example.com.",
            "example.com./r",
            "a@b.",
            "a@.",
            "a@b..",
            "a@1.2.3.4",
            "a@1.2.3.4.",
            "a@a.1",
            "a@a.1.",
            "a@1a.b1",
            "a@xn--bcher-kva.example",
            "a@XN--bcher-kva.example",
            "a@b.xn--zz",
            "a@-a.b",
            "a@a-.b",
            "a@a-b.c",
            "a@[::1]",
            "a@b/c/d@e",
            "a@b@c",
            "@b",
            "a@",
            "a@b/",
            "/r",
            "a@b/ r ",
            "a@b/\t",
            "a@b/\u{e9}",
            "\u{e9}@b",
            "a@b\u{3002}c",
        ]
        .map(String::from)
        .to_vec();
        for n in [62, 63, 64] {
            cases.push(format!("u@{}.com", long(n)));
            cases.push(format!("u@b.{}", long(n)));
        }
        for n in [1022, 1023, 1024] {
            cases.push(format!("{}@b", long(n)));
            cases.push(format!("a@b/{}", long(n)));
            let labels = vec!["a".repeat(60); n / 61 + 1].join(".");
            cases.push(format!("u@{}", labels.get(..n).unwrap_or(&labels)));
        }
        for s in &cases {
            check(s);
        }
    }

    #[test]
    fn borrowed_when_already_prepared() {
        let t = prep_jid_text("juliet@example.com/balcony").unwrap();
        assert!(matches!(t.text, Cow::Borrowed(_)));
        let t = prep_jid_text("juliet@example.com./balcony").unwrap();
        assert_eq!(t.text, "juliet@example.com/balcony");
        assert_eq!(t.bare(), "juliet@example.com");
        let t = prep_jid_text("Jos\u{e9}@example.com").unwrap();
        assert_eq!(t.text, "jos\u{e9}@example.com");
        assert!(matches!(
            prep_jid_text("jos\u{e9}@example.com").unwrap().text,
            Cow::Borrowed(_)
        ));
    }
}
