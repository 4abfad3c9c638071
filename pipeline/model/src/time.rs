//! Timestamps as feeds write them, read into milliseconds since the Unix epoch.
//!
//! iocflow never asks the wall clock when deciding what to emit: it uses the times in the
//! records, so a replay makes the same decisions. This module only parses.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// Parses RFC 3339 (`2024-05-01T10:00:00Z`), `YYYY-MM-DD HH:MM:SS` (UTC), a bare date, or epoch
/// seconds / milliseconds as a string.
pub fn parse_str(s: &str) -> Option<Millis> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(epoch_number(n));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S %Z"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches(" UTC"), fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// Reads an epoch number: values below 10^11 are seconds (until the year 5138), larger ones
/// milliseconds.
pub fn epoch_number(n: i64) -> Millis {
    if n.abs() < 100_000_000_000 { n.saturating_mul(1000) } else { n }
}

/// Formats milliseconds as RFC 3339 UTC with millisecond precision (`2024-05-01T10:00:00.000Z`).
pub fn format(ms: Millis) -> String {
    // RFC 3339 with milliseconds and `Z`, without parsing a format string per call.
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_forms() {
        let t = 1_714_557_600_000; // 2024-05-01T10:00:00Z
        assert_eq!(parse_str("2024-05-01T10:00:00Z"), Some(t));
        assert_eq!(parse_str("2024-05-01T18:00:00+08:00"), Some(t));
        assert_eq!(parse_str("2024-05-01 10:00:00"), Some(t));
        assert_eq!(parse_str("2024-05-01 10:00:00 UTC"), Some(t));
        assert_eq!(parse_str("1714557600"), Some(t));
        assert_eq!(parse_str("1714557600000"), Some(t));
        assert_eq!(parse_str("2024-05-01"), Some(t - 10 * 3_600_000));
        assert_eq!(parse_str("yesterday"), None);
        assert_eq!(format(t), "2024-05-01T10:00:00.000Z");
    }
}
