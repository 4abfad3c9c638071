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

use crate::cert_record::CertRecord;
use iocflow_model::Tlp;
use iocflow_model::decode::stix2::tlp2_marking;
use iocflow_model::time::{self, Millis};
use serde_json::{Map, Value, json};
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

/// Encodes `record` as a STIX 2.1 indicator first emitted to this CERT at `created` and now at
/// `modified`.
pub fn encode(record: &CertRecord, created: Millis, modified: Millis) -> crate::Result<Vec<u8>> {
    let providers: Vec<&str> = record.sources.iter().map(|s| s.provider.as_str()).collect();
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    put("type", json!("indicator"));
    put("spec_version", json!("2.1"));
    put("id", json!(stix_id(&record.id.to_hex())));
    put("created", json!(time::format(created)));
    put("modified", json!(time::format(modified.max(created))));
    put("name", json!(format!("{} {}", record.kind, record.value)));
    put("description", json!(format!("Reported by {}; routed by iocflow.", providers.join(", "))));
    put("indicator_types", json!(["malicious-activity"]));
    put("pattern", json!(pattern(record.kind, &record.value)));
    put("pattern_type", json!("stix"));
    put("pattern_version", json!("2.1"));
    put("valid_from", json!(time::format(record.first_seen)));
    if let Some(c) = record.confidence {
        put("confidence", json!(c));
    }
    if !record.tags.is_empty() {
        put("labels", json!(record.tags));
    }
    put("revoked", json!(record.revoked));
    put("object_marking_refs", json!([tlp2_marking(Tlp::parse(record.tlp))]));
    put("extensions", json!({ EXTENSION_ID: { "extension_type": "toplevel-property-extension" } }));
    put("x_iocflow_id", json!(record.id));
    put("x_iocflow_type", json!(record.kind));
    put("x_iocflow_value", json!(record.value));
    put("x_iocflow_tlp", json!(record.tlp));
    if let Some(c) = &record.country {
        put("x_iocflow_country", json!(c));
    }
    if !record.countries.is_empty() {
        put("x_iocflow_countries", json!(record.countries));
    }
    if let Some(asn) = record.asn {
        put("x_iocflow_asn", json!(asn));
    }
    if let Some(v) = &record.as_org {
        put("x_iocflow_as_org", json!(v));
    }
    if let Some(v) = &record.org {
        put("x_iocflow_org", json!(v));
    }
    if !record.sectors.is_empty() {
        put("x_iocflow_sectors", json!(record.sectors));
    }
    if let Some(v) = &record.threat {
        put("x_iocflow_threat", json!(v));
    }
    put("x_iocflow_sources", json!(record.sources));
    put("x_iocflow_sightings", json!(record.sightings));
    put("x_iocflow_last_seen", json!(time::format(record.last_seen)));
    Ok(serde_json::to_vec(&Value::Object(o))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert_record::{SCHEMA_VERSION, Source};
    use iocflow_model::{Country, IndicatorId};

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
