//! A backlog beyond the state's memory (`dev/bench-backlog`), against the real local broker.
//!
//! The state is bounded by `dedupe.max_bytes`, but the bound is an estimate of the entries'
//! sizes and the process holds more than the state: consumer prefetch, micro-batches, producer
//! queues, the enrichment tables, the allocator's slack. This harness measures what the process
//! really holds when a backlog of distinct indicators far larger than the bound waits in the
//! feed topics, and checks that the bound loses nothing it must deliver.
//!
//! Per delivery mode, and per `max_bytes` in `--max-mib` (several values separate the state from
//! the rest: the smallest one's peak is, in effect, the fixed overhead):
//!
//! 1. **Load** N reports, one per distinct indicator (the integration tests' two-feed stream,
//!    `industry` GREEN and `member` AMBER, 100 reports a record), into the feed topics, before
//!    iocflow starts.
//! 2. **iocflow** with `[dedupe] max_bytes` = M and `max_entries` beyond N (so bytes bind), from
//!    cold, until every report has its outcome. Peak RSS (`VmHWM`), the state's estimate and
//!    entries at the end, the indicators evicted and expired (`iocflow_state_forgotten_total`).
//! 3. **Delivery**: every CERT topic against the reference model (`testkit/reference.rs`,
//!    independent of iocflow's routing code): no expected record missing, none unexpected.
//!    Every indicator is reported once, so eviction may not cost a record.
//!
//! Fails if a CERT record is missing, if exactly-once sent one twice, or if an indicator is
//! neither in the state at the end nor counted as evicted or expired. Prints a Markdown table
//! (and writes it to `--report FILE`): peak RSS against 2 × M, and above the smallest M's.
//!
//! With `--explain K`, each run then times `iocflow explain --id … --json` on K of the indicators
//! (one partition of the state topic read to its end, iocflow stopped) and checks its verdict for
//! every CERT against the reference: received where the reference expects a record, unless the
//! state forgot the indicator (then its one reason is `no_state`).
//!
//! Usage: `backlog [--indicators N] [--max-mib 1,64] [--modes at-least-once,exactly-once]
//! [--client key=value,…] [--explain K] [--report FILE]` (`--client` sets librdkafka properties
//! in `[kafka.client]`, e.g. `queued.max.messages.kbytes=16384`).

use iocflow_testkit as harness;

use harness::Running;
use harness::measure::{counter_sum, peak_rss_mib};
use harness::reference::{Expected, assert_none_lost, reference};
use harness::stream::{distinct_pool, produce_stream, report_each, two_feed_deployment_with};
use std::time::Instant;

struct Options {
    indicators: usize,
    max_mib: Vec<usize>,
    modes: Vec<String>,
    report: Option<String>,
    /// librdkafka properties for `[kafka.client]` (`--client key=value,key=value`), to see what
    /// the in-flight settings do.
    client: Vec<(String, String)>,
    /// Indicators to time `iocflow explain` on after each run.
    explain: usize,
}

fn options() -> Options {
    let mut o = Options {
        indicators: 5_000_000,
        max_mib: vec![1, 64],
        modes: vec!["at-least-once".into(), "exactly-once".into()],
        report: None,
        client: Vec::new(),
        explain: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--indicators" => o.indicators = value().parse().expect("--indicators N"),
            "--max-mib" => o.max_mib = value().split(',').map(|m| m.parse().expect("--max-mib M,M")).collect(),
            "--modes" => o.modes = value().split(',').map(str::to_string).collect(),
            "--report" => o.report = Some(value()),
            "--explain" => o.explain = value().parse().expect("--explain K"),
            "--client" => {
                o.client = value()
                    .split(',')
                    .map(|kv| kv.split_once('=').expect("--client key=value,…"))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// What one run measured.
struct Measured {
    mode: String,
    max_mib: usize,
    seconds: f64,
    peak_rss_mib: f64,
    state_mib: f64,
    entries: f64,
    evicted: f64,
    expired: f64,
    /// CERT records the reference expects, and those sent twice (at-least-once only).
    expected: usize,
    extra: usize,
    /// Seconds per `iocflow explain`, sorted.
    explain_seconds: Vec<f64>,
}

fn run_once(
    o: &Options,
    mode: &str,
    max_mib: usize,
    sent: &[harness::reference::Sent],
    expected: &Expected,
) -> Measured {
    let n = sent.len();
    let mut tail = format!("[dedupe]\nmax_bytes = {}\nmax_entries = {}\n", max_mib << 20, 2 * n + 1000);
    if !o.client.is_empty() {
        tail += "[kafka.client]\n";
        for (k, v) in &o.client {
            tail += &format!("{k:?} = {v:?}\n");
        }
    }
    let d = two_feed_deployment_with("backlog", &format!("delivery = \"{mode}\""), &tail);
    eprintln!("backlog {mode}, max_bytes {max_mib} MiB: loading {n} reports");
    produce_stream(&d, sent, (100, 100));

    eprintln!("backlog {mode}, max_bytes {max_mib} MiB: iocflow");
    let started = Instant::now();
    let run = Running::start(&d.config_path, &[]);
    run.wait_for_outcomes(n);
    let seconds = started.elapsed().as_secs_f64();
    let metrics = run.http_get("/metrics");
    let peak = peak_rss_mib(run.child.id()).expect("iocflow's /proc status");
    let forgotten =
        |reason: &str| counter_sum(&metrics, &format!("iocflow_state_forgotten_total{{reason=\"{reason}\"}}"));
    let measured = Measured {
        mode: mode.into(),
        max_mib,
        seconds,
        peak_rss_mib: peak,
        state_mib: counter_sum(&metrics, "iocflow_state_bytes") / f64::from(1 << 20),
        entries: counter_sum(&metrics, "iocflow_state_entries"),
        evicted: forgotten("evicted"),
        expired: forgotten("expired"),
        expected: expected.cert.values().map(Vec::len).sum(),
        extra: 0,
        explain_seconds: Vec::new(),
    };
    assert!(run.terminate().success(), "iocflow exited with an error");
    let explain_seconds = explain(o, &d.config_path, expected);

    eprintln!("backlog {mode}, max_bytes {max_mib} MiB: checking every CERT topic against the reference");
    let extra = assert_none_lost(&d, expected);
    if mode == "exactly-once" {
        assert_eq!(extra, 0, "exactly-once sent {extra} records twice");
    }
    Measured { extra, explain_seconds, ..measured }
}

/// Times `iocflow explain --id` on `o.explain` indicators spread over the stream, checking each
/// CERT's verdict against the reference; returns the seconds each took, sorted.
fn explain(o: &Options, config: &std::path::Path, expected: &Expected) -> Vec<f64> {
    let step = (expected.values.len() / o.explain.max(1)).max(1);
    let mut seconds = Vec::new();
    for id in expected.values.keys().step_by(step).take(o.explain) {
        let started = Instant::now();
        let out = harness::iocflow(&["explain", "--config", config.to_str().unwrap(), "--id", id, "--json"]);
        seconds.push(started.elapsed().as_secs_f64());
        assert!(out.status.success(), "explain --id {id}: {}", String::from_utf8_lossy(&out.stderr));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("explain's JSON");
        let held = answer["state"]["status"] == "held";
        for cert in answer["certs"].as_array().expect("certs") {
            let cc = cert["country"].as_str().expect("a country").to_string();
            if held {
                let want = expected.cert.contains_key(&(cc.clone(), id.clone()));
                assert_eq!(cert["verdict"] == "received", want, "explain --id {id}, CERT {cc}:\n{cert:#}");
            } else {
                assert_eq!(cert["reasons"][0]["code"], "no_state", "explain --id {id}: {answer:#}");
            }
        }
    }
    seconds.sort_by(f64::total_cmp);
    seconds
}

fn report(o: &Options, measured: &[Measured]) -> String {
    let mut out = format!(
        "{} reports of distinct indicators waiting in the feed topics; peak RSS of `iocflow run` (VmHWM){}.\n\n\
         | mode | max_bytes | seconds | peak RSS | 2 × max_bytes | above the smallest run | state estimate at end | \
         entries at end | evicted | expired | CERT records expected (all delivered) | sent twice |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        o.indicators,
        if o.client.is_empty() { String::new() } else { format!("; [kafka.client] {:?}", o.client) }
    );
    for m in measured {
        let smallest = measured.iter().filter(|x| x.mode == m.mode).min_by_key(|x| x.max_mib).expect("this run");
        out += &format!(
            "| {} | {} MiB | {:.0} | {:.0} MiB | {} MiB | {:+.0} MiB | {:.1} MiB | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            m.mode,
            m.max_mib,
            m.seconds,
            m.peak_rss_mib,
            2 * m.max_mib,
            m.peak_rss_mib - smallest.peak_rss_mib,
            m.state_mib,
            m.entries,
            m.evicted,
            m.expired,
            m.expected,
            m.extra,
        );
    }
    for m in measured.iter().filter(|m| !m.explain_seconds.is_empty()) {
        let t = &m.explain_seconds;
        out += &format!(
            "\n`iocflow explain --id … --json` after the {} run with max_bytes {} MiB ({:.0} entries held): {} indicators, \
             {:.2} s min, {:.2} s median, {:.2} s max (process start, enrichment tables, one partition of the state read \
             to its end).\n",
            m.mode,
            m.max_mib,
            m.entries,
            t.len(),
            t[0],
            t[t.len() / 2],
            t[t.len() - 1]
        );
    }
    out
}

fn main() {
    let o = options();
    eprintln!("backlog: {} distinct indicators, max_bytes {:?} MiB, modes {:?}", o.indicators, o.max_mib, o.modes);
    let mut rng = fastrand::Rng::with_seed(19);
    let pool = distinct_pool(&mut rng, o.indicators);
    let sent = report_each(&mut rng, &pool);
    drop(pool);
    let expected = reference(&sent);
    assert_eq!(expected.values.len(), sent.len(), "the indicators are not distinct");
    let mut measured = Vec::new();
    for mode in &o.modes {
        for &max_mib in &o.max_mib {
            let m = run_once(&o, mode, max_mib, &sent, &expected);
            // Every indicator entered the state once: it is still there, or it was counted out.
            assert_eq!(m.entries + m.evicted + m.expired, sent.len() as f64, "indicators unaccounted for");
            assert!(m.state_mib <= max_mib as f64, "the state's estimate is above its bound");
            measured.push(m);
        }
    }
    let table = report(&o, &measured);
    println!("{table}");
    if let Some(path) = &o.report {
        std::fs::write(path, &table).expect("write the report");
    }
}
