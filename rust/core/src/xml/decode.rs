//! Decoding of already validated XML bytes: start tags (name, namespace, attributes),
//! character data (references, CDATA sections, line ends), content walking and the
//! namespace dependencies of a span (for raw forwarding).
//!
//! Everything here runs on bytes the [`crate::xml::StreamParser`] accepted, so it
//! trusts their well-formedness for speed; it still never panics or loops on other
//! input (every access is bounds-checked and every loop advances), it returns `None` or
//! decodes best-effort instead.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use memchr::{memchr, memchr3, memmem};

use super::chars::is_ws;
use super::scope::{Scope, NS_XML};

/// The shared empty string, for "no namespace".
pub fn empty_arc() -> Arc<str> {
    static EMPTY: OnceLock<Arc<str>> = OnceLock::new();
    EMPTY.get_or_init(|| Arc::from("")).clone()
}

/// The shared `xml` namespace URI.
pub fn xml_arc() -> Arc<str> {
    static XML: OnceLock<Arc<str>> = OnceLock::new();
    XML.get_or_init(|| Arc::from(NS_XML)).clone()
}

/// A decoded start tag.
#[derive(Debug, Clone)]
pub struct StartTag {
    /// Local name.
    pub name: Arc<str>,
    /// Namespace URI (`""` for none).
    pub ns: Arc<str>,
    /// Attributes in document order, Clark keys for namespaced ones; values decoded.
    pub attrs: Vec<(String, String)>,
    /// The scope inside the element (the outer scope plus its declarations).
    pub inner: Scope,
    /// Offset just after the tag's `>`.
    pub end: usize,
    /// Whether the tag was `.../>`.
    pub empty: bool,
}

/// Bytes the parser validated as UTF-8, as a string (lossy only if that was not so).
#[inline]
pub fn utf8(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

#[inline]
fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && is_ws(buf[i]) {
        i += 1;
    }
    i
}

/// Ranges of one attribute in a start tag: name, then value (between the quotes).
#[derive(Debug, Clone, Copy)]
struct RawAttr {
    name: (usize, usize),
    value: (usize, usize),
}

/// Split a start tag at `start` (its `<`) into qname range, attributes and end.
fn scan_start_tag(
    buf: &[u8],
    start: usize,
    attrs: &mut Vec<RawAttr>,
) -> Option<((usize, usize), usize, bool)> {
    let mut i = start + 1;
    let ns = i;
    while i < buf.len() && !is_ws(buf[i]) && buf[i] != b'>' && buf[i] != b'/' {
        i += 1;
    }
    let qname = (ns, i);
    loop {
        i = skip_ws(buf, i);
        match *buf.get(i)? {
            b'>' => return Some((qname, i + 1, false)),
            b'/' => return Some((qname, i + 2, true)),
            _ => {}
        }
        let an = i;
        while i < buf.len() && buf[i] != b'=' && !is_ws(buf[i]) {
            i += 1;
        }
        let name = (an, i);
        i = skip_ws(buf, i);
        if *buf.get(i)? != b'=' {
            return None;
        }
        i = skip_ws(buf, i + 1);
        let q = *buf.get(i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let vs = i + 1;
        let ve = vs + memchr(q, buf.get(vs..)?)?;
        attrs.push(RawAttr {
            name,
            value: (vs, ve),
        });
        i = ve + 1;
    }
}

/// Decode the reference starting at `b[0] == b'&'`; returns the character and the
/// length consumed (through `;`).
fn decode_ref(b: &[u8]) -> Option<(char, usize)> {
    let semi = memchr(b';', b.get(..b.len().min(16))?)?;
    let body = b.get(1..semi)?;
    let c = match body {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"apos" => '\'',
        b"quot" => '"',
        _ => {
            let digits = body.strip_prefix(b"#")?;
            let (digits, radix) = match digits.strip_prefix(b"x") {
                Some(h) => (h, 16),
                None => (digits, 10),
            };
            let s = std::str::from_utf8(digits).ok()?;
            char::from_u32(u32::from_str_radix(s, radix).ok()?)?
        }
    };
    Some((c, semi + 1))
}

/// Decode an attribute value (XML 1.0 §3.3.3): references replaced, literal TAB, LF,
/// CR (and CR LF as one) become a space.
pub fn decode_attr_value(raw: &[u8], out: &mut String) {
    let mut i = 0;
    let mut run = 0;
    while i < raw.len() {
        match raw[i] {
            b'&' => {
                out.push_str(&utf8(&raw[run..i]));
                match decode_ref(&raw[i..]) {
                    Some((c, n)) => {
                        out.push(c);
                        i += n;
                    }
                    None => {
                        out.push('&');
                        i += 1;
                    }
                }
                run = i;
            }
            b'\r' | b'\t' | b'\n' => {
                out.push_str(&utf8(&raw[run..i]));
                out.push(' ');
                i += if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                run = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&utf8(&raw[run..]));
}

/// Decode attribute value bytes into a new string (borrowing when nothing changes).
pub fn attr_value(raw: &[u8]) -> Cow<'_, str> {
    if memchr3(b'&', b'\r', b'\t', raw).is_none() && memchr(b'\n', raw).is_none() {
        return utf8(raw);
    }
    let mut s = String::with_capacity(raw.len());
    decode_attr_value(raw, &mut s);
    Cow::Owned(s)
}

/// Decode character data in `buf[from..to]` (text, references, CDATA sections, line
/// ends normalised to LF) and append it to `out`.  The range must not contain tags other
/// than CDATA sections.
pub fn decode_text(buf: &[u8], from: usize, to: usize, out: &mut String) {
    let to = to.min(buf.len());
    let mut i = from;
    while i < to {
        let seg = &buf[i..to];
        let Some(off) = memchr3(b'&', b'\r', b'<', seg) else {
            out.push_str(&utf8(seg));
            return;
        };
        out.push_str(&utf8(&seg[..off]));
        i += off;
        match buf[i] {
            b'&' => match decode_ref(&buf[i..to]) {
                Some((c, n)) => {
                    out.push(c);
                    i += n;
                }
                None => {
                    out.push('&');
                    i += 1;
                }
            },
            b'\r' => {
                out.push('\n');
                i += if buf.get(i + 1) == Some(&b'\n') && i + 1 < to {
                    2
                } else {
                    1
                };
            }
            _ => {
                // `<![CDATA[ ... ]]>`
                if buf[i..to].starts_with(b"<![CDATA[") {
                    let cs = i + 9;
                    let ce = memmem::find(&buf[cs..to], b"]]>").map_or(to, |o| cs + o);
                    let mut j = cs;
                    while j < ce {
                        match memchr(b'\r', &buf[j..ce]) {
                            Some(o) => {
                                out.push_str(&utf8(&buf[j..j + o]));
                                out.push('\n');
                                j += o + if buf.get(j + o + 1) == Some(&b'\n') {
                                    2
                                } else {
                                    1
                                };
                            }
                            None => {
                                out.push_str(&utf8(&buf[j..ce]));
                                j = ce;
                            }
                        }
                    }
                    i = (ce + 3).min(to).max(i + 1);
                } else {
                    // Not expected in validated text; keep going rather than loop.
                    out.push('<');
                    i += 1;
                }
            }
        }
    }
}

/// The end of the character data starting at `from` (the first `<` that does not open
/// a CDATA section, or `to`).
pub fn text_end(buf: &[u8], from: usize, to: usize) -> usize {
    let to = to.min(buf.len());
    let mut i = from;
    while i < to {
        match memchr(b'<', &buf[i..to]) {
            None => return to,
            Some(o) => {
                let lt = i + o;
                if buf[lt..to].starts_with(b"<![CDATA[") {
                    let cs = lt + 9;
                    match memmem::find(&buf[cs..to], b"]]>") {
                        Some(e) => i = cs + e + 3,
                        None => return to,
                    }
                } else {
                    return lt;
                }
            }
        }
    }
    to
}

/// Find the end of a start tag beginning at `start` (its `<`): offset after `>`, and
/// whether it was an empty-element tag.
fn start_tag_end(buf: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start + 1;
    loop {
        let o = memchr3(b'>', b'\'', b'"', buf.get(i..)?)?;
        i += o;
        match buf[i] {
            b'>' => return Some((i + 1, i > 0 && buf[i - 1] == b'/')),
            q => {
                let close = memchr(q, buf.get(i + 1..)?)?;
                i += close + 2;
            }
        }
    }
}

/// The offset just after the element starting at `start` (its `<`), skipping its whole
/// subtree; `None` if the bytes end first.
pub fn skip_element(buf: &[u8], start: usize) -> Option<usize> {
    let mut depth: usize = 0;
    let mut i = start;
    loop {
        if buf.get(i) != Some(&b'<') {
            i += memchr(b'<', buf.get(i..)?)?;
        }
        match buf.get(i + 1)? {
            b'/' => {
                i += 2 + memchr(b'>', buf.get(i + 2..)?)? + 1;
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'!' => {
                // CDATA section (comments and the like never pass validation)
                let cs = i + 2;
                i = cs + memmem::find(buf.get(cs..)?, b"]]>")? + 3;
            }
            _ => {
                let (e, empty) = start_tag_end(buf, i)?;
                i = e;
                if !empty {
                    depth += 1;
                } else if depth == 0 {
                    return Some(i);
                }
            }
        }
    }
}

/// One item of an element's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// Character data (possibly with references and CDATA sections) in this range.
    Text(usize, usize),
    /// A child element spanning this range.
    Child(usize, usize),
}

/// Iterator over the content of an element (between its start and end tags).
#[derive(Debug, Clone)]
pub struct Content<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Content<'a> {
    /// Walk `buf[from..to]`.
    pub fn new(buf: &'a [u8], from: usize, to: usize) -> Self {
        Content {
            buf,
            pos: from,
            end: to.min(buf.len()),
        }
    }
}

impl Iterator for Content<'_> {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        if self.pos >= self.end {
            return None;
        }
        let p = self.pos;
        if self.buf[p] == b'<' && !self.buf[p..self.end].starts_with(b"<![CDATA[") {
            match skip_element(self.buf, p) {
                Some(e) if e <= self.end => {
                    self.pos = e;
                    Some(Item::Child(p, e))
                }
                _ => {
                    self.pos = self.end;
                    None
                }
            }
        } else {
            let e = text_end(self.buf, p, self.end).max(p + 1);
            self.pos = e;
            Some(Item::Text(p, e))
        }
    }
}

fn split_qname(q: &[u8]) -> (&[u8], &[u8]) {
    match memchr(b':', q) {
        Some(c) => (&q[..c], &q[c + 1..]),
        None => (&[], q),
    }
}

fn resolve(scope: &Scope, prefix: &[u8]) -> Option<Arc<str>> {
    if prefix == b"xml" {
        return Some(xml_arc());
    }
    let p = std::str::from_utf8(prefix).ok()?;
    match scope.lookup(p) {
        Some(u) => Some(u.clone()),
        None if p.is_empty() => Some(empty_arc()),
        None => None,
    }
}

/// Decode the start tag at `start` in the scope `outer`.
pub fn decode_start_tag(buf: &[u8], start: usize, outer: &Scope) -> Option<StartTag> {
    let mut raw: Vec<RawAttr> = Vec::new();
    let (qn, end, empty) = scan_start_tag(buf, start, &mut raw)?;
    let mut inner = outer.clone();
    let mut n_decls = 0;
    for a in &raw {
        let name = &buf[a.name.0..a.name.1];
        let value = &buf[a.value.0..a.value.1];
        if name == b"xmlns" {
            let v = attr_value(value);
            inner = inner.push(
                "",
                if v.is_empty() {
                    empty_arc()
                } else {
                    Arc::from(&*v)
                },
            );
            n_decls += 1;
        } else if let Some(p) = name.strip_prefix(b"xmlns:") {
            let v = attr_value(value);
            inner = inner.push(&utf8(p), Arc::from(&*v));
            n_decls += 1;
        }
    }
    let (prefix, local) = split_qname(&buf[qn.0..qn.1]);
    let ns = resolve(&inner, prefix)?;
    let mut attrs = Vec::with_capacity(raw.len() - n_decls);
    for a in &raw {
        let name = &buf[a.name.0..a.name.1];
        if name == b"xmlns" || name.starts_with(b"xmlns:") {
            continue;
        }
        let value = attr_value(&buf[a.value.0..a.value.1]).into_owned();
        let (p, l) = split_qname(name);
        let key = if p.is_empty() {
            utf8(l).into_owned()
        } else {
            let u = resolve(&inner, p)?;
            let l = utf8(l);
            let mut k = String::with_capacity(u.len() + l.len() + 2);
            k.push('{');
            k.push_str(&u);
            k.push('}');
            k.push_str(&l);
            k
        };
        attrs.push((key, value));
    }
    Some(StartTag {
        name: Arc::from(&*utf8(local)),
        ns,
        attrs,
        inner,
        end,
        empty,
    })
}

/// The namespace URI and local name of the start tag at `start` (cheaper than
/// [`decode_start_tag`] when only the name is needed).
pub fn start_tag_name(buf: &[u8], start: usize, outer: &Scope) -> Option<(Arc<str>, Arc<str>)> {
    let t = decode_start_tag(buf, start, outer)?;
    Some((t.ns, t.name))
}

/// A namespace binding a raw span relies on: `prefix` must be bound to `uri` where the
/// span is written (`uri == None`: the prefix was unbound, the span is never reusable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// `""` for the default namespace.
    pub prefix: Box<str>,
    /// The URI it had in the input.
    pub uri: Option<Arc<str>>,
}

/// What a raw element relies on from outside: `span` for the whole element, `content`
/// for its content alone (bindings made on the element's own start tag included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps {
    /// Bindings the element (start tag to end tag) uses but does not declare.
    pub span: Vec<Dep>,
    /// Bindings the content uses but does not declare.
    pub content: Vec<Dep>,
}

fn add_dep(list: &mut Vec<Dep>, prefix: &[u8], scope: &Scope) {
    if prefix == b"xml" || list.iter().any(|d| d.prefix.as_bytes() == prefix) {
        return;
    }
    let p = utf8(prefix);
    let uri = match scope.lookup(&p) {
        Some(u) => Some(u.clone()),
        None if p.is_empty() => Some(empty_arc()),
        None => None,
    };
    list.push(Dep {
        prefix: p.into(),
        uri,
    });
}

/// Compute the namespace dependencies of the element at `buf[start..end]`, whose outer
/// scope is `outer` and inner scope (after its own declarations) `inner`.
pub fn compute_deps(buf: &[u8], start: usize, end: usize, outer: &Scope, inner: &Scope) -> Deps {
    let mut deps = Deps::default();
    // declared prefixes inside the span: (prefix range, depth)
    let mut declared: Vec<((usize, usize), usize)> = Vec::new();
    let mut raw: Vec<RawAttr> = Vec::new();
    let end = end.min(buf.len());
    let mut depth = 0usize;
    let mut i = start;
    let mut uses: Vec<(usize, usize)> = Vec::new();
    while i < end {
        let Some(o) = memchr(b'<', &buf[i..end]) else {
            break;
        };
        i += o;
        match buf.get(i + 1) {
            Some(b'/') => {
                declared.retain(|&(_, d)| d < depth);
                depth = depth.saturating_sub(1);
                i += 2 + memchr(b'>', buf.get(i + 2..end).unwrap_or(&[])).unwrap_or(end) + 1;
            }
            Some(b'!') => {
                let cs = i + 2;
                i = cs + memmem::find(buf.get(cs..end).unwrap_or(&[]), b"]]>").unwrap_or(end) + 3;
            }
            Some(_) => {
                raw.clear();
                let Some((qn, e, empty)) = scan_start_tag(buf, i, &mut raw) else {
                    break;
                };
                depth += 1;
                uses.clear();
                for a in &raw {
                    let name = &buf[a.name.0..a.name.1];
                    if name == b"xmlns" {
                        declared.push(((a.name.0, a.name.0), depth));
                    } else if name.starts_with(b"xmlns:") {
                        declared.push(((a.name.0 + 6, a.name.1), depth));
                    } else if let Some(c) = memchr(b':', name) {
                        uses.push((a.name.0, a.name.0 + c));
                    }
                }
                let q = &buf[qn.0..qn.1];
                uses.push(match memchr(b':', q) {
                    Some(c) => (qn.0, qn.0 + c),
                    None => (qn.0, qn.0),
                });
                for &(ps, pe) in &uses {
                    let p = &buf[ps..pe];
                    let mut in_span = false;
                    let mut in_content = false;
                    for &((ds, de), d) in &declared {
                        if &buf[ds..de] == p {
                            in_span = true;
                            if d >= 2 {
                                in_content = true;
                            }
                        }
                    }
                    if !in_span {
                        add_dep(&mut deps.span, p, outer);
                    }
                    if depth >= 2 && !in_content {
                        add_dep(&mut deps.content, p, inner);
                    }
                }
                i = e;
                if empty {
                    declared.retain(|&(_, d)| d < depth);
                    depth -= 1;
                }
            }
            None => break,
        }
    }
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_tag() {
        let b = b"<m:x xmlns:m='urn:m' a='1 &amp;&#x9;\r\n2' m:b=\"q\">";
        let t = decode_start_tag(b, 0, &Scope::with_default("jabber:client")).unwrap();
        assert_eq!(&*t.name, "x");
        assert_eq!(&*t.ns, "urn:m");
        assert_eq!(t.attrs[0], ("a".to_string(), "1 &\t 2".to_string()));
        assert_eq!(t.attrs[1], ("{urn:m}b".to_string(), "q".to_string()));
        assert_eq!(t.end, b.len());
        assert!(!t.empty);
    }

    #[test]
    fn text_and_content() {
        let b = b"<a>x&lt;<![CDATA[<y>\r\n]]>z\r<b c='>'/>t<d>e</d></a>";
        let t = decode_start_tag(b, 0, &Scope::new()).unwrap();
        let items: Vec<Item> = Content::new(b, t.end, b.len() - 4).collect();
        assert_eq!(items.len(), 4);
        let Item::Text(s, e) = items[0] else { panic!() };
        let mut out = String::new();
        decode_text(b, s, e, &mut out);
        assert_eq!(out, "x<<y>\nz\n");
        assert_eq!(items[1], Item::Child(27, 37));
        assert_eq!(skip_element(b, 0), Some(b.len()));
    }

    #[test]
    fn deps() {
        let b = b"<m a:x='1'><b/><c:d xmlns:c='u'/><e xmlns='v'><f/></e></m>";
        let outer = Scope::with_default("jabber:client").push("a", Arc::from("urn:a"));
        let t = decode_start_tag(b, 0, &outer).unwrap();
        let d = compute_deps(b, 0, b.len(), &outer, &t.inner);
        let names: Vec<&str> = d.span.iter().map(|d| &*d.prefix).collect();
        assert_eq!(names, ["a", ""]);
        let names: Vec<&str> = d.content.iter().map(|d| &*d.prefix).collect();
        assert_eq!(names, [""]);
    }
}
