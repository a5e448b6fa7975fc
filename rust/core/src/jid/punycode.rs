//! Punycode (RFC 3492) as IDNA2003 uses it: encoding to measure and check ACE labels,
//! decoding for ToUnicode.  Arithmetic is checked (RFC 3492 §6.4 overflow handling), so
//! no input panics; callers bound the input length (ACE labels are at most 63 octets).

const BASE: u32 = 36;
const TMIN: u32 = 1;
const TMAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 0x80;

/// The most digits [`encode`] writes for one non-basic code point of a label of at most
/// 59 code points (the callers' bound): the delta it encodes is below
/// `0x10FFFF * 60 + 2 * 59 + 1`, under 67 million, and each digit but the last divides
/// what is left by `BASE - t >= BASE - TMAX = 10`, so eight digits leave less than 1,
/// which the ninth writes.  The encoded form is then at most `basic + 1 + 9 * others`.
pub(crate) const MAX_DIGITS_PER_CODE_POINT: usize = 9;

fn adapt(delta: u32, num_points: u32, first_time: bool) -> u32 {
    let mut delta = if first_time { delta / DAMP } else { delta / 2 };
    delta += delta / num_points.max(1);
    let mut k = 0;
    while delta > ((BASE - TMIN) * TMAX) / 2 {
        delta /= BASE - TMIN;
        k += BASE;
    }
    k + (BASE - TMIN + 1) * delta / (delta + SKEW)
}

fn threshold(k: u32, bias: u32) -> u32 {
    if k <= bias {
        TMIN
    } else if k >= bias + TMAX {
        TMAX
    } else {
        k - bias
    }
}

fn digit_char(d: u32) -> char {
    // d < 36 by construction; 'a'..='z' then '0'..='9' (RFC 3492 §5).
    if d < 26 {
        char::from(b'a' + d as u8)
    } else {
        char::from(b'0' + (d as u8).wrapping_sub(26))
    }
}

fn char_digit(c: u8) -> Option<u32> {
    match c {
        b'a'..=b'z' => Some(u32::from(c - b'a')),
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 26),
        _ => None,
    }
}

/// Punycode-encode `input` (without the `xn--` prefix); `None` on overflow.
pub(crate) fn encode(input: &str) -> Option<String> {
    let cps: Vec<u32> = input.chars().map(|c| c as u32).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let basic = u32::try_from(out.len()).ok()?;
    let total = u32::try_from(cps.len()).ok()?;
    if basic > 0 {
        out.push('-');
    }
    let mut n = INITIAL_N;
    let mut delta: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut h = basic;
    while h < total {
        let m = cps.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(h + 1)?)?;
        n = m;
        for &c in &cps {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = threshold(k, bias);
                    if q < t {
                        break;
                    }
                    out.push(digit_char(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit_char(q));
                bias = adapt(delta, h + 1, h == basic);
                delta = 0;
                h += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

/// Punycode-decode `input` (without the `xn--` prefix); `None` if it is not valid
/// Punycode (a non-ASCII or non-digit character, a truncated number, an overflow, a
/// code point that is not a Unicode scalar value).
pub(crate) fn decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    if !bytes.is_ascii() {
        return None;
    }
    let (basic, rest) = match bytes.iter().rposition(|&b| b == b'-') {
        Some(i) => (bytes.get(..i)?, bytes.get(i + 1..)?),
        None => (&bytes[..0], bytes),
    };
    let mut out: Vec<char> = basic.iter().map(|&b| char::from(b)).collect();
    let mut n = INITIAL_N;
    let mut i: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut pos = 0usize;
    while pos < rest.len() {
        let old_i = i;
        let mut w: u32 = 1;
        let mut k = BASE;
        loop {
            let digit = char_digit(*rest.get(pos)?)?;
            pos += 1;
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = threshold(k, bias);
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = u32::try_from(out.len()).ok()?.checked_add(1)?;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        // n starts at 0x80 and only grows, so no basic code point is inserted here.
        let c = char::from_u32(n)?;
        out.insert(usize::try_from(i).ok()?, c);
        i += 1;
    }
    Some(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3492_samples() {
        // RFC 3492 §7.1 (A) Arabic (Egyptian) and (L) the Japanese mixed sample.
        let arabic = "\u{644}\u{64a}\u{647}\u{645}\u{627}\u{628}\u{62a}\u{643}\u{644}\u{645}\u{648}\u{634}\u{639}\u{631}\u{628}\u{64a}\u{61f}";
        assert_eq!(encode(arabic).as_deref(), Some("egbpdaj6bu4bxfgehfvwxn"));
        assert_eq!(decode("egbpdaj6bu4bxfgehfvwxn").as_deref(), Some(arabic));
        let mixed = "3\u{5e74}B\u{7d44}\u{91d1}\u{516b}\u{5148}\u{751f}";
        assert_eq!(encode(mixed).as_deref(), Some("3B-ww4c5e180e575a65lsy2b"));
        assert_eq!(decode("3B-ww4c5e180e575a65lsy2b").as_deref(), Some(mixed));
        assert_eq!(encode("bücher").as_deref(), Some("bcher-kva"));
    }

    #[test]
    fn encoded_length_bound() {
        let worst = ['\u{80}', '\u{10fffd}', '\u{ffff}', '\u{e000}', '\u{4e00}'];
        for others in 0..=59usize {
            for basic in [0, 1, 59 - others] {
                for order in 0..worst.len() {
                    let mut label: String = "a".repeat(basic);
                    for i in 0..others {
                        label.push(worst[(i * 7 + order) % worst.len()]);
                    }
                    let encoded = encode(&label).expect("no overflow under 60 code points");
                    let bound = basic + usize::from(basic > 0) + MAX_DIGITS_PER_CODE_POINT * others;
                    assert!(encoded.len() <= bound, "{label:?}: {}", encoded.len());
                }
            }
        }
    }

    #[test]
    fn bad_input_is_rejected_without_panic() {
        for s in [
            "",
            "-",
            "a-",
            "99999999999",
            "zzzzzzzzzzzzzz",
            "é",
            "a-!",
            "-9",
        ] {
            let _ = decode(s);
        }
        assert_eq!(decode("zzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(decode("ab-cd$"), None);
    }
}
