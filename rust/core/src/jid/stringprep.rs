//! The three stringprep profiles of RFC 6122 (Appendix A Nodeprep, Appendix B
//! Resourceprep) and RFC 3491 (Nameprep) on the Unicode 3.2 tables of RFC 3454.
//!
//! The steps, their order and the error texts are those of the Python reference
//! (`python/xmppx/core/_py/_stringprep.py`, whose docstring is the specification):
//! unassigned code points (A.1) are checked on the input, then B.1/B.2 mapping, NFKC
//! with Unicode 3.2 data, the prohibition scan and the RFC 3454 §6 bidi rule.

use std::borrow::Cow;
use std::sync::OnceLock;

use unicode_normalization::char::{canonical_combining_class, decompose_compatible};
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

/// The flags of `cp` by binary search in the generated run table (see `tables.rs`).
fn run_flags(cp: u32) -> u8 {
    let i = RUNS.partition_point(|&(start, _)| start <= cp);
    // RUNS starts at 0, so i >= 1 for every cp; `checked_sub` keeps this panic-free.
    match i.checked_sub(1).and_then(|j| RUNS.get(j)) {
        Some(&(_, f)) => f,
        None => 0,
    }
}

/// A flag of the BMP table only (not in `tables.rs`): the code point is NFKC_QC=Yes
/// and a starter (canonical combining class 0) in `unicode-normalization`'s data, so
/// a string of such code points passes `is_nfkc_quick` as `Yes` without looking.
pub(crate) const NFKC_SIMPLE: u8 = 0x80;
const _: () = assert!(NFKC_SIMPLE & (A1 | B1 | B2 | PROHIBITED | RAND_AL | L_CAT | FIXUP) == 0);

fn nfkc_simple(cp: u32) -> bool {
    char::from_u32(cp).is_some_and(|c| {
        canonical_combining_class(c) == 0 && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes
    })
}

/// [`RUNS`] for the Basic Multilingual Plane as a two-level table, plus
/// [`NFKC_SIMPLE`]: the block of 256 code points sharing a high byte, then the code
/// point in it.  Identical blocks are stored once (a few hundred distinct blocks, some
/// 100 KiB), built on first use (a few milliseconds).
struct BmpFlags {
    block_of: [u16; 256],
    blocks: Vec<[u8; 256]>,
}

impl BmpFlags {
    fn build() -> BmpFlags {
        let mut block_of = [0u16; 256];
        let mut blocks: Vec<[u8; 256]> = Vec::new();
        let mut runs = RUNS.iter().peekable();
        let mut current = 0u8;
        for (hi, slot) in (0u32..).zip(block_of.iter_mut()) {
            let mut block = [0u8; 256];
            for (lo, flags) in (0u32..).zip(block.iter_mut()) {
                let cp = hi << 8 | lo;
                while let Some(&&(start, f)) = runs.peek() {
                    if start > cp {
                        break;
                    }
                    current = f;
                    runs.next();
                }
                *flags = current;
                if current & A1 == 0 && nfkc_simple(cp) {
                    *flags |= NFKC_SIMPLE;
                }
            }
            let id = match blocks.iter().position(|b| *b == block) {
                Some(id) => id,
                None => {
                    blocks.push(block);
                    blocks.len() - 1
                }
            };
            *slot = u16::try_from(id).unwrap_or(u16::MAX);
        }
        BmpFlags { block_of, blocks }
    }

    #[inline(always)]
    fn get(&self, cp: u32) -> Option<u8> {
        let hi = usize::try_from(cp >> 8).ok()?;
        let block = self.blocks.get(usize::from(*self.block_of.get(hi)?))?;
        block.get((cp & 0xff) as usize).copied()
    }
}

/// The flags of `cp` in the generated run table (see `tables.rs`), with
/// [`NFKC_SIMPLE`] for the BMP.
#[inline(always)]
pub(crate) fn flags(cp: u32) -> u8 {
    static BMP: OnceLock<BmpFlags> = OnceLock::new();
    if cp < 0x1_0000 {
        if let Some(f) = BMP.get_or_init(BmpFlags::build).get(cp) {
            return f;
        }
    }
    run_flags(cp)
}

/// Whether `cp` is assigned in Unicode 3.2 (not in table A.1; surrogates are not chars).
pub fn is_assigned_3_2(c: char) -> bool {
    flags(c as u32) & A1 == 0
}

/// The B.2 mapping of `cp` by binary search in [`B2_MAP`].
fn b2_search(cp: u32) -> Option<&'static str> {
    B2_MAP
        .binary_search_by_key(&cp, |&(k, _)| k)
        .ok()
        .and_then(|i| B2_MAP.get(i))
        .map(|&(_, m)| m)
}

/// [`B2_MAP`] for the Basic Multilingual Plane as a two-level table of indexes (plus
/// one, 0 for none) into it, built on first use; the blocks without a mapping share
/// one block of zeros (a few dozen distinct blocks, some 20 KiB).
struct BmpB2 {
    block_of: [u16; 256],
    blocks: Vec<[u16; 256]>,
}

impl BmpB2 {
    fn build() -> BmpB2 {
        let mut block_of = [0u16; 256];
        let mut blocks: Vec<[u16; 256]> = vec![[0; 256]];
        for ((cp, _), index) in B2_MAP.iter().zip(1u16..) {
            let (Ok(hi), Ok(lo)) = (usize::try_from(cp >> 8), usize::try_from(cp & 0xff)) else {
                continue;
            };
            let Some(slot) = block_of.get_mut(hi) else {
                continue; // beyond the BMP: binary search
            };
            if *slot == 0 {
                blocks.push([0; 256]);
                *slot = u16::try_from(blocks.len() - 1).unwrap_or(0);
            }
            if let Some(entry) = blocks
                .get_mut(usize::from(*slot))
                .and_then(|block| block.get_mut(lo))
            {
                *entry = index;
            }
        }
        BmpB2 { block_of, blocks }
    }
}

/// The B.2 (case folding) mapping of `cp`, if it has one.
#[inline]
fn b2_mapping(cp: u32) -> Option<&'static str> {
    static BMP: OnceLock<BmpB2> = OnceLock::new();
    if cp >= 0x1_0000 {
        return b2_search(cp);
    }
    let table = BMP.get_or_init(BmpB2::build);
    let block = table
        .block_of
        .get(usize::try_from(cp >> 8).ok()?)
        .and_then(|&b| table.blocks.get(usize::from(b)))?;
    let index = *block.get((cp & 0xff) as usize)?;
    let (_, mapping) = B2_MAP.get(usize::from(index.checked_sub(1)?))?;
    Some(mapping)
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

/// NFKC (as [`nfkc_3_2`]) of a string whose code points are [`NFKC_SIMPLE`] or decompose
/// (compatibility decomposition) into such code points only, as fullwidth forms,
/// ligatures and Roman numerals do; `None` for any other string.  The result is then
/// the concatenated decompositions: as all its code points are starters nothing is
/// reordered, and as none is NFKC_QC=No or Maybe (which every code point that can be
/// the second of a composition is) nothing composes.  The fix-up code points are left
/// to [`nfkc_3_2`].
fn nfkc_by_decomposition(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        let f = flags(c as u32);
        if f & NFKC_SIMPLE != 0 {
            out.push(c);
            continue;
        }
        if f & FIXUP != 0 {
            return None;
        }
        let mut simple = true;
        decompose_compatible(c, |d| {
            simple &= flags(d as u32) & NFKC_SIMPLE != 0;
            out.push(d);
        });
        if !simple {
            return None;
        }
    }
    Some(out)
}

fn err(rule: JidRule, part: &str, what: &str) -> JidError {
    JidError::new(rule, format!("{part}: {what}"))
}

/// `"{part}: U+XXXX {what}"`, formatted once.
fn cp_err(rule: JidRule, part: &str, c: char, what: &str) -> JidError {
    JidError::new(rule, format!("{part}: U+{:04X} {what}", c as u32))
}

/// ASCII characters that the profile passes through, up to lowercasing: for these the
/// whole profile is the identity or `to_ascii_lowercase` (checked for every ASCII
/// character against the general path by the tests).
#[inline]
const fn ascii_safe(b: u8, profile: Profile) -> bool {
    match profile {
        Profile::Nodeprep => {
            b >= 0x21
                && b < 0x7f
                && !matches!(b, b'"' | b'&' | b'\'' | b'/' | b':' | b'<' | b'>' | b'@')
        }
        Profile::Nameprep => b < 0x80,
        Profile::Resourceprep => b >= 0x20 && b < 0x7f,
    }
}

/// Bits of [`ASCII_CLASS`]: safe for a profile ([`ascii_safe`]), or an uppercase letter.
const SAFE_NODE: u8 = 1;
const SAFE_NAME: u8 = 2;
const SAFE_RESOURCE: u8 = 4;
const UPPER: u8 = 8;
const ASCII: u8 = 16;

/// [`ascii_safe`] for each profile, `is_ascii_uppercase` and `is_ascii`, per byte (0
/// for bytes of non-ASCII characters), so the fast path is one table lookup per byte.
const ASCII_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0u8;
    while b < 0x80 {
        let mut class = 0;
        if ascii_safe(b, Profile::Nodeprep) {
            class |= SAFE_NODE;
        }
        if ascii_safe(b, Profile::Nameprep) {
            class |= SAFE_NAME;
        }
        if ascii_safe(b, Profile::Resourceprep) {
            class |= SAFE_RESOURCE;
        }
        if b.is_ascii_uppercase() {
            class |= UPPER;
        }
        table[b as usize] = class | ASCII;
        b += 1;
    }
    table
};

/// Apply `profile` to `s`: the fast ASCII path when it applies, else the general one.
pub(crate) fn prepare(s: &str, profile: Profile) -> Result<Cow<'_, str>, JidError> {
    let safe = match profile {
        Profile::Nodeprep => SAFE_NODE,
        Profile::Nameprep => SAFE_NAME,
        Profile::Resourceprep => SAFE_RESOURCE,
    };
    let (mut all, mut any) = (safe | ASCII, 0);
    for &b in s.as_bytes() {
        let class = ASCII_CLASS[usize::from(b)];
        all &= class;
        any |= class;
    }
    if all & safe != 0 {
        if profile == Profile::Resourceprep || any & UPPER == 0 {
            return Ok(Cow::Borrowed(s));
        }
        return Ok(Cow::Owned(s.to_ascii_lowercase()));
    }
    if all & ASCII != 0 {
        return Err(ascii_error(s, profile, safe));
    }
    general(s, profile).map(Cow::Owned)
}

/// The error of the general path for an all-ASCII string with a byte that is not
/// [`ascii_safe`]: no ASCII code point is unassigned, mapped to nothing or changed by
/// NFKC, case folding keeps positions, and none is RandALCat, so the first unsafe byte
/// is the first prohibited character (a control or space, or one of the eight that
/// Nodeprep excludes).
fn ascii_error(s: &str, profile: Profile, safe: u8) -> JidError {
    let part = profile.part();
    let c = s
        .bytes()
        .find(|&b| ASCII_CLASS[usize::from(b)] & safe == 0)
        .map_or('\0', char::from);
    if profile == Profile::Nodeprep && matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@') {
        return cp_err(
            JidRule::NodeprepProhibited,
            part,
            c,
            "is not allowed in a localpart",
        );
    }
    cp_err(JidRule::Prohibited, part, c, "is prohibited")
}

/// The full profile, for any input (RFC 3454 §3-§7 in the order of the reference).
fn general(s: &str, profile: Profile) -> Result<String, JidError> {
    let part = profile.part();
    let fold = profile != Profile::Resourceprep;
    // Unassigned code points (A.1) are checked on the input before anything else;
    // mapping reports nothing, so one pass can check and map.
    let mut mapped = String::with_capacity(s.len());
    let mut simple = NFKC_SIMPLE; // every code point of `mapped` is NFKC_SIMPLE
    for c in s.chars() {
        let f = flags(c as u32);
        if f & A1 != 0 {
            return Err(cp_err(
                JidRule::Unassigned,
                part,
                c,
                "is unassigned in Unicode 3.2",
            ));
        }
        if f & B1 != 0 {
            continue;
        }
        if fold && f & B2 != 0 {
            if c.is_ascii_uppercase() {
                mapped.push(c.to_ascii_lowercase());
                continue;
            }
            if let Some(m) = b2_mapping(c as u32) {
                mapped.push_str(m);
                for mc in m.chars() {
                    simple &= flags(mc as u32);
                }
                continue;
            }
        }
        simple &= f;
        mapped.push(c);
    }
    // The fix-up code points are singletons, never NFKC_QC=Yes, so the quick check
    // sends them to `nfkc_3_2`.
    let out = if simple != 0 {
        mapped
    } else if let Some(decomposed) = nfkc_by_decomposition(&mapped) {
        decomposed
    } else if is_nfkc_quick(mapped.chars()) == IsNormalized::Yes {
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
                    return Err(cp_err(
                        JidRule::NodeprepProhibited,
                        part,
                        c,
                        "is not allowed in a localpart",
                    ))
                }
                Some(rule) => return Err(cp_err(rule, part, c, "is prohibited")),
                None => {}
            }
        }
        let f = flags(cp);
        if f & PROHIBITED != 0 {
            return Err(cp_err(JidRule::Prohibited, part, c, "is prohibited"));
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
    fn bmp_table_equals_the_runs() {
        for cp in 0..0x1_0000 {
            let f = flags(cp);
            assert_eq!(f & !NFKC_SIMPLE, run_flags(cp), "{cp:#x}");
            assert_eq!(
                f & NFKC_SIMPLE != 0,
                f & A1 == 0 && nfkc_simple(cp),
                "{cp:#x}"
            );
        }
        assert_eq!(flags(0x1_0000), run_flags(0x1_0000));
        assert!(flags(u32::from(b'a')) & NFKC_SIMPLE != 0);
        assert!(flags(0xe9) & NFKC_SIMPLE != 0); // é
        assert!(flags(0x301) & NFKC_SIMPLE == 0); // a combining mark
        assert!(flags(0xfb01) & NFKC_SIMPLE == 0); // the fi ligature decomposes
    }

    #[test]
    fn b2_table_equals_the_binary_search() {
        for cp in 0..0x11_0000 {
            assert_eq!(b2_mapping(cp), b2_search(cp), "{cp:#x}");
        }
        assert_eq!(b2_mapping(u32::from(b'A')), Some("a"));
        assert_eq!(b2_mapping(0xdf), Some("ss"));
    }

    #[test]
    fn nfkc_by_decomposition_equals_nfkc_3_2() {
        let mut some = 0;
        let assigned: Vec<char> = (0..0x3_0000)
            .filter_map(char::from_u32)
            .filter(|&c| is_assigned_3_2(c))
            .collect();
        for &c in &assigned {
            let s = c.to_string();
            if let Some(fast) = nfkc_by_decomposition(&s) {
                assert_eq!(fast, nfkc_3_2(&s), "U+{:04X}", c as u32);
                some += 1;
            }
        }
        assert!(some > 50_000, "{some}");
        // Pairs around the compositions: a starter then each code point of a sample.
        for &a in &[
            'a', 'A', 'e', '\u{3b1}', '\u{1100}', '\u{ac00}', '\u{ff21}', '1',
        ] {
            for &b in assigned.iter().step_by(7) {
                let s: String = [a, b].iter().collect();
                if let Some(fast) = nfkc_by_decomposition(&s) {
                    assert_eq!(fast, nfkc_3_2(&s), "{s:?}");
                }
            }
        }
        assert_eq!(nfkc_by_decomposition("\u{ff25}x").as_deref(), Some("Ex"));
        assert_eq!(nfkc_by_decomposition("\u{fb01}le").as_deref(), Some("file"));
        assert_eq!(
            nfkc_by_decomposition("henry\u{2163}").as_deref(),
            Some("henryIV")
        );
        assert_eq!(nfkc_by_decomposition("e\u{301}"), None);
    }

    #[test]
    fn ascii_errors_equal_the_general_path() {
        let mut strings: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        for a in 0u8..0x80 {
            for b in 0u8..0x80 {
                strings.push([char::from(a), char::from(b)].iter().collect());
            }
        }
        strings.extend(["Juliet:x", "A B", "ok\u{7f}", "x\ty", "a\"b&c"].map(String::from));
        for profile in [Profile::Nodeprep, Profile::Nameprep, Profile::Resourceprep] {
            for s in &strings {
                let got = prepare(s, profile).map(Cow::into_owned);
                assert_eq!(got, general(s, profile), "{profile:?} {s:?}");
            }
        }
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
