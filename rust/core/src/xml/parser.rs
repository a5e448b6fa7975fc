//! The incremental XMPP stream parser (RFC 6120 §4 streams, §11 restricted XML).
//!
//! Rules (the normative text is `python/xmppx/core/_api.py`):
//!
//! * bytes are fed in chunks split anywhere; each byte is examined once by a resumable
//!   state machine ([`St`]), so the total work is O(n) whatever the chunking, and the
//!   events never depend on where the splits fall;
//! * the first start tag is the stream header ([`Event::Header`]); each complete child
//!   of it is one [`Event::Stanza`], kept as its raw bytes plus its decoded start tag;
//!   whitespace between stanzas is a keepalive (dropped); other text there is
//!   `bad-format`; `</stream:stream>` is [`Event::End`];
//! * restricted XML (DTD, comments, PIs, entities other than the predefined five) is
//!   `restricted-xml`; bytes that are not UTF-8 where a character is read (text, names,
//!   values) are `unsupported-encoding`, while the first byte of a character where none
//!   may stand is `not-well-formed` at once; every well-formedness and namespace rule
//!   is `not-well-formed`;
//! * limits are checked on the byte that breaks them (`policy-violation`): a scan never
//!   looks past `unit start + limit`, so memory is bounded by the limits plus one chunk;
//! * after an error the parser is dead until [`StreamParser::reset`].

use std::sync::Arc;

use super::chars::{
    decode_utf8, is_name_char, is_name_start, is_ws, is_xml_char, Utf8, ATTR_PLAIN, NAME_CHAR,
    NAME_START, TEXT_PLAIN,
};
use super::decode::{self, attr_value};
use super::element::LazyAttr;
use super::error::{Condition, XmlError};
use super::raw::Raw;
use super::scope::{Scope, NS_XML, NS_XMLNS};

/// `DEFAULT_MAX_STANZA_BYTES` of `_api.py` (256 KiB, Prosody/ejabberd c2s limit).
pub const DEFAULT_MAX_STANZA_BYTES: usize = 256 * 1024;
/// `DEFAULT_MAX_DEPTH` of `_api.py`.
pub const DEFAULT_MAX_DEPTH: usize = 32;
/// `DEFAULT_MAX_ATTRIBUTES` of `_api.py`.
pub const DEFAULT_MAX_ATTRIBUTES: usize = 64;
/// `DEFAULT_MAX_BUFFER_BYTES` of `_api.py`.
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 16 * 1024;
/// The namespace of the stream's own elements (RFC 6120 §4.8.1).
const NS_STREAMS: &str = "http://etherx.jabber.org/streams";

/// The parser's limits (`_api.py` rule 8); exceeding one is `policy-violation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one stanza, from its `<` to its final `>`.
    pub max_stanza_bytes: usize,
    /// Element nesting inside a stanza (the stanza element is depth 1).
    pub max_depth: usize,
    /// Attributes on one element, namespace declarations included.
    pub max_attributes: usize,
    /// Bytes of the XML declaration plus the stream header's start tag.
    pub max_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: DEFAULT_MAX_STANZA_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_attributes: DEFAULT_MAX_ATTRIBUTES,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
        }
    }
}

/// The stream header (`<stream:stream ...>`, RFC 6120 §4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Local name (`stream`).
    pub name: String,
    /// Namespace URI (normally `http://etherx.jabber.org/streams`).
    pub namespace: String,
    /// Attributes (Clark keys for namespaced ones), in document order.
    pub attrs: Vec<(String, String)>,
    /// Namespace declarations on the header: prefix (`""` = default) to URI.
    pub nsmap: Vec<(String, String)>,
}

/// A complete stanza: its decoded start tag and its retained bytes.
#[derive(Debug, Clone)]
pub struct Stanza {
    /// Local name.
    pub name: Arc<str>,
    /// Namespace URI.
    pub namespace: Arc<str>,
    /// Attributes in document order, still in the raw bytes.
    pub attrs: Vec<LazyAttr>,
    /// The bytes and scopes to decode the rest on demand.
    pub raw: Raw,
}

/// A parser event.
#[derive(Debug, Clone)]
pub enum Event {
    /// The stream header's start tag completed.
    Header(Header),
    /// A child of the stream element completed.
    Stanza(Stanza),
    /// The stream's end tag.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Before the stream header.
    Prolog,
    /// Inside the stream element, between stanzas.
    Stream,
    /// Inside a stanza.
    Stanza,
    /// After the stream's end tag.
    Epilog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Checking the first bytes of a stream for a UTF-16 or UTF-32 byte-order mark.
    Bom,
    /// Character data at the current level.
    Data,
    /// After `<`.
    Lt,
    /// After `<?`: matched this many bytes of the target `xml` (any case).
    PiTarget(u8),
    /// Inside the XML declaration, looking for `?>`.
    DeclBody,
    /// In a start tag's element name.
    StartName,
    /// In a start tag, between attributes.
    TagWs,
    /// In an attribute name.
    AttrName,
    /// After an attribute name, before `=`.
    AttrEq,
    /// After `=`, before the quote.
    AttrQuote,
    /// Inside an attribute value.
    AttrValue,
    /// After `/` in a start tag.
    Slash,
    /// In an end tag's name.
    EndName,
    /// After an end tag's name.
    EndWs,
    /// After `&`.
    Amp,
    /// In an entity name.
    EntName,
    /// After `&#`.
    CharRef,
    /// In a decimal character reference.
    CharDec,
    /// In a hexadecimal character reference.
    CharHex,
    /// After `<!`.
    Bang,
    /// After `<!-`.
    BangDash,
    /// After `<!`, matched this many bytes of `[CDATA[`.
    CdataOpen(u8),
    /// Inside a CDATA section.
    Cdata,
}

#[derive(Debug, Clone, Copy)]
struct AttrRec {
    name: (usize, usize),
    colon: Option<usize>,
    value: (usize, usize),
}

#[derive(Debug, Clone, Copy)]
struct OpenElem {
    qname: (usize, usize),
    nbind: usize,
    arena: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bind {
    /// Unit-relative prefix range (empty for the default namespace).
    prefix: (usize, usize),
    /// Range of the decoded URI in the arena.
    uri: (usize, usize),
}

enum Uri<'a> {
    Str(&'a str),
    Arc(Arc<str>),
}

impl Uri<'_> {
    fn as_str(&self) -> &str {
        match self {
            Uri::Str(s) => s,
            Uri::Arc(a) => a,
        }
    }
}

enum Name {
    /// The name continues past the available bytes.
    More,
    /// The name ended at `pos`.
    Done,
    /// An incomplete UTF-8 sequence at `pos`: more bytes are needed.
    Wait,
}

/// A stanza's decoded start tag: name, namespace, attributes, inner scope.
type Head = (Arc<str>, Arc<str>, Vec<LazyAttr>, Scope);

/// The incremental stream parser; see the module documentation.
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    buf: Vec<u8>,
    /// Next byte to examine.
    pos: usize,
    /// Start of the bytes still needed (a stanza, the header, the declaration).
    unit: usize,
    in_unit: bool,
    level: Level,
    st: St,
    /// Where a reference returns (`Data` or `AttrValue`).
    ref_ret: St,
    at_start: bool,
    /// Whether a `<?xml` here would be the stream's leading XML declaration.
    decl_ok: bool,
    /// Unit-relative offset of the current start tag's `<`.
    tag_start: usize,
    // current token
    tok: usize,
    colon: Option<usize>,
    expect_start: bool,
    quote: u8,
    need_ws: bool,
    rsqb: u8,
    ref_val: u32,
    ref_digits: u32,
    // current start tag
    qname: (usize, usize, Option<usize>),
    attrs: Vec<AttrRec>,
    // open elements of the current stanza (or the header while its tag is read)
    stack: Vec<OpenElem>,
    binds: Vec<Bind>,
    arena: String,
    stag_end: usize,
    // the stream
    header_qname: Vec<u8>,
    header_scope: Scope,
    /// The header's default namespace (the common lookup, cached).
    header_default: Option<Arc<str>>,
    /// The current stanza's decoded start tag: name, namespace, attributes, scope.
    head: Option<Head>,
    /// Clark keys of the namespaced attributes of the stanza's start tag, in order.
    head_keys: Vec<String>,
    dead: Option<XmlError>,
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

fn nwf<T>(reason: &str) -> Result<T, XmlError> {
    Err(XmlError::nwf(reason))
}

/// Bytes that are not UTF-8 (RFC 3629) where the stream's characters are read: the
/// stream is improperly encoded, `unsupported-encoding` (RFC 6120 §4.9.3.22, §11.6).
fn bad_utf8<T>() -> Result<T, XmlError> {
    Err(XmlError::new(
        Condition::UnsupportedEncoding,
        "invalid UTF-8 (the stream must be UTF-8, RFC 6120 §11.6)",
    ))
}

impl StreamParser {
    /// A parser at the start of a stream.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            unit: 0,
            in_unit: true,
            level: Level::Prolog,
            st: St::Bom,
            ref_ret: St::Data,
            at_start: true,
            decl_ok: false,
            tag_start: 0,
            tok: 0,
            colon: None,
            expect_start: false,
            quote: 0,
            need_ws: false,
            rsqb: 0,
            ref_val: 0,
            ref_digits: 0,
            qname: (0, 0, None),
            attrs: Vec::new(),
            stack: Vec::new(),
            binds: Vec::new(),
            arena: String::new(),
            stag_end: 0,
            header_qname: Vec::new(),
            header_scope: Scope::new(),
            header_default: None,
            head: None,
            head_keys: Vec::new(),
            dead: None,
        }
    }

    /// A parser for one standalone element, as if it were a stanza of a stream whose
    /// default namespace is `default_ns` (used by [`parse_fragment`]).
    pub fn fragment(limits: Limits, default_ns: &str) -> Self {
        let mut p = Self::new(limits);
        p.in_unit = false;
        p.level = Level::Stream;
        p.st = St::Data;
        p.at_start = false;
        p.header_scope = Scope::with_default(default_ns).push("stream", Arc::from(NS_STREAMS));
        p.header_default = p.header_scope.lookup("").cloned();
        p
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Discard all input and state: the next bytes are a new stream (RFC 6120 §4.3.3
    /// restarts after STARTTLS and SASL).
    pub fn reset(&mut self) {
        let limits = self.limits;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if buf.capacity() > 64 * 1024 {
            buf = Vec::new();
        }
        *self = Self::new(limits);
        self.buf = buf;
    }

    /// Whether the parser is between stanzas and holds no input it has not decided on
    /// (no partial stanza, reference or character).
    pub fn is_idle(&self) -> bool {
        self.dead.is_none()
            && self.level == Level::Stream
            && !self.in_unit
            && self.pos >= self.buf.len()
    }

    /// Feed bytes; completed events are appended to `out`.  On error, `out` holds the
    /// events completed before it and the parser is dead (every later call returns the
    /// same condition) until [`reset`](Self::reset).
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), XmlError> {
        if let Some(e) = &self.dead {
            return Err(XmlError::new(
                e.condition,
                format!("parser dead after: {}", e.reason),
            ));
        }
        // Drop what no later byte can need.
        let keep = if self.in_unit { self.unit } else { self.pos };
        if keep > 0 {
            self.buf.drain(..keep);
            self.pos -= keep;
            self.unit = 0;
        }
        if self.buf.capacity() > 256 * 1024 && self.buf.len() + data.len() < 16 * 1024 {
            self.buf.shrink_to(16 * 1024);
        }
        self.buf.extend_from_slice(data);
        let r = self.run(out);
        if let Err(e) = &r {
            self.dead = Some(e.clone());
            self.buf = Vec::new();
        }
        r
    }

    // ----------------------------------------------------------------------------------
    // the machine

    fn window_end(&self) -> usize {
        let lim = if !self.in_unit {
            return self.buf.len();
        } else if self.level == Level::Prolog {
            if self.st == St::Bom {
                return self.buf.len();
            }
            self.limits.max_buffer_bytes
        } else {
            self.limits.max_stanza_bytes
        };
        self.buf.len().min(self.unit.saturating_add(lim))
    }

    fn limit_error(&self) -> XmlError {
        if self.level == Level::Prolog {
            XmlError::policy(format!(
                "stream header exceeds max_buffer_bytes ({})",
                self.limits.max_buffer_bytes
            ))
        } else {
            XmlError::policy(format!(
                "stanza exceeds max_stanza_bytes ({})",
                self.limits.max_stanza_bytes
            ))
        }
    }

    fn run(&mut self, out: &mut Vec<Event>) -> Result<(), XmlError> {
        loop {
            let end = self.window_end();
            if self.pos >= end {
                if end < self.buf.len() {
                    return Err(self.limit_error());
                }
                return Ok(());
            }
            let progressed = match self.st {
                St::Bom => self.st_bom()?,
                St::Data => match self.level {
                    Level::Stanza => self.st_text(end)?,
                    _ => self.st_outside(end)?,
                },
                St::Lt => self.st_lt(end, out)?,
                St::PiTarget(k) => self.st_pi_target(k)?,
                St::DeclBody => self.st_decl_body(end)?,
                St::StartName | St::AttrName | St::EndName => self.st_name(end)?,
                St::TagWs => self.st_tag_ws(end, out)?,
                St::AttrEq | St::AttrQuote | St::EndWs | St::Slash => self.st_punct(out)?,
                St::AttrValue => self.st_attr_value(end)?,
                St::Amp => self.st_amp(end)?,
                St::EntName => self.st_ent_name(end)?,
                St::CharRef | St::CharDec | St::CharHex => self.st_char_ref()?,
                St::Bang | St::BangDash => self.st_bang()?,
                St::CdataOpen(k) => self.st_cdata_open(k)?,
                St::Cdata => self.st_cdata(end)?,
            };
            if !progressed {
                if end < self.buf.len() {
                    return Err(self.limit_error());
                }
                return Ok(());
            }
        }
    }

    /// A UTF-16 or UTF-32 byte-order mark is `unsupported-encoding`.  A UTF-8 one is not
    /// looked for: RFC 6120 §11.6 reads U+FEFF anywhere in a stream, the first character
    /// included, as a ZERO WIDTH NO-BREAK SPACE, which before the header is a character
    /// where none may stand (`not-well-formed`, like any other).
    fn st_bom(&mut self) -> Result<bool, XmlError> {
        const BOMS: [&[u8]; 3] = [b"\xFE\xFF", b"\xFF\xFE", b"\x00\x00\xFE\xFF"];
        let have = &self.buf[self.unit..];
        for bom in BOMS {
            if have.starts_with(bom) {
                return Err(XmlError::new(
                    Condition::UnsupportedEncoding,
                    "a UTF-16 or UTF-32 byte-order mark (the stream must be UTF-8)",
                ));
            }
        }
        if BOMS.iter().any(|bom| bom.starts_with(have)) {
            return Ok(false);
        }
        self.st = St::Data;
        self.in_unit = false;
        Ok(true)
    }

    /// Character data outside stanzas: whitespace is consumed; anything else is an error.
    fn st_outside(&mut self, end: usize) -> Result<bool, XmlError> {
        let mut i = self.pos;
        let b = &self.buf;
        while i < end && is_ws(b[i]) {
            i += 1;
        }
        if i > self.pos {
            self.at_start = false;
            self.pos = i;
            return Ok(true);
        }
        match b[i] {
            b'<' => {
                if self.level == Level::Epilog {
                    return nwf("markup after the stream end");
                }
                if !self.in_unit {
                    self.unit = i;
                    self.in_unit = true;
                }
                self.pos = i + 1;
                self.st = St::Lt;
                Ok(true)
            }
            b'&' if self.level == Level::Stream => {
                self.unit = i;
                self.in_unit = true;
                self.pos = i + 1;
                self.ref_ret = St::Data;
                self.st = St::Amp;
                Ok(true)
            }
            c => {
                let ok_char = match c {
                    0x20..=0x7F => true,
                    // before the header or after the end, any character is an error: no
                    // need to wait for the rest of a multi-byte one
                    0x80.. if self.level != Level::Stream => true,
                    0x80.. => match decode_utf8(&b[i..end]) {
                        Utf8::Incomplete => return Ok(false),
                        Utf8::Invalid => return bad_utf8(),
                        Utf8::Char(cp, _) => is_xml_char(cp),
                    },
                    _ => false,
                };
                match (self.level, ok_char) {
                    (_, false) => nwf("invalid character"),
                    (Level::Stream, true) => Err(XmlError::new(
                        Condition::BadFormat,
                        "character data between stanzas",
                    )),
                    (Level::Prolog, true) => nwf("character data before the stream header"),
                    _ => nwf("character data after the stream end"),
                }
            }
        }
    }

    /// Character data inside a stanza (the hot loop).
    fn st_text(&mut self, end: usize) -> Result<bool, XmlError> {
        let b = &self.buf[..end];
        let mut i = self.pos;
        loop {
            let s = i;
            while i < end && TEXT_PLAIN[b[i] as usize] {
                i += 1;
            }
            if i > s {
                self.rsqb = 0;
            }
            if i >= end {
                self.pos = i;
                return Ok(true);
            }
            match b[i] {
                b'<' => {
                    self.pos = i + 1;
                    self.st = St::Lt;
                    return Ok(true);
                }
                b'&' => {
                    self.pos = i + 1;
                    self.ref_ret = St::Data;
                    self.st = St::Amp;
                    return Ok(true);
                }
                b']' => {
                    if self.rsqb < 2 {
                        self.rsqb += 1;
                    }
                    i += 1;
                }
                b'>' => {
                    if self.rsqb >= 2 {
                        return nwf("']]>' in character data");
                    }
                    self.rsqb = 0;
                    i += 1;
                }
                0x80.. => match decode_utf8(&b[i..]) {
                    Utf8::Char(cp, n) => {
                        if !is_xml_char(cp) {
                            return nwf("character not allowed in XML");
                        }
                        self.rsqb = 0;
                        i += n;
                    }
                    Utf8::Incomplete => {
                        let progressed = i > self.pos;
                        self.pos = i;
                        return Ok(progressed);
                    }
                    Utf8::Invalid => return bad_utf8(),
                },
                _ => return nwf("control character not allowed in XML"),
            }
        }
    }

    /// Start scanning a name whose first byte is at `pos`.
    fn begin_name(&mut self, st: St) {
        self.tok = self.pos - self.unit;
        self.colon = None;
        self.expect_start = true;
        self.st = st;
    }

    /// Check the first character of a name at `pos`: `Some(true)` if it can start a
    /// name, `Some(false)` if not, `None` if more bytes are needed.
    fn name_start_at(&self, end: usize) -> Result<Option<bool>, XmlError> {
        let c = self.buf[self.pos];
        if c < 0x80 {
            return Ok(Some(NAME_START[c as usize]));
        }
        match decode_utf8(&self.buf[self.pos..end]) {
            Utf8::Char(cp, _) => Ok(Some(is_name_start(cp))),
            Utf8::Incomplete => Ok(None),
            Utf8::Invalid => bad_utf8(),
        }
    }

    /// Scan name characters (a QName: at most one colon, not first or last).
    fn scan_name(&mut self, end: usize, allow_colon: bool) -> Result<Name, XmlError> {
        let b = &self.buf[..end];
        let mut i = self.pos;
        while i < end {
            let c = b[i];
            if c < 0x80 {
                if self.expect_start {
                    if !NAME_START[c as usize] {
                        return nwf("bad name");
                    }
                    self.expect_start = false;
                    i += 1;
                    continue;
                }
                if NAME_CHAR[c as usize] {
                    i += 1;
                    continue;
                }
                if c == b':' {
                    if !allow_colon || self.colon.is_some() {
                        return nwf("bad qualified name");
                    }
                    self.colon = Some(i - self.unit);
                    self.expect_start = true;
                    i += 1;
                    continue;
                }
                self.pos = i;
                if self.expect_start {
                    return nwf("bad name");
                }
                return Ok(Name::Done);
            }
            match decode_utf8(&b[i..]) {
                Utf8::Char(cp, n) => {
                    let ok = if self.expect_start {
                        is_name_start(cp)
                    } else {
                        is_name_char(cp)
                    };
                    if !ok {
                        if self.expect_start || !is_xml_char(cp) {
                            return nwf("bad name");
                        }
                        self.pos = i;
                        return Ok(Name::Done);
                    }
                    self.expect_start = false;
                    i += n;
                }
                Utf8::Incomplete => break,
                Utf8::Invalid => return bad_utf8(),
            }
        }
        let progressed = i > self.pos;
        self.pos = i;
        Ok(if progressed { Name::More } else { Name::Wait })
    }

    fn st_name(&mut self, end: usize) -> Result<bool, XmlError> {
        let st = self.st;
        match self.scan_name(end, true)? {
            Name::More => return Ok(true),
            Name::Wait => return Ok(false),
            Name::Done => {}
        }
        let range = (self.tok, self.pos - self.unit, self.colon);
        match st {
            St::StartName => {
                self.qname = range;
                self.attrs.clear();
                self.need_ws = true;
                self.st = St::TagWs;
            }
            St::AttrName => {
                self.attrs.push(AttrRec {
                    name: (range.0, range.1),
                    colon: range.2,
                    value: (0, 0),
                });
                self.st = St::AttrEq;
            }
            _ => {
                self.qname = range;
                self.st = St::EndWs;
            }
        }
        Ok(true)
    }

    fn st_lt(&mut self, end: usize, out: &mut Vec<Event>) -> Result<bool, XmlError> {
        let c = self.buf[self.pos];
        let at_start = std::mem::replace(&mut self.at_start, false);
        match c {
            b'/' => {
                self.pos += 1;
                if self.level == Level::Prolog {
                    return nwf("end tag before the stream header");
                }
                if let Some((e, colon)) = self.fast_qname(self.pos, end) {
                    let mut i = e;
                    while i < end && is_ws(self.buf[i]) {
                        i += 1;
                    }
                    if i < end && self.buf[i] == b'>' {
                        self.qname = (self.pos - self.unit, e - self.unit, colon);
                        self.pos = i + 1;
                        self.finish_end(out)?;
                        return Ok(true);
                    }
                }
                self.begin_name(St::EndName);
                Ok(true)
            }
            b'!' => {
                self.pos += 1;
                self.st = St::Bang;
                Ok(true)
            }
            b'?' => {
                self.pos += 1;
                self.decl_ok = at_start && self.level == Level::Prolog;
                self.st = St::PiTarget(0);
                Ok(true)
            }
            _ => match self.name_start_at(end)? {
                None => {
                    self.at_start = at_start;
                    Ok(false)
                }
                Some(false) => nwf("bad element name"),
                Some(true) => {
                    let depth = if self.level == Level::Stanza {
                        self.stack.len()
                    } else {
                        0
                    };
                    if self.level != Level::Prolog && depth >= self.limits.max_depth {
                        return Err(XmlError::policy(format!(
                            "element nesting exceeds max_depth ({})",
                            self.limits.max_depth
                        )));
                    }
                    self.tag_start = self.pos - 1 - self.unit;
                    if let Some((e, colon)) = self.fast_qname(self.pos, end) {
                        self.qname = (self.pos - self.unit, e - self.unit, colon);
                        self.attrs.clear();
                        self.need_ws = true;
                        self.pos = e;
                        self.st = St::TagWs;
                        return self.st_tag_ws(end, out);
                    }
                    self.begin_name(St::StartName);
                    Ok(true)
                }
            },
        }
    }

    /// `<?` opens a processing instruction (`restricted-xml`) unless its target is
    /// `xml` (any case), which is the XML declaration at the very start of the stream
    /// and `not-well-formed` anywhere else.
    fn st_pi_target(&mut self, k: u8) -> Result<bool, XmlError> {
        let c = self.buf[self.pos];
        if k < 3 {
            if c | 0x20 != b"xml"[k as usize] {
                return Err(XmlError::restricted("processing instruction"));
            }
            self.pos += 1;
            self.st = St::PiTarget(k + 1);
            return Ok(true);
        }
        if !is_ws(c) && c != b'?' {
            return Err(XmlError::restricted("processing instruction"));
        }
        if !self.decl_ok {
            return nwf("XML declaration not at the start of the stream");
        }
        if &self.buf[self.pos - 3..self.pos] != b"xml" {
            return nwf("malformed XML declaration");
        }
        self.rsqb = 0;
        self.st = St::DeclBody;
        Ok(true)
    }

    fn st_decl_body(&mut self, end: usize) -> Result<bool, XmlError> {
        let mut i = self.pos;
        while i < end {
            let c = self.buf[i];
            match c {
                b'>' if self.rsqb == 1 => {
                    self.pos = i + 1;
                    parse_decl(&self.buf[self.unit..self.pos])?;
                    self.st = St::Data;
                    return Ok(true);
                }
                b'?' => self.rsqb = 1,
                b' ' | b'\t' | b'\r' | b'\n' => self.rsqb = 0,
                0x21..=0x7E if c != b'<' && c != b'>' && c != b'&' => self.rsqb = 0,
                _ => return nwf("malformed XML declaration"),
            }
            i += 1;
        }
        self.pos = i;
        Ok(true)
    }

    fn st_tag_ws(&mut self, end: usize, out: &mut Vec<Event>) -> Result<bool, XmlError> {
        loop {
            if self.pos >= end {
                return Ok(true);
            }
            let c = self.buf[self.pos];
            if is_ws(c) {
                let mut i = self.pos + 1;
                while i < end && is_ws(self.buf[i]) {
                    i += 1;
                }
                self.pos = i;
                self.need_ws = false;
                continue;
            }
            return match c {
                b'>' => {
                    self.pos += 1;
                    self.finish_start(false, out)?;
                    Ok(true)
                }
                b'/' => {
                    self.pos += 1;
                    self.st = St::Slash;
                    Ok(true)
                }
                // right after a value only whitespace, '/' or '>' may stand: any other
                // byte is an error at once, even the first of a multi-byte character
                _ if self.need_ws => nwf("attributes must be separated by whitespace"),
                _ => match self.name_start_at(end)? {
                    None => Ok(false),
                    Some(false) => nwf("bad attribute name"),
                    Some(true) => {
                        if self.attrs.len() >= self.limits.max_attributes {
                            return Err(XmlError::policy(format!(
                                "element has more than max_attributes ({}) attributes",
                                self.limits.max_attributes
                            )));
                        }
                        if self.fast_attr(end) {
                            continue;
                        }
                        self.begin_name(St::AttrName);
                        Ok(true)
                    }
                },
            };
        }
    }

    /// An ASCII QName starting at `start` and ending (at a non-name byte) before `end`:
    /// its end and the unit-relative offset of its colon.
    #[inline]
    fn fast_qname(&self, start: usize, end: usize) -> Option<(usize, Option<usize>)> {
        let b = &self.buf[..end];
        let mut i = start;
        let mut colon = None;
        let mut expect_start = true;
        while i < end {
            let c = b[i];
            if expect_start {
                if !NAME_START[c as usize] {
                    return None;
                }
                expect_start = false;
            } else if c == b':' {
                if colon.is_some() {
                    return None;
                }
                colon = Some(i - self.unit);
                expect_start = true;
            } else if !NAME_CHAR[c as usize] {
                break;
            }
            i += 1;
        }
        if expect_start || i >= end || b[i] >= 0x80 {
            return None;
        }
        Some((i, colon))
    }

    /// Fast path for one complete attribute (`name S? = S? 'value'`) wholly in the
    /// window, with an ASCII name and a value without references: record it and move
    /// past it.  Anything else returns `false` having consumed nothing, and the state
    /// machine takes the attribute byte by byte (so each byte is scanned at most twice).
    fn fast_attr(&mut self, end: usize) -> bool {
        let start = self.pos;
        let Some((mut i, colon)) = self.fast_qname(start, end) else {
            return false;
        };
        let b = &self.buf[..end];
        let name_end = i;
        while i < end && is_ws(b[i]) {
            i += 1;
        }
        if i >= end || b[i] != b'=' {
            return false;
        }
        i += 1;
        while i < end && is_ws(b[i]) {
            i += 1;
        }
        if i >= end || (b[i] != b'\'' && b[i] != b'"') {
            return false;
        }
        let q = b[i];
        i += 1;
        let vs = i;
        loop {
            while i < end && ATTR_PLAIN[b[i] as usize] {
                i += 1;
            }
            if i >= end {
                return false;
            }
            let c = b[i];
            if c == q {
                break;
            }
            match c {
                b'\'' | b'"' => i += 1,
                0x80.. => match decode_utf8(&b[i..]) {
                    Utf8::Char(cp, n) if is_xml_char(cp) => i += n,
                    _ => return false,
                },
                _ => return false,
            }
        }
        let u = self.unit;
        self.attrs.push(AttrRec {
            name: (start - u, name_end - u),
            colon,
            value: (vs - u, i - u),
        });
        self.pos = i + 1;
        self.need_ws = true;
        true
    }

    /// Single-byte punctuation states: `=`, the opening quote, `>` of end tags and of
    /// empty-element tags.
    fn st_punct(&mut self, out: &mut Vec<Event>) -> Result<bool, XmlError> {
        let c = self.buf[self.pos];
        self.pos += 1;
        match (self.st, c) {
            (St::AttrEq | St::AttrQuote | St::EndWs, b' ' | b'\t' | b'\r' | b'\n') => {}
            (St::AttrEq, b'=') => self.st = St::AttrQuote,
            (St::AttrQuote, b'\'' | b'"') => {
                self.quote = c;
                let v = self.pos - self.unit;
                if let Some(a) = self.attrs.last_mut() {
                    a.value = (v, v);
                }
                self.st = St::AttrValue;
            }
            (St::EndWs, b'>') => self.finish_end(out)?,
            (St::Slash, b'>') => self.finish_start(true, out)?,
            (St::AttrEq, _) => return nwf("expected '=' after attribute name"),
            (St::AttrQuote, _) => return nwf("attribute value must be quoted"),
            (St::EndWs, _) => return nwf("malformed end tag"),
            _ => return nwf("expected '>' after '/'"),
        }
        Ok(true)
    }

    fn st_attr_value(&mut self, end: usize) -> Result<bool, XmlError> {
        let b = &self.buf[..end];
        let q = self.quote;
        let mut i = self.pos;
        loop {
            while i < end && ATTR_PLAIN[b[i] as usize] {
                i += 1;
            }
            if i >= end {
                self.pos = i;
                return Ok(true);
            }
            let c = b[i];
            if c == q {
                let e = i - self.unit;
                if let Some(a) = self.attrs.last_mut() {
                    a.value.1 = e;
                }
                self.pos = i + 1;
                self.need_ws = true;
                self.st = St::TagWs;
                return Ok(true);
            }
            match c {
                b'\'' | b'"' => i += 1,
                b'&' => {
                    self.pos = i + 1;
                    self.ref_ret = St::AttrValue;
                    self.st = St::Amp;
                    return Ok(true);
                }
                b'<' => return nwf("'<' in attribute value"),
                0x80.. => match decode_utf8(&b[i..]) {
                    Utf8::Char(cp, n) => {
                        if !is_xml_char(cp) {
                            return nwf("character not allowed in XML");
                        }
                        i += n;
                    }
                    Utf8::Incomplete => {
                        let progressed = i > self.pos;
                        self.pos = i;
                        return Ok(progressed);
                    }
                    Utf8::Invalid => return bad_utf8(),
                },
                _ => return nwf("control character not allowed in XML"),
            }
        }
    }

    fn st_amp(&mut self, end: usize) -> Result<bool, XmlError> {
        if self.buf[self.pos] == b'#' {
            self.pos += 1;
            self.ref_val = 0;
            self.ref_digits = 0;
            self.st = St::CharRef;
            return Ok(true);
        }
        match self.name_start_at(end)? {
            None => Ok(false),
            Some(false) => nwf("'&' not starting a reference"),
            Some(true) => {
                self.begin_name(St::EntName);
                Ok(true)
            }
        }
    }

    fn st_ent_name(&mut self, end: usize) -> Result<bool, XmlError> {
        // Namespaces in XML 1.0 §7: entity names contain no colon, so `&a:b;` is not
        // namespace-well-formed (not-well-formed), not a restricted entity reference.
        match self.scan_name(end, false)? {
            Name::More => return Ok(true),
            Name::Wait => return Ok(false),
            Name::Done => {}
        }
        if self.buf[self.pos] != b';' {
            return nwf("entity reference without ';'");
        }
        let name = &self.buf[self.unit + self.tok..self.pos];
        let c = match name {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"apos" => '\'',
            b"quot" => '"',
            _ => {
                return Err(XmlError::restricted(format!(
                    "entity reference &{};",
                    String::from_utf8_lossy(name)
                )))
            }
        };
        self.pos += 1;
        self.end_ref(c)
    }

    fn end_ref(&mut self, c: char) -> Result<bool, XmlError> {
        self.rsqb = 0;
        self.st = self.ref_ret;
        if self.level == Level::Stream && self.ref_ret == St::Data {
            if !matches!(c, ' ' | '\t' | '\n' | '\r') {
                return Err(XmlError::new(
                    Condition::BadFormat,
                    "character data between stanzas",
                ));
            }
            self.in_unit = false;
        }
        Ok(true)
    }

    fn st_char_ref(&mut self) -> Result<bool, XmlError> {
        let c = self.buf[self.pos];
        self.pos += 1;
        match (self.st, c) {
            (St::CharRef, b'x') => {
                self.st = St::CharHex;
                Ok(true)
            }
            (St::CharRef | St::CharDec, b'0'..=b'9') => {
                self.st = St::CharDec;
                self.ref_digits += 1;
                self.ref_val = (self.ref_val * 10 + u32::from(c - b'0')).min(0x11_0000);
                Ok(true)
            }
            (St::CharHex, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                let d = (c as char).to_digit(16).unwrap_or(0);
                self.ref_digits += 1;
                self.ref_val = (self.ref_val * 16 + d).min(0x11_0000);
                Ok(true)
            }
            (St::CharDec | St::CharHex, b';') if self.ref_digits > 0 => {
                match char::from_u32(self.ref_val) {
                    Some(ch) if is_xml_char(self.ref_val) => self.end_ref(ch),
                    _ => nwf("character reference to a character not allowed in XML"),
                }
            }
            _ => nwf("malformed character reference"),
        }
    }

    fn st_bang(&mut self) -> Result<bool, XmlError> {
        let c = self.buf[self.pos];
        self.pos += 1;
        match c {
            b'-' if self.st == St::BangDash => Err(XmlError::restricted("comment")),
            _ if self.st == St::BangDash => nwf("malformed comment"),
            b'-' => {
                self.st = St::BangDash;
                Ok(true)
            }
            b'[' if self.level != Level::Prolog => {
                self.st = St::CdataOpen(1);
                Ok(true)
            }
            b'A'..=b'Z' | b'a'..=b'z' => {
                Err(XmlError::restricted("document type or markup declaration"))
            }
            _ => nwf("malformed markup after '<!'"),
        }
    }

    fn st_cdata_open(&mut self, k: u8) -> Result<bool, XmlError> {
        const OPEN: &[u8] = b"[CDATA[";
        if self.buf[self.pos] != OPEN[k as usize] {
            return nwf("malformed CDATA section");
        }
        self.pos += 1;
        self.st = if k + 1 == OPEN.len() as u8 {
            self.rsqb = 0;
            St::Cdata
        } else {
            St::CdataOpen(k + 1)
        };
        Ok(true)
    }

    fn st_cdata(&mut self, end: usize) -> Result<bool, XmlError> {
        let stream = self.level == Level::Stream;
        let mut i = self.pos;
        while i < end {
            let c = self.buf[i];
            match c {
                b']' => {
                    if self.rsqb < 2 {
                        self.rsqb += 1;
                    } else if stream {
                        return Err(XmlError::new(
                            Condition::BadFormat,
                            "character data between stanzas",
                        ));
                    }
                    i += 1;
                    continue;
                }
                b'>' if self.rsqb >= 2 => {
                    self.pos = i + 1;
                    self.rsqb = 0;
                    self.st = St::Data;
                    if stream {
                        self.in_unit = false;
                    }
                    return Ok(true);
                }
                _ => {}
            }
            if stream {
                if self.rsqb > 0 {
                    return Err(XmlError::new(
                        Condition::BadFormat,
                        "character data between stanzas",
                    ));
                }
                if is_ws(c) {
                    i += 1;
                    continue;
                }
                return match decode_utf8(&self.buf[i..end]) {
                    Utf8::Char(cp, _) if is_xml_char(cp) => Err(XmlError::new(
                        Condition::BadFormat,
                        "character data between stanzas",
                    )),
                    Utf8::Incomplete => {
                        let progressed = i > self.pos;
                        self.pos = i;
                        Ok(progressed)
                    }
                    Utf8::Invalid => bad_utf8(),
                    Utf8::Char(..) => nwf("invalid character"),
                };
            }
            self.rsqb = 0;
            if c < 0x80 {
                if c < 0x20 && !is_ws(c) {
                    return nwf("control character not allowed in XML");
                }
                i += 1;
            } else {
                match decode_utf8(&self.buf[i..end]) {
                    Utf8::Char(cp, n) => {
                        if !is_xml_char(cp) {
                            return nwf("character not allowed in XML");
                        }
                        i += n;
                    }
                    Utf8::Incomplete => {
                        let progressed = i > self.pos;
                        self.pos = i;
                        return Ok(progressed);
                    }
                    Utf8::Invalid => return bad_utf8(),
                }
            }
        }
        self.pos = i;
        Ok(true)
    }

    // ----------------------------------------------------------------------------------
    // tags

    fn unit_bytes(&self, r: (usize, usize)) -> &[u8] {
        &self.buf[self.unit + r.0..self.unit + r.1]
    }

    /// The URI bound to `prefix` (empty slice = default namespace).
    fn lookup(&self, prefix: &[u8]) -> Option<Uri<'_>> {
        for b in self.binds.iter().rev() {
            if self.unit_bytes(b.prefix) == prefix {
                return Some(Uri::Str(&self.arena[b.uri.0..b.uri.1]));
            }
        }
        if prefix.is_empty() {
            return Some(match &self.header_default {
                Some(u) => Uri::Arc(u.clone()),
                None => Uri::Str(""),
            });
        }
        if prefix == b"xml" {
            return Some(Uri::Str(NS_XML));
        }
        let p = std::str::from_utf8(prefix).ok()?;
        match self.header_scope.lookup(p) {
            Some(u) => Some(Uri::Arc(u.clone())),
            None if p.is_empty() => Some(Uri::Str("")),
            None => None,
        }
    }

    fn finish_start(&mut self, empty: bool, out: &mut Vec<Event>) -> Result<(), XmlError> {
        let nbind = self.binds.len();
        let arena = self.arena.len();
        // namespace declarations (Namespaces in XML 1.0 §3) and raw duplicates
        for (n, a) in self.attrs.iter().enumerate() {
            let name = &self.buf[self.unit + a.name.0..self.unit + a.name.1];
            for prev in &self.attrs[..n] {
                if &self.buf[self.unit + prev.name.0..self.unit + prev.name.1] == name {
                    return nwf("duplicate attribute");
                }
            }
            let prefix = if name == b"xmlns" {
                (a.name.0, a.name.0)
            } else if a.colon.is_some() && name.starts_with(b"xmlns:") {
                (a.name.0 + 6, a.name.1)
            } else {
                continue;
            };
            let p = &self.buf[self.unit + prefix.0..self.unit + prefix.1];
            let value = attr_value(&self.buf[self.unit + a.value.0..self.unit + a.value.1]);
            let v: &str = &value;
            if p == b"xmlns" {
                return nwf("the xmlns prefix cannot be declared");
            }
            if v.contains('}') {
                // '}' ends the namespace in an expanded name ("{uri}local"); expat, and
                // so the pure-Python backend and every peer on it, refuses it there too
                return nwf("a namespace name cannot contain '}'");
            }
            if p == b"xml" {
                if v != NS_XML {
                    return nwf("the xml prefix cannot be rebound");
                }
            } else if v == NS_XML || v == NS_XMLNS {
                return nwf("reserved namespace bound to another prefix");
            } else if v.is_empty() && !p.is_empty() {
                return nwf("a prefix cannot be bound to the empty namespace");
            }
            let s = self.arena.len();
            self.arena.push_str(v);
            self.binds.push(Bind {
                prefix,
                uri: (s, self.arena.len()),
            });
        }
        // the element's own name
        let (qs, qe, qc) = self.qname;
        let prefix_range = match qc {
            Some(c) => (qs, c),
            None => (qs, qs),
        };
        let prefix = self.unit_bytes(prefix_range);
        if prefix == b"xmlns" {
            return nwf("element name with the xmlns prefix");
        }
        let Some(elem_uri) = self.lookup(prefix) else {
            return nwf(&format!(
                "undeclared prefix {}",
                String::from_utf8_lossy(prefix)
            ));
        };
        let head_ns: Option<Arc<str>> = if self.level == Level::Stream {
            Some(match elem_uri {
                Uri::Arc(a) => a,
                Uri::Str("") => decode::empty_arc(),
                Uri::Str(s) if s == NS_XML => decode::xml_arc(),
                Uri::Str(s) => Arc::from(s),
            })
        } else {
            None
        };
        // attribute names: prefixes bound, expanded names distinct
        let mut expanded: Vec<(String, (usize, usize))> = Vec::new();
        for a in &self.attrs {
            let Some(c) = a.colon else { continue };
            let p = self.unit_bytes((a.name.0, c));
            if p == b"xmlns" {
                continue;
            }
            let Some(uri) = self.lookup(p) else {
                return nwf(&format!("undeclared prefix {}", String::from_utf8_lossy(p)));
            };
            let local = (c + 1, a.name.1);
            let uri = uri.as_str().to_owned();
            if self.level == Level::Stream {
                self.head_keys
                    .push(format!("{{{uri}}}{}", decode::utf8(self.unit_bytes(local))));
            }
            for (u, l) in &expanded {
                if *u == uri && self.unit_bytes(*l) == self.unit_bytes(local) {
                    return nwf("duplicate attribute (same expanded name)");
                }
            }
            expanded.push((uri, local));
        }
        if let Some(uri) = &head_ns {
            let local = qc.map_or(qs, |c| c + 1);
            if &**uri == NS_STREAMS && self.unit_bytes((local, qe)) == b"stream" {
                // RFC 6120 §4.3.3: a stream restarts only after STARTTLS or SASL, on a
                // new stream; a header inside this one is no stanza
                return Err(XmlError::new(
                    Condition::BadFormat,
                    "a stream header inside the stream",
                ));
            }
        }
        self.stack.push(OpenElem {
            qname: (qs, qe),
            nbind,
            arena,
        });
        match self.level {
            Level::Prolog => {
                self.emit_header(out);
                if empty {
                    out.push(Event::End);
                    self.level = Level::Epilog;
                }
            }
            Level::Stream => {
                self.stag_end = self.pos - self.unit;
                self.build_head(head_ns.unwrap_or_else(decode::empty_arc), nbind);
                if empty {
                    self.emit_stanza(out);
                } else {
                    self.level = Level::Stanza;
                    self.st = St::Data;
                    self.rsqb = 0;
                }
            }
            _ => {
                if empty {
                    self.pop();
                }
                self.st = St::Data;
                self.rsqb = 0;
            }
        }
        Ok(())
    }

    /// Decode the stanza's start tag from what the checks above gathered (its name,
    /// namespace, attributes and inner scope), so no second pass is needed.
    fn build_head(&mut self, ns: Arc<str>, nbind: usize) {
        let (qs, qe, qc) = self.qname;
        let local = self.unit_bytes((qc.map_or(qs, |c| c + 1), qe));
        let name: Arc<str> = Arc::from(&*decode::utf8(local));
        let mut scope = self.header_scope.clone();
        for b in &self.binds[nbind..] {
            let p = decode::utf8(self.unit_bytes(b.prefix));
            let u = &self.arena[b.uri.0..b.uri.1];
            let u: Arc<str> = if u.is_empty() {
                decode::empty_arc()
            } else if *u == *ns {
                ns.clone()
            } else {
                Arc::from(u)
            };
            scope = scope.push(&p, u);
        }
        let mut keys = std::mem::take(&mut self.head_keys).into_iter();
        let mut attrs = Vec::with_capacity(self.attrs.len());
        for a in &self.attrs {
            let raw_name = self.unit_bytes(a.name);
            let clark = match a.colon {
                None if raw_name == b"xmlns" => continue,
                None => None,
                Some(_) if raw_name.starts_with(b"xmlns:") => continue,
                Some(_) => Some(keys.next().unwrap_or_default().into_boxed_str()),
            };
            let v = self.unit_bytes(a.value);
            let decode = v.iter().any(|&c| matches!(c, b'&' | b'\t' | b'\n' | b'\r'));
            attrs.push(LazyAttr {
                clark,
                name: a.name,
                value: a.value,
                decode,
            });
        }
        self.head = Some((name, ns, attrs, scope));
    }

    fn pop(&mut self) {
        if let Some(e) = self.stack.pop() {
            self.binds.truncate(e.nbind);
            self.arena.truncate(e.arena);
        }
    }

    fn finish_end(&mut self, out: &mut Vec<Event>) -> Result<(), XmlError> {
        let q = self.unit_bytes((self.qname.0, self.qname.1));
        match self.level {
            Level::Stream => {
                if q != self.header_qname.as_slice() {
                    return nwf("end tag does not match the stream header");
                }
                out.push(Event::End);
                self.level = Level::Epilog;
                self.in_unit = false;
                self.st = St::Data;
            }
            _ => {
                let Some(top) = self.stack.last() else {
                    return nwf("unexpected end tag");
                };
                if self.unit_bytes(top.qname) != q {
                    return nwf("mismatched end tag");
                }
                self.pop();
                self.st = St::Data;
                self.rsqb = 0;
                if self.stack.is_empty() {
                    self.emit_stanza(out);
                }
            }
        }
        Ok(())
    }

    fn emit_header(&mut self, out: &mut Vec<Event>) {
        let bytes = &self.buf[self.unit..self.pos];
        let ts = self.tag_start;
        let mut nsmap = Vec::new();
        for a in &self.attrs {
            let name = &bytes[a.name.0..a.name.1];
            let prefix = if name == b"xmlns" {
                ""
            } else if let Some(p) = name.strip_prefix(b"xmlns:") {
                std::str::from_utf8(p).unwrap_or("")
            } else {
                continue;
            };
            let v = attr_value(&bytes[a.value.0..a.value.1]).into_owned();
            nsmap.push((prefix.to_owned(), v));
        }
        let header = match decode::decode_start_tag(bytes, ts, &Scope::new()) {
            Some(t) => {
                self.header_scope = t.inner.clone();
                self.header_default = t.inner.lookup("").cloned();
                Header {
                    name: t.name.to_string(),
                    namespace: t.ns.to_string(),
                    attrs: t.attrs,
                    nsmap,
                }
            }
            None => Header {
                name: String::new(),
                namespace: String::new(),
                attrs: vec![],
                nsmap,
            },
        };
        self.header_qname = self.unit_bytes((self.qname.0, self.qname.1)).to_vec();
        out.push(Event::Header(header));
        self.stack.clear();
        self.binds.clear();
        self.arena.clear();
        self.level = Level::Stream;
        self.in_unit = false;
        self.st = St::Data;
    }

    fn emit_stanza(&mut self, out: &mut Vec<Event>) {
        let len = self.pos - self.unit;
        let bytes: Arc<[u8]> = if self.unit == 0 && len >= 64 * 1024 {
            // A big stanza: hand over the buffer instead of holding two copies.
            let rest = self.buf.split_off(len);
            let mut whole = std::mem::replace(&mut self.buf, rest);
            whole.shrink_to_fit();
            self.pos -= len;
            Arc::from(whole)
        } else {
            let b = Arc::from(&self.buf[self.unit..self.pos]);
            self.unit = self.pos;
            b
        };
        self.in_unit = false;
        self.level = Level::Stream;
        self.st = St::Data;
        self.stack.clear();
        self.binds.clear();
        self.arena.clear();
        if let Some((name, namespace, attrs, inner)) = self.head.take() {
            let end = bytes.len();
            let stag_end = self.stag_end.min(end);
            let raw = Raw::new(bytes, 0, stag_end, end, self.header_scope.clone(), inner);
            out.push(Event::Stanza(Stanza {
                name,
                namespace,
                attrs,
                raw,
            }));
        }
    }
}

/// Check an XML declaration (XML 1.0 §2.8 `XMLDecl`, the whole `<?xml ... ?>`):
/// `version` must be `1.0`, `encoding` (if any) UTF-8, `standalone` yes/no.
fn parse_decl(d: &[u8]) -> Result<(), XmlError> {
    let body = d
        .strip_prefix(b"<?xml")
        .and_then(|b| b.strip_suffix(b"?>"))
        .ok_or_else(|| XmlError::nwf("malformed XML declaration"))?;
    let mut i = 0;
    let mut seen = 0; // 0 none, 1 version, 2 encoding, 3 standalone
    loop {
        let ws_start = i;
        while i < body.len() && is_ws(body[i]) {
            i += 1;
        }
        if i >= body.len() {
            break;
        }
        if i == ws_start {
            return nwf("malformed XML declaration");
        }
        let ns = i;
        while i < body.len() && body[i].is_ascii_alphabetic() {
            i += 1;
        }
        let name = &body[ns..i];
        while i < body.len() && is_ws(body[i]) {
            i += 1;
        }
        if body.get(i) != Some(&b'=') {
            return nwf("malformed XML declaration");
        }
        i += 1;
        while i < body.len() && is_ws(body[i]) {
            i += 1;
        }
        let q = *body
            .get(i)
            .ok_or_else(|| XmlError::nwf("malformed XML declaration"))?;
        if q != b'\'' && q != b'"' {
            return nwf("malformed XML declaration");
        }
        let vs = i + 1;
        let ve = vs
            + body[vs..]
                .iter()
                .position(|&c| c == q)
                .ok_or_else(|| XmlError::nwf("malformed XML declaration"))?;
        let value = &body[vs..ve];
        i = ve + 1;
        match name {
            b"version" if seen == 0 => {
                if value != b"1.0" {
                    return nwf("XML version must be 1.0");
                }
                seen = 1;
            }
            b"encoding" if seen == 1 => {
                let ok_name = value.first().is_some_and(u8::is_ascii_alphabetic)
                    && value
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
                if !ok_name {
                    return nwf("malformed encoding name");
                }
                if !value.eq_ignore_ascii_case(b"utf-8") {
                    return Err(XmlError::new(
                        Condition::UnsupportedEncoding,
                        format!(
                            "encoding {} (only UTF-8 is allowed)",
                            String::from_utf8_lossy(value)
                        ),
                    ));
                }
                seen = 2;
            }
            b"standalone" if seen == 1 || seen == 2 => {
                if value != b"yes" && value != b"no" {
                    return nwf("standalone must be yes or no");
                }
                seen = 3;
            }
            _ => return nwf("malformed XML declaration"),
        }
    }
    if seen == 0 {
        return nwf("XML declaration without version");
    }
    Ok(())
}

/// Parse one standalone element as a stanza of a stream whose default namespace is
/// `default_ns`: whitespace around it is allowed; no element, an incomplete one or
/// anything after it is an error.
pub fn parse_fragment(data: &[u8], default_ns: &str, limits: Limits) -> Result<Stanza, XmlError> {
    let mut p = StreamParser::fragment(limits, default_ns);
    let mut events = Vec::new();
    p.feed(data, &mut events)?;
    let mut it = events.into_iter();
    match (it.next(), it.next()) {
        (Some(Event::Stanza(s)), None) if p.is_idle() => Ok(s),
        (Some(Event::Stanza(_)), None) => nwf("the input ends inside what follows the element"),
        (Some(Event::Stanza(_)), _) => nwf("data after the element"),
        _ => nwf("no complete element"),
    }
}
