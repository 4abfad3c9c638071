//! Sightings: what a national CERT writes to its own `cert.<cc>.sightings` topic. Three forms
//! are read, told apart per object, in one record, an array, a STIX bundle or JSON Lines:
//!
//! - **STIX 2.1** `sighting` objects (`"type": "sighting"`): `sighting_of_ref` names the
//!   `indicator--` object the CERT was sent, and that indicator must be in the same record (a
//!   bundle of the indicator and its sightings): its pattern says which indicator it is. iocflow's
//!   STIX ids are UUIDv5 hashes of the indicator id, which cannot be turned back into one.
//!   `count` (default 1), `first_seen`, `last_seen`; the label from `object_marking_refs` (TLP
//!   1.0 and 2.0 markings, by standard id or inline; anything else counts as RED); a false
//!   positive is marked `"x_iocflow_false_positive": true`.
//! - **MISP** sightings (`"type"` a number 0, 1 or 2, or its string; optionally wrapped as
//!   `{"Sighting": {…}}`): `value` (its type is recognised as a list's values are), `timestamp`
//!   (epoch seconds). Type 0 is a sighting, 1 a false positive, 2 an expiration. MISP sightings
//!   have no label: an optional `tlp` is read. `source` (the CERT's own sensor) is not passed on:
//!   a record shows which CERTs sighted an indicator (`sighted_by`), not their sensors.
//! - **canonical** JSON (`"kind"`): `"kind": "sighting" | "false_positive"`, `type` and `value`,
//!   `count` (default 1), `seen_at`, `tlp`.
//!
//! A sighting's label is its own, AMBER when it says none. A sighting that names its indicator
//! only by an id (`id`, MISP `uuid`, or a STIX `sighting_of_ref` without its indicator) is
//! dead-lettered as `unknown_indicator`: the routing needs the value (its country, its
//! organisation), and the state keeps ids only. Objects of other STIX types are context.

use super::{Decoded, Limits, Reason, json_time, report_of, scalar_text, stix_pattern, stix2};
use crate::sighting::{Sighting, SightingKind};
use crate::time::Millis;
use crate::{Indicator, IndicatorType, Report, Tlp};
use serde_json::Value;
use std::collections::HashMap;

/// The label of a sighting that says none.
pub const DEFAULT_LABEL: Tlp = Tlp::Amber;

/// The most a sighting may count (STIX's own limit).
const MAX_COUNT: u64 = 999_999_999;

type ItemResult = Result<Vec<Report>, (Reason, String)>;

pub(super) fn decode(text: &str, limits: &Limits) -> Decoded {
    let mut out = Decoded::default();
    let Some(docs) = super::json_values(text, limits, &mut out) else {
        return out;
    };
    let mut items = Vec::new();
    for doc in docs {
        flatten(doc, &mut items);
    }
    if items.len() > limits.max_indicators.saturating_mul(4) {
        return Decoded::rejected(Reason::TooManyIndicators, format!("more than {} objects", limits.max_indicators));
    }
    let is_stix = |o: &Value, kind: &str| o["type"].as_str() == Some(kind) && o["id"].is_string();
    let indicators: HashMap<&str, &Value> =
        items.iter().filter(|o| is_stix(o, "indicator")).filter_map(|o| Some((o["id"].as_str()?, o))).collect();
    let markings: HashMap<&str, Tlp> = items
        .iter()
        .filter(|o| is_stix(o, "marking-definition"))
        .filter_map(|o| {
            let label = stix2::marking_label(
                o["id"].as_str(),
                &o["extensions"],
                o["definition_type"].as_str(),
                &o["definition"],
            );
            Some((o["id"].as_str()?, label))
        })
        .collect();
    for (n, item) in items.iter().enumerate() {
        let read = match item {
            Value::Object(o) if o.contains_key("kind") => canonical(item),
            Value::Object(_) if item["type"].is_number() || item["type"].as_str().is_some_and(is_misp_type) => {
                misp(item)
            }
            Value::Object(_) if item["type"] == "sighting" => stix(item, &indicators, &markings),
            // Indicators, markings, identities: the context of STIX sightings.
            Value::Object(_) if item["type"].is_string() && item["id"].is_string() => continue,
            Value::Object(_) => Err((
                Reason::MissingField,
                "neither a STIX sighting, a MISP sighting (type 0, 1 or 2) nor a canonical one (kind)".into(),
            )),
            _ => Err((Reason::NotAnObject, "not a JSON object".into())),
        };
        match read {
            Ok(reports) => out.reports.extend(reports),
            Err((reason, why)) => out.item_failed(reason, format!("sighting {}: {why}", n + 1)),
        }
    }
    out
}

fn is_misp_type(t: &str) -> bool {
    matches!(t, "0" | "1" | "2")
}

/// The objects of a document: an array's items, a STIX bundle's objects, a MISP `Sighting`
/// wrapper's content, or the document itself.
fn flatten(doc: Value, out: &mut Vec<Value>) {
    match doc {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Value::Object(mut o) if o.get("type").and_then(Value::as_str) == Some("bundle") => {
            if let Some(Value::Array(objects)) = o.remove("objects") {
                out.extend(objects);
            }
        }
        Value::Object(mut o) if o.len() == 1 && o.contains_key("Sighting") => {
            flatten(o.remove("Sighting").unwrap_or_default(), out)
        }
        other => out.push(other),
    }
}

/// A sighting of `indicator`: seen `count` times between `first_seen` and `last_seen`.
fn sighting(
    indicator: Indicator,
    kind: SightingKind,
    count: u32,
    tlp: Tlp,
    (first_seen, last_seen): (Option<Millis>, Option<Millis>),
) -> Report {
    Report {
        first_seen,
        last_seen: last_seen.or(first_seen),
        sighting: Some(Sighting { kind, count }),
        ..Report::new(indicator, tlp)
    }
}

fn count(v: &Value) -> Result<u32, (Reason, String)> {
    match v {
        Value::Null => Ok(1),
        v => v
            .as_u64()
            .filter(|c| *c <= MAX_COUNT)
            .map(|c| c as u32)
            .ok_or_else(|| (Reason::InvalidValue, format!("count {v} is not a whole number up to {MAX_COUNT}"))),
    }
}

fn label(v: &Value) -> Result<Tlp, (Reason, String)> {
    match v {
        Value::Null => Ok(DEFAULT_LABEL),
        Value::String(s) => Ok(Tlp::parse(s)),
        other => Err((Reason::InvalidValue, format!("tlp {other} is not a label"))),
    }
}

fn time(v: &Value, field: &str) -> Result<Option<Millis>, (Reason, String)> {
    match v {
        Value::Null => Ok(None),
        v => json_time(v).map(Some).ok_or_else(|| (Reason::InvalidValue, format!("{field} {v} is not a timestamp"))),
    }
}

fn only_by_id(what: &str) -> (Reason, String) {
    (Reason::UnknownIndicator, format!("names its indicator only by {what}: give its type and value"))
}

fn canonical(o: &Value) -> ItemResult {
    let kind = match o["kind"].as_str() {
        Some("sighting") => SightingKind::Seen,
        Some("false_positive") => SightingKind::FalsePositive,
        _ => {
            return Err((
                Reason::InvalidValue,
                format!("kind {} is not \"sighting\" or \"false_positive\"", o["kind"]),
            ));
        }
    };
    let indicator = match (o["type"].as_str(), scalar_text(&o["value"])) {
        (Some(t), Some(v)) => {
            let t = IndicatorType::parse(t).map_err(|e| (Reason::UnsupportedType, e.to_string()))?;
            report_of(t, &v, &super::FeedDefaults { tlp: DEFAULT_LABEL, confidence: None })?.indicator
        }
        _ if !o["id"].is_null() => return Err(only_by_id("its id")),
        _ => return Err((Reason::MissingField, "type and value: missing".into())),
    };
    let seen = time(&o["seen_at"], "seen_at")?;
    Ok(vec![sighting(indicator, kind, count(&o["count"])?, label(&o["tlp"])?, (seen, seen))])
}

fn misp(o: &Value) -> ItemResult {
    let kind = match scalar_text(&o["type"]).as_deref() {
        Some("0") => SightingKind::Seen,
        Some("1") => SightingKind::FalsePositive,
        Some("2") => SightingKind::Expiration,
        _ => return Err((Reason::InvalidValue, format!("type {} is not 0, 1 or 2", o["type"]))),
    };
    let Some(value) = scalar_text(&o["value"]) else {
        return Err(if o["uuid"].is_null() && o["id"].is_null() {
            (Reason::MissingField, "value: missing".into())
        } else {
            only_by_id("a MISP id or uuid")
        });
    };
    let indicator = Indicator::detect(&value).map_err(|e| (Reason::InvalidValue, e.to_string()))?;
    let seen = time(&o["timestamp"], "timestamp")?;
    Ok(vec![sighting(indicator, kind, 1, label(&o["tlp"])?, (seen, seen))])
}

fn stix(o: &Value, indicators: &HashMap<&str, &Value>, markings: &HashMap<&str, Tlp>) -> ItemResult {
    let of = o["sighting_of_ref"].as_str().ok_or((Reason::MissingField, "sighting_of_ref: missing".to_string()))?;
    let Some(indicator) = indicators.get(of) else {
        return Err((
            Reason::UnknownIndicator,
            format!(
                "sighting_of_ref {of}: the indicator is not in the record (send it in one bundle with its sightings)"
            ),
        ));
    };
    let pattern = indicator["pattern"].as_str().ok_or((Reason::MissingField, format!("{of}: no pattern")))?;
    let values =
        stix_pattern::indicators(pattern).map_err(|e| (Reason::UnsupportedPattern, format!("{pattern}: {e}")))?;
    let refs = o["object_marking_refs"].as_array().map(Vec::as_slice).unwrap_or_default();
    let tlp = refs.iter().fold(None::<Tlp>, |label, r| {
        let id = r.as_str().unwrap_or_default();
        let this = stix2::TLP_MARKINGS
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, t)| *t)
            .or_else(|| markings.get(id).copied())
            .unwrap_or(Tlp::Red);
        Some(label.map_or(this, |l| l.strictest(this)))
    });
    let kind = match &o["x_iocflow_false_positive"] {
        Value::Bool(true) => SightingKind::FalsePositive,
        Value::Bool(false) | Value::Null => SightingKind::Seen,
        other => return Err((Reason::InvalidValue, format!("x_iocflow_false_positive {other} is not a boolean"))),
    };
    let times = (time(&o["first_seen"], "first_seen")?, time(&o["last_seen"], "last_seen")?);
    let count = count(&o["count"])?;
    values
        .into_iter()
        .map(|(t, v)| {
            let indicator = Indicator::new(t, &v).map_err(|e| (Reason::InvalidValue, e.to_string()))?;
            Ok(sighting(indicator, kind, count, tlp.unwrap_or(DEFAULT_LABEL), times))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::decode_sightings;
    use super::*;

    fn run(text: &str) -> Decoded {
        decode_sightings(text.as_bytes(), &Limits::default())
    }

    fn kinds(d: &Decoded) -> Vec<(String, SightingKind, u32, Tlp)> {
        d.reports
            .iter()
            .map(|r| {
                let s = r.sighting.unwrap();
                (r.indicator.value.clone(), s.kind, s.count, r.tlp)
            })
            .collect()
    }

    const INDICATOR: &str = r#"{"type":"indicator","spec_version":"2.1",
        "id":"indicator--3f5e2c1a-0000-5000-8000-000000000001","pattern":"[ipv4-addr:value = '203.0.113.9']",
        "pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}"#;

    #[test]
    fn a_stix_bundle_of_an_indicator_and_its_sightings() {
        let text = format!(
            r#"{{"type":"bundle","id":"bundle--1","objects":[{INDICATOR},
            {{"type":"sighting","spec_version":"2.1","id":"sighting--1",
              "sighting_of_ref":"indicator--3f5e2c1a-0000-5000-8000-000000000001","count":3,
              "first_seen":"2026-02-01T00:00:00Z","last_seen":"2026-02-03T00:00:00Z",
              "object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}},
            {{"type":"sighting","spec_version":"2.1","id":"sighting--2",
              "sighting_of_ref":"indicator--3f5e2c1a-0000-5000-8000-000000000001","x_iocflow_false_positive":true}}]}}"#
        );
        let d = run(&text);
        assert_eq!(d.rejection, None);
        assert_eq!(
            kinds(&d),
            [
                ("203.0.113.9".into(), SightingKind::Seen, 3, Tlp::Green),
                ("203.0.113.9".into(), SightingKind::FalsePositive, 1, Tlp::Amber)
            ]
        );
        assert_eq!(d.reports[0].first_seen, crate::time::parse_str("2026-02-01T00:00:00Z"));
        assert_eq!(d.reports[0].last_seen, crate::time::parse_str("2026-02-03T00:00:00Z"));
    }

    #[test]
    fn a_stix_sighting_without_its_indicator_is_unknown() {
        let d = run(r#"{"type":"sighting","spec_version":"2.1","id":"sighting--1",
            "sighting_of_ref":"indicator--3f5e2c1a-0000-5000-8000-000000000001"}"#);
        let r = d.rejection.unwrap();
        assert_eq!(r.reason, Reason::UnknownIndicator);
        assert!(r.detail.contains("not in the record"), "{}", r.detail);
    }

    #[test]
    fn misp_sightings_of_every_type() {
        let d = run(r#"[{"value":"evil[.]example.com","type":"0","timestamp":"1767225600","source":"sensor-7"},
            {"Sighting":{"value":"198.51.100.7","type":1}},{"value":"http://x.example/a","type":2,"tlp":"green"}]"#);
        assert_eq!(d.rejection, None);
        assert_eq!(
            kinds(&d),
            [
                ("evil.example.com".into(), SightingKind::Seen, 1, Tlp::Amber),
                ("198.51.100.7".into(), SightingKind::FalsePositive, 1, Tlp::Amber),
                ("http://x.example/a".into(), SightingKind::Expiration, 1, Tlp::Green)
            ]
        );
        assert_eq!(d.reports[0].first_seen, Some(1_767_225_600_000));
        assert!(d.reports[0].tags.is_empty(), "a CERT's sensor is not passed on");
        let by_uuid = run(r#"{"uuid":"5b1e0000-0000-4000-8000-000000000001","type":0}"#);
        assert_eq!(by_uuid.rejection.unwrap().reason, Reason::UnknownIndicator);
    }

    #[test]
    fn canonical_sightings_and_what_is_refused() {
        let d = run(concat!(
            r#"{"kind":"sighting","type":"domain","value":"Bad.Example","count":2,"seen_at":"2026-03-01T00:00:00Z","tlp":"CLEAR"}"#,
            "\n",
            r#"{"kind":"false_positive","type":"ipv4","value":"192.0.2.1"}"#,
            "\n",
            r#"{"kind":"sighting","id":"0123456789abcdef0123456789abcdef"}"#,
            "\n",
            r#"{"kind":"maybe","type":"ipv4","value":"192.0.2.1"}"#
        ));
        assert_eq!(
            kinds(&d),
            [
                ("bad.example".into(), SightingKind::Seen, 2, Tlp::Clear),
                ("192.0.2.1".into(), SightingKind::FalsePositive, 1, Tlp::Amber)
            ]
        );
        let r = d.rejection.unwrap();
        assert_eq!((r.reason, r.failed_items), (Reason::UnknownIndicator, 2));
        for (bad, reason) in [
            (r#"{"kind":"sighting","type":"ipv4","value":"192.0.2.1","count":-1}"#, Reason::InvalidValue),
            (r#"{"kind":"sighting","type":"ipv4","value":"192.0.2.1","seen_at":"soon"}"#, Reason::InvalidValue),
            (r#"{"kind":"sighting","type":"ipv4","value":"not an ip"}"#, Reason::InvalidValue),
            (r#"{"hello":"world"}"#, Reason::MissingField),
            (r#"[1,2]"#, Reason::NotAnObject),
            ("{", Reason::InvalidJson),
        ] {
            assert_eq!(run(bad).rejection.map(|r| r.reason), Some(reason), "{bad}");
        }
    }
}
