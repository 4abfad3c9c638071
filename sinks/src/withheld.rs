//! The audit record of a report that no CERT received, written to `<app>.withheld`.
//!
//! Operators and the auditor read it to see what the policy kept back and why; it carries the
//! report's own label and origin, never anything a CERT could see through it.

use iocflow_model::{Country, IndicatorId, Name};
use serde::Serialize;

/// Why a report reached no CERT. A fixed vocabulary: it is a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithheldReason {
    TlpRed,
    TlpAmberStrict,
    UnknownLabel,
    SharingGroup,
    NoRecipient,
    /// A warninglist calls the indicator benign and the deployment drops benign indicators.
    Benign,
}

impl WithheldReason {
    pub const ALL: [WithheldReason; 6] = [
        WithheldReason::TlpRed,
        WithheldReason::TlpAmberStrict,
        WithheldReason::UnknownLabel,
        WithheldReason::SharingGroup,
        WithheldReason::NoRecipient,
        WithheldReason::Benign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WithheldReason::TlpRed => "tlp_red",
            WithheldReason::TlpAmberStrict => "tlp_amber_strict",
            WithheldReason::UnknownLabel => "unknown_label",
            WithheldReason::SharingGroup => "sharing_group",
            WithheldReason::NoRecipient => "no_recipient",
            WithheldReason::Benign => "benign",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WithheldRecord {
    pub id: IndicatorId,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
    pub feed: Name,
    pub provider: Name,
    pub tlp: &'static str,
    pub reason: WithheldReason,
    /// Countries the report implicates (infrastructure and feed-given targets).
    pub countries: Vec<Country>,
    /// The Kafka timestamp of the report (written in RFC 3339).
    #[serde(serialize_with = "crate::cert_record::rfc3339")]
    pub reported_at: iocflow_model::time::Millis,
}

impl WithheldRecord {
    pub fn to_json(&self) -> crate::Result<Vec<u8>> {
        // About 260 bytes on average in the end-to-end benchmark.
        crate::json(self, 384)
    }
}
