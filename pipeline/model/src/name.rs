//! [`Name`]: a short string that many records share — a feed's name, its provider, a threat
//! type, a tag — and [`NameSet`], a set of them shared the same way (an indicator's tags).
//!
//! The dedupe state holds one contribution per feed for every indicator, and every record sent
//! to a CERT lists its sources; with a plain `String` each of them is an allocation and a copy
//! of the same few names. A `Name` is reference-counted, so holding or copying one is a counter
//! increment. It reads and writes as a plain string (JSON, the changelog), so the formats do not
//! change.

use foldhash::HashSet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A shared, immutable string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::from(s))
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        String::deserialize(d).map(Name::from)
    }
}

/// A sorted set of [`Name`]s, shared: copying one is a counter increment, and neither the empty
/// set nor a set of one name holds an allocation of its own. It reads and writes as a plain list
/// of strings.
///
/// A contribution's tags and a record's tags are sets: most rows of a batch carry the same tags
/// as the row before (a feed tags its reports alike), and most records have the tags of their
/// one contribution, so one set serves them all. What a CERT was last sent names its view's
/// feeds as a set too, and most views are of one feed: that set is the feed's name itself.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct NameSet(Set);

/// A [`NameSet`]'s names, held as few allocations as their number allows. Each set has one
/// representation (by its size), so equal sets compare and hash alike.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
enum Set {
    #[default]
    Empty,
    One(Name),
    Many(Arc<[Name]>),
}

impl NameSet {
    /// The set of `names` (sorted, each once).
    pub fn of(mut names: Vec<Name>) -> NameSet {
        names.sort_unstable();
        names.dedup();
        NameSet(match names.len() {
            0 => Set::Empty,
            1 => Set::One(names.pop().expect("one name")),
            _ => Set::Many(names.into()),
        })
    }

    /// The set of one name.
    pub fn one(name: Name) -> NameSet {
        NameSet(Set::One(name))
    }
}

impl Deref for NameSet {
    type Target = [Name];

    fn deref(&self) -> &[Name] {
        match &self.0 {
            Set::Empty => &[],
            Set::One(name) => std::slice::from_ref(name),
            Set::Many(names) => names,
        }
    }
}

impl FromIterator<Name> for NameSet {
    fn from_iter<I: IntoIterator<Item = Name>>(names: I) -> NameSet {
        NameSet::of(names.into_iter().collect())
    }
}

impl<const N: usize> PartialEq<[&str; N]> for NameSet {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.iter().map(Name::as_str).eq(other.iter().copied())
    }
}

impl fmt::Debug for NameSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for NameSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for NameSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NameSet, D::Error> {
        Vec::<Name>::deserialize(d).map(NameSet::of)
    }
}

/// Hands out one [`Name`] per distinct string: the names in one batch of indicators (its feed
/// and provider columns hold one or a few values, its tags a few dozen) share one allocation
/// each. Meant to live for a batch and one column; it keeps at most [`Names::KEPT`] names.
///
/// A column's rows come in runs (a feed's reports arrive together), so the last name handed out
/// is compared first: a run costs one string comparison per row, not a hash and a probe.
#[derive(Debug, Default)]
pub struct Names {
    seen: HashSet<Name>,
    last: Option<Name>,
    /// The last set handed out by [`set`](Names::set).
    last_set: NameSet,
}

impl Names {
    /// How many distinct names it keeps; beyond them a name is allocated each time.
    pub const KEPT: usize = 4096;

    pub fn get(&mut self, s: &str) -> Name {
        if let Some(last) = self.last.as_ref().filter(|l| l.as_str() == s) {
            return last.clone();
        }
        let name = match self.seen.get(s) {
            Some(n) => n.clone(),
            None => {
                let name = Name::from(s);
                if self.seen.len() < Self::KEPT {
                    self.seen.insert(name.clone());
                }
                name
            }
        };
        self.last = Some(name.clone());
        name
    }

    /// The set of the strings `row` gives (a list column's row): the last set handed out again
    /// when the row lists the same names in its order, a new one of shared names otherwise.
    pub fn set<'a>(&mut self, row: impl Iterator<Item = &'a str> + Clone) -> NameSet {
        if row.clone().eq(self.last_set.iter().map(Name::as_str)) {
            return self.last_set.clone();
        }
        let set = NameSet::of(row.map(|s| self.get(s)).collect());
        self.last_set = set.clone();
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_sorted_unique_shared_and_read_as_lists() {
        let mut names = Names::default();
        let a = names.set(["phish", "bank", "phish"].into_iter());
        assert_eq!(a, ["bank", "phish"]);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"["bank","phish"]"#);
        let again = names.set(["bank", "phish"].into_iter());
        let (Set::Many(a_names), Set::Many(again_names)) = (&a.0, &again.0) else { panic!("{a:?} {again:?}") };
        assert!(Arc::ptr_eq(a_names, again_names), "the same row shares the set");
        let other = names.set(["bank"].into_iter());
        assert_eq!(other, ["bank"]);
        assert!(Arc::ptr_eq(&a[0].0, &other[0].0), "and the names within it");
        assert!(matches!(other.0, Set::One(_)), "one name is its own set");
        assert_eq!(other, NameSet::one("bank".into()));
        assert_eq!(names.set(std::iter::empty()), NameSet::default());
        assert!(matches!(NameSet::default().0, Set::Empty), "no allocation for no names");
        let read: NameSet = serde_json::from_str(r#"["t2","t1","t2"]"#).unwrap();
        assert_eq!(read, ["t1", "t2"]);
        assert_eq!(format!("{read:?}"), r#"["t1", "t2"]"#);
    }

    #[test]
    fn reads_and_writes_as_a_string_and_is_shared() {
        let n: Name = serde_json::from_str(r#""abuse.ch""#).unwrap();
        assert_eq!(n, "abuse.ch");
        assert_eq!(serde_json::to_string(&vec![n.clone()]).unwrap(), r#"["abuse.ch"]"#);
        let mut names = Names::default();
        let a = names.get("feed-a");
        assert!(Arc::ptr_eq(&a.0, &names.get("feed-a").0), "one allocation per distinct name");
        assert!(!Arc::ptr_eq(&a.0, &names.get("feed-b").0));
        assert!(Arc::ptr_eq(&a.0, &names.get("feed-a").0), "shared after another name too");
        for i in 0..Names::KEPT + 10 {
            assert_eq!(names.get(&format!("feed-{i}")).as_str(), format!("feed-{i}"), "past the kept ones too");
        }
        let mut sorted = vec![Name::from("b"), Name::from("a")];
        sorted.sort();
        assert_eq!(sorted, ["a", "b"], "ordered as strings");
    }
}
