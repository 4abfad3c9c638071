//! STIX 2.1 (format `stix2`): bundles or single objects; indicators with `pattern_type: stix`.
//!
//! Each indicator's pattern is read by `stix_pattern` (a refused pattern is a failed item with
//! reason `unsupported_pattern`). Its label is the strictest of its `object_marking_refs` and the
//! feed default: TLP 1.0 and 2.0 marking definitions are known by their standard ids and read
//! from inline marking-definition objects in the same bundle; any other marking counts as RED
//! (fail closed). `valid_from`/`valid_until`, `confidence`, `indicator_types` (threat and tags),
//! `labels` (tags) and `revoked` are kept. Objects other than indicators are context, not input.

use super::{Decoded, FeedDefaults, Limits, RawObject, Reason, raw_text, raw_time, raw_value, report_of, stix_pattern};
use crate::{Report, Tlp};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// The standard TLP marking definitions (TLP 1.0 and 2.0).
pub const TLP_MARKINGS: [(&str, Tlp); 9] = [
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", Tlp::Clear), // TLP:WHITE (1.0)
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", Tlp::Green), // TLP:GREEN (1.0)
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", Tlp::Amber), // TLP:AMBER (1.0)
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", Tlp::Red),   // TLP:RED (1.0)
    ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", Tlp::Clear), // TLP:CLEAR (2.0)
    ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", Tlp::Green), // TLP:GREEN (2.0)
    ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", Tlp::Amber), // TLP:AMBER (2.0)
    ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", Tlp::AmberStrict), // TLP:AMBER+STRICT
    ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", Tlp::Red),   // TLP:RED (2.0)
];

/// The TLP 2.0 marking definition of a label, by its standard id; a label TLP 2.0 has no
/// marking for (unknown) is marked RED, never left unmarked.
pub fn tlp2_marking(tlp: Tlp) -> &'static str {
    let tlp2 = &TLP_MARKINGS[4..];
    let red = tlp2.iter().find(|(_, t)| *t == Tlp::Red).map(|(id, _)| *id).expect("TLP:RED is listed");
    tlp2.iter().find(|(_, t)| *t == tlp).map_or(red, |(id, _)| *id)
}

/// The TLP 2.0 marking-definition extension.
const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// A JSON document read in one pass: an object (its properties kept raw, see [`RawObject`]; a
/// STIX decoder reads a dozen of them, and parsing whole bundles into `serde_json::Value`s was
/// half of its time), a list, or anything else (skipped unread).
enum Node<'a> {
    Object(RawObject<'a>),
    List(Vec<Node<'a>>),
    Other,
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("STIX JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Node<'de>, A::Error> {
        RawObject::from_map(map).map(Node::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node<'de>, E> {
        Ok(Node::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node<'de>, E> {
        Ok(Node::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node<'de>, E> {
        Ok(Node::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node<'de>, E> {
        Ok(Node::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node<'de>, E> {
        Ok(Node::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Other)
    }
}

/// An object's `type`.
fn kind<'a>(o: &RawObject<'a>) -> Option<Cow<'a, str>> {
    raw_text(o.get("type"))
}

pub(super) fn decode(text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    let Some(docs) = super::json_documents(text, limits, &mut out) else {
        return out;
    };
    let mut items = Vec::new();
    for doc in docs {
        match serde_json::from_str::<Node<'_>>(doc.get()) {
            Ok(node) => flatten(node, &mut items),
            Err(e) => out.item_failed(Reason::InvalidJson, e),
        }
    }
    if items.len() > limits.max_indicators.saturating_mul(4) {
        return Decoded::rejected(Reason::TooManyIndicators, format!("more than {} objects", limits.max_indicators));
    }
    let objects = || items.iter().filter_map(|i| if let Node::Object(o) = i { Some(o) } else { None });
    let markings: HashMap<Cow<'_, str>, Tlp> = objects()
        .filter(|o| kind(o).as_deref() == Some("marking-definition"))
        .filter_map(|o| Some((raw_text(o.get("id"))?, marking_tlp(o))))
        .collect();
    for item in &items {
        let Node::Object(o) = item else {
            out.item_failed(Reason::NotAnObject, "a STIX object that is not a JSON object");
            continue;
        };
        if kind(o).as_deref() != Some("indicator") {
            continue;
        }
        if let Err((reason, why)) = indicator(o, &markings, defaults, &mut out.reports) {
            let id = raw_text(o.get("id"));
            out.item_failed(reason, format!("{}: {why}", id.as_deref().unwrap_or("indicator without id")));
        }
    }
    out
}

/// The items of a document: a list's items (lists and bundles in it flattened too), a
/// bundle's objects, or the document itself.
fn flatten<'a>(node: Node<'a>, out: &mut Vec<Node<'a>>) {
    match node {
        Node::List(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Node::Object(o) if kind(&o).as_deref() == Some("bundle") => {
            // A bundle whose `objects` is not a list holds nothing.
            if let Some(Ok(Node::List(objects))) = o.get("objects").map(|raw| serde_json::from_str(raw.get())) {
                out.extend(objects);
            }
        }
        other => out.push(other),
    }
}

/// An array property's items as text (`None` for an item that is not a string); nothing when
/// it is absent or not an array.
fn texts(raw: Option<&RawValue>) -> impl Iterator<Item = Option<Cow<'_, str>>> {
    raw.and_then(|r| serde_json::from_str::<Vec<&RawValue>>(r.get()).ok())
        .into_iter()
        .flatten()
        .map(|item| raw_text(Some(item)))
}

/// The label of an inline marking definition; anything that is not a TLP marking is RED.
fn marking_tlp(o: &RawObject<'_>) -> Tlp {
    marking_label(
        raw_text(o.get("id")).as_deref(),
        &raw_value(o.get("extensions")),
        raw_text(o.get("definition_type")).as_deref(),
        &raw_value(o.get("definition")),
    )
}

/// The label of a marking definition by its `id`, `extensions`, `definition_type` and
/// `definition` (TLP 1.0 and 2.0, by standard id or by content); anything else is RED.
pub(super) fn marking_label(
    id: Option<&str>,
    extensions: &serde_json::Value,
    definition_type: Option<&str>,
    definition: &serde_json::Value,
) -> Tlp {
    if let Some((_, tlp)) = TLP_MARKINGS.iter().find(|(m, _)| Some(*m) == id) {
        return *tlp;
    }
    if let Some(t) = extensions[TLP2_EXTENSION]["tlp_2_0"].as_str() {
        return known_or_red(Tlp::parse(t));
    }
    if definition_type == Some("tlp")
        && let Some(t) = definition["tlp"].as_str()
    {
        return known_or_red(Tlp::parse(t));
    }
    Tlp::Red
}

fn known_or_red(t: Tlp) -> Tlp {
    if t == Tlp::Unknown { Tlp::Red } else { t }
}

fn indicator(
    o: &RawObject<'_>,
    markings: &HashMap<Cow<'_, str>, Tlp>,
    defaults: &FeedDefaults,
    reports: &mut Vec<Report>,
) -> Result<(), (Reason, String)> {
    match raw_text(o.get("pattern_type")).as_deref() {
        Some("stix") => {}
        Some(other) => return Err((Reason::UnsupportedPattern, format!("pattern_type {other}"))),
        None => return Err((Reason::MissingField, "no pattern_type".into())),
    }
    let pattern = raw_text(o.get("pattern")).ok_or((Reason::MissingField, "no pattern".to_string()))?;
    let values =
        stix_pattern::indicators(&pattern).map_err(|e| (Reason::UnsupportedPattern, format!("{pattern}: {e}")))?;
    let mut label = defaults.tlp;
    for r in texts(o.get("object_marking_refs")) {
        let id = r.as_deref().unwrap_or_default();
        let tlp = TLP_MARKINGS
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, t)| *t)
            .or_else(|| markings.get(id).copied())
            .unwrap_or(Tlp::Red);
        label = label.strictest(tlp);
    }
    let confidence = super::raw_confidence(o.get("confidence"))?.or(defaults.confidence);
    let types: Vec<String> = texts(o.get("indicator_types")).flatten().map(Cow::into_owned).collect();
    let mut tags = types.clone();
    tags.extend(texts(o.get("labels")).flatten().map(Cow::into_owned));
    let (first_seen, last_seen, valid_until) =
        (raw_time(o.get("valid_from")), raw_time(o.get("modified")), raw_time(o.get("valid_until")));
    let revoked = o.get("revoked").is_some_and(|r| r.get() == "true");
    let mut parsed = Vec::with_capacity(values.len());
    for (kind, value) in values {
        let mut r = report_of(kind, &value, defaults)?;
        r.tlp = label;
        r.confidence = confidence;
        r.threat = types.first().cloned();
        r.tags = tags.clone();
        r.first_seen = first_seen;
        r.last_seen = last_seen;
        r.valid_until = valid_until;
        r.revoked = revoked;
        parsed.push(r);
    }
    reports.extend(parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, decode};
    use super::*;

    fn run(text: &str) -> Decoded {
        let defaults = FeedDefaults { tlp: Tlp::Clear, confidence: None };
        decode(&Decoder::Stix2, text.as_bytes(), &Limits::default(), &defaults)
    }

    fn indicator(pattern: &str, extra: &str) -> String {
        format!(
            r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--0b2b6d4e-0000-4000-8000-000000000001",
               "created":"2024-05-01T10:00:00.000Z","modified":"2024-05-02T10:00:00.000Z",
               "pattern":"{pattern}","pattern_type":"stix","valid_from":"2024-05-01T10:00:00Z"{extra}}}"#
        )
    }

    #[test]
    fn a_bundle_with_markings_by_id_and_inline() {
        let custom_tlp1 = r#"{"type":"marking-definition","id":"marking-definition--00000000-0000-4000-8000-00000000000a","definition_type":"tlp","definition":{"tlp":"green"}}"#;
        let custom_tlp2 = r#"{"type":"marking-definition","id":"marking-definition--00000000-0000-4000-8000-00000000000b","extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"amber+strict"}}}"#;
        let statement = r#"{"type":"marking-definition","id":"marking-definition--00000000-0000-4000-8000-00000000000c","definition_type":"statement","definition":{"statement":"Copyright Example"}}"#;
        let bundle = format!(
            r#"{{"type":"bundle","id":"bundle--1","objects":[{custom_tlp1},{custom_tlp2},{statement},
                {{"type":"identity","id":"identity--1","name":"Example"}},
                {},{},{},{},{}]}}"#,
            indicator(
                "[ipv4-addr:value = '198.51.100.1']",
                r#","object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],"confidence":85,"indicator_types":["malicious-activity"],"labels":["c2"]"#
            ),
            indicator(
                "[domain-name:value = 'a.example.sg']",
                r#","object_marking_refs":["marking-definition--00000000-0000-4000-8000-00000000000a"]"#
            ),
            indicator(
                "[domain-name:value = 'b.example.sg']",
                r#","object_marking_refs":["marking-definition--00000000-0000-4000-8000-00000000000b"]"#
            ),
            indicator(
                "[domain-name:value = 'c.example.sg']",
                r#","object_marking_refs":["marking-definition--00000000-0000-4000-8000-00000000000c"]"#
            ),
            indicator(
                "[domain-name:value = 'd.example.sg']",
                r#","object_marking_refs":["marking-definition--ffffffff-0000-4000-8000-000000000000"],"revoked":true,"valid_until":"2025-01-01T00:00:00Z""#
            ),
        );
        let d = run(&bundle);
        assert_eq!(d.rejection, None);
        let labels: Vec<(&str, Tlp)> = d.reports.iter().map(|r| (r.indicator.value.as_str(), r.tlp)).collect();
        assert_eq!(
            labels,
            [
                ("198.51.100.1", Tlp::Green),
                ("a.example.sg", Tlp::Green),
                ("b.example.sg", Tlp::AmberStrict),
                ("c.example.sg", Tlp::Red),
                ("d.example.sg", Tlp::Red)
            ]
        );
        let r = &d.reports[0];
        assert_eq!(r.confidence, Some(85));
        assert_eq!(r.threat.as_deref(), Some("malicious-activity"));
        assert_eq!(r.tags, ["malicious-activity", "c2"]);
        assert_eq!(r.first_seen, Some(1_714_557_600_000));
        let revoked = &d.reports[4];
        assert!(revoked.revoked);
        assert_eq!(revoked.valid_until, Some(1_735_689_600_000));
    }

    #[test]
    fn a_single_object_with_several_values() {
        let d = run(&indicator(
            "[file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E' AND file:hashes.'SHA-1' = 'DA39A3EE5E6B4B0D3255BFEF95601890AFD80709']",
            "",
        ));
        let kinds: Vec<&str> = d.reports.iter().map(|r| r.indicator.kind.as_str()).collect();
        assert_eq!(kinds, ["md5", "sha1"]);
        assert_eq!(d.reports[0].tlp, Tlp::Clear);
    }

    #[test]
    fn nested_documents_odd_items_and_escaped_text() {
        // An array holding a bundle and a bare indicator; in the bundle, an item that is not an
        // object and an indicator whose strings have escapes; a bundle whose `objects` is no list.
        let escaped = r#"{"type":"indicator","id":"indicator--3","pattern":"[domain-name:value = \u0027esc.example.sg\u0027]","pattern\u005ftype":"st\u0069x","valid_from":1714557600,"labels":["a\"b",7],"confidence":null,"revoked":true}"#;
        let text = format!(
            r#"[{{"type":"bundle","id":"bundle--1","objects":[42,{escaped}]}},{},{{"type":"bundle","objects":{{}}}}]"#,
            indicator("[ipv4-addr:value = '198.51.100.9']", r#","confidence":101"#)
        );
        let d = run(&text);
        assert_eq!(d.reports.len(), 1);
        let r = &d.reports[0];
        assert_eq!(r.indicator.value, "esc.example.sg");
        assert_eq!(r.tags, ["a\"b"], "strings only");
        assert_eq!((r.first_seen, r.confidence, r.revoked), (Some(1_714_557_600_000), None, true));
        let rejection = d.rejection.unwrap();
        assert_eq!((rejection.reason, rejection.failed_items), (Reason::NotAnObject, 2), "{rejection:?}");
        // As with any JSON reader here, the last of a repeated property counts.
        let twice = r#"{"type":"indicator","id":"indicator--4","pattern":"x","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix"}"#;
        assert_eq!(run(twice).reports[0].indicator.value, "198.51.100.1");
    }

    #[test]
    fn refused_and_broken_indicators() {
        let d = run(&format!(
            "[{},{},{}]",
            indicator("[ipv4-addr:value = '198.51.100.1' AND domain-name:value = 'x.example']", ""),
            indicator("[ipv4-addr:value = '198.51.100.2']", ""),
            indicator("[ipv4-addr:value = '999.1.1.1']", "")
        ));
        assert_eq!(d.reports.len(), 1);
        let r = d.rejection.unwrap();
        assert_eq!((r.reason, r.failed_items), (Reason::UnsupportedPattern, 2));
        let sigma = r#"{"type":"indicator","id":"indicator--2","pattern":"title: x","pattern_type":"sigma"}"#;
        assert_eq!(run(sigma).rejection.unwrap().reason, Reason::UnsupportedPattern);
        let only_context = r#"{"type":"bundle","id":"bundle--2","objects":[{"type":"identity","id":"identity--1"}]}"#;
        assert_eq!(run(only_context).rejection.unwrap().reason, Reason::Empty);
    }
}
