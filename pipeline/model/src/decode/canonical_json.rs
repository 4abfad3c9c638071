//! The canonical indicator JSON (format `json`): one object, an array of objects, or JSON Lines.
//!
//! ```json
//! {"type": "domain", "value": "login-bank.example.sg", "tlp": "TLP:GREEN", "confidence": 80,
//!  "threat": "phishing", "tags": ["bank"], "first_seen": "2024-05-01T10:00:00Z",
//!  "target_countries": ["SG"], "revoked": false}
//! ```
//! `type` and `value` are required; every other field is optional; unknown fields are ignored
//! (producers add their own). Each item is read on its own so one bad item does not sink the
//! others; the record then carries one rejection naming the first failure.

use super::{Decoded, FeedDefaults, Limits, Reason};
use crate::time::{self, Millis};
use crate::{Country, Error, Indicator, IndicatorType, Report, Tlp};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tlp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    confidence: Option<&'a RawValue>,
    threat: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(borrow)]
    first_seen: Option<TimeValue<'a>>,
    #[serde(borrow)]
    last_seen: Option<TimeValue<'a>>,
    #[serde(borrow)]
    valid_until: Option<TimeValue<'a>>,
    target_countries: Option<Vec<String>>,
    target_sectors: Option<Vec<String>>,
    revoked: Option<bool>,
}

/// A time as a number (epoch seconds or milliseconds) or as text (RFC 3339 …), borrowed from the
/// record when it can be. Read by a visitor rather than as an untagged enum: serde buffers an
/// untagged enum's value to try each variant, and most reports carry a time.
enum TimeValue<'a> {
    Number(i64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for TimeValue<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = TimeValue<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a timestamp (a number or a string)")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<TimeValue<'a>, E> {
                Ok(TimeValue::Number(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<TimeValue<'a>, E> {
                i64::try_from(n).map(TimeValue::Number).map_err(|_| E::custom("a timestamp out of range"))
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<TimeValue<'a>, E> {
                Ok(TimeValue::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TimeValue<'a>, E> {
                Ok(TimeValue::Text(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

pub(super) fn decode(text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    let Some(docs) = super::json_documents(text, limits, &mut out) else {
        return out;
    };
    let mut items: Vec<&RawValue> = Vec::new();
    for doc in docs {
        if let Err(e) = push_items(doc, &mut items) {
            out.item_failed(Reason::InvalidJson, e);
        }
        if items.len() > limits.max_indicators {
            return Decoded::rejected(Reason::TooManyIndicators, format!("more than {} items", limits.max_indicators));
        }
    }
    out.reports.reserve(items.len());
    for (n, raw) in items.into_iter().enumerate() {
        match item(raw, defaults) {
            Ok(r) => out.reports.push(r),
            Err((reason, why)) => out.item_failed(reason, format!("item {}: {why}", n + 1)),
        }
    }
    out
}

/// Adds an object, or the elements of an array, to `items`.
fn push_items<'a>(v: &'a RawValue, items: &mut Vec<&'a RawValue>) -> serde_json::Result<()> {
    if v.get().starts_with('[') {
        items.extend(serde_json::from_str::<Vec<&RawValue>>(v.get())?);
    } else {
        items.push(v);
    }
    Ok(())
}

fn item(raw: &RawValue, defaults: &FeedDefaults) -> Result<Report, (Reason, String)> {
    if !raw.get().starts_with('{') {
        return Err((Reason::NotAnObject, "not a JSON object".into()));
    }
    let it: Item = serde_json::from_str(raw.get()).map_err(|e| (Reason::InvalidValue, e.to_string()))?;
    let kind = it.kind.ok_or((Reason::MissingField, "field type: missing".to_string()))?;
    let value = it.value.ok_or((Reason::MissingField, "field value: missing".to_string()))?;
    let kind = IndicatorType::parse(&kind).map_err(|e| (Reason::UnsupportedType, e.to_string()))?;
    let indicator = Indicator::new(kind, &value).map_err(|e| match e {
        Error::UnsupportedType(_) => (Reason::UnsupportedType, e.to_string()),
        _ => (Reason::InvalidValue, e.to_string()),
    })?;
    let bad = |field: &str, why: &str| (Reason::InvalidValue, format!("field {field}: {why}"));
    let tlp = it.tlp.map_or(defaults.tlp, |l| Tlp::parse(&l).strictest(defaults.tlp));
    let confidence = super::raw_confidence(it.confidence)?.or(defaults.confidence);
    let when = |field: &str, t: Option<TimeValue>| -> Result<Option<Millis>, (Reason, String)> {
        match t {
            None => Ok(None),
            Some(TimeValue::Number(n)) => Ok(Some(time::epoch_number(n))),
            Some(TimeValue::Text(s)) => {
                time::parse_str(&s).map(Some).ok_or_else(|| bad(field, &format!("{s:?} is not a timestamp")))
            }
        }
    };
    let target_countries = it
        .target_countries
        .unwrap_or_default()
        .iter()
        .map(|c| Country::parse(c).ok_or_else(|| bad("target_countries", &format!("{c:?} is not a country code"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Report {
        indicator,
        tlp,
        confidence,
        threat: it.threat.filter(|t| !t.is_empty()),
        tags: it.tags.unwrap_or_default(),
        first_seen: when("first_seen", it.first_seen)?,
        last_seen: when("last_seen", it.last_seen)?,
        valid_until: when("valid_until", it.valid_until)?,
        target_countries,
        target_sectors: it.target_sectors.unwrap_or_default(),
        revoked: it.revoked.unwrap_or(false),
        distribution: None,
        sharing_group: None,
        sighting: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, decode as decode_record};
    use super::*;

    const GREEN: FeedDefaults = FeedDefaults { tlp: Tlp::Green, confidence: Some(50) };

    fn run(text: &str) -> Decoded {
        decode_record(&Decoder::Json(None), text.as_bytes(), &Limits::default(), &GREEN)
    }

    #[test]
    fn one_object_with_every_field() {
        let d = run(r#"{"type":"domain","value":"Login-Bank.Example[.]SG","tlp":"amber","confidence":80,
            "threat":"phishing","tags":["bank"],"first_seen":"2024-05-01T10:00:00Z","last_seen":1714557600,
            "target_countries":["sg","my"],"target_sectors":["finance"],"revoked":true,"vendor_field":{"x":1}}"#);
        assert_eq!(d.rejection, None);
        let r = &d.reports[0];
        assert_eq!(r.indicator.value, "login-bank.example.sg");
        assert_eq!(r.tlp, Tlp::Amber);
        assert_eq!(r.confidence, Some(80));
        assert_eq!(r.threat.as_deref(), Some("phishing"));
        assert_eq!(r.first_seen, Some(1_714_557_600_000));
        assert_eq!(r.last_seen, Some(1_714_557_600_000));
        assert_eq!(r.target_countries, ["SG", "MY"]);
        assert!(r.revoked);
    }

    #[test]
    fn feed_default_label_and_confidence_apply() {
        let d = run(r#"{"type":"ipv4","value":"192.0.2.1","tlp":"clear"}"#);
        // The strictest of record and feed default wins.
        assert_eq!(d.reports[0].tlp, Tlp::Green);
        assert_eq!(d.reports[0].confidence, Some(50));
        let d = run(r#"{"type":"ipv4","value":"192.0.2.1","tlp":"TLP:EX:CHR"}"#);
        assert_eq!(d.reports[0].tlp, Tlp::Unknown);
    }

    #[test]
    fn arrays_and_json_lines() {
        let d = run(r#"[{"type":"ipv4","value":"192.0.2.1"},{"type":"url","value":"hxxp://x.example/a"}]"#);
        assert_eq!(d.reports.len(), 2);
        assert_eq!(d.rejection, None);
        let d = run("{\"type\":\"ipv4\",\"value\":\"192.0.2.1\"}\n\n{\"type\":\"ipv6\",\"value\":\"2001:db8::1\"}\n");
        assert_eq!(d.reports.len(), 2);
        assert_eq!(d.rejection, None);
    }

    #[test]
    fn bad_items_are_counted_and_good_ones_kept() {
        let d =
            run("{\"type\":\"ipv4\",\"value\":\"192.0.2.1\"}\n{oops\n{\"type\":\"ipv4\",\"value\":\"999.1.1.1\"}\n");
        assert_eq!(d.reports.len(), 1);
        let r = d.rejection.unwrap();
        assert_eq!((r.reason, r.failed_items), (Reason::InvalidJson, 2));
    }

    #[test]
    fn each_failure_has_its_reason() {
        let reason = |t: &str| run(t).rejection.map(|r| r.reason);
        assert_eq!(reason(r#"{"value":"192.0.2.1"}"#), Some(Reason::MissingField));
        assert_eq!(reason(r#"{"type":"ipv4"}"#), Some(Reason::MissingField));
        assert_eq!(reason(r#"{"type":"mutex","value":"x"}"#), Some(Reason::UnsupportedType));
        assert_eq!(reason(r#"{"type":"md5","value":"xyz"}"#), Some(Reason::InvalidValue));
        assert_eq!(reason(r#"{"type":"md5","value":"xyz""#), Some(Reason::InvalidJson));
        assert_eq!(reason(r#"{"type":"ipv4","value":"192.0.2.1","confidence":101}"#), Some(Reason::InvalidValue));
        assert_eq!(reason(r#"{"type":"ipv4","value":"192.0.2.1","first_seen":"soon"}"#), Some(Reason::InvalidValue));
        assert_eq!(reason(r#"{"type":"ipv4","value":"192.0.2.1","tags":"x"}"#), Some(Reason::InvalidValue));
        assert_eq!(reason(r#"[1, 2]"#), Some(Reason::NotAnObject));
        assert_eq!(reason("[]"), Some(Reason::Empty));
        assert_eq!(reason("  \n"), Some(Reason::Empty));
        assert_eq!(reason(&"[".repeat(100)), Some(Reason::TooDeep));
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits { max_record_bytes: 64, max_depth: 4, max_indicators: 2 };
        let d = |t: &[u8]| decode_record(&Decoder::Json(None), t, &limits, &GREEN).rejection.map(|r| r.reason);
        assert_eq!(d(&[b' '; 65]), Some(Reason::TooLarge));
        assert_eq!(d(&[0xff, 0xfe, b'{']), Some(Reason::InvalidUtf8));
        assert_eq!(d(br#"[{"type":"asn","value":"1"},{},{}]"#), Some(Reason::TooManyIndicators));
    }
}
