//! The ingest stage bound to Kafka: feed topics in; the internal topic and the dead letters out,
//! through the micro-batch loop both stages share (`kafka/micro_batch.rs`).

use crate::config::Config;
use crate::error::Result;
use crate::indicator_batch::encode_ipc_within;
use crate::ingest::{Feed, IngestBatch, Origin};
use crate::kafka::micro_batch::{Stage, now_ms};
use crate::kafka::outbox::{OutRecord, Outbox};
use crate::telemetry::metrics::Metrics;
use iocflow_model::decode::Limits;
use rdkafka::message::{BorrowedMessage, Message};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct IngestStage {
    config: Arc<Config>,
    /// By topic.
    feeds: HashMap<String, Feed>,
    limits: Limits,
    indicators_topic: Arc<str>,
    dlq_topic: Arc<str>,
    metrics: Metrics,
}

impl IngestStage {
    pub fn new(config: Arc<Config>, metrics: Metrics) -> IngestStage {
        IngestStage {
            feeds: config
                .feeds
                .iter()
                .map(|f| (f.topic.clone(), Feed::from(f)))
                .chain(config.certs.iter().map(|c| (c.sightings_topic(), Feed::sightings_of(c))))
                .collect(),
            limits: config.limits.decode_limits(),
            indicators_topic: config.indicators_topic().into(),
            dlq_topic: config.dlq_topic().into(),
            config,
            metrics,
        }
    }

    /// The topics it reads: every feed's and every CERT's sightings topic.
    pub fn topics(&self) -> Vec<&str> {
        self.feeds.keys().map(String::as_str).collect()
    }
}

impl Stage for IngestStage {
    type Batch = IngestBatch;
    const NAME: &'static str = "ingest";

    fn begin(&mut self) -> IngestBatch {
        IngestBatch::new(self.config.kafka.partitions)
    }

    fn full(&self, batch: &IngestBatch) -> bool {
        batch.rows() >= self.config.batch.max_rows || batch.bytes() >= self.config.batch.max_bytes
    }

    fn collect(&mut self, batch: &mut IngestBatch, message: &BorrowedMessage<'_>) -> Result<()> {
        let Some(feed) = self.feeds.get(message.topic()) else {
            return Ok(());
        };
        let origin = Origin {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis().unwrap_or_else(now_ms),
            key: message.key(),
        };
        let dead_letter_max = self.config.limits.dead_letter_max_bytes;
        batch.add(feed, message.payload().unwrap_or_default(), origin, &self.limits, dead_letter_max);
        Ok(())
    }

    /// One indicator batch per internal partition that has rows (in that partition; split into
    /// several messages when one would exceed the topic's message limit), and the dead letters.
    fn outbox(&mut self, batch: &mut IngestBatch) -> Result<Outbox> {
        let mut outbox = Outbox::default();
        for (p, builder) in batch.builders.iter_mut().enumerate() {
            if builder.rows() > 0 {
                let max = self.config.limits.max_value_bytes();
                for payload in encode_ipc_within(&builder.finish()?, max)? {
                    let record = OutRecord::new(&self.indicators_topic, None, Some(payload)).in_partition(p as i32);
                    outbox.outputs.push(record);
                }
            }
        }
        for dl in std::mem::take(&mut batch.dead_letters) {
            outbox.outputs.push(dl.into_record(&self.dlq_topic));
        }
        Ok(outbox)
    }

    fn committed(&mut self, batch: IngestBatch) {
        batch.publish(&self.metrics);
    }
}
