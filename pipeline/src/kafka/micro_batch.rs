//! The one micro-batch loop of both stages, and what it shares: pulling messages, storing input
//! offsets once everything derived from them has been delivered, rewinding.
//!
//! A micro-batch closes when the stage calls it full, on linger, or on shutdown. It is then
//! delivered ([`Sink`]) and committed, or rolled back; a batch whose collection saw the consumer's
//! partitions move is thrown away and read again. Offsets are stored per input partition as "last
//! processed + 1" only after the batch's deliveries are acknowledged; librdkafka commits stored
//! offsets in the background and on rebalance, and the stage commits them synchronously on
//! shutdown. A crash at any point therefore replays input instead of losing it.
//!
//! No transaction is open while the consumer polls: a batch is collected, then delivered and
//! committed, then the next poll runs (rebalance callbacks run inside polls).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kafka::outbox::{Delivered, Outbox, Sink};
use crate::kafka::rebalance::StageContext;
use crate::kafka::{client_config, connection};
use crate::shutdown::Shutdown;
use crate::telemetry::client_stats::ClientStats;
use crate::telemetry::metrics::{Health, Metrics};
use iocflow_model::time::Millis;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What a stage does with micro-batches; [`run`] is the loop around it.
pub(crate) trait Stage {
    /// What one micro-batch gathers.
    type Batch;
    /// The stage's name (consumer group, transactional id, metrics).
    const NAME: &'static str;

    /// Between batches, before the next is collected (follow rebalances, put reloaded tables in
    /// use …).
    fn prepare(&mut self, _consumer: &StreamConsumer<StageContext>) -> Result<()> {
        Ok(())
    }
    /// A new, empty batch.
    fn begin(&mut self) -> Self::Batch;
    /// Whether the batch is full: it closes before its linger runs out.
    fn full(&self, batch: &Self::Batch) -> bool;
    /// Adds one message to the batch.
    fn collect(&mut self, batch: &mut Self::Batch, message: &BorrowedMessage<'_>) -> Result<()>;
    /// What the batch sends: outputs, then changelog records.
    fn outbox(&mut self, batch: &mut Self::Batch) -> Result<Outbox>;
    /// The batch is delivered and its offsets committed (publish its metrics).
    fn committed(&mut self, batch: Self::Batch);
    /// Nothing of the batch counts (a transaction aborted, or its partitions moved while it was
    /// read): undo its effects before the consumer goes back to the committed offsets.
    fn rolled_back(&mut self, _offsets: &InputOffsets) -> Result<()> {
        Ok(())
    }
    /// The consumer was replaced (see [`run`]): forget whatever was kept per input partition,
    /// since the new consumer may be given partitions that another replica advanced meanwhile.
    fn forget_partitions(&mut self) {}
}

/// A stage's Kafka side: its consumer in the stage's group, subscribed to its input, and the
/// producer side that delivers its batches.
pub(crate) struct StageClients {
    pub consumer: StreamConsumer<StageContext>,
    sink: Sink,
    /// Makes a consumer like the first: after a fatal consumer error, a new one rejoins.
    resubscribe: Box<dyn Fn() -> Result<StreamConsumer<StageContext>> + Send>,
    /// How long a consumer may stay out of a steady group membership before it is replaced: five
    /// session timeouts, at least 30 s (a rebalance waits for every member to rejoin, and a
    /// member restoring a partition's state does so only when it is done).
    rejoin_after: std::time::Duration,
}

impl StageClients {
    /// The consumer of `stage` subscribed to `topics`, and its sink in the configured delivery
    /// mode (exactly-once initialises its transactions, fencing a dead predecessor).
    pub fn new(
        config: &Config,
        stage: &'static str,
        topics: &[&str],
        metrics: &Metrics,
        health: Arc<Health>,
    ) -> Result<StageClients> {
        let (settings, topics, stats_metrics) = (
            client_config::consumer(config, stage),
            topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            metrics.clone(),
        );
        let subscribe = move || -> Result<StreamConsumer<StageContext>> {
            let stats = ClientStats::consumer(stage, stats_metrics.clone(), health.clone());
            let consumer: StreamConsumer<StageContext> =
                settings.create_with_context(StageContext::with_stats(stats))?;
            consumer.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())?;
            Ok(consumer)
        };
        Ok(StageClients {
            consumer: subscribe()?,
            sink: Sink::new(config, stage, metrics)?,
            resubscribe: Box::new(subscribe),
            rejoin_after: (config.kafka.session_timeout * 5).max(Duration::from_secs(30)),
        })
    }
}

/// Runs micro-batches of `stage` until shutdown; the last one is delivered and committed.
pub(crate) async fn run<S: Stage>(
    mut stage: S,
    clients: StageClients,
    linger: Duration,
    metrics: Metrics,
    mut shutdown: Shutdown,
) -> Result<()> {
    let StageClients { mut consumer, mut sink, resubscribe, rejoin_after } = clients;
    let mut committed = InputOffsets::default();
    loop {
        stage.prepare(&consumer)?;
        let started = Instant::now();
        let deadline = started + linger;
        let generation = consumer.context().generation();
        let mut batch = stage.begin();
        let mut offsets = InputOffsets::default();
        let mut fatal = None;
        while !stage.full(&batch) {
            let message = match next_message(&consumer, deadline, &mut shutdown).await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(Error::Kafka(e @ KafkaError::MessageConsumptionFatal(_))) => {
                    fatal = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            };
            offsets.record(&message);
            stage.collect(&mut batch, &message)?;
        }
        let unsteady = consumer.context().unsteady_for();
        let replace = match fatal {
            Some(e) => Some(e.to_string()),
            None if unsteady > rejoin_after => {
                Some(format!("out of a steady group membership for {} s", unsteady.as_secs()))
            }
            None => None,
        };
        if let Some(why) = replace {
            // The consumer is unusable (librdkafka calls the error fatal, or it has not got back
            // into its group): nothing of this batch was delivered or committed. It is undone,
            // and a new consumer joins the group and reads from the committed offsets.
            tracing::error!("{} consumer: {why}; a new consumer rejoins the group", S::NAME);
            stage.rolled_back(&offsets)?;
            stage.forget_partitions();
            drop(batch);
            consumer = resubscribe()?;
            continue;
        }
        if !offsets.is_empty() {
            let delivered = if consumer.context().generation() != generation {
                // Partitions moved while the batch was read: it is read again from the committed
                // offsets, here or by the partitions' new owner.
                Delivered::RolledBack
            } else {
                let outbox = stage.outbox(&mut batch)?;
                sink.deliver(outbox, &offsets, &consumer, &metrics).await?
            };
            match delivered {
                Delivered::Committed => {
                    committed.absorb(&offsets);
                    stage.committed(batch);
                    metrics.batch_duration.with_label_values(&[S::NAME]).observe(started.elapsed().as_secs_f64());
                }
                Delivered::RolledBack => {
                    stage.rolled_back(&offsets)?;
                    rewind(&consumer, &mut shutdown).await?;
                }
            }
        }
        if shutdown.requested() {
            return sink.finish(&committed, &consumer);
        }
    }
}

/// The wall clock in milliseconds: for a message without a timestamp, and for latency metrics
/// (decisions use record time).
pub(crate) fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

/// Waits for the next message until `deadline` or shutdown; `None` closes the micro-batch.
/// Consumer errors (a broker restarting, a transport failure) are logged and waited out:
/// librdkafka reconnects by itself, and nothing was consumed that could be lost. A fatal one is
/// returned.
async fn next_message<'c, C: ConsumerContext + 'static>(
    consumer: &'c StreamConsumer<C>,
    deadline: Instant,
    shutdown: &mut Shutdown,
) -> Result<Option<BorrowedMessage<'c>>> {
    loop {
        if shutdown.requested() {
            return Ok(None);
        }
        tokio::select! {
            biased;
            _ = shutdown.wait() => return Ok(None),
            m = consumer.recv() => match m {
                Ok(m) => return Ok(Some(m)),
                // A fatal error leaves the consumer unusable: polling on would hang the stage
                // while it still looks healthy. [`run`] replaces the consumer.
                Err(e @ KafkaError::MessageConsumptionFatal(_)) => return Err(e.into()),
                Err(e) => tracing::warn!("consumer: {e}"),
            },
            _ = tokio::time::sleep_until(deadline) => return Ok(None),
        }
    }
}

/// The next offset to consume per input partition, for the messages of one or more batches.
#[derive(Debug, Default, Clone)]
pub struct InputOffsets {
    next: BTreeMap<(String, i32), i64>,
}

impl InputOffsets {
    pub fn record(&mut self, msg: &BorrowedMessage<'_>) {
        let next = msg.offset() + 1;
        let slot = self.next.entry((msg.topic().to_string(), msg.partition())).or_insert(next);
        *slot = (*slot).max(next);
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// Folds a later batch's offsets into these.
    pub fn absorb(&mut self, later: &InputOffsets) {
        for (k, v) in &later.next {
            let slot = self.next.entry(k.clone()).or_insert(*v);
            *slot = (*slot).max(*v);
        }
    }

    /// The offsets as a partition list (for commits and transactions).
    pub fn list(&self) -> rdkafka::error::KafkaResult<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in &self.next {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        Ok(tpl)
    }

    /// Stores the offsets for the next automatic commit. Partitions revoked meanwhile are
    /// refused by librdkafka; their new owner replays them, so that is logged, not fatal.
    pub fn store<C: ConsumerContext + 'static>(&self, consumer: &StreamConsumer<C>) -> Result<()> {
        if let Err(e) = consumer.store_offsets(&self.list()?) {
            tracing::warn!("storing offsets failed (partitions revoked?): {e}");
        }
        Ok(())
    }

    /// The (topic, partition) pairs these offsets cover.
    pub fn partitions(&self) -> impl Iterator<Item = &(String, i32)> {
        self.next.keys()
    }

    /// Commits the offsets synchronously (on shutdown).
    pub fn commit<C: ConsumerContext + 'static>(&self, consumer: &StreamConsumer<C>) -> Result<()> {
        if self.next.is_empty() {
            return Ok(());
        }
        if let Err(e) = consumer.commit(&self.list()?, CommitMode::Sync) {
            tracing::warn!("final commit failed (partitions revoked?): {e}");
        }
        Ok(())
    }
}

/// Moves every assigned partition back to its committed offset (the beginning where none is
/// committed), after a batch was rolled back or thrown away. The broker may be away just then
/// (a transaction that timed out because it went away is the usual reason to get here): its
/// transient errors are waited out, until shutdown (nothing of the batch was committed, so a
/// restart reads it again too).
async fn rewind<C: ConsumerContext + 'static>(consumer: &StreamConsumer<C>, shutdown: &mut Shutdown) -> Result<()> {
    loop {
        // Blocking (up to a minute while the broker is away): off the runtime's workers, so the
        // other stage and the metrics endpoint keep going meanwhile.
        match tokio::task::block_in_place(|| rewind_once(consumer)) {
            Err(Error::Kafka(e)) if connection::is_transient(&e) => {
                tracing::warn!("rewinding to the committed offsets: {e}; retrying");
                tokio::select! {
                    _ = shutdown.wait() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            done => return done,
        }
    }
}

fn rewind_once<C: ConsumerContext + 'static>(consumer: &StreamConsumer<C>) -> Result<()> {
    let assigned = consumer.assignment()?;
    if assigned.count() == 0 {
        return Ok(());
    }
    let committed = consumer.committed_offsets(assigned, Duration::from_secs(30))?;
    let mut target = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        target.add_partition_offset(e.topic(), e.partition(), offset)?;
    }
    consumer.seek_partitions(target, Duration::from_secs(30))?;
    Ok(())
}
