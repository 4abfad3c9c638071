//! Durable state and exactly-once delivery on a real broker: iocflow killed with SIGKILL at
//! random points (among reports, then among the CERTs' sightings), replicas joining and dying,
//! replays — and every CERT topic, read committed, still equals the reference model's output.

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

/// Starts and kills iocflow `kills` times while `producer` writes (all kills but one must land
/// mid-stream), then runs it to the end of the stream; every CERT topic and the withheld topic
/// must hold exactly what `expected` says. Returns the run that finished.
fn killed_then_exact(
    d: &Deployment,
    rng: &mut fastrand::Rng,
    producer: JoinHandle<()>,
    kills: usize,
    expected: &Expected,
) -> Running {
    let mid_stream = (0..kills).filter(|_| kill_while_working(d.start(), rng, &producer)).count();
    assert!(mid_stream + 1 >= kills, "only {mid_stream} of {kills} kills landed mid-stream");
    let run = d.start();
    producer.join().unwrap();
    d.wait_until_idle();
    assert_cert_topics(d, expected);
    assert_withheld(d, expected);
    run
}

#[test]
fn exactly_once_survives_repeated_sigkill_with_nothing_lost_or_doubled() {
    let d = two_feed_deployment("eos-kill", EXACTLY_ONCE);
    let sent = stream(0x0e05_0001, 30_000, 100_000);
    let expected = reference(&sent);
    let producer = produce_slowly(&d, &sent, 4_000, Duration::from_millis(1_500));
    let mut rng = fastrand::Rng::with_seed(7);
    let kills = 6;
    let run = killed_then_exact(&d, &mut rng, producer, kills, &expected);

    // Then the CERTs' sightings of those indicators, and more kills.
    let sightings = sightings_of(0x0e05_0005, &sent, 3_000);
    let mut expected = expected;
    add_sightings(&mut expected, &sightings);
    let seen: usize = expected.sighted.values().map(Vec::len).sum();
    assert!(seen > 500, "the sightings reach CERTs' views ({seen} sightings shown)");
    let producer = produce_sightings_slowly(&d, &sightings, 200, Duration::from_millis(1_500));
    run.kill();
    let sighting_kills = 3;
    let run = killed_then_exact(&d, &mut rng, producer, sighting_kills, &expected);
    let kills = kills + sighting_kills;
    let metrics = run.http_get("/metrics");
    let gauge = |name: &str| -> f64 {
        metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
    };
    let changelog = read_to_end(&format!("{}.state", d.app_id));
    let changelog_bytes: usize = changelog.iter().map(|r| r.value.len()).sum();
    // The headers naming each entry's indicator (`type`, `value`), names and values.
    let header_bytes: usize = changelog.iter().flat_map(|r| &r.headers).map(|(k, v)| k.len() + v.len()).sum();
    assert!(changelog.iter().filter(|r| !r.value.is_empty()).all(|r| r.headers.contains_key("value")));
    let records = changelog.len().max(1) as f64;
    eprintln!(
        "exactly-once: {} reports and {} sightings, {kills} SIGKILLs, every CERT topic exact; state {:.0} bytes/key in memory, \
         changelog {:.0} bytes/record (+{:.0} of headers) over {} records",
        sent.len(),
        sightings.len(),
        gauge("iocflow_state_bytes ") / gauge("iocflow_state_entries ").max(1.0),
        changelog_bytes as f64 / records,
        header_bytes as f64 / records,
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

/// The changelog's latest value per key (tombstones dropped), as compaction would leave it.
fn latest_state(d: &Deployment) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut latest = std::collections::BTreeMap::new();
    for r in read_to_end(&format!("{}.state", d.app_id)) {
        let key = r.key.expect("changelog records are keyed");
        if r.value.is_empty() {
            latest.remove(&key);
        } else {
            latest.insert(key, r.value);
        }
    }
    latest
}

/// An upgrade from the JSON changelog: a state topic written as versions before the binary
/// entries wrote it (`changelog_format = "json"`) restores under the binary default, so no CERT
/// is sent an unchanged view again; `state dump` prints an entry whatever its format; and the
/// rollback path (`changelog_format = "json"`, `state rewrite`) leaves only JSON entries.
#[test]
fn a_json_state_topic_restores_after_the_upgrade_and_rewrites_back_for_a_rollback() {
    let d = two_feed_deployment_with("upgrade", EXACTLY_ONCE, "[dedupe]\nchangelog_format = \"json\"\n");
    let sent = stream(0x0e05_0023, 3_000, 12_000);
    let (before, after) = sent.split_at(6_000);
    produce_stream(&d, before, (50, 10));
    let run = d.start();
    d.wait_until_idle();
    assert!(run.terminate().success());
    let written = latest_state(&d);
    assert!(!written.is_empty() && written.values().all(|v| v[0] == b'{'), "the old format is JSON");

    // The upgrade: the same deployment, the default (binary) format.
    let config = std::fs::read_to_string(&d.config_path).unwrap();
    std::fs::write(&d.config_path, config.replace("changelog_format = \"json\"", "")).unwrap();
    produce_stream(&d, after, (50, 10));
    let run = d.start();
    d.wait_until_idle();
    assert!(run.terminate().success());
    // Exact: an indicator of the first half reported again with no new source is not sent again,
    // so its state was read back from the JSON entries.
    assert_cert_topics(&d, &reference(&sent));
    let state = latest_state(&d);
    assert!(state.values().any(|v| v[0] == 1), "the new entries are binary");
    assert!(state.values().any(|v| v[0] == b'{'), "entries not changed since are still JSON");

    // An operator reads one entry as JSON, whatever its format.
    let (id, binary) = state.iter().find(|(_, v)| v[0] == 1).unwrap();
    let config = d.config_path.to_str().unwrap();
    let out = iocflow(&["state", "dump", "--config", config, "--id", id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["id"], id.as_str());
    assert!(!line["entry"]["contributions"].as_array().unwrap().is_empty(), "{line}");
    assert!(binary.len() * 3 < serde_json::to_vec(&line["entry"]).unwrap().len(), "binary is smaller");

    // The rollback path: write JSON again, then rewrite what is there.
    let text = std::fs::read_to_string(&d.config_path).unwrap();
    std::fs::write(&d.config_path, text.replace("[dedupe]\n", "[dedupe]\nchangelog_format = \"json\"\n")).unwrap();
    let out = iocflow(&["state", "rewrite", "--config", config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rewritten = latest_state(&d);
    assert_eq!(rewritten.keys().collect::<Vec<_>>(), state.keys().collect::<Vec<_>>());
    assert!(rewritten.values().all(|v| v[0] == b'{'), "after the rewrite every entry is JSON");
}
