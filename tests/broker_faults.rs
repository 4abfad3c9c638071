//! A broker that is missing at start, killed, or stalled: on a broker of this test binary's own
//! (`PrivateBroker`), which the tests take turns to stop.

use iocflow_testkit as harness;

use harness::measure::counter_sum;
use harness::private_broker::PrivateBroker;
use harness::reference::*;
use harness::stream::*;
use harness::*;
use std::time::{Duration, Instant};

/// This test's turn on the private broker, started (a test before may have left it down).
fn turn_on_the_private_broker() -> std::sync::MutexGuard<'static, ()> {
    let turn = PrivateBroker::exclusive();
    PrivateBroker::shared().start();
    turn
}

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
    let _turn = turn_on_the_private_broker();
    let broker = PrivateBroker::shared();
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

/// SIGKILLs the broker three times during a stream and restarts it after 5–20 s each time:
/// iocflow keeps running (no exit), `/readyz` says not ready while no broker answers and ready
/// again after, and its metrics count the errors. Returns the run, still going, and the stream's
/// expected output, for the caller to compare every CERT topic with.
fn kill_the_broker_three_times(d: &Deployment, seed: u64) -> (Running, Expected) {
    let broker = PrivateBroker::shared();
    let sent = stream(seed, 6_000, 24_000);
    let expected = reference(&sent);
    let mut run = d.start();
    wait_for_status(&run, "/readyz", "200", Duration::from_secs(60));
    let producer = produce_slowly(d, &sent, 1_000, Duration::from_millis(1_000));
    let mut rng = fastrand::Rng::with_seed(seed);
    for kill in 1..=3 {
        std::thread::sleep(Duration::from_millis(rng.u64(1_500..4_000)));
        broker.kill();
        let down = Duration::from_secs(rng.u64(5..=20));
        eprintln!("broker kill {kill}: down for {down:?}");
        let killed = Instant::now();
        wait_for_status(&run, "/readyz", "503", down.max(Duration::from_secs(15)));
        std::thread::sleep(down.saturating_sub(killed.elapsed()));
        assert!(run.is_running(), "iocflow exited while the broker was down");
        broker.start();
        wait_for_status(&run, "/readyz", "200", Duration::from_secs(90));
    }
    producer.join().unwrap();
    d.wait_until_idle();
    assert!(run.is_running());
    let metrics = run.http_get("/metrics");
    assert!(counter_sum(&metrics, "iocflow_kafka_errors_total") > 0.0, "no error counted:\n{metrics}");
    (run, expected)
}

/// Once the stream is in: iocflow still runs, every CERT topic and the withheld topic hold each
/// expected record exactly once, and it stops cleanly.
fn assert_exactly_once_then_stop(d: &Deployment, mut run: Running, expected: &Expected) {
    d.wait_until_idle();
    assert!(run.is_running(), "iocflow exited");
    assert_cert_topics(d, expected);
    assert_withheld(d, expected);
    assert!(run.terminate().success());
}

#[test]
fn exactly_once_survives_broker_kills_with_nothing_lost_or_doubled() {
    let _turn = turn_on_the_private_broker();
    let d = two_feed_deployment("eos-brokerkill", "delivery = \"exactly-once\"");
    let (run, expected) = kill_the_broker_three_times(&d, 0xb0_0001);
    assert_exactly_once_then_stop(&d, run, &expected);
}

#[test]
fn at_least_once_survives_broker_kills_with_nothing_lost() {
    let _turn = turn_on_the_private_broker();
    let d = two_feed_deployment("alo-brokerkill", "");
    let (run, expected) = kill_the_broker_three_times(&d, 0xb0_0002);
    let duplicates = assert_none_lost(&d, &expected);
    eprintln!("at-least-once through three broker kills: none lost, {duplicates} sent twice");
    assert!(run.terminate().success());
}

/// The broker paused (SIGSTOP) for longer than `transaction_timeout_ms` (10 s in the test
/// deployments) and the session timeout (6 s), then resumed: the coordinator aborts the
/// transaction that was open, and iocflow's batch is done again; every CERT topic holds each
/// record once. The consumers' sessions expire meanwhile: they rejoin the group (as dynamic
/// members: a static member could be fenced by its own rejoin, or hang; `client_config.rs`).
#[test]
fn exactly_once_survives_a_broker_stalled_past_the_transaction_timeout() {
    let _turn = turn_on_the_private_broker();
    let broker = PrivateBroker::shared();
    let d = two_feed_deployment("eos-stall", "delivery = \"exactly-once\"");
    let sent = stream(0xb0_0003, 4_000, 12_000);
    let expected = reference(&sent);
    let run = d.start();
    wait_for_status(&run, "/readyz", "200", Duration::from_secs(60));
    let producer = produce_slowly(&d, &sent, 1_000, Duration::from_millis(500));
    // Mid-stream: once the stages have committed a few transactions.
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter_sum(&run.http_get("/metrics"), "iocflow_transactions_total") < 6.0 {
        assert!(Instant::now() < deadline, "no transactions committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.pause();
    std::thread::sleep(Duration::from_secs(15));
    broker.resume();
    producer.join().unwrap();
    assert_exactly_once_then_stop(&d, run, &expected);
}

/// The broker down for longer than a consumer may stay out of its group (five session timeouts,
/// at least 30 s: `micro_batch.rs`) while iocflow is idle: each stage replaces its consumer, as it
/// would one librdkafka left rejoining for good, and once the broker is back the new consumers
/// join and the rest of the stream is routed exactly once.
#[test]
fn a_consumer_out_of_its_group_too_long_is_replaced_and_nothing_is_lost_or_doubled() {
    let _turn = turn_on_the_private_broker();
    let broker = PrivateBroker::shared();
    let d = two_feed_deployment("eos-rejoin", "delivery = \"exactly-once\"");
    let sent = stream(0xb0_0004, 3_000, 6_000);
    let expected = reference(&sent);
    let (first, rest) = sent.split_at(sent.len() / 2);
    let run = d.start();
    wait_for_status(&run, "/readyz", "200", Duration::from_secs(60));
    produce_stream(&d, first, (50, 10));
    d.wait_until_idle();
    broker.kill();
    std::thread::sleep(Duration::from_secs(45));
    broker.start();
    let replaced = |run: &Running| {
        run.log.lock().unwrap().iter().filter(|l| l.contains("out of a steady group membership")).count()
    };
    assert!(replaced(&run) >= 1, "no consumer was replaced while the broker was down");
    produce_stream(&d, rest, (50, 10));
    d.wait_until_idle();
    eprintln!("broker down 45 s: {} consumer(s) replaced", replaced(&run));
    assert_exactly_once_then_stop(&d, run, &expected);
}
