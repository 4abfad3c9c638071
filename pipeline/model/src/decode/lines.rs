//! One indicator per line (format `lines`): blocklist.de, OpenPhish, plain exports.
//!
//! Empty lines and lines starting with a comment prefix (`#` and `;` by default) are skipped.
//! The first whitespace-separated token of a line is the value; its type is detected unless the
//! feed declares one. A line that is no indicator is a failed item.

use super::{Decoded, FeedDefaults, Limits, Reason, report_of};
use crate::{Indicator, IndicatorType};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesOptions {
    /// The type of every value; detected per line when absent.
    #[serde(rename = "type")]
    pub kind: Option<IndicatorType>,
    /// Line prefixes that start a comment.
    #[serde(default = "default_comments")]
    pub comments: Vec<String>,
    /// Threat of every indicator (e.g. `phishing` for OpenPhish).
    pub threat: Option<String>,
}

fn default_comments() -> Vec<String> {
    vec!["#".into(), ";".into()]
}

impl Default for LinesOptions {
    fn default() -> Self {
        LinesOptions { kind: None, comments: default_comments(), threat: None }
    }
}

pub(super) fn decode(options: &LinesOptions, text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || options.comments.iter().any(|c| line.starts_with(c.as_str())) {
            continue;
        }
        let value = line.split_whitespace().next().unwrap_or_default();
        let report = match options.kind {
            Some(kind) => report_of(kind, value, defaults),
            None => Indicator::detect(value)
                .map_err(|e| (Reason::InvalidValue, e.to_string()))
                .and_then(|i| report_of(i.kind, &i.value, defaults)),
        };
        match report {
            Ok(mut r) => {
                r.threat = options.threat.clone();
                out.reports.push(r);
            }
            Err((reason, why)) => out.item_failed(reason, format!("line {}: {why}", n + 1)),
        }
        if out.reports.len() > limits.max_indicators {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, decode};
    use super::*;
    use crate::Tlp;

    fn run(options: LinesOptions, text: &str) -> Decoded {
        let defaults = FeedDefaults { tlp: Tlp::Clear, confidence: None };
        decode(&Decoder::Lines(options), text.as_bytes(), &Limits::default(), &defaults)
    }

    #[test]
    fn detects_types_and_skips_comments() {
        let d = run(
            LinesOptions::default(),
            "# blocklist\n; also a comment\n\n192.0.2.4\n2001:db8::7  # trailing\nhxxp://phish.example[.]com/a\nevil.example.org\n",
        );
        assert_eq!(d.rejection, None);
        let got: Vec<(&str, &str)> =
            d.reports.iter().map(|r| (r.indicator.kind.as_str(), r.indicator.value.as_str())).collect();
        assert_eq!(
            got,
            [
                ("ipv4", "192.0.2.4"),
                ("ipv6", "2001:db8::7"),
                ("url", "http://phish.example.com/a"),
                ("domain", "evil.example.org")
            ]
        );
    }

    #[test]
    fn a_declared_type_and_bad_lines() {
        let opts =
            LinesOptions { kind: Some(IndicatorType::Url), threat: Some("phishing".into()), ..Default::default() };
        let d = run(opts, "http://www..example.com/phishing\nhttp://ok.example.net/x\n");
        assert_eq!(d.reports.len(), 1);
        assert_eq!(d.reports[0].threat.as_deref(), Some("phishing"));
        let r = d.rejection.unwrap();
        assert_eq!((r.reason, r.failed_items), (Reason::InvalidValue, 1));
        assert!(r.detail.starts_with("line 1"), "{}", r.detail);
    }
}
