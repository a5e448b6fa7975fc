//! The canonical serializer of `_api.py` ("Serializer contract"), with raw forwarding.
//!
//! Canonical form, relative to a stream whose default namespace is `default_ns`:
//! `<name`, ` xmlns='ns'` when the namespace differs from the default in scope, one
//! ` xmlns:nsK='uri'` for each attribute namespace without a prefix in scope (K counts
//! the declarations of this call from 0; `xml` is always in scope), the attributes
//! `key='value'` in order, then `/>` or `>` text, children with their tails, `</name>`.
//! Text escapes `& < >` and CR; attribute values `& < > ' "` and TAB LF CR.
//!
//! Raw forwarding: a parsed element whose span is unchanged is written as its input
//! bytes when every namespace binding the span relies on from outside (its [`Deps`])
//! holds at that point of the output; an element whose start tag changed but whose
//! content did not is written as a canonical start tag plus its input content under the
//! same condition.  Otherwise it is written canonically (children may still be raw).
//!
//! [`Deps`]: super::decode::Deps

use super::chars::{is_ncname, is_xml_char};
use super::decode::Dep;
use super::element::{with_child, Handle, View};
use super::error::TreeError;
use super::scope::{NS_XML, NS_XMLNS};
use super::MAX_TREE_DEPTH;

/// Serialize `v` as a child of a stream whose default namespace is `default_ns`.
pub fn serialize<H: Handle>(v: &dyn View<H>, default_ns: &str) -> Result<Vec<u8>, TreeError> {
    let mut s = Ser {
        out: Vec::with_capacity(256),
        k: 0,
        prefixes: Vec::new(),
        raw: true,
    };
    s.element(v, default_ns, 0)?;
    Ok(s.out)
}

/// Serialize canonically, never reusing input bytes (for tests and comparisons).
pub fn serialize_canonical<H: Handle>(
    v: &dyn View<H>,
    default_ns: &str,
) -> Result<Vec<u8>, TreeError> {
    let mut s = Ser {
        out: Vec::with_capacity(256),
        k: 0,
        prefixes: Vec::new(),
        raw: false,
    };
    s.element(v, default_ns, 0)?;
    Ok(s.out)
}

struct Ser {
    out: Vec<u8>,
    k: usize,
    /// Prefixes declared by enclosing canonical start tags: (prefix, uri).
    prefixes: Vec<(String, String)>,
    raw: bool,
}

fn bad(msg: impl Into<String>) -> TreeError {
    TreeError::Value(msg.into())
}

fn check_chars(s: &str, what: &str) -> Result<(), TreeError> {
    match super::chars::first_invalid_char(s) {
        None => Ok(()),
        Some(c) => Err(bad(format!(
            "{what} contains U+{:04X}, not allowed in XML",
            c as u32
        ))),
    }
}

/// Append `s` escaped as character data.
pub fn escape_text(out: &mut Vec<u8>, s: &str) -> Result<(), TreeError> {
    let b = s.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#13;",
            b'\t' | b'\n' => continue,
            0..=0x1F => return Err(bad(format!("text contains U+{c:04X}, not allowed in XML"))),
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(rep);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    if b.iter().any(|&c| c >= 0x80) {
        check_chars(s, "text")?;
    }
    Ok(())
}

/// Append `s` escaped as an attribute value (between single quotes).
pub fn escape_attr(out: &mut Vec<u8>, s: &str) -> Result<(), TreeError> {
    let b = s.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\'' => b"&apos;",
            b'"' => b"&quot;",
            b'\t' => b"&#9;",
            b'\n' => b"&#10;",
            b'\r' => b"&#13;",
            0..=0x1F => {
                return Err(bad(format!(
                    "attribute value contains U+{c:04X}, not allowed in XML"
                )))
            }
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(rep);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    if b.iter().any(|&c| c >= 0x80) {
        check_chars(s, "attribute value")?;
    }
    Ok(())
}

fn check_ns(ns: &str) -> Result<(), TreeError> {
    if ns == NS_XMLNS || ns == NS_XML {
        return Err(bad(format!("namespace {ns} cannot be declared")));
    }
    check_chars(ns, "namespace")
}

/// Split an attribute key into (namespace, local name), validating it.
fn split_key(key: &str) -> Result<(Option<&str>, &str), TreeError> {
    let (ns, local) = match key.strip_prefix('{') {
        Some(rest) => {
            let (ns, local) = rest
                .split_once('}')
                .ok_or_else(|| bad(format!("bad attribute key {key:?}")))?;
            if ns.is_empty() || ns == NS_XMLNS {
                return Err(bad(format!("bad attribute namespace in {key:?}")));
            }
            check_chars(ns, "namespace")?;
            (Some(ns), local)
        }
        None => (None, key),
    };
    if !is_ncname(local) || (ns.is_none() && local == "xmlns") {
        return Err(bad(format!("bad attribute name {key:?}")));
    }
    Ok((ns, local))
}

impl Ser {
    fn deps_ok(&self, deps: &[Dep], default: &str) -> bool {
        deps.iter().all(|d| {
            let Some(uri) = &d.uri else { return false };
            if d.prefix.is_empty() {
                return **uri == *default;
            }
            self.prefixes
                .iter()
                .rev()
                .find(|(p, _)| *p == *d.prefix)
                .is_some_and(|(_, u)| u == &**uri)
        })
    }

    fn element<H: Handle>(
        &mut self,
        v: &dyn View<H>,
        default: &str,
        depth: usize,
    ) -> Result<(), TreeError> {
        if depth > MAX_TREE_DEPTH {
            return Err(TreeError::TooDeep);
        }
        if self.raw {
            if let Some(raw) = v.raw() {
                if v.span_clean(depth)? && self.deps_ok(&raw.deps().span, default) {
                    self.out.extend_from_slice(raw.span());
                    return Ok(());
                }
            }
        }
        let name = v.name();
        if !is_ncname(name) {
            return Err(bad(format!("bad element name {name:?}")));
        }
        let ns = v.namespace();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        if ns != default {
            if !ns.is_empty() {
                check_ns(ns)?;
            }
            self.out.extend_from_slice(b" xmlns='");
            escape_attr(&mut self.out, ns)?;
            self.out.push(b'\'');
        }
        let mark = self.prefixes.len();
        let attrs = v.attrs();
        for (key, _) in attrs.iter() {
            let (Some(ans), _) = split_key(key)? else {
                continue;
            };
            if ans == NS_XML || self.prefixes.iter().any(|(_, u)| u == ans) {
                continue;
            }
            let p = format!("ns{}", self.k);
            self.k += 1;
            self.out.extend_from_slice(b" xmlns:");
            self.out.extend_from_slice(p.as_bytes());
            self.out.extend_from_slice(b"='");
            escape_attr(&mut self.out, ans)?;
            self.out.push(b'\'');
            self.prefixes.push((p, ans.to_owned()));
        }
        for (key, value) in attrs.iter() {
            let (ans, local) = split_key(key)?;
            self.out.push(b' ');
            if let Some(ans) = ans {
                let p = if ans == NS_XML {
                    "xml"
                } else {
                    self.prefixes
                        .iter()
                        .rev()
                        .find(|(_, u)| u == ans)
                        .map_or("", |(p, _)| p.as_str())
                };
                self.out.extend_from_slice(p.as_bytes());
                self.out.push(b':');
            }
            self.out.extend_from_slice(local.as_bytes());
            self.out.extend_from_slice(b"='");
            escape_attr(&mut self.out, value)?;
            self.out.push(b'\'');
        }
        let r = self.content(v, name, ns, depth);
        self.prefixes.truncate(mark);
        r
    }

    fn content<H: Handle>(
        &mut self,
        v: &dyn View<H>,
        name: &str,
        ns: &str,
        depth: usize,
    ) -> Result<(), TreeError> {
        if self.raw {
            if let Some(raw) = v.raw() {
                if v.content_clean(depth)? && self.deps_ok(&raw.deps().content, ns) {
                    let c = raw.content();
                    if c.is_empty() {
                        self.out.extend_from_slice(b"/>");
                    } else {
                        self.out.push(b'>');
                        self.out.extend_from_slice(c);
                        self.end_tag(name);
                    }
                    return Ok(());
                }
            }
        }
        let text = v.text();
        let children = v.children_list()?;
        if text.is_empty() && children.is_empty() {
            self.out.extend_from_slice(b"/>");
            return Ok(());
        }
        self.out.push(b'>');
        escape_text(&mut self.out, &text)?;
        for c in &children {
            with_child(c, |c| -> Result<(), TreeError> {
                self.element(c, ns, depth + 1)?;
                escape_text(&mut self.out, c.tail())
            })??;
        }
        self.end_tag(name);
        Ok(())
    }

    fn end_tag(&mut self, name: &str) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }
}

/// Whether `c` may appear in XML text (re-exported for the glue's validation).
pub fn valid_char(c: char) -> bool {
    is_xml_char(c as u32)
}
