//! Enrichment on a real broker: the constituency registry routes indicators hosted abroad to
//! their organisation's CERT, and a hot reload (SIGHUP) while the stream runs changes what later
//! records carry — with no record lost; a broken file keeps the tables in use.

use iocflow_testkit as harness;

use harness::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn registry(sectors: &str) -> String {
    format!(
        "[[organisation]]\nname = \"Acme Bank\"\ncountry = \"MY\"\nsectors = [{sectors}]\ndomains = [\"acme-bank.com\"]\n"
    )
}

fn sighup(run: &Running) {
    #[allow(unsafe_code)]
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(run.child.id() as libc::pid_t, libc::SIGHUP);
    }
}

fn wait_for_metric(run: &Running, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !run.http_get("/metrics").contains(line) {
        assert!(Instant::now() < deadline, "no {line:?} in /metrics within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The reloaded tables are used from the next batch on; let the current one close.
    std::thread::sleep(Duration::from_secs(1));
}

fn produce_domains(d: &Deployment, range: std::ops::Range<usize>) {
    let records: Vec<(Option<String>, Vec<u8>)> = range
        .map(|i| (None, format!("{{\"type\":\"domain\",\"value\":\"h{i}.acme-bank.com\"}}").into_bytes()))
        .collect();
    produce(d.feed_topic("member"), &records);
}

#[test]
fn a_constituency_reload_changes_later_records_and_loses_nothing() {
    let tables = tempfile::tempdir().unwrap();
    let path = tables.path().join("constituency.toml");
    std::fs::write(&path, registry("\"finance\"")).unwrap();
    let tail = format!("[enrich]\nconstituency = {:?}\nreload_seconds = 3600\n", path.display().to_string());
    // AMBER and hosted under .com: only the registry makes MY a recipient.
    let feeds = vec![TestFeed::new("member", "AMBER", 80, "json", "")];
    let d = Deployment::with_policy("enrich", feeds, "", |_| String::new(), &tail);
    d.create_topics();
    let run = d.start();
    // The endpoint answers from the start; the gauge is set once the columnar stage has loaded
    // its tables, a moment later.
    wait_for_metric(&run, "iocflow_enrichment_table_entries{table=\"constituency\"} 1");

    produce_domains(&d, 0..300);
    d.wait_until_idle();
    std::fs::write(&path, registry("\"finance\", \"energy\"")).unwrap();
    sighup(&run);
    wait_for_metric(&run, "iocflow_enrichment_reloads_total{result=\"ok\"} 1");
    produce_domains(&d, 300..600);
    d.wait_until_idle();
    // A broken registry: the reload fails, the tables in use stay.
    std::fs::write(&path, "[[organisation]]\nname = \"Acme Bank\"\ncountry = \"Malaysia\"\n").unwrap();
    sighup(&run);
    wait_for_metric(&run, "iocflow_enrichment_reloads_total{result=\"failed\"} 1");
    produce_domains(&d, 600..800);
    d.wait_until_idle();

    let mut sectors_of: BTreeMap<usize, String> = BTreeMap::new();
    for r in read_to_end(d.cert_topic("MY")) {
        let v = r.json();
        let i: usize =
            v["value"].as_str().unwrap().strip_prefix('h').unwrap().split('.').next().unwrap().parse().unwrap();
        assert_eq!(v["org"], "Acme Bank");
        assert_eq!(v["countries"], serde_json::json!(["MY"]));
        let previous = sectors_of.insert(i, v["sectors"].to_string());
        assert!(previous.is_none(), "h{i} delivered twice");
    }
    assert_eq!(sectors_of.len(), 800, "every indicator reached MY exactly once");
    for (i, sectors) in &sectors_of {
        let want = if *i < 300 { r#"["finance"]"# } else { r#"["finance","energy"]"# };
        assert_eq!(sectors, want, "h{i}");
    }
    // Nobody else was implicated.
    for cc in ["SG", "TH", "ID"] {
        assert!(read_to_end(d.cert_topic(cc)).is_empty(), "{cc}");
    }
    assert!(run.terminate().success());
}
