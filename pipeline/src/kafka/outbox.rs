//! What a micro-batch sends, and the two ways it is delivered (DESIGN.md, "Deliver").
//!
//! - at-least-once: the outputs are delivered, then the changelog records, then the lowest
//!   fully delivered offset per input partition is stored for the next commit. A crash at any
//!   point replays input; nothing is lost, a view may be sent twice.
//! - exactly-once: one transactional producer per stage per replica; outputs, changelog records
//!   and input offsets commit in one transaction. An abortable error aborts it; a fatal error or
//!   a commit that keeps failing recreates the producer (whose `init_transactions` also aborts
//!   what was open). Either way the caller gets [`Delivered::RolledBack`] and must rewind its
//!   consumer to the committed offsets and drop the state the batch touched.

use crate::config::{Config, Delivery};
use crate::error::Result;
use crate::kafka::client_config;
use crate::kafka::micro_batch::InputOffsets;
use crate::telemetry::client_stats::{ClientStats, ProducerStats, StageProducer};
use crate::telemetry::metrics::Metrics;
use iocflow_sinks::delivery::{Deliveries, Outgoing};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::Producer;
use std::sync::Arc;
use std::time::Duration;

/// One record to send.
#[derive(Debug)]
pub struct OutRecord {
    /// Shared by every record of a batch to the same topic: no copy of the name per record.
    pub topic: Arc<str>,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
}

impl OutRecord {
    /// A record to `topic`, placed by its key, without headers; `payload` `None` is a tombstone.
    pub fn new(topic: &Arc<str>, key: Option<Vec<u8>>, payload: Option<Vec<u8>>) -> OutRecord {
        OutRecord { topic: topic.clone(), partition: None, key, payload, headers: None }
    }

    /// In this partition rather than the key's.
    pub fn in_partition(self, partition: i32) -> OutRecord {
        OutRecord { partition: Some(partition), ..self }
    }

    pub fn with_headers(self, headers: OwnedHeaders) -> OutRecord {
        OutRecord { headers: Some(headers), ..self }
    }
}

/// Everything one micro-batch sends: outputs first, changelog records after.
#[derive(Debug, Default)]
pub struct Outbox {
    pub outputs: Vec<OutRecord>,
    pub changelog: Vec<OutRecord>,
}

impl Outbox {
    fn records_mut(&mut self) -> impl Iterator<Item = &mut OutRecord> {
        self.outputs.iter_mut().chain(&mut self.changelog)
    }
}

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    Committed,
    /// Nothing of the batch is visible: rewind to the committed offsets, drop touched state.
    RolledBack,
}

const TXN_CALL: Duration = Duration::from_secs(30);

/// The producer side of a stage.
pub enum Sink {
    AtLeastOnce(StageProducer),
    ExactlyOnce { producer: StageProducer, settings: ClientConfig, context: ProducerStats, stage: &'static str },
}

impl Sink {
    /// The sink of `stage` in the configured delivery mode; exactly-once initialises its
    /// transactions (fencing and aborting a dead predecessor's).
    pub fn new(config: &Config, stage: &'static str, metrics: &Metrics) -> Result<Sink> {
        let context = ProducerStats(Some(Arc::new(ClientStats::producer(stage, metrics.clone()))));
        Ok(match config.kafka.delivery {
            Delivery::AtLeastOnce => Sink::AtLeastOnce(client_config::producer(config).create_with_context(context)?),
            Delivery::ExactlyOnce => {
                let settings = client_config::transactional_producer(config, stage);
                let producer = Self::transactional(&settings, &context)?;
                Sink::ExactlyOnce { producer, settings, context, stage }
            }
        })
    }

    fn transactional(settings: &ClientConfig, context: &ProducerStats) -> Result<StageProducer> {
        let producer: StageProducer = settings.create_with_context(context.clone())?;
        tokio::task::block_in_place(|| producer.init_transactions(TXN_CALL))?;
        Ok(producer)
    }

    /// Delivers a batch and records its input offsets, in this sink's mode.
    pub async fn deliver<C: ConsumerContext + 'static>(
        &mut self,
        outbox: Outbox,
        offsets: &InputOffsets,
        consumer: &StreamConsumer<C>,
        metrics: &Metrics,
    ) -> Result<Delivered> {
        match self {
            Sink::AtLeastOnce(producer) => {
                let mut outbox = outbox;
                for phase in [&mut outbox.outputs, &mut outbox.changelog] {
                    let mut deliveries = Deliveries::new(producer);
                    for r in phase.iter_mut() {
                        // Sent once: librdkafka takes the headers as they are, not a copy.
                        let headers = r.headers.take();
                        deliveries.send(outgoing(r), headers).await?;
                    }
                    deliveries.wait().await?;
                }
                offsets.store(consumer)?;
                Ok(Delivered::Committed)
            }
            Sink::ExactlyOnce { producer, settings, context, stage } => {
                let mut outbox = outbox;
                let outcome = tokio::task::block_in_place(|| transact(producer, &mut outbox, offsets, consumer));
                let result = match outcome {
                    Ok(()) => "committed",
                    Err(e) => {
                        tracing::warn!(stage = *stage, "transaction failed: {e}");
                        let abortable = matches!(&e, KafkaError::Transaction(t) if t.txn_requires_abort());
                        let aborted =
                            abortable && tokio::task::block_in_place(|| producer.abort_transaction(TXN_CALL)).is_ok();
                        if !aborted {
                            tracing::warn!(stage = *stage, "recreating the transactional producer");
                            *producer = Self::transactional(settings, context)?;
                        }
                        "aborted"
                    }
                };
                metrics.transactions.with_label_values(&[*stage, result]).inc();
                Ok(if result == "committed" { Delivered::Committed } else { Delivered::RolledBack })
            }
        }
    }

    /// At shutdown: commits the offsets stored so far (at-least-once; exactly-once committed
    /// them in its transactions) and waits for what is in flight.
    pub fn finish<C: ConsumerContext + 'static>(
        &self,
        committed: &InputOffsets,
        consumer: &StreamConsumer<C>,
    ) -> Result<()> {
        let producer = match self {
            Sink::AtLeastOnce(p) => {
                committed.commit(consumer)?;
                p
            }
            Sink::ExactlyOnce { producer, .. } => producer,
        };
        producer.flush(Duration::from_secs(30))?;
        Ok(())
    }
}

fn outgoing(r: &OutRecord) -> Outgoing<'_> {
    Outgoing { topic: &r.topic, partition: r.partition, key: r.key.as_deref(), payload: r.payload.as_deref() }
}

/// Waits (up to [`TXN_CALL`]) until every record sent has its delivery report.
///
/// rdkafka's `commit_transaction` flushes first, and its flush sleeps in 100 ms slices whenever
/// anything is still in flight: waiting here in 1 ms steps (the producer's own thread serves the
/// reports) saves most of 100 ms per transaction. A commit after a timeout here still flushes
/// and fails if a delivery failed.
fn await_deliveries(producer: &StageProducer) {
    let deadline = std::time::Instant::now() + TXN_CALL;
    while producer.in_flight_count() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One transaction: begin, send everything, add the input offsets, commit (retrying a commit
/// librdkafka calls retriable).
fn transact<C: ConsumerContext + 'static>(
    producer: &StageProducer,
    outbox: &mut Outbox,
    offsets: &InputOffsets,
    consumer: &StreamConsumer<C>,
) -> Result<(), KafkaError> {
    producer.begin_transaction()?;
    for r in outbox.records_mut() {
        // Sent once (an aborted batch is collected again): the headers themselves, not a copy.
        let headers = r.headers.take();
        let mut record = outgoing(r).record(headers);
        loop {
            match producer.send_result(record) {
                // The delivery report is not awaited: the commit flushes and fails if any failed.
                Ok(_delivery) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
    let group = consumer.group_metadata().ok_or(KafkaError::NoMessageReceived)?;
    producer.send_offsets_to_transaction(&offsets.list()?, &group, TXN_CALL)?;
    await_deliveries(producer);
    let mut tries = 0;
    loop {
        match producer.commit_transaction(TXN_CALL) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(t)) if t.is_retriable() && tries < 3 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}
