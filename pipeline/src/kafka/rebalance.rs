//! What a stage learns from its consumer's rebalances.
//!
//! librdkafka calls the context from inside `poll` when partitions are revoked or assigned. The
//! stage cannot act there (it is in the middle of its own loop), so the context only records
//! the events and bumps a generation number; the stage reads them between messages. A batch
//! whose collection saw the generation change is thrown away and re-read from the committed
//! offsets: with the eager protocol every partition was revoked, and what was read before may
//! be read again by this or another replica.

use crate::telemetry::client_stats::ClientStats;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Partitions that changed hands, as (topic, partition).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Moves {
    pub generation: u64,
    pub revoked: BTreeSet<(String, i32)>,
    pub assigned: BTreeSet<(String, i32)>,
}

/// A consumer context that records rebalances (and exports the consumer's statistics).
#[derive(Default)]
pub struct StageContext {
    moves: Mutex<Moves>,
    stats: Option<ClientStats>,
    /// The consumer's group `join_state` as its statistics last said, and since when its
    /// membership has not been steady (joining, syncing, waiting for an assignment); `None`
    /// while steady.
    membership: Mutex<(String, Option<Instant>)>,
}

impl StageContext {
    pub fn with_stats(stats: ClientStats) -> StageContext {
        StageContext { moves: Mutex::default(), stats: Some(stats), membership: Mutex::default() }
    }

    /// How long the consumer has been out of a steady group membership. A consumer can stay out
    /// for good without an error: after the broker stalled past the session timeout, librdkafka
    /// has left one rejoining with no assignment for minutes (`tests/broker_faults.rs`); the
    /// stage replaces a consumer that stays out too long (`micro_batch.rs`).
    pub fn unsteady_for(&self) -> Duration {
        self.membership.lock().expect("not poisoned").1.map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// The current rebalance generation (bumped on every revoke and assign).
    pub fn generation(&self) -> u64 {
        self.moves.lock().expect("not poisoned").generation
    }

    /// Takes the partitions revoked and assigned since the last call.
    pub fn take(&self) -> Moves {
        let mut m = self.moves.lock().expect("not poisoned");
        Moves {
            generation: m.generation,
            revoked: std::mem::take(&mut m.revoked),
            assigned: std::mem::take(&mut m.assigned),
        }
    }
}

impl ClientContext for StageContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(group) = &statistics.cgrp {
            let mut membership = self.membership.lock().expect("not poisoned");
            let (join_state, since) = &mut *membership;
            if *join_state != group.join_state {
                tracing::info!(client = %statistics.name, "group {}: join state {} (was {join_state:?})", group.state, group.join_state);
                *join_state = group.join_state.clone();
            }
            *since = unsteady_since(*since, &group.join_state, Instant::now());
        }
        if let Some(s) = &self.stats {
            s.record(&statistics);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match &self.stats {
            Some(s) => s.error(&error, reason),
            None => tracing::error!(target: "librdkafka", "{error}: {reason}"),
        }
    }
}

/// When a consumer's membership stopped being steady, given when it did as far as known and its
/// group's `join_state` (librdkafka's statistics) at `now`.
fn unsteady_since(since: Option<Instant>, join_state: &str, now: Instant) -> Option<Instant> {
    match join_state {
        "steady" => None,
        _ => Some(since.unwrap_or(now)),
    }
}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut m = self.moves.lock().expect("not poisoned");
            m.generation += 1;
            for e in tpl.elements() {
                m.assigned.remove(&(e.topic().to_string(), e.partition()));
                m.revoked.insert((e.topic().to_string(), e.partition()));
            }
            tracing::info!(partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut m = self.moves.lock().expect("not poisoned");
            m.generation += 1;
            for e in tpl.elements() {
                m.assigned.insert((e.topic().to_string(), e.partition()));
            }
            tracing::info!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_is_unsteady_from_the_first_statistics_that_say_so_until_steady_again() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        assert_eq!(unsteady_since(None, "steady", t0), None);
        assert_eq!(unsteady_since(None, "wait-join", t0), Some(t0));
        assert_eq!(unsteady_since(Some(t0), "wait-sync", later), Some(t0), "still since the first");
        assert_eq!(unsteady_since(Some(t0), "steady", later), None);
    }
}
