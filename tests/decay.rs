//! Decay on a real broker, exactly-once, over four months of record time: reports from two
//! feeds and the CERTs' sightings, stamped week after week by their producers (Kafka timestamps
//! are iocflow's report times), with `[decay]` (domains 40 days, MD5 hashes 60 days at speed 1,
//! threshold 25). Every CERT topic must hold exactly what the policy model
//! (`tests/testkit/src/policy.rs`) says, record by record and with their times: scores,
//! `valid_until`, one expiry per lapsed view (revoked, `expired`), revivals by a later report or
//! visible sighting. iocflow is killed (SIGKILL) and started again halfway, so the second half's expiries
//! come from a due-queue rebuilt from the changelog. The expiry and revival metrics count what
//! the model sent; the records pass the record schema and the OASIS validator; `iocflow explain`
//! says which CERTs were last sent an expiry.
//!
//! Each indicator is reported or sighted at most once per week and iocflow catches up between
//! weeks. Every week also brings a RED report to each internal partition (withheld), so every
//! partition's clock reaches the week: a partition's clock moves only with its own reports.

use iocflow_testkit as harness;

use harness::policy::{Decay, Policy, Report, Sighting, View, assert_views_match, by_cert_and_value};
use harness::stream::{PoolIndicator, domains_and_hashes};
use harness::*;
use iocflow::explain::{Explainer, Query};
use iocflow_model::{IndicatorId, IndicatorType};
use serde_json::json;
use std::collections::BTreeMap;

const DAY: i64 = 86_400_000;
/// 2026-01-01, when the first week's reports were made.
const START: i64 = 1_767_225_600_000;
const WEEKS: i64 = 18;
const PARTITIONS: u32 = 4;

fn pool() -> Vec<PoolIndicator> {
    domains_and_hashes("d", 60, 15, 0xdeca_0000)
}

/// A SHA-256 value (no decay) in each internal partition: the weekly RED reports that move
/// every partition's clock.
fn ticks() -> Vec<String> {
    let mut by_partition: BTreeMap<u32, String> = BTreeMap::new();
    for i in 0u128.. {
        let value = format!("{i:064x}");
        by_partition.entry(IndicatorId::of(IndicatorType::Sha256, &value).partition(PARTITIONS)).or_insert(value);
        if by_partition.len() == PARTITIONS as usize {
            break;
        }
    }
    by_partition.into_values().collect()
}

#[test]
fn views_decay_expire_once_and_revive_by_record_time() {
    let feeds =
        vec![TestFeed::new("industry", "CLEAR", 50, "json", ""), TestFeed::new("member", "CLEAR", 80, "json", "")];
    // Nothing is forgotten for its age over the test's months: the model keeps everything.
    let tail = "[dedupe]\nttl_hours = 87600\n[decay]\nthreshold = 25\n[decay.types.domain]\nlifetime_days = 40\n\
                [decay.types.md5]\nlifetime_days = 60\nspeed = 1\n";
    let d = Deployment::with_policy("decay", feeds, "delivery = \"exactly-once\"", feedback_cert_lines, tail);
    d.create_topics();
    // Records stamped months ago would fall to the input topics' retention (the other entries as
    // `topics --create` made them: AlterConfigs sets a topic's whole configuration).
    let inputs: Vec<String> = ["industry", "member"]
        .iter()
        .map(|f| d.feed_topic(f).to_string())
        .chain(ASEAN.iter().map(|cc| d.sightings_topic(cc)))
        .collect();
    for topic in &inputs {
        alter_topic_configs(
            topic,
            &[("cleanup.policy", "delete"), ("retention.ms", "-1"), ("max.message.bytes", "4259840")],
        );
    }
    let seed = std::env::var("IOCFLOW_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("IOCFLOW_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let pool = pool();
    let ticks = ticks();
    let mut policy = Policy::new(feedback_certs(), 87_600 * 3_600_000);
    policy.decay =
        Some(Decay { threshold: 25.0, curves: [("domain", (40.0, 0.3)), ("md5", (60.0, 1.0))].into_iter().collect() });
    let mut expected = Vec::new();
    let mut run = Some(d.start());
    let mut n = 0;
    // The model's expiry and revival counts when the second run started (its metrics start at 0).
    let mut counted_from = (BTreeMap::new(), BTreeMap::new());
    for week in 0..WEEKS {
        let at = START + week * 7 * DAY;
        let mut by_topic: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        for value in &ticks {
            let record = json!({"type": "sha256", "value": value, "tlp": "RED"});
            by_topic.entry(d.feed_topic("industry").to_string()).or_default().push((None, record.to_string().into()));
            let verdict = policy.report(Report { at, ..Report::of("sha256", value, None, "industry", "RED") });
            expected.extend(verdict.records);
        }
        for ind in &pool {
            // Reports thin out after the first weeks, so views lapse; some come back.
            let roll = rng.u8(..100);
            let report_below = if week < 3 { 60 } else { 18 };
            if roll < report_below {
                n += 1;
                let feed = ["industry", "member"][rng.usize(..2)];
                let (written, label) =
                    [("TLP:CLEAR", "CLEAR"), ("green", "GREEN"), ("TLP:AMBER", "AMBER")][rng.usize(..3)];
                // Some below the threshold: such a view expires as it is seen.
                let confidence = rng.u8(15..=95);
                let record = json!({"type": ind.0, "value": ind.1, "tlp": written, "confidence": confidence,
                    "tags": [format!("r{n}")]});
                by_topic.entry(d.feed_topic(feed).to_string()).or_default().push((None, record.to_string().into()));
                let report = Report {
                    confidence: Some(confidence),
                    tags: vec![format!("r{n}")],
                    at,
                    ..Report::of(ind.0, &ind.1, ind.2, feed, label)
                };
                expected.extend(policy.report(report).records);
            } else if roll < report_below + 8 && week > 0 {
                // A CERT's sighting: a seen one refreshes the views it counts in.
                let by = ASEAN[rng.usize(..ASEAN.len())];
                let kind = if rng.u8(..5) == 0 { "false_positive" } else { "sighting" };
                let label = ["CLEAR", "GREEN", "AMBER"][rng.usize(..3)];
                let record = json!({"kind": kind, "type": ind.0, "value": ind.1, "count": 1, "tlp": label});
                by_topic.entry(d.sightings_topic(by)).or_default().push((None, record.to_string().into()));
                let sighting = Sighting { kind, by, label, count: 1, indicator_kind: ind.0, value: ind.1.clone(), at };
                expected.extend(policy.sighting(sighting).records);
            }
        }
        let batches: Vec<(&str, &[Record])> =
            by_topic.iter().map(|(topic, records)| (topic.as_str(), records.as_slice())).collect();
        produce_to_topics_at(&batches, at);
        d.wait_until_idle();
        // Every partition's clock is at this week now, and iocflow has looked for what is due.
        expected.extend(policy.sweep());
        if week == WEEKS / 2 {
            run.take().unwrap().kill();
            counted_from = (policy.expiries.clone(), policy.revivals.clone());
            run = Some(d.start());
        }
    }

    let topics = CertTopics::read_timed(&d, "PH");
    assert_views_match(&topics.views, expected, &ASEAN, seed);
    let views: Vec<&View> = topics.views.iter().map(|(_, v)| v).collect();
    let expiries = views.iter().filter(|v| v.expired).count();
    let scored = views.iter().filter(|v| v.score.is_some()).count();
    let revivals: u64 = policy.revivals.values().sum();
    println!("{n} reports, {} CERT records, {expiries} expiries, {revivals} revivals", views.len());
    assert!(scored == views.len(), "every record has a score with [decay]");
    assert!(expiries >= 10 && revivals >= 3, "the stream exercises expiries ({expiries}) and revivals ({revivals})");
    assert!(
        views.iter().all(|v| v.expired == (v.revoked && v.revocation_reason.is_none() && v.valid_until.is_some())),
        "an expiry is a revocation with expired: true, and nothing else revokes here"
    );

    // The metrics of the second run count its expiries and revivals, per CERT, as the model did.
    let run = run.unwrap();
    let metrics = run.http_get("/metrics");
    let value = |series: &str| -> u64 {
        metrics.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
    };
    for (name, now, then) in [
        ("iocflow_expiries_total", &policy.expiries, &counted_from.0),
        ("iocflow_revivals_total", &policy.revivals, &counted_from.1),
    ] {
        for (k, cc) in ASEAN.iter().enumerate() {
            let want = now.get(&k).copied().unwrap_or(0) - then.get(&k).copied().unwrap_or(0);
            assert_eq!(value(&format!("{name}{{cert=\"{}\"}} ", cc.to_lowercase())), want, "{name} of {cc}");
        }
    }
    topics.validate();

    // `iocflow explain` tells which CERTs were last sent an expiry, and the score of their views.
    let config = iocflow::config::Config::load(&d.config_path).unwrap();
    let explainer = Explainer::new(&config).unwrap();
    let got = by_cert_and_value(topics.views.iter().cloned());
    let mut answers = Vec::new();
    for (kind, value, _) in &pool {
        let query = Query::Value { kind: IndicatorType::parse(kind).unwrap(), value: value.clone() };
        let answer = serde_json::to_value(explainer.explain(&query, None).unwrap()).unwrap();
        for (k, cert) in answer["certs"].as_array().unwrap().iter().enumerate() {
            let last = got.get(&(k, format!("{kind}:{value}"))).and_then(|views| views.last());
            assert_eq!(cert["verdict"] == "received", last.is_some(), "{} {value}: {cert:#}", ASEAN[k]);
            if let Some(last) = last {
                assert_eq!(cert["received"]["expired"] == true, last.expired, "{} {value}: {cert:#}", ASEAN[k]);
                // (a CERT whose view is empty now, its reports relabelled, has no score)
                let empty = cert["received"]["why"].as_str().unwrap().starts_with("nothing is in its view");
                assert!(cert["received"]["score"].is_number() != empty, "{} {value}: {cert:#}", ASEAN[k]);
            }
        }
        answers.push(answer.to_string());
    }
    let explained = d.dir.path().join("explain.jsonl");
    std::fs::write(&explained, answers.join("\n")).unwrap();
    validate("json", &[repo().join("schemas/explain.schema.json"), explained]);
    assert!(run.terminate().success());
}
