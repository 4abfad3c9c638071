//! Where a partition's entries are held: every entry with its id in chunks that never move, and
//! 256 hash tables of 4-byte places in those chunks.
//!
//! Two costs shaped this. Memory: a hash table is 44–88 % full, and a table of whole entries
//! (80 bytes each) holds that spare room in entries, about 45 bytes an indicator; a table of
//! places holds it in 4-byte places (the entries themselves sit in chunks of [`CHUNK`], full but
//! for the last). Pauses: a table grows by doubling in one step, rehashing every entry, so one
//! table of 5 M entries stalls the batch that crosses 4 M (`benches/benches/state_growth.rs`);
//! split into tables of equal shares, they would all cross their thresholds in the same few
//! batches. So table i gets a share of the ids proportional to 2^(i/256): the shares span a
//! factor of two, the tables reach their doubling thresholds one after another across every
//! doubling of the whole, and a batch pays for about one small table's growth (1/256 to 1/128
//! of the entries, 4 bytes each). No table is allocated before it is needed.

use super::Slot;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use iocflow_model::IndicatorId;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// How many tables a partition's entries are spread over (at most 256: [`shard_of`]).
const SHARDS: usize = 256;

/// Entries per chunk: a chunk is allocated whole (320 KiB), so a partition holds at most one
/// chunk's spare room.
const CHUNK: usize = 1 << 12;

/// A partition's entries: see the module's doc.
#[derive(Debug)]
pub(super) struct Shards {
    /// Per table, the places in `held` of its entries.
    tables: Box<[HashTable<u32>]>,
    held: Held,
    /// Seeded per process, as the standard map is: an id is xxh3 of what a producer sent, and
    /// the tables should not be at the mercy of chosen collisions.
    hasher: RandomState,
    /// Time spent growing tables (for a new entry) since the last [`Shards::take_growth`].
    growth: Duration,
}

/// The table of an id, from its top 16 bits (ids are uniform hashes): the bits read as u in
/// [0, 1) go to table ⌊256 · log2(1 + u)⌋, so table i's share grows as 2^(i/256). A table of
/// 65,536 bytes, looked up once per id.
fn shard_of(id: &IndicatorId) -> usize {
    static TABLE: std::sync::LazyLock<Box<[u8]>> = std::sync::LazyLock::new(|| {
        (0..1u32 << 16)
            .map(|x| {
                let u = (f64::from(x) + 0.5) / 65536.0;
                ((1.0 + u).log2() * SHARDS as f64).min((SHARDS - 1) as f64) as u8
            })
            .collect()
    });
    usize::from(TABLE[(id.0 >> 112) as usize])
}

impl Default for Shards {
    fn default() -> Self {
        Shards {
            tables: (0..SHARDS).map(|_| HashTable::new()).collect(),
            held: Held::default(),
            hasher: RandomState::default(),
            growth: Duration::ZERO,
        }
    }
}

impl Shards {
    /// The bytes an entry costs here beyond its own heap: its place in the chunks and its place
    /// in a table with the table's control byte and spare room (63 % full on average).
    pub(super) const ENTRY_BYTES: usize =
        std::mem::size_of::<(IndicatorId, Slot)>() + (std::mem::size_of::<u32>() + 1) * 8 / 5;

    /// The slot of `id`, created empty if new. A full table grows (doubles) before a new place
    /// goes in; that is timed, as it is the one step whose cost grows with the state.
    pub(super) fn slot(&mut self, id: IndicatorId) -> &mut Slot {
        let at = self.place(id, Slot::default).0;
        &mut self.held.get_mut(at).1
    }

    /// The place of `id`, and whether it is new (its slot made by `new`).
    fn place(&mut self, id: IndicatorId, new: impl FnOnce() -> Slot) -> (u32, bool) {
        let Shards { tables, held, hasher, growth } = self;
        let hash = hasher.hash_one(id);
        let table = &mut tables[shard_of(&id)];
        if let Some(&at) = table.find(hash, |&at| held.get(at).0 == id) {
            return (at, false);
        }
        let full = (table.len() == table.capacity()).then(Instant::now);
        let at = held.push((id, new()));
        table.insert_unique(hash, at, |&at| hasher.hash_one(held.get(at).0));
        if let Some(started) = full {
            *growth += started.elapsed();
        }
        (at, true)
    }

    /// The time spent growing tables since the last call.
    pub(super) fn take_growth(&mut self) -> Duration {
        std::mem::take(&mut self.growth)
    }

    pub(super) fn len(&self) -> usize {
        self.held.len
    }

    fn find(&self, id: &IndicatorId) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.tables[shard_of(id)].find(hash, |&at| self.held.get(at).0 == *id).copied()
    }

    pub(super) fn get(&self, id: &IndicatorId) -> Option<&Slot> {
        self.find(id).map(|at| &self.held.get(at).1)
    }

    pub(super) fn get_mut(&mut self, id: &IndicatorId) -> Option<&mut Slot> {
        self.find(id).map(|at| &mut self.held.get_mut(at).1)
    }

    /// Puts `slot` as the slot of `id`; returns the one it replaces.
    pub(super) fn insert(&mut self, id: IndicatorId, slot: Slot) -> Option<Slot> {
        let mut put = Some(slot);
        let (at, new) = self.place(id, || put.take().expect("made once"));
        match put {
            Some(slot) => Some(std::mem::replace(&mut self.held.get_mut(at).1, slot)),
            None => {
                debug_assert!(new);
                None
            }
        }
    }

    /// Removes the slot of `id`. The last entry of the chunks takes its place (so the chunks stay
    /// full), and its table is told.
    pub(super) fn remove(&mut self, id: &IndicatorId) -> Option<Slot> {
        let Shards { tables, held, hasher, .. } = self;
        let found = tables[shard_of(id)].find_entry(hasher.hash_one(id), |&at| held.get(at).0 == *id).ok()?;
        let (at, _) = found.remove();
        let last = u32::try_from(held.len - 1).expect("places fit in u32");
        if at != last {
            let moved = held.get(last).0;
            let place = tables[shard_of(&moved)]
                .find_mut(hasher.hash_one(moved), |&p| p == last)
                .expect("every entry held is in its table");
            *place = at;
        }
        Some(held.swap_remove(at).1)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&IndicatorId, &Slot)> {
        self.held.chunks.iter().flatten().map(|(id, slot)| (id, slot))
    }
}

/// Entries with their ids, densely: chunks of [`CHUNK`], all full but the last.
#[derive(Debug, Default)]
struct Held {
    chunks: Vec<Vec<(IndicatorId, Slot)>>,
    len: usize,
}

impl Held {
    fn get(&self, at: u32) -> &(IndicatorId, Slot) {
        let at = at as usize;
        &self.chunks[at / CHUNK][at % CHUNK]
    }

    fn get_mut(&mut self, at: u32) -> &mut (IndicatorId, Slot) {
        let at = at as usize;
        &mut self.chunks[at / CHUNK][at % CHUNK]
    }

    /// Appends an entry; returns its place.
    fn push(&mut self, held: (IndicatorId, Slot)) -> u32 {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk with room").push(held);
        self.len += 1;
        u32::try_from(self.len - 1).expect("a partition holds fewer than 2^32 entries")
    }

    /// Removes the entry at `at`, putting the last one there.
    fn swap_remove(&mut self, at: u32) -> (IndicatorId, Slot) {
        let chunk = self.chunks.last_mut().expect("an entry to remove");
        let last = chunk.pop().expect("no chunk is empty");
        if chunk.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        if at as usize == self.len { last } else { std::mem::replace(self.get_mut(at), last) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iocflow_model::IndicatorType;

    fn ids(n: u64) -> Vec<IndicatorId> {
        (0..n).map(|i| IndicatorId::of(IndicatorType::Domain, &format!("d{i}.example"))).collect()
    }

    /// The tables' shares span a factor of two (so they grow one after another, not together),
    /// and the count follows inserts and removals.
    #[test]
    fn entries_spread_over_tables_of_unequal_shares() {
        let mut shards = Shards::default();
        let ids = ids(400_000);
        for id in &ids {
            shards.slot(*id);
        }
        assert_eq!(shards.len(), ids.len());
        let sizes: Vec<usize> = shards.tables.iter().map(HashTable::len).collect();
        let (first, last) = (sizes[..16].iter().sum::<usize>() as f64, sizes[240..].iter().sum::<usize>() as f64);
        assert!((1.8..2.2).contains(&(last / first)), "{first} {last}");
        assert!(sizes.windows(2).filter(|w| w[1] < w[0]).count() < 200, "shares grow with the index");
        for id in &ids[..1000] {
            assert!(shards.remove(id).is_some());
        }
        assert_eq!((shards.len(), shards.remove(&ids[0]).is_none()), (ids.len() - 1000, true));
    }

    /// Removing moves the last entry into the hole: every id still finds its own slot, across
    /// chunk boundaries and down to empty.
    #[test]
    fn every_id_finds_its_slot_as_entries_come_and_go() {
        let mut shards = Shards::default();
        let ids = ids(3 * CHUNK as u64 + 17);
        for (i, id) in ids.iter().enumerate() {
            assert!(shards.insert(*id, Slot { size: i as u32, ..Slot::default() }).is_none());
        }
        let replaced = shards.insert(ids[5], Slot { size: 5, ..Slot::default() }).map(|s| s.size);
        assert_eq!(replaced, Some(5));
        let check = |shards: &Shards, gone: &dyn Fn(usize) -> bool| {
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(shards.get(id).map(|s| s.size), (!gone(i)).then_some(i as u32), "id {i}");
            }
            assert_eq!(shards.iter().count(), shards.len());
        };
        // Every third, from the front: each removal moves a later entry into its place.
        for id in ids.iter().step_by(3) {
            assert!(shards.remove(id).is_some());
        }
        check(&shards, &|i| i % 3 == 0);
        assert_eq!(shards.held.chunks.len(), shards.len().div_ceil(CHUNK));
        for id in &ids {
            shards.remove(id);
        }
        check(&shards, &|_| true);
        assert!(shards.held.chunks.is_empty());
        for id in &ids[..10] {
            shards.slot(*id).size = 1;
        }
        assert_eq!(shards.get(&ids[9]).map(|s| s.size), Some(1));
    }
}
