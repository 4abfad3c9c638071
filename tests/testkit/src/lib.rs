//! The integration tests' kit (also the end-to-end benchmark's and the demo's): a real Kafka
//! broker, a unique deployment per test, and helpers to produce to a topic, run iocflow, and read
//! topics to their end.
//!
//! The broker comes from `dev/kafka start` (which finds a running one), or from
//! `KAFKA_BOOTSTRAP` when set. Every test gets its own `app_id` and topic names, so tests run in
//! parallel on one broker without seeing each other's data.

pub mod measure;
pub mod policy;
pub mod private_broker;
pub mod reference;
pub mod secure;
pub mod stream;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(180);

/// The repository root: from the manifest folder Cargo names when it runs a test, bench or
/// example (a package folder of the workspace, one below the root), else from this crate's folder
/// when it was compiled (two below). Builds are cached outside the clone and shared by clones
/// (`.ci/run`), so a binary compiled in another clone may be reused: the compile-time path can
/// name a clone that is gone.
pub fn repo() -> PathBuf {
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(package) => PathBuf::from(package).parent().unwrap().to_path_buf(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
    }
}

/// The bootstrap address of the test broker, started on first use.
pub fn broker() -> &'static str {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER.get_or_init(|| {
        let out = Command::new(repo().join("dev/kafka"))
            .arg("start")
            .stderr(Stdio::inherit())
            .output()
            .expect("run dev/kafka start");
        assert!(out.status.success(), "dev/kafka start failed");
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_string()
    })
}

/// A fresh app id: unique per test and per run.
pub fn unique_app_id(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t-{test}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A feed of a test deployment.
#[derive(Clone, Debug)]
pub struct TestFeed {
    pub name: String,
    pub topic: String,
    pub tlp: String,
    pub confidence: u8,
    pub format: String,
    /// The body of the feed's `[feeds.<format>]` table, if any.
    pub options: String,
}

impl TestFeed {
    /// A feed in `format`, with `options` for its `[feeds.<format>]` table ("" for none).
    pub fn new(name: &str, tlp: &str, confidence: u8, format: &str, options: &str) -> TestFeed {
        TestFeed {
            name: name.into(),
            topic: String::new(),
            tlp: tlp.into(),
            confidence,
            format: format.into(),
            options: options.into(),
        }
    }
}

/// A test deployment: its config file, feeds and CERT topics.
pub struct Deployment {
    pub app_id: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub feeds: Vec<TestFeed>,
    /// (country, topic)
    pub certs: Vec<(String, String)>,
}

pub const ASEAN: [&str; 11] = ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN", "TL"];

/// The CERTs of the feedback tests (sightings, decay) as the model sees them: SG regional, MY
/// with a confidence filter, PH taking STIX.
pub fn feedback_certs() -> Vec<policy::Cert> {
    ASEAN
        .iter()
        .map(|cc| policy::Cert {
            country: cc,
            regional: *cc == "SG",
            groups: Default::default(),
            filter: (*cc == "MY").then_some(policy::Filter::MinConfidence(60)),
        })
        .collect()
}

/// [`feedback_certs`] as `[[certs]]` lines, for [`Deployment::with_policy`].
pub fn feedback_cert_lines(cc: &str) -> String {
    match cc {
        "SG" => "regional = true\n".into(),
        "MY" => format!("filter = \"{}\"\n", policy::Filter::MinConfidence(60).sql()),
        "PH" => "format = \"stix\"\n".into(),
        _ => String::new(),
    }
}

impl Deployment {
    /// A deployment with the 11 ASEAN CERTs and canonical-JSON feeds (name, tlp, confidence).
    pub fn new(test: &str, feeds: &[(&str, &str, u8)], kafka_extra: &str) -> Deployment {
        let feeds = feeds.iter().map(|(name, tlp, c)| TestFeed::new(name, tlp, *c, "json", "")).collect();
        Deployment::with_feeds(test, feeds, kafka_extra)
    }

    /// A deployment with the 11 ASEAN CERTs and the given feeds; `kafka_extra` goes into the
    /// `[kafka]` table (e.g. `delivery = "exactly-once"`).
    pub fn with_feeds(test: &str, feeds: Vec<TestFeed>, kafka_extra: &str) -> Deployment {
        Deployment::with_policy(test, feeds, kafka_extra, |_| String::new(), "")
    }

    /// Like [`with_feeds`](Self::with_feeds), with extra `[[certs]]` lines per CERT country
    /// (filter, format, regional, misp_org_uuid) and `tail` appended (e.g. `[[sharing_groups]]`).
    pub fn with_policy(
        test: &str,
        feeds: Vec<TestFeed>,
        kafka_extra: &str,
        cert_lines: impl Fn(&str) -> String,
        tail: &str,
    ) -> Deployment {
        let app_id = unique_app_id(test);
        let dir = tempfile::tempdir().unwrap();
        let feeds: Vec<TestFeed> =
            feeds.into_iter().map(|f| TestFeed { topic: format!("feeds.{app_id}.{}", f.name), ..f }).collect();
        let certs: Vec<(String, String)> =
            ASEAN.iter().map(|cc| (cc.to_string(), format!("cert.{}.{app_id}", cc.to_lowercase()))).collect();
        let mut toml = format!(
            "app_id = \"{app_id}\"\n[kafka]\nbootstrap_servers = \"{}\"\npartitions = 4\n\
             topic_partitions = 2\nsession_timeout_ms = 6000\ntransaction_timeout_ms = 10000\n{kafka_extra}\n\
             [batch]\nlinger_ms = 50\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
            broker()
        );
        for f in &feeds {
            toml += &format!(
                "[[feeds]]\nname = \"{}\"\ntopic = \"{}\"\nformat = \"{}\"\nprovider = \"{} provider\"\n\
                 tlp = \"{}\"\nconfidence = {}\n",
                f.name, f.topic, f.format, f.name, f.tlp, f.confidence
            );
            if !f.options.is_empty() {
                toml += &format!("[feeds.{}]\n{}\n", f.format, f.options);
            }
        }
        for (cc, topic) in &certs {
            toml += &format!(
                "[[certs]]\ncountry = \"{cc}\"\nname = \"CERT {cc}\"\ntopic = \"{topic}\"\n\
                 sightings_topic = \"sightings.{}.{app_id}\"\n",
                cc.to_lowercase()
            );
            toml += &cert_lines(cc);
        }
        toml += tail;
        let config_path = dir.path().join("iocflow.toml");
        std::fs::write(&config_path, toml).unwrap();
        Deployment { app_id, dir, config_path, feeds, certs }
    }

    /// Runs `iocflow topics --create`.
    pub fn create_topics(&self) {
        let out = iocflow(&["topics", "--config", self.config_path.to_str().unwrap(), "--create"]);
        assert!(out.status.success(), "topics --create: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn feed_topic(&self, name: &str) -> &str {
        &self.feeds.iter().find(|f| f.name == name).unwrap().topic
    }

    pub fn cert_topic(&self, cc: &str) -> &str {
        &self.certs.iter().find(|(c, _)| c == cc).unwrap().1
    }

    /// The topic CERT `cc` writes its sightings to.
    pub fn sightings_topic(&self, cc: &str) -> String {
        format!("sightings.{}.{}", cc.to_lowercase(), self.app_id)
    }

    pub fn withheld_topic(&self) -> String {
        format!("{}.withheld", self.app_id)
    }

    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.app_id)
    }

    /// Starts `iocflow run` on this deployment.
    pub fn start(&self) -> Running {
        Running::start(&self.config_path, &[])
    }

    /// Starts another replica, with its own ordinal (`IOCFLOW_INSTANCE`).
    pub fn start_replica(&self, instance: u32) -> Running {
        Running::start(&self.config_path, &[("IOCFLOW_INSTANCE", &instance.to_string())])
    }

    /// Moves a consumer group of this deployment back to the beginning of `topics` (the group
    /// must have no live member).
    pub fn rewind_group(&self, stage: &str, topics: &[String]) {
        let group = format!("{}-{stage}", self.app_id);
        let c: BaseConsumer = client(&[("group.id", &group), ("enable.auto.commit", "false")]).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
            for p in md.topics()[0].partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(0)).unwrap();
            }
        }
        c.commit(&tpl, rdkafka::consumer::CommitMode::Sync).unwrap();
    }

    /// Waits until both stages have committed everything there is to read: the ingest group
    /// at the end of every feed and sightings topic, the columnar group at the end of `<app>.indicators`.
    pub fn wait_until_idle(&self) {
        let feeds: Vec<String> = self
            .feeds
            .iter()
            .map(|f| f.topic.clone())
            .chain(self.certs.iter().map(|(cc, _)| self.sightings_topic(cc)))
            .collect();
        let indicators = vec![format!("{}.indicators", self.app_id)];
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let ingest_done = caught_up(&format!("{}-ingest", self.app_id), &feeds);
            // Read after ingest: once ingest is done, the indicators' end offsets are final.
            if ingest_done && caught_up(&format!("{}-columnar", self.app_id), &indicators) {
                return;
            }
            assert!(Instant::now() < deadline, "iocflow did not catch up within {TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A passing test's topics are deleted, so that the local broker's disk does not fill up over
/// many runs (every run makes new topics); a failing test's topics stay for a look.
impl Drop for Deployment {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            delete_topics_of(&self.app_id);
        }
    }
}

/// Deletes every topic of the deployment `app_id`: the topics with a dot-separated part that is
/// `app_id` or starts with `app_id-` (a benchmark baseline's own topics).
pub fn delete_topics_of(app_id: &str) {
    let c: BaseConsumer = client(&[]).create().unwrap();
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    let ours = |part: &str| part == app_id || part.strip_prefix(app_id).is_some_and(|rest| rest.starts_with('-'));
    let names: Vec<String> =
        md.topics().iter().map(|t| t.name().to_string()).filter(|n| n.split('.').any(ours)).collect();
    if names.is_empty() {
        return;
    }
    let admin: AdminClient<DefaultClientContext> = client(&[]).create().unwrap();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for result in rt.block_on(admin.delete_topics(&names, &AdminOptions::new())).unwrap() {
        if let Err((topic, e)) = result {
            eprintln!("deleting {topic}: {e}");
        }
    }
}

/// Sets a topic's configuration entry on the broker (as an operator with the admin tools would).
/// The Admin API's AlterConfigs replaces the topic's whole configuration: entries not named go
/// back to the broker's defaults (see [`alter_topic_configs`]).
pub fn alter_topic_config(topic: &str, key: &str, value: &str) {
    alter_topic_configs(topic, &[(key, value)]);
}

/// Sets a topic's whole configuration to these entries (the others at the broker's defaults).
pub fn alter_topic_configs(topic: &str, entries: &[(&str, &str)]) {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let admin: AdminClient<DefaultClientContext> = client(&[]).create().unwrap();
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (key, value) in entries {
        change = change.set(key, value);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for r in rt.block_on(admin.alter_configs(&[change], &AdminOptions::new())).unwrap() {
        r.unwrap();
    }
}

/// The `iocflow` binary of the build this executable belongs to: in the profile folder above
/// the test's (`target/release/deps/`) or the example's (`target/release/examples/`). Cargo builds
/// it for the `iocflow` package's integration tests; `dev/bench-e2e` and `dev/demo` build it.
pub fn iocflow_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("iocflow")
}

/// The log filter the tests give iocflow: `warn`, or `IOCFLOW_TEST_LOG` when set (to read what a
/// failing run was doing, e.g. `IOCFLOW_TEST_LOG=debug,librdkafka=info`).
fn test_log_filter() -> String {
    std::env::var("IOCFLOW_TEST_LOG").unwrap_or_else(|_| "warn".to_string())
}

/// Runs the iocflow binary to completion.
pub fn iocflow(args: &[&str]) -> std::process::Output {
    Command::new(iocflow_bin()).args(args).env("RUST_LOG", test_log_filter()).output().expect("run iocflow")
}

/// A running `iocflow run` process.
pub struct Running {
    pub child: Child,
    pub metrics_addr: Arc<Mutex<Option<String>>>,
    /// Every line it wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(iocflow_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", test_log_filter())
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iocflow run");
        let stderr = child.stderr.take().unwrap();
        let metrics_addr = Arc::new(Mutex::new(None));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr, lines) = (metrics_addr.clone(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("iocflow: metrics on http://") {
                    *addr.lock().unwrap() = rest.strip_suffix("/metrics").map(str::to_string);
                }
                eprintln!("[iocflow] {line}");
                lines.lock().unwrap().push(line);
            }
        });
        Running { child, metrics_addr, log }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: no drain, no commit.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        #[allow(unsafe_code)]
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "iocflow did not exit within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address of the metrics endpoint, once iocflow has announced it.
    pub fn metrics_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(a) = self.metrics_addr.lock().unwrap().clone() {
                return a;
            }
            assert!(Instant::now() < deadline, "no metrics address announced");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GETs a path on the metrics endpoint.
    pub fn http_get(&self, path: &str) -> String {
        http_get(&self.metrics_addr(), path)
    }

    /// The reports iocflow has given an outcome so far (counted once their batch's outputs are
    /// committed).
    pub fn outcomes(&self) -> f64 {
        measure::counter_sum(&self.http_get("/metrics"), "iocflow_report_outcomes_total")
    }

    /// Waits until `expected` reports have an outcome; fails when nothing moves for a minute.
    pub fn wait_for_outcomes(&self, expected: usize) {
        let (mut last, mut moved) = (-1.0, Instant::now());
        loop {
            let n = self.outcomes();
            if n >= expected as f64 {
                return;
            }
            if n != last {
                (last, moved) = (n, Instant::now());
            }
            assert!(moved.elapsed() < Duration::from_secs(60), "iocflow stalled at {n} of {expected} outcomes");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET; returns "STATUS\n\nBODY".
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    format!("{status}\n\n{body}")
}

fn client(extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker());
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// A record to produce: (key, value).
pub type Record = (Option<String>, Vec<u8>);

/// Produces records (key, value) to a topic and waits for every acknowledgement.
pub fn produce(topic: &str, records: &[Record]) {
    produce_at(topic, records);
}

/// Produces records and returns where each landed: (partition, offset), in order.
pub fn produce_at(topic: &str, records: &[Record]) -> Vec<(i32, i64)> {
    produce_to_topics(&[(topic, records)])
}

/// Produces records to several topics with one producer (an idempotent producer takes a while
/// to start) and returns where each landed, in order.
pub fn produce_to_topics(batches: &[(&str, &[Record])]) -> Vec<(i32, i64)> {
    produce_stamped(batches, None)
}

/// Like [`produce_to_topics`], every record with the Kafka timestamp `at` (ms): the report time
/// iocflow decides by, so a test can spread a stream over months.
pub fn produce_to_topics_at(batches: &[(&str, &[Record])], at: i64) -> Vec<(i32, i64)> {
    produce_stamped(batches, Some(at))
}

fn produce_stamped(batches: &[(&str, &[Record])], at: Option<i64>) -> Vec<(i32, i64)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // Records up to 16 MiB leave this producer; the topic's max.message.bytes decides.
        let p: FutureProducer =
            // Idempotent: a retry after a broker restart does not write a record twice.
            client(&[("linger.ms", "5"), ("acks", "all"), ("enable.idempotence", "true"), ("message.max.bytes", "16777216")])
                .create()
                .unwrap();
        let mut pending = Vec::new();
        for (topic, records) in batches {
            for (key, value) in records.iter() {
                let mut r = FutureRecord::<str, [u8]>::to(topic).payload(value);
                if let Some(k) = key {
                    r = r.key(k);
                }
                if let Some(at) = at {
                    r = r.timestamp(at);
                }
                loop {
                    match p.send_result(r) {
                        Ok(f) => {
                            pending.push(f);
                            break;
                        }
                        Err((_, back)) => {
                            r = back;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            }
        }
        let mut at = Vec::with_capacity(pending.len());
        for f in pending {
            let d = f.await.unwrap().map_err(|(e, _)| e).unwrap();
            at.push((d.partition, d.offset));
        }
        at
    })
}

/// A record read from a topic.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Read {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).unwrap()
    }
}

/// A read_committed consumer that reports partition ends (the last stable offset: a
/// transaction marker takes an offset, so "position = high watermark" is no test of the end).
pub fn committed_reader(group: &str) -> BaseConsumer {
    committed_reader_with(client(&[]), group)
}

/// [`committed_reader`] from other client settings (another broker, another identity).
pub fn committed_reader_with(mut settings: ClientConfig, group: &str) -> BaseConsumer {
    settings
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // The end of a partition is news at once, not after a fetch waited for more records.
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap()
}

/// The partitions of `topic`, once every one has a leader.
pub fn partitions_of(c: &BaseConsumer, topic: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        let t = &md.topics()[0];
        if t.error().is_none() && !t.partitions().is_empty() && t.partitions().iter().all(|p| p.leader() >= 0) {
            return t.partitions().iter().map(|p| p.id()).collect();
        }
        assert!(Instant::now() < deadline, "no leaders for {topic}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads from `tpl`'s offsets to the end of every partition; `stop_at_first` stops at the
/// first record. Returns the records read. One topic at a time: rdkafka's end-of-partition
/// event names the partition but not its topic.
fn read_until_end(c: &BaseConsumer, tpl: &TopicPartitionList, stop_at_first: bool) -> Vec<Read> {
    use rdkafka::message::Headers;
    let topics: std::collections::BTreeSet<String> = tpl.elements().iter().map(|e| e.topic().to_string()).collect();
    let mut out = Vec::new();
    for topic in topics {
        let mut one = TopicPartitionList::new();
        for e in tpl.elements_for_topic(&topic) {
            one.add_partition_offset(&topic, e.partition(), e.offset()).unwrap();
        }
        visit_topic_to_end(c, &one, Duration::from_secs(60), |m| {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
            !stop_at_first
        });
        if stop_at_first && !out.is_empty() {
            break;
        }
    }
    out
}

/// Hands every record of `tpl`'s partitions (all of one topic: an end-of-partition event does not
/// name its topic) from their offsets to their end to `visit`, until it returns false. Fails after
/// `within`.
pub fn visit_topic_to_end(
    c: &BaseConsumer,
    tpl: &TopicPartitionList,
    within: Duration,
    mut visit: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> bool,
) {
    c.assign(tpl).unwrap();
    let mut open: std::collections::BTreeSet<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    let deadline = Instant::now() + within;
    while !open.is_empty() {
        assert!(Instant::now() < deadline, "could not read to the end of {open:?}");
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => panic!("reading: {e}"),
            Some(Ok(m)) if !visit(&m) => return,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads a topic from the beginning to its current end, read_committed.
pub fn read_to_end(topic: &str) -> Vec<Read> {
    read_to_end_with(&committed_reader("iocflow-test-reader"), topic)
}

/// [`read_to_end`] with a reader of [`committed_reader_with`].
pub fn read_to_end_with(c: &BaseConsumer, topic: &str) -> Vec<Read> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions_of(c, topic) {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    read_until_end(c, &tpl, false)
}

/// True when `group` has committed offsets past every committed record of `topics`.
pub fn caught_up(group: &str, topics: &[String]) -> bool {
    let c = committed_reader(group);
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        for p in partitions_of(&c, topic) {
            tpl.add_partition(topic, p);
        }
    }
    let Ok(committed) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
        return false;
    };
    let mut from = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        // Committed at the high watermark: nothing after it, no need to read (a transaction's
        // marker takes an offset, so below it a partition is read to its end to see).
        let Ok((low, high)) = c.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10)) else {
            return false;
        };
        let at = match offset {
            Offset::Offset(o) => o,
            _ => low,
        };
        if at < high {
            from.add_partition_offset(e.topic(), e.partition(), offset).unwrap();
        }
    }
    from.count() == 0 || read_until_end(&c, &from, true).is_empty()
}

/// The python of the pinned virtualenv (`dev/python/venv`: the OASIS validator, stix2, PyMISP …).
pub fn python() -> String {
    let venv = Command::new(repo().join("dev/python/venv")).output().expect("dev/python/venv");
    assert!(venv.status.success(), "dev/python/venv: {}", String::from_utf8_lossy(&venv.stderr));
    String::from_utf8(venv.stdout).unwrap().trim().to_string()
}

/// Validates record files as a CERT's tooling would (`dev/python/validate_records.py`): `json`
/// with the schema first among `args`, or `stix` with the OASIS validator.
pub fn validate(mode: &str, args: &[PathBuf]) {
    let out = Command::new(python())
        .arg(repo().join("dev/python/validate_records.py"))
        .arg(mode)
        .args(args)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{mode}: {}", report.lines().last().unwrap_or_default());
    assert!(out.status.success(), "{mode} validation failed:\n{report}{}", String::from_utf8_lossy(&out.stderr));
}

/// What every CERT topic of a deployment holds, read back as the policy model's views (times
/// masked: [`policy::untimed`]), and the files the records were written to for validation.
pub struct CertTopics {
    /// (CERT index, view), in topic order per CERT.
    pub views: Vec<(usize, policy::View)>,
    pub json_files: Vec<PathBuf>,
    pub stix_files: Vec<PathBuf>,
}

impl CertTopics {
    /// Reads every CERT topic; CERT `stix` takes STIX. Each record's key must be its indicator id.
    /// The views are [`untimed`](policy::untimed): report times are the broker's.
    pub fn read(d: &Deployment, stix: &str) -> CertTopics {
        let mut topics = CertTopics::read_timed(d, stix);
        topics.views = topics.views.into_iter().map(|(k, v)| (k, policy::untimed(v))).collect();
        topics
    }

    /// Like [`read`](Self::read), with the records' times (for a test that sets its reports').
    pub fn read_timed(d: &Deployment, stix: &str) -> CertTopics {
        let mut out = CertTopics { views: Vec::new(), json_files: Vec::new(), stix_files: Vec::new() };
        for (k, (cc, topic)) in d.certs.iter().enumerate() {
            let records = read_to_end(topic);
            let path = d.dir.path().join(format!("{cc}.jsonl"));
            let lines: Vec<String> = records.iter().map(|r| r.json().to_string()).collect();
            std::fs::write(&path, lines.join("\n")).unwrap();
            for r in &records {
                let v = r.json();
                let id = if cc == stix { v["x_iocflow_id"].as_str() } else { v["id"].as_str() };
                assert_eq!(r.key.as_deref(), id, "{cc}: the key is the indicator id");
                out.views.push((k, policy::view_from_record(&v)));
            }
            if !records.is_empty() {
                if cc == stix { out.stix_files.push(path) } else { out.json_files.push(path) }
            }
        }
        out
    }

    /// Validates the JSON records against the record schema and the STIX ones with the OASIS
    /// validator.
    pub fn validate(&self) {
        let mut json_args = vec![repo().join("schemas/cert-record.schema.json")];
        json_args.extend(self.json_files.iter().cloned());
        validate("json", &json_args);
        validate("stix", &self.stix_files);
    }
}

/// The id of an indicator as DESIGN.md defines it, computed independently of iocflow's code.
pub fn indicator_id(kind: &str, canonical: &str) -> String {
    let mut bytes = kind.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(canonical.as_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}
