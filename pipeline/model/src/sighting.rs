//! Sightings: what a national CERT tells the region about an indicator it was sent — seen it
//! (MISP sighting type 0), found it a false positive (type 1), or holds it expired (type 2).
//!
//! A sighting travels the pipeline as a [`Report`](crate::Report) of a contribution named after
//! its CERT and kind (`sighting:sg`, `false_positive:sg`, `expiration:sg`, see
//! [`contribution_name`]): it meets the indicator's reports in the partition that owns the id,
//! is merged like one (one contribution per CERT and kind, its count summed, its latest label
//! kept), and is written to the changelog as one, so the changelog's layout did not change. The
//! routing reads the name back ([`of_contribution`]) to apply the sightings' own visibility rule.

use crate::Country;

/// What a CERT says it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SightingKind {
    /// The indicator was seen (MISP type 0, STIX `sighting`, canonical `sighting`).
    Seen,
    /// The indicator is a false positive for the CERT (MISP type 1, `x_iocflow_false_positive`,
    /// canonical `false_positive`).
    FalsePositive,
    /// The CERT holds the indicator expired (MISP type 2): stored, in no view.
    Expiration,
}

impl SightingKind {
    pub const ALL: [SightingKind; 3] = [SightingKind::Seen, SightingKind::FalsePositive, SightingKind::Expiration];

    /// The name in records, metrics and contribution names.
    pub fn as_str(self) -> &'static str {
        match self {
            SightingKind::Seen => "sighting",
            SightingKind::FalsePositive => "false_positive",
            SightingKind::Expiration => "expiration",
        }
    }
}

/// What a sighting adds to a report: its kind and how many times it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    pub kind: SightingKind,
    pub count: u32,
}

/// The name of the contribution a CERT's sightings of one kind make: `<kind>:<cc>`. Feed names
/// may not begin with a kind and a colon (the configuration checks it), so none clashes.
pub fn contribution_name(kind: SightingKind, by: Country) -> String {
    format!("{}:{}", kind.as_str(), by.lower())
}

/// The kind and CERT of a contribution named by [`contribution_name`]; `None` for a feed's.
pub fn of_contribution(name: &str) -> Option<(SightingKind, Country)> {
    let (kind, cc) = name.split_once(':')?;
    let kind = SightingKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    Some((kind, Country::parse(cc)?))
}

/// Whether a feed name would read as a sighting's contribution (the configuration refuses it).
pub fn is_reserved(feed: &str) -> bool {
    feed.split_once(':').is_some_and(|(kind, _)| SightingKind::ALL.iter().any(|k| k.as_str() == kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        let sg = Country::parse("SG").unwrap();
        for kind in SightingKind::ALL {
            let name = contribution_name(kind, sg);
            assert_eq!(of_contribution(&name), Some((kind, sg)), "{name}");
            assert!(is_reserved(&name));
        }
        assert_eq!(contribution_name(SightingKind::FalsePositive, sg), "false_positive:sg");
        assert_eq!(of_contribution("urlhaus"), None);
        assert_eq!(of_contribution("sighting:xx1"), None);
        assert!(!is_reserved("vendor:feed"));
    }
}
