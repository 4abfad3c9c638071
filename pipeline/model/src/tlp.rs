//! Traffic Light Protocol labels (TLP 2.0, with the TLP 1.0 name WHITE read as CLEAR).
//!
//! Labels are ordered by strictness so "the strictest label wins" is `max`. Anything iocflow
//! cannot read is [`Tlp::Unknown`], which is stricter than RED: an unparsable label must never
//! make a report more shareable (fail closed).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tlp {
    #[serde(rename = "CLEAR")]
    Clear,
    #[serde(rename = "GREEN")]
    Green,
    #[serde(rename = "AMBER")]
    Amber,
    #[serde(rename = "AMBER+STRICT")]
    AmberStrict,
    #[serde(rename = "RED")]
    Red,
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl Tlp {
    /// Reads a label as feeds write it: `TLP:GREEN`, `tlp:amber+strict`, `white`, `Clear` …
    /// Anything else is [`Tlp::Unknown`].
    pub fn parse(label: &str) -> Tlp {
        // Fast path: the names `as_str` writes (every internal batch uses them).
        for t in [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red, Tlp::Unknown] {
            if t.as_str() == label {
                return t;
            }
        }
        let l = label.trim();
        let l = l.get(..4).filter(|p| p.eq_ignore_ascii_case("tlp:")).map_or(l, |_| &l[4..]).trim();
        match l.to_ascii_lowercase().as_str() {
            "clear" | "white" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "amber+strict" | "amber-strict" | "amber_strict" => Tlp::AmberStrict,
            "red" => Tlp::Red,
            _ => Tlp::Unknown,
        }
    }

    /// The label as written in output records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "CLEAR",
            Tlp::Green => "GREEN",
            Tlp::Amber => "AMBER",
            Tlp::AmberStrict => "AMBER+STRICT",
            Tlp::Red => "RED",
            Tlp::Unknown => "UNKNOWN",
        }
    }

    /// The stricter of two labels.
    pub fn strictest(self, other: Tlp) -> Tlp {
        self.max(other)
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tlp_1_and_2_names() {
        assert_eq!(Tlp::parse("TLP:WHITE"), Tlp::Clear);
        assert_eq!(Tlp::parse("tlp:clear"), Tlp::Clear);
        assert_eq!(Tlp::parse("Green"), Tlp::Green);
        assert_eq!(Tlp::parse("TLP:AMBER+STRICT"), Tlp::AmberStrict);
        assert_eq!(Tlp::parse(" red "), Tlp::Red);
        assert_eq!(Tlp::parse("tlp:ex:chr"), Tlp::Unknown);
        assert_eq!(Tlp::parse(""), Tlp::Unknown);
    }

    #[test]
    fn unknown_is_stricter_than_red() {
        assert_eq!(Tlp::Green.strictest(Tlp::Unknown), Tlp::Unknown);
        assert_eq!(Tlp::Red.strictest(Tlp::Amber), Tlp::Red);
        assert_eq!(Tlp::Clear.strictest(Tlp::Green), Tlp::Green);
    }
}
