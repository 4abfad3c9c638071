//! The STIX 2.1 output format: a CERT record as one STIX `indicator` object per Kafka message,
//! for CERTs whose tooling (OpenCTI, MISP's STIX import, TAXII relays) speaks STIX.
//!
//! - `id`: `indicator--` + a UUIDv5 of the iocflow id in the iocflow namespace, so every
//!   emission of an indicator is a new version of the same STIX object.
//! - `created`: the time of the first emission to this CERT; `modified`: this emission's time
//!   (the emission rule keeps it increasing).
//! - `object_marking_refs`: the TLP 2.0 marking definition of the record's label, by its standard
//!   id.
//! - Everything the canonical record has and STIX lacks is in custom properties named
//!   `x_iocflow_*`, declared through a top-level property extension (the definition object is
//!   `schemas/stix-extension-iocflow.json`), which is how STIX 2.1 wants custom properties
//!   announced; the OASIS validator accepts the result in strict mode.

use crate::cert_record::{CertRecord, Source};
use iocflow_model::decode::stix2::tlp2_marking;
use iocflow_model::time::{self, Millis};
use iocflow_model::{Country, IndicatorId, Name, NameSet, Tlp};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use uuid::Uuid;

/// The namespace of iocflow's UUIDv5 identifiers (itself a UUIDv5 of "iocflow" in the URL
/// namespace, fixed for good: changing it would change every STIX id).
pub const NAMESPACE: Uuid = Uuid::from_u128(0xd8d3b457_2052_5fbf_9e42_53de8f5b2a05);

/// The extension definition that declares the `x_iocflow_*` properties (UUIDv5 of
/// "stix-extension" in [`NAMESPACE`]).
pub const EXTENSION_ID: &str = "extension-definition--374ad430-e562-5034-bc31-387ac6603ad3";

/// The STIX id of an iocflow indicator id.
pub fn stix_id(iocflow_id: &str) -> String {
    format!("indicator--{}", Uuid::new_v5(&NAMESPACE, iocflow_id.as_bytes()))
}

/// A STIX patterning expression matching the indicator.
pub fn pattern(kind: &str, value: &str) -> String {
    let quoted = format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
    match kind {
        "ipv4" => format!("[ipv4-addr:value = {quoted}]"),
        "ipv6" => format!("[ipv6-addr:value = {quoted}]"),
        "cidr" if value.contains(':') => format!("[ipv6-addr:value = {quoted}]"),
        "cidr" => format!("[ipv4-addr:value = {quoted}]"),
        "domain" => format!("[domain-name:value = {quoted}]"),
        "url" => format!("[url:value = {quoted}]"),
        "email" => format!("[email-addr:value = {quoted}]"),
        "md5" => format!("[file:hashes.MD5 = {quoted}]"),
        "sha1" => format!("[file:hashes.'SHA-1' = {quoted}]"),
        "sha256" => format!("[file:hashes.'SHA-256' = {quoted}]"),
        "asn" => format!("[autonomous-system:number = {}]", value.trim_start_matches("AS")),
        _ => format!("[x-iocflow-indicator:value = {quoted}]"),
    }
}

/// A CERT record as a STIX 2.1 `indicator`: its properties in the order the standard lists them,
/// then iocflow's own. Empty lists and unknown values are left out (STIX has no nulls).
#[derive(Serialize)]
struct StixIndicator<'r> {
    #[serde(rename = "type")]
    object_type: &'static str,
    spec_version: &'static str,
    id: String,
    created: String,
    modified: String,
    name: String,
    description: String,
    indicator_types: [&'static str; 1],
    pattern: String,
    pattern_type: &'static str,
    pattern_version: &'static str,
    valid_from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<u8>,
    #[serde(skip_serializing_if = "no_labels")]
    labels: &'r NameSet,
    revoked: bool,
    object_marking_refs: [&'static str; 1],
    extensions: IocflowExtension,
    x_iocflow_id: IndicatorId,
    x_iocflow_type: &'static str,
    x_iocflow_value: &'r str,
    x_iocflow_tlp: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_iocflow_country: Option<Country>,
    #[serde(skip_serializing_if = "empty")]
    x_iocflow_countries: &'r [Country],
    #[serde(skip_serializing_if = "Option::is_none")]
    x_iocflow_asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_iocflow_as_org: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_iocflow_org: Option<&'r str>,
    #[serde(skip_serializing_if = "empty")]
    x_iocflow_sectors: &'r [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    x_iocflow_threat: Option<&'r Name>,
    x_iocflow_sources: &'r [Source],
    x_iocflow_sightings: u64,
    x_iocflow_last_seen: String,
    #[serde(skip_serializing_if = "empty")]
    x_iocflow_sighted_by: &'r [Country],
    #[serde(skip_serializing_if = "Option::is_none")]
    x_iocflow_revocation_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_iocflow_score: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    x_iocflow_expired: bool,
}

fn no_labels(tags: &&NameSet) -> bool {
    tags.is_empty()
}

fn empty<T>(list: &&[T]) -> bool {
    list.is_empty()
}

/// `extensions`: the declaration of the `x_iocflow_*` properties, by [`EXTENSION_ID`].
struct IocflowExtension;

impl Serialize for IocflowExtension {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Kind {
            extension_type: &'static str,
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(EXTENSION_ID, &Kind { extension_type: "toplevel-property-extension" })?;
        map.end()
    }
}

/// Encodes `record` as a STIX 2.1 indicator first emitted to this CERT at `created` and now at
/// `modified`.
pub fn encode(record: &CertRecord, created: Millis, modified: Millis) -> crate::Result<Vec<u8>> {
    let providers: Vec<&str> = record.sources.iter().map(|s| s.provider.as_str()).collect();
    let indicator = StixIndicator {
        object_type: "indicator",
        spec_version: "2.1",
        id: stix_id(&record.id.to_hex()),
        created: time::format(created),
        modified: time::format(modified.max(created)),
        name: format!("{} {}", record.kind, record.value),
        description: format!("Reported by {}; routed by iocflow.", providers.join(", ")),
        indicator_types: ["malicious-activity"],
        pattern: pattern(record.kind, &record.value),
        pattern_type: "stix",
        pattern_version: "2.1",
        valid_from: time::format(record.first_seen),
        // STIX requires it to be later than `valid_from`.
        valid_until: record.valid_until.map(|until| time::format(until.max(record.first_seen + 1))),
        confidence: record.confidence,
        labels: &record.tags,
        revoked: record.revoked,
        object_marking_refs: [tlp2_marking(Tlp::parse(record.tlp))],
        extensions: IocflowExtension,
        x_iocflow_id: record.id,
        x_iocflow_type: record.kind,
        x_iocflow_value: &record.value,
        x_iocflow_tlp: record.tlp,
        x_iocflow_country: record.country,
        x_iocflow_countries: &record.countries,
        x_iocflow_asn: record.asn,
        x_iocflow_as_org: record.as_org.as_deref(),
        x_iocflow_org: record.org.as_deref(),
        x_iocflow_sectors: &record.sectors,
        x_iocflow_threat: record.threat.as_ref(),
        x_iocflow_sources: &record.sources,
        x_iocflow_sightings: record.sightings,
        x_iocflow_last_seen: time::format(record.last_seen),
        x_iocflow_sighted_by: &record.sighted_by,
        x_iocflow_revocation_reason: record.revocation_reason,
        x_iocflow_score: record.score,
        x_iocflow_expired: record.expired,
    };
    Ok(serde_json::to_vec(&indicator)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert_record::SCHEMA_VERSION;
    use serde_json::Value;

    fn record(kind: &'static str, value: &str) -> CertRecord {
        CertRecord {
            schema_version: SCHEMA_VERSION,
            id: IndicatorId(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff),
            kind,
            value: value.into(),
            country: Country::parse("SG"),
            countries: vec![Country::parse("SG").unwrap()],
            asn: None,
            as_org: None,
            org: None,
            sectors: vec![],
            tlp: "AMBER",
            confidence: Some(80),
            threat: Some("botnet".into()),
            tags: iocflow_model::NameSet::default(),
            sources: vec![Source { feed: "f".into(), provider: "P".into() }],
            sightings: 2,
            first_seen: 1_000,
            last_seen: 2_000,
            revoked: false,
            sighted_by: Vec::new(),
            revocation_reason: None,
            score: None,
            valid_until: None,
            expired: false,
        }
    }

    #[test]
    fn the_namespace_is_the_uuidv5_of_iocflow() {
        assert_eq!(NAMESPACE, Uuid::new_v5(&Uuid::NAMESPACE_URL, b"iocflow"));
        let extension = Uuid::new_v5(&NAMESPACE, b"stix-extension");
        assert_eq!(EXTENSION_ID, format!("extension-definition--{extension}"));
    }

    #[test]
    fn patterns_per_type_and_quoting() {
        assert_eq!(pattern("ipv4", "192.0.2.1"), "[ipv4-addr:value = '192.0.2.1']");
        assert_eq!(pattern("cidr", "2001:db8::/32"), "[ipv6-addr:value = '2001:db8::/32']");
        assert_eq!(pattern("sha256", "ab"), "[file:hashes.'SHA-256' = 'ab']");
        assert_eq!(pattern("asn", "AS64500"), "[autonomous-system:number = 64500]");
        assert_eq!(pattern("url", r"http://x.example/a'b\c"), r"[url:value = 'http://x.example/a\'b\\c']");
    }

    #[test]
    fn one_stable_id_times_and_the_tlp2_marking() {
        let v: Value =
            serde_json::from_slice(&encode(&record("domain", "x.example.sg"), 5_000, 9_000).unwrap()).unwrap();
        assert_eq!(v["id"], stix_id("00112233445566778899aabbccddeeff"));
        assert_eq!(v["created"], "1970-01-01T00:00:05.000Z");
        assert_eq!(v["modified"], "1970-01-01T00:00:09.000Z");
        assert_eq!(v["valid_from"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["object_marking_refs"][0], "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421");
        assert_eq!(v["x_iocflow_threat"], "botnet");
        assert!(v.get("labels").is_none(), "no empty lists");
        assert!(v.get("x_iocflow_asn").is_none(), "no nulls");
    }
}
