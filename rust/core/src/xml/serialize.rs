//! The canonical serializer of `_api.py` ("Serializer contract"), with raw forwarding.
//!
//! Canonical form, relative to a stream whose default namespace is `default_ns`:
//! `<name` (`<xml:name` in the `xml` namespace, whose prefix is always bound, and which
//! leaves the default namespace in scope as it was), ` xmlns='ns'` when the namespace
//! differs from the default in scope, one
//! ` xmlns:nsK='uri'` for each attribute namespace without a prefix in scope (K counts
//! the declarations of this call from 0; `xml` is always in scope), the attributes
//! `key='value'` in order, then `/>` or `>` text, children with their tails, `</name>` (`</xml:name>`).
//! Text escapes `& < >` and CR; attribute values `& < > ' "` and TAB LF CR.
//!
//! Raw forwarding: a parsed element whose span is unchanged is written as its input
//! bytes when every namespace binding the span relies on from outside (its [`Deps`])
//! holds at that point of the output; an element whose start tag changed but whose
//! content did not is written as a canonical start tag plus its input content under the
//! same condition.  Otherwise it is written canonically (children may still be raw).
//!
//! Speed (hand-built trees are the common canonical case): the walk is generic over the
//! view type, so a materialized [`Element`](super::Element) is read through direct,
//! inlined calls and its children are visited in place (no list, no handle clones);
//! escaping classifies bytes with a 256-entry table and copies clean runs in bulk,
//! eight bytes per step; non-ASCII needs no decoding (a Rust `str` is valid UTF-8, so
//! the only non-`Char` scalars it can hold are U+FFFE and U+FFFF, `EF BF BE`/`EF BF BF`);
//! [`serialize_into`] appends to a caller's buffer so the glue can reuse one.
//!
//! [`Deps`]: super::decode::Deps

use super::chars::{first_invalid_char, is_ncname, is_xml_char};
use super::decode::Dep;
use super::element::{with_child, AttrsRef, Handle, View};
use super::error::TreeError;
use super::scope::{NS_XML, NS_XMLNS};
use super::MAX_TREE_DEPTH;
use memchr::memchr;

/// Serialize `v` as a child of a stream whose default namespace is `default_ns`.
pub fn serialize<H: Handle>(v: &dyn View<H>, default_ns: &str) -> Result<Vec<u8>, TreeError> {
    let mut out = Vec::with_capacity(256);
    serialize_into(&mut out, v, default_ns)?;
    Ok(out)
}

/// Whether `ns` may be a stream's default namespace: not the `xml` or `xmlns` namespace
/// (Namespaces in XML 1.0 §3: neither may be declared as the default), and only XML
/// 1.0 characters (it is written in an attribute value) other than `}`.
pub fn check_default_ns(ns: &str) -> Result<(), TreeError> {
    if ns == NS_XML || ns == NS_XMLNS {
        return Err(bad(format!(
            "{ns} cannot be the default namespace (Namespaces in XML 1.0 §3)"
        )));
    }
    check_declarable(ns)?;
    check_chars(ns, "default namespace")
}

/// A namespace with `}` cannot be declared so that it reads back: the parsers refuse
/// it (it ends the namespace in an expanded name, and expat refuses it).
fn check_declarable(ns: &str) -> Result<(), TreeError> {
    if ns.contains('}') {
        return Err(bad(format!("namespace {ns:?} contains '}}'")));
    }
    Ok(())
}

/// [`serialize`], appending to `out` (reuse one buffer across calls to skip its
/// growth).  On error `out` holds a partial output after its previous content.
pub fn serialize_into<H: Handle>(
    out: &mut Vec<u8>,
    v: &dyn View<H>,
    default_ns: &str,
) -> Result<(), TreeError> {
    check_default_ns(default_ns)?;
    let mut s = Ser {
        out,
        k: 0,
        prefixes: Vec::new(),
        raw: true,
    };
    H::guarded(|g| s.element(g, v, default_ns, 0))
}

/// Serialize canonically, never reusing input bytes (for tests and comparisons).
pub fn serialize_canonical<H: Handle>(
    v: &dyn View<H>,
    default_ns: &str,
) -> Result<Vec<u8>, TreeError> {
    check_default_ns(default_ns)?;
    let mut out = Vec::with_capacity(256);
    let mut s = Ser {
        out: &mut out,
        k: 0,
        prefixes: Vec::new(),
        raw: false,
    };
    H::guarded(|g| s.element(g, v, default_ns, 0))?;
    Ok(out)
}

struct Ser<'o> {
    out: &'o mut Vec<u8>,
    k: usize,
    /// Prefixes declared by enclosing canonical start tags: (prefix, uri).
    prefixes: Vec<(String, String)>,
    raw: bool,
}

fn bad(msg: impl Into<String>) -> TreeError {
    TreeError::Value(msg.into())
}

fn check_chars(s: &str, what: &str) -> Result<(), TreeError> {
    match first_invalid_char(s) {
        None => Ok(()),
        Some(c) => Err(bad(format!(
            "{what} contains U+{:04X}, not allowed in XML",
            c as u32
        ))),
    }
}

// Byte classes of the escaping tables: `PLAIN` bytes are copied as they are, `1..=8`
// index `REPLACEMENT`, `CTRL` is a C0 control XML cannot carry, `EF` the lead byte of
// U+F000..U+FFFF (U+FFFE and U+FFFF are not `Char`s).
const PLAIN: u8 = 0;
const AMP: u8 = 1;
const LT: u8 = 2;
const GT: u8 = 3;
const APOS: u8 = 4;
const QUOT: u8 = 5;
const TAB: u8 = 6;
const LF: u8 = 7;
const CR: u8 = 8;
const CTRL: u8 = 9;
const EF: u8 = 10;

const REPLACEMENT: [&[u8]; 9] = [
    b"", b"&amp;", b"&lt;", b"&gt;", b"&apos;", b"&quot;", b"&#9;", b"&#10;", b"&#13;",
];

const fn escape_table(attr: bool) -> [u8; 256] {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = CTRL;
        i += 1;
    }
    t[b'&' as usize] = AMP;
    t[b'<' as usize] = LT;
    t[b'>' as usize] = GT;
    t[b'\r' as usize] = CR;
    t[0xEF] = EF;
    if attr {
        t[b'\'' as usize] = APOS;
        t[b'"' as usize] = QUOT;
        t[b'\t' as usize] = TAB;
        t[b'\n' as usize] = LF;
    } else {
        t[b'\t' as usize] = PLAIN;
        t[b'\n' as usize] = PLAIN;
    }
    t
}

/// Byte classes of character data.
static TEXT_CLASS: [u8; 256] = escape_table(false);
/// Byte classes of attribute values (written between single quotes).
static ATTR_CLASS: [u8; 256] = escape_table(true);

/// The length of the prefix of `b` made of `PLAIN` bytes, eight at a time.  (Table
/// lookups: LLVM does not turn byte-set tests into good vector code, and the strings
/// of a stanza are short.)
#[inline(always)]
fn plain_prefix<const ATTR: bool>(b: &[u8]) -> usize {
    let class = if ATTR { &ATTR_CLASS } else { &TEXT_CLASS };
    let mut i = 0;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let any = c.iter().fold(PLAIN, |m, &x| m | class[usize::from(x)]);
        if any != PLAIN {
            break;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if class[usize::from(c)] != PLAIN {
            break;
        }
        i += 1;
    }
    i
}

/// Append `s` escaped as text (`ATTR = false`) or as an attribute value; `what` names
/// it in errors.
#[inline]
fn escape<const ATTR: bool>(out: &mut Vec<u8>, s: &str, what: &str) -> Result<(), TreeError> {
    let class = if ATTR { &ATTR_CLASS } else { &TEXT_CLASS };
    let b = s.as_bytes();
    let mut i = plain_prefix::<ATTR>(b);
    if i == b.len() {
        out.extend_from_slice(b);
        return Ok(());
    }
    out.reserve(b.len() + 16);
    let mut run = 0;
    while let Some(&c) = b.get(i) {
        let k = class[usize::from(c)];
        if k == PLAIN {
            i += plain_prefix::<ATTR>(b.get(i..).unwrap_or_default()).max(1);
            continue;
        }
        if k == EF {
            // `EF BF BE` / `EF BF BF` are U+FFFE / U+FFFF; other `EF ..` are fine.
            if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) {
                return Err(escape_error(s, what));
            }
            i += 1;
            continue;
        }
        let Some(rep) = REPLACEMENT.get(usize::from(k)) else {
            return Err(escape_error(s, what));
        };
        out.extend_from_slice(b.get(run..i).unwrap_or_default());
        out.extend_from_slice(rep);
        i += 1;
        run = i;
    }
    out.extend_from_slice(b.get(run..).unwrap_or_default());
    Ok(())
}

/// The error for a string holding a character XML cannot carry: the first C0 control
/// if any, else the first other non-`Char`.
#[cold]
#[inline(never)]
fn escape_error(s: &str, what: &str) -> TreeError {
    let c = s
        .bytes()
        .find(|&c| c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r'))
        .map(char::from)
        .or_else(|| first_invalid_char(s))
        .unwrap_or('\0');
    bad(format!(
        "{what} contains U+{:04X}, not allowed in XML",
        c as u32
    ))
}

/// Append `s` escaped as character data.
#[inline]
pub fn escape_text(out: &mut Vec<u8>, s: &str) -> Result<(), TreeError> {
    if s.is_empty() {
        return Ok(());
    }
    escape::<false>(out, s, "text")
}

/// Append `s` escaped as an attribute value (between single quotes).
#[inline]
pub fn escape_attr(out: &mut Vec<u8>, s: &str) -> Result<(), TreeError> {
    escape::<true>(out, s, "attribute value")
}

/// `a == b`, without comparing bytes when both are the same string (the namespaces of
/// a tree's elements usually share one allocation).
#[inline]
fn same_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

/// Split an attribute key into (namespace, local name), validating it.
#[inline]
fn split_key(key: &str) -> Result<(Option<&str>, &str), TreeError> {
    let (ns, local) = match key.strip_prefix('{') {
        Some(rest) => {
            let close = memchr(b'}', rest.as_bytes())
                .ok_or_else(|| bad(format!("bad attribute key {key:?}")))?;
            let (ns, local) = rest.split_at(close);
            let local = local.get(1..).unwrap_or_default();
            if ns.is_empty() || ns == NS_XMLNS {
                return Err(bad(format!("bad attribute namespace in {key:?}")));
            }
            if ns != NS_XML {
                check_chars(ns, "namespace")?;
            }
            (Some(ns), local)
        }
        None => (None, key),
    };
    if !is_ncname(local) || (ns.is_none() && local == "xmlns") {
        return Err(bad(format!("bad attribute name {key:?}")));
    }
    Ok((ns, local))
}

impl Ser<'_> {
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

    /// Write `v` (generic so that a materialized element is read without dynamic
    /// calls; `V = dyn View<H>` serves the other views).
    fn element<H: Handle, V: View<H> + ?Sized>(
        &mut self,
        g: H::Guard<'_>,
        v: &V,
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
        // The `xml` prefix is bound in every scope (Namespaces in XML 1.0 §3): an element
        // in its namespace is written with it, and its children keep the default in scope.
        let in_xml = ns == NS_XML;
        self.out.push(b'<');
        if in_xml {
            self.out.extend_from_slice(b"xml:");
        }
        self.out.extend_from_slice(name.as_bytes());
        if !in_xml && !same_str(ns, default) {
            if ns == NS_XMLNS {
                return Err(bad(format!("namespace {ns} cannot be declared")));
            }
            check_declarable(ns)?;
            self.out.extend_from_slice(b" xmlns='");
            if let Err(e) = escape::<true>(self.out, ns, "namespace") {
                return Err(check_chars(ns, "namespace").err().unwrap_or(e));
            }
            self.out.push(b'\'');
        }
        let mark = self.prefixes.len();
        let attrs = v.attrs_ref();
        let inner = if in_xml { default } else { ns };
        let r = self
            .attributes(&attrs)
            .and_then(|()| self.content(g, v, (in_xml, name), inner, depth));
        self.prefixes.truncate(mark);
        r
    }

    /// The namespace declarations the attributes need, then the attributes.
    fn attributes(&mut self, attrs: &AttrsRef<'_>) -> Result<(), TreeError> {
        if attrs.has_clark_keys() {
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
                escape_attr(self.out, ans)?;
                self.out.push(b'\'');
                self.prefixes.push((p, ans.to_owned()));
            }
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
            escape_attr(self.out, value)?;
            self.out.push(b'\'');
        }
        Ok(())
    }

    fn content<H: Handle, V: View<H> + ?Sized>(
        &mut self,
        g: H::Guard<'_>,
        v: &V,
        name: (bool, &str),
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
        if let Some(handles) = v.handles() {
            // Materialized children: visit them in place.
            if text.is_empty() && handles.is_empty() {
                self.out.extend_from_slice(b"/>");
                return Ok(());
            }
            self.out.push(b'>');
            escape_text(self.out, &text)?;
            for h in handles {
                h.read_in(g, |c| -> Result<(), TreeError> {
                    self.element(g, c, ns, depth + 1)?;
                    escape_text(self.out, c.tail())
                })??;
            }
        } else {
            let children = v.children_list()?;
            if text.is_empty() && children.is_empty() {
                self.out.extend_from_slice(b"/>");
                return Ok(());
            }
            self.out.push(b'>');
            escape_text(self.out, &text)?;
            for c in &children {
                with_child(c, |c| -> Result<(), TreeError> {
                    self.element(g, c, ns, depth + 1)?;
                    escape_text(self.out, c.tail())
                })??;
            }
        }
        self.end_tag(name);
        Ok(())
    }

    /// `</name>`, or `</xml:name>` for an element in the `xml` namespace.
    fn end_tag(&mut self, (in_xml, name): (bool, &str)) {
        self.out.extend_from_slice(b"</");
        if in_xml {
            self.out.extend_from_slice(b"xml:");
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }
}

/// Whether `c` may appear in XML text (re-exported for the glue's validation).
pub fn valid_char(c: char) -> bool {
    is_xml_char(c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Element, Node};

    fn text(s: &str) -> Result<String, TreeError> {
        let mut out = b"x".to_vec();
        escape_text(&mut out, s)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    fn attr(s: &str) -> Result<String, TreeError> {
        let mut out = b"x".to_vec();
        escape_attr(&mut out, s)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    fn err(r: Result<String, TreeError>) -> String {
        match r {
            Err(TreeError::Value(m)) => m,
            other => panic!("expected a value error, got {other:?}"),
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(text("").unwrap(), "x");
        assert_eq!(
            text("plain text, long enough for chunks").unwrap(),
            "xplain text, long enough for chunks"
        );
        assert_eq!(
            text("a & b < c > d ' \" \r\n\t]]>").unwrap(),
            "xa &amp; b &lt; c &gt; d ' \" &#13;\n\t]]&gt;"
        );
        assert_eq!(
            attr("a & b < c > d ' \" \r\n\t").unwrap(),
            "xa &amp; b &lt; c &gt; d &apos; &quot; &#13;&#10;&#9;"
        );
        assert_eq!(text("0123456789abcdef&").unwrap(), "x0123456789abcdef&amp;");
        assert_eq!(attr("&0123456789abcdef").unwrap(), "x&amp;0123456789abcdef");
        let mixed = "caf\u{e9} \u{f000}\u{fffd}\u{efff}\u{1f600} \u{ff21}<";
        assert_eq!(
            text(mixed).unwrap(),
            format!("x{}&lt;", &mixed[..mixed.len() - 1])
        );
        assert_eq!(attr("\u{fffd}").unwrap(), "x\u{fffd}");
    }

    #[test]
    fn escaping_errors() {
        assert_eq!(
            err(text("ok\u{1}")),
            "text contains U+0001, not allowed in XML"
        );
        assert_eq!(
            err(text("0123456789\u{FFFE}")),
            "text contains U+FFFE, not allowed in XML"
        );
        assert_eq!(
            err(attr("\u{FFFF}")),
            "attribute value contains U+FFFF, not allowed in XML"
        );
        assert_eq!(
            err(attr("\t\u{FFFF}\u{0}")),
            "attribute value contains U+0000, not allowed in XML"
        );
        assert_eq!(
            err(text("\u{FFFF}a\u{1f}")),
            "text contains U+001F, not allowed in XML"
        );
    }

    fn el(name: &str, ns: &str, attrs: &[(&str, &str)], text: &str, tail: &str) -> Node {
        let attrs = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Node::wrap(Element::new(name, ns, attrs, text.into(), tail.into())).expect("wrap")
    }

    fn ser(n: &Node, ns: &str) -> String {
        let out = n
            .read(|e| serialize(e, ns))
            .expect("read")
            .expect("serialize");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn canonical_tree() {
        let msg = el(
            "message",
            "jabber:client",
            &[("to", "a@b"), ("type", "chat")],
            "",
            "",
        );
        let body = el("body", "jabber:client", &[], "hi & bye", "");
        let x = el(
            "x",
            "urn:x",
            &[
                ("{urn:a}k", "1"),
                ("{http://www.w3.org/XML/1998/namespace}lang", "en"),
            ],
            "",
            "tail",
        );
        let y = el(
            "y",
            "urn:x",
            &[("{urn:a}k", "2"), ("{urn:b}k", "3")],
            "",
            "",
        );
        x.write(|e| e.append(y)).unwrap().unwrap();
        msg.write(|e| e.append(body)).unwrap().unwrap();
        msg.write(|e| e.append(x)).unwrap().unwrap();
        let want = "<message to='a@b' type='chat'><body>hi &amp; bye</body><x xmlns='urn:x' \
                    xmlns:ns0='urn:a' ns0:k='1' xml:lang='en'><y xmlns:ns1='urn:b' ns0:k='2' \
                    ns1:k='3'/></x>tail</message>";
        assert_eq!(ser(&msg, "jabber:client"), want);
        assert_eq!(
            ser(&msg, "jabber:server"),
            want.replacen("<message ", "<message xmlns='jabber:client' ", 1)
        );
        let mut buf = b"keep".to_vec();
        msg.read(|e| serialize_into(&mut buf, e, "jabber:client"))
            .unwrap()
            .unwrap();
        assert_eq!(
            buf,
            [b"keep".as_slice(), ser(&msg, "jabber:client").as_bytes()].concat()
        );
    }

    #[test]
    fn canonical_errors() {
        let bad_name = el("a b", "", &[], "", "");
        assert!(bad_name.read(|e| serialize(e, "")).unwrap().is_err());
        let bad_key = el("a", "", &[("xmlns", "v")], "", "");
        assert!(bad_key.read(|e| serialize(e, "")).unwrap().is_err());
        let bad_ns = el(
            "a",
            "",
            &[("{http://www.w3.org/2000/xmlns/}k", "v")],
            "",
            "",
        );
        assert!(bad_ns.read(|e| serialize(e, "")).unwrap().is_err());
        let bad_tail = el("a", "", &[], "", "");
        bad_tail.write(|e| e.set_tail("\u{1}".into())).unwrap();
        let parent = el("p", "", &[], "", "");
        parent.write(|e| e.append(bad_tail)).unwrap().unwrap();
        assert!(parent.read(|e| serialize(e, "")).unwrap().is_err());
    }

    #[test]
    fn an_element_in_the_xml_namespace_is_written_with_its_bound_prefix() {
        // Namespaces in XML 1.0 §3: `xml` is bound everywhere, so `<xml:foo/>` parses
        // and must be writable; its children keep the default namespace in scope.
        let child = el("body", "jabber:client", &[], "x", "");
        let foo = el("foo", NS_XML, &[("k", "v")], "", "");
        foo.write(|e| e.append(child)).unwrap().unwrap();
        let msg = el("message", "jabber:client", &[], "", "");
        msg.write(|e| e.append(foo)).unwrap().unwrap();
        assert_eq!(
            ser(&msg, "jabber:client"),
            "<message><xml:foo k='v'><body>x</body></xml:foo></message>"
        );
        let bare = el("foo", NS_XML, &[], "", "");
        assert_eq!(ser(&bare, "urn:other"), "<xml:foo/>");
        let xmlns = el("foo", NS_XMLNS, &[], "", "");
        assert!(xmlns.read(|e| serialize(e, "")).unwrap().is_err());
    }

    #[test]
    fn reserved_or_unwritable_default_namespaces_are_refused() {
        for ns in [NS_XML, NS_XMLNS, "urn:\u{1}"] {
            assert!(check_default_ns(ns).is_err(), "{ns}");
            // an element in it would otherwise be written with no declaration at all
            let e = el("a", ns, &[], "", "");
            assert!(e.read(|e| serialize(e, ns)).unwrap().is_err(), "{ns}");
        }
        assert!(check_default_ns("").is_ok());
        assert!(check_default_ns("jabber:client").is_ok());
    }
}
