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

use harness::policy::{Cert, Filter, Policy, Report, View, assert_views_match, by_cert_and_value, untimed};
use harness::stream::TLDS;
use harness::*;
use iocflow::explain::{Explainer, Query};
use iocflow_model::IndicatorType;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

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

#[test]
fn every_cert_topic_and_the_withheld_topic_follow_the_policy() {
    let feeds = vec![
        TestFeed::new("industry", "CLEAR", 50, "json", ""),
        TestFeed::new("member", "CLEAR", 80, "json", ""),
        TestFeed::new("misp", "GREEN", 70, "misp", ""),
    ];
    // A warninglist of the documentation block, and benign indicators dropped: no pool indicator
    // is in it; one report of it comes last, for `explain` (below).
    let lists = tempfile::tempdir().unwrap();
    std::fs::write(lists.path().join("docs.json"), r#"{"name":"Documentation","type":"cidr","list":["192.0.2.0/24"]}"#)
        .unwrap();
    let tail = format!(
        "[[sharing_groups]]\nuuid = \"{GROUP}\"\nmembers = [\"{ORG_MY}\", \"{ORG_SG}\"]\n\
         [[sharing_groups]]\nuuid = \"{GROUP_OF_NOBODY}\"\nmembers = []\n\
         [enrich]\nbenign = \"drop\"\nwarninglists = [\"{}\"]\n",
        lists.path().display()
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
    // Per indicator value, per feed: the withheld reason of the feed's latest report (the state
    // keeps a feed's latest report only).
    let mut latest: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
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
            latest.entry(ind.1.clone()).or_default().insert(p.report.feed.clone(), verdict.reason.map(str::to_string));
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
    let topics = CertTopics::read(&d, "PH");
    let want: Vec<(usize, View)> = expected_records.into_iter().map(|(k, v)| (k, untimed(v))).collect();
    assert_views_match(&topics.views, want, &ASEAN, seed);
    let got = by_cert_and_value(topics.views.iter().cloned());
    let revocations = got.values().flatten().filter(|v| v.revoked).count();
    println!("{} CERT records, {revocations} revocations", got.values().map(Vec::len).sum::<usize>());
    assert!(revocations > 0 && !topics.stix_files.is_empty());
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
    topics.validate();

    // ---- `iocflow explain`, for every (indicator, CERT) pair, against what the topics hold.
    let benign = "192.0.2.7";
    let record = json!({"type": "ipv4", "value": benign, "tlp": "green", "target_countries": ["SG"]});
    produce(d.feed_topic("industry"), &[(None, record.to_string().into_bytes())]);
    d.wait_until_idle();
    latest.entry(benign.into()).or_default().insert("industry".into(), Some("benign".into()));
    let benign_withheld: Vec<String> = read_to_end(&d.withheld_topic())
        .iter()
        .map(|r| r.json())
        .filter(|v| v["value"] == benign)
        .map(|v| v["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(benign_withheld, ["benign"]);
    let stix_ids: BTreeMap<String, String> = read_to_end(d.cert_topic("PH"))
        .iter()
        .map(|r| r.json())
        .map(|v| (v["x_iocflow_id"].as_str().unwrap().to_string(), v["id"].as_str().unwrap().to_string()))
        .collect();
    let config = iocflow::config::Config::load(&d.config_path).unwrap();
    let explainer = Explainer::new(&config).unwrap();
    let mut asked: Vec<(&str, String)> = pool.iter().map(|(kind, value, _)| (*kind, value.clone())).collect();
    asked.push(("ipv4", benign.into()));
    let started = std::time::Instant::now();
    let mut checked = BTreeMap::<String, usize>::new();
    for (kind, value) in &asked {
        let query = Query::Value { kind: IndicatorType::parse(kind).unwrap(), value: value.clone() };
        let answer = serde_json::to_value(explainer.explain(&query, None).unwrap()).unwrap();
        assert_eq!(answer["indicator"]["value"], value.as_str());
        assert_eq!(answer["certs"].as_array().unwrap().len(), ASEAN.len());
        for (k, cert) in answer["certs"].as_array().unwrap().iter().enumerate() {
            let cc = ASEAN[k];
            assert_eq!(cert["country"], cc);
            let topic_has = got.contains_key(&(k, format!("{kind}:{value}")));
            let verdict = cert["verdict"].as_str().unwrap();
            assert_eq!(verdict == "received", topic_has, "{cc} {value}: explain says {verdict}:\n{cert:#}");
            *checked.entry(verdict.to_string()).or_default() += 1;
            if topic_has {
                let last = got[&(k, format!("{kind}:{value}"))].last().unwrap();
                let sources: Vec<&str> = last.sources.iter().map(|(f, _)| f.as_str()).collect();
                assert_eq!(cert["received"]["sources"], json!(sources), "{cc} {value}");
                assert_eq!(cert["received"]["revoked"], last.revoked, "{cc} {value}");
                if cc == "PH" {
                    let id = answer["indicator"]["id"].as_str().unwrap();
                    assert_eq!(cert["received"]["stix_id"].as_str(), stix_ids.get(id).map(String::as_str));
                }
                continue;
            }
            // Not received: every feed whose latest report was withheld is a reason, by the
            // withheld topic's own reason (no recipient: out of this CERT's view, or filtered).
            let reasons = cert["reasons"].as_array().unwrap();
            assert!(!reasons.is_empty(), "{cc} {value}: no reason given");
            let withheld = latest.get(value).into_iter().flatten();
            for (feed, reason) in withheld.filter_map(|(f, r)| Some((f, r.as_ref()?))) {
                let of_feed = |code: &str| reasons.iter().any(|r| r["code"] == code && r["feed"] == feed.as_str());
                let ok = match reason.as_str() {
                    // Visible in principle; for this CERT, out of its view or filtered out.
                    "no_recipient" => {
                        of_feed("not_implicated")
                            || of_feed("sharing_group")
                            || reasons.iter().any(|r| r["code"] == "filter")
                    }
                    "benign" => reasons.iter().any(|r| r["code"] == "benign"),
                    withheld => of_feed(withheld),
                };
                assert!(ok, "{cc} {value}: feed {feed}'s report was withheld as {reason}; explain says {reasons:#?}");
                *checked.entry(reason.clone()).or_default() += 1;
            }
        }
    }
    println!("explained {} indicators in {:?}: {checked:?}", asked.len(), started.elapsed());
    for reason in ["received", "not_received", "tlp_red", "unknown_label", "sharing_group", "no_recipient", "benign"] {
        assert!(checked.get(reason).is_some_and(|n| *n > 0), "the scenario exercises {reason}: {checked:?}");
    }
    let filtered = |cc: &str| {
        asked.iter().any(|(kind, value)| {
            let query = Query::Value { kind: IndicatorType::parse(kind).unwrap(), value: value.clone() };
            let only = iocflow_model::Country::parse(cc);
            let answer = serde_json::to_value(explainer.explain(&query, only).unwrap()).unwrap();
            answer["certs"][0]["reasons"].as_array().unwrap().iter().any(|r| r["code"] == "filter")
        })
    };
    assert!(filtered("MY") || filtered("TH"), "a filter reason among the filtered CERTs");

    // The command line: defanged and differently-cased input finds the same indicator; --id
    // finds it by its id; --json follows its schema; an unknown indicator has no state.
    let (kind, value) = (pool[0].0, pool[0].1.clone());
    let config_arg = d.config_path.to_str().unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["explain", "--config", config_arg];
        all.extend(args);
        let out = iocflow(&all);
        assert!(out.status.success(), "explain {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json_of = |args: &[&str]| -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&cli(&all)).unwrap()
    };
    let plain = json_of(&["--type", kind, "--value", &value]);
    let defanged = value.replace('.', "[.]").to_uppercase();
    let other = json_of(&["--type", "DOMAIN", "--value", &format!("  {defanged} ")]);
    assert_eq!(other["indicator"], plain["indicator"], "{defanged}");
    let by_id = json_of(&["--id", plain["indicator"]["id"].as_str().unwrap()]);
    assert_eq!(by_id["indicator"], plain["indicator"], "the changelog names the id's value");
    for answer in [&other, &by_id] {
        let verdicts = |a: &serde_json::Value| {
            a["certs"].as_array().unwrap().iter().map(|c| c["verdict"].clone()).collect::<Vec<_>>()
        };
        assert_eq!(verdicts(answer), verdicts(&plain));
    }
    let unknown = json_of(&["--type", "domain", "--value", "never-reported.example.sg"]);
    assert_eq!(unknown["state"]["status"], "never_seen");
    assert!(unknown["certs"].as_array().unwrap().iter().all(|c| c["reasons"][0]["code"] == "no_state"));
    let sg = json_of(&["--type", kind, "--value", &value, "--cert", "sg"]);
    assert_eq!(sg["certs"].as_array().unwrap().len(), 1);
    let text = cli(&["--type", kind, "--value", &value]);
    assert!(text.contains(&format!("indicator  domain {value}")) && text.contains("SG CERT SG"), "{text}");
    println!("{text}");
    let explained = d.dir.path().join("explain.jsonl");
    let lines: Vec<String> = [&plain, &other, &by_id, &unknown, &sg].iter().map(|v| v.to_string()).collect();
    std::fs::write(&explained, lines.join("\n")).unwrap();
    validate("json", &[repo().join("schemas/explain.schema.json"), explained]);
    assert!(run.terminate().success());
}
