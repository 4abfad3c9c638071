//! What iocflow writes, and how it reaches Kafka.
//!
//! - [`cert_record`]: the canonical JSON record a national CERT receives (DESIGN.md,
//!   "Interfaces"; its JSON Schema is `schemas/cert-record.schema.json`).
//! - [`stix_indicator`]: the same record as a STIX 2.1 indicator, for CERTs that take STIX.
//! - [`dead_letter`]: a feed record that could not be decoded, kept byte for byte with the reason.
//! - [`withheld`]: the audit record of a report that the TLP policy kept back.
//! - [`delivery`]: a batch of Kafka sends awaited together, so the caller stores input offsets
//!   only after everything derived from them is delivered (at-least-once).

pub mod cert_record;
pub mod dead_letter;
pub mod delivery;
pub mod stix_indicator;
pub mod withheld;

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("delivery to {topic} failed: {error}")]
    Delivery { topic: String, error: rdkafka::error::KafkaError },
    #[error("encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A record as JSON, written into a buffer with room for `typical` bytes: `serde_json::to_vec`
/// starts at 128 bytes and grows, copying, twice or three times for a record of a few hundred.
/// For every JSON record iocflow writes (the changelog's entries too).
pub fn json(record: &impl serde::Serialize, typical: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(typical);
    serde_json::to_writer(&mut out, record)?;
    Ok(out)
}
