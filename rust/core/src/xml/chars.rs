//! Character classes of XML 1.0 §2.2 (`Char`) and of names (expat's, see
//! [`is_name_start`]), and a UTF-8 decoder that can tell "invalid" from "incomplete"
//! (bytes split across `feed()` calls).

use super::names::{NAME_CHAR_NON_ASCII, NAME_START_NON_ASCII};

/// XML 1.0 §2.2 `Char`: `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
/// [#x10000-#x10FFFF]`.
#[inline]
pub fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Whether `c` lies in one of `table`'s sorted, inclusive, disjoint ranges.
fn in_ranges(table: &[(u32, u32)], c: u32) -> bool {
    table
        .binary_search_by(|&(first, last)| {
            if last < c {
                std::cmp::Ordering::Less
            } else if first > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// A character that may start an `NCName`, by the name classes of expat (XML 1.0 Fourth
/// Edition, Appendix B): `A-Z a-z _` and the letters and ideographs of
/// [`NAME_START_NON_ASCII`].  The Fifth Edition's wider `NameStartChar` is not taken:
/// the pure-Python backend, and every XMPP peer on expat, reads such names as
/// `not-well-formed` (`scripts/gen_xml_name_tables.py`).
#[inline]
pub fn is_name_start(c: u32) -> bool {
    match c {
        0x41..=0x5A | 0x5F | 0x61..=0x7A => true,
        0..=0x7F => false,
        _ => in_ranges(&NAME_START_NON_ASCII, c),
    }
}

/// A character that may follow the first in an `NCName`, by expat's name classes (see
/// [`is_name_start`]): also `0-9 - .` and the combining characters, digits and
/// extenders of [`NAME_CHAR_NON_ASCII`].
#[inline]
pub fn is_name_char(c: u32) -> bool {
    match c {
        0x2D | 0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5F | 0x61..=0x7A => true,
        0..=0x7F => false,
        _ => in_ranges(&NAME_CHAR_NON_ASCII, c),
    }
}

/// XML whitespace (`S`, §2.3): space, TAB, LF, CR.
#[inline]
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Result of decoding one UTF-8 sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8 {
    /// A scalar value and its encoded length.
    Char(u32, usize),
    /// The bytes so far are a valid prefix; more are needed.
    Incomplete,
    /// Not UTF-8 (RFC 3629 §4: overlongs, surrogates and values above U+10FFFF included).
    Invalid,
}

/// Decode the UTF-8 sequence at the start of `b` (which must not be empty).
#[inline]
pub fn decode_utf8(b: &[u8]) -> Utf8 {
    let Some(&b0) = b.first() else {
        return Utf8::Incomplete;
    };
    if b0 < 0x80 {
        return Utf8::Char(u32::from(b0), 1);
    }
    // (length, valid range of the second byte)
    let (len, lo, hi) = match b0 {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return Utf8::Invalid,
    };
    let mut cp = u32::from(b0) & (0x7F >> len);
    for i in 1..len {
        let Some(&bi) = b.get(i) else {
            return Utf8::Incomplete;
        };
        let (l, h) = if i == 1 { (lo, hi) } else { (0x80, 0xBF) };
        if bi < l || bi > h {
            return Utf8::Invalid;
        }
        cp = (cp << 6) | (u32::from(bi) & 0x3F);
    }
    Utf8::Char(cp, len)
}

const fn make_table(kind: u8) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        let name_start = b.is_ascii_alphabetic() || b == b'_';
        let name = name_start || b.is_ascii_digit() || b == b'-' || b == b'.';
        t[i] = match kind {
            0 => name_start,
            1 => name,
            // text run: printable ASCII and TAB/LF/CR, except < & ] >
            2 => {
                (b >= 0x20 && b <= 0x7F && b != b'<' && b != b'&' && b != b']' && b != b'>')
                    || b == b'\t'
                    || b == b'\n'
                    || b == b'\r'
            }
            // attribute value run (quote checked separately): printable ASCII, TAB/LF/CR,
            // except < & ' "
            3 => {
                (b >= 0x20 && b <= 0x7F && b != b'<' && b != b'&' && b != b'\'' && b != b'"')
                    || b == b'\t'
                    || b == b'\n'
                    || b == b'\r'
            }
            _ => false,
        };
        i += 1;
    }
    t
}

/// ASCII bytes that may start an NCName.
pub static NAME_START: [bool; 256] = make_table(0);
/// ASCII bytes that may continue an NCName.
pub static NAME_CHAR: [bool; 256] = make_table(1);
/// ASCII bytes that are plain character data (no markup meaning, valid `Char`).
pub static TEXT_PLAIN: [bool; 256] = make_table(2);
/// ASCII bytes that are plain inside an attribute value, whatever the quote.
pub static ATTR_PLAIN: [bool; 256] = make_table(3);

/// Whether `s` is an XML namespace `NCName` (a `Name` without `:`).
#[inline]
pub fn is_ncname(s: &str) -> bool {
    // Fast path: an ASCII name, checked with the byte tables.
    if let Some((&first, rest)) = s.as_bytes().split_first() {
        if rest.iter().all(|&b| NAME_CHAR[usize::from(b)]) {
            return NAME_START[usize::from(first)] || (first >= 0x80 && is_ncname_slow(s));
        }
    }
    is_ncname_slow(s)
}

fn is_ncname_slow(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_name_start(c as u32) => chars.all(|c| is_name_char(c as u32)),
        _ => false,
    }
}

/// The first character of `s` that is not an XML 1.0 `Char`, if any.
pub fn first_invalid_char(s: &str) -> Option<char> {
    // Fast path: bytes >= 0x20 through 0x7F and most multi-byte chars are fine.
    if s.bytes()
        .all(|b| (0x20..=0x7F).contains(&b) || b == b'\t' || b == b'\n' || b == b'\r')
    {
        return None;
    }
    s.chars().find(|&c| !is_xml_char(c as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_decoding() {
        assert_eq!(decode_utf8(b"a"), Utf8::Char(0x61, 1));
        assert_eq!(decode_utf8("é".as_bytes()), Utf8::Char(0xE9, 2));
        assert_eq!(decode_utf8("€".as_bytes()), Utf8::Char(0x20AC, 3));
        assert_eq!(decode_utf8("😀".as_bytes()), Utf8::Char(0x1F600, 4));
        assert_eq!(decode_utf8(&[0xE2, 0x82]), Utf8::Incomplete);
        assert_eq!(decode_utf8(&[0xC0, 0x80]), Utf8::Invalid); // overlong NUL
        assert_eq!(decode_utf8(&[0xED, 0xA0, 0x80]), Utf8::Invalid); // surrogate
        assert_eq!(decode_utf8(&[0xF4, 0x90, 0x80, 0x80]), Utf8::Invalid); // > U+10FFFF
        assert_eq!(decode_utf8(&[0x80]), Utf8::Invalid);
        assert_eq!(decode_utf8(&[0xE2, 0x41]), Utf8::Invalid);
    }

    #[test]
    fn classes() {
        assert!(is_xml_char(0x9) && !is_xml_char(0x0) && !is_xml_char(0xFFFE));
        assert!(!is_xml_char(0xFFFF) && is_xml_char(0x10FFFF) && !is_xml_char(0xD800));
        assert!(is_ncname("stream") && is_ncname("a-b.c_d1") && is_ncname("é"));
        assert!(!is_ncname("1a") && !is_ncname("a:b") && !is_ncname("") && !is_ncname("-a"));
        // expat's classes, not the Fifth Edition's: Romanian s-comma (Unicode 3.0),
        // astral letters, U+FEFF and U+00B7 as a first character are refused
        assert!(is_ncname("日本") && is_ncname("a\u{B7}") && is_ncname("\u{15F}"));
        assert!(!is_ncname("\u{219}") && !is_ncname("a\u{219}") && !is_ncname("\u{10000}"));
        assert!(!is_ncname("\u{FEFF}") && !is_ncname("\u{B7}a") && !is_ncname("\u{3400}"));
        assert_eq!(first_invalid_char("ok\u{1}"), Some('\u{1}'));
        assert_eq!(first_invalid_char("ok\u{FFFE}"), Some('\u{FFFE}'));
        assert_eq!(first_invalid_char("fine é"), None);
    }
}
