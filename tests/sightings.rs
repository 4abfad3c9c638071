//! The CERTs' sightings on a real broker, exactly-once: reports from two feeds and, phase after
//! phase, sightings, false positives and expirations from every CERT under every label — STIX
//! 2.1 bundles made by the OASIS `stix2` library (PH's of the very STIX indicators it was sent),
//! MISP sightings made by PyMISP, canonical JSON — with `[feedback] false_positive_revoke_after =
//! 2`. Every CERT topic and the withheld topic must hold exactly what the policy model
//! (`tests/testkit/src/policy.rs`) says, record by record; bad sightings go to the dead-letter
//! topic with their reasons; the sightings metrics count what was sent; the records pass the
//! record schema and the OASIS validator; `iocflow explain` agrees with every CERT topic.
//!
//! Each indicator is reported or sighted at most once per phase and iocflow catches up between
//! phases, so the order of everything said about one indicator is fixed.

use iocflow_testkit as harness;

use harness::policy::{Policy, Report, Sighting, View, assert_views_match, by_cert_and_value, untimed};
use harness::stream::{PoolIndicator, domains_and_hashes};
use harness::*;
use iocflow::explain::{Explainer, Query};
use iocflow_model::IndicatorType;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::Command;

fn pool() -> Vec<PoolIndicator> {
    domains_and_hashes("s", 50, 10, 0x5167_0000)
}

const LABELS: [&str; 5] = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"];

/// STIX and MISP sightings written by stix2 and PyMISP (`dev/python/sightings.py`), in order.
fn made_by_the_libraries(specs: &[serde_json::Value]) -> Vec<Vec<u8>> {
    if specs.is_empty() {
        return Vec::new();
    }
    let mut child = Command::new(python())
        .arg(repo().join("dev/python/sightings.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), specs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sightings.py: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Vec<u8>> = out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    assert_eq!(lines.len(), specs.len());
    lines
}

#[test]
fn sightings_count_in_the_views_their_labels_allow_and_false_positives_revoke() {
    let feeds =
        vec![TestFeed::new("industry", "CLEAR", 50, "json", ""), TestFeed::new("member", "CLEAR", 80, "json", "")];
    let tail = "[feedback]\nfalse_positive_revoke_after = 2\n";
    let d = Deployment::with_policy("sightings", feeds, "delivery = \"exactly-once\"", feedback_cert_lines, tail);
    d.create_topics();
    let seed = std::env::var("IOCFLOW_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("IOCFLOW_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let pool = pool();
    let mut policy = Policy::new(feedback_certs(), 7 * 24 * 3_600_000);
    policy.fp_revoke_after = Some(2);
    let mut expected_records = Vec::new();
    let mut expected_withheld: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    // Per (CERT, kind): sightings decoded, for the metrics.
    let mut sent_sightings: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let run = d.start();
    let (mut n, mut at) = (0, 0);
    let started = std::time::Instant::now();
    for phase in 0..8 {
        // The STIX indicators PH holds now: its STIX sightings are of those.
        let ph_stix: BTreeMap<String, serde_json::Value> = read_to_end(d.cert_topic("PH"))
            .iter()
            .map(|r| r.json())
            .map(|v| (v["x_iocflow_value"].as_str().unwrap().to_string(), v))
            .collect();
        let mut by_topic: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        let mut specs = Vec::new();
        let mut spec_topics = Vec::new();
        for (i, ind) in pool.iter().enumerate() {
            // Pinned, whatever the seed: s0 (SG) is reported GREEN, then called a false positive
            // under GREEN by TH and under CLEAR by VN, so it is revoked as one; s1 (MY) is reported
            // GREEN with confidence 80 (MY's filter), then sighted under GREEN by SG.
            let pinned = match (i, phase) {
                (0 | 1, 0) => Some(("report", "", "GREEN")),
                (0, 1) => Some(("false_positive", "TH", "GREEN")),
                (0, 2) => Some(("false_positive", "VN", "CLEAR")),
                (1, 1) => Some(("sighting", "SG", "GREEN")),
                _ => None,
            };
            let roll = rng.u8(..100);
            if phase > 0 && roll >= 90 && pinned.is_none() {
                continue;
            }
            n += 1;
            at += 1;
            if phase == 0 || (roll < 45 && pinned.is_none()) {
                let feed = ["industry", "member"][rng.usize(..2)];
                let (written, label) =
                    [("TLP:CLEAR", "CLEAR"), ("green", "GREEN"), ("TLP:AMBER", "AMBER"), ("TLP:RED", "RED")]
                        [rng.usize(..4)];
                let targets: Vec<&'static str> = ["MY", "PH"].into_iter().filter(|_| rng.u8(..4) == 0).collect();
                let confidence = rng.u8(30..=90);
                let (feed, written, label, targets, confidence) = match pinned {
                    Some(_) => ("industry", "green", "GREEN", vec![], 80),
                    None => (feed, written, label, targets, confidence),
                };
                let record = json!({"type": ind.0, "value": ind.1, "tlp": written, "confidence": confidence,
                    "tags": [format!("r{n}")], "target_countries": targets});
                let report = Report {
                    targets,
                    confidence: Some(confidence),
                    tags: vec![format!("r{n}")],
                    at,
                    ..Report::of(ind.0, &ind.1, ind.2, feed, label)
                };
                by_topic
                    .entry(d.feed_topic(feed).to_string())
                    .or_default()
                    .push((None, record.to_string().into_bytes()));
                let verdict = policy.report(report);
                *outcomes.entry(verdict.outcome).or_default() += 1;
                if let Some(reason) = verdict.reason {
                    *expected_withheld.entry((ind.1.clone(), reason.to_string())).or_default() += 1;
                }
                expected_records.extend(verdict.records);
                continue;
            }
            let by = ASEAN[rng.usize(..ASEAN.len())];
            let kind = match rng.u8(..20) {
                0..=10 => "sighting",
                11..=18 => "false_positive",
                _ => "expiration",
            };
            let written = (rng.u8(..5) != 0).then(|| LABELS[rng.usize(..LABELS.len())]);
            let form = match (kind, rng.u8(..10)) {
                ("expiration", _) | (_, 0..=2) => "misp",
                (_, 3..=6) => "stix",
                _ => "canonical",
            };
            let count = if form == "misp" { 1 } else { rng.u64(1..4) };
            let (by, kind, written, form, count) = match pinned {
                Some((kind, by, label)) => (by, kind, Some(label), "canonical", 1),
                None => (by, kind, written, form, count),
            };
            let topic = d.sightings_topic(by);
            if form == "canonical" {
                let mut record = json!({"kind": kind, "type": ind.0, "value": ind.1, "count": count});
                if let Some(label) = written {
                    record["tlp"] = label.into();
                }
                by_topic.entry(topic).or_default().push((None, record.to_string().into_bytes()));
            } else {
                let mut spec = json!({"form": form, "kind": kind, "type": ind.0, "value": ind.1, "label": written,
                    "count": count, "timestamp": 1_767_225_600 + at});
                if form == "stix"
                    && by == "PH"
                    && let Some(sent) = ph_stix.get(&ind.1)
                {
                    spec["indicator"] = sent.clone();
                }
                specs.push(spec);
                spec_topics.push(topic);
            }
            *sent_sightings.entry((by.to_lowercase(), kind)).or_default() += 1;
            let verdict = policy.sighting(Sighting {
                kind,
                by,
                label: written.unwrap_or("AMBER"),
                count,
                indicator_kind: ind.0,
                value: ind.1.clone(),
                at,
            });
            *outcomes.entry(verdict.outcome).or_default() += 1;
            if let Some(reason) = verdict.reason {
                *expected_withheld.entry((ind.1.clone(), reason.to_string())).or_default() += 1;
            }
            expected_records.extend(verdict.records);
        }
        for (record, topic) in made_by_the_libraries(&specs).into_iter().zip(spec_topics) {
            by_topic.entry(topic).or_default().push((None, record));
        }
        let batches: Vec<(&str, &[Record])> =
            by_topic.iter().map(|(topic, records)| (topic.as_str(), records.as_slice())).collect();
        produce_to_topics(&batches);
        d.wait_until_idle();
    }
    println!(
        "{n} reports and sightings in {:?}, outcomes {outcomes:?}, sightings {sent_sightings:?}",
        started.elapsed()
    );

    // Bad sightings: a STIX sighting without its indicator, a MISP sighting by uuid (both name
    // no indicator iocflow can place), an unknown kind, a record that is not JSON.
    let bad_specs = [
        json!({"form": "stix", "kind": "sighting", "type": "domain", "value": pool[0].1, "label": "GREEN", "count": 1,
            "timestamp": 1_767_225_600, "without_indicator": true}),
        json!({"form": "misp", "kind": "sighting", "type": "domain", "value": null, "label": null, "count": 1,
            "timestamp": 1_767_225_600, "uuid": "5b1e0000-0000-4000-8000-000000000001"}),
    ];
    let mut bad: Vec<Record> = made_by_the_libraries(&bad_specs).into_iter().map(|r| (None, r)).collect();
    bad.push((None, br#"{"kind":"seen-it","type":"domain","value":"x.example.sg"}"#.to_vec()));
    bad.push((None, b"{not json".to_vec()));
    produce(&d.sightings_topic("SG"), &bad);
    d.wait_until_idle();

    // Every CERT topic, record by record.
    let topics = CertTopics::read(&d, "PH");
    let want: Vec<(usize, View)> = expected_records.into_iter().map(|(k, v)| (k, untimed(v))).collect();
    assert_views_match(&topics.views, want, &ASEAN, seed);
    let got = by_cert_and_value(topics.views.iter().cloned());
    let records: Vec<&View> = got.values().flatten().collect();
    let sighted = records.iter().filter(|v| !v.sighted_by.is_empty()).count();
    let fp_revocations = records.iter().filter(|v| v.revocation_reason.is_some()).count();
    println!(
        "{} CERT records, {sighted} showing sightings, {fp_revocations} false-positive revocations",
        records.len()
    );
    assert!(sighted > 0 && fp_revocations > 0, "the stream exercises sightings and false-positive revocations");

    let mut withheld: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in read_to_end(&d.withheld_topic()) {
        let v = r.json();
        *withheld.entry((v["value"].as_str().unwrap().into(), v["reason"].as_str().unwrap().into())).or_default() += 1;
    }
    assert_eq!(withheld, expected_withheld);

    // The bad sightings, each dead-lettered with its reason under the CERT's sightings feed.
    // (The topic has two partitions: the order of its records is not fixed.)
    let mut dead: Vec<(String, String)> = read_to_end(&d.dlq_topic())
        .iter()
        .map(|r| (r.headers["iocflow.feed"].clone(), r.headers["iocflow.reason"].clone()))
        .collect();
    dead.sort();
    let of_sg = |reason: &str| ("sightings.sg".to_string(), reason.to_string());
    assert_eq!(
        dead,
        [of_sg("invalid_json"), of_sg("invalid_value"), of_sg("unknown_indicator"), of_sg("unknown_indicator")]
    );

    // The metrics count what the CERTs sent, and the false-positive revocations.
    let metrics = run.http_get("/metrics");
    let value = |series: &str| -> f64 {
        metrics.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
    };
    for ((cert, kind), count) in &sent_sightings {
        let series = format!("iocflow_sightings_received_total{{cert=\"{cert}\",kind=\"{kind}\"}} ");
        assert_eq!(value(&series), *count as f64, "{series}");
    }
    let revocations: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("iocflow_false_positive_revocations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(revocations, fp_revocations as f64);

    topics.validate();

    // `iocflow explain` agrees with every CERT topic: received or not, and what was last sent
    // (sources and sighting CERTs) for those that received it.
    let config = iocflow::config::Config::load(&d.config_path).unwrap();
    let explainer = Explainer::new(&config).unwrap();
    let mut answers = Vec::new();
    for (kind, value, _) in &pool {
        let query = Query::Value { kind: IndicatorType::parse(kind).unwrap(), value: value.clone() };
        let answer = serde_json::to_value(explainer.explain(&query, None).unwrap()).unwrap();
        for (k, cert) in answer["certs"].as_array().unwrap().iter().enumerate() {
            let sent = got.get(&(k, format!("{kind}:{value}")));
            assert_eq!(cert["verdict"] == "received", sent.is_some(), "{} {value}: {cert:#}", ASEAN[k]);
            if let Some(last) = sent.and_then(|views| views.last()) {
                let sources: Vec<&str> = last.sources.iter().map(|(f, _)| f.as_str()).collect();
                assert_eq!(cert["received"]["sources"], json!(sources), "{} {value}", ASEAN[k]);
                assert_eq!(cert["received"]["sighted_by"], json!(last.sighted_by), "{} {value}", ASEAN[k]);
            }
        }
        answers.push(answer.to_string());
    }
    let explained = d.dir.path().join("explain.jsonl");
    std::fs::write(&explained, answers.join("\n")).unwrap();
    validate("json", &[repo().join("schemas/explain.schema.json"), explained]);
    assert!(run.terminate().success());
}
