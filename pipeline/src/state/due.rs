//! With `[decay]`: when each indicator of a partition that some CERT holds live is next due to
//! expire, and what it is.
//!
//! An expiry is a record, and a record needs the indicator's value and enrichment; the state
//! holds neither (the id is the key). So an indicator some CERT was sent live is kept here with
//! its type and value, under the record time its first view is due to expire. After each batch
//! the columnar stage takes those due by the partition's clock, enriches them in one batch and
//! lets the router decide: no timer per indicator, and nothing for the types that do not decay.
//!
//! The times are kept in a min-heap whose stale items (an indicator rescheduled since) are
//! skipped as they come out, and dropped whenever they outnumber the live ones.

use crate::state::Named;
use foldhash::HashMap;
use iocflow_model::time::Millis;
use iocflow_model::{IndicatorId, IndicatorType};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug)]
struct Due {
    /// `None`: read back from the changelog, not scheduled yet.
    at: Option<Millis>,
    named: Named,
}

#[derive(Debug, Default)]
pub struct DueQueue {
    heap: BinaryHeap<Reverse<(Millis, IndicatorId)>>,
    held: HashMap<IndicatorId, Due>,
    bytes: usize,
}

impl DueQueue {
    /// Bytes held per indicator beyond its value: its map slot and a heap item or two.
    const PER_INDICATOR: usize = 96;

    /// When `id` is due, if it is held and scheduled.
    pub fn due(&self, id: &IndicatorId) -> Option<Millis> {
        self.held.get(id).and_then(|d| d.at)
    }

    /// Whether `id` is held (scheduled or waiting to be).
    pub fn holds(&self, id: &IndicatorId) -> bool {
        self.held.contains_key(id)
    }

    /// Schedules `id` (`named`) at `at`; `None` forgets it (no CERT holds a view that decays).
    pub fn schedule(&mut self, id: IndicatorId, named: impl FnOnce() -> Named, at: Option<Millis>) {
        let Some(at) = at else {
            self.remove(&id);
            return;
        };
        match self.held.get_mut(&id) {
            Some(due) if due.at == Some(at) => return,
            Some(due) => due.at = Some(at),
            None => {
                let named = named();
                self.bytes += named.value.len() + Self::PER_INDICATOR;
                self.held.insert(id, Due { at: Some(at), named });
            }
        }
        self.heap.push(Reverse((at, id)));
        if self.heap.len() > 2 * self.held.len() + 1024 {
            self.heap = self.held.iter().filter_map(|(id, d)| Some(Reverse((d.at?, *id)))).collect();
        }
    }

    /// Holds `id` as the changelog has it, to be scheduled once the partition is installed.
    pub fn restored(&mut self, id: IndicatorId, named: Named) {
        self.remove(&id);
        self.bytes += named.value.len() + Self::PER_INDICATOR;
        self.held.insert(id, Due { at: None, named });
    }

    /// The indicators held but not scheduled yet (read back from the changelog).
    pub fn unscheduled(&self) -> Vec<(IndicatorId, IndicatorType)> {
        self.held.iter().filter(|(_, d)| d.at.is_none()).map(|(id, d)| (*id, d.named.kind)).collect()
    }

    pub fn remove(&mut self, id: &IndicatorId) {
        if let Some(due) = self.held.remove(id) {
            self.bytes -= due.named.value.len() + Self::PER_INDICATOR;
        }
    }

    /// Takes out every indicator due by `clock`, earliest first.
    pub fn take_due(&mut self, clock: Millis) -> Vec<(IndicatorId, Named)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > clock {
                break;
            }
            self.heap.pop();
            if self.due(&id) == Some(at) {
                let due = self.held.remove(&id).expect("held");
                self.bytes -= due.named.value.len() + Self::PER_INDICATOR;
                out.push((id, due.named));
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(v: &str) -> Named {
        Named { kind: IndicatorType::Domain, value: v.into() }
    }

    #[test]
    fn indicators_come_out_once_when_due_at_their_latest_time() {
        let mut q = DueQueue::default();
        q.schedule(IndicatorId(1), || named("a.example"), Some(10));
        q.schedule(IndicatorId(2), || named("b.example"), Some(5));
        // Rescheduled later: the earlier item is stale.
        q.schedule(IndicatorId(2), || unreachable!("held"), Some(20));
        q.schedule(IndicatorId(3), || named("c.example"), Some(7));
        q.schedule(IndicatorId(3), || unreachable!(), None);
        assert_eq!((q.len(), q.due(&IndicatorId(2))), (2, Some(20)));
        assert!(q.take_due(9).is_empty());
        let due = q.take_due(10);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0, &*due[0].1.value), (IndicatorId(1), "a.example"));
        assert!(q.take_due(19).is_empty());
        assert_eq!(q.take_due(100).len(), 1);
        assert_eq!((q.len(), q.bytes()), (0, 0));
    }

    #[test]
    fn stale_items_do_not_pile_up() {
        let mut q = DueQueue::default();
        for t in 0..100_000 {
            q.schedule(IndicatorId(t % 10), || named("x.example"), Some(1_000_000 + t as Millis));
        }
        assert!(q.heap.len() <= 2 * 10 + 1024 + 1, "{}", q.heap.len());
        q.restored(IndicatorId(77), named("y.example"));
        assert_eq!(q.unscheduled(), [(IndicatorId(77), IndicatorType::Domain)]);
        assert_eq!(q.take_due(Millis::MAX).len(), 10);
    }
}
