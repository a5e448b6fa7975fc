//! Feeds arbitrary bytes to the stream parser, whole and in an arbitrary chunking
//! (taken from the first input bytes), and checks that the events and the error are
//! the same (`_api.py` rule 1), that the parser never panics, and that every stanza
//! serializes to bytes that parse back to an equal element.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmppx_core::xml::{
    equal, parse_fragment, serialize, serialize_canonical, Element, Event, Limits, Node,
    StreamParser,
};

/// A comparable summary of one event.
fn summary(e: &Event) -> String {
    match e {
        Event::Header(h) => format!("H {h:?}"),
        Event::End => "E".to_owned(),
        Event::Stanza(s) => {
            let el: Element<Node> = Element::from_stanza(s.clone());
            let canon = serialize_canonical(&el, "jabber:client")
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("serialize error {e}"));
            format!("S {:?} {canon}", String::from_utf8_lossy(s.raw.span()))
        }
    }
}

fn run(data: &[u8], chunks: &[u8], limits: Limits) -> (Vec<Event>, Option<String>) {
    let mut p = StreamParser::new(limits);
    let mut events = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < data.len() {
        let n = if chunks.is_empty() {
            data.len()
        } else {
            usize::from(chunks[k % chunks.len()]).max(1)
        };
        k += 1;
        let n = n.min(data.len() - i);
        if let Err(e) = p.feed(&data[i..i + n], &mut events) {
            return (events, Some(e.condition.as_str().to_owned()));
        }
        i += n;
    }
    (events, None)
}

fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = usize::from(n % 8);
    if rest.len() < n {
        return;
    }
    let (chunks, data) = rest.split_at(n);
    let limits = Limits {
        max_stanza_bytes: 4096,
        max_depth: 16,
        max_attributes: 16,
        max_buffer_bytes: 1024,
    };
    let (whole, werr) = run(data, &[], limits);
    let (split, serr) = run(data, if chunks.is_empty() { &[1] } else { chunks }, limits);
    let a: Vec<String> = whole.iter().map(summary).collect();
    let b: Vec<String> = split.iter().map(summary).collect();
    assert_eq!(a, b, "events depend on the chunking");
    assert_eq!(werr, serr, "error depends on the chunking");
    let big = Limits {
        max_stanza_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_attributes: usize::MAX,
        max_buffer_bytes: usize::MAX,
    };
    for e in &whole {
        if let Event::Stanza(s) = e {
            let el: Element<Node> = Element::from_stanza(s.clone());
            for out in [
                serialize(&el, "jabber:client"),
                serialize_canonical(&el, "jabber:client"),
            ] {
                let Ok(out) = out else { continue };
                let back = parse_fragment(&out, "jabber:client", big).expect("output parses");
                let back: Element<Node> = Element::from_stanza(back);
                assert!(
                    equal::<Node>(&el, &back, 0).expect("compare"),
                    "roundtrip differs"
                );
            }
        }
    }
});
