//! Feed decoders: raw Kafka record bytes → reports, or one dead letter with a reason.
//!
//! The contract every decoder keeps (DESIGN.md, "Decode"): bad input never panics, never stalls
//! and is never silently dropped. A record yields reports, and when any part of it could not be
//! read, exactly one [`Rejection`] that says why with a reason from the fixed vocabulary of
//! [`Reason`]. Limits on size, nesting and indicators per record are checked before or while
//! parsing, each with its own reason, so a hostile producer cannot make the consumer allocate
//! without bound.

mod canonical_json;
pub mod delimited;
mod field_mapping;
pub mod intelmq;
pub mod json_mapping;
pub mod lines;
pub mod misp;
pub mod sightings;
pub mod stix2;
mod stix_pattern;
pub mod text;

use crate::{Report, Tlp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// The feed formats iocflow reads (the `format` key of a feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The canonical indicator JSON of DESIGN.md (an object, an array, or JSON Lines), or vendor
    /// JSON read through a [`json_mapping::JsonMapping`].
    Json,
    /// IntelMQ events with harmonisation field names.
    Intelmq,
    /// STIX 2.1 bundles or objects.
    Stix2,
    /// MISP events.
    Misp,
    /// Delimited text: abuse.ch CSV exports, Spamhaus DROP / ASN-DROP.
    Csv,
    /// One indicator per line.
    Lines,
    /// Free text: advisories, mail bodies.
    Text,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Intelmq => "intelmq",
            Format::Stix2 => "stix2",
            Format::Misp => "misp",
            Format::Csv => "csv",
            Format::Lines => "lines",
            Format::Text => "text",
        }
    }
}

/// A format with its options: what decodes one feed's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoder {
    Json(Option<json_mapping::JsonMapping>),
    Intelmq,
    Stix2,
    Misp(misp::MispOptions),
    Csv(delimited::CsvOptions),
    Lines(lines::LinesOptions),
    Text(text::TextOptions),
}

impl Decoder {
    pub fn format(&self) -> Format {
        match self {
            Decoder::Json(_) => Format::Json,
            Decoder::Intelmq => Format::Intelmq,
            Decoder::Stix2 => Format::Stix2,
            Decoder::Misp(_) => Format::Misp,
            Decoder::Csv(_) => Format::Csv,
            Decoder::Lines(_) => Format::Lines,
            Decoder::Text(_) => Format::Text,
        }
    }
}

/// Size limits applied to every record, whatever its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_record_bytes: usize,
    pub max_depth: usize,
    pub max_indicators: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_record_bytes: 4 << 20, max_depth: 32, max_indicators: 10_000 }
    }
}

/// What a feed declares for reports that do not say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedDefaults {
    pub tlp: Tlp,
    pub confidence: Option<u8>,
}

/// Why a record (or part of it) went to the dead-letter topic. A fixed vocabulary: it is a
/// metric label and operators alert on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    TooLarge,
    InvalidUtf8,
    InvalidJson,
    InvalidCsv,
    TooDeep,
    TooManyIndicators,
    Empty,
    NotAnObject,
    MissingField,
    UnsupportedType,
    UnsupportedPattern,
    InvalidValue,
    /// A sighting that names no indicator iocflow can place: only by an id, or by a STIX
    /// `sighting_of_ref` whose indicator is not in the record.
    UnknownIndicator,
    /// Not a feed record: a record on iocflow's internal topic that is not an indicator batch
    /// (a stray producer, a bug). Counted in `iocflow_internal_records_corrupt_total`.
    CorruptInternalRecord,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::TooLarge,
        Reason::InvalidUtf8,
        Reason::InvalidJson,
        Reason::InvalidCsv,
        Reason::TooDeep,
        Reason::TooManyIndicators,
        Reason::Empty,
        Reason::NotAnObject,
        Reason::MissingField,
        Reason::UnsupportedType,
        Reason::UnsupportedPattern,
        Reason::InvalidValue,
        Reason::UnknownIndicator,
        Reason::CorruptInternalRecord,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::InvalidJson => "invalid_json",
            Reason::InvalidCsv => "invalid_csv",
            Reason::TooDeep => "too_deep",
            Reason::TooManyIndicators => "too_many_indicators",
            Reason::Empty => "empty",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::UnsupportedType => "unsupported_type",
            Reason::UnsupportedPattern => "unsupported_pattern",
            Reason::InvalidValue => "invalid_value",
            Reason::UnknownIndicator => "unknown_indicator",
            Reason::CorruptInternalRecord => "corrupt_internal_record",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record, or some items of it, could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reason of the first failure.
    pub reason: Reason,
    /// A short human-readable explanation of the first failure.
    pub detail: String,
    /// How many items of the record failed (1 when the record as a whole is unreadable).
    pub failed_items: usize,
}

/// The result of decoding one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub reports: Vec<Report>,
    pub rejection: Option<Rejection>,
}

impl Decoded {
    pub(crate) fn rejected(reason: Reason, detail: impl Into<String>) -> Decoded {
        Decoded { reports: Vec::new(), rejection: Some(Rejection { reason, detail: detail.into(), failed_items: 1 }) }
    }

    /// Notes that one item failed; the first failure names the reason.
    pub(crate) fn item_failed(&mut self, reason: Reason, detail: impl fmt::Display) {
        match &mut self.rejection {
            Some(r) => r.failed_items += 1,
            None => self.rejection = Some(Rejection { reason, detail: detail.to_string(), failed_items: 1 }),
        }
    }
}

/// Decodes one record of a feed.
pub fn decode(decoder: &Decoder, bytes: &[u8], limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    within_limits(bytes, limits, |text| match decoder {
        Decoder::Json(None) => canonical_json::decode(text, limits, defaults),
        Decoder::Json(Some(mapping)) => json_mapping::decode(mapping, text, limits, defaults),
        Decoder::Intelmq => intelmq::decode(text, limits, defaults),
        Decoder::Stix2 => stix2::decode(text, limits, defaults),
        Decoder::Misp(options) => misp::decode(options, text, limits, defaults),
        Decoder::Csv(options) => delimited::decode(options, text, limits, defaults),
        Decoder::Lines(options) => lines::decode(options, text, limits, defaults),
        Decoder::Text(options) => text::decode(options, text, limits, defaults),
    })
}

/// Decodes one record of a CERT's sightings topic (STIX 2.1, MISP or canonical sightings,
/// told apart per object: [`sightings`]).
pub fn decode_sightings(bytes: &[u8], limits: &Limits) -> Decoded {
    within_limits(bytes, limits, |text| sightings::decode(text, limits))
}

/// The checks every record passes, whatever its format: its size and encoding before `read`
/// sees its text, the indicators it yielded after; a record that yields nothing and says no
/// reason is `empty`.
fn within_limits(bytes: &[u8], limits: &Limits, read: impl FnOnce(&str) -> Decoded) -> Decoded {
    if bytes.len() > limits.max_record_bytes {
        return Decoded::rejected(
            Reason::TooLarge,
            format!("{} bytes, limit {}", bytes.len(), limits.max_record_bytes),
        );
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Decoded::rejected(Reason::InvalidUtf8, "the record is not UTF-8");
    };
    if text.trim().is_empty() {
        return Decoded::rejected(Reason::Empty, "the record is empty");
    }
    let mut out = read(text);
    if out.reports.len() > limits.max_indicators {
        return Decoded::rejected(
            Reason::TooManyIndicators,
            format!("{} indicators, limit {}", out.reports.len(), limits.max_indicators),
        );
    }
    if out.reports.is_empty() && out.rejection.is_none() {
        out.rejection =
            Some(Rejection { reason: Reason::Empty, detail: "no indicators in the record".into(), failed_items: 1 });
    }
    out
}

/// The JSON documents of a record: the whole text when it is one JSON value, else each non-empty
/// line (JSON Lines), a line that is not JSON counting as a failed item. `None` (with the
/// rejection set in `out`) when the record as a whole is unreadable.
pub(crate) fn json_documents<'a>(text: &'a str, limits: &Limits, out: &mut Decoded) -> Option<Vec<&'a RawValue>> {
    if json_depth(text, limits.max_depth) > limits.max_depth {
        *out = Decoded::rejected(Reason::TooDeep, format!("nested deeper than {}", limits.max_depth));
        return None;
    }
    match serde_json::from_str::<&RawValue>(text) {
        Ok(whole) => Some(vec![whole]),
        Err(whole_err) => {
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.len() < 2 {
                *out = Decoded::rejected(Reason::InvalidJson, whole_err.to_string());
                return None;
            }
            let mut docs = Vec::with_capacity(lines.len());
            for (n, line) in lines.iter().enumerate() {
                match serde_json::from_str::<&RawValue>(line) {
                    Ok(v) => docs.push(v),
                    Err(e) => out.item_failed(Reason::InvalidJson, format!("line {}: {e}", n + 1)),
                }
                if docs.len() > limits.max_indicators {
                    break;
                }
            }
            Some(docs)
        }
    }
}

/// The record's JSON documents parsed into values (see [`json_documents`]); a document that
/// does not parse counts as a failed item.
pub(crate) fn json_values(text: &str, limits: &Limits, out: &mut Decoded) -> Option<Vec<serde_json::Value>> {
    let docs = json_documents(text, limits, out)?;
    let mut values = Vec::with_capacity(docs.len());
    for doc in docs {
        match serde_json::from_str(doc.get()) {
            Ok(v) => values.push(v),
            Err(e) => out.item_failed(Reason::InvalidJson, e),
        }
    }
    Some(values)
}

/// A string, number or boolean JSON value as text; `None` for null, arrays and objects.
pub(crate) fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A timestamp field: RFC 3339 or similar text, or epoch seconds / milliseconds.
pub(crate) fn json_time(v: &serde_json::Value) -> Option<crate::time::Millis> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().map(crate::time::epoch_number),
        serde_json::Value::String(s) => crate::time::parse_str(s),
        _ => None,
    }
}

/// A property name, borrowed from the record unless it has escapes.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON object read in one pass as its property names and the raw JSON of their values, in
/// order; a value is parsed only when asked for. For decoders that read a few properties of
/// objects with many (STIX objects, IntelMQ events): a `serde_json::Value` allocates a map entry
/// and a string for every property. As with `Value`, the last of a repeated property counts.
///
/// A lookup scans the names (an event has a few dozen): most differ in length, so a scan is
/// mostly length comparisons, which measured faster than a binary search over sorted names.
pub(crate) struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawObject<'a> {
    /// The object a deserializer is reading (for readers that meet objects among other values).
    pub(crate) fn from_map<A: serde::de::MapAccess<'a>>(mut map: A) -> Result<RawObject<'a>, A::Error> {
        let mut properties = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(Key(name)) = map.next_key()? {
            properties.push((name, map.next_value()?));
        }
        Ok(RawObject(properties))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawObject<'de>, D::Error> {
        struct ObjectVisitor;
        impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawObject<'de>, A::Error> {
                RawObject::from_map(map)
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

/// A property kept as raw JSON, parsed: `Null` when it is absent.
pub(crate) fn raw_value(raw: Option<&RawValue>) -> serde_json::Value {
    raw.and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or(serde_json::Value::Null)
}

/// A property kept as raw JSON (see [`RawObject`]), read as text: `None` when absent or not a
/// string. Borrowed unless the string has escapes.
pub(crate) fn raw_text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = raw?.get();
    if !raw.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(raw) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// A property kept as raw JSON, read as a timestamp as [`json_time`] reads one.
pub(crate) fn raw_time(raw: Option<&RawValue>) -> Option<crate::time::Millis> {
    match raw_text(raw) {
        Some(s) => crate::time::parse_str(&s),
        None => raw?.get().parse::<i64>().ok().map(crate::time::epoch_number),
    }
}

/// Tags from a JSON array of strings, or a comma-separated string.
pub(crate) fn json_tags(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
        serde_json::Value::String(s) => split_tags(s),
        _ => Vec::new(),
    }
}

/// Reads a confidence, as every format does: a number from 0 to 100 (a fraction is rounded:
/// `87.5` is 88). Anything else (`101`, `-1`, `high`) makes the report invalid: a feed that
/// writes another scale is refused rather than guessed at.
pub(crate) fn confidence(text: &str) -> Result<u8, (Reason, String)> {
    match text.trim().parse::<f64>() {
        Ok(c) if (0.0..=100.0).contains(&c) => Ok(c.round() as u8),
        Ok(_) => Err((Reason::InvalidValue, format!("confidence {text} is not within 0–100"))),
        Err(_) => Err((Reason::InvalidValue, format!("confidence {text:?} is not a number from 0 to 100"))),
    }
}

/// A JSON confidence property (a number, or a number as a string) read by [`confidence`];
/// absent or `null` is none.
pub(crate) fn raw_confidence(raw: Option<&RawValue>) -> Result<Option<u8>, (Reason, String)> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) => confidence(&raw_text(raw).unwrap_or(Cow::Borrowed(text))).map(Some),
    }
}

/// Splits `a,b, c` into tags.
pub(crate) fn split_tags(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// Canonicalises a value of a declared type into a report with the feed's defaults.
pub(crate) fn report_of(
    kind: crate::IndicatorType,
    value: &str,
    defaults: &FeedDefaults,
) -> Result<Report, (Reason, String)> {
    let indicator = crate::Indicator::new(kind, value).map_err(|e| (Reason::InvalidValue, e.to_string()))?;
    let mut r = Report::new(indicator, defaults.tlp);
    r.confidence = defaults.confidence;
    Ok(r)
}

/// The deepest nesting of `[` and `{` outside strings; stops counting past `limit`.
/// Checked before parsing so deeply nested input is refused without recursing into it.
///
/// Every JSON record is scanned once by this before it is parsed, so strings (most of a
/// record's bytes) are skipped to their closing quote with `memchr`, not a byte at a time.
pub fn json_depth(text: &str, limit: usize) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                // To the quote that closes the string: the next one no backslash escapes.
                i += 1;
                loop {
                    let Some(rest) = bytes.get(i..) else { return max };
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(j) if rest[j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j;
                            break;
                        }
                        // An unterminated string: nothing after it counts.
                        None => return max,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
                if max > limit {
                    return max;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every format with a confidence reads the same values the same way: a number from 0 to
    /// 100 (rounded) is the report's confidence; anything else makes the report invalid.
    #[test]
    fn every_format_reads_a_confidence_the_same_way() {
        use delimited::{Column, CsvOptions};
        use json_mapping::JsonMapping;
        let defaults = FeedDefaults { tlp: Tlp::Green, confidence: Some(50) };
        let csv = CsvOptions {
            kind: Some(crate::IndicatorType::Ipv4),
            confidence: Some(Column::Index(1)),
            ..CsvOptions::new(Column::Index(0))
        };
        let mapping = JsonMapping { confidence: Some("/conf".into()), ..JsonMapping::new("/ip") };
        // A value as JSON writes it: a number as a number, anything else as a string.
        let json = |c: &str| if c.parse::<f64>().is_ok() { c.to_string() } else { format!("{c:?}") };
        let records = |c: &str| -> Vec<(&str, Decoder, String)> {
            vec![
                (
                    "canonical JSON",
                    Decoder::Json(None),
                    format!(r#"{{"type":"ipv4","value":"192.0.2.1","confidence":{}}}"#, json(c)),
                ),
                (
                    "canonical JSON, as a string",
                    Decoder::Json(None),
                    format!(r#"{{"type":"ipv4","value":"192.0.2.1","confidence":"{c}"}}"#),
                ),
                (
                    "vendor JSON",
                    Decoder::Json(Some(mapping.clone())),
                    format!(r#"{{"ip":"192.0.2.1","conf":{}}}"#, json(c)),
                ),
                ("CSV", Decoder::Csv(csv.clone()), format!("192.0.2.1,{c}\n")),
                ("IntelMQ", Decoder::Intelmq, format!(r#"{{"source.ip":"192.0.2.1","feed.accuracy":{}}}"#, json(c))),
                (
                    "STIX 2.1",
                    Decoder::Stix2,
                    format!(
                        r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z","pattern":"[ipv4-addr:value = '192.0.2.1']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","confidence":{}}}"#,
                        json(c)
                    ),
                ),
            ]
        };
        for (c, expected) in [("87.5", Some(88)), ("101", None), ("-1", None), ("high", None)] {
            for (format, decoder, record) in records(c) {
                let d = decode(&decoder, record.as_bytes(), &Limits::default(), &defaults);
                match expected {
                    Some(confidence) => {
                        assert_eq!(d.rejection, None, "{format} {c}");
                        assert_eq!(
                            d.reports.iter().map(|r| r.confidence).collect::<Vec<_>>(),
                            [Some(confidence)],
                            "{format} {c}"
                        );
                    }
                    None => {
                        assert!(d.reports.is_empty(), "{format} {c}: {:?}", d.reports);
                        assert_eq!(d.rejection.map(|r| r.reason), Some(Reason::InvalidValue), "{format} {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn property_names_are_borrowed_unless_escaped() {
        let o: RawObject<'_> = serde_json::from_str(r#"{"plain": 1, "esc\u0061ped": 2}"#).unwrap();
        assert!(matches!(o.0[0].0, Cow::Borrowed("plain")));
        assert!(matches!(&o.0[1].0, Cow::Owned(n) if n == "escaped"));
        assert_eq!(o.get("escaped").map(RawValue::get), Some("2"));
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(r#"{"a": "[[[{{{", "b": [1, {"c": 2}]}"#, 100), 3);
        assert_eq!(json_depth(&"[".repeat(1000), 40), 41);
        // Escaped quotes and backslashes inside strings; an unterminated string at the end.
        assert_eq!(json_depth(r#"[{"a\"[": "\\", "b": ["\"]\\"]}]"#, 100), 3);
        assert_eq!(json_depth(r#"[["x\"#, 100), 2);
        assert_eq!(json_depth(r#"[["x\\\"[[["#, 100), 2);
        assert_eq!(json_depth(r#"[["x\\"[[["]"#, 100), 5);
    }

    /// The byte-at-a-time scan `json_depth` replaced, as the reference it must agree with.
    fn depth_by_bytes(text: &str, limit: usize) -> usize {
        let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
        for b in text.bytes() {
            match (in_str, escaped, b) {
                (true, true, _) => escaped = false,
                (true, false, b'\\') => escaped = true,
                (true, false, b'"') | (false, _, b'"') => in_str = !in_str,
                (true, ..) => {}
                (false, _, b'[' | b'{') => {
                    depth += 1;
                    max = max.max(depth);
                    if max > limit {
                        return max;
                    }
                }
                (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    #[test]
    fn depth_agrees_with_a_byte_at_a_time_scan() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = ['[', ']', '{', '}', '"', '\\', 'a', ' '];
        for _ in 0..20_000 {
            let text: String = (0..rng.usize(0..40)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
            assert_eq!(json_depth(&text, 6), depth_by_bytes(&text, 6), "{text:?}");
        }
    }
}
