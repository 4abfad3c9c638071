//! What both stages share: pulling a micro-batch of Kafka messages and storing input offsets
//! once everything derived from them has been delivered.
//!
//! A micro-batch closes on rows, bytes or linger (whichever first), or on shutdown. Offsets are
//! stored per input partition as "last processed + 1" only after the batch's deliveries are
//! acknowledged; librdkafka commits stored offsets in the background and on rebalance, and the
//! stage commits them synchronously on shutdown. A crash at any point therefore replays input
//! instead of losing it (at-least-once).

use crate::error::Result;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use tokio::sync::watch;
use tokio::time::Instant;

/// Waits for the next message until `deadline` or shutdown; `None` closes the micro-batch.
/// Consumer errors (a broker restarting, a transport failure) are logged and waited out:
/// librdkafka reconnects by itself, and nothing was consumed that could be lost.
pub async fn next_message<'c, C: ConsumerContext + 'static>(
    consumer: &'c StreamConsumer<C>,
    deadline: Instant,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<BorrowedMessage<'c>>> {
    loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => return Ok(None),
            m = consumer.recv() => match m {
                Ok(m) => return Ok(Some(m)),
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
/// committed), after a batch was rolled back or thrown away.
pub fn rewind<C: ConsumerContext + 'static>(consumer: &StreamConsumer<C>) -> Result<()> {
    let assigned = consumer.assignment()?;
    if assigned.count() == 0 {
        return Ok(());
    }
    let committed = consumer.committed_offsets(assigned, std::time::Duration::from_secs(30))?;
    let mut target = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        target.add_partition_offset(e.topic(), e.partition(), offset)?;
    }
    consumer.seek_partitions(target, std::time::Duration::from_secs(30))?;
    Ok(())
}
