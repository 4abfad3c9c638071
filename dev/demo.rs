//! The demo behind `dev/demo`: config/asean.toml on the local broker, end to end.
//!
//! Uses the integration-test harness (tests/harness) for Kafka access, so the demo exercises
//! exactly what the tests do.

#[path = "../tests/harness/mod.rs"]
mod harness;

use harness::*;
use std::collections::BTreeMap;

fn main() {
    let root = repo();
    let bootstrap = broker();
    let run_id = unique_app_id("demo");
    // The shipped config, pointed at this broker, with its own app_id per run so that each run
    // starts from a clean dedupe state and its counts are its own.
    let shipped = std::fs::read_to_string(root.join("config/asean.toml")).unwrap();
    let config = shipped
        .replace("app_id = \"iocflow\"", &format!("app_id = \"{run_id}\""))
        .replace("bootstrap_servers = \"127.0.0.1:39092\"", &format!("bootstrap_servers = \"{bootstrap}\""))
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:0\"");
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
    let before: BTreeMap<&str, usize> = countries
        .iter()
        .map(|cc| (*cc, read_to_end(&format!("cert.{}.indicators", cc.to_lowercase())).len()))
        .collect();

    println!("== iocflow run (app_id {run_id})");
    let running = Running::start(&path);
    for (file, topic) in [("industry-clear.jsonl", "feeds.industry.clear"), ("member-sg.jsonl", "feeds.member.sg")] {
        let text = std::fs::read_to_string(root.join("dev/demo-sample").join(file)).unwrap();
        let records: Vec<(Option<String>, Vec<u8>)> = text.lines().map(|l| (None, l.as_bytes().to_vec())).collect();
        println!("produced {} records to {topic}", records.len());
        produce(topic, &records);
    }
    let feeds = vec!["feeds.industry.clear".to_string(), "feeds.member.sg".to_string()];
    let indicators = vec![format!("{run_id}.indicators")];
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !(caught_up(&format!("{run_id}-ingest"), &feeds) && caught_up(&format!("{run_id}-columnar"), &indicators)) {
        assert!(std::time::Instant::now() < deadline, "iocflow did not catch up");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    println!("\n== records per national CERT (this run)");
    let mut samples = Vec::new();
    for cc in countries {
        let topic = format!("cert.{}.indicators", cc.to_lowercase());
        let records = read_to_end(&topic);
        let new = &records[before[cc].min(records.len())..];
        println!("  {cc}  {topic:<22} {:>3}", new.len());
        samples.extend(new.iter().take(1).map(|r| (topic.clone(), r.json())));
    }
    let withheld = read_to_end(&format!("{run_id}.withheld"));
    let dead = read_to_end(&format!("{run_id}.dlq"));
    println!("  withheld ({run_id}.withheld): {}", withheld.len());
    for r in &withheld {
        let v = r.json();
        println!("    {:<8} {:<30} {}", v["type"].as_str().unwrap(), v["value"].as_str().unwrap(), v["reason"]);
    }
    println!("  dead letters ({run_id}.dlq): {}", dead.len());
    for r in &dead {
        println!("    {}: {}", r.headers["iocflow.reason"], r.headers["iocflow.detail"]);
    }
    println!("\n== a few records");
    for (topic, v) in samples.iter().take(3) {
        println!("{topic}:\n{}", serde_json::to_string_pretty(v).unwrap());
    }
    let status = running.terminate();
    assert!(status.success(), "iocflow exited with {status}");
    println!("\niocflow stopped cleanly; demo finished.");
}
