//! The element model of `_api.py` (ElementTree-like: name, namespace, attributes,
//! text, tail, children) with lazy children (DESIGN.md §2).
//!
//! A parsed element holds its [`Raw`] bytes; its text and children are decoded from
//! them only when asked.  Children, once materialized, are *handles* (`H`): shared,
//! mutable objects (a Python object in the PyO3 glue, `Rc<RefCell<_>>` in [`Node`]),
//! so a change made through a child is seen by its parent.  Dirty flags record what
//! changed so the serializer can still reuse the input bytes of unchanged spans.
//!
//! Trees built by hand are laid out for the serializer's walk, which is bound by memory
//! accesses more than by instructions: names and namespaces are shared `Arc<str>`s (a
//! roster's thousands of `item`s point to one copy), attributes are packed in one
//! string ([`AttrList`]) until changed, and the bookkeeping of parsed input is boxed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use super::decode::{self, Item, StartTag};
use super::error::TreeError;
use super::parser::Stanza;
use super::raw::Raw;
use super::MAX_TREE_DEPTH;

/// A shared, mutable reference to an element (a child list entry).
pub trait Handle: Sized {
    /// What reading handles needs, obtained once for a whole walk (the GIL token for
    /// Python objects, `()` for [`Node`]), so that [`read_in`](Handle::read_in) does
    /// not have to obtain it again for every child.
    type Guard<'g>: Copy;
    /// Run `f` with a guard.
    fn guarded<R>(f: impl for<'g> FnOnce(Self::Guard<'g>) -> R) -> R;
    /// Allocate a handle owning `e`.
    fn wrap(e: Element<Self>) -> Result<Self, TreeError>;
    /// Run `f` on the element (shared borrow).
    fn read<R>(&self, f: impl FnOnce(&Element<Self>) -> R) -> Result<R, TreeError> {
        Self::guarded(|g| self.read_in(g, f))
    }
    /// [`read`](Handle::read) under a guard already held.
    fn read_in<R>(
        &self,
        g: Self::Guard<'_>,
        f: impl FnOnce(&Element<Self>) -> R,
    ) -> Result<R, TreeError>;
    /// Run `f` on the element (exclusive borrow).
    fn write<R>(&self, f: impl FnOnce(&mut Element<Self>) -> R) -> Result<R, TreeError>;
    /// Whether both handles refer to the same element.
    fn same(&self, other: &Self) -> bool;
    /// Another handle to the same element.
    fn share(&self) -> Self;
}

/// An attribute of a parsed stanza, still in the input bytes: decoded on access.
#[derive(Debug, Clone)]
pub struct LazyAttr {
    /// The Clark key of a namespaced attribute (`None`: the key is the raw name).
    pub clark: Option<Box<str>>,
    /// Range of the raw name in the stanza's bytes.
    pub name: (usize, usize),
    /// Range of the raw value (between the quotes).
    pub value: (usize, usize),
    /// Whether the raw value needs decoding (references, TAB/LF/CR).
    pub decode: bool,
}

/// Attributes: lazily decoded from the input (parsed stanzas, until changed), packed
/// (built by hand, until changed) or owned.
#[derive(Debug, Clone)]
enum Attrs {
    Lazy(Vec<LazyAttr>),
    Packed(PackedAttrs),
    Owned(Vec<(String, String)>),
}

/// An attribute list under construction, for [`Element::with_attr_list`]: keys and
/// values appended to one string.
#[derive(Debug, Clone, Default)]
pub struct AttrList {
    text: String,
    ends: Vec<u32>,
    /// Whether a key is in Clark notation (`{uri}local`).
    clark: bool,
    /// Set when the text outgrew `u32` offsets (then `pairs` holds everything).
    pairs: Option<Vec<(String, String)>>,
}

impl AttrList {
    /// An empty list with room for `attrs` attributes.
    pub fn with_capacity(attrs: usize) -> Self {
        AttrList {
            text: String::with_capacity(attrs * 16),
            ends: Vec::with_capacity(attrs * 2),
            clark: false,
            pairs: None,
        }
    }

    /// Append an attribute; the caller keeps keys unique.
    pub fn push(&mut self, key: &str, value: &str) {
        self.clark |= key.starts_with('{');
        if let Some(pairs) = &mut self.pairs {
            pairs.push((key.to_owned(), value.to_owned()));
            return;
        }
        let k = self.text.len() + key.len();
        let v = k + value.len();
        match (u32::try_from(k), u32::try_from(v)) {
            (Ok(k), Ok(v)) => {
                self.text.push_str(key);
                self.text.push_str(value);
                self.ends.push(k);
                self.ends.push(v);
            }
            _ => {
                let mut pairs = packed_pairs(&self.text, &self.ends).collect::<Vec<_>>();
                pairs.push((key, value));
                self.pairs = Some(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                );
            }
        }
    }

    fn into_attrs(self) -> Attrs {
        match self.pairs {
            Some(pairs) => Attrs::Owned(pairs),
            None => Attrs::Packed(PackedAttrs {
                text: self.text.into_boxed_str(),
                ends: self.ends.into_boxed_slice(),
                clark: self.clark,
            }),
        }
    }
}

/// Attributes built by hand, packed: keys and values back to back in one string, with
/// the end offset of each key and each value.  A walk over a tree (serializing) then
/// reads two allocations per element instead of one per key and per value.
#[derive(Debug, Clone)]
struct PackedAttrs {
    text: Box<str>,
    ends: Box<[u32]>,
    clark: bool,
}

/// The (key, value) pairs of a packed list.
fn packed_pairs<'a>(text: &'a str, ends: &'a [u32]) -> PackedIter<'a> {
    PackedIter {
        text,
        ends: ends.chunks_exact(2),
        start: 0,
    }
}

/// Iterator over packed attributes.
#[derive(Debug, Clone)]
pub struct PackedIter<'a> {
    text: &'a str,
    ends: std::slice::ChunksExact<'a, u32>,
    start: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a str, &'a str);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let e = self.ends.next()?;
        let (k, v) = match e {
            [k, v] => (*k as usize, *v as usize),
            _ => return None,
        };
        let key = self.text.get(self.start..k).unwrap_or_default();
        let value = self.text.get(k..v).unwrap_or_default();
        self.start = v;
        Some((key, value))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

/// Attributes as [`View::attrs_ref`] gives them: pairs, or a packed list read in place.
#[derive(Debug)]
pub enum AttrsRef<'a> {
    /// Key/value pairs (Clark keys for namespaced attributes).
    Pairs(Cow<'a, [(String, String)]>),
    /// A packed list, and whether a key is in Clark notation.
    Packed(PackedIter<'a>, bool),
}

impl AttrsRef<'_> {
    /// The (key, value) pairs in order.
    #[inline]
    pub fn iter(&self) -> AttrIter<'_> {
        match self {
            AttrsRef::Pairs(p) => AttrIter::Pairs(p.iter()),
            AttrsRef::Packed(it, _) => AttrIter::Packed(it.clone()),
        }
    }

    /// Whether a key is in Clark notation (`{uri}local`: a namespaced attribute).
    #[inline]
    pub fn has_clark_keys(&self) -> bool {
        match self {
            AttrsRef::Pairs(p) => p.iter().any(|(k, _)| k.starts_with('{')),
            AttrsRef::Packed(_, clark) => *clark,
        }
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        match self {
            AttrsRef::Pairs(p) => p.len(),
            AttrsRef::Packed(it, _) => it.size_hint().0,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Iterator over [`AttrsRef`].
#[derive(Debug, Clone)]
pub enum AttrIter<'a> {
    /// Over pairs.
    Pairs(std::slice::Iter<'a, (String, String)>),
    /// Over a packed list.
    Packed(PackedIter<'a>),
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = (&'a str, &'a str);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            AttrIter::Pairs(it) => it.next().map(|(k, v)| (k.as_str(), v.as_str())),
            AttrIter::Packed(it) => it.next(),
        }
    }
}

fn lazy_key<'a>(buf: &'a [u8], a: &'a LazyAttr) -> &'a str {
    match &a.clark {
        Some(k) => k,
        None => match buf.get(a.name.0..a.name.1).map(std::str::from_utf8) {
            Some(Ok(k)) => k,
            _ => "",
        },
    }
}

fn lazy_value<'a>(buf: &'a [u8], a: &LazyAttr) -> Cow<'a, str> {
    let raw = buf.get(a.value.0..a.value.1).unwrap_or(&[]);
    if a.decode {
        decode::attr_value(raw)
    } else {
        decode::utf8(raw)
    }
}

const START: u8 = 1;
const TEXT: u8 = 2;
const CHILDREN: u8 = 4;
const TAIL: u8 = 8;

/// An element; see the module documentation.
///
/// Kept small (the input bytes' bookkeeping is boxed): a serializer walk reads every
/// element of a tree, and in the PyO3 glue the borrow flag follows these fields, so
/// each line saved is one memory access less per element.
#[derive(Debug)]
pub struct Element<H> {
    name: Arc<str>,
    ns: Arc<str>,
    attrs: Attrs,
    /// `None`: derived from `raw` (the empty string when there is no raw).
    text: Option<String>,
    tail: String,
    /// `None`: not materialized yet (decoded from `raw` on demand).
    children: Option<Vec<H>>,
    raw: Option<Box<Raw>>,
    dirty: u8,
}

/// A not-yet-materialized child seen through its parent's bytes.
#[derive(Debug, Clone)]
pub struct RawView {
    tag: StartTag,
    raw: Raw,
    tail: String,
}

/// A child as listed by [`View::children_list`].  (Short-lived, built in a list once
/// per walk: boxing the raw variant would only add an allocation per child.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ChildRef<H> {
    /// A materialized child.
    Handle(H),
    /// A child decoded for the occasion from raw bytes.
    Raw(RawView),
}

/// Read access shared by materialized elements and [`RawView`]s.
pub trait View<H> {
    /// Local name.
    fn name(&self) -> &str;
    /// Namespace URI (`""` for none).
    fn namespace(&self) -> &str;
    /// Attributes in order (Clark keys for namespaced ones).
    fn attrs(&self) -> Cow<'_, [(String, String)]>;
    /// The same, read in place where possible (no copies of packed attributes).
    fn attrs_ref(&self) -> AttrsRef<'_> {
        AttrsRef::Pairs(self.attrs())
    }
    /// Text before the first child.
    fn text(&self) -> Cow<'_, str>;
    /// Text after the element, inside its parent.
    fn tail(&self) -> &str;
    /// The children, in order.
    fn children_list(&self) -> Result<Vec<ChildRef<H>>, TreeError>;
    /// The children when they are materialized handles (`None`: use
    /// [`children_list`](View::children_list)); lets a walk visit them in place.
    fn handles(&self) -> Option<&[H]> {
        None
    }
    /// The input bytes, if parsed.
    fn raw(&self) -> Option<&Raw>;
    /// Whether the whole span (start tag to end tag) is unchanged since parsing.
    fn span_clean(&self, depth: usize) -> Result<bool, TreeError>;
    /// Whether the content (text and children with their tails) is unchanged.
    fn content_clean(&self, depth: usize) -> Result<bool, TreeError>;
    /// Whether the tail is the one parsed with the element.
    fn tail_clean(&self) -> bool;
}

/// Run `f` on a child, whatever its kind.
pub fn with_child<H: Handle, R>(
    c: &ChildRef<H>,
    f: impl FnOnce(&dyn View<H>) -> R,
) -> Result<R, TreeError> {
    match c {
        ChildRef::Handle(h) => h.read(|e| f(e)),
        ChildRef::Raw(r) => Ok(f(r)),
    }
}

fn raw_children<H>(raw: &Raw) -> Vec<ChildRef<H>> {
    let mut out: Vec<ChildRef<H>> = Vec::new();
    for item in raw.items() {
        match item {
            Item::Child(s, e) => {
                if let Some((tag, r)) = raw.child(s, e) {
                    out.push(ChildRef::Raw(RawView {
                        tag,
                        raw: r,
                        tail: String::new(),
                    }));
                }
            }
            Item::Text(s, e) => {
                if let Some(ChildRef::Raw(last)) = out.last_mut() {
                    decode::decode_text(&raw.buf, s, e, &mut last.tail);
                }
            }
        }
    }
    out
}

impl<H: Handle> View<H> for RawView {
    fn name(&self) -> &str {
        &self.tag.name
    }
    fn namespace(&self) -> &str {
        &self.tag.ns
    }
    fn attrs(&self) -> Cow<'_, [(String, String)]> {
        Cow::Borrowed(&self.tag.attrs)
    }
    fn text(&self) -> Cow<'_, str> {
        Cow::Owned(self.raw.text())
    }
    fn tail(&self) -> &str {
        &self.tail
    }
    fn children_list(&self) -> Result<Vec<ChildRef<H>>, TreeError> {
        Ok(raw_children(&self.raw))
    }
    fn raw(&self) -> Option<&Raw> {
        Some(&self.raw)
    }
    fn span_clean(&self, _depth: usize) -> Result<bool, TreeError> {
        Ok(true)
    }
    fn content_clean(&self, _depth: usize) -> Result<bool, TreeError> {
        Ok(true)
    }
    fn tail_clean(&self) -> bool {
        true
    }
}

impl RawView {
    /// Turn into an element (its children stay lazy).
    pub fn into_element<H: Handle>(self) -> Element<H> {
        Element::from_raw(self.tag, self.raw, self.tail)
    }
}

impl<H: Handle> View<H> for Element<H> {
    fn name(&self) -> &str {
        &self.name
    }
    fn namespace(&self) -> &str {
        &self.ns
    }
    fn attrs(&self) -> Cow<'_, [(String, String)]> {
        Element::attrs(self)
    }
    #[inline]
    fn attrs_ref(&self) -> AttrsRef<'_> {
        match &self.attrs {
            Attrs::Packed(p) => AttrsRef::Packed(packed_pairs(&p.text, &p.ends), p.clark),
            Attrs::Owned(v) => AttrsRef::Pairs(Cow::Borrowed(v)),
            Attrs::Lazy(v) => AttrsRef::Pairs(Cow::Owned(self.decode_lazy(v))),
        }
    }
    fn text(&self) -> Cow<'_, str> {
        Element::text(self)
    }
    fn tail(&self) -> &str {
        &self.tail
    }
    fn children_list(&self) -> Result<Vec<ChildRef<H>>, TreeError> {
        match (&self.children, &self.raw) {
            (Some(c), _) => Ok(c.iter().map(|h| ChildRef::Handle(h.share())).collect()),
            (None, Some(raw)) => Ok(raw_children(raw)),
            (None, None) => Ok(Vec::new()),
        }
    }
    fn handles(&self) -> Option<&[H]> {
        self.children.as_deref()
    }
    fn raw(&self) -> Option<&Raw> {
        self.raw.as_deref()
    }
    fn span_clean(&self, depth: usize) -> Result<bool, TreeError> {
        Ok(self.dirty & START == 0 && self.content_clean(depth)?)
    }
    fn content_clean(&self, depth: usize) -> Result<bool, TreeError> {
        if self.raw.is_none() || self.dirty & (TEXT | CHILDREN) != 0 {
            return Ok(false);
        }
        if depth > MAX_TREE_DEPTH {
            return Err(TreeError::TooDeep);
        }
        if let Some(children) = &self.children {
            for c in children {
                if !c
                    .read(|e| Ok::<bool, TreeError>(e.tail_clean() && e.span_clean(depth + 1)?))??
                {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
    fn tail_clean(&self) -> bool {
        self.dirty & TAIL == 0
    }
}

/// Names and namespace URIs of hand-built elements worth sharing (longer ones are
/// copied).
const SHARED_MAX_LEN: usize = 256;
/// Slots of the shared-string cache: stanzas use a few dozen namespaces and a few
/// hundred element names.
const SHARED_SLOTS: usize = 512;

/// `s` (an element name or namespace) as an `Arc<str>`, shared with earlier elements
/// through a small direct-mapped cache: one copy of `item` and `jabber:client` for a
/// whole roster stays in the CPU cache, where a copy per element costs a memory access
/// per element when serializing (or comparing names).
fn shared(s: &str) -> Arc<str> {
    static CACHE: Mutex<Vec<Option<Arc<str>>>> = Mutex::new(Vec::new());
    if s.is_empty() {
        return decode::empty_arc();
    }
    if s.len() > SHARED_MAX_LEN {
        return Arc::from(s);
    }
    // FNV-1a.
    let mut h: u32 = 0x811c_9dc5;
    for &b in s.as_bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let Ok(mut cache) = CACHE.lock() else {
        return Arc::from(s);
    };
    if cache.is_empty() {
        cache.resize(SHARED_SLOTS, None);
    }
    match cache.get_mut(h as usize % SHARED_SLOTS) {
        Some(Some(a)) if **a == *s => a.clone(),
        Some(slot) => slot.insert(Arc::from(s)).clone(),
        None => Arc::from(s),
    }
}

impl<H: Handle> Element<H> {
    /// A new element built by hand (no raw bytes).
    pub fn new(
        name: &str,
        namespace: &str,
        attrs: Vec<(String, String)>,
        text: String,
        tail: String,
    ) -> Self {
        Element {
            name: shared(name),
            ns: shared(namespace),
            attrs: Attrs::Owned(attrs),
            text: Some(text),
            tail,
            children: Some(Vec::new()),
            raw: None,
            dirty: 0,
        }
    }

    /// [`new`](Element::new) with the attributes packed (the compact form for trees
    /// built by hand: see [`AttrList`]).
    pub fn with_attr_list(
        name: &str,
        namespace: &str,
        attrs: AttrList,
        text: String,
        tail: String,
    ) -> Self {
        Element {
            name: shared(name),
            ns: shared(namespace),
            attrs: attrs.into_attrs(),
            text: Some(text),
            tail,
            children: Some(Vec::new()),
            raw: None,
            dirty: 0,
        }
    }

    /// A parsed stanza (children and text stay in its bytes until asked for).
    pub fn from_stanza(s: Stanza) -> Self {
        Element {
            name: s.name,
            ns: s.namespace,
            attrs: Attrs::Lazy(s.attrs),
            text: None,
            tail: String::new(),
            children: None,
            raw: Some(Box::new(s.raw)),
            dirty: 0,
        }
    }

    fn from_raw(tag: StartTag, raw: Raw, tail: String) -> Self {
        Element {
            name: tag.name,
            ns: tag.ns,
            attrs: Attrs::Owned(tag.attrs),
            text: None,
            tail,
            children: None,
            raw: Some(Box::new(raw)),
            dirty: 0,
        }
    }

    /// Local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Namespace URI.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Clark notation `{ns}name` (just `name` without a namespace).
    pub fn tag(&self) -> String {
        if self.ns.is_empty() {
            self.name.to_string()
        } else {
            format!("{{{}}}{}", self.ns, self.name)
        }
    }

    fn raw_buf(&self) -> &[u8] {
        self.raw.as_ref().map_or(&[], |r| &r.buf[..])
    }

    fn decode_lazy(&self, v: &[LazyAttr]) -> Vec<(String, String)> {
        let buf = self.raw_buf();
        v.iter()
            .map(|a| (lazy_key(buf, a).to_owned(), lazy_value(buf, a).into_owned()))
            .collect()
    }

    fn unpack(p: &PackedAttrs) -> Vec<(String, String)> {
        packed_pairs(&p.text, &p.ends)
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Attributes in document order (a copy for packed attributes: see
    /// [`View::attrs_ref`]).
    pub fn attrs(&self) -> Cow<'_, [(String, String)]> {
        match &self.attrs {
            Attrs::Owned(v) => Cow::Borrowed(v),
            Attrs::Packed(p) => Cow::Owned(Self::unpack(p)),
            Attrs::Lazy(v) => Cow::Owned(self.decode_lazy(v)),
        }
    }

    /// The number of attributes.
    pub fn attr_count(&self) -> usize {
        match &self.attrs {
            Attrs::Owned(v) => v.len(),
            Attrs::Packed(p) => p.ends.len() / 2,
            Attrs::Lazy(v) => v.len(),
        }
    }

    /// The value of attribute `key`.
    pub fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        match &self.attrs {
            Attrs::Owned(v) => v
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Cow::Borrowed(&**v)),
            Attrs::Packed(p) => packed_pairs(&p.text, &p.ends)
                .find(|(k, _)| *k == key)
                .map(|(_, v)| Cow::Borrowed(v)),
            Attrs::Lazy(v) => {
                let buf = self.raw_buf();
                v.iter()
                    .find(|a| lazy_key(buf, a) == key)
                    .map(|a| lazy_value(buf, a))
            }
        }
    }

    /// Run `f` on the attributes made owned (the first change decodes them).
    fn with_owned<R>(&mut self, f: impl FnOnce(&mut Vec<(String, String)>) -> R) -> R {
        let mut v = match std::mem::replace(&mut self.attrs, Attrs::Owned(Vec::new())) {
            Attrs::Owned(v) => v,
            Attrs::Packed(p) => Self::unpack(&p),
            Attrs::Lazy(l) => self.decode_lazy(&l),
        };
        let r = f(&mut v);
        self.attrs = Attrs::Owned(v);
        r
    }

    /// Set attribute `key` (replacing its value in place, or appending it).
    pub fn set(&mut self, key: &str, value: String) {
        self.dirty |= START;
        self.with_owned(|attrs| match attrs.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => attrs.push((key.to_owned(), value)),
        });
    }

    /// Remove attribute `key`, returning its value.
    pub fn pop_attr(&mut self, key: &str) -> Option<String> {
        let v = self.with_owned(|attrs| {
            let i = attrs.iter().position(|(k, _)| k == key)?;
            Some(attrs.remove(i).1)
        });
        if v.is_some() {
            self.dirty |= START;
        }
        v
    }

    /// Text before the first child.
    pub fn text(&self) -> Cow<'_, str> {
        match (&self.text, &self.raw) {
            (Some(t), _) => Cow::Borrowed(t),
            (None, Some(raw)) => Cow::Owned(raw.text()),
            (None, None) => Cow::Borrowed(""),
        }
    }

    /// Replace the text.
    pub fn set_text(&mut self, text: String) {
        self.dirty |= TEXT;
        self.text = Some(text);
    }

    /// Text after the element inside its parent.
    pub fn tail(&self) -> &str {
        &self.tail
    }

    /// Replace the tail.
    pub fn set_tail(&mut self, tail: String) {
        self.dirty |= TAIL;
        self.tail = tail;
    }

    /// Whether the children are still only in the raw bytes.
    pub fn is_lazy(&self) -> bool {
        self.children.is_none()
    }

    /// Whether this element was parsed (holds input bytes).
    pub fn has_raw(&self) -> bool {
        self.raw.is_some()
    }

    /// The children, materialized as handles (decoding them the first time).
    pub fn children_mut(&mut self) -> Result<&mut Vec<H>, TreeError> {
        if self.children.is_none() {
            let list = match &self.raw {
                Some(raw) => raw_children::<H>(raw),
                None => Vec::new(),
            };
            let mut out = Vec::with_capacity(list.len());
            for c in list {
                if let ChildRef::Raw(v) = c {
                    out.push(H::wrap(v.into_element())?);
                }
            }
            self.children = Some(out);
        }
        Ok(self.children.get_or_insert_with(Vec::new))
    }

    /// The number of children.
    pub fn len(&mut self) -> Result<usize, TreeError> {
        Ok(self.children_mut()?.len())
    }

    /// Whether there are no children.
    pub fn is_empty(&mut self) -> Result<bool, TreeError> {
        Ok(self.len()? == 0)
    }

    /// The child at `index` (negative counts from the end).
    pub fn child(&mut self, index: isize) -> Result<H, TreeError> {
        let c = self.children_mut()?;
        let i = if index < 0 {
            index + c.len() as isize
        } else {
            index
        };
        usize::try_from(i)
            .ok()
            .and_then(|i| c.get(i))
            .map(Handle::share)
            .ok_or(TreeError::Index)
    }

    /// Handles to all children.
    pub fn children(&mut self) -> Result<Vec<H>, TreeError> {
        Ok(self.children_mut()?.iter().map(Handle::share).collect())
    }

    /// Append a child.
    pub fn append(&mut self, child: H) -> Result<(), TreeError> {
        self.children_mut()?.push(child);
        self.dirty |= CHILDREN;
        Ok(())
    }

    /// Insert a child before `index` (clamped like `list.insert`).
    pub fn insert(&mut self, index: isize, child: H) -> Result<(), TreeError> {
        let c = self.children_mut()?;
        let n = c.len() as isize;
        let i = if index < 0 {
            (index + n).max(0)
        } else {
            index.min(n)
        };
        c.insert(i as usize, child);
        self.dirty |= CHILDREN;
        Ok(())
    }

    /// Remove the first child that is `child` (identity); `false` if none.
    pub fn remove(&mut self, child: &H) -> Result<bool, TreeError> {
        let c = self.children_mut()?;
        match c.iter().position(|h| h.same(child)) {
            Some(i) => {
                c.remove(i);
                self.dirty |= CHILDREN;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Remove all children.
    pub fn clear_children(&mut self) {
        self.children = Some(Vec::new());
        self.dirty |= CHILDREN;
    }

    /// Children matching `tag` (`{ns}name`, or `name` in this element's namespace).
    pub fn findall(&mut self, tag: &str, first_only: bool) -> Result<Vec<H>, TreeError> {
        let (ns, name): (String, &str) = match tag.strip_prefix('{').and_then(|t| t.split_once('}'))
        {
            Some((ns, name)) => (ns.to_owned(), name),
            None => (self.ns.to_string(), tag),
        };
        let mut out = Vec::new();
        for c in self.children_mut()?.iter() {
            if c.read(|e| *e.name == *name && *e.ns == *ns)? {
                out.push(c.share());
                if first_only {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The namespace of the first child element (an iq's payload), without
    /// materializing the children.
    pub fn first_child_namespace(&self) -> Result<Option<String>, TreeError> {
        match (&self.children, &self.raw) {
            (Some(c), _) => match c.first() {
                Some(h) => h.read(|e| Some(e.ns.to_string())),
                None => Ok(None),
            },
            (None, Some(raw)) => {
                for item in raw.items() {
                    if let Item::Child(s, _) = item {
                        return Ok(decode::start_tag_name(&raw.buf, s, &raw.inner)
                            .map(|(ns, _)| ns.to_string()));
                    }
                }
                Ok(None)
            }
            (None, None) => Ok(None),
        }
    }

    /// A deep copy (sharing the immutable input bytes).
    pub fn deep_copy(&self, depth: usize) -> Result<Self, TreeError> {
        if depth > MAX_TREE_DEPTH {
            return Err(TreeError::TooDeep);
        }
        let children = match &self.children {
            None => None,
            Some(c) => {
                let mut out = Vec::with_capacity(c.len());
                for h in c {
                    let e = h.read(|e| e.deep_copy(depth + 1))??;
                    out.push(H::wrap(e)?);
                }
                Some(out)
            }
        };
        Ok(Element {
            name: self.name.clone(),
            ns: self.ns.clone(),
            attrs: self.attrs.clone(),
            text: self.text.clone(),
            tail: self.tail.clone(),
            children,
            raw: self.raw.clone(),
            dirty: self.dirty,
        })
    }
}

/// Structural equality (`_api.py`): name, namespace, attributes as a mapping, text,
/// tail and children, recursively.
pub fn equal<H: Handle>(a: &dyn View<H>, b: &dyn View<H>, depth: usize) -> Result<bool, TreeError> {
    if depth > MAX_TREE_DEPTH {
        return Err(TreeError::TooDeep);
    }
    if a.name() != b.name() || a.namespace() != b.namespace() || a.tail() != b.tail() {
        return Ok(false);
    }
    let (aa, ba) = (a.attrs_ref(), b.attrs_ref());
    if aa.len() != ba.len()
        || !aa
            .iter()
            .all(|(k, v)| ba.iter().any(|(k2, v2)| k == k2 && v == v2))
    {
        return Ok(false);
    }
    if let (Some(ra), Some(rb)) = (a.raw(), b.raw()) {
        // Same bytes in the same scope: equal if neither changed inside.
        if Arc::ptr_eq(&ra.buf, &rb.buf)
            && ra.start == rb.start
            && a.content_clean(depth)?
            && b.content_clean(depth)?
        {
            return Ok(true);
        }
    }
    if a.text() != b.text() {
        return Ok(false);
    }
    let (ca, cb) = (a.children_list()?, b.children_list()?);
    if ca.len() != cb.len() {
        return Ok(false);
    }
    for (x, y) in ca.iter().zip(cb.iter()) {
        if !with_child(x, |x| with_child(y, |y| equal(x, y, depth + 1)))??? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A plain Rust handle (`Rc<RefCell<_>>`), for Rust callers and tests.
#[derive(Debug)]
pub struct Node(pub Rc<RefCell<Element<Node>>>);

impl Handle for Node {
    type Guard<'g> = ();
    fn guarded<R>(f: impl for<'g> FnOnce(Self::Guard<'g>) -> R) -> R {
        f(())
    }
    fn wrap(e: Element<Self>) -> Result<Self, TreeError> {
        Ok(Node(Rc::new(RefCell::new(e))))
    }
    fn read_in<R>(&self, _: (), f: impl FnOnce(&Element<Self>) -> R) -> Result<R, TreeError> {
        let e = self.0.try_borrow().map_err(|_| TreeError::Busy)?;
        Ok(f(&e))
    }
    fn write<R>(&self, f: impl FnOnce(&mut Element<Self>) -> R) -> Result<R, TreeError> {
        let mut e = self.0.try_borrow_mut().map_err(|_| TreeError::Busy)?;
        Ok(f(&mut e))
    }
    fn same(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
    fn share(&self) -> Self {
        Node(self.0.clone())
    }
}
