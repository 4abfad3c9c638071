//! MISP events (format `misp`): bare or wrapped in `{"Event": …}` (also `{"response": [...]}`),
//! attributes at the event level and inside objects.
//!
//! Attribute types iocflow carries: ip-src, ip-dst, ip-src|port, ip-dst|port, domain, hostname,
//! domain|ip (two indicators), url, uri, email(-src/-dst), md5, sha1, sha256,
//! filename|md5/sha1/sha256 (the hash), AS. Other types (comments, filenames, mutexes …) are
//! context, not indicators, and are skipped.
//!
//! Labels and sharing: the report's label is the strictest of the feed default, the event's and
//! the attribute's `tlp:*` tags (TLP 1.0 and 2.0 names; an unknown `tlp:` tag counts as RED) and
//! distribution 0 (your organisation only: AMBER+STRICT). Distribution 5 inherits the event's;
//! distribution 4 keeps the sharing group for routing. By default only `to_ids` attributes are
//! indicators: an attribute whose `to_ids` is false, or that is deleted, yields a revocation.

use super::{Decoded, FeedDefaults, Limits, Reason, json_time, report_of, scalar_text};
use crate::{IndicatorType, Report, Tlp};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MispOptions {
    /// Treat attributes without `to_ids` as indicators too (instead of as revocations).
    #[serde(default)]
    pub include_non_ids: bool,
}

pub(super) fn decode(o: &MispOptions, text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    let Some(docs) = super::json_values(text, limits, &mut out) else {
        return out;
    };
    let mut events = Vec::new();
    for doc in docs {
        collect_events(doc, &mut events);
    }
    for ev in &events {
        if !ev.is_object() {
            out.item_failed(Reason::NotAnObject, "an event that is not a JSON object");
            continue;
        }
        event(o, ev, defaults, limits, &mut out);
    }
    out
}

fn collect_events(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| collect_events(i, out)),
        Value::Object(mut m) => {
            if let Some(inner) = m.remove("Event") {
                out.push(inner);
            } else if let Some(resp) = m.remove("response") {
                collect_events(resp, out);
            } else {
                out.push(Value::Object(m));
            }
        }
        other => out.push(other),
    }
}

/// The label of a list of MISP tags (`tlp:*` only), and the other tags.
fn tags(list: &Value) -> (Option<Tlp>, Vec<String>) {
    let mut label: Option<Tlp> = None;
    let mut other = Vec::new();
    for name in list.as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()) {
        if name.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("tlp:")) {
            let t = match Tlp::parse(name) {
                Tlp::Unknown => Tlp::Red,
                t => t,
            };
            label = Some(label.map_or(t, |l| l.strictest(t)));
        } else {
            other.push(name.to_string());
        }
    }
    (label, other)
}

fn distribution(v: &Value) -> Option<u8> {
    scalar_text(v).and_then(|d| d.parse().ok()).filter(|d| *d <= 5)
}

fn sharing_group(holder: &Value) -> Option<String> {
    holder["SharingGroup"]["uuid"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .or_else(|| scalar_text(&holder["sharing_group_id"]).filter(|s| s != "0"))
}

/// The indicators an attribute names; `None` for types that are not indicators.
fn attribute_values(kind: &str, value: &str) -> Option<Vec<(IndicatorType, String)>> {
    use IndicatorType as T;
    let after_pipe = || value.split_once('|').map_or(value, |(_, h)| h).to_string();
    Some(match kind {
        "ip-src" | "ip-dst" | "ip-src|port" | "ip-dst|port" => vec![(T::Ipv4, value.to_string())],
        "domain" | "hostname" => vec![(T::Domain, value.to_string())],
        "domain|ip" => {
            let (d, ip) = value.split_once('|')?;
            vec![(T::Domain, d.to_string()), (T::Ipv4, ip.to_string())]
        }
        "url" | "uri" => vec![(T::Url, value.to_string())],
        "email" | "email-src" | "email-dst" => vec![(T::Email, value.to_string())],
        "md5" => vec![(T::Md5, value.to_string())],
        "sha1" => vec![(T::Sha1, value.to_string())],
        "sha256" => vec![(T::Sha256, value.to_string())],
        "filename|md5" => vec![(T::Md5, after_pipe())],
        "filename|sha1" => vec![(T::Sha1, after_pipe())],
        "filename|sha256" => vec![(T::Sha256, after_pipe())],
        "AS" => vec![(T::Asn, value.to_string())],
        _ => return None,
    })
}

fn event(o: &MispOptions, ev: &Value, defaults: &FeedDefaults, limits: &Limits, out: &mut Decoded) {
    let (event_tlp, event_tags) = tags(&ev["Tag"]);
    let event_distribution = distribution(&ev["distribution"]);
    let event_group = sharing_group(ev);
    let event_date = json_time(&ev["date"]);
    let mut attributes: Vec<&Value> = ev["Attribute"].as_array().into_iter().flatten().collect();
    for obj in ev["Object"].as_array().into_iter().flatten() {
        attributes.extend(obj["Attribute"].as_array().into_iter().flatten());
    }
    if attributes.len() > limits.max_indicators {
        out.item_failed(Reason::TooManyIndicators, format!("more than {} attributes", limits.max_indicators));
        return;
    }
    for (n, a) in attributes.into_iter().enumerate() {
        let (Some(kind), Some(value)) = (a["type"].as_str(), scalar_text(&a["value"])) else {
            out.item_failed(Reason::MissingField, format!("attribute {}: no type or value", n + 1));
            continue;
        };
        let Some(values) = attribute_values(kind, &value) else { continue };
        let (attr_tlp, attr_tags) = tags(&a["Tag"]);
        let (dist, group) = match distribution(&a["distribution"]) {
            Some(5) | None => (event_distribution, event_group.clone()),
            Some(d) => (Some(d), sharing_group(a)),
        };
        let mut label = defaults.tlp;
        for t in [event_tlp, attr_tlp].into_iter().flatten() {
            label = label.strictest(t);
        }
        if dist == Some(0) {
            label = label.strictest(Tlp::AmberStrict);
        }
        let to_ids = a["to_ids"].as_bool().unwrap_or(false);
        let deleted = a["deleted"].as_bool().unwrap_or(false);
        let seen = json_time(&a["timestamp"]).or(event_date);
        let mut all_tags = event_tags.clone();
        all_tags.extend(attr_tags);
        all_tags.extend(a["category"].as_str().map(str::to_string));
        for (t, v) in values {
            match report_of(t, &v, defaults) {
                Ok(r) => out.reports.push(Report {
                    tlp: label,
                    tags: all_tags.clone(),
                    first_seen: json_time(&a["first_seen"]).or(seen),
                    last_seen: json_time(&a["last_seen"]).or(seen),
                    revoked: deleted || (!to_ids && !o.include_non_ids),
                    distribution: dist,
                    // Distribution 4 without a known group still names one: it is never public.
                    sharing_group: (dist == Some(4)).then(|| group.clone().unwrap_or_else(|| "unknown".into())),
                    ..r
                }),
                Err((reason, why)) => out.item_failed(reason, format!("attribute {} ({kind}): {why}", n + 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, decode};
    use super::*;

    fn run(o: MispOptions, text: &str) -> Decoded {
        let defaults = FeedDefaults { tlp: Tlp::Clear, confidence: Some(70) };
        decode(&Decoder::Misp(o), text.as_bytes(), &Limits::default(), &defaults)
    }

    const EVENT: &str = r#"{"Event":{"info":"Phishing against regional banks","date":"2024-05-01","distribution":"3",
      "Tag":[{"name":"tlp:green"},{"name":"misp-galaxy:sector=\"Finance\""}],
      "Attribute":[
        {"type":"domain","value":"bank-verify.example.sg","to_ids":true,"distribution":"5","category":"Network activity","timestamp":"1714557600"},
        {"type":"ip-dst|port","value":"198.51.100.20|8443","to_ids":true,"distribution":"0"},
        {"type":"url","value":"http://bank-verify.example.sg/login","to_ids":true,"Tag":[{"name":"tlp:amber"}]},
        {"type":"comment","value":"seen in a mail campaign","to_ids":false},
        {"type":"domain|ip","value":"mail.example.my|203.0.113.5","to_ids":true},
        {"type":"md5","value":"d41d8cd98f00b204e9800998ecf8427e","to_ids":false},
        {"type":"sha1","value":"da39a3ee5e6b4b0d3255bfef95601890afd80709","to_ids":true,"deleted":true},
        {"type":"hostname","value":"sg.example.net","to_ids":true,"distribution":"4","SharingGroup":{"uuid":"5a1e0000-0000-4000-8000-0000000000aa"}},
        {"type":"AS","value":"64500","to_ids":true,"Tag":[{"name":"tlp:ex:chr"}]}
      ],
      "Object":[{"name":"file","Attribute":[{"type":"filename|sha256","value":"invoice.exe|E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855","to_ids":true}]}]}}"#;

    #[test]
    fn attributes_labels_distribution_and_revocation() {
        let d = run(MispOptions::default(), EVENT);
        assert_eq!(d.rejection, None);
        let got: Vec<(&str, &str, Tlp, bool, Option<u8>)> = d
            .reports
            .iter()
            .map(|r| (r.indicator.kind.as_str(), r.indicator.value.as_str(), r.tlp, r.revoked, r.distribution))
            .collect();
        assert_eq!(
            got,
            [
                ("domain", "bank-verify.example.sg", Tlp::Green, false, Some(3)),
                ("ipv4", "198.51.100.20", Tlp::AmberStrict, false, Some(0)),
                ("url", "http://bank-verify.example.sg/login", Tlp::Amber, false, Some(3)),
                ("domain", "mail.example.my", Tlp::Green, false, Some(3)),
                ("ipv4", "203.0.113.5", Tlp::Green, false, Some(3)),
                ("md5", "d41d8cd98f00b204e9800998ecf8427e", Tlp::Green, true, Some(3)),
                ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709", Tlp::Green, true, Some(3)),
                ("domain", "sg.example.net", Tlp::Green, false, Some(4)),
                ("asn", "AS64500", Tlp::Red, false, Some(3)),
                (
                    "sha256",
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    Tlp::Green,
                    false,
                    Some(3)
                ),
            ]
        );
        assert_eq!(d.reports[7].sharing_group.as_deref(), Some("5a1e0000-0000-4000-8000-0000000000aa"));
        assert_eq!(d.reports[0].sharing_group, None);
        assert_eq!(d.reports[0].first_seen, Some(1_714_557_600_000));
        assert_eq!(d.reports[3].first_seen, Some(1_714_521_600_000), "the event date when no timestamp");
        assert!(d.reports[0].tags.contains(&"Network activity".to_string()));
        assert!(d.reports[0].tags.iter().any(|t| t.starts_with("misp-galaxy")));
    }

    #[test]
    fn non_ids_attributes_as_indicators_when_configured() {
        let d = run(MispOptions { include_non_ids: true }, EVENT);
        let md5 = d.reports.iter().find(|r| r.indicator.kind == IndicatorType::Md5).unwrap();
        assert!(!md5.revoked);
    }

    #[test]
    fn response_wrappers_lists_and_odd_shapes() {
        // A search response holding a wrapped event; a list holding a bare event, an event that
        // is not an object, and a list; an attribute that is not an object; numeric timestamps.
        let text = r#"[{"response":[{"Event":{"Attribute":[{"type":"domain","value":"a.example.sg","to_ids":true,"timestamp":1714557600}]}}]},
            {"Attribute":[7,{"type":"url","value":"http://b.example.my/","to_ids":true}],"Object":[3,{"Attribute":{"no":"list"}}]},
            {"Event":5},[]]"#;
        let d = run(MispOptions::default(), text);
        let got: Vec<&str> = d.reports.iter().map(|r| r.indicator.value.as_str()).collect();
        assert_eq!(got, ["a.example.sg", "http://b.example.my/"]);
        assert_eq!(d.reports[0].first_seen, Some(1_714_557_600_000));
        let r = d.rejection.unwrap();
        // The attribute 7 (no type or value) first, then the event 5.
        assert_eq!((r.reason, r.failed_items), (Reason::MissingField, 2), "{r:?}");
    }

    #[test]
    fn bare_events_and_bad_attributes() {
        let d = run(
            MispOptions::default(),
            r#"{"info":"x","Attribute":[{"type":"ip-src","value":"not-an-ip","to_ids":true},{"type":"ip-src","value":"192.0.2.1","to_ids":true},{"value":"x"}]}"#,
        );
        assert_eq!(d.reports.len(), 1);
        let r = d.rejection.unwrap();
        assert_eq!((r.reason, r.failed_items), (Reason::InvalidValue, 2));
        let only_comments = r#"{"Event":{"Attribute":[{"type":"comment","value":"hello"}]}}"#;
        assert_eq!(run(MispOptions::default(), only_comments).rejection.unwrap().reason, Reason::Empty);
    }
}
