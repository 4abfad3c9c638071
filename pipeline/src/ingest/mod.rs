//! Stage 1, ingest: feed topics → decoded reports → `<app>.indicators` (Arrow IPC), bad records
//! → `<app>.dlq`.
//!
//! Each feed record is decoded by its feed's format into reports; each report goes to the
//! internal partition that owns its indicator (`hash(id) mod N`, computed here rather than by
//! the producer's partitioner, so that every report of one indicator meets in one place whatever
//! feed it came from). Reports are appended to one Arrow batch per internal partition; when the
//! micro-batch closes, each non-empty batch becomes one Kafka message. Undecodable records become
//! one dead letter each, with their raw bytes. Input offsets are stored only after all of that
//! is acknowledged.
//!
//! A CERT's sightings topic is read the same way: its sightings become reports of the CERT's
//! contributions (`sighting:<cc>`, `false_positive:<cc>`, `expiration:<cc>`), so they meet the
//! indicator's reports in its partition (`iocflow_model::sighting`).
//!
//! [`IngestBatch`] is that decoding and batching without Kafka (`iocflow process` uses it too);
//! [`stage`] binds it to the feed topics through the micro-batch loop both stages share.

pub(crate) mod stage;

use crate::config::{CertConfig, FeedConfig};
use crate::indicator_batch::IndicatorBatchBuilder;
use crate::kafka::outbox::OutRecord;
use crate::telemetry::metrics::Metrics;
use iocflow_model::Report;
use iocflow_model::decode::{Decoder, FeedDefaults, Limits, Rejection, decode, decode_sightings};
use iocflow_model::sighting::{self, SightingKind};
use iocflow_model::time::Millis;
use iocflow_sinks::dead_letter::DeadLetter;
use rdkafka::message::OwnedHeaders;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A topic the ingest stage reads: a feed's, or a CERT's sightings.
pub struct Feed {
    /// The feed's name; `sightings.<cc>` for a CERT's sightings (the metrics' feed label).
    name: String,
    provider: String,
    input: Input,
}

/// What a topic's records are.
enum Input {
    /// A feed's reports, in its format.
    Reports { decoder: Decoder, defaults: FeedDefaults },
    /// A CERT's sightings: each kind's contribution name (`sighting.rs`), in
    /// [`SightingKind::ALL`]'s order, and the CERT as the metrics name it.
    Sightings { contributions: [String; 3], cert: String },
}

impl From<&FeedConfig> for Feed {
    fn from(f: &FeedConfig) -> Self {
        let input = Input::Reports { decoder: f.decoder(), defaults: f.defaults() };
        Feed { name: f.name.clone(), provider: f.provider.clone(), input }
    }
}

impl Feed {
    /// The sightings topic of CERT `c`.
    pub fn sightings_of(c: &CertConfig) -> Feed {
        let contributions = SightingKind::ALL.map(|kind| sighting::contribution_name(kind, c.country));
        let cert = c.country.lower();
        let input = Input::Sightings { contributions, cert: cert.clone() };
        Feed { name: format!("sightings.{cert}"), provider: c.name.clone(), input }
    }

    /// The contribution name a decoded report is merged under: the feed's, or its CERT's for
    /// that kind of sighting.
    fn contribution(&self, r: &Report) -> &str {
        match (&self.input, r.sighting) {
            (Input::Sightings { contributions, .. }, Some(s)) => &contributions[s.kind as usize],
            _ => &self.name,
        }
    }
}

/// Decoding and batching, without Kafka: one micro-batch in the making.
pub struct IngestBatch {
    pub builders: Vec<IndicatorBatchBuilder>,
    pub dead_letters: Vec<EncodedDeadLetter>,
    pub received: BTreeMap<String, u64>,
    pub decoded: BTreeMap<String, u64>,
    pub dead_lettered: BTreeMap<(String, &'static str), u64>,
    /// Sightings decoded, per (CERT, kind).
    pub sightings: BTreeMap<(String, &'static str), u64>,
    pub earliest: Option<Millis>,
    rows: usize,
    bytes: usize,
}

/// A dead letter ready to send.
pub struct EncodedDeadLetter {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: OwnedHeaders,
}

impl EncodedDeadLetter {
    /// The dead letter of `raw`, read at `origin` for `feed` (a feed's name; the internal topic's
    /// for a corrupt internal record), with why it was refused; its bytes kept up to `max`.
    pub fn new(feed: &str, raw: &[u8], origin: Origin<'_>, rejection: &Rejection, max: usize) -> EncodedDeadLetter {
        let (payload, headers) = DeadLetter {
            feed,
            topic: origin.topic,
            partition: origin.partition,
            offset: origin.offset,
            key: origin.key,
            raw,
            rejection,
        }
        .encode(max);
        EncodedDeadLetter { key: origin.key.map(<[u8]>::to_vec), payload, headers }
    }

    /// The record for the dead-letter topic.
    pub fn into_record(self, dlq_topic: &Arc<str>) -> OutRecord {
        OutRecord::new(dlq_topic, self.key, Some(self.payload)).with_headers(self.headers)
    }
}

/// Where a feed record came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Millis,
    pub key: Option<&'a [u8]>,
}

impl IngestBatch {
    pub fn new(partitions: u32) -> IngestBatch {
        IngestBatch {
            builders: (0..partitions).map(|_| IndicatorBatchBuilder::new()).collect(),
            dead_letters: Vec::new(),
            received: BTreeMap::new(),
            decoded: BTreeMap::new(),
            dead_lettered: BTreeMap::new(),
            sightings: BTreeMap::new(),
            earliest: None,
            rows: 0,
            bytes: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Decodes one feed record into the batch: reports into their partitions' builders, and at
    /// most one dead letter.
    pub fn add(&mut self, feed: &Feed, payload: &[u8], origin: Origin<'_>, limits: &Limits, dead_letter_max: usize) {
        *self.received.entry(feed.name.clone()).or_default() += 1;
        self.earliest = Some(self.earliest.map_or(origin.timestamp, |e| e.min(origin.timestamp)));
        let decoded = match &feed.input {
            Input::Reports { decoder, defaults } => decode(decoder, payload, limits, defaults),
            Input::Sightings { .. } => decode_sightings(payload, limits),
        };
        let partitions = self.builders.len() as u32;
        for r in &decoded.reports {
            let b = &mut self.builders[r.indicator.id.partition(partitions) as usize];
            let before = b.approx_bytes();
            b.push(r, feed.contribution(r), &feed.provider, origin.timestamp);
            self.bytes += b.approx_bytes() - before;
        }
        if let Input::Sightings { cert, .. } = &feed.input {
            for s in decoded.reports.iter().filter_map(|r| r.sighting) {
                *self.sightings.entry((cert.clone(), s.kind.as_str())).or_default() += 1;
            }
        }
        self.rows += decoded.reports.len();
        *self.decoded.entry(feed.name.clone()).or_default() += decoded.reports.len() as u64;
        if let Some(rejection) = &decoded.rejection {
            self.dead_letter(feed, payload, origin, rejection, dead_letter_max);
        }
    }

    fn dead_letter(&mut self, feed: &Feed, raw: &[u8], origin: Origin<'_>, rejection: &Rejection, max: usize) {
        let letter = EncodedDeadLetter::new(&feed.name, raw, origin, rejection, max);
        self.bytes += letter.payload.len();
        self.dead_letters.push(letter);
        *self.dead_lettered.entry((feed.name.clone(), rejection.reason.as_str())).or_default() += 1;
    }

    pub fn publish(&self, metrics: &Metrics) {
        for (feed, n) in &self.received {
            metrics.records_received.with_label_values(&[feed.as_str()]).inc_by(*n);
        }
        for (feed, n) in &self.decoded {
            metrics.reports_decoded.with_label_values(&[feed.as_str()]).inc_by(*n);
        }
        for ((feed, reason), n) in &self.dead_lettered {
            metrics.records_dead_lettered.with_label_values(&[feed.as_str(), reason]).inc_by(*n);
        }
        for ((cert, kind), n) in &self.sightings {
            metrics.sightings_received.with_label_values(&[cert.as_str(), kind]).inc_by(*n);
        }
    }
}
