//! Dedupe state of one internal partition: per indicator, the contributing reports and, per
//! CERT, what was last emitted to it.
//!
//! Every report of an indicator lands in the partition that owns its id, so this state sees all
//! of them and needs no coordination. It is kept in memory for now (a durable changelog comes
//! with the durable-state issue): after a crash or a rebalance a partition starts empty, which
//! at worst re-sends a view, never loses one. Time is the reports' `reported_at`, never the wall
//! clock, so a replay makes the same decisions.

use iocflow_model::time::Millis;
use iocflow_model::{IndicatorId, Tlp};
use std::collections::HashMap;

/// One feed's contribution to an indicator: its latest report, and how often it was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feed: String,
    pub provider: String,
    pub tlp: Tlp,
    pub confidence: Option<u8>,
    pub threat: Option<String>,
    pub tags: Vec<String>,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub target_countries: Vec<String>,
    pub revoked: bool,
    /// MISP distribution 4: only the members of a sharing group may see it.
    pub sharing_group: Option<String>,
    pub sightings: u64,
}

/// What a CERT was last sent about an indicator: the summary the emission rule compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    /// Feeds in the view, sorted.
    pub sources: Vec<String>,
    pub confidence: Option<u8>,
    pub revoked: bool,
    pub at: Millis,
}

/// Everything known about one indicator.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub contributions: Vec<Contribution>,
    /// Indexed by the CERT's position in the configuration.
    pub emitted: HashMap<usize, Emission>,
    pub last_seen: Millis,
}

impl Entry {
    /// Merges a new report: it replaces the same feed's earlier contribution, keeping the
    /// earliest first sighting and counting sightings. Returns the merged contribution's index.
    pub fn merge(&mut self, new: Contribution, at: Millis) -> usize {
        self.last_seen = self.last_seen.max(at);
        match self.contributions.iter().position(|c| c.feed == new.feed) {
            Some(i) => {
                let old = &mut self.contributions[i];
                let sightings = old.sightings + new.sightings;
                let first_seen = old.first_seen.min(new.first_seen);
                let last_seen = old.last_seen.max(new.last_seen);
                *old = Contribution { sightings, first_seen, last_seen, ..new };
                i
            }
            None => {
                self.contributions.push(new);
                self.contributions.len() - 1
            }
        }
    }
}

/// The state of one partition, bounded by entry count (least recently seen forgotten first).
#[derive(Debug, Default)]
pub struct PartitionState {
    entries: HashMap<IndicatorId, Entry>,
}

impl PartitionState {
    pub fn entry(&mut self, id: IndicatorId) -> &mut Entry {
        self.entries.entry(id).or_default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets the least recently seen entries until at most `max` remain. Called once per batch;
    /// trims to 90 % of `max` so the scan is amortised over many batches.
    pub fn evict(&mut self, max: usize) -> usize {
        if self.entries.len() <= max {
            return 0;
        }
        let keep = max - max / 10;
        let mut ages: Vec<(Millis, IndicatorId)> = self.entries.iter().map(|(id, e)| (e.last_seen, *id)).collect();
        let drop = ages.len() - keep;
        ages.select_nth_unstable(drop - 1);
        for (_, id) in &ages[..drop] {
            self.entries.remove(id);
        }
        drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contribution(feed: &str, seen: Millis) -> Contribution {
        Contribution {
            feed: feed.into(),
            provider: "P".into(),
            tlp: Tlp::Green,
            confidence: Some(50),
            threat: None,
            tags: vec![],
            first_seen: seen,
            last_seen: seen,
            target_countries: vec![],
            revoked: false,
            sharing_group: None,
            sightings: 1,
        }
    }

    #[test]
    fn merge_replaces_the_same_feed_and_counts_sightings() {
        let mut e = Entry::default();
        assert_eq!(e.merge(contribution("a", 10), 10), 0);
        assert_eq!(e.merge(contribution("b", 20), 20), 1);
        let mut again = contribution("a", 30);
        again.confidence = Some(90);
        assert_eq!(e.merge(again, 30), 0);
        let a = &e.contributions[0];
        assert_eq!((a.sightings, a.first_seen, a.last_seen, a.confidence), (2, 10, 30, Some(90)));
        assert_eq!(e.last_seen, 30);
    }

    #[test]
    fn evicts_least_recently_seen() {
        let mut s = PartitionState::default();
        for i in 0..100u128 {
            s.entry(IndicatorId(i)).last_seen = i as Millis;
        }
        assert_eq!(s.evict(50), 55);
        assert_eq!(s.len(), 45);
        assert!(s.entries.contains_key(&IndicatorId(99)));
        assert!(!s.entries.contains_key(&IndicatorId(54)));
        assert_eq!(s.evict(50), 0);
    }
}
