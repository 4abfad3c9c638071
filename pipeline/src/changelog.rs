//! The changelog `<app>.state`: every change of the dedupe state, so a partition's state can be
//! rebuilt wherever the partition goes.
//!
//! One record per changed indicator per micro-batch: key = the indicator id (32 hex digits),
//! value = the whole entry as JSON, or a tombstone when the entry is forgotten. The topic is
//! compacted, so it holds one record per live indicator, and it has exactly the partitions of
//! `<app>.indicators`: changelog partition p holds the state of indicator partition p. In
//! exactly-once mode the records commit in the same transaction as the outputs and the input
//! offsets, so the state read back always matches what the CERTs were sent.

use crate::config::Config;
use crate::error::{Corrupt, Error, Result};
use crate::kafka_client;
use crate::state::{Entry, PartitionState};
use iocflow_model::IndicatorId;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// The value of a changelog record.
pub fn encode(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(entry).expect("an entry always serialises")
}

/// Reads a changelog value back.
pub fn decode(bytes: &[u8]) -> std::result::Result<Entry, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Rebuilds one partition's state from the changelog, reading committed records up to the end
/// the partition had when the restore started. Blocking: run it off the async executor.
pub fn restore(config: &Config, partition: i32) -> Result<PartitionState> {
    let topic = config.state_topic();
    let consumer: BaseConsumer = kafka_client::reader(config).create()?;
    let (low, high) = consumer.fetch_watermarks(&topic, partition, Duration::from_secs(30))?;
    let mut state = PartitionState::default();
    if high <= low {
        return Ok(state);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, partition, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    // An open transaction of a fenced instance holds the end back until it is aborted.
    let deadline = Instant::now() + Duration::from_millis(u64::from(config.kafka.transaction_timeout_ms) + 30_000);
    let corrupt = |offset: i64, why: String| Error::Corrupt(Corrupt { topic: topic.clone(), partition, offset, why });
    loop {
        let position = match consumer.position()?.find_partition(&topic, partition).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => low,
        };
        if position >= high {
            return Ok(state);
        }
        if Instant::now() > deadline {
            return Err(Error::Topics(format!(
                "restoring {topic}[{partition}] stalled at offset {position} of {high}"
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let key = m.key().and_then(|k| std::str::from_utf8(k).ok()).and_then(IndicatorId::from_hex);
                let id = key.ok_or_else(|| corrupt(m.offset(), "bad key".into()))?;
                match m.payload() {
                    None => state.restore_removal(&id),
                    Some(v) => state.restore(id, decode(v).map_err(|e| corrupt(m.offset(), e.to_string()))?),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Contribution, Emission};
    use iocflow_model::Tlp;

    #[test]
    fn entries_round_trip() {
        let mut e = Entry::default();
        e.merge(
            Contribution {
                feed: "f".into(),
                provider: "P".into(),
                tlp: Tlp::AmberStrict,
                confidence: Some(70),
                threat: Some("phishing".into()),
                tags: vec!["t".into()],
                first_seen: 1,
                last_seen: 2,
                target_countries: vec!["SG".into()],
                revoked: false,
                sharing_group: None,
                sightings: 3,
            },
            2,
        );
        e.emitted
            .insert("SG".into(), Emission { sources: vec!["f".into()], confidence: Some(70), revoked: false, at: 2 });
        let bytes = encode(&e);
        assert_eq!(decode(&bytes).unwrap(), e);
        assert!(bytes.len() < 400, "{} bytes", bytes.len());
    }
}
