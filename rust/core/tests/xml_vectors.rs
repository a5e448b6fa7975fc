//! Runs every shared XML vector (`tests/vectors/xml/{y,n}_*.{xml,json}`) through the
//! Rust parser: whole-buffer feed, byte-at-a-time feed and pseudo-random chunkings
//! must all give the events (and error condition) the JSON file lists.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use xmppx_core::xml::{equal, serialize, Element, Event, Limits, Node, StreamParser, View};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/xml")
}

fn limits(spec: &Value) -> Limits {
    let mut l = Limits::default();
    if let Some(m) = spec.get("limits").and_then(Value::as_object) {
        for (k, v) in m {
            let n = v.as_u64().expect("limit is a number") as usize;
            match k.as_str() {
                "max_stanza_bytes" => l.max_stanza_bytes = n,
                "max_depth" => l.max_depth = n,
                "max_attributes" => l.max_attributes = n,
                "max_buffer_bytes" => l.max_buffer_bytes = n,
                other => panic!("unknown limit {other}"),
            }
        }
    }
    l
}

fn pairs(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or_default().to_owned(),
                        p[1].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON form of an element seen through a view (children decoded recursively).
fn view_json(v: &dyn View<Node>) -> Value {
    let attrs: Vec<Value> = v
        .attrs()
        .iter()
        .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
        .collect();
    let mut children = Vec::new();
    for c in v.children_list().expect("children") {
        let j = xmppx_core::xml::with_child(&c, view_json).expect("child");
        children.push(j);
    }
    serde_json::json!({
        "name": v.name(), "namespace": v.namespace(), "attrs": attrs,
        "text": v.text(), "tail": v.tail(), "children": children,
    })
}

fn norm_element(v: &Value) -> Value {
    let mut o = v.as_object().cloned().unwrap_or_default();
    let attrs = pairs(&o["attrs"]);
    o.insert(
        "attrs".into(),
        serde_json::to_value(attrs).unwrap_or_default(),
    );
    let ch: Vec<Value> = o
        .get("children")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(norm_element)
        .collect();
    o.insert("children".into(), Value::from(ch));
    Value::Object(o)
}

fn event_json(e: &Event) -> Value {
    match e {
        Event::Header(h) => {
            let attrs: BTreeMap<_, _> = h.attrs.iter().cloned().collect();
            let nsmap: BTreeMap<_, _> = h.nsmap.iter().cloned().collect();
            serde_json::json!({"header": {"name": h.name, "namespace": h.namespace,
                "attrs": attrs, "nsmap": nsmap}})
        }
        Event::Stanza(s) => {
            let el: Element<Node> = Element::from_stanza(s.clone());
            serde_json::json!({"element": norm_element(&view_json(&el))})
        }
        Event::End => serde_json::json!({"end": true}),
    }
}

fn norm_expected(e: &Value) -> Value {
    if let Some(h) = e.get("header") {
        serde_json::json!({"header": {"name": h["name"], "namespace": h["namespace"],
            "attrs": pairs(&h["attrs"]), "nsmap": pairs(&h["nsmap"])}})
    } else if let Some(el) = e.get("element") {
        serde_json::json!({"element": norm_element(el)})
    } else {
        serde_json::json!({"end": true})
    }
}

/// Feed `data` in the given chunk sizes (cycled); returns events and error condition.
fn run(data: &[u8], l: Limits, chunks: &[usize]) -> (Vec<Value>, Option<String>, Vec<Event>) {
    let mut p = StreamParser::new(l);
    let mut all = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < data.len() {
        let n = chunks[k % chunks.len()].max(1).min(data.len() - i);
        k += 1;
        let mut out = Vec::new();
        let r = p.feed(&data[i..i + n], &mut out);
        all.extend(out);
        if let Err(e) = r {
            // dead afterwards, with the same condition
            let mut more = Vec::new();
            let again = p.feed(b" ", &mut more).expect_err("parser must stay dead");
            assert_eq!(again.condition, e.condition);
            assert!(more.is_empty());
            let j = all.iter().map(event_json).collect();
            return (j, Some(e.condition.as_str().to_owned()), all);
        }
        i += n;
    }
    let j = all.iter().map(event_json).collect();
    (j, None, all)
}

#[test]
fn xml_vectors() {
    let dir = vectors_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("vector dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".xml") && (n.starts_with("y_") || n.starts_with("n_")))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no vectors found in {}", dir.display());
    let mut failures = Vec::new();
    for name in &names {
        let data = std::fs::read(dir.join(name)).expect("read xml");
        let spec: Value = serde_json::from_slice(
            &std::fs::read(dir.join(name.replace(".xml", ".json"))).expect("read json"),
        )
        .expect("json");
        let l = limits(&spec);
        let want_events: Vec<Value> = spec["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(norm_expected)
            .collect();
        let want_err = spec.get("error").and_then(Value::as_str).map(str::to_owned);
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ data.len() as u64;
        let mut random = Vec::new();
        for _ in 0..16 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            random.push((seed % 7 + 1) as usize);
        }
        let chunkings: [(&str, Vec<usize>); 3] = [
            ("whole", vec![usize::MAX]),
            ("bytewise", vec![1]),
            ("random", random),
        ];
        for (how, chunks) in chunkings {
            let (events, err, raw_events) = run(&data, l, &chunks);
            if events != want_events || err != want_err {
                failures.push(format!(
                    "{name} ({how}):\n  want {want_err:?} {}\n  got  {err:?} {}",
                    Value::from(want_events.clone()),
                    Value::from(events)
                ));
                break;
            }
            // parse(serialize(x)) == x for every stanza, raw and canonical
            for e in &raw_events {
                if let Event::Stanza(s) = e {
                    let el: Element<Node> = Element::from_stanza(s.clone());
                    for canonical in [false, true] {
                        let bytes = if canonical {
                            xmppx_core::xml::serialize_canonical(&el, "jabber:client")
                        } else {
                            serialize(&el, "jabber:client")
                        }
                        .expect("serialize");
                        let back = xmppx_core::xml::parse_fragment(
                            &bytes,
                            "jabber:client",
                            Limits {
                                max_stanza_bytes: usize::MAX,
                                max_depth: usize::MAX,
                                max_attributes: usize::MAX,
                                max_buffer_bytes: usize::MAX,
                            },
                        )
                        .unwrap_or_else(|e| {
                            panic!("{name}: reparse {e}: {}", String::from_utf8_lossy(&bytes))
                        });
                        let back: Element<Node> = Element::from_stanza(back);
                        assert!(
                            equal::<Node>(&el, &back, 0).expect("eq"),
                            "{name}: roundtrip differs: {}",
                            String::from_utf8_lossy(&bytes)
                        );
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// `parse_fragment` refuses input that ends inside anything after the element (here a
/// character's bytes, which a stream would wait for), as the pure-Python `parse` does.
#[test]
fn fragment_input_ending_inside_a_character_is_not_well_formed() {
    for data in [
        &b"<a/>\xc3"[..],
        b"<a/>\xe2\x80",
        b"<a/> \xc3",
        b"<a/><![CDATA[ ",
    ] {
        let e = xmppx_core::xml::parse_fragment(data, "jabber:client", Limits::default())
            .expect_err("incomplete input");
        assert_eq!(e.condition.as_str(), "not-well-formed", "{data:?}");
    }
    assert!(xmppx_core::xml::parse_fragment(b" <a/> \n", "", Limits::default()).is_ok());
}
