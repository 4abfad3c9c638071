//! The canonical JSON record delivered to a national CERT, one per indicator per CERT.
//!
//! It shows the CERT's *view* only: the contributions that CERT may see under the TLP policy.
//! `tlp` is the strictest label among them. Field names and meanings are a contract with the
//! CERTs' own tooling: change them only with a new `schema_version`.

use iocflow_model::time::{self, Millis};
use iocflow_model::{Country, IndicatorId, Name, NameSet};
use serde::{Serialize, Serializer};

/// The version of the record layout; bump it on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertRecord {
    pub schema_version: u32,
    pub id: IndicatorId,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
    /// Infrastructure country (IP geolocation or ccTLD), if known.
    pub country: Option<Country>,
    /// Every country implicated in this view: infrastructure and feed-given targets.
    pub countries: Vec<Country>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    pub org: Option<String>,
    pub sectors: Vec<String>,
    pub tlp: &'static str,
    pub confidence: Option<u8>,
    pub threat: Option<Name>,
    pub tags: NameSet,
    pub sources: Vec<Source>,
    /// Reports of this indicator in this view, and the times the CERTs' sightings in it say
    /// it was seen.
    pub sightings: u64,
    #[serde(serialize_with = "rfc3339")]
    pub first_seen: Millis,
    #[serde(serialize_with = "rfc3339")]
    pub last_seen: Millis,
    pub revoked: bool,
    /// The CERTs (countries) whose sightings are in this view; absent when none are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sighted_by: Vec<Country>,
    /// Why the indicator is revoked when no report revoked it: `false_positive` (enough CERTs
    /// reported it one, `[feedback]`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<&'static str>,
    /// With `[decay]`: how fresh the view is at the record's time (its confidence, or 50, decayed
    /// since its latest report or sighting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// With `[decay]`, for the types that decay: when the view's score falls to the threshold.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "optional_rfc3339")]
    pub valid_until: Option<Millis>,
    /// The view's score fell to the threshold: this record is its one expiry (`revoked` too).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

/// A feed that contributed to the view.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Source {
    pub feed: Name,
    pub provider: Name,
}

/// A record time as RFC 3339, as every output writes it.
pub(crate) fn rfc3339<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time::format(*ms))
}

fn optional_rfc3339<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => rfc3339(ms, s),
        None => s.serialize_none(),
    }
}

impl CertRecord {
    pub fn to_json(&self) -> crate::Result<Vec<u8>> {
        // About 490 bytes on average in the end-to-end benchmark.
        crate::json(self, 640)
    }
}
