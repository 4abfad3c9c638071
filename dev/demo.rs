//! The demo behind `dev/demo`: config/asean.toml on the local broker, end to end.
//!
//! Uses the integration tests' testkit (tests/testkit) for Kafka access, so the demo exercises
//! exactly what the tests do.

use iocflow_testkit as harness;

use harness::*;
use std::collections::BTreeMap;

fn main() {
    let root = repo();
    let bootstrap = broker();
    // The shipped config, pointed at this broker, with an app_id and feed topics of its own per
    // run: state, dead letters and withheld records start empty, so every run shows the same
    // thing. The CERT topics are the shipped ones; the counts below are this run's records.
    let run = unique_app_id("demo");
    let app = run.as_str();
    let shipped = std::fs::read_to_string(root.join("config/asean.toml")).unwrap();
    let config = shipped
        .replace("app_id = \"iocflow\"", &format!("app_id = \"{app}\""))
        .replace("topic = \"feeds.", &format!("topic = \"{app}-feeds."))
        .replace("bootstrap_servers = \"127.0.0.1:39092\"", &format!("bootstrap_servers = \"{bootstrap}\""))
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "constituency = \"constituency.toml\"",
            &format!("constituency = {:?}", root.join("config/constituency.toml")),
        )
        .replace("\"../data/warninglists\"", &format!("{:?}", root.join("data/warninglists")));
    // dev/demo fetches openly licensed ASN ranges (dev/asn-data); without them, no ASN column.
    let config = match std::env::var("IOCFLOW_ASN_DIR") {
        Ok(asn) => config.replace(
            "# asn_csv = [",
            &format!(
                "asn_csv = [{:?}, {:?}]\n# was: asn_csv = [",
                format!("{asn}/asn-ipv4.csv"),
                format!("{asn}/asn-ipv6.csv")
            ),
        ),
        Err(_) => config,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asean.toml");
    std::fs::write(&path, config).unwrap();
    let cfg = path.to_str().unwrap();

    println!("== iocflow check");
    let out = iocflow(&["check", "--config", cfg, "--offline"]);
    print!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());

    println!("== iocflow topics --create");
    let out = iocflow(&["topics", "--config", cfg, "--create"]);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let countries = ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN", "TL"];
    let mut outputs: Vec<String> =
        countries.iter().map(|cc| format!("cert.{}.indicators", cc.to_lowercase())).collect();
    outputs.extend([format!("{app}.withheld"), format!("{app}.dlq")]);
    // The CERT topics are shared by every demo run and compacted, so "new" goes by offset: past
    // the last offset each partition had before this run.
    let last_offset = |topic: &str| {
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        for r in read_to_end(topic) {
            last.insert(r.partition, r.offset);
        }
        last
    };
    let before: BTreeMap<String, BTreeMap<i32, i64>> = outputs.iter().map(|t| (t.clone(), last_offset(t))).collect();
    let new_records = |topic: &str| {
        let seen = &before[topic];
        read_to_end(topic)
            .into_iter()
            .filter(|r| seen.get(&r.partition).is_none_or(|o| r.offset > *o))
            .collect::<Vec<_>>()
    };

    println!("== iocflow run (app_id {app})");
    let running = Running::start(&path, &[]);
    // Each feed with a sample file (dev/demo-sample/<feed name>.*) gets it, cut into records the
    // way `iocflow process` cuts files.
    let parsed = iocflow::config::Config::load(&path).unwrap();
    let samples: Vec<std::path::PathBuf> =
        std::fs::read_dir(root.join("dev/demo-sample")).unwrap().map(|e| e.unwrap().path()).collect();
    let mut feeds = Vec::new();
    for feed in &parsed.feeds {
        let Some(file) = samples.iter().find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(feed.name.as_str()))
        else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let header = feed.csv.as_ref().is_some_and(|c| c.header);
        let records: Vec<(Option<String>, Vec<u8>)> =
            iocflow::process::records(feed.format, header, &text).into_iter().map(|r| (None, r.into_bytes())).collect();
        println!("produced {:>2} records ({:<7}) to {}", records.len(), feed.format.as_str(), feed.topic);
        produce(&feed.topic, &records);
        feeds.push(feed.topic.clone());
    }
    let indicators = vec![format!("{app}.indicators")];
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !(caught_up(&format!("{app}-ingest"), &feeds) && caught_up(&format!("{app}-columnar"), &indicators)) {
        assert!(std::time::Instant::now() < deadline, "iocflow did not catch up");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    println!("\n== records per national CERT (this run)");
    let mut samples = Vec::new();
    for (cc, topic) in countries.iter().zip(&outputs) {
        let new = new_records(topic);
        println!("  {cc}  {topic:<22} {:>3}", new.len());
        // Show the most enriched record of each topic: an organisation, else an AS, else any.
        let richness = |v: &serde_json::Value| 2 * u8::from(!v["org"].is_null()) + u8::from(!v["asn"].is_null());
        let best = new.iter().map(|r| r.json()).max_by_key(|v| richness(v));
        samples.extend(best.map(|v| (richness(&v), topic.clone(), v)));
    }
    let withheld = new_records(&format!("{app}.withheld"));
    let dead = new_records(&format!("{app}.dlq"));
    println!("  withheld ({app}.withheld): {}", withheld.len());
    for r in &withheld {
        let v = r.json();
        println!("    {:<8} {:<30} {}", v["type"].as_str().unwrap(), v["value"].as_str().unwrap(), v["reason"]);
    }
    println!("  dead letters ({app}.dlq): {}", dead.len());
    for r in &dead {
        println!("    {}: {}", r.headers["iocflow.reason"], r.headers["iocflow.detail"]);
    }
    println!("\n== a few records");
    samples.sort_by_key(|(richness, _, _)| std::cmp::Reverse(*richness));
    for (_, topic, v) in samples.iter().take(3) {
        println!("{topic}:\n{}", serde_json::to_string_pretty(v).unwrap());
    }
    let status = running.terminate();
    assert!(status.success(), "iocflow exited with {status}");
    println!("\niocflow stopped cleanly.");
    // Why each CERT did or did not get the richest record's indicator: from the state topic, with
    // iocflow stopped.
    if let Some((_, _, v)) = samples.first() {
        let (kind, value) = (v["type"].as_str().unwrap(), v["value"].as_str().unwrap());
        println!("\n== iocflow explain --type {kind} --value {value}");
        let out = iocflow(&["explain", "--config", cfg, "--type", kind, "--value", value]);
        assert!(out.status.success(), "explain: {}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    println!("\ndemo finished.");
}
