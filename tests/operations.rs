//! Operations: a real Prometheus server (the Debian package) scrapes iocflow while it processes a
//! stream with good and bad records; `promtool check metrics` lints the exposition; and the
//! counters, the consumer lag from librdkafka's statistics and the build info are read back
//! through Prometheus' HTTP API, as an operator's dashboard would.

use iocflow_testkit as harness;

use harness::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus server scraping one target every second; killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: iocflow\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the prometheus server (Debian package `prometheus`; dev/test installs it)");
        let p = Prometheus { child, addr, _dir: dir };
        let up = || std::net::TcpStream::connect(&p.addr).is_ok() && http_get(&p.addr, "/-/ready").starts_with("200");
        p.wait_for(|| up().then_some(()), "Prometheus ready");
        p
    }

    /// The value of an instant query's single result, if it has one.
    fn query(&self, promql: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", encode(promql));
        let response = http_get(&self.addr, &path);
        let body = &response[response.find('{')?..=response.rfind('}')?];
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let result = v["data"]["result"].as_array()?;
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    fn wait_for<T>(&self, mut f: impl FnMut() -> Option<T>, what: &str) -> T {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(t) = f() {
                return t;
            }
            assert!(Instant::now() < deadline, "waited 90 s for {what}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_scrapes_lints_and_answers_for_the_counters() {
    let d = Deployment::new("ops", &[("industry", "GREEN", 60)], "");
    d.create_topics();
    // 40 records: 30 good (2 indicators each, .sg domains) and 10 that are not JSON. Keyed, so
    // both feed partitions get records: the lag of a partition nobody consumed from or committed
    // is unknown to librdkafka (-1) and not exported.
    let mut records = Vec::new();
    for i in 0..30 {
        let line = format!(
            "{{\"type\":\"domain\",\"value\":\"a{i}.example.sg\"}}\n{{\"type\":\"domain\",\"value\":\"b{i}.example.sg\"}}"
        );
        records.push((Some(format!("good-{i}")), line.into_bytes()));
    }
    records.extend((0..10).map(|i| (Some(format!("bad-{i}")), format!("not json {i}").into_bytes())));
    produce(d.feed_topic("industry"), &records);
    let run = d.start();
    d.wait_until_idle();

    // The exposition passes promtool's lint.
    let body = run.http_get("/metrics");
    let body = body.split_once("\n\n").unwrap().1;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`)");
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let lint = promtool.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // Prometheus scrapes it; its API answers with iocflow's counts.
    let prometheus = Prometheus::start(&run.metrics_addr());
    let exact = |promql: &str, want: f64| {
        prometheus.wait_for(|| prometheus.query(promql).filter(|v| *v == want), &format!("{promql} == {want}"));
    };
    exact("sum(iocflow_records_received_total)", 40.0);
    exact("sum(iocflow_records_dead_lettered_total{reason=\"invalid_json\"})", 10.0);
    exact("sum(iocflow_reports_decoded_total)", 60.0);
    exact("sum(iocflow_indicators_emitted_total{cert=\"sg\"})", 60.0);
    exact("sum(iocflow_report_outcomes_total{outcome=\"emitted\"})", 60.0);
    exact("sum(iocflow_enrichment_lookups_total{enricher=\"infra_country\",result=\"hit\"})", 60.0);
    exact("count(iocflow_build_info)", 1.0);
    exact("up{job=\"iocflow\"}", 1.0);
    // librdkafka statistics (every 5 s): every input partition is assigned and fully consumed.
    exact("count(iocflow_consumer_lag_records{stage=\"ingest\"})", 2.0);
    exact("max(iocflow_consumer_lag_records)", 0.0);
    prometheus
        .wait_for(|| prometheus.query("max(iocflow_kafka_broker_rtt_seconds)").filter(|v| *v > 0.0), "broker rtt");
    exact("count(iocflow_consumer_lag_records{stage=\"columnar\"})", 4.0);
    let batches = "sum(iocflow_batch_duration_seconds_count{stage=\"columnar\"})";
    prometheus.wait_for(|| prometheus.query(batches).filter(|v| *v > 0.0), "columnar batches timed");
    assert!(run.http_get("/healthz").starts_with("200"));
    assert!(run.http_get("/readyz").starts_with("200"));
    assert!(run.terminate().success());
}
