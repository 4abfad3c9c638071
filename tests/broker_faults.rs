//! A broker that is missing at start, killed, or stalled: on a broker of this test binary's own
//! (`PrivateBroker`), which the tests take turns to stop.

use iocflow_testkit as harness;

use harness::private_broker::PrivateBroker;
use harness::*;
use std::time::{Duration, Instant};

/// Polls `path` on a running iocflow until it answers with `status`, for at most `patience`.
fn wait_for_status(run: &Running, path: &str, status: &str, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let answer = run.http_get(path);
        if answer.starts_with(status) {
            return;
        }
        assert!(Instant::now() < deadline, "{path} still answers {answer:?} after {patience:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// With no broker at start, `iocflow run` waits, alive and not ready, instead of exiting or
/// crash-looping; once the broker answers it starts and delivers (README, "Starting without a
/// broker"; the chart's probes: `/healthz` for liveness, `/readyz` for readiness).
#[test]
fn without_a_broker_run_waits_not_ready_and_starts_when_it_answers() {
    let broker = PrivateBroker::shared();
    let _turn = PrivateBroker::exclusive();
    let d = Deployment::new("nobroker", &[("industry", "GREEN", 60)], "");
    d.create_topics();
    broker.stop();

    let mut run = d.start();
    let started = Instant::now();
    wait_for_status(&run, "/healthz", "200", Duration::from_secs(10));
    while started.elapsed() < Duration::from_secs(12) {
        assert!(run.http_get("/readyz").starts_with("503"), "ready without a broker");
        assert!(run.http_get("/healthz").starts_with("200"), "alive while it waits");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(run.is_running(), "iocflow exited without a broker");

    broker.start();
    let record = br#"{"type":"domain","value":"waited.example.sg"}"#.to_vec();
    produce(d.feed_topic("industry"), &[(None, record)]);
    wait_for_status(&run, "/readyz", "200", Duration::from_secs(60));
    d.wait_until_idle();
    let sg: Vec<String> =
        read_to_end(d.cert_topic("SG")).iter().map(|r| r.json()["value"].as_str().unwrap().to_string()).collect();
    assert_eq!(sg, ["waited.example.sg"]);
    assert!(run.terminate().success());
}
