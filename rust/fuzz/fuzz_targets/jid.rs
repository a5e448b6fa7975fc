//! Fuzz JID preparation: no input panics, and every accepted JID is a fixed point
//! (preparing its string form gives the same parts), with parts of 1..=1023 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmppx_core::jid::{nameprep, nodeprep, prep_jid, resourceprep, MAX_PART_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = nodeprep(s);
    let _ = nameprep(s);
    let _ = resourceprep(s);
    let Ok(j) = prep_jid(s) else {
        return;
    };
    let mut text = String::new();
    for part in [j.local.as_deref(), Some(&*j.domain), j.resource.as_deref()]
        .into_iter()
        .flatten()
    {
        assert!(!part.is_empty() && part.len() <= MAX_PART_BYTES);
    }
    if let Some(l) = &j.local {
        text.push_str(l);
        text.push('@');
    }
    text.push_str(&j.domain);
    if let Some(r) = &j.resource {
        text.push('/');
        text.push_str(r);
    }
    let again = prep_jid(&text).expect("a prepared JID must prepare again");
    assert_eq!(again, j, "not idempotent: {s:?}");
});
