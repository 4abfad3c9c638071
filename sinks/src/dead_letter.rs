//! Dead letters: feed records iocflow could not read, kept for the producer to fix and replay.
//!
//! The value is the original record's bytes, unchanged (truncated above a configured size, and
//! then the truncation is recorded), so a fixed record can be replayed as is. What happened is
//! in headers, all prefixed `iocflow.`: the feed, the origin topic/partition/offset, the reason
//! from the fixed vocabulary of `iocflow_model::decode::Reason`, a human-readable detail, and
//! how many items of the record failed.

use iocflow_model::decode::Rejection;
use rdkafka::message::{Header, OwnedHeaders};

/// A feed record that could not be read, and where it came from.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub feed: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub raw: &'a [u8],
    pub rejection: &'a Rejection,
}

impl DeadLetter<'_> {
    /// The payload (the raw bytes, at most `max_bytes`) and the headers of the dead letter.
    pub fn encode(&self, max_bytes: usize) -> (Vec<u8>, OwnedHeaders) {
        let truncated = self.raw.len() > max_bytes;
        let payload = self.raw[..self.raw.len().min(max_bytes)].to_vec();
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        let failed = self.rejection.failed_items.to_string();
        let size = self.raw.len().to_string();
        let mut headers = OwnedHeaders::new_with_capacity(9);
        for (key, value) in [
            ("iocflow.feed", self.feed),
            ("iocflow.reason", self.rejection.reason.as_str()),
            ("iocflow.detail", &self.rejection.detail),
            ("iocflow.origin.topic", self.topic),
            ("iocflow.origin.partition", &partition),
            ("iocflow.origin.offset", &offset),
            ("iocflow.failed_items", &failed),
            ("iocflow.raw_bytes", &size),
            ("iocflow.truncated", if truncated { "true" } else { "false" }),
        ] {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        (payload, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iocflow_model::decode::Reason;
    use rdkafka::message::Headers;

    #[test]
    fn keeps_the_bytes_and_records_truncation() {
        let rejection = Rejection { reason: Reason::InvalidJson, detail: "expected value".into(), failed_items: 1 };
        let dl = DeadLetter {
            feed: "member-sg",
            topic: "feeds.member.sg",
            partition: 2,
            offset: 41,
            key: None,
            raw: b"\xff{not json",
            rejection: &rejection,
        };
        let (payload, headers) = dl.encode(4);
        assert_eq!(payload, b"\xff{no");
        let get = |k: &str| {
            headers.iter().find(|h| h.key == k).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(get("iocflow.reason").as_deref(), Some("invalid_json"));
        assert_eq!(get("iocflow.origin.offset").as_deref(), Some("41"));
        assert_eq!(get("iocflow.truncated").as_deref(), Some("true"));
        assert_eq!(get("iocflow.raw_bytes").as_deref(), Some("10"));
    }
}
