//! Durable state and exactly-once delivery on a real broker: iocflow killed with SIGKILL at
//! random points, replicas joining and dying, replays — and every CERT topic, read committed,
//! still equals the reference model's output.

use iocflow_testkit as harness;

use harness::reference::*;
use harness::stream::*;
use harness::*;
use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::Duration;

const EXACTLY_ONCE: &str = "delivery = \"exactly-once\"";

fn deployment(test: &str, kafka_extra: &str) -> Deployment {
    let d = Deployment::new(test, &[("industry", "GREEN", 60), ("member", "AMBER", 80)], kafka_extra);
    d.create_topics();
    d
}

/// A stream of `n` reports over `distinct` indicators (so with duplicates).
fn stream(seed: u64, distinct: usize, n: usize) -> Vec<Sent> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pool = pool(&mut rng, distinct);
    reports(&mut rng, &pool, n)
}

/// Produces the stream in slices with pauses between them, so that kills land mid-stream.
fn produce_slowly(d: &Deployment, sent: &[Sent], slice: usize, pause: Duration) -> JoinHandle<()> {
    let slices: Vec<Vec<Sent>> = sent.chunks(slice).map(<[Sent]>::to_vec).collect();
    let topics = (d.feed_topic("industry").to_string(), d.feed_topic("member").to_string());
    std::thread::spawn(move || {
        for slice in slices {
            produce(&topics.0, &records_of(&slice, "industry", 50));
            produce(&topics.1, &records_of(&slice, "member", 10));
            std::thread::sleep(pause);
        }
    })
}

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

/// Per CERT topic and key: how many records there are.
fn counts(d: &Deployment) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (cc, topic) in &d.certs {
        for r in read_to_end(topic) {
            *out.entry((cc.clone(), r.key.unwrap())).or_default() += 1;
        }
    }
    out
}

#[test]
fn exactly_once_survives_repeated_sigkill_with_nothing_lost_or_doubled() {
    let d = deployment("eos-kill", EXACTLY_ONCE);
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
    let d = deployment("eos-replicas", EXACTLY_ONCE);
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
    let d = deployment("eos-replay", EXACTLY_ONCE);
    let sent = stream(0x0e05_0003, 2_000, 5_000);
    let expected = reference(&sent);
    produce(d.feed_topic("industry"), &records_of(&sent, "industry", 50));
    produce(d.feed_topic("member"), &records_of(&sent, "member", 10));
    let run = d.start();
    d.wait_until_idle();
    assert!(run.terminate().success());
    let before = counts(&d);
    assert_eq!(before.len(), expected.cert.len());

    // A clean restart reading every feed again from the beginning.
    let feeds: Vec<String> = d.feeds.iter().map(|f| f.topic.clone()).collect();
    d.rewind_group("ingest", &feeds);
    let run = d.start();
    d.wait_until_idle();
    assert!(run.terminate().success());
    assert_eq!(counts(&d), before, "a replay within the TTL sent CERT records again");
    assert_cert_topics(&d, &expected);
}

#[test]
fn at_least_once_survives_repeated_sigkill_with_nothing_lost() {
    let d = deployment("alo-kill", "");
    let sent = stream(0x0a10_0001, 30_000, 100_000);
    let expected = reference(&sent);
    let producer = produce_slowly(&d, &sent, 4_000, Duration::from_millis(1_500));
    let mut rng = fastrand::Rng::with_seed(11);
    let mid_stream = (0..6).filter(|_| kill_while_working(d.start(), &mut rng, &producer)).count();
    assert!(mid_stream >= 5, "only {mid_stream} kills landed mid-stream");
    let run = d.start();
    producer.join().unwrap();
    d.wait_until_idle();
    let got = counts(&d);
    let mut duplicates = 0;
    for ((cc, id), feeds) in &expected.cert {
        let n = got.get(&(cc.clone(), id.clone())).copied().unwrap_or(0);
        assert!(n >= feeds.len(), "{cc} {id}: {n} records, {} sources: lost", feeds.len());
        duplicates += n - feeds.len();
    }
    assert_eq!(got.len(), expected.cert.len(), "records no CERT should have");
    eprintln!(
        "at-least-once: {} reports, 6 SIGKILLs, none lost, {duplicates} duplicate CERT records of {}",
        sent.len(),
        got.values().sum::<usize>()
    );
    assert!(run.terminate().success());
}
