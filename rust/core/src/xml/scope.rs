//! Persistent namespace scopes (Namespaces in XML 1.0 §6): a shared linked list of
//! prefix bindings, so a lazily decoded element keeps the scope in force at its position
//! for the cost of one reference count.

use std::sync::Arc;

/// `http://www.w3.org/XML/1998/namespace`, bound to `xml` everywhere.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
/// `http://www.w3.org/2000/xmlns/`, which nothing may be bound to.
pub const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

#[derive(Debug)]
struct Binding {
    prefix: Box<str>,
    uri: Arc<str>,
    next: Scope,
}

/// The namespace bindings in force at some point; `""` is the default namespace (an
/// empty URI means "no namespace").  The `xml` prefix is implicit.
#[derive(Debug, Clone, Default)]
pub struct Scope(Option<Arc<Binding>>);

impl Scope {
    /// The empty scope (no default namespace, only `xml`).
    pub fn new() -> Self {
        Scope(None)
    }

    /// A scope whose only binding is the default namespace `uri`.
    pub fn with_default(uri: &str) -> Self {
        Scope::new().push("", Arc::from(uri))
    }

    /// This scope extended with `prefix` bound to `uri`.
    #[must_use]
    pub fn push(&self, prefix: &str, uri: Arc<str>) -> Scope {
        Scope(Some(Arc::new(Binding {
            prefix: prefix.into(),
            uri,
            next: self.clone(),
        })))
    }

    /// The URI bound to `prefix` (`""` = default namespace), `None` if unbound.
    pub fn lookup(&self, prefix: &str) -> Option<&Arc<str>> {
        let mut cur = self.0.as_ref();
        while let Some(b) = cur {
            if &*b.prefix == prefix {
                return Some(&b.uri);
            }
            cur = b.next.0.as_ref();
        }
        None
    }

    /// The default namespace URI (`""` when none).
    pub fn default_ns(&self) -> &str {
        self.lookup("").map_or("", |u| u)
    }

    /// The bindings in force, innermost first, without shadowed ones.
    pub fn bindings(&self) -> Vec<(&str, &Arc<str>)> {
        let mut out: Vec<(&str, &Arc<str>)> = Vec::new();
        let mut cur = self.0.as_ref();
        while let Some(b) = cur {
            if !out.iter().any(|(p, _)| *p == &*b.prefix) {
                out.push((&b.prefix, &b.uri));
            }
            cur = b.next.0.as_ref();
        }
        out
    }

    /// Whether both are the same shared list (cheap identity test).
    pub fn same(&self, other: &Scope) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Unlink iteratively so a long chain cannot overflow the stack.
        let mut cur = self.0.take();
        while let Some(arc) = cur {
            match Arc::try_unwrap(arc) {
                Ok(mut b) => cur = b.next.0.take(),
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_shadowing() {
        let s = Scope::with_default("jabber:client").push("a", Arc::from("urn:a"));
        let t = s.push("", Arc::from("urn:x"));
        assert_eq!(s.default_ns(), "jabber:client");
        assert_eq!(t.default_ns(), "urn:x");
        assert_eq!(t.lookup("a").map(|u| &**u), Some("urn:a"));
        assert!(t.lookup("b").is_none());
        assert_eq!(t.bindings().len(), 2);
        assert!(Scope::new().default_ns().is_empty());
    }
}
