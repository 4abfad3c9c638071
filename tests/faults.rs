//! Faults that come from outside iocflow: records as large as the limits allow, and records on
//! the internal topic that iocflow did not write (brokers that go away: `broker_faults.rs`).

use iocflow_testkit as harness;

use harness::*;
use std::collections::BTreeSet;

/// The domains `n` records of one feed name: under `.sg`, so the ccTLD implicates SingCERT.
fn domains(feed: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("host-{i}.{feed}.example.sg")).collect()
}

/// A MISP event of `domains`, each attribute carrying a comment of `pad` bytes (analysts'
/// notes make events of several MB).
fn misp_event(domains: &[String], pad: usize) -> Vec<u8> {
    let note = "n".repeat(pad);
    let attributes: Vec<serde_json::Value> = domains
        .iter()
        .map(|d| serde_json::json!({"type": "domain", "value": d, "to_ids": true, "category": "Network activity", "comment": note}))
        .collect();
    let event = serde_json::json!({"Event": {"info": "large event", "date": "2026-12-01", "distribution": "3",
        "Tag": [{"name": "tlp:green"}], "Attribute": attributes}});
    serde_json::to_vec(&event).unwrap()
}

/// A STIX 2.1 bundle of one indicator per domain, each with a description of `pad` bytes.
fn stix_bundle(domains: &[String], pad: usize) -> Vec<u8> {
    let description = "d".repeat(pad);
    let objects: Vec<serde_json::Value> = domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            serde_json::json!({"type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
                "created": "2026-12-01T00:00:00Z", "modified": "2026-12-01T00:00:00Z",
                "pattern": format!("[domain-name:value = '{d}']"), "pattern_type": "stix",
                "valid_from": "2026-12-01T00:00:00Z", "description": description})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001",
        "objects": objects}))
    .unwrap()
}

/// Records as large as `limits.max_record_bytes` (4 MiB by default) pass every topic on their
/// way to the CERTs: the topics `iocflow topics --create` makes admit them, and so do the
/// internal topics and iocflow's own clients. A record above the limit, on a topic that admits
/// it, is dead-lettered as `too_large`.
#[test]
fn records_as_large_as_the_limit_are_routed_and_larger_ones_dead_lettered() {
    let feeds = vec![
        TestFeed::new("misp", "GREEN", 70, "misp", ""),
        TestFeed::new("stix", "GREEN", 70, "stix2", ""),
        TestFeed::new("canon", "GREEN", 70, "json", ""),
    ];
    let d = Deployment::with_feeds("large", feeds, "");
    d.create_topics();
    let (misp_domains, stix_domains) = (domains("misp", 3000), domains("stix", 3000));
    let event = misp_event(&misp_domains, 1100);
    let bundle = stix_bundle(&stix_domains, 900);
    let mib = |b: &[u8]| b.len() as f64 / (1 << 20) as f64;
    assert!(
        (3.4..3.9).contains(&mib(&event)) && (3.4..3.9).contains(&mib(&bundle)),
        "{} {}",
        mib(&event),
        mib(&bundle)
    );
    // Above 4 MiB, below the topic's max.message.bytes (4 MiB + 64 KiB).
    let mut oversized = br#"[{"type":"domain","value":"too-large.example.sg","note":""#.to_vec();
    oversized.extend(std::iter::repeat_n(b'x', (4 << 20) + 1000));
    oversized.extend(br#""}]"#);

    produce(d.feed_topic("misp"), &[(Some("event".into()), event)]);
    produce(d.feed_topic("stix"), &[(Some("bundle".into()), bundle)]);
    produce(d.feed_topic("canon"), &[(Some("huge".into()), oversized)]);
    let run = d.start();
    d.wait_until_idle();

    let received: BTreeSet<String> =
        read_to_end(d.cert_topic("SG")).iter().map(|r| r.json()["value"].as_str().unwrap().to_string()).collect();
    let expected: BTreeSet<String> = misp_domains.iter().chain(&stix_domains).cloned().collect();
    assert_eq!(received.len(), 6000);
    assert_eq!(received, expected);
    let dead = read_to_end(&d.dlq_topic());
    assert_eq!(dead.len(), 1, "{:?}", dead.iter().map(|r| &r.headers).collect::<Vec<_>>());
    assert_eq!(dead[0].headers["iocflow.reason"], "too_large");
    assert_eq!(dead[0].key.as_deref(), Some("huge"));
    assert!(run.terminate().success());
}

/// One canonical-JSON feed record per domain.
fn canonical_records(domains: &[String]) -> Vec<(Option<String>, Vec<u8>)> {
    domains.iter().map(|d| (Some(d.clone()), format!(r#"[{{"type":"domain","value":"{d}"}}]"#).into_bytes())).collect()
}

/// Bytes on `<app>.indicators` that are not an indicator batch (a stray producer writing there,
/// here: noise and a feed record sent to the wrong topic) are dead-lettered with their origin,
/// counted, and the stage goes on: the reports before and after them all reach the CERT. In
/// exactly-once mode, so the dead letter is part of the transaction that consumes the record.
#[test]
fn a_corrupt_internal_record_is_dead_lettered_and_the_stage_goes_on() {
    let d = Deployment::new("corrupt", &[("canon", "GREEN", 70)], "delivery = \"exactly-once\"");
    d.create_topics();
    let (before, after) = (domains("before", 50), domains("after", 50));
    produce(d.feed_topic("canon"), &canonical_records(&before));
    let mut run = d.start();
    d.wait_until_idle();

    let indicators = format!("{}.indicators", d.app_id);
    let stray: Vec<(Option<String>, Vec<u8>)> = vec![
        (Some("noise".into()), (0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        (Some("misrouted".into()), br#"[{"type":"domain","value":"wrong-topic.example.sg"}]"#.to_vec()),
    ];
    let landed = produce_at(&indicators, &stray);
    produce(d.feed_topic("canon"), &canonical_records(&after));
    d.wait_until_idle();
    assert!(run.is_running(), "the corrupt records stopped iocflow");

    let received: BTreeSet<String> =
        read_to_end(d.cert_topic("SG")).iter().map(|r| r.json()["value"].as_str().unwrap().to_string()).collect();
    let expected: BTreeSet<String> = before.iter().chain(&after).cloned().collect();
    assert_eq!(received, expected);

    let dead = read_to_end(&d.dlq_topic());
    assert_eq!(dead.len(), 2, "{:?}", dead.iter().map(|r| &r.headers).collect::<Vec<_>>());
    for ((key, value), (partition, offset)) in stray.iter().zip(&landed) {
        let letter = dead.iter().find(|r| r.key == *key).expect("a dead letter per stray record");
        assert_eq!(&letter.value, value, "the stray bytes, unchanged");
        let h = &letter.headers;
        assert_eq!(h["iocflow.reason"], "corrupt_internal_record");
        assert_eq!(h["iocflow.origin.topic"], indicators);
        assert_eq!(h["iocflow.origin.partition"], partition.to_string());
        assert_eq!(h["iocflow.origin.offset"], offset.to_string());
        assert!(!h["iocflow.detail"].is_empty());
    }
    let metrics = run.http_get("/metrics");
    assert!(metrics.lines().any(|l| l == "iocflow_internal_records_corrupt_total 2"), "{metrics}");
    assert!(run.terminate().success());
}
