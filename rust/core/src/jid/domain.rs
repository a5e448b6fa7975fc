//! The domainpart (RFC 6122 §2.2): IDNA2003 labels with `UseSTD3ASCIIRules`, ToUnicode
//! of ACE labels, IPv4 and bracketed IPv6 literals.  The rules and their order are
//! specified in the Python reference's docstring (`_stringprep.py`).

use std::borrow::Cow;

use super::punycode;
use super::stringprep::{prepare, Profile};
use super::{JidError, JidRule, MAX_PART_BYTES};

/// RFC 3490 §5 (ToASCII step 8): an ACE label is 1..63 octets.
pub const MAX_LABEL_OCTETS: usize = 63;
const ACE_PREFIX: &str = "xn--";

fn bad(text: &str) -> JidError {
    JidError::new(JidRule::BadDomain, format!("domainpart: {text}"))
}

fn is_separator(c: char) -> bool {
    matches!(c, '.' | '\u{3002}' | '\u{ff0e}' | '\u{ff61}')
}

fn is_ldh(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// RFC 3490 §4.1 ToASCII step 3 (UseSTD3ASCIIRules) on a Nameprep'd label.
fn check_std3(label: &str) -> Result<(), JidError> {
    if let Some(c) = label.chars().find(|&c| c.is_ascii() && !is_ldh(c as u8)) {
        return Err(bad(&format!(
            "U+{:04X} is not a letter, digit or hyphen",
            c as u32
        )));
    }
    check_hyphens(label)
}

fn check_hyphens(label: &str) -> Result<(), JidError> {
    if label.starts_with('-') || label.ends_with('-') {
        return Err(bad("label starts or ends with a hyphen"));
    }
    Ok(())
}

fn too_long_label() -> JidError {
    bad("label is longer than 63 octets in ASCII form")
}

/// Whether the ACE form of a non-ASCII label fits 63 octets.  Punycode writes at least
/// one octet per code point, so more than 59 code points cannot fit; that bound also
/// keeps the quadratic encoder off long input.  Short labels fit without encoding:
/// the encoded form is at most `basic + 1 + 9 * others` octets (see
/// [`punycode::MAX_DIGITS_PER_CODE_POINT`]).
fn ace_length_ok(label: &str) -> bool {
    let (mut total, mut basic) = (0usize, 0usize);
    for c in label.chars() {
        total += 1;
        basic += usize::from(c.is_ascii());
    }
    if total > MAX_LABEL_OCTETS - ACE_PREFIX.len() {
        return false;
    }
    let most = ACE_PREFIX.len() + basic + 1 + punycode::MAX_DIGITS_PER_CODE_POINT * (total - basic);
    if most <= MAX_LABEL_OCTETS {
        return true;
    }
    punycode::encode(label).is_some_and(|e| ACE_PREFIX.len() + e.len() <= MAX_LABEL_OCTETS)
}

/// IDNA2003 ToUnicode (RFC 3490 §4.2) of a lowercase LDH label starting with `xn--`.
fn from_ace(label: &str) -> Result<String, JidError> {
    if label.len() > MAX_LABEL_OCTETS {
        return Err(too_long_label());
    }
    let invalid = || bad("invalid ACE label");
    let decoded = label
        .get(ACE_PREFIX.len()..)
        .and_then(punycode::decode)
        .ok_or_else(invalid)?;
    if decoded.is_ascii() {
        return Err(invalid());
    }
    let prepared = prepare(&decoded, Profile::Nameprep)
        .map_err(|_| invalid())?
        .into_owned();
    let round_trips = !prepared.is_empty()
        && !prepared.is_ascii()
        && check_std3(&prepared).is_ok()
        && !prepared.starts_with(ACE_PREFIX)
        && punycode::encode(&prepared)
            .is_some_and(|e| label.get(ACE_PREFIX.len()..) == Some(e.as_str()));
    if !round_trips {
        return Err(invalid());
    }
    Ok(prepared)
}

/// One label: Nameprep, then the ToASCII checks.
fn prep_label(raw: &str) -> Result<Cow<'_, str>, JidError> {
    if raw.is_empty() {
        return Err(bad("empty label"));
    }
    let label = prepare(raw, Profile::Nameprep)?;
    if label.is_empty() {
        return Err(bad("empty label"));
    }
    if label.is_ascii() {
        if label.bytes().all(is_ldh) {
            check_hyphens(&label)?;
        } else {
            check_std3(&label)?;
        }
        if label.starts_with(ACE_PREFIX) {
            return from_ace(&label).map(Cow::Owned);
        }
        if label.len() > MAX_LABEL_OCTETS {
            return Err(too_long_label());
        }
        return Ok(label);
    }
    check_std3(&label)?;
    if label.starts_with(ACE_PREFIX) {
        return Err(bad("label starts with the ACE prefix"));
    }
    if !ace_length_ok(&label) {
        return Err(too_long_label());
    }
    Ok(label)
}

/// RFC 3986 `dec-octet`: 0-255 without leading zeros.
fn dec_octet(s: &str) -> Option<u8> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b.first() == Some(&b'0') {
        return None;
    }
    s.parse::<u8>().ok()
}

fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for slot in &mut out {
        *slot = dec_octet(parts.next()?)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// Groups of one side of an IPv6 address; the last may be an IPv4 address if allowed.
fn ipv6_groups(text: &str, allow_v4: bool) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(8);
    if text.is_empty() {
        return Some(out);
    }
    let items: Vec<&str> = text.split(':').collect();
    if items.len() > 8 {
        return None;
    }
    let last = items.len() - 1;
    for (i, item) in items.iter().enumerate() {
        if allow_v4 && i == last && item.contains('.') {
            let [a, b, c, d] = parse_ipv4(item)?;
            out.push(u16::from_be_bytes([a, b]));
            out.push(u16::from_be_bytes([c, d]));
        } else if (1..=4).contains(&item.len()) && item.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push(u16::from_str_radix(item, 16).ok()?);
        } else {
            return None;
        }
    }
    Some(out)
}

/// RFC 3986 `IPv6address` to eight groups.
fn parse_ipv6(s: &str) -> Option<[u16; 8]> {
    let mut g = [0u16; 8];
    if s.matches("::").count() > 1 {
        return None;
    }
    if let Some((head, tail)) = s.split_once("::") {
        let left = ipv6_groups(head, false)?;
        let right = ipv6_groups(tail, true)?;
        if left.len() + right.len() > 7 {
            return None;
        }
        g.get_mut(..left.len())?.copy_from_slice(&left);
        g.get_mut(8 - right.len()..)?.copy_from_slice(&right);
    } else {
        let all = ipv6_groups(s, true)?;
        if all.len() != 8 {
            return None;
        }
        g.copy_from_slice(&all);
    }
    Some(g)
}

/// RFC 5952 §4 text form, with §5 mixed notation for IPv4-mapped addresses.
fn format_ipv6(g: &[u16; 8]) -> String {
    if g[..6] == [0, 0, 0, 0, 0, 0xffff] {
        let [a, b] = g[6].to_be_bytes();
        let [c, d] = g[7].to_be_bytes();
        return format!("::ffff:{a}.{b}.{c}.{d}");
    }
    let (mut best_start, mut best_len) = (None, 1);
    let mut i = 0;
    while i < 8 {
        if g[i] == 0 {
            let mut j = i;
            while j < 8 && g[j] == 0 {
                j += 1;
            }
            if j - i > best_len {
                best_start = Some(i);
                best_len = j - i;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let hex = |s: &[u16]| {
        s.iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    match best_start {
        None => hex(g),
        Some(start) => format!("{}::{}", hex(&g[..start]), hex(&g[start + best_len..])),
    }
}

/// The common case without allocation: an ASCII host name whose labels are 1..63
/// letters, digits and inner hyphens, none an ACE label, the last not all digits.  For
/// such a name every label only needs lowercasing, so the result is exactly what the
/// general path gives; anything else (errors included) returns `None` and takes it.
fn plain_ascii_name(d: &str) -> Option<Cow<'_, str>> {
    let bytes = d.as_bytes();
    let mut upper = false;
    let mut start = 0;
    let mut digits_only = true;
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'.' {
            plain_label(bytes.get(start..i)?)?;
            start = i + 1;
            digits_only = true;
        } else if c.is_ascii_lowercase() || c == b'-' {
            digits_only = false;
        } else if c.is_ascii_uppercase() {
            upper = true;
            digits_only = false;
        } else if !c.is_ascii_digit() {
            return None;
        }
    }
    plain_label(bytes.get(start..)?)?;
    if digits_only {
        return None;
    }
    Some(if upper {
        Cow::Owned(d.to_ascii_lowercase())
    } else {
        Cow::Borrowed(d)
    })
}

/// A label of [`plain_ascii_name`] (its characters already checked): 1..63 octets, no
/// leading or trailing hyphen, not an ACE label.
fn plain_label(b: &[u8]) -> Option<()> {
    match (b.first(), b.last()) {
        (Some(&first), Some(&end)) if first != b'-' && end != b'-' => {}
        _ => return None,
    }
    if b.len() > MAX_LABEL_OCTETS || b.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"xn--")) {
        return None;
    }
    Some(())
}

/// Check a prepared part's length (RFC 7622 §3.1: 1..1023 bytes).
pub(crate) fn check_length<'a>(value: Cow<'a, str>, part: &str) -> Result<Cow<'a, str>, JidError> {
    if value.is_empty() {
        return Err(JidError::new(JidRule::Empty, format!("{part} is empty")));
    }
    if value.len() > MAX_PART_BYTES {
        return Err(JidError::new(
            JidRule::TooLong,
            format!(
                "{part} is {} bytes, more than {MAX_PART_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(value)
}

/// Prepare a domainpart (RFC 6122 §2.2); see the module documentation for the rules.
///
/// `prep_domain("Example.COM.")` is `"example.com"`, `prep_domain("[::FFFF:1.2.3.4]")`
/// is `"[::ffff:1.2.3.4]"`, `prep_domain("xn--bcher-kva.example")` is `"bücher.example"`.
///
/// # Errors
/// `Empty`, `TooLong`, `BadDomain`, or a Nameprep error (`Unassigned`, `Prohibited`,
/// `Bidi`) of a label.
pub fn prep_domain(d: &str) -> Result<Cow<'_, str>, JidError> {
    let empty = || JidError::new(JidRule::Empty, "domainpart is empty".to_owned());
    let d = match d.chars().next_back() {
        None => return Err(empty()),
        Some(c) if is_separator(c) => d.strip_suffix(c).unwrap_or(d),
        Some(_) => d,
    };
    if d.is_empty() {
        return Err(empty());
    }
    if d.starts_with('[') {
        let g = d
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .and_then(parse_ipv6)
            .ok_or_else(|| bad("invalid IPv6 literal"))?;
        return Ok(Cow::Owned(format!("[{}]", format_ipv6(&g))));
    }
    // Non-ASCII bytes are not letters, digits or hyphens: the fast path declines them.
    if let Some(fast) = plain_ascii_name(d) {
        return check_length(fast, "domainpart");
    }
    check_length(host_name(d)?, "domainpart")
}

/// The general path for a host name (no IP-literal brackets, trailing dot removed).
fn host_name(d: &str) -> Result<Cow<'_, str>, JidError> {
    let ascii = d.is_ascii();
    let mut joined = String::with_capacity(d.len());
    let mut all_borrowed = true;
    let mut count = 0usize;
    let mut all_dec_octets = true;
    let mut last_numeric = false;
    let mut add = |raw: &str| -> Result<(), JidError> {
        let label = prep_label(raw)?;
        all_borrowed &= matches!(label, Cow::Borrowed(_));
        all_dec_octets &= dec_octet(&label).is_some();
        last_numeric = label.bytes().all(|b| b.is_ascii_digit());
        if count > 0 {
            joined.push('.');
        }
        joined.push_str(&label);
        count += 1;
        Ok(())
    };
    if ascii {
        d.split('.').try_for_each(&mut add)?;
    } else {
        d.split(is_separator).try_for_each(&mut add)?;
    }
    if last_numeric && (count != 4 || !all_dec_octets) {
        return Err(bad(
            "numeric top-level label in a name that is not an IPv4 address",
        ));
    }
    Ok(if ascii && all_borrowed {
        Cow::Borrowed(d)
    } else {
        Cow::Owned(joined)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_forms() {
        let p = |s: &str| parse_ipv6(s).map(|g| format_ipv6(&g));
        assert_eq!(p("2001:DB8:0:0:0:0:2:1").as_deref(), Some("2001:db8::2:1"));
        assert_eq!(
            p("2001:db8:0:1:1:1:1:1").as_deref(),
            Some("2001:db8:0:1:1:1:1:1")
        );
        assert_eq!(p("2001:0:0:1:0:0:0:1").as_deref(), Some("2001:0:0:1::1"));
        assert_eq!(p("1:0:0:2:0:0:3:4").as_deref(), Some("1::2:0:0:3:4"));
        assert_eq!(p("::").as_deref(), Some("::"));
        assert_eq!(p("::ffff:1.2.3.4").as_deref(), Some("::ffff:1.2.3.4"));
        assert_eq!(p("::1.2.3.4").as_deref(), Some("::102:304"));
        for bad in [
            ":::",
            "1::2::3",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "::1.2.3",
            "::01.2.3.4",
            "",
            ":1::",
            "12345::",
            "1.2.3.4::",
            "1:2:3:4:5:6:7:8::",
        ] {
            assert_eq!(parse_ipv6(bad), None, "{bad}");
        }
    }

    #[test]
    fn plain_ascii_fast_path_equals_general_path() {
        // Every string of up to 4 characters over an alphabet covering each branch, and
        // some longer ones around the 63-octet label limit.
        let alphabet = ['a', 'Z', '0', '9', '-', '.', 'x', 'n', '_'];
        let mut inputs: Vec<String> = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &inputs {
                for c in alphabet {
                    next.push(format!("{s}{c}"));
                }
            }
            inputs.extend(next);
        }
        for n in [62, 63, 64] {
            inputs.push("a".repeat(n));
            inputs.push(format!("b.{}", "a".repeat(n)));
            inputs.push(format!("xn--{}", "a".repeat(n)));
        }
        inputs
            .extend(["1.2.3.4", "1.2.3.256", "a.1", "a.1b", "XN--bcher-kva.de"].map(String::from));
        for s in inputs.iter().filter(|s| !s.is_empty()) {
            if let Some(fast) = plain_ascii_name(s) {
                assert_eq!(
                    host_name(s).as_ref().map(|c| c.as_ref()),
                    Ok(fast.as_ref()),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn domains() {
        assert_eq!(prep_domain("Example.COM.").unwrap(), "example.com");
        assert!(matches!(
            prep_domain("example.com").unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            prep_domain("xn--bcher-kva.example").unwrap(),
            "bücher.example"
        );
        assert_eq!(prep_domain("1.2.3.4").unwrap(), "1.2.3.4");
        assert_eq!(
            prep_domain("1.2.3.256").unwrap_err().rule(),
            JidRule::BadDomain
        );
        assert_eq!(prep_domain("a_b.c").unwrap_err().rule(), JidRule::BadDomain);
        assert_eq!(prep_domain(".").unwrap_err().rule(), JidRule::Empty);
    }
}
