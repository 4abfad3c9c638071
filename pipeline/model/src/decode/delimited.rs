//! Delimited text (format `csv`): abuse.ch CSV exports (Feodo Tracker, URLhaus, ThreatFox) and
//! Spamhaus DROP / ASN-DROP (`1.4.0.0/17 ; SBL256893`).
//!
//! Columns are chosen by header name (when the feed has a header row) or by index from 0. The
//! indicator type is fixed per feed or read from a column (ThreatFox's `ioc_type`: `ip:port`,
//! `domain`, `url`, `md5_hash` …). Comment lines (by prefix) are skipped; abuse.ch exports put
//! their header in a comment, so they are read by index.

use super::field_mapping::{FieldMap, MappedRecord, report};
use super::{Decoded, FeedDefaults, Limits, Reason, split_tags};
use crate::IndicatorType;
use crate::time::{self, Millis};
use serde::Deserialize;
use std::borrow::Cow;

/// A column: its header name, or its index from 0.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Lines starting with this are comments.
    #[serde(default = "default_comment")]
    pub comment: Option<char>,
    /// The first non-comment row names the columns.
    #[serde(default)]
    pub header: bool,
    pub value: Column,
    /// The type of every value, unless `type_column` gives it per row.
    #[serde(rename = "type")]
    pub kind: Option<IndicatorType>,
    pub type_column: Option<Column>,
    pub first_seen: Option<Column>,
    pub last_seen: Option<Column>,
    pub threat: Option<Column>,
    /// A fixed threat for every row (when no column has one).
    pub threat_value: Option<String>,
    /// A column of comma-separated tags.
    pub tags: Option<Column>,
    pub confidence: Option<Column>,
    pub target_country: Option<Column>,
}

impl CsvOptions {
    /// Options reading `value` as the indicator, everything else at its default.
    pub fn new(value: Column) -> CsvOptions {
        CsvOptions {
            delimiter: default_delimiter(),
            comment: default_comment(),
            header: false,
            value,
            kind: None,
            type_column: None,
            first_seen: None,
            last_seen: None,
            threat: None,
            threat_value: None,
            tags: None,
            confidence: None,
            target_country: None,
        }
    }
}

fn default_delimiter() -> char {
    ','
}
fn default_comment() -> Option<char> {
    Some('#')
}

fn resolve(col: &Column, header: Option<&csv::StringRecord>) -> Result<usize, String> {
    match (col, header) {
        (Column::Index(i), _) => Ok(*i),
        (Column::Name(n), Some(h)) => h
            .iter()
            .position(|c| c.trim().trim_start_matches('#').trim() == n)
            .ok_or_else(|| format!("no column named {n:?} in the header")),
        (Column::Name(n), None) => Err(format!("column {n:?} is named but the feed has no header")),
    }
}

pub(super) fn decode(o: &CsvOptions, text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    let Ok(delimiter) = u8::try_from(o.delimiter) else {
        return Decoded::rejected(Reason::InvalidCsv, "the delimiter must be one ASCII character");
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .comment(o.comment.and_then(|c| u8::try_from(c).ok()))
        .has_headers(o.header)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = if o.header {
        match reader.headers() {
            Ok(h) => Some(h.clone()),
            Err(e) => return Decoded::rejected(Reason::InvalidCsv, e.to_string()),
        }
    } else {
        None
    };
    let h = header.as_ref();
    let opt = |c: &Option<Column>| c.as_ref().map(|c| resolve(c, h)).transpose();
    let map = match (|| -> Result<FieldMap<usize>, String> {
        Ok(FieldMap {
            value: resolve(&o.value, h)?,
            kind: o.kind,
            type_field: opt(&o.type_column)?,
            first_seen: opt(&o.first_seen)?,
            last_seen: opt(&o.last_seen)?,
            threat: opt(&o.threat)?,
            threat_value: o.threat_value.clone(),
            tags: opt(&o.tags)?.into_iter().collect(),
            confidence: opt(&o.confidence)?,
            target_country: opt(&o.target_country)?,
        })
    })() {
        Ok(c) => c,
        Err(e) => return Decoded::rejected(Reason::MissingField, e),
    };
    for (n, row) in reader.records().enumerate() {
        match row.map_err(|e| (Reason::InvalidCsv, e.to_string())).and_then(|row| report(&map, &Row(&row), defaults)) {
            Ok(r) => out.reports.push(r),
            Err((reason, why)) => out.item_failed(reason, format!("row {}: {why}", n + 1)),
        }
        if out.reports.len() > limits.max_indicators {
            break;
        }
    }
    out
}

/// A CSV row, its columns by index.
struct Row<'r>(&'r csv::StringRecord);

impl MappedRecord for Row<'_> {
    type Field = usize;

    fn text(&self, column: &usize) -> Option<Cow<'_, str>> {
        self.0.get(*column).map(str::trim).filter(|s| !s.is_empty()).map(Cow::Borrowed)
    }

    fn time(&self, column: &usize) -> Option<Millis> {
        self.text(column).and_then(|t| time::parse_str(&t))
    }

    fn tags(&self, column: &usize) -> Vec<String> {
        self.text(column).map(|t| split_tags(&t)).unwrap_or_default()
    }

    fn locate(column: &usize) -> String {
        format!("column {column}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, decode};
    use super::*;
    use crate::Tlp;

    fn run(o: CsvOptions, text: &str) -> Decoded {
        let defaults = FeedDefaults { tlp: Tlp::Clear, confidence: Some(70) };
        decode(&Decoder::Csv(o), text.as_bytes(), &Limits::default(), &defaults)
    }

    #[test]
    fn spamhaus_drop_and_asn_drop() {
        let o = CsvOptions {
            delimiter: ';',
            comment: Some(';'),
            threat_value: Some("spam".into()),
            ..CsvOptions::new(Column::Index(0))
        };
        let d = run(
            o.clone(),
            "; Spamhaus DROP List 2024/05/01\n; Last-Modified: x\n192.0.2.0/24 ; SBL000001\n2001:db8:1000::/36 ; SBL000002\n",
        );
        assert_eq!(d.rejection, None);
        let v: Vec<&str> = d.reports.iter().map(|r| r.indicator.value.as_str()).collect();
        assert_eq!(v, ["192.0.2.0/24", "2001:db8:1000::/36"]);
        assert!(d.reports.iter().all(|r| r.indicator.kind == IndicatorType::Cidr));
        let d = run(o, "; ASN-DROP\nAS64500 ; XX | Example Bulletproof Hosting\nAS64511 ; | Other\n");
        let v: Vec<&str> = d.reports.iter().map(|r| r.indicator.value.as_str()).collect();
        assert_eq!(v, ["AS64500", "AS64511"]);
    }

    #[test]
    fn urlhaus_export_by_index() {
        let o = CsvOptions {
            kind: Some(IndicatorType::Url),
            first_seen: Some(Column::Index(1)),
            threat: Some(Column::Index(5)),
            tags: Some(Column::Index(6)),
            ..CsvOptions::new(Column::Index(2))
        };
        let text = "################\n# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
            \"3000001\",\"2024-05-01 10:00:00\",\"http://198.51.100.7/bins/x.arm7\",\"online\",\"2024-05-01 10:00:00\",\"malware_download\",\"elf,mirai\",\"https://urlhaus.example/url/3000001/\",\"someone\"\n";
        let d = run(o, text);
        assert_eq!(d.rejection, None);
        let r = &d.reports[0];
        assert_eq!(r.indicator.value, "http://198.51.100.7/bins/x.arm7");
        assert_eq!(r.threat.as_deref(), Some("malware_download"));
        assert_eq!(r.tags, ["elf", "mirai"]);
        assert_eq!(r.first_seen, Some(1_714_557_600_000));
        assert_eq!(r.confidence, Some(70));
    }

    #[test]
    fn threatfox_types_per_row_and_named_columns() {
        let o = CsvOptions {
            header: true,
            type_column: Some(Column::Name("ioc_type".into())),
            confidence: Some(Column::Name("confidence_level".into())),
            ..CsvOptions::new(Column::Name("ioc_value".into()))
        };
        let text = "ioc_value,ioc_type,confidence_level\n192.0.2.10:8443,ip:port,75\nbad.example.com,domain,100\n\
                    d41d8cd98f00b204e9800998ecf8427e,md5_hash,50\nx,mutex,50\n";
        let d = run(o, text);
        let got: Vec<(&str, &str, Option<u8>)> =
            d.reports.iter().map(|r| (r.indicator.kind.as_str(), r.indicator.value.as_str(), r.confidence)).collect();
        assert_eq!(
            got,
            [
                ("ipv4", "192.0.2.10", Some(75)),
                ("domain", "bad.example.com", Some(100)),
                ("md5", "d41d8cd98f00b204e9800998ecf8427e", Some(50))
            ]
        );
        assert_eq!(d.rejection.unwrap().reason, Reason::UnsupportedType);
    }

    #[test]
    fn a_named_column_needs_a_header() {
        let d = run(CsvOptions::new(Column::Name("url".into())), "http://x.example/\n");
        assert_eq!(d.rejection.unwrap().reason, Reason::MissingField);
    }
}
