//! Dedupe state of one internal partition: per indicator, the contributing reports and, per
//! CERT, what was last emitted to it.
//!
//! Every report of an indicator lands in the partition that owns its id, so this state sees all
//! of them and needs no coordination. Every change is written to the changelog `<app>.state`
//! (see `changelog.rs`) and the state is rebuilt from it when a partition is assigned, so a
//! crash or a rebalance loses nothing that was committed. Time is the reports' `reported_at`,
//! never the wall clock, so a replay makes the same decisions.
//!
//! The state is bounded by entries and by bytes: expired entries (not seen for longer than the
//! TTL, after which a CERT would be sent the view again anyway) go first, then the least
//! recently seen. Forgetting an entry is written to the changelog as a tombstone.

pub mod changelog;
pub mod due;
mod shards;

use due::DueQueue;
use foldhash::HashSet;
use iocflow_model::sighting::{self, SightingKind};
use iocflow_model::time::Millis;
use iocflow_model::{Country, IndicatorId, IndicatorType, Name, NameSet, Tlp};
use serde::{Deserialize, Serialize};
use shards::Shards;
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What a feed said of an indicator in its latest report, apart from when and how often: its
/// labels, confidence, threat, tags and targets.
///
/// A feed says the same of many indicators (its reports in a batch carry the same labels), so
/// contributions share their claim: the state holds one per distinct claim ([`Claims`]), not one
/// per indicator, and a contribution is its claim's pointer and its own times.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claim {
    pub feed: Name,
    pub provider: Name,
    pub tlp: Tlp,
    pub confidence: Option<u8>,
    pub threat: Option<Name>,
    pub tags: NameSet,
    pub target_countries: Vec<Country>,
    pub revoked: bool,
    /// MISP distribution 4: only the members of a sharing group may see it.
    pub sharing_group: Option<Name>,
    /// A CERT's sightings of one kind rather than a feed's reports: read from the contribution's
    /// name (`feed`), which is all the changelog writes of it.
    pub sighting: Option<(SightingKind, Country)>,
}

/// One feed's contribution to an indicator: its latest report, and how often it was seen. It
/// reads as its [`Claim`] (`c.feed`, `c.tlp`) and writes as one flat record, as it always has.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub claim: Arc<Claim>,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub sightings: u64,
}

#[cfg(test)]
impl Claim {
    /// What `feed` of `provider` says under `tlp`, and nothing else.
    pub fn plain(feed: &str, provider: &str, tlp: Tlp) -> Claim {
        Claim {
            feed: feed.into(),
            provider: provider.into(),
            tlp,
            confidence: None,
            threat: None,
            tags: NameSet::default(),
            target_countries: Vec::new(),
            revoked: false,
            sharing_group: None,
            sighting: sighting::of_contribution(feed),
        }
    }
}

impl Contribution {
    /// One report's contribution: seen once, from `first_seen` to `last_seen`.
    pub fn new(claim: Arc<Claim>, first_seen: Millis, last_seen: Millis) -> Contribution {
        Contribution { claim, first_seen, last_seen, sightings: 1 }
    }
}

impl std::ops::Deref for Contribution {
    type Target = Claim;

    fn deref(&self) -> &Claim {
        &self.claim
    }
}

/// The changelog's layout of a contribution (binary and JSON): the claim's fields and the times,
/// in this order. Postcard does not name fields, so the order is the format (`changelog.rs`).
impl Serialize for Contribution {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = &*self.claim;
        let mut out = s.serialize_struct("Contribution", 12)?;
        out.serialize_field("feed", &c.feed)?;
        out.serialize_field("provider", &c.provider)?;
        out.serialize_field("tlp", &c.tlp)?;
        out.serialize_field("confidence", &c.confidence)?;
        out.serialize_field("threat", &c.threat)?;
        out.serialize_field("tags", &c.tags)?;
        out.serialize_field("first_seen", &self.first_seen)?;
        out.serialize_field("last_seen", &self.last_seen)?;
        out.serialize_field("target_countries", &c.target_countries)?;
        out.serialize_field("revoked", &c.revoked)?;
        out.serialize_field("sharing_group", &c.sharing_group)?;
        out.serialize_field("sightings", &self.sightings)?;
        out.end()
    }
}

impl<'de> Deserialize<'de> for Contribution {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        /// A contribution as [`Contribution::serialize`] writes it.
        #[derive(Deserialize)]
        struct Written {
            feed: Name,
            provider: Name,
            tlp: Tlp,
            confidence: Option<u8>,
            threat: Option<Name>,
            tags: NameSet,
            first_seen: Millis,
            last_seen: Millis,
            target_countries: Vec<Country>,
            revoked: bool,
            sharing_group: Option<Name>,
            sightings: u64,
        }
        let w = Written::deserialize(d)?;
        let claim = Claim {
            sighting: sighting::of_contribution(&w.feed),
            feed: w.feed,
            provider: w.provider,
            tlp: w.tlp,
            confidence: w.confidence,
            threat: w.threat,
            tags: w.tags,
            target_countries: w.target_countries,
            revoked: w.revoked,
            sharing_group: w.sharing_group,
        };
        Ok(Contribution {
            claim: Arc::new(claim),
            first_seen: w.first_seen,
            last_seen: w.last_seen,
            sightings: w.sightings,
        })
    }
}

/// Hands out one shared [`Claim`] per distinct claim, for the contributions of one partition's
/// state (new and restored). It keeps at most [`Claims::KEPT`]; past that it starts over, and
/// the claims already held stay shared by the entries that hold them.
///
/// A batch's rows come in runs of one feed's reports, so the last claim is compared first: a run
/// costs one comparison per row, not a hash and a probe.
#[derive(Debug, Default)]
pub struct Claims {
    seen: HashSet<Arc<Claim>>,
    last: Option<Arc<Claim>>,
}

impl Claims {
    pub const KEPT: usize = 4096;

    pub fn share(&mut self, claim: Claim) -> Arc<Claim> {
        if let Some(last) = self.last.as_ref().filter(|l| ***l == claim) {
            return last.clone();
        }
        let shared = match self.seen.get(&claim) {
            Some(held) => held.clone(),
            None => {
                if self.seen.len() >= Self::KEPT {
                    self.seen.clear();
                }
                let new = Arc::new(claim);
                self.seen.insert(new.clone());
                new
            }
        };
        self.last = Some(shared.clone());
        shared
    }
}

/// A set of an entry's contributions by their places in [`Entry::contributions`]: the feeds of
/// a CERT's view, as the emission rule compares them. A contribution keeps its place (a feed's
/// later report replaces it in place), so a place names one feed for the entry's life; a set is
/// 8 bytes, where a list of the feeds' names was 24 and an allocation per CERT sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources(u64);

impl Sources {
    /// Contributions an entry holds at most (one per feed: `Entry::merge`).
    pub const MAX: usize = 64;

    /// This set and the contribution at `place`.
    pub fn with(self, place: usize) -> Sources {
        Sources(self.0 | 1 << place)
    }

    pub fn contains(self, place: usize) -> bool {
        place < Self::MAX && self.0 & 1 << place != 0
    }

    /// The first place in `self` that `before` lacks: a feed new to a CERT.
    pub fn first_new(self, before: Sources) -> Option<usize> {
        let new = self.0 & !before.0;
        (new != 0).then(|| new.trailing_zeros() as usize)
    }

    /// The places in the set, in order.
    pub fn places(self) -> impl Iterator<Item = usize> {
        let mut left = self.0;
        std::iter::from_fn(move || {
            let place = (left != 0).then(|| left.trailing_zeros() as usize)?;
            left &= left - 1;
            Some(place)
        })
    }

    /// The feeds at the places in the set, sorted by name (as the changelog lists them).
    pub fn feeds(self, contributions: &[Contribution]) -> SmallVec<[&Name; 4]> {
        let mut feeds: SmallVec<[&Name; 4]> =
            self.places().filter_map(|i| contributions.get(i)).map(|c| &c.feed).collect();
        feeds.sort_unstable();
        feeds
    }

    fn without(self, place: usize) -> Sources {
        Sources(self.0 & !(1 << place))
    }
}

/// What a CERT was last sent about an indicator: the summary the emission rule compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    /// The CERT's country (here rather than beside it in [`Emitted`]: it fits in this struct's
    /// padding, and an emission takes 32 bytes instead of 40).
    pub country: Country,
    /// The contributions in the view (their feeds).
    pub sources: Sources,
    pub confidence: Option<u8>,
    pub revoked: bool,
    /// When it was sent (report time; increases with every emission to a CERT).
    pub at: Millis,
    /// When the CERT first got the indicator (STIX `created`).
    pub first_at: Millis,
    /// It was the view's expiry (`[decay]`; `revoked` too). Not written to the changelog (its
    /// layout did not change): read back, a revoked emission is taken for an expiry when some
    /// report in its view is not revoked. That is exact unless the CERTs' false positives revoked
    /// it (`[feedback]`) and one of them has since been sent again under AMBER or stricter; it
    /// counts revivals only (the metric), and decides nothing.
    pub expired: bool,
}

/// Everything known about one indicator.
///
/// In the changelog (binary and JSON) an emission names its sources as the feeds' names, sorted,
/// so the layout is the one written before sources were places; reading it back finds each
/// name's place among the contributions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// In arrival order of their feeds.
    pub contributions: Contributions,
    pub emitted: Emitted,
    pub last_seen: Millis,
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// What CERTs were sent, as a map by country whose emissions name their feeds.
        struct Sent<'a>(&'a Entry);
        impl Serialize for Sent<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                let of = &self.0.contributions;
                s.collect_map(self.0.emitted.iter().map(|(c, e)| (c.as_str(), SentOne(e, of))))
            }
        }
        struct SentOne<'a>(&'a Emission, &'a [Contribution]);
        impl Serialize for SentOne<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                let SentOne(e, of) = self;
                let mut out = s.serialize_struct("Emission", 5)?;
                out.serialize_field("sources", &e.sources.feeds(of)[..])?;
                out.serialize_field("confidence", &e.confidence)?;
                out.serialize_field("revoked", &e.revoked)?;
                out.serialize_field("at", &e.at)?;
                out.serialize_field("first_at", &e.first_at)?;
                out.end()
            }
        }
        let mut out = s.serialize_struct("Entry", 3)?;
        out.serialize_field("contributions", &self.contributions)?;
        out.serialize_field("emitted", &Sent(self))?;
        out.serialize_field("last_seen", &self.last_seen)?;
        out.end()
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        /// An entry as [`Entry::serialize`] writes it.
        #[derive(Deserialize)]
        struct Written {
            contributions: Contributions,
            /// A map's keys come out sorted and unique.
            emitted: BTreeMap<Country, WrittenEmission>,
            last_seen: Millis,
        }
        #[derive(Deserialize)]
        struct WrittenEmission {
            sources: Vec<String>,
            confidence: Option<u8>,
            revoked: bool,
            at: Millis,
            #[serde(default)]
            first_at: Millis,
        }
        let w = Written::deserialize(d)?;
        let place = |feed: &String| w.contributions.iter().position(|c| c.feed.as_str() == feed);
        let emitted = w
            .emitted
            .iter()
            .map(|(country, e)| {
                // A feed no contribution names cannot be in a view: nothing to remember.
                let sources = e.sources.iter().filter_map(place).fold(Sources::default(), Sources::with);
                let (confidence, revoked, at, first_at) = (e.confidence, e.revoked, e.at, e.first_at);
                let live_report = |i: usize| w.contributions[i].sighting.is_none() && !w.contributions[i].revoked;
                let expired = revoked && sources.places().any(live_report);
                Emission { country: *country, sources, confidence, revoked, at, first_at, expired }
            })
            .collect();
        Ok(Entry { contributions: w.contributions, emitted: Emitted(emitted), last_seen: w.last_seen })
    }
}

/// An entry's contributions. Most indicators have one source: it is held in the entry itself
/// (no allocation of 32 bytes and its allocator's 16); more are a list of exactly their number
/// (a `Vec`'s spare room would be held for each of millions of entries). Reads as a slice;
/// written as a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Contributions {
    One(Contribution),
    Many(Box<[Contribution]>),
}

impl Default for Contributions {
    fn default() -> Self {
        Contributions::Many(Box::default())
    }
}

impl Contributions {
    pub fn push(&mut self, new: Contribution) {
        *self = match std::mem::take(self) {
            Contributions::Many(none) if none.is_empty() => Contributions::One(new),
            Contributions::One(first) => Contributions::Many(Box::new([first, new])),
            Contributions::Many(some) => {
                let mut all = some.into_vec();
                all.reserve_exact(1);
                all.push(new);
                Contributions::Many(all.into_boxed_slice())
            }
        }
    }

    /// The heap bytes held beyond the entry.
    fn heap_bytes(&self) -> usize {
        match self {
            Contributions::One(_) => 0,
            Contributions::Many(all) => std::mem::size_of_val::<[Contribution]>(all),
        }
    }
}

impl std::ops::Deref for Contributions {
    type Target = [Contribution];

    fn deref(&self) -> &[Contribution] {
        match self {
            Contributions::One(one) => std::slice::from_ref(one),
            Contributions::Many(all) => all,
        }
    }
}

impl std::ops::DerefMut for Contributions {
    fn deref_mut(&mut self) -> &mut [Contribution] {
        match self {
            Contributions::One(one) => std::slice::from_mut(one),
            Contributions::Many(all) => all,
        }
    }
}

impl FromIterator<Contribution> for Contributions {
    fn from_iter<I: IntoIterator<Item = Contribution>>(all: I) -> Self {
        all.into_iter().fold(Contributions::default(), |mut held, c| {
            held.push(c);
            held
        })
    }
}

impl IntoIterator for Contributions {
    type Item = Contribution;
    type IntoIter = std::vec::IntoIter<Contribution>;

    fn into_iter(self) -> Self::IntoIter {
        match self {
            Contributions::One(one) => vec![one].into_iter(),
            Contributions::Many(all) => all.into_vec().into_iter(),
        }
    }
}

impl Serialize for Contributions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self[..].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Contributions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Vec::<Contribution>::deserialize(d)? {
            mut one if one.len() == 1 => Contributions::One(one.pop().expect("one")),
            all => Contributions::Many(all.into_boxed_slice()),
        })
    }
}

/// Per CERT, what it was last sent about an indicator, keyed by the CERT's country (which, unlike
/// its position in the config, is stable).
///
/// An indicator reaches a few CERTs, so this is a short list sorted by country rather than a map:
/// a B-tree's first node is about 800 bytes, for every indicator the state holds. A country is
/// two bytes. In the changelog it is an object keyed by country, as a map would be.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Emitted(Box<[Emission]>);

impl Emitted {
    pub fn get(&self, country: Country) -> Option<&Emission> {
        self.find(country).ok().map(|i| &self.0[i])
    }

    /// Remembers `sent` as what its CERT was last sent.
    pub fn set(&mut self, sent: Emission) {
        match self.find(sent.country) {
            Ok(i) => self.0[i] = sent,
            Err(i) => {
                let mut all = std::mem::take(&mut self.0).into_vec();
                all.reserve_exact(1);
                all.insert(i, sent);
                self.0 = all.into_boxed_slice();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Country, &Emission)> {
        self.0.iter().map(|e| (e.country, e))
    }

    fn find(&self, country: Country) -> std::result::Result<usize, usize> {
        self.0.binary_search_by(|e| e.country.cmp(&country))
    }
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
            None if self.contributions.len() == Sources::MAX => {
                // Only an entry older than a deployment's renamed feeds gets here (a deployment
                // has at most 64 feeds: `config.rs`). The least recently seen feed makes room;
                // to every CERT its place is a new source again.
                let (i, _) =
                    self.contributions.iter().enumerate().min_by_key(|(_, c)| c.last_seen).expect("64 of them");
                self.contributions[i] = new;
                for sent in self.emitted.0.iter_mut() {
                    sent.sources = sent.sources.without(i);
                }
                i
            }
            None => {
                self.contributions.push(new);
                self.contributions.len() - 1
            }
        }
    }

    /// An estimate of the heap and table bytes this entry holds in memory. Claims are shared
    /// (a few thousand per partition at most), so a contribution counts its own fields only.
    pub fn approx_bytes(&self) -> usize {
        let emitted = std::mem::size_of::<Emission>() * self.emitted.len();
        Shards::ENTRY_BYTES + self.contributions.heap_bytes() + emitted
    }
}

/// Whether an entry last seen at `last_seen` has expired when its partition's clock (its latest
/// report time) is `clock`: not seen for longer than the TTL.
pub fn expired(last_seen: Millis, clock: Millis, ttl_ms: Millis) -> bool {
    last_seen < clock.saturating_sub(ttl_ms)
}

/// Limits on one partition's state.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_entries: usize,
    pub max_bytes: usize,
    /// Entries not seen for this long are expired.
    pub ttl_ms: Millis,
}

impl Bounds {
    /// One partition's share of `[dedupe]`: the bounds are per deployment, the state per
    /// partition.
    pub fn of(config: &crate::config::Config) -> Bounds {
        let partitions = config.kafka.partitions.max(1) as usize;
        Bounds {
            max_entries: (config.dedupe.max_entries / partitions).max(1),
            max_bytes: (config.dedupe.max_bytes / partitions).max(1),
            ttl_ms: config.dedupe.ttl.as_millis() as Millis,
        }
    }
}

/// What an indicator is: its type and canonical value. The state does not hold it in memory (the
/// id is the key); each changelog record carries it, so that `iocflow explain --id` and anyone
/// reading `<app>.state` can name what an entry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub kind: IndicatorType,
    pub value: Box<str>,
}

/// What changed since the last call to [`PartitionState::take_changes`]: entries to write,
/// entries forgotten (tombstones), and why those were forgotten.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub updated: Vec<(IndicatorId, Named, &'a Entry)>,
    pub removed: Vec<IndicatorId>,
    /// Of `removed`, those not seen for the TTL.
    pub expired: u64,
    /// Of `removed`, those forgotten (least recently seen first) to keep the state within
    /// `max_entries` and `max_bytes`.
    pub evicted: u64,
}

/// An entry as the state holds it.
#[derive(Debug, Default)]
struct Slot {
    entry: Entry,
    /// [`Entry::approx_bytes`] as of the last `take_changes` (u32: a slot is 64 bytes, not 72).
    size: u32,
    /// Changed since the last `take_changes` (and listed in `PartitionState::dirty`).
    dirty: bool,
}

/// An entry's size as its slot keeps it (an entry of 4 GiB is not held).
fn slot_size(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The state of one partition.
#[derive(Debug, Default)]
pub struct PartitionState {
    entries: Shards,
    /// The entries changed since the last `take_changes`, each once (a flag in its slot, so
    /// marking costs no second hash lookup per report), with what they are.
    dirty: Vec<(IndicatorId, Named)>,
    removed: Vec<IndicatorId>,
    bytes: usize,
    /// The claims its contributions share.
    claims: Claims,
    /// The latest report time seen: "now" for expiry.
    latest: Millis,
    /// `latest` when expired entries were last swept out.
    swept_at: Option<Millis>,
    /// With `[decay]`: the indicators some CERT holds live, by when they are next due to expire.
    due: DueQueue,
}

impl PartitionState {
    /// The time its tables spent growing since the last call.
    pub fn take_growth(&mut self) -> Duration {
        self.entries.take_growth()
    }

    /// `claim`, shared with the partition's contributions that claim the same.
    pub fn claim(&mut self, claim: Claim) -> Arc<Claim> {
        self.claims.share(claim)
    }

    /// The entry of `id` (the indicator `kind` `value`), created if new, marked as changed; and
    /// whether it was already changed since the last `take_changes` (earlier in the batch).
    pub fn entry(&mut self, id: IndicatorId, kind: IndicatorType, value: &str) -> (&mut Entry, bool) {
        let slot = self.entries.slot(id);
        let changed = slot.dirty;
        if !changed {
            slot.dirty = true;
            self.dirty.push((id, Named { kind, value: value.into() }));
        }
        (&mut slot.entry, changed)
    }

    /// The partition's clock (its latest report time), moved on to `at` if that is later.
    pub fn clock(&mut self, at: Millis) -> Millis {
        self.latest = self.latest.max(at);
        self.latest
    }

    /// The indicators due to expire (`[decay]`).
    pub fn due(&mut self) -> &mut DueQueue {
        &mut self.due
    }

    /// The entry of `id` if it is held (it is not marked as changed: [`entry`](Self::entry) was
    /// called for it earlier in the batch).
    pub fn get_mut(&mut self, id: &IndicatorId) -> Option<&mut Entry> {
        self.entries.get_mut(id).map(|s| &mut s.entry)
    }

    pub fn get(&self, id: &IndicatorId) -> Option<&Entry> {
        self.entries.get(id).map(|s| &s.entry)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// Every entry held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&IndicatorId, &Entry)> {
        self.entries.iter().map(|(id, slot)| (id, &slot.entry))
    }

    /// Estimated bytes held (as of the last `take_changes`).
    pub fn bytes(&self) -> usize {
        self.bytes + self.due.bytes()
    }

    /// Puts an entry read back from the changelog; with `[decay]` it is `named`, and held to
    /// be scheduled if some CERT was sent it live.
    pub fn restore(&mut self, id: IndicatorId, mut entry: Entry, named: Option<Named>) {
        match named {
            Some(named) if entry.emitted.iter().any(|(_, e)| !e.revoked) => self.due.restored(id, named),
            _ => self.due.remove(&id),
        }
        // Read back, each contribution has a claim of its own; it shares the partition's.
        entry.contributions = std::mem::take(&mut entry.contributions)
            .into_iter()
            .map(|c| Contribution { claim: self.claims.share(Arc::unwrap_or_clone(c.claim)), ..c })
            .collect();
        let size = entry.approx_bytes();
        self.latest = self.latest.max(entry.last_seen);
        if let Some(old) = self.entries.insert(id, Slot { entry, size: slot_size(size), dirty: false }) {
            self.replaced(&id, old);
        }
        self.bytes += size;
    }

    /// Removes an entry on a changelog tombstone.
    pub fn restore_removal(&mut self, id: &IndicatorId) {
        self.due.remove(id);
        if let Some(old) = self.entries.remove(id) {
            self.replaced(id, old);
        }
    }

    /// Accounts for a slot a changelog record replaced or removed: its bytes, and its pending
    /// change (the record read back supersedes it).
    fn replaced(&mut self, id: &IndicatorId, old: Slot) {
        self.bytes -= old.size as usize;
        if old.dirty {
            self.dirty.retain(|(d, _)| d != id);
        }
    }

    /// Enforces the bounds (expired first, then least recently seen, down to 90 % of the bound
    /// so the scan is amortised), then hands out what changed since the last call.
    pub fn take_changes(&mut self, bounds: Bounds) -> Changes<'_> {
        for (id, _) in &self.dirty {
            let slot = self.entries.get_mut(id).expect("a dirty entry is held");
            slot.dirty = false;
            self.latest = self.latest.max(slot.entry.last_seen);
            let now = slot.entry.approx_bytes();
            self.bytes = self.bytes + now - slot.size as usize;
            slot.size = slot_size(now);
        }
        let (expired, evicted) = self.evict(bounds);
        let mut changes =
            Changes { removed: std::mem::take(&mut self.removed), expired, evicted, ..Changes::default() };
        for (id, named) in self.dirty.drain(..) {
            // (unless the bounds just forgot it)
            if let Some(slot) = self.entries.get(&id) {
                changes.updated.push((id, named, &slot.entry));
            }
        }
        changes
    }

    /// Expired entries are swept when a bound is exceeded or once record time has moved on by
    /// 1/64 of the TTL, not on every batch: the sweep scans the whole partition. Returns how
    /// many entries expired and how many were evicted over the bounds.
    ///
    /// An entry some CERT still holds a live view of that will expire (`[decay]`) is not
    /// forgotten for its age: the CERT is owed its expiry first.
    fn evict(&mut self, b: Bounds) -> (u64, u64) {
        let over = |s: &Self| s.entries.len() > b.max_entries || s.bytes() > b.max_bytes;
        let due = self.swept_at.is_none_or(|at| self.latest.saturating_sub(at) >= b.ttl_ms / 64);
        if !over(self) && !due {
            return (0, 0);
        }
        self.swept_at = Some(self.latest);
        let expired: Vec<IndicatorId> = self
            .entries
            .iter()
            .filter(|(id, s)| expired(s.entry.last_seen, self.latest, b.ttl_ms) && !self.due.holds(id))
            .map(|(id, _)| *id)
            .collect();
        let expired_count = expired.len() as u64;
        for id in expired {
            self.forget(id);
        }
        if !over(self) {
            return (expired_count, 0);
        }
        let mut ages: Vec<(Millis, IndicatorId)> =
            self.entries.iter().map(|(id, s)| (s.entry.last_seen, *id)).collect();
        ages.sort_unstable();
        let (keep_entries, keep_bytes) = (b.max_entries - b.max_entries / 10, b.max_bytes - b.max_bytes / 10);
        let mut evicted = 0;
        for (_, id) in ages {
            if self.entries.len() <= keep_entries && self.bytes() <= keep_bytes {
                break;
            }
            self.forget(id);
            evicted += 1;
        }
        (expired_count, evicted)
    }

    fn forget(&mut self, id: IndicatorId) {
        self.due.remove(&id);
        if let Some(slot) = self.entries.remove(&id) {
            self.bytes -= slot.size as usize;
            self.removed.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contribution(feed: &str, seen: Millis) -> Contribution {
        let claim = Claim { confidence: Some(50), ..Claim::plain(feed, "P", Tlp::Green) };
        Contribution::new(Arc::new(claim), seen, seen)
    }

    const LOOSE: Bounds = Bounds { max_entries: usize::MAX, max_bytes: usize::MAX, ttl_ms: Millis::MAX };

    #[test]
    fn merge_replaces_the_same_feed_and_counts_sightings() {
        let mut e = Entry::default();
        assert_eq!(e.merge(contribution("a", 10), 10), 0);
        assert_eq!(e.merge(contribution("b", 20), 20), 1);
        let mut again = contribution("a", 30);
        Arc::make_mut(&mut again.claim).confidence = Some(90);
        assert_eq!(e.merge(again, 30), 0);
        let a = &e.contributions[0];
        assert_eq!((a.sightings, a.first_seen, a.last_seen, a.confidence), (2, 10, 30, Some(90)));
        assert_eq!(e.last_seen, 30);
    }

    fn filled(n: u128) -> PartitionState {
        let mut s = PartitionState::default();
        for i in 0..n {
            s.entry(IndicatorId(i), IndicatorType::Domain, "x.example")
                .0
                .merge(contribution("a", i as Millis), i as Millis);
        }
        s
    }

    #[test]
    fn changes_are_handed_out_once() {
        let mut s = filled(3);
        assert_eq!(s.take_changes(LOOSE).updated.len(), 3);
        assert_eq!(s.take_changes(LOOSE).updated.len(), 0);
        s.entry(IndicatorId(1), IndicatorType::Domain, "x.example").0.merge(contribution("b", 5), 5);
        let c = s.take_changes(LOOSE);
        assert_eq!(c.updated.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(), [IndicatorId(1)]);
    }

    #[test]
    fn an_entry_changed_twice_is_handed_out_once_and_restores_clear_pending_changes() {
        let mut s = filled(2);
        s.entry(IndicatorId(0), IndicatorType::Domain, "x.example").0.merge(contribution("b", 5), 5);
        let c = s.take_changes(LOOSE);
        assert_eq!(c.updated.iter().map(|(id, _, _)| id.0).collect::<Vec<_>>(), [0, 1]);
        // A changelog record read back over a changed entry, or its tombstone, replaces the change.
        s.entry(IndicatorId(0), IndicatorType::Domain, "x.example").0.merge(contribution("c", 6), 6);
        s.entry(IndicatorId(1), IndicatorType::Domain, "x.example").0.merge(contribution("c", 6), 6);
        s.restore(IndicatorId(0), Entry::default(), None);
        s.restore_removal(&IndicatorId(1));
        let c = s.take_changes(LOOSE);
        assert!(c.updated.is_empty() && c.removed.is_empty(), "{c:?}");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn evicts_expired_then_least_recently_seen() {
        let mut s = filled(100);
        let c = s.take_changes(Bounds { ttl_ms: 89, ..LOOSE });
        // Seen at 0..=9 is older than 99 - 89: expired, and written as tombstones.
        assert_eq!(c.removed.len(), 10);
        assert_eq!((c.expired, c.evicted), (10, 0));
        assert_eq!(c.updated.len(), 90);
        let c = s.take_changes(Bounds { max_entries: 50, ..LOOSE });
        assert_eq!(c.removed.len(), 45, "down to 90 % of the bound");
        assert_eq!((c.expired, c.evicted), (0, 45));
        assert_eq!(s.len(), 45);
        assert!(s.get(&IndicatorId(99)).is_some());
        assert!(s.get(&IndicatorId(54)).is_none());
    }

    /// With `[decay]`, an entry some CERT holds live is kept past the TTL until its expiry has
    /// been sent; the bounds still forget it (and it leaves the due-queue with it).
    #[test]
    fn entries_owed_an_expiry_outlive_the_ttl_but_not_the_bounds() {
        let mut s = filled(100);
        let named = || Named { kind: IndicatorType::Domain, value: "x.example".into() };
        for i in [3, 5] {
            s.due().schedule(IndicatorId(i), named, Some(1_000));
        }
        let c = s.take_changes(Bounds { ttl_ms: 89, ..LOOSE });
        assert_eq!((c.expired, c.removed.len()), (8, 8));
        assert!(s.get(&IndicatorId(3)).is_some() && s.get(&IndicatorId(5)).is_some());
        s.due().schedule(IndicatorId(3), named, None);
        // (the TTL sweep runs again once record time has moved on)
        s.entry(IndicatorId(200), IndicatorType::Domain, "x.example").0.merge(contribution("a", 199), 199);
        let c = s.take_changes(Bounds { ttl_ms: 89, ..LOOSE });
        assert!(c.removed.contains(&IndicatorId(3)) && !c.removed.contains(&IndicatorId(5)), "{:?}", c.removed);
        let with_due = s.bytes();
        s.take_changes(Bounds { max_entries: 1, ..LOOSE });
        assert!(s.get(&IndicatorId(5)).is_none());
        assert_eq!(s.due().len(), 0);
        assert!(s.bytes() < with_due);
    }

    #[test]
    fn expiry_sweeps_are_amortised_over_record_time() {
        let bounds = Bounds { ttl_ms: 6_400, ..LOOSE };
        let mut s = filled(1);
        assert!(s.take_changes(bounds).removed.is_empty());
        // 100 ms later entry 0 (seen at 0) is not expired; at 6,500 it is, and the sweep is due.
        s.entry(IndicatorId(1), IndicatorType::Domain, "x.example").0.merge(contribution("a", 100), 100);
        assert!(s.take_changes(bounds).removed.is_empty());
        s.entry(IndicatorId(2), IndicatorType::Domain, "x.example").0.merge(contribution("a", 6_500), 6_500);
        assert_eq!(s.take_changes(bounds).removed, [IndicatorId(0)]);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let mut s = filled(100);
        s.take_changes(LOOSE);
        let per_entry = s.bytes() / 100;
        // (the entry and its id in the chunks are 80 bytes; the table's place is more)
        assert!(per_entry > 80, "{per_entry}");
        s.take_changes(Bounds { max_bytes: per_entry * 20, ..LOOSE });
        assert!(s.bytes() <= per_entry * 20);
        assert!(s.len() <= 20 && s.len() >= 15, "{}", s.len());
    }

    /// The sizes the memory estimate and BENCHMARKS.md's arithmetic rest on: one contribution
    /// inside the entry, an entry with its id 80 bytes in the chunks.
    #[test]
    fn an_entry_holds_one_contribution_in_80_bytes_with_its_id() {
        use std::mem::size_of;
        assert_eq!((size_of::<Contribution>(), size_of::<Contributions>()), (32, 32));
        assert_eq!(size_of::<(IndicatorId, Slot)>(), 80);
        let mut e = Entry::default();
        e.merge(contribution("a", 1), 1);
        assert!(matches!(e.contributions, Contributions::One(_)));
        e.merge(contribution("b", 2), 2);
        let feeds: Vec<&str> = e.contributions.iter().map(|c| c.feed.as_str()).collect();
        assert_eq!(feeds, ["a", "b"]);
        assert_eq!(e.contributions.heap_bytes(), 64);
    }

    /// Contributions that claim the same share one claim, whether made from a batch's rows or read
    /// back from the changelog; a different claim is its own.
    #[test]
    fn contributions_share_their_claims() {
        let mut s = PartitionState::default();
        let claim = || Claim { tags: NameSet::one("phish".into()), ..Claim::plain("a", "P", Tlp::Green) };
        let (first, again) = (s.claim(claim()), s.claim(claim()));
        assert!(Arc::ptr_eq(&first, &again));
        let other = s.claim(Claim::plain("b", "P", Tlp::Green));
        assert!(!Arc::ptr_eq(&first, &other) && *other != *first);
        assert!(Arc::ptr_eq(&first, &s.claim(claim())), "found again after another claim");
        let bytes = changelog::encode(
            &{
                let mut e = Entry::default();
                e.merge(Contribution::new(Arc::new(claim()), 1, 1), 1);
                e
            },
            crate::config::ChangelogFormat::Binary,
        );
        for id in [IndicatorId(1), IndicatorId(2)] {
            s.restore(id, changelog::decode(&bytes).unwrap(), None);
        }
        for id in [IndicatorId(1), IndicatorId(2)] {
            assert!(Arc::ptr_eq(&s.get(&id).unwrap().contributions[0].claim, &first), "restored claims are shared");
        }
    }

    /// An emission's sources are places among the contributions, written as the feeds' names
    /// (sorted) and read back as places; a 65th feed takes the least recently seen place, which is
    /// then new to every CERT.
    #[test]
    fn sources_are_places_written_as_names() {
        let s = Sources::default().with(0).with(5).with(63);
        assert_eq!(s.places().collect::<Vec<_>>(), [0, 5, 63]);
        assert_eq!(s.first_new(Sources::default().with(0)), Some(5));
        assert_eq!(Sources::default().with(5).first_new(s), None);

        let sg = Country::parse("SG").unwrap();
        let sent = |sources| Emission {
            country: sg,
            sources,
            confidence: None,
            revoked: false,
            at: 1,
            first_at: 1,
            expired: false,
        };
        let mut e = Entry::default();
        e.merge(contribution("b", 1), 1);
        e.merge(contribution("a", 1), 1);
        e.emitted.set(sent(Sources::default().with(0).with(1)));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["emitted"]["SG"]["sources"], serde_json::json!(["a", "b"]));
        let mut only_b = json.clone();
        only_b["emitted"]["SG"]["sources"] = serde_json::json!(["b", "gone"]);
        let read: Entry = serde_json::from_value(only_b).unwrap();
        assert_eq!(read.emitted.get(sg).unwrap().sources, Sources::default().with(0), "b's place; gone is in no view");

        let mut full = Entry::default();
        for i in 0..Sources::MAX as Millis {
            full.merge(contribution(&format!("f{i}"), 100 - i), 100 - i);
        }
        full.emitted.set(sent(Sources::default().with(62).with(63)));
        assert_eq!(full.merge(contribution("new", 200), 200), 63, "f63 was seen least recently");
        assert_eq!((full.contributions.len(), full.contributions[63].feed.as_str()), (64, "new"));
        assert_eq!(full.emitted.get(sg).unwrap().sources, Sources::default().with(62));
    }

    #[test]
    fn restored_entries_count() {
        let mut s = PartitionState::default();
        let mut e = Entry::default();
        e.merge(contribution("a", 1), 1);
        s.restore(IndicatorId(1), e.clone(), None);
        s.restore(IndicatorId(1), e, None);
        assert_eq!(s.len(), 1);
        assert_eq!(s.bytes(), s.get(&IndicatorId(1)).unwrap().approx_bytes());
        s.restore_removal(&IndicatorId(1));
        assert_eq!((s.len(), s.bytes()), (0, 0));
    }
}
