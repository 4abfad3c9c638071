//! A report: one feed's statement about one indicator.
//!
//! The same indicator reported by three feeds is three reports. They are kept apart until the
//! columnar stage, because what each national CERT may see depends on each report's own TLP
//! label (DESIGN.md, "Route"): merging them earlier would leak a RED report through a GREEN one.

use crate::sighting::Sighting;
use crate::time::Millis;
use crate::{Country, Indicator, Tlp};

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub indicator: Indicator,
    /// The strictest label of the record and the feed's default.
    pub tlp: Tlp,
    /// 0–100.
    pub confidence: Option<u8>,
    /// IntelMQ/RSIT classification type such as `c2-server` or `phishing`.
    pub threat: Option<String>,
    pub tags: Vec<String>,
    pub first_seen: Option<Millis>,
    pub last_seen: Option<Millis>,
    pub valid_until: Option<Millis>,
    /// Upper-case ISO 3166-1 alpha-2 codes the feed says are targeted.
    pub target_countries: Vec<Country>,
    pub target_sectors: Vec<String>,
    pub revoked: bool,
    /// MISP distribution level (0–5) after inheritance, when the report came from MISP.
    pub distribution: Option<u8>,
    /// MISP sharing group (uuid, else id) when `distribution` is 4.
    pub sharing_group: Option<String>,
    /// A CERT's sighting rather than a feed's report (`sighting.rs`).
    pub sighting: Option<Sighting>,
}

impl Report {
    /// A report with nothing but the indicator and its label.
    pub fn new(indicator: Indicator, tlp: Tlp) -> Report {
        Report {
            indicator,
            tlp,
            confidence: None,
            threat: None,
            tags: Vec::new(),
            first_seen: None,
            last_seen: None,
            valid_until: None,
            target_countries: Vec::new(),
            target_sectors: Vec::new(),
            revoked: false,
            distribution: None,
            sharing_group: None,
            sighting: None,
        }
    }
}
