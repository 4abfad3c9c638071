//! Routing under TLP on a real broker, exactly-once: canonical JSON and MISP feeds with mixed
//! labels, MISP distributions (0, 1, 3, 4 with a known and an unknown sharing group, 5), a RED
//! report of an indicator that is GREEN elsewhere, revocations, a regional subscriber, two
//! filtered CERTs and one taking STIX 2.1 — and every CERT topic and the withheld topic must hold
//! exactly what the policy model (`tests/testkit/src/policy.rs`) says, record by record.
//!
//! The stream is produced in phases with each indicator at most once per phase, and iocflow
//! catches up between phases, so the order of one indicator's reports is fixed and the model's
//! sequence of records per CERT and indicator is exact. Then the output is validated as a CERT
//! would: JSON records against `schemas/cert-record.schema.json`, STIX records with the OASIS
//! validator in strict mode (`dev/python`).

use iocflow_testkit as harness;

use harness::policy::{Cert, Filter, Policy, Report, View, by_cert_and_value, view_from_record};
use harness::stream::TLDS;
use harness::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const GROUP: &str = "5a1e0000-0000-4000-8000-0000000000a1";
const GROUP_OF_NOBODY: &str = "5a1e0000-0000-4000-8000-0000000000ff";
const ORG_MY: &str = "b0e2c1d4-0000-4000-8000-00000000004d";
const ORG_SG: &str = "b0e2c1d4-0000-4000-8000-000000000053";

/// The CERTs as the model sees them: SG regional and in the sharing group, MY in the group with
/// a confidence filter, TH with a tag filter, PH taking STIX.
fn certs() -> Vec<Cert> {
    ASEAN
        .iter()
        .map(|cc| Cert {
            country: cc,
            regional: *cc == "SG",
            groups: if ["SG", "MY"].contains(cc) { BTreeSet::from([GROUP.to_string()]) } else { BTreeSet::new() },
            filter: match *cc {
                "MY" => Some(Filter::MinConfidence(60)),
                "TH" => Some(Filter::Tag("hot")),
                _ => None,
            },
        })
        .collect()
}

fn cert_lines(cc: &str) -> String {
    let cert = certs().into_iter().find(|c| c.country == cc).unwrap();
    let mut lines = format!("regional = {}\n", cert.regional);
    if let Some(f) = cert.filter {
        lines += &format!("filter = \"{}\"\n", f.sql());
    }
    match cc {
        "MY" => lines += &format!("misp_org_uuid = \"{ORG_MY}\"\n"),
        "SG" => lines += &format!("misp_org_uuid = \"{ORG_SG}\"\n"),
        "PH" => lines += "format = \"stix\"\n",
        _ => {}
    }
    lines
}

/// Feed records (key, payload) to produce to one topic.
type Records = Vec<(Option<String>, Vec<u8>)>;

/// One report to produce: the model's view of it and the feed record that carries it.
struct Produced {
    report: Report,
    record: Vec<u8>,
}

const LABELS: [(&str, &str); 6] = [
    ("TLP:CLEAR", "CLEAR"),
    ("green", "GREEN"),
    ("TLP:AMBER", "AMBER"),
    ("TLP:RED", "RED"),
    ("amber+strict", "AMBER+STRICT"),
    ("TLP:PURPLE", "UNKNOWN"),
];

fn stricter(a: &'static str, b: &'static str) -> &'static str {
    let rank = |l| harness::policy::LABELS.iter().position(|x| *x == l).unwrap();
    if rank(a) >= rank(b) { a } else { b }
}

/// A canonical JSON report (feed default CLEAR, so the label is the record's own).
fn json_report(
    rng: &mut fastrand::Rng,
    feed: &str,
    ind: &(&'static str, String, Option<&'static str>),
    revoked: bool,
    n: usize,
) -> Produced {
    let (written, label) = LABELS[rng.usize(..LABELS.len())];
    let confidence = rng.u8(30..=95);
    let mut tags = vec![format!("r{n}")];
    if rng.u8(..3) == 0 {
        tags.push("hot".into());
    }
    let targets: Vec<&'static str> = ["PH", "MY", "US"].into_iter().filter(|_| rng.u8(..5) == 0).collect();
    let threat = format!("threat-{n}");
    let record = json!({"type": ind.0, "value": ind.1, "tlp": written, "confidence": confidence, "tags": tags,
        "threat": threat, "target_countries": targets, "revoked": revoked});
    let report = Report {
        targets,
        confidence: Some(confidence),
        tags,
        threat: Some(threat),
        revoked,
        ..Report::of(ind.0, &ind.1, ind.2, feed, label)
    };
    Produced { report, record: record.to_string().into_bytes() }
}

/// A MISP event with one attribute (feed default GREEN, confidence 70): event TLP tag, event and
/// attribute distribution, sharing groups; `to_ids: false` revokes.
fn misp_report(
    rng: &mut fastrand::Rng,
    ind: &(&'static str, String, Option<&'static str>),
    revoked: bool,
    n: usize,
) -> Produced {
    let (event_tag, event_label) =
        [("tlp:clear", "CLEAR"), ("tlp:green", "GREEN"), ("tlp:amber", "AMBER"), ("tlp:red", "RED")][rng.usize(..4)];
    let event_distribution = rng.u8(..4);
    let (attr_distribution, group) = match rng.u8(..6) {
        0 => (Some(0), None),
        1 => (Some(1), None),
        2 => (Some(4), Some(GROUP)),
        3 => (Some(4), Some(GROUP_OF_NOBODY)),
        4 => (Some(5), None),
        _ => (None, None),
    };
    let distribution = match attr_distribution {
        Some(5) | None => event_distribution,
        Some(d) => d,
    };
    let mut label = stricter("GREEN", event_label);
    if distribution == 0 {
        label = stricter(label, "AMBER+STRICT");
    }
    let hot = rng.u8(..3) == 0;
    let mut attribute = json!({"type": if ind.0 == "md5" { "md5" } else { "domain" }, "value": ind.1, "to_ids": !revoked,
        "category": "Network activity", "Tag": [{"name": format!("r{n}")}]});
    if hot {
        attribute["Tag"].as_array_mut().unwrap().push(json!({"name": "hot"}));
    }
    if let Some(d) = attr_distribution {
        attribute["distribution"] = json!(d.to_string());
    }
    if let Some(g) = group {
        attribute["SharingGroup"] = json!({"uuid": g.to_uppercase(), "name": "test group"});
    }
    let event = json!({"Event": {"info": format!("event {n}"), "date": "2026-11-01",
        "distribution": event_distribution.to_string(), "Tag": [{"name": event_tag}], "Attribute": [attribute]}});
    let mut tags = vec![format!("r{n}")];
    if hot {
        tags.push("hot".into());
    }
    tags.push("Network activity".into());
    let report = Report {
        sharing_group: (distribution == 4).then(|| group.unwrap_or("unknown").to_string()),
        confidence: Some(70),
        tags,
        revoked,
        ..Report::of(ind.0, &ind.1, ind.2, "misp", label)
    };
    Produced { report, record: event.to_string().into_bytes() }
}

fn pool() -> Vec<(&'static str, String, Option<&'static str>)> {
    let mut pool: Vec<_> = (0..140)
        .map(|i| ("domain", format!("n{i}.example.{}", TLDS[i % TLDS.len()].0), TLDS[i % TLDS.len()].1))
        .collect();
    pool.extend((0..20).map(|i| ("md5", format!("{:032x}", 0xfeed_0000_u128 + i), None)));
    pool
}

/// Masks what the model cannot know on a broker: report times are Kafka timestamps.
fn untimed(mut v: View) -> View {
    v.first_seen = 0;
    v.last_seen = 0;
    v
}

fn validate(mode: &str, args: &[std::path::PathBuf]) {
    let venv = Command::new(repo().join("dev/python/venv")).output().expect("dev/python/venv");
    assert!(venv.status.success(), "dev/python/venv: {}", String::from_utf8_lossy(&venv.stderr));
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_string();
    let out =
        Command::new(python).arg(repo().join("dev/python/validate_records.py")).arg(mode).args(args).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{mode}: {}", report.lines().last().unwrap_or_default());
    assert!(out.status.success(), "{mode} validation failed:\n{report}{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_cert_topic_and_the_withheld_topic_follow_the_policy() {
    let feeds = vec![
        TestFeed::new("industry", "CLEAR", 50, "json", ""),
        TestFeed::new("member", "CLEAR", 80, "json", ""),
        TestFeed::new("misp", "GREEN", 70, "misp", ""),
    ];
    let tail = format!(
        "[[sharing_groups]]\nuuid = \"{GROUP}\"\nmembers = [\"{ORG_MY}\", \"{ORG_SG}\"]\n\
         [[sharing_groups]]\nuuid = \"{GROUP_OF_NOBODY}\"\nmembers = []\n"
    );
    let d = Deployment::with_policy("routing", feeds, "delivery = \"exactly-once\"", cert_lines, &tail);
    d.create_topics();
    let seed = std::env::var("IOCFLOW_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("IOCFLOW_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let pool = pool();
    let mut policy = Policy::new(certs(), 7 * 24 * 3_600_000);
    let mut expected_records = Vec::new();
    let mut expected_withheld: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let run = d.start();
    let mut n = 0;
    let mut at = 0;
    for phase in 0..5 {
        let mut batch: BTreeMap<String, Records> = BTreeMap::new();
        for (i, ind) in pool.iter().enumerate() {
            // The pinned case: GREEN from industry, then RED from member, then GREEN again.
            let p = if i == 0 {
                let tlp = ["green", "TLP:RED", "green", "green", "green"][phase];
                let feed = ["industry", "member", "industry", "industry", "industry"][phase];
                let record = json!({"type": "domain", "value": ind.1, "tlp": tlp, "tags": [format!("r{n}")]});
                let label = if tlp == "TLP:RED" { "RED" } else { "GREEN" };
                let report = Report {
                    confidence: Some(if feed == "industry" { 50 } else { 80 }),
                    tags: vec![format!("r{n}")],
                    ..Report::of("domain", &ind.1, ind.2, feed, label)
                };
                Some(Produced { report, record: record.to_string().into_bytes() })
            } else if rng.u8(..4) != 0 {
                let feed = ["industry", "member", "misp"][rng.usize(..3)];
                // Later phases revoke what a feed reported before, one feed at a time.
                let revoked = phase >= 3 && reported.get(&ind.1).is_some_and(|f| f.contains(feed)) && rng.bool();
                Some(match feed {
                    "misp" => misp_report(&mut rng, ind, revoked, n),
                    _ => json_report(&mut rng, feed, ind, revoked, n),
                })
            } else {
                None
            };
            let Some(mut p) = p else { continue };
            n += 1;
            at += 1;
            p.report.at = at;
            reported.entry(ind.1.clone()).or_default().insert(p.report.feed.clone());
            batch.entry(p.report.feed.clone()).or_default().push((None, p.record));
            let verdict = policy.report(p.report.clone());
            *outcomes.entry(verdict.outcome).or_default() += 1;
            if let Some(reason) = verdict.reason {
                *expected_withheld.entry((ind.1.clone(), reason.to_string())).or_default() += 1;
            }
            expected_records.extend(verdict.records);
        }
        for (feed, records) in &batch {
            produce(d.feed_topic(feed), records);
        }
        d.wait_until_idle();
    }
    println!("{n} reports, outcomes {outcomes:?}");
    for outcome in ["emitted", "suppressed", "withheld", "unrouted"] {
        assert!(outcomes.get(outcome).copied().unwrap_or(0) > 0, "the stream exercises {outcome}: {outcomes:?}");
    }

    // Every CERT topic, record by record, and where each record went.
    let mut got = Vec::new();
    let (mut json_files, mut stix_files) = (Vec::new(), Vec::new());
    for (k, (cc, topic)) in d.certs.iter().enumerate() {
        let records = read_to_end(topic);
        let path = d.dir.path().join(format!("{cc}.jsonl"));
        let lines: Vec<String> = records.iter().map(|r| r.json().to_string()).collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        for r in &records {
            let v = r.json();
            let id = if cc == "PH" { v["x_iocflow_id"].as_str() } else { v["id"].as_str() };
            assert_eq!(r.key.as_deref(), id, "{cc}: the key is the indicator id");
            got.push((k, untimed(view_from_record(&v))));
        }
        if !records.is_empty() {
            if cc == "PH" { stix_files.push(path) } else { json_files.push(path) }
        }
    }
    let want = by_cert_and_value(expected_records.into_iter().map(|(k, v)| (k, untimed(v))));
    let got = by_cert_and_value(got);
    let keys: BTreeSet<_> = got.keys().chain(want.keys()).collect();
    let wrong: Vec<_> = keys.into_iter().filter(|k| got.get(k) != want.get(k)).collect();
    for key in wrong.iter().take(3) {
        eprintln!("CERT {} {}:\n  got  {:?}\n  want {:?}", ASEAN[key.0], key.1, got.get(key), want.get(key));
    }
    assert!(wrong.is_empty(), "{} (CERT, indicator) sequences differ (IOCFLOW_SEED={seed})", wrong.len());
    let revocations = got.values().flatten().filter(|v| v.revoked).count();
    println!("{} CERT records, {revocations} revocations", got.values().map(Vec::len).sum::<usize>());
    assert!(revocations > 0 && !stix_files.is_empty());
    // The pinned indicator: SG saw it from industry only; the RED report changed nothing.
    let pinned = &got[&(7, format!("domain:{}", pool[0].1))];
    assert!(pinned.iter().all(|v| v.sources.iter().all(|(f, _)| f == "industry") && v.tlp == "GREEN"));

    // The withheld topic, exactly: (indicator, reason) with multiplicity.
    let mut withheld: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in read_to_end(&d.withheld_topic()) {
        let v = r.json();
        *withheld.entry((v["value"].as_str().unwrap().into(), v["reason"].as_str().unwrap().into())).or_default() += 1;
    }
    assert_eq!(withheld, expected_withheld);
    let reasons: BTreeSet<&str> = withheld.keys().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["no_recipient", "sharing_group", "tlp_amber_strict", "tlp_red", "unknown_label"])
    );

    // As a CERT's tooling would read them.
    let mut json_args = vec![repo().join("schemas/cert-record.schema.json")];
    json_args.extend(json_files);
    validate("json", &json_args);
    validate("stix", &stix_files);
    assert!(run.terminate().success());
}
