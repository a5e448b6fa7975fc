//! A small direct-mapped cache of Python strings for names, namespaces and Clark tags:
//! stanzas repeat a handful of them (`message`, `jabber:client`, `{jabber:client}iq`),
//! so reading `tag` returns a cached `str` instead of formatting and allocating one.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyString;

const SLOTS: usize = 512;
/// Longer strings are not worth caching (and would hold memory for nothing).
const MAX_LEN: usize = 128;

struct Slot {
    key: String,
    value: Py<PyString>,
}

static CACHE: Mutex<Vec<Option<Slot>>> = Mutex::new(Vec::new());

fn hash(parts: &[&str]) -> usize {
    // FNV-1a over the concatenated parts.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h as usize) % SLOTS
}

fn matches(key: &str, parts: &[&str]) -> bool {
    let mut rest = key;
    for p in parts {
        match rest.strip_prefix(p) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The Python string for the concatenation of `parts`, from the cache when present.
pub fn cached<'py>(py: Python<'py>, parts: &[&str]) -> Bound<'py, PyString> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let build = || {
        let s: String = parts.concat();
        PyString::new(py, &s)
    };
    if len > MAX_LEN {
        return build();
    }
    let i = hash(parts);
    let Ok(mut cache) = CACHE.lock() else {
        return build();
    };
    if cache.is_empty() {
        cache.resize_with(SLOTS, || None);
    }
    if let Some(Some(slot)) = cache.get(i) {
        if matches(&slot.key, parts) {
            return slot.value.bind(py).clone();
        }
    }
    let v = build();
    if let Some(slot) = cache.get_mut(i) {
        *slot = Some(Slot {
            key: parts.concat(),
            value: v.clone().unbind(),
        });
    }
    v
}
