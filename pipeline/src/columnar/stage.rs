//! The columnar stage bound to Kafka: indicator batches in; CERT records, withheld records,
//! changelog records, and dead letters for internal records that are not indicator batches
//! out, through the micro-batch loop both stages share (`kafka/micro_batch.rs`).
//!
//! On top of the loop it keeps each assigned partition's state in place: a partition that moves
//! away is forgotten, one that arrives is restored from the changelog before its first batch,
//! and a batch that is rolled back forgets the partitions it touched (their state is rebuilt
//! from what was committed).

use crate::columnar::{ColumnarCore, ColumnarOutput};
use crate::config::Config;
use crate::error::{Corrupt, Result};
use crate::indicator_batch::decode_ipc;
use crate::ingest::{EncodedDeadLetter, Origin};
use crate::kafka::micro_batch::{InputOffsets, Stage, now_ms};
use crate::kafka::outbox::{OutRecord, Outbox};
use crate::kafka::rebalance::StageContext;
use crate::state::{PartitionState, changelog};
use crate::telemetry::metrics::{Health, Metrics};
use iocflow_enrichers::tables::SharedTables;
use iocflow_model::decode::{Reason, Rejection};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use std::sync::Arc;
use std::time::Instant;

/// Indicator batches (Kafka messages) per micro-batch of the columnar stage.
const MAX_MESSAGES: usize = 64;

pub(crate) struct ColumnarStage {
    config: Arc<Config>,
    core: ColumnarCore,
    cert_topics: Vec<Arc<str>>,
    /// Per CERT, its label in the metrics (the lower-case country).
    cert_names: Vec<String>,
    withheld_topic: Arc<str>,
    dlq_topic: Arc<str>,
    state_topic: Arc<str>,
    metrics: Metrics,
    health: Arc<Health>,
}

/// One micro-batch: what its messages decided, how many there were, and those that were not
/// indicator batches.
#[derive(Default)]
pub(crate) struct ColumnarBatch {
    out: ColumnarOutput,
    messages: usize,
    /// Dead letters of the messages that were not indicator batches (taken by the outbox).
    corrupt: Vec<EncodedDeadLetter>,
    corrupt_count: u64,
    /// Indicators the state bounds forgot: (expired, evicted).
    forgotten: (u64, u64),
}

impl ColumnarStage {
    /// Loads the enrichment tables (an error names the file) and compiles the CERT filters.
    pub fn new(config: Arc<Config>, metrics: Metrics, health: Arc<Health>) -> Result<ColumnarStage> {
        let core = ColumnarCore::new(&config)?;
        crate::columnar::table_reload::record_loads(&metrics, &core.table_loads);
        Ok(ColumnarStage {
            core,
            cert_topics: config.certs.iter().map(|c| c.topic().into()).collect(),
            cert_names: config.certs.iter().map(|c| c.country.lower()).collect(),
            withheld_topic: config.withheld_topic().into(),
            dlq_topic: config.dlq_topic().into(),
            state_topic: config.state_topic().into(),
            config,
            metrics,
            health,
        })
    }

    /// The enrichment tables this stage uses, for the reloader.
    pub fn tables(&self) -> SharedTables {
        self.core.tables()
    }

    /// Loads the state of those `partitions` that are not loaded from the changelog.
    fn ensure_restored(&mut self, partitions: impl IntoIterator<Item = i32>) -> Result<()> {
        let missing: Vec<i32> = partitions.into_iter().filter(|p| !self.core.has_partition(*p)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let restoring = self.health.restoring();
        let states = tokio::task::block_in_place(|| changelog::restore(&self.config, &missing))?;
        drop(restoring);
        let entries: usize = states.values().map(PartitionState::len).sum();
        tracing::info!(?missing, entries, ms = started.elapsed().as_millis() as u64, "state restored");
        for (p, state) in states {
            self.core.install_partition(p, state);
        }
        Ok(())
    }
}

impl Stage for ColumnarStage {
    type Batch = ColumnarBatch;
    const NAME: &'static str = "columnar";

    /// Drops the state of revoked partitions, restores that of assigned ones, and puts reloaded
    /// enrichment tables in use.
    fn prepare(&mut self, consumer: &StreamConsumer<StageContext>) -> Result<()> {
        let moves = consumer.context().take();
        for (_, p) in &moves.revoked {
            self.core.drop_partition(*p);
        }
        self.ensure_restored(moves.assigned.iter().map(|(_, p)| *p))?;
        if self.core.promote_tables() {
            tracing::info!("reloaded enrichment tables in use");
        }
        Ok(())
    }

    fn begin(&mut self) -> ColumnarBatch {
        ColumnarBatch::default()
    }

    fn full(&self, batch: &ColumnarBatch) -> bool {
        batch.messages >= MAX_MESSAGES
    }

    /// Decodes and checks the message's indicator batches, then runs them through the core. A
    /// message that is not an indicator batch becomes a dead letter, whole, before any of it
    /// touches the state: stopping here would stop every replica that gets the partition in turn.
    fn collect(&mut self, batch: &mut ColumnarBatch, message: &BorrowedMessage<'_>) -> Result<()> {
        batch.messages += 1;
        let partition = message.partition();
        let payload = message.payload().unwrap_or_default();
        let batches = decode_ipc(payload);
        let checked = match &batches {
            Ok(batches) => batches.iter().map(|b| self.core.check(b)).collect(),
            Err(e) => Err(e.to_string()),
        };
        let checked: Vec<_> = match checked {
            Ok(checked) => checked,
            Err(why) => {
                let corrupt = Corrupt { topic: message.topic().into(), partition, offset: message.offset(), why };
                tracing::error!(%corrupt, "an internal record that is not an indicator batch: dead-lettered");
                let origin = Origin {
                    topic: message.topic(),
                    partition,
                    offset: message.offset(),
                    timestamp: message.timestamp().to_millis().unwrap_or_else(now_ms),
                    key: message.key(),
                };
                let rejection =
                    Rejection { reason: Reason::CorruptInternalRecord, detail: corrupt.why, failed_items: 1 };
                let max = self.config.limits.dead_letter_max_bytes;
                batch.corrupt.push(EncodedDeadLetter::new(message.topic(), payload, origin, &rejection, max));
                batch.corrupt_count += 1;
                return Ok(());
            }
        };
        self.ensure_restored([partition])?;
        for b in checked {
            self.core.process_checked(partition, b, &mut batch.out)?;
        }
        Ok(())
    }

    /// Each CERT's records, the withheld records, then the changelog of what changed.
    fn outbox(&mut self, batch: &mut ColumnarBatch) -> Result<Outbox> {
        let encoded = self.core.encode(&mut batch.out)?;
        let mut outbox = Outbox::default();
        for (k, key, payload) in encoded.cert_records {
            outbox.outputs.push(OutRecord::new(&self.cert_topics[k], Some(key.into_bytes()), Some(payload)));
        }
        for (key, payload) in encoded.withheld {
            outbox.outputs.push(OutRecord::new(&self.withheld_topic, Some(key.into_bytes()), Some(payload)));
        }
        for dl in std::mem::take(&mut batch.corrupt) {
            outbox.outputs.push(dl.into_record(&self.dlq_topic));
        }
        let changelog = self.core.take_changelog();
        batch.forgotten = (changelog.expired, changelog.evicted);
        outbox.changelog = changelog
            .entries
            .into_iter()
            .map(|c| {
                let record = OutRecord::new(&self.state_topic, Some(c.key), c.value).in_partition(c.partition);
                match &c.named {
                    Some(named) => record.with_headers(changelog::headers(named)),
                    None => record,
                }
            })
            .collect();
        Ok(outbox)
    }

    fn committed(&mut self, batch: ColumnarBatch) {
        let (m, out) = (&self.metrics, &batch.out);
        for (k, n) in &out.emitted_per_cert {
            m.indicators_emitted.with_label_values(&[self.cert_names[*k].as_str()]).inc_by(*n);
        }
        for (counter, per_cert) in [
            (&m.false_positive_revocations, &out.false_positive_revocations_per_cert),
            (&m.expiries, &out.expiries_per_cert),
            (&m.revivals, &out.revivals_per_cert),
        ] {
            for (k, n) in per_cert {
                counter.with_label_values(&[self.cert_names[*k].as_str()]).inc_by(*n);
            }
        }
        m.indicators_suppressed.inc_by(out.suppressed);
        for (outcome, n) in &out.outcomes {
            m.report_outcomes.with_label_values(&[outcome]).inc_by(*n);
        }
        for (reason, n) in &out.withheld_per_reason {
            m.reports_withheld.with_label_values(&[reason.as_str()]).inc_by(*n);
        }
        for (enricher, (hits, misses)) in &out.enrich_lookups {
            m.enrichment_lookups.with_label_values(&[enricher, "hit"]).inc_by(*hits);
            m.enrichment_lookups.with_label_values(&[enricher, "miss"]).inc_by(*misses);
        }
        m.internal_records_corrupt.inc_by(batch.corrupt_count);
        m.state_forgotten.with_label_values(&["expired"]).inc_by(batch.forgotten.0);
        m.state_forgotten.with_label_values(&["evicted"]).inc_by(batch.forgotten.1);
        if !out.state_growth.is_zero() {
            m.state_growth.observe(out.state_growth.as_secs_f64());
        }
        m.state_entries.set(self.core.state_entries() as i64);
        m.state_bytes.set(self.core.state_bytes() as i64);
        if let Some(earliest) = out.earliest {
            let lag = (now_ms() - earliest).max(0) as f64 / 1000.0;
            m.end_to_end_latency.observe(lag);
        }
    }

    /// Forgets the state the batch touched: it is rebuilt from the changelog.
    fn rolled_back(&mut self, offsets: &InputOffsets) -> Result<()> {
        for (_, p) in offsets.partitions() {
            self.core.drop_partition(*p);
        }
        Ok(())
    }

    /// Forgets every partition's state: the new consumer's partitions are restored afresh.
    fn forget_partitions(&mut self) {
        self.core.drop_all_partitions();
    }
}
