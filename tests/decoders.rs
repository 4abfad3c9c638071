//! Every feed format end to end on a real broker: a mixed stream of good and bad records in
//! each format. Every record yields at least one indicator or exactly one dead letter; every
//! indicator ends in exactly one counted outcome; every CERT topic and the withheld topic hold
//! exactly what the reference model says.

use iocflow_testkit as harness;

use harness::reference::*;
use harness::*;
use std::collections::{BTreeMap, BTreeSet};

/// What one record must yield.
struct Case {
    feed: &'static str,
    record: Vec<u8>,
    /// (type, canonical value, infrastructure country, effective label, targets, revoked, sharing group)
    yields: Vec<Sent>,
    dead_letter: Option<&'static str>,
}

fn ind(kind: &'static str, canonical: &str, country: Option<&'static str>) -> Ind {
    Ind { kind, raw: canonical.into(), canonical: canonical.into(), country }
}

fn sent(feed: &'static str, i: Ind, label: &'static str) -> Sent {
    Sent { ind: i, feed, label, targets: vec![], revoked: false, sharing_group: false, json: String::new() }
}

fn case(feed: &'static str, record: &str, yields: Vec<Sent>, dead_letter: Option<&'static str>) -> Case {
    Case { feed, record: record.as_bytes().to_vec(), yields, dead_letter }
}

fn feeds() -> Vec<TestFeed> {
    vec![
        TestFeed::new("canon", "GREEN", 60, "json", ""),
        TestFeed::new(
            "feodo",
            "CLEAR",
            90,
            "json",
            "value = \"/ip_address\"\ntype = \"ipv4\"\nfirst_seen = \"/first_seen\"\nlast_seen = \"/last_online\"\n\
             threat_value = \"c2-server\"\ntags = [\"/malware\"]",
        ),
        TestFeed::new("intelmq", "GREEN", 70, "intelmq", ""),
        TestFeed::new("stix", "CLEAR", 80, "stix2", ""),
        TestFeed::new("misp", "CLEAR", 75, "misp", ""),
        TestFeed::new("urlhaus", "CLEAR", 80, "csv", "value = 2\ntype = \"url\"\nfirst_seen = 1\nthreat = 5\ntags = 6"),
        TestFeed::new(
            "drop",
            "CLEAR",
            90,
            "csv",
            "delimiter = \";\"\ncomment = \";\"\nvalue = 0\nthreat_value = \"spam\"",
        ),
        TestFeed::new("blocklist", "CLEAR", 50, "lines", ""),
        TestFeed::new("advisory", "AMBER", 70, "text", ""),
    ]
}

fn cases() -> Vec<Case> {
    let green_2 = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
    let amber_strict_2 = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003";
    let stix = |id: u32, pattern: &str, marking: &str| {
        format!(
            r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-{id:012}","created":"2024-05-01T10:00:00.000Z","modified":"2024-05-01T10:00:00.000Z","pattern":"{pattern}","pattern_type":"stix","valid_from":"2024-05-01T10:00:00Z","object_marking_refs":["{marking}"]}}"#
        )
    };
    let mut targeted = sent("intelmq", ind("ipv4", "1.46.1.20", Some("TH")), "GREEN");
    targeted.targets = vec!["TH"];
    let mut revoked = sent("misp", ind("ipv4", "112.198.1.40", Some("PH")), "GREEN");
    revoked.revoked = true;
    let mut shared = sent("misp", ind("domain", "shared.example.sg", Some("SG")), "GREEN");
    shared.sharing_group = true;
    vec![
        case(
            "canon",
            r#"[{"type":"domain","value":"Bank-Alert.example[.]SG"},{"type":"ipv4","value":"175.139.1.10","tlp":"amber"},{"type":"ipv4","value":"203.116.1.50"}]"#,
            vec![
                sent("canon", ind("domain", "bank-alert.example.sg", Some("SG")), "GREEN"),
                sent("canon", ind("ipv4", "175.139.1.10", Some("MY")), "AMBER"),
                sent("canon", ind("ipv4", "203.116.1.50", Some("SG")), "GREEN"),
            ],
            None,
        ),
        case("canon", r#"{"type":"ipv4","value":"175.139.1.999"}"#, vec![], Some("invalid_value")),
        case(
            "canon",
            "{\"type\":\"domain\",\"value\":\"ok.example.th\"}\n{broken",
            vec![sent("canon", ind("domain", "ok.example.th", Some("TH")), "GREEN")],
            Some("invalid_json"),
        ),
        case(
            "feodo",
            r#"[{"ip_address":"203.116.1.50","first_seen":"2024-05-01 10:00:00","last_online":"2024-05-02","malware":"Dridex"},{"ip_address":"14.160.1.9","malware":"QakBot"}]"#,
            vec![
                sent("feodo", ind("ipv4", "203.116.1.50", Some("SG")), "CLEAR"),
                sent("feodo", ind("ipv4", "14.160.1.9", Some("VN")), "CLEAR"),
            ],
            None,
        ),
        case("feodo", r#"[{"port":443}]"#, vec![], Some("missing_field")),
        case(
            "intelmq",
            "{\"source.ip\":\"1.46.1.20\",\"classification.type\":\"scanner\",\"source.geolocation.cc\":\"TH\"}\n\
             {\"source.url\":\"http://login.example.ph/x\",\"source.fqdn\":\"login.example.ph\",\"classification.type\":\"phishing\",\"tlp\":\"RED\"}",
            vec![
                targeted,
                sent("intelmq", ind("url", "http://login.example.ph/x", Some("PH")), "RED"),
                sent("intelmq", ind("domain", "login.example.ph", Some("PH")), "RED"),
            ],
            None,
        ),
        case("intelmq", r#"{"classification.type":"scanner"}"#, vec![], Some("missing_field")),
        case(
            "stix",
            &format!(
                r#"{{"type":"bundle","id":"bundle--1","objects":[{},{},{}]}}"#,
                stix(1, "[domain-name:value = 'c2.example.id' OR ipv4-addr:value = '36.64.1.7']", green_2),
                stix(2, "[url:value = 'http://203.116.1.60/x']", amber_strict_2),
                stix(
                    3,
                    "[domain-name:value = 'secret.example.my']",
                    "marking-definition--12345678-0000-4000-8000-000000000000"
                ),
            ),
            vec![
                sent("stix", ind("domain", "c2.example.id", Some("ID")), "GREEN"),
                sent("stix", ind("ipv4", "36.64.1.7", Some("ID")), "GREEN"),
                sent("stix", ind("url", "http://203.116.1.60/x", Some("SG")), "AMBER+STRICT"),
                sent("stix", ind("domain", "secret.example.my", Some("MY")), "RED"),
            ],
            None,
        ),
        case(
            "stix",
            &stix(4, "[ipv4-addr:value = '36.64.1.8' AND domain-name:value = 'x.example.id']", green_2),
            vec![],
            Some("unsupported_pattern"),
        ),
        Case {
            feed: "stix",
            record: vec![0x00, 0x9f, 0x92, 0x96, 0xff, 0x00],
            yields: vec![],
            dead_letter: Some("invalid_utf8"),
        },
        case(
            "misp",
            r#"{"Event":{"info":"campaign","distribution":"3","Tag":[{"name":"tlp:green"}],"Attribute":[
                {"type":"domain","value":"phish.example.vn","to_ids":true},
                {"type":"ip-dst","value":"112.198.1.40","to_ids":false},
                {"type":"hostname","value":"shared.example.sg","to_ids":true,"distribution":"4","SharingGroup":{"uuid":"5a1e0000-0000-4000-8000-0000000000aa"}},
                {"type":"md5","value":"d41d8cd98f00b204e9800998ecf8427e","to_ids":true,"distribution":"0"},
                {"type":"comment","value":"context only"}]}}"#,
            vec![
                sent("misp", ind("domain", "phish.example.vn", Some("VN")), "GREEN"),
                revoked,
                shared,
                sent("misp", ind("md5", "d41d8cd98f00b204e9800998ecf8427e", None), "AMBER+STRICT"),
            ],
            None,
        ),
        case("misp", r#"{"Event":{"Attribute":[{"type":"comment","value":"x"}]}}"#, vec![], Some("empty")),
        case(
            "urlhaus",
            "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
             \"1\",\"2024-05-01 10:00:00\",\"http://203.116.1.70/bins/a.arm7\",\"online\",\"\",\"malware_download\",\"elf,mirai\",\"x\",\"r\"\n\
             \"2\",\"2024-05-01 11:00:00\",\"http://badsite.example.kh/dl\",\"online\",\"\",\"malware_download\",\"\",\"x\",\"r\"\n",
            vec![
                sent("urlhaus", ind("url", "http://203.116.1.70/bins/a.arm7", Some("SG")), "CLEAR"),
                sent("urlhaus", ind("url", "http://badsite.example.kh/dl", Some("KH")), "CLEAR"),
            ],
            None,
        ),
        case("urlhaus", "\"3\",\"2024-05-01\",\"\",\"offline\"\n", vec![], Some("missing_field")),
        case(
            "drop",
            "; Spamhaus DROP\n175.139.1.0/24 ; SBL1\n10.0.0.0/8 ; SBL2\n",
            vec![
                sent("drop", ind("cidr", "175.139.1.0/24", Some("MY")), "CLEAR"),
                sent("drop", ind("cidr", "10.0.0.0/8", None), "CLEAR"),
            ],
            None,
        ),
        case(
            "blocklist",
            "# blocklist\n14.160.1.77\n14.160.1.77\nnot-an-ip\n",
            vec![
                sent("blocklist", ind("ipv4", "14.160.1.77", Some("VN")), "CLEAR"),
                sent("blocklist", ind("ipv4", "14.160.1.77", Some("VN")), "CLEAR"),
            ],
            Some("invalid_value"),
        ),
        case(
            "advisory",
            "Campaign: hxxp://update-portal[.]example[.]la/a.exe from 115.84.64.5 and mail ops[@]example[.]mm; payload setup.exe",
            vec![
                sent("advisory", ind("url", "http://update-portal.example.la/a.exe", Some("LA")), "AMBER"),
                sent("advisory", ind("email", "ops@example.mm", Some("MM")), "AMBER"),
                sent("advisory", ind("ipv4", "115.84.64.5", Some("LA")), "AMBER"),
            ],
            None,
        ),
        case("advisory", "Nothing to report this week.", vec![], Some("empty")),
    ]
}

#[test]
fn a_mixed_stream_in_every_format_ends_exactly_where_the_rules_say() {
    let d = Deployment::with_feeds("formats", feeds(), "");
    d.create_topics();
    let cases = cases();
    let formats: BTreeSet<String> = d.feeds.iter().map(|f| f.format.clone()).collect();
    assert_eq!(formats.len(), 7, "every format: {formats:?}");

    // Produce each record alone, remembering where it landed.
    let mut origin: BTreeMap<(String, i32, i64), usize> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        let topic = d.feed_topic(c.feed).to_string();
        let at = produce_at(&topic, &[(None, c.record.clone())]);
        origin.insert((topic, at[0].0, at[0].1), i);
    }
    let run = d.start();
    d.wait_until_idle();

    // Every record: at least one indicator, or exactly one dead letter (with the right reason).
    let mut dead: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for r in read_to_end(&d.dlq_topic()) {
        let key = (
            r.headers["iocflow.origin.topic"].clone(),
            r.headers["iocflow.origin.partition"].parse::<i32>().unwrap(),
            r.headers["iocflow.origin.offset"].parse::<i64>().unwrap(),
        );
        dead.entry(origin[&key]).or_default().push(r.headers["iocflow.reason"].clone());
    }
    for (i, c) in cases.iter().enumerate() {
        let got = dead.get(&i).cloned().unwrap_or_default();
        let want: Vec<String> = c.dead_letter.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "dead letters of case {i} ({})", c.feed);
        assert!(!c.yields.is_empty() || got.len() == 1, "case {i} yields nothing and no dead letter");
    }

    // Every CERT topic and the withheld topic, exactly.
    let sent: Vec<Sent> = cases.iter().flat_map(|c| c.yields.iter().cloned()).collect();
    let expected = reference(&sent);
    assert_cert_topics(&d, &expected);
    assert_withheld(&d, &expected);
    let reasons: BTreeSet<&str> = expected.withheld.keys().map(|k| k.1).collect();
    assert_eq!(reasons, BTreeSet::from(["no_recipient", "sharing_group", "tlp_amber_strict", "tlp_red"]));

    // Every indicator ends in exactly one counted outcome.
    let metrics = run.http_get("/metrics");
    let counter = |name: &str| -> u64 {
        metrics.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum()
    };
    assert_eq!(counter("iocflow_reports_decoded_total") as usize, sent.len());
    for outcome in ["emitted", "suppressed", "withheld", "unrouted"] {
        let n = counter(&format!("iocflow_report_outcomes_total{{outcome=\"{outcome}\"}}"));
        assert_eq!(n as usize, expected.outcomes.get(outcome).copied().unwrap_or(0), "{outcome}: {metrics}");
    }
    assert_eq!(counter("iocflow_report_outcomes_total") as usize, sent.len());
    assert!(run.terminate().success());
}

#[test]
fn process_runs_the_same_path_over_a_file() {
    let d = Deployment::with_feeds("process", feeds(), "");
    let input = d.dir.path().join("urlhaus.csv");
    let mut text = String::from("# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n");
    for i in 0..12_000 {
        text += &format!(
            "\"{i}\",\"2024-05-01 10:00:00\",\"http://203.116.1.{}/bins/{i}\",\"online\",\"\",\"malware_download\",\"elf\",\"x\",\"r\"\n",
            i % 250 + 1
        );
    }
    text += "\"x\",\"2024-05-01\",\"\",\"offline\"\n";
    std::fs::write(&input, &text).unwrap();
    let out_dir = d.dir.path().join("out");
    let out = iocflow(&[
        "process",
        "--config",
        d.config_path.to_str().unwrap(),
        "--feed",
        "urlhaus",
        "--input",
        input.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("12000 reports"), "{summary}");
    let lines = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out_dir.join(name)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let sg = lines(&format!("{}.jsonl", d.cert_topic("SG")));
    assert_eq!(sg.len(), 12_000);
    assert!(sg.iter().all(|r| r["country"] == "SG" && r["type"] == "url"));
    assert!(lines(&format!("{}.jsonl", d.cert_topic("MY"))).is_empty());
    let dlq = lines("dlq.jsonl");
    assert_eq!(dlq.len(), 1, "one chunk holds the bad row: {dlq:?}");
    assert_eq!(dlq[0]["reason"], "missing_field");
    assert_eq!(dlq[0]["failed_items"], "1");
    assert!(lines("withheld.jsonl").is_empty());
}
