//! IntelMQ events (format `intelmq`): one event object, an array, or JSON Lines, with the
//! harmonisation's dotted field names (`source.ip`, `classification.type`, `time.source` …),
//! flat as IntelMQ writes them or nested.
//!
//! An event yields one report per identifier it carries: `source.`/`destination.` `ip`, `fqdn`,
//! `url` and `network`, and `malware.hash.md5/sha1/sha256`. `source.asn` becomes an indicator
//! only when the event names nothing narrower: turning the AS of one IP into an indicator would
//! put a whole network on national blocklists. `classification.type` is the threat,
//! `time.source` the sighting time, `tlp` the label, and `source.geolocation.cc` an implicated
//! country (national CERT reports such as Shadowserver's are routed by it).

use super::{
    Decoded, FeedDefaults, Limits, RawObject, Reason, json_tags, json_time, raw_value, report_of, scalar_text,
};
use crate::{Country, IndicatorType, Tlp};
use serde_json::Value;
use serde_json::value::RawValue;

/// Identifier fields and their indicator types, narrowest first per side.
const IDENTIFIERS: [(&str, IndicatorType); 11] = [
    ("source.url", IndicatorType::Url),
    ("source.fqdn", IndicatorType::Domain),
    ("source.ip", IndicatorType::Ipv4),
    ("source.network", IndicatorType::Cidr),
    ("destination.url", IndicatorType::Url),
    ("destination.fqdn", IndicatorType::Domain),
    ("destination.ip", IndicatorType::Ipv4),
    ("destination.network", IndicatorType::Cidr),
    ("malware.hash.md5", IndicatorType::Md5),
    ("malware.hash.sha1", IndicatorType::Sha1),
    ("malware.hash.sha256", IndicatorType::Sha256),
];

pub(super) fn decode(text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    let Some(docs) = super::json_documents(text, limits, &mut out) else {
        return out;
    };
    let mut events = Vec::new();
    for doc in docs {
        if doc.get().starts_with('[') {
            match serde_json::from_str::<Vec<&RawValue>>(doc.get()) {
                Ok(items) => events.extend(items),
                Err(e) => out.item_failed(Reason::InvalidJson, e),
            }
        } else {
            events.push(doc);
        }
    }
    if events.len() > limits.max_indicators {
        return Decoded::rejected(Reason::TooManyIndicators, format!("more than {} events", limits.max_indicators));
    }
    for (n, ev) in events.iter().enumerate() {
        if let Err((reason, why)) = event(ev, defaults, &mut out) {
            out.item_failed(reason, format!("event {}: {why}", n + 1));
        }
    }
    out
}

/// A field by its dotted name: flat (`"source.ip": …`) or nested (`"source": {"ip": …}`).
fn field(ev: &RawObject<'_>, name: &str) -> Option<Value> {
    Some(raw_value(ev.get(name).or_else(|| nested(ev, name)))).filter(|v| !v.is_null())
}

fn nested<'a>(ev: &RawObject<'a>, name: &str) -> Option<&'a RawValue> {
    let mut parts = name.split('.');
    let mut raw = ev.get(parts.next()?)?;
    for part in parts {
        raw = serde_json::from_str::<RawObject<'a>>(raw.get()).ok()?.get(part)?;
    }
    Some(raw)
}

fn event(raw: &RawValue, defaults: &FeedDefaults, out: &mut Decoded) -> Result<(), (Reason, String)> {
    if !raw.get().starts_with('{') {
        return Err((Reason::NotAnObject, "not a JSON object".into()));
    }
    let ev: RawObject<'_> = serde_json::from_str(raw.get()).map_err(|e| (Reason::InvalidJson, e.to_string()))?;
    let ev = &ev;
    let text = |name: &str| field(ev, name).as_ref().and_then(scalar_text);
    let mut identifiers: Vec<(IndicatorType, String)> =
        IDENTIFIERS.iter().filter_map(|(name, kind)| text(name).map(|v| (*kind, v))).collect();
    if identifiers.is_empty() {
        identifiers.extend(text("source.asn").map(|a| (IndicatorType::Asn, a)));
        identifiers.extend(text("destination.asn").map(|a| (IndicatorType::Asn, a)));
    }
    if identifiers.is_empty() {
        return Err((Reason::MissingField, "no source, destination or malware hash field".into()));
    }
    let label = text("tlp").map_or(defaults.tlp, |l| Tlp::parse(&l).strictest(defaults.tlp));
    let seen = field(ev, "time.source").as_ref().and_then(json_time);
    let mut tags: Vec<String> = ["classification.taxonomy", "classification.identifier", "malware.name"]
        .iter()
        .filter_map(|f| text(f))
        .collect();
    tags.extend(field(ev, "extra.tags").as_ref().map(json_tags).unwrap_or_default());
    let targets: Vec<Country> = ["source.geolocation.cc", "destination.geolocation.cc"]
        .iter()
        .filter_map(|f| text(f).and_then(|c| Country::parse(&c)))
        .collect();
    let confidence = text("feed.accuracy").map(|a| super::confidence(&a)).transpose()?;
    let threat = text("classification.type");
    let mut first_error = None;
    for (kind, value) in identifiers {
        match report_of(kind, &value, defaults) {
            Ok(mut r) => {
                r.tlp = label;
                r.threat = threat.clone();
                r.tags = tags.clone();
                r.first_seen = seen;
                r.last_seen = seen;
                r.target_countries = targets.clone();
                if let Some(c) = confidence {
                    r.confidence = Some(c);
                }
                out.reports.push(r);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, decode};
    use super::*;

    fn run(text: &str) -> Decoded {
        let defaults = FeedDefaults { tlp: Tlp::Green, confidence: Some(50) };
        decode(&Decoder::Intelmq, text.as_bytes(), &Limits::default(), &defaults)
    }

    #[test]
    fn flat_events_as_json_lines() {
        let text = concat!(
            r#"{"feed.name":"Example Feodo","feed.provider":"abuse.ch","classification.type":"c2-server","classification.taxonomy":"malicious-code","source.ip":"192.0.2.77","source.port":443,"source.asn":64500,"source.geolocation.cc":"sg","malware.name":"dridex","time.source":"2024-05-01T10:00:00+00:00","tlp":"AMBER"}"#,
            "\n",
            r#"{"classification.type":"phishing","source.url":"http://phish.example.com/login","source.fqdn":"phish.example.com","feed.accuracy":90.0}"#,
            "\n"
        );
        let d = run(text);
        assert_eq!(d.rejection, None);
        let got: Vec<(&str, &str)> =
            d.reports.iter().map(|r| (r.indicator.kind.as_str(), r.indicator.value.as_str())).collect();
        // The AS is not an indicator when the event names an IP.
        assert_eq!(
            got,
            [("ipv4", "192.0.2.77"), ("url", "http://phish.example.com/login"), ("domain", "phish.example.com")]
        );
        let c2 = &d.reports[0];
        assert_eq!(c2.tlp, Tlp::Amber);
        assert_eq!(c2.threat.as_deref(), Some("c2-server"));
        assert_eq!(c2.tags, ["malicious-code", "dridex"]);
        assert_eq!(c2.target_countries, ["SG"]);
        assert_eq!(c2.first_seen, Some(1_714_557_600_000));
        assert_eq!(c2.confidence, Some(50));
        assert_eq!(d.reports[1].confidence, Some(90));
        assert_eq!(d.reports[1].tlp, Tlp::Green);
    }

    #[test]
    fn nested_events_hashes_and_lone_asns() {
        let d = run(
            r#"[{"malware":{"hash":{"sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}},
                        {"source":{"asn":64501},"classification":{"type":"spam"}}]"#,
        );
        let got: Vec<(&str, &str)> =
            d.reports.iter().map(|r| (r.indicator.kind.as_str(), r.indicator.value.as_str())).collect();
        assert_eq!(got, [("sha256", "a".repeat(64).as_str()), ("asn", "AS64501")]);
    }

    #[test]
    fn repeated_escaped_and_null_fields() {
        // The last of a repeated field counts; names may have escapes; a null flat field is
        // absent (and hides its nested form, as IntelMQ would never write both).
        let d = run(
            r#"{"source.ip":"192.0.2.1","source\u002eip":"192.0.2.2","tlp":"RED","tlp":"CLEAR","source.geolocation.cc":null,"source":{"geolocation":{"cc":"MY"}},"time.source":1714557600}"#,
        );
        assert_eq!(d.rejection, None);
        let r = &d.reports[0];
        assert_eq!((r.indicator.value.as_str(), r.tlp), ("192.0.2.2", Tlp::Green), "CLEAR, then the feed's GREEN");
        assert!(r.target_countries.is_empty());
        assert_eq!(r.first_seen, Some(1_714_557_600_000));
    }

    #[test]
    fn events_without_identifiers_or_with_bad_values() {
        let d = run(r#"[{"classification.type":"scanner"},{"source.ip":"300.1.1.1"},{"source.ip":"192.0.2.1"}]"#);
        assert_eq!(d.reports.len(), 1);
        let r = d.rejection.unwrap();
        assert_eq!((r.reason, r.failed_items), (Reason::MissingField, 2));
        assert_eq!(run("[1]").rejection.unwrap().reason, Reason::NotAnObject);
    }
}
