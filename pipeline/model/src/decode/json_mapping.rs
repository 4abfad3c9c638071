//! Vendor JSON read through a per-feed field mapping (format `json` with a `[feeds.json]` table):
//! abuse.ch Feodo Tracker and ThreatFox exports, PhishTank's feed, and the like.
//!
//! Fields are JSON pointers (RFC 6901) into each record. `records` points at the list of records:
//! an array, or `/*` for "every value of the top-level object" (ThreatFox's export keys records
//! by id, each an array of one object). The type is fixed per feed or read per record through
//! `type_pointer` (ThreatFox's `ip:port`, `domain`, `url`, `md5_hash` …).

use super::field_mapping::{FieldMap, MappedRecord, report};
use super::{Decoded, FeedDefaults, Limits, Reason, json_tags, json_time, scalar_text};
use crate::IndicatorType;
use crate::time::Millis;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMapping {
    /// Pointer to the records; the document itself when absent (an array is its elements).
    pub records: Option<String>,
    /// Pointer to the indicator value.
    pub value: String,
    /// The type of every value, unless `type_pointer` gives it per record.
    #[serde(rename = "type")]
    pub kind: Option<IndicatorType>,
    pub type_pointer: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub threat: Option<String>,
    /// A fixed threat for every record (when no field has one).
    pub threat_value: Option<String>,
    /// Pointers whose values (strings, comma-separated strings or arrays) become tags.
    #[serde(default)]
    pub tags: Vec<String>,
    pub confidence: Option<String>,
    pub target_country: Option<String>,
}

impl JsonMapping {
    /// A mapping reading the value at pointer `value`, everything else absent.
    pub fn new(value: &str) -> JsonMapping {
        JsonMapping {
            records: None,
            value: value.into(),
            kind: None,
            type_pointer: None,
            first_seen: None,
            last_seen: None,
            threat: None,
            threat_value: None,
            tags: Vec::new(),
            confidence: None,
            target_country: None,
        }
    }
}

pub(super) fn decode(m: &JsonMapping, text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    let Some(docs) = super::json_values(text, limits, &mut out) else {
        return out;
    };
    let mut records: Vec<Value> = Vec::new();
    for doc in docs {
        collect_records(m.records.as_deref(), doc, &mut records);
    }
    if records.len() > limits.max_indicators {
        return Decoded::rejected(Reason::TooManyIndicators, format!("more than {} records", limits.max_indicators));
    }
    let map = FieldMap {
        value: m.value.clone(),
        kind: m.kind,
        type_field: m.type_pointer.clone(),
        first_seen: m.first_seen.clone(),
        last_seen: m.last_seen.clone(),
        threat: m.threat.clone(),
        threat_value: m.threat_value.clone(),
        tags: m.tags.clone(),
        confidence: m.confidence.clone(),
        target_country: m.target_country.clone(),
    };
    for (n, rec) in records.iter().enumerate() {
        let reported = if rec.is_object() {
            report(&map, &Record(rec), defaults)
        } else {
            Err((Reason::NotAnObject, "not a JSON object".into()))
        };
        match reported {
            Ok(r) => out.reports.push(r),
            Err((reason, why)) => out.item_failed(reason, format!("record {}: {why}", n + 1)),
        }
    }
    out
}

fn collect_records(pointer: Option<&str>, doc: Value, out: &mut Vec<Value>) {
    let flatten = |v: Value, out: &mut Vec<Value>| match v {
        Value::Array(items) => out.extend(items),
        other => out.push(other),
    };
    match pointer {
        None | Some("") => flatten(doc, out),
        Some("/*") => {
            if let Value::Object(map) = doc {
                for (_, v) in map {
                    flatten(v, out);
                }
            } else {
                flatten(doc, out);
            }
        }
        Some(p) => {
            if let Some(v) = doc.pointer(p) {
                flatten(v.clone(), out);
            }
        }
    }
}

/// A JSON record, its fields by JSON pointer.
struct Record<'r>(&'r Value);

impl MappedRecord for Record<'_> {
    type Field = String;

    fn text(&self, pointer: &String) -> Option<Cow<'_, str>> {
        self.0.pointer(pointer).and_then(scalar_text).map(Cow::Owned)
    }

    fn time(&self, pointer: &String) -> Option<Millis> {
        self.0.pointer(pointer).and_then(json_time)
    }

    fn tags(&self, pointer: &String) -> Vec<String> {
        self.0.pointer(pointer).map(json_tags).unwrap_or_default()
    }

    fn locate(pointer: &String) -> String {
        pointer.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, decode};
    use super::*;
    use crate::Tlp;

    fn run(m: JsonMapping, text: &str) -> Decoded {
        let defaults = FeedDefaults { tlp: Tlp::Clear, confidence: Some(80) };
        decode(&Decoder::Json(Some(m)), text.as_bytes(), &Limits::default(), &defaults)
    }

    #[test]
    fn feodo_tracker_style() {
        let m = JsonMapping {
            kind: Some(IndicatorType::Ipv4),
            first_seen: Some("/first_seen".into()),
            last_seen: Some("/last_online".into()),
            threat_value: Some("c2-server".into()),
            tags: vec!["/malware".into()],
            ..JsonMapping::new("/ip_address")
        };
        let text = r#"[{"ip_address":"192.0.2.50","port":443,"status":"online","as_number":64500,"country":"SG",
                        "first_seen":"2024-05-01 10:00:00","last_online":"2024-05-02","malware":"Dridex"},
                       {"ip_address":"not an ip","malware":"Emotet"}]"#;
        let d = run(m, text);
        assert_eq!(d.reports.len(), 1);
        let r = &d.reports[0];
        assert_eq!(r.indicator.value, "192.0.2.50");
        assert_eq!(r.threat.as_deref(), Some("c2-server"));
        assert_eq!(r.tags, ["Dridex"]);
        assert_eq!(r.first_seen, Some(1_714_557_600_000));
        assert_eq!(r.last_seen, Some(1_714_608_000_000));
        assert_eq!(d.rejection.unwrap().reason, Reason::InvalidValue);
    }

    #[test]
    fn threatfox_export_keyed_by_id() {
        let m = JsonMapping {
            records: Some("/*".into()),
            type_pointer: Some("/ioc_type".into()),
            threat: Some("/threat_type".into()),
            tags: vec!["/tags".into(), "/malware_printable".into()],
            confidence: Some("/confidence_level".into()),
            ..JsonMapping::new("/ioc_value")
        };
        let text = r#"{"1001":[{"ioc_value":"198.51.100.9:4444","ioc_type":"ip:port","threat_type":"botnet_cc",
                         "malware_printable":"Cobalt Strike","confidence_level":75,"tags":"cs,beacon"}],
                       "1002":[{"ioc_value":"c2.example.net","ioc_type":"domain","threat_type":"botnet_cc",
                         "malware_printable":"QakBot","confidence_level":100,"tags":null}]}"#;
        let d = run(m, text);
        assert_eq!(d.rejection, None);
        let got: Vec<(&str, Option<u8>, Vec<String>)> =
            d.reports.iter().map(|r| (r.indicator.value.as_str(), r.confidence, r.tags.clone())).collect();
        assert_eq!(
            got,
            [
                ("198.51.100.9", Some(75), vec!["cs".into(), "beacon".into(), "Cobalt Strike".into()]),
                ("c2.example.net", Some(100), vec!["QakBot".into()])
            ]
        );
    }

    #[test]
    fn phishtank_style_and_records_pointer() {
        let m = JsonMapping {
            records: Some("/data".into()),
            kind: Some(IndicatorType::Url),
            first_seen: Some("/submission_time".into()),
            threat_value: Some("phishing".into()),
            ..JsonMapping::new("/url")
        };
        let d = run(
            m,
            r#"{"data":[{"phish_id":"1","url":"https://Login.Example.com/x","submission_time":"2024-05-01T10:00:00+00:00","target":"Example Bank"}]}"#,
        );
        assert_eq!(d.reports[0].indicator.value, "https://login.example.com/x");
        assert_eq!(d.reports[0].first_seen, Some(1_714_557_600_000));
        let m = JsonMapping::new("/url");
        assert_eq!(run(m, r#"[{"nourl":1}]"#).rejection.unwrap().reason, Reason::MissingField);
    }
}
