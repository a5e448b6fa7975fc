//! The shared JID vectors (`tests/vectors/jid/`, format in `tests/vectors/README.md`)
//! on the Rust implementation, and the exhaustive proof that its NFKC equals Unicode 3.2
//! NFKC (`nfkc32.txt`, generated from Python's `unicodedata.ucd_3_2_0`).

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use unicode_normalization::UnicodeNormalization;
use xmppx_core::jid::{is_assigned_3_2, nfkc_3_2, prep_jid, JidRule, PreparedJid};

fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/jid")
}

fn read(name: &str) -> String {
    let path = vector_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Undo the `\\`, `\t`, `\uXXXX`, `\UXXXXXXXX` escapes; `None` if the text names a
/// surrogate (a Python-only case: Rust strings cannot hold one).
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some(k @ ('u' | 'U')) => {
                let n = if k == 'u' { 4 } else { 8 };
                let hex: String = chars.by_ref().take(n).collect();
                assert_eq!(hex.len(), n, "short escape in {s:?}");
                let cp = u32::from_str_radix(&hex, 16).expect("hex escape");
                out.push(char::from_u32(cp)?);
            }
            other => panic!("unknown escape \\{other:?} in {s:?}"),
        }
    }
    Some(out)
}

/// Data lines split at TAB and unescaped; lines naming a surrogate are skipped.
fn cases(name: &str) -> Vec<Vec<String>> {
    read(name)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').map(unescape).collect::<Option<Vec<_>>>())
        .collect()
}

fn to_string(j: &PreparedJid<'_>) -> String {
    let mut s = String::new();
    if let Some(l) = &j.local {
        s.push_str(l);
        s.push('@');
    }
    s.push_str(&j.domain);
    if let Some(r) = &j.resource {
        s.push('/');
        s.push_str(r);
    }
    s
}

#[test]
fn jid_valid_vectors() {
    let cases = cases("valid.txt");
    assert!(cases.len() >= 80, "only {} valid vectors", cases.len());
    for case in &cases {
        let [input, local, domain, resource] = case.as_slice() else {
            panic!("valid.txt needs 4 fields: {case:?}");
        };
        let j = prep_jid(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(
            j.local.as_deref().unwrap_or(""),
            local,
            "localpart of {input:?}"
        );
        assert_eq!(j.domain, domain.as_str(), "domainpart of {input:?}");
        assert_eq!(
            j.resource.as_deref().unwrap_or(""),
            resource,
            "resourcepart of {input:?}"
        );
        // Idempotence: the prepared JID prepares to itself.
        let again = to_string(&j);
        let k = prep_jid(&again).unwrap_or_else(|e| panic!("{again:?}: {e}"));
        assert_eq!(k, j, "not idempotent: {input:?}");
    }
}

#[test]
fn jid_invalid_vectors() {
    let cases = cases("invalid.txt");
    assert!(cases.len() >= 80, "only {} invalid vectors", cases.len());
    for case in &cases {
        let [input, rule] = case.as_slice() else {
            panic!("invalid.txt needs 2 fields: {case:?}");
        };
        let want = JidRule::from_name(rule).unwrap_or_else(|| panic!("unknown rule {rule}"));
        match prep_jid(input) {
            Ok(j) => panic!("{input:?} accepted as {j:?}, expected {rule}"),
            Err(e) => assert_eq!(e.rule(), want, "{input:?}: {e}"),
        }
    }
}

fn hex_seq(s: &str) -> String {
    s.split(' ')
        .map(|h| {
            let cp = u32::from_str_radix(h, 16).expect("hex code point");
            char::from_u32(cp).expect("scalar value")
        })
        .collect()
}

/// `nfkc_3_2` equals Python's `ucd_3_2_0.normalize("NFKC", …)` on every code point
/// assigned in 3.2, on the crate's canonical and compatibility decompositions of each
/// of them (which exercises composition and reordering), and on the listed sequences;
/// and it never turns code points assigned in 3.2 into one that is not.
#[test]
fn jid_nfkc_matches_unicode_3_2_exhaustively() {
    let mut singles: HashMap<char, String> = HashMap::new();
    let mut sequences = Vec::new();
    for line in read("nfkc32.txt").lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (input, output) = line.split_once('\t').expect("two fields");
        let (input, output) = (hex_seq(input), hex_seq(output));
        let mut it = input.chars();
        match (it.next(), it.next()) {
            (Some(c), None) => {
                singles.insert(c, output);
            }
            _ => sequences.push((input, output)),
        }
    }
    assert!(singles.len() > 4000, "nfkc32.txt looks truncated");
    let mut checked = 0usize;
    for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
        let decomposed_nfd: String = c.to_string().nfd().collect();
        let decomposed_nfkd: String = c.to_string().nfkd().collect();
        if !is_assigned_3_2(c) {
            for d in [&decomposed_nfd, &decomposed_nfkd] {
                if d.chars().count() >= 2 && d.chars().all(is_assigned_3_2) {
                    let n = nfkc_3_2(d);
                    assert!(
                        n.chars().all(is_assigned_3_2),
                        "U+{:04X} -> {n:?}",
                        c as u32
                    );
                }
            }
            continue;
        }
        let own = c.to_string();
        let want = singles.get(&c).unwrap_or(&own);
        assert_eq!(&nfkc_3_2(&own), want, "NFKC of U+{:04X}", c as u32);
        if ![
            "\u{2f868}",
            "\u{2f874}",
            "\u{2f91f}",
            "\u{2f95f}",
            "\u{2f9bf}",
        ]
        .contains(&own.as_str())
        {
            assert_eq!(
                &nfkc_3_2(&decomposed_nfd),
                want,
                "NFKC of NFD of U+{:04X}",
                c as u32
            );
            assert_eq!(
                &nfkc_3_2(&decomposed_nfkd),
                want,
                "NFKC of NFKD of U+{:04X}",
                c as u32
            );
        }
        checked += 1;
    }
    assert!(checked > 230_000, "only {checked} code points checked");
    for (input, output) in &sequences {
        assert_eq!(&nfkc_3_2(input), output, "NFKC of {input:?}");
    }
}
