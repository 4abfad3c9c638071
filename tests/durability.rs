//! Durable state and exactly-once delivery on a real broker: iocflow killed with SIGKILL at
//! random points, replicas joining and dying, replays — and every CERT topic, read committed,
//! still equals the reference model's output.

use iocflow_testkit as harness;

use harness::reference::*;
use harness::stream::*;
use harness::*;
use std::thread::JoinHandle;
use std::time::Duration;

const EXACTLY_ONCE: &str = "delivery = \"exactly-once\"";

/// Waits until a freshly started iocflow has delivered a columnar batch (or 10 s, when there is
/// nothing left to do), then a random while more, and kills it, so that kills land in the middle
/// of real work rather than during start-up. Returns whether the stream was still being
/// produced at the kill.
fn kill_while_working(run: Running, rng: &mut fastrand::Rng, producer: &JoinHandle<()>) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !run.http_get("/metrics").contains("iocflow_batch_duration_seconds_count{stage=\"columnar\"}")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(rng.u64(0..1_200)));
    let mid_stream = !producer.is_finished();
    run.kill();
    mid_stream
}

#[test]
fn exactly_once_survives_repeated_sigkill_with_nothing_lost_or_doubled() {
    let d = two_feed_deployment("eos-kill", EXACTLY_ONCE);
    let sent = stream(0x0e05_0001, 30_000, 100_000);
    let expected = reference(&sent);
    let producer = produce_slowly(&d, &sent, 4_000, Duration::from_millis(1_500));
    let mut rng = fastrand::Rng::with_seed(7);
    let kills = 6;
    let mid_stream = (0..kills).filter(|_| kill_while_working(d.start(), &mut rng, &producer)).count();
    assert!(mid_stream >= 5, "only {mid_stream} kills landed mid-stream");
    let run = d.start();
    producer.join().unwrap();
    d.wait_until_idle();
    assert_cert_topics(&d, &expected);
    assert_withheld(&d, &expected);
    let metrics = run.http_get("/metrics");
    let gauge = |name: &str| -> f64 {
        metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
    };
    let changelog = read_to_end(&format!("{}.state", d.app_id));
    let changelog_bytes: usize = changelog.iter().map(|r| r.value.len()).sum();
    eprintln!(
        "exactly-once: {} reports, {kills} SIGKILLs, every CERT topic exact; state {:.0} bytes/key in memory, \
         changelog {:.0} bytes/record over {} records",
        sent.len(),
        gauge("iocflow_state_bytes ") / gauge("iocflow_state_entries ").max(1.0),
        changelog_bytes as f64 / changelog.len().max(1) as f64,
        changelog.len()
    );
    assert!(run.terminate().success());
}

#[test]
fn two_replicas_share_the_work_and_one_dies() {
    let d = two_feed_deployment("eos-replicas", EXACTLY_ONCE);
    let sent = stream(0x0e05_0002, 10_000, 30_000);
    let expected = reference(&sent);
    let producer = produce_slowly(&d, &sent, 2_000, Duration::from_millis(700));
    let first = d.start_replica(0);
    std::thread::sleep(Duration::from_secs(2));
    let second = d.start_replica(1);
    std::thread::sleep(Duration::from_secs(4));
    assert!(!producer.is_finished(), "the second replica must join mid-stream");
    first.kill();
    producer.join().unwrap();
    d.wait_until_idle();
    assert_cert_topics(&d, &expected);
    assert_withheld(&d, &expected);
    assert!(second.terminate().success());
}

#[test]
fn replaying_the_input_within_the_ttl_sends_nothing_new() {
    let d = two_feed_deployment("eos-replay", EXACTLY_ONCE);
    let sent = stream(0x0e05_0003, 2_000, 5_000);
    let expected = reference(&sent);
    produce(d.feed_topic("industry"), &records_of(&sent, "industry", 50));
    produce(d.feed_topic("member"), &records_of(&sent, "member", 10));
    let run = d.start();
    d.wait_until_idle();
    assert!(run.terminate().success());
    let before = record_counts(&d);
    assert_eq!(before.len(), expected.cert.len());

    // A clean restart reading every feed again from the beginning.
    let feeds: Vec<String> = d.feeds.iter().map(|f| f.topic.clone()).collect();
    d.rewind_group("ingest", &feeds);
    let run = d.start();
    d.wait_until_idle();
    assert!(run.terminate().success());
    assert_eq!(record_counts(&d), before, "a replay within the TTL sent CERT records again");
    assert_cert_topics(&d, &expected);
}

#[test]
fn at_least_once_survives_repeated_sigkill_with_nothing_lost() {
    let d = two_feed_deployment("alo-kill", "");
    let sent = stream(0x0a10_0001, 30_000, 100_000);
    let expected = reference(&sent);
    let producer = produce_slowly(&d, &sent, 4_000, Duration::from_millis(1_500));
    let mut rng = fastrand::Rng::with_seed(11);
    let mid_stream = (0..6).filter(|_| kill_while_working(d.start(), &mut rng, &producer)).count();
    assert!(mid_stream >= 5, "only {mid_stream} kills landed mid-stream");
    let run = d.start();
    producer.join().unwrap();
    d.wait_until_idle();
    let duplicates = assert_none_lost(&d, &expected);
    let got = record_counts(&d);
    eprintln!(
        "at-least-once: {} reports, 6 SIGKILLs, none lost, {duplicates} duplicate CERT records of {}",
        sent.len(),
        got.values().sum::<usize>()
    );
    assert!(run.terminate().success());
}
