//! Feed decoders: raw Kafka record bytes → reports, or one dead letter with a reason.
//!
//! The contract every decoder keeps (DESIGN.md, "Decode"): bad input never panics, never stalls
//! and is never silently dropped. A record yields reports, and when any part of it could not be
//! read, exactly one [`Rejection`] that says why with a reason from the fixed vocabulary of
//! [`Reason`]. Limits on size, nesting and indicators per record are checked before or while
//! parsing, each with its own reason, so a hostile producer cannot make the consumer allocate
//! without bound.

mod canonical_json;

use crate::{Report, Tlp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The feed formats iocflow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The canonical indicator JSON of DESIGN.md: an object, an array, or JSON Lines.
    Json,
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
    TooDeep,
    TooManyIndicators,
    Empty,
    NotAnObject,
    MissingField,
    UnsupportedType,
    InvalidValue,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::TooLarge,
        Reason::InvalidUtf8,
        Reason::InvalidJson,
        Reason::TooDeep,
        Reason::TooManyIndicators,
        Reason::Empty,
        Reason::NotAnObject,
        Reason::MissingField,
        Reason::UnsupportedType,
        Reason::InvalidValue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::InvalidJson => "invalid_json",
            Reason::TooDeep => "too_deep",
            Reason::TooManyIndicators => "too_many_indicators",
            Reason::Empty => "empty",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::UnsupportedType => "unsupported_type",
            Reason::InvalidValue => "invalid_value",
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
    fn rejected(reason: Reason, detail: impl Into<String>) -> Decoded {
        Decoded { reports: Vec::new(), rejection: Some(Rejection { reason, detail: detail.into(), failed_items: 1 }) }
    }

    /// Notes that one item failed; the first failure names the reason.
    fn item_failed(&mut self, reason: Reason, detail: impl fmt::Display) {
        match &mut self.rejection {
            Some(r) => r.failed_items += 1,
            None => self.rejection = Some(Rejection { reason, detail: detail.to_string(), failed_items: 1 }),
        }
    }
}

/// Decodes one record of a feed.
pub fn decode(format: Format, bytes: &[u8], limits: &Limits, defaults: &FeedDefaults) -> Decoded {
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
    match format {
        Format::Json => canonical_json::decode(text, limits, defaults),
    }
}

/// The deepest nesting of `[` and `{` outside strings; stops counting past `limit`.
/// Checked before parsing so deeply nested input is refused without recursing into it.
pub fn json_depth(text: &str, limit: usize) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
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
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(r#"{"a": "[[[{{{", "b": [1, {"c": 2}]}"#, 100), 3);
        assert_eq!(json_depth(&"[".repeat(1000), 40), 41);
    }
}
