//! The retained input of a parsed element: one shared buffer (the whole stanza) and the
//! element's span in it, with the namespace scope in force (DESIGN.md §2).

use std::sync::{Arc, OnceLock};

use memchr::memrchr;

use super::decode::{self, compute_deps, Deps};
use super::scope::Scope;

/// Where a parsed element's bytes are, and the scopes needed to decode them later.
#[derive(Debug, Clone)]
pub struct Raw {
    /// The whole stanza's bytes (shared by every element decoded from it).
    pub buf: Arc<[u8]>,
    /// Offset of the element's `<`.
    pub start: usize,
    /// Offset just after its start tag.
    pub stag_end: usize,
    /// Offset of its end tag's `<` (`== end` for an empty-element tag).
    pub content_end: usize,
    /// Offset just after its end.
    pub end: usize,
    /// Bindings in force around the element.
    pub outer: Scope,
    /// Bindings in force inside it (outer plus its own declarations).
    pub inner: Scope,
    deps: OnceLock<Deps>,
}

impl Raw {
    /// A span of `buf`; `content_end` is found from `end` (the last `<` in the span).
    pub fn new(
        buf: Arc<[u8]>,
        start: usize,
        stag_end: usize,
        end: usize,
        outer: Scope,
        inner: Scope,
    ) -> Self {
        let content_end = if stag_end >= end {
            end
        } else {
            buf.get(stag_end..end)
                .and_then(|s| memrchr(b'<', s))
                .map_or(end, |o| stag_end + o)
        };
        Raw {
            buf,
            start,
            stag_end,
            content_end,
            end,
            outer,
            inner,
            deps: OnceLock::new(),
        }
    }

    /// The element's bytes, start tag to end tag.
    pub fn span(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// The bytes between the start and end tags.
    pub fn content(&self) -> &[u8] {
        self.buf.get(self.stag_end..self.content_end).unwrap_or(&[])
    }

    /// The namespace bindings this span and its content rely on (computed once).
    pub fn deps(&self) -> &Deps {
        self.deps
            .get_or_init(|| compute_deps(&self.buf, self.start, self.end, &self.outer, &self.inner))
    }

    /// Decode the element's text (the character data before its first child).
    pub fn text(&self) -> String {
        let e = decode::text_end(&self.buf, self.stag_end, self.content_end);
        let mut s = String::new();
        decode::decode_text(&self.buf, self.stag_end, e, &mut s);
        s
    }

    /// Walk the content.
    pub fn items(&self) -> decode::Content<'_> {
        decode::Content::new(&self.buf, self.stag_end, self.content_end)
    }

    /// Decode the child element spanning `start..end` of this element's buffer.
    pub fn child(&self, start: usize, end: usize) -> Option<(decode::StartTag, Raw)> {
        let t = decode::decode_start_tag(&self.buf, start, &self.inner)?;
        let raw = Raw::new(
            self.buf.clone(),
            start,
            t.end,
            end,
            self.inner.clone(),
            t.inner.clone(),
        );
        Some((t, raw))
    }
}
