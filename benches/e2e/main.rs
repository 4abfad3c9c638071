//! The end-to-end benchmark against the real local Kafka broker (`dev/bench-e2e`).
//!
//! Per delivery mode (at-least-once, exactly-once):
//!
//! 1. **Load** N indicator reports (default 1,000,000; about 30 % report an indicator again)
//!    into four feed topics, in four formats (canonical JSON, IntelMQ, STIX 2.1, MISP), 100 per
//!    record.
//! 2. **iocflow**, started cold (`iocflow run`), until its metrics say every report has its one
//!    outcome — counted only after the batch's outputs are committed, so every CERT topic is
//!    complete then. Input indicators/s, the process's peak RSS and CPU, the broker's CPU.
//! 3. **Baselines** on the same input, in the same run (`baseline.rs`): (a) the same Kafka hops,
//!    message counts and sizes without the processing; (b) a one-hop copy of the feed records.
//! 4. **Latency**: a fresh deployment fed at half of the rate iocflow reached in step 2: first
//!    for a warm-up (`--warmup-seconds`, default 5), then for the measured time; per CERT record,
//!    the time from producing its report to reading it (read_committed), p50 and p99. The
//!    warm-up's own p99 is reported beside it: it shows the start-up transient.
//!
//! Prints a Markdown table (and writes it to `--report FILE`). Figures are for comparing within
//! one run: the ratios iocflow/(a) and iocflow/(b) are what BENCHMARKS.md tracks.
//!
//! Usage: `e2e [--indicators N] [--per-record R] [--modes at-least-once,exactly-once]
//!             [--latency-seconds S] [--warmup-seconds S] [--report FILE] [--config-extra TOML]`
//! (`--config-extra '[batch]\nmax_rows = 16384'` tries other settings on iocflow and the baselines.)

use iocflow_testkit as harness;

mod baseline;

use baseline::{Plan, Stage, StageRun, create_topics, run_stages};
use harness::measure::{Census, broker_pid, census, cpu_seconds, peak_rss_mib, quantile, threads_cpu_seconds};
use iocflow::config::Config;
use iocflow_benches::{Item, formats, items};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The four feeds: (name, format, default label).
const FEEDS: [(&str, &str, &str); 4] = [
    ("industry", "json", "GREEN"),
    ("member-my", "intelmq", "AMBER"),
    ("member-th", "stix2", "GREEN"),
    ("misp", "misp", "GREEN"),
];

struct Options {
    indicators: usize,
    per_record: usize,
    modes: Vec<String>,
    latency_seconds: f64,
    warmup_seconds: f64,
    report: Option<String>,
    /// TOML added to every deployment's config after `[kafka]` (tuning experiments:
    /// `[batch]`, `[kafka.client]` …); baselines read the same config.
    config_extra: String,
}

fn options() -> Options {
    let mut o = Options {
        indicators: 1_000_000,
        per_record: 100,
        modes: vec!["at-least-once".into(), "exactly-once".into()],
        latency_seconds: 20.0,
        warmup_seconds: 5.0,
        report: None,
        config_extra: String::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value")).clone();
        match flag.as_str() {
            "--indicators" => o.indicators = value().parse().expect("--indicators N"),
            "--per-record" => o.per_record = value().parse().expect("--per-record R"),
            "--modes" => o.modes = value().split(',').map(str::to_string).collect(),
            "--latency-seconds" => o.latency_seconds = value().parse().expect("--latency-seconds S"),
            "--warmup-seconds" => o.warmup_seconds = value().parse().expect("--warmup-seconds S"),
            "--report" => o.report = Some(value()),
            "--config-extra" => o.config_extra = value().replace("\\n", "\n"),
            _ => panic!("unknown argument {flag}; see the top of benches/e2e/main.rs"),
        }
    }
    o
}

/// A deployment of the 11 ASEAN CERTs and the four feeds, in `mode`, under a fresh app id, with
/// `extra` TOML after its `[kafka]` table.
struct Deployment {
    app: String,
    text: String,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Deployment {
    fn new(run: &str, mode: &str, extra: &str) -> Deployment {
        let root = harness::repo();
        let app = harness::unique_app_id(run);
        let mut text = format!(
            "app_id = \"{app}\"\n[kafka]\nbootstrap_servers = \"{}\"\ndelivery = \"{mode}\"\npartitions = 4\n\
             topic_partitions = 2\nsession_timeout_ms = 6000\ntransaction_timeout_ms = 10000\n\
             {}\n[metrics]\nlisten = \"127.0.0.1:0\"\n[enrich]\nconstituency = {:?}\nwarninglists = [{:?}]\n",
            harness::broker(),
            extra,
            root.join("config/constituency.toml"),
            root.join("data/warninglists"),
        );
        for (name, format, tlp) in FEEDS {
            text += &format!(
                "[[feeds]]\nname = \"{name}\"\ntopic = \"feeds.{app}.{name}\"\nformat = \"{format}\"\n\
                 provider = \"{name} provider\"\ntlp = \"{tlp}\"\nconfidence = 60\n"
            );
        }
        for cc in harness::ASEAN {
            text += &format!(
                "[[certs]]\ncountry = \"{cc}\"\nname = \"CERT {cc}\"\ntopic = \"cert.{cc_}.{app}\"\n\
                 sightings_topic = \"sightings.{cc_}.{app}\"\n",
                cc_ = cc.to_lowercase()
            );
        }
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("iocflow.toml");
        std::fs::write(&path, &text).expect("write the config");
        let out = harness::iocflow(&["topics", "--config", path.to_str().unwrap(), "--create"]);
        assert!(out.status.success(), "topics --create: {}", String::from_utf8_lossy(&out.stderr));
        Deployment { app, text, path, _dir: dir }
    }

    fn feed_topics(&self) -> Vec<String> {
        FEEDS.iter().map(|(name, _, _)| format!("feeds.{}.{name}", self.app)).collect()
    }

    fn cert_topics(&self) -> Vec<String> {
        harness::ASEAN.iter().map(|cc| format!("cert.{}.{}", cc.to_lowercase(), self.app)).collect()
    }

    /// The config of a baseline: the same settings under another app id.
    fn baseline_config(&self, suffix: &str) -> Arc<Config> {
        let text =
            self.text.replace(&format!("app_id = \"{}\"", self.app), &format!("app_id = \"{}-{suffix}\"", self.app));
        Arc::new(Config::parse(&text).expect("the baseline config"))
    }

    /// The feed records of `items`, `per_record` reports each, feeds in turn.
    fn records(&self, items: &[Item], per_record: usize) -> Vec<(String, Vec<u8>)> {
        let topics = self.feed_topics();
        items
            .chunks(per_record)
            .enumerate()
            .map(|(j, chunk)| {
                let body = match FEEDS[j % FEEDS.len()].1 {
                    "json" => formats::json(chunk),
                    "intelmq" => formats::intelmq(chunk),
                    "stix2" => formats::stix2(chunk),
                    _ => formats::misp(chunk),
                };
                (topics[j % topics.len()].clone(), body.into_bytes())
            })
            .collect()
    }
}

/// The run's topics (iocflow's and the baselines') are deleted when it is done: a full run
/// writes gigabytes, and the local broker keeps its data between runs.
impl Drop for Deployment {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            harness::delete_topics_of(&self.app);
        }
    }
}

/// An unkeyed record, as `harness::produce` takes them.
type Unkeyed = (Option<String>, Vec<u8>);

/// Produces every (topic, record) and waits for the acknowledgements, topic by topic.
fn load(records: &[(String, Vec<u8>)]) {
    let mut per_topic: BTreeMap<&str, Vec<Unkeyed>> = BTreeMap::new();
    for (topic, body) in records {
        per_topic.entry(topic).or_default().push((None, body.clone()));
    }
    for (topic, bodies) in per_topic {
        harness::produce(topic, &bodies);
    }
}

/// What one mode measured.
struct Measured {
    mode: String,
    indicators: usize,
    feed_records: usize,
    iocflow_seconds: f64,
    iocflow_cpu: Option<f64>,
    /// The part of it spent in librdkafka's threads.
    iocflow_kafka_cpu: Option<f64>,
    /// The CPU of baselines (a) and (b): this process's, over their runs.
    baseline_cpu: [Option<f64>; 2],
    iocflow_rss_mib: Option<f64>,
    broker_cpu: [Option<f64>; 3],
    output: Census,
    same_hops: (Vec<StageRun>, f64),
    copy: (Vec<StageRun>, f64),
    latency: Latency,
}

#[derive(Default)]
struct Latency {
    rate: f64,
    /// Reports sent, and CERT records read back.
    sent: usize,
    records: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// p99 of the records sent during the warm-up.
    warmup_p99: Duration,
}

fn rate(n: usize, seconds: f64) -> f64 {
    n as f64 / seconds
}

fn measure_mode(o: &Options, mode: &str) -> Measured {
    let broker = broker_pid();
    let broker_cpu = || broker.and_then(cpu_seconds);
    let d = Deployment::new("e2e", mode, &o.config_extra);
    let stream = items(o.indicators, 30, 0, 42);
    let records = d.records(&stream, o.per_record);
    eprintln!("e2e {mode}: loading {} reports in {} feed records", stream.len(), records.len());
    load(&records);

    eprintln!("e2e {mode}: iocflow");
    let cpu0 = broker_cpu();
    let started = Instant::now();
    let run = harness::Running::start(&d.path, &[]);
    run.wait_for_outcomes(stream.len());
    let iocflow_seconds = started.elapsed().as_secs_f64();
    let broker_iocflow = broker_cpu().zip(cpu0).map(|(b, a)| b - a);
    let pid = run.child.id();
    let (iocflow_cpu, iocflow_rss_mib) = (cpu_seconds(pid), peak_rss_mib(pid));
    let iocflow_kafka_cpu = threads_cpu_seconds(pid, "rdk:");
    assert!(run.terminate().success(), "iocflow exited with an error");

    let internal = format!("{}.indicators", d.app);
    let mut outputs = d.cert_topics();
    outputs.extend(["withheld", "state", "dlq"].map(|t| format!("{}.{t}", d.app)));
    let mut all = outputs.clone();
    all.push(internal.clone());
    let output = census(&all, 2_000);
    let internal_census = output.topics[&internal].clone();
    eprintln!(
        "e2e {mode}: iocflow wrote {} internal and {} output messages",
        internal_census.messages,
        output.messages() - internal_census.messages
    );

    eprintln!("e2e {mode}: baseline (a), the same hops without the processing");
    let config = d.baseline_config("a");
    let a_internal = format!("{}.indicators", config.app_id);
    let mut topics = vec![(a_internal.clone(), internal_census.partitions)];
    let mut plans = Vec::new();
    for t in &outputs {
        let c = &output.topics[t];
        let name = format!("{}.out.{}", config.app_id, t.replace(&d.app, "x"));
        topics.push((name.clone(), c.partitions));
        plans.push(Plan::like(name, c, t.ends_with(".state")));
    }
    create_topics(&config, &topics);
    let feed_records = records.len() as u64;
    let partitions = internal_census.partitions as u64;
    let stages = vec![
        Stage {
            config: config.clone(),
            name: "ingest",
            from: d.feed_topics(),
            inputs: feed_records,
            plans: vec![Plan::like(a_internal.clone(), &internal_census, true)],
            copy_to: None,
            // iocflow's ingest writes one message per internal partition per micro-batch.
            max_batch: (feed_records * partitions / internal_census.messages.max(1)).max(1) as usize,
        },
        Stage {
            config: config.clone(),
            name: "columnar",
            from: vec![a_internal],
            inputs: internal_census.messages,
            plans,
            copy_to: None,
            max_batch: 64,
        },
    ];
    let own_cpu = || cpu_seconds(std::process::id());
    let (cpu0, own0) = (broker_cpu(), own_cpu());
    let same_hops = run_stages(stages);
    let broker_a = broker_cpu().zip(cpu0).map(|(b, a)| b - a);
    let cpu_a = own_cpu().zip(own0).map(|(b, a)| b - a);
    let wrote: u64 = same_hops.0.iter().map(|s| s.produced).sum();
    assert_eq!(wrote, output.messages(), "baseline (a) must write what iocflow wrote");

    eprintln!("e2e {mode}: baseline (b), a one-hop copy");
    let config = d.baseline_config("b");
    let copy_topic = format!("{}.copy", config.app_id);
    create_topics(&config, &[(copy_topic.clone(), 2)]);
    let (cpu0, own0) = (broker_cpu(), own_cpu());
    let copy = run_stages(vec![Stage {
        config,
        name: "copy",
        from: d.feed_topics(),
        inputs: feed_records,
        plans: Vec::new(),
        copy_to: Some(copy_topic),
        max_batch: 64,
    }]);
    let broker_b = broker_cpu().zip(cpu0).map(|(b, a)| b - a);
    let cpu_b = own_cpu().zip(own0).map(|(b, a)| b - a);
    assert_eq!(copy.0[0].produced, feed_records);

    let max_rate = rate(stream.len(), iocflow_seconds);
    let latency = measure_latency(o, mode, max_rate / 2.0);
    Measured {
        mode: mode.to_string(),
        indicators: stream.len(),
        feed_records: records.len(),
        iocflow_seconds,
        iocflow_cpu,
        iocflow_kafka_cpu,
        baseline_cpu: [cpu_a, cpu_b],
        iocflow_rss_mib,
        broker_cpu: [broker_iocflow, broker_a, broker_b],
        output,
        same_hops,
        copy,
        latency,
    }
}

/// p50/p99 from producing a report to reading its CERT record, at `rate` reports/s, after a
/// warm-up at that rate.
fn measure_latency(o: &Options, mode: &str, rate: f64) -> Latency {
    eprintln!(
        "e2e {mode}: latency at {rate:.0} reports/s for {} s after a warm-up of {} s",
        o.latency_seconds, o.warmup_seconds
    );
    let d = Deployment::new("e2e-latency", mode, &o.config_extra);
    let run = harness::Running::start(&d.path, &[]);
    // Warm up: the consumer groups have joined once a first record is through.
    let warm = items(o.per_record, 0, 3_000_000, 7);
    let topic = d.feed_topics()[0].clone();
    harness::produce(&topic, &[(None, formats::json(&warm).into_bytes())]);
    run.wait_for_outcomes(warm.len());

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (received, stop, topics) = (received.clone(), stop.clone(), d.cert_topics());
        let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", harness::broker())
            .set("group.id", format!("{}-latency", d.app))
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("a latency consumer");
        let mut tpl = TopicPartitionList::new();
        for t in &topics {
            for p in harness::partitions_of(&consumer, t) {
                tpl.add_partition_offset(t, p, Offset::Beginning).expect("a partition");
            }
        }
        consumer.assign(&tpl).expect("assign");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    let now = Instant::now();
                    let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                    received.lock().unwrap().entry(key).or_insert(now);
                }
            }
        })
    };

    let warmup = (rate * o.warmup_seconds) as usize;
    let n = ((rate * o.latency_seconds) as usize).max(o.per_record) + warmup;
    let stream = items(n, 0, 3_000_000 + o.per_record, 9);
    let producer: BaseProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", harness::broker())
        .set("linger.ms", "1")
        .create()
        .expect("a producer");
    let started = Instant::now();
    for (i, chunk) in stream.chunks(o.per_record).enumerate() {
        let at = started + Duration::from_secs_f64((i * o.per_record) as f64 / rate);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let body = formats::json(chunk);
        let now = Instant::now();
        {
            let mut sent = sent.lock().unwrap();
            for it in chunk {
                let kind = iocflow_model::IndicatorType::parse(it.kind).expect("a type");
                let id = iocflow_model::Indicator::new(kind, &it.value).expect("a valid indicator").id.to_hex();
                sent.entry(id).or_insert(now);
            }
        }
        baseline::send(&producer, BaseRecord::to(&topic).payload(body.as_bytes()));
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    run.wait_for_outcomes(warm.len() + stream.len());
    // Outcomes count after the commit: what follows is the reader catching up.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("the latency reader");
    assert!(run.terminate().success(), "iocflow exited with an error");

    let sent = sent.lock().unwrap();
    let received = received.lock().unwrap();
    let warmup_ends = started + Duration::from_secs_f64(o.warmup_seconds);
    let (mut lat, mut warm) = (Vec::new(), Vec::new());
    for (id, at) in received.iter() {
        if let Some(sent_at) = sent.get(id) {
            let during = if *sent_at < warmup_ends { &mut warm } else { &mut lat };
            during.push(at.saturating_duration_since(*sent_at));
        }
    }
    eprintln!("e2e {mode}: p99 per second sent (ms): {}", per_second_p99(&sent, &received, started));
    lat.sort();
    warm.sort();
    assert!(!lat.is_empty(), "no CERT record came back in the latency run");
    Latency {
        rate,
        sent: stream.len() - warmup,
        records: lat.len(),
        p50: quantile(&lat, 0.5),
        p99: quantile(&lat, 0.99),
        max: *lat.last().unwrap(),
        warmup_p99: quantile(&warm, 0.99),
    }
}

/// The p99 latency of the records of each second of sending, in order: shows whether the tail
/// is spread over the run or comes from a few slow moments.
fn per_second_p99(sent: &HashMap<String, Instant>, received: &HashMap<String, Instant>, started: Instant) -> String {
    let mut seconds: BTreeMap<u64, Vec<Duration>> = BTreeMap::new();
    for (id, at) in received {
        if let Some(sent_at) = sent.get(id) {
            let second = sent_at.saturating_duration_since(started).as_secs();
            seconds.entry(second).or_default().push(at.saturating_duration_since(*sent_at));
        }
    }
    let p99 = |mut l: Vec<Duration>| {
        l.sort();
        format!("{:.0}", quantile(&l, 0.99).as_secs_f64() * 1e3)
    };
    seconds.into_values().map(p99).collect::<Vec<_>>().join(" ")
}

/// CPU seconds as the tables print them.
fn cpu(seconds: Option<f64>) -> String {
    seconds.map_or("n/a".to_string(), |c| format!("{c:.1} s"))
}

fn report(measured: &[Measured], cores: usize) -> String {
    let mut out = String::from(
        "| mode | reports | iocflow reports/s | (a) same hops reports/s | (b) copy reports/s | iocflow / (a) | iocflow / (b) | iocflow CPU | iocflow peak RSS | broker CPU iocflow / (a) / (b) | latency at half rate: p50 / p99 (max); warm-up p99 |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in measured {
        let io = rate(m.indicators, m.iocflow_seconds);
        let a = rate(m.indicators, m.same_hops.1);
        let b = rate(m.indicators, m.copy.1);
        out += &format!(
            "| {} | {} in {} records | {io:.0} ({:.1} s) | {a:.0} ({:.1} s) | {b:.0} ({:.1} s) | {:.2} | {:.2} | {} | {} | {} / {} / {} | {:.0} ms / {:.0} ms ({:.0} ms) at {:.0}/s: {} CERT records of {} reports; {:.0} ms |\n",
            m.mode,
            m.indicators,
            m.feed_records,
            m.iocflow_seconds,
            m.same_hops.1,
            m.copy.1,
            io / a,
            io / b,
            cpu(m.iocflow_cpu),
            m.iocflow_rss_mib.map_or("n/a".to_string(), |r| format!("{r:.0} MiB")),
            cpu(m.broker_cpu[0]),
            cpu(m.broker_cpu[1]),
            cpu(m.broker_cpu[2]),
            m.latency.p50.as_secs_f64() * 1e3,
            m.latency.p99.as_secs_f64() * 1e3,
            m.latency.max.as_secs_f64() * 1e3,
            m.latency.rate,
            m.latency.records,
            m.latency.sent,
            m.latency.warmup_p99.as_secs_f64() * 1e3,
        );
    }
    out += &cpu_report(measured, cores);
    out += "\nWhat iocflow wrote (baseline (a) writes the same counts, copying iocflow's records):\n\n\
            | mode | topic | messages | bytes |\n|---|---|---|---|\n";
    for m in measured {
        for (topic, t) in &m.output.topics {
            out += &format!(
                "| {} | {} | {} | {} |\n",
                m.mode,
                topic.replace(&topic_app(topic), "<app>"),
                t.messages,
                t.bytes
            );
        }
        let (a_messages, a_bytes) = m.same_hops.0.iter().fold((0, 0), |(n, b), s| (n + s.produced, b + s.bytes));
        out += &format!("| {} | all of the above | {} | {} |\n", m.mode, m.output.messages(), m.output.bytes());
        out += &format!("| {} | baseline (a), all topics | {a_messages} | {a_bytes} |\n", m.mode);
    }
    out
}

/// Where the CPU went, and the ceiling it puts on iocflow / (a): the ratio iocflow would reach if
/// its CPU and the broker's for its run kept every core busy from start to end (`cores` × wall
/// = that CPU). The processes share the machine, so no run reaches its ceiling; a ceiling
/// below a target says the target needs less CPU, not better overlap.
fn cpu_report(measured: &[Measured], cores: usize) -> String {
    let mut out = String::from(
        "\nCPU per run (iocflow's process, of it librdkafka's threads; the baselines' process; the broker):\n\n\
         | mode | iocflow CPU | of it Kafka client threads | (a) CPU | (b) CPU | broker CPU iocflow / (a) / (b) | iocflow / (a) ceiling at this CPU |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for m in measured {
        let ceiling = m
            .iocflow_cpu
            .zip(m.broker_cpu[0])
            .map_or("n/a".to_string(), |(io, broker)| format!("{:.2}", m.same_hops.1 * cores as f64 / (io + broker)));
        out += &format!(
            "| {} | {} | {} | {} | {} | {} / {} / {} | {ceiling} |\n",
            m.mode,
            cpu(m.iocflow_cpu),
            cpu(m.iocflow_kafka_cpu),
            cpu(m.baseline_cpu[0]),
            cpu(m.baseline_cpu[1]),
            cpu(m.broker_cpu[0]),
            cpu(m.broker_cpu[1]),
            cpu(m.broker_cpu[2]),
        );
    }
    out
}

/// The app id inside a topic name (`cert.sg.<app>`, `<app>.state`), for the report.
fn topic_app(topic: &str) -> String {
    match topic.strip_prefix("cert.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, app)| app).to_string(),
        None => topic.rsplit_once('.').map_or(topic, |(app, _)| app).to_string(),
    }
}

fn main() {
    let o = options();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("e2e: {} reports, {} per record, modes {:?}, {cores} cores", o.indicators, o.per_record, o.modes);
    let measured: Vec<Measured> = o.modes.iter().map(|mode| measure_mode(&o, mode)).collect();
    let table = report(&measured, cores);
    println!("{table}");
    if let Some(path) = &o.report {
        std::fs::write(path, &table).expect("write the report");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_are_taken_out_of_topic_names() {
        assert_eq!(topic_app("cert.sg.t-e2e-1-2"), "t-e2e-1-2");
        assert_eq!(topic_app("t-e2e-1-2.state"), "t-e2e-1-2");
    }
}
