//! Security at the Kafka boundary, on the secured broker of `dev/kafka start --secure`
//! (SASL_SSL with SCRAM-SHA-512, mutual TLS, the StandardAuthorizer with no access unless an ACL
//! grants it).
//!
//! The deployment is `config/asean.toml` itself (its feeds, its 11 CERTs, its principals), with
//! its own app id and topic names. iocflow applies its ACL plan with the admin identity, creates
//! its topics as its own principal, and runs in exactly-once mode with nothing but that plan.
//! Every user of the config is then tried against every topic, group and transactional id of the
//! deployment, and the expected matrix is written here from the config's text, independently of
//! iocflow's plan: a CERT reads only its own topic, in groups under its own prefix; a producer
//! writes only its own feed topics; the auditors read only the dead letters, the withheld audit
//! and the state changelog (for `iocflow explain`). Each denial is asserted with its Kafka error
//! code.

use iocflow_testkit as harness;

use harness::secure::{SecureBroker, secure_broker};
use harness::{Read, iocflow, repo};
use iocflow::kafka::acls::{AclBinding, Operation, Pattern, Permission, Resource};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A deployment of config/asean.toml on the secured broker, written by the test.
struct Deployment {
    app_id: String,
    /// Holds the config file for as long as the deployment lives.
    dir: tempfile::TempDir,
    config: PathBuf,
    /// (feed name, topic, principal)
    feeds: Vec<(String, String, String)>,
    /// (country, topic, principal, group prefix)
    certs: Vec<(String, String, String, String)>,
    /// (principal, sightings topic) of each CERT
    sightings: Vec<(String, String)>,
    auditors: Vec<String>,
}

impl Deployment {
    /// config/asean.toml with a unique app id, its own topics, exactly-once delivery and
    /// `[kafka.client]` as User:iocflow on the secured broker; `tweak` edits the TOML last.
    fn new(broker: &SecureBroker, app_id: &str, tweak: impl FnOnce(&mut toml::Table)) -> Deployment {
        let app_id = app_id.to_string();
        let text = std::fs::read_to_string(repo().join("config/asean.toml")).unwrap();
        let mut t: toml::Table = text.parse().unwrap();
        t.insert("app_id".into(), app_id.clone().into());
        let kafka = t["kafka"].as_table_mut().unwrap();
        kafka.insert("bootstrap_servers".into(), broker.bootstrap.clone().into());
        kafka.insert("delivery".into(), "exactly-once".into());
        kafka.insert("partitions".into(), 2.into());
        kafka.insert("topic_partitions".into(), 1.into());
        kafka.insert("session_timeout_ms".into(), 6000.into());
        kafka.insert("transaction_timeout_ms".into(), 10000.into());
        let client: toml::Table =
            broker.kafka_client_entries("iocflow").into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        kafka.insert("client".into(), client.into());
        t["batch"].as_table_mut().unwrap().insert("linger_ms".into(), 50.into());
        t["metrics"].as_table_mut().unwrap().insert("listen".into(), "127.0.0.1:0".into());
        let enrich = t["enrich"].as_table_mut().unwrap();
        let config_dir = repo().join("config");
        enrich.insert("constituency".into(), config_dir.join("constituency.toml").display().to_string().into());
        enrich.insert(
            "warninglists".into(),
            vec![toml::Value::from(repo().join("data/warninglists").display().to_string())].into(),
        );
        let mut feeds = Vec::new();
        for f in t["feeds"].as_array_mut().unwrap() {
            let f = f.as_table_mut().unwrap();
            let name = f["name"].as_str().unwrap().to_string();
            let topic = format!("feeds.{app_id}.{name}");
            f.insert("topic".into(), topic.clone().into());
            let principal =
                f.get("principal").and_then(|p| p.as_str()).map_or(format!("User:feed-{name}"), str::to_string);
            feeds.push((name, topic, principal));
        }
        let (mut certs, mut sightings) = (Vec::new(), Vec::new());
        for c in t["certs"].as_array_mut().unwrap() {
            let c = c.as_table_mut().unwrap();
            let cc = c["country"].as_str().unwrap().to_ascii_lowercase();
            let topic = format!("cert.{cc}.{app_id}");
            c.insert("topic".into(), topic.clone().into());
            let sightings_topic = format!("cert.{cc}.{app_id}.sightings");
            c.insert("sightings_topic".into(), sightings_topic.clone().into());
            certs.push((cc.to_ascii_uppercase(), topic, format!("User:cert-{cc}"), format!("cert-{cc}-")));
            sightings.push((format!("User:cert-{cc}"), sightings_topic));
        }
        let auditors =
            t["access"]["auditors"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
        tweak(&mut t);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("iocflow.toml");
        std::fs::write(&config, toml::to_string(&t).unwrap()).unwrap();
        Deployment { app_id, dir, config, feeds, certs, sightings, auditors }
    }

    fn path(&self) -> &str {
        self.config.to_str().unwrap()
    }

    fn internal(&self, name: &str) -> String {
        format!("{}.{name}", self.app_id)
    }

    /// Every topic of the deployment.
    fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.feeds.iter().map(|f| f.1.clone()).collect();
        t.extend(["indicators", "state", "dlq", "withheld"].map(|n| self.internal(n)));
        t.extend(self.certs.iter().map(|c| c.1.clone()));
        t.extend(self.sightings.iter().map(|s| s.1.clone()));
        t
    }
}

/// Runs iocflow, keeps what it printed (to search for secrets), and returns the run.
fn run(outputs: &Mutex<Vec<String>>, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = iocflow(args);
    let elapsed = started.elapsed();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("$ iocflow {}\n{text}", args.join(" "));
    outputs.lock().unwrap().push(text);
    (out, elapsed)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---- Access as a user ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Allowed,
    Denied(RDKafkaErrorCode),
}

fn is_denial(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
    )
}

/// Reads partition 0 of `topic` from its start as `user`, assigned (librdkafka wants a group id
/// to assign partitions, `group`, in which nothing is committed): a record or the end of the
/// partition is access, a topic authorization error is a denial. (A group the user may not
/// describe also reports an error, which says nothing about the topic.)
///
/// A user who may not even DESCRIBE the topic gets no fetch error from librdkafka, only a
/// metadata answer without the topic: the metadata request asks first (READ implies DESCRIBE,
/// so its denial is a denial of READ).
fn read_access(b: &SecureBroker, user: &str, group: &str, topic: &str) -> Access {
    let c: BaseConsumer = b
        .client_as(user)
        .set("group.id", group)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(15)).unwrap();
    if let Some(code @ RDKafkaErrorCode::TopicAuthorizationFailed) = md.topics()[0].error().map(Into::into) {
        return Access::Denied(code);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    first_answer(&c, RDKafkaErrorCode::TopicAuthorizationFailed, &format!("reading {topic} as {user}"))
}

/// Polls a consumer until it reads (a record, or the end of a partition: access) or reports
/// `denial`; other errors are retried for 30 s.
fn first_answer(c: &BaseConsumer, denial: RDKafkaErrorCode, what: &str) -> Access {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(_)) | Some(Err(KafkaError::PartitionEOF(_))) => return Access::Allowed,
            Some(Err(e)) if e.rdkafka_error_code() == Some(denial) => return Access::Denied(denial),
            Some(Err(e)) => last = Some(e),
            None => {}
        }
    }
    panic!("{what}: neither access nor a denial within 30 s (last: {last:?})");
}

/// Writes records (topic, payload) as `user`, each to its topic; `idempotent` as Java producers
/// do by default (which needs only WRITE on a topic, no IDEMPOTENT_WRITE on the cluster).
fn write_access(b: &SecureBroker, user: &str, records: &[(&str, &str)], idempotent: bool) -> Vec<Access> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let p: FutureProducer = b
        .client_as(user)
        .set("message.timeout.ms", "20000")
        .set("enable.idempotence", idempotent.to_string())
        .create()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for (topic, payload) in records {
            let sent = p.send(FutureRecord::<(), _>::to(topic).payload(*payload), Duration::from_secs(5)).await;
            out.push(match sent {
                Ok(_) => Access::Allowed,
                Err((KafkaError::MessageProduction(code), _)) if is_denial(code) => Access::Denied(code),
                Err((e, _)) => panic!("writing {topic} as {user}: {e}"),
            });
        }
        out
    })
}

/// Joins `group` as `user`, subscribed to `topic` (one the user may read, or its own feed): what a
/// consumer in that group does. The end of the assigned partition (or a record) is access; the
/// coordinator lookup's or the join's authorization error is a denial.
fn group_access(b: &SecureBroker, user: &str, topic: &str, group: &str) -> Access {
    let c: BaseConsumer = b
        .client_as(user)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    first_answer(&c, RDKafkaErrorCode::GroupAuthorizationFailed, &format!("joining {group} as {user}"))
}

/// Starts a transactional producer with `id` as `user`.
fn transaction_access(b: &SecureBroker, user: &str, id: &str) -> Access {
    let p: FutureProducer = b.client_as(user).set("transactional.id", id).create().unwrap();
    match p.init_transactions(Duration::from_secs(20)) {
        Ok(()) => Access::Allowed,
        Err(KafkaError::Transaction(e)) if is_denial(e.code()) => Access::Denied(e.code()),
        Err(e) => panic!("transactional id {id} as {user}: {e}"),
    }
}

/// One cell of the isolation matrix.
#[derive(Debug, Clone)]
enum Try {
    Read { user: String, group: String, topic: String },
    Write { user: String, topics: Vec<String> },
    Group { user: String, topic: String, group: String },
    Transaction { user: String, id: String },
}

impl Try {
    fn run(&self, b: &SecureBroker) -> Vec<Access> {
        let name = |p: &str| p.strip_prefix("User:").unwrap().to_string();
        match self {
            Try::Read { user, group, topic } => vec![read_access(b, &name(user), group, topic)],
            Try::Write { user, topics } => {
                let records: Vec<(&str, &str)> = topics.iter().map(|t| (t.as_str(), "acl write check")).collect();
                write_access(b, &name(user), &records, false)
            }
            Try::Group { user, topic, group } => vec![group_access(b, &name(user), topic, group)],
            Try::Transaction { user, id } => vec![transaction_access(b, &name(user), id)],
        }
    }
}

/// Runs the tries on `workers` threads; returns their results in order.
fn run_all(b: &SecureBroker, tries: &[Try], workers: usize) -> Vec<Vec<Access>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![Vec::new(); tries.len()]);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = tries.get(i) else { return };
                    let r = t.run(b);
                    results.lock().unwrap()[i] = r;
                }
            });
        }
    });
    results.into_inner().unwrap()
}

// ---- The records ----------------------------------------------------------------------------

/// Produces JSON records to a feed topic as the feed's own user.
fn produce_as(b: &SecureBroker, user: &str, topic: &str, records: &[&str]) {
    let user = user.strip_prefix("User:").unwrap();
    let records: Vec<(&str, &str)> = records.iter().map(|r| (topic, *r)).collect();
    for access in write_access(b, user, &records, true) {
        assert_eq!(access, Access::Allowed, "{user} writing its own feed {topic}");
    }
}

/// Reads a topic to its end as `user`, in a group under `group_prefix` (read_committed).
fn read_as(b: &SecureBroker, user: &str, topic: &str, group_prefix: &str) -> Vec<Read> {
    let user = user.strip_prefix("User:").unwrap();
    let reader = harness::committed_reader_with(b.client_as(user), &format!("{group_prefix}reader"));
    harness::read_to_end_with(&reader, topic)
}

fn values(records: &[Read]) -> BTreeSet<String> {
    records.iter().map(|r| r.json()["value"].as_str().unwrap().to_string()).collect()
}

/// The admin identity's client settings (its properties file, secrets resolved).
fn admin_settings(b: &SecureBroker) -> ClientConfig {
    let props = iocflow::kafka::client_properties::ClientProperties::load(&b.admin_properties()).unwrap();
    let mut settings = ClientConfig::new();
    for (k, v) in props.iter() {
        settings.set(k, v);
    }
    settings
}

fn admin_client(b: &SecureBroker) -> iocflow::kafka::connection::Connected {
    iocflow::kafka::connection::connect(&admin_settings(b), Duration::from_secs(10)).unwrap()
}

/// Deletes the deployment's topics and the bindings on its names (when the test passed).
fn clean_up(b: &SecureBroker, d: &Deployment) {
    let client = admin_client(b);
    let all = iocflow::kafka::acl_admin::describe(client.client(), Duration::from_secs(30)).unwrap();
    let ours: Vec<AclBinding> = all.into_iter().filter(|b| b.name.contains(&d.app_id)).collect();
    iocflow::kafka::acl_admin::delete(client.client(), &ours, Duration::from_secs(30)).unwrap();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> = admin_settings(b).create().unwrap();
    let topics = d.topics();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(admin.delete_topics(&names, &rdkafka::admin::AdminOptions::new())).unwrap();
}

fn assert_no_secret(b: &SecureBroker, outputs: &[String], extra: &[&str]) {
    let mut secrets = b.passwords();
    secrets.extend(extra.iter().map(|s| s.to_string()));
    for text in outputs {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a password appears in iocflow's output:\n{text}");
        }
    }
}

#[test]
fn iocflow_runs_under_its_plan_and_every_principal_is_isolated() {
    let started = Instant::now();
    let b = secure_broker();
    let d = Deployment::new(b, &harness::unique_app_id("secure"), |_| {});
    let admin = b.admin_properties();
    let admin = admin.to_str().unwrap();
    let outputs = Mutex::new(Vec::new());

    // The plan, applied with the admin identity; again, idempotently; then verified.
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--apply", "--admin", admin]);
    assert!(out.status.success(), "acls --apply: {}{}", stdout(&out), stderr(&out));
    let created = stdout(&out).lines().filter(|l| l.starts_with("created ")).count();
    assert!(created > 60, "{}", stdout(&out));
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--apply", "--admin", admin]);
    assert!(out.status.success() && stdout(&out).contains("0 binding(s) created"), "{}", stdout(&out));
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--verify", "--admin", admin]);
    assert!(out.status.success(), "acls --verify: {}{}", stdout(&out), stderr(&out));

    // The plan as kafka-acls.sh lines works with Kafka's own tool: the auditors' bindings,
    // deleted, then created again by running their printed lines.
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--format", "kafka-acls"]);
    let auditor_lines: Vec<String> =
        stdout(&out).lines().filter(|l| l.contains(&format!(" {} ", d.auditors[0]))).map(str::to_string).collect();
    assert_eq!(auditor_lines.len(), 4, "{}", stdout(&out));
    let planned = iocflow::kafka::acls::plan(&iocflow::config::Config::load(&d.config).unwrap());
    let auditor_bindings: Vec<AclBinding> = planned.into_iter().filter(|b| b.principal == d.auditors[0]).collect();
    assert_eq!(
        iocflow::kafka::acl_admin::delete(admin_client(b).client(), &auditor_bindings, Duration::from_secs(30))
            .unwrap(),
        4
    );
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--verify", "--admin", admin]);
    assert!(stderr(&out).contains("4 missing, 0 beyond it"), "{}{}", stdout(&out), stderr(&out));
    for line in &auditor_lines {
        let line = line
            .replacen("kafka-acls.sh", &format!("{} kafka-acls --secure", repo().join("dev/kafka").display()), 1)
            .replace("--command-config admin.properties", "--command-config admin");
        let done = std::process::Command::new("bash").args(["-c", &line]).output().unwrap();
        assert!(done.status.success(), "{line}: {}", String::from_utf8_lossy(&done.stderr));
    }
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--verify", "--admin", admin]);
    assert!(out.status.success(), "after kafka-acls.sh: {}{}", stdout(&out), stderr(&out));

    // Topics created by iocflow's own principal under the plan; a second run finds them right.
    for _ in 0..2 {
        let (out, _) = run(&outputs, &["topics", "--config", d.path(), "--create"]);
        assert!(out.status.success(), "topics --create as User:iocflow: {}", stderr(&out));
    }
    let (out, _) = run(&outputs, &["check", "--config", d.path(), "--admin", admin]);
    assert!(out.status.success() && stdout(&out).ends_with("ok\n"), "check --admin: {}{}", stdout(&out), stderr(&out));

    // The same principal by mutual TLS (a certificate with CN=iocflow), through [kafka.client].
    let mtls = Deployment::new(b, &d.app_id, |t| {
        let kafka = t["kafka"].as_table_mut().unwrap();
        kafka.insert("bootstrap_servers".into(), b.mtls.clone().into());
        let tls = b.dir.join("tls");
        let client: toml::Table = [
            ("security.protocol", "SSL".to_string()),
            ("ssl.ca.location", b.ca().display().to_string()),
            ("ssl.certificate.location", tls.join("iocflow.crt").display().to_string()),
            ("ssl.key.location", tls.join("iocflow.key").display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
        kafka.insert("client".into(), client.into());
    });
    let (out, _) = run(&outputs, &["check", "--config", mtls.path()]);
    assert!(out.status.success(), "check over mutual TLS: {}{}", stdout(&out), stderr(&out));

    // ---- The isolation matrix, before iocflow runs (what the write checks add to the feed
    // topics goes to the dead letters once it does).
    let topics = d.topics();
    let cert_users: Vec<&str> = d.certs.iter().map(|c| c.2.as_str()).collect();
    let feed_users: BTreeSet<&str> = d.feeds.iter().map(|f| f.2.as_str()).collect();
    let auditor = d.auditors[0].as_str();
    let me = "User:iocflow";
    let mut readers: Vec<&str> = cert_users.clone();
    readers.extend(feed_users.iter().copied());
    readers.extend([auditor, me]);
    // May `user` read `topic`? Written from the config's text.
    let may_read = |user: &str, topic: &str| {
        d.certs.iter().any(|c| c.2 == user && c.1 == topic)
            || (user == auditor && ["dlq", "withheld", "state"].iter().any(|n| topic == d.internal(n)))
            || (user == me
                && (d.feeds.iter().any(|f| f.1 == topic)
                    || d.sightings.iter().any(|s| s.1 == topic)
                    || topic == d.internal("indicators")
                    || topic == d.internal("state")))
    };
    // A producer writes its own feed topic, a CERT its own sightings topic.
    let may_write = |user: &str, topic: &str| {
        d.feeds.iter().any(|f| f.2 == user && f.1 == topic) || d.sightings.iter().any(|s| s.0 == user && s.1 == topic)
    };
    let mut groups: Vec<String> = d.certs.iter().map(|c| format!("{}acl-check", c.3)).collect();
    groups.extend(["ingest", "columnar", "restore"].map(|s| format!("{}-{s}", d.app_id)));
    groups.push(format!("{}-audit-acl-check", d.app_id));
    // The separators at work: `cert-sg` must not cover `cert-sgx`, `<app>-` not `<app>2-`.
    groups.push("cert-sgx-acl-check".into());
    groups.push(format!("{}2-audit-acl-check", d.app_id));
    let may_join = |user: &str, group: &str| {
        d.certs.iter().any(|c| c.2 == user && group.starts_with(&c.3))
            || (user == auditor && group.starts_with(&format!("{}-audit-", d.app_id)))
    };
    // A topic each user may read (or, for a producer, its own feed) to commit an offset of.
    let own_topic = |user: &str| -> String {
        d.certs
            .iter()
            .find(|c| c.2 == user)
            .map(|c| c.1.clone())
            .or_else(|| d.feeds.iter().find(|f| f.2 == user).map(|f| f.1.clone()))
            .unwrap_or_else(|| d.internal("dlq"))
    };
    let mut tries = Vec::new();
    let mut expected = Vec::new();
    // A group id each user may use (none for the producers), for the assigned read checks.
    let reading_group = |user: &str| -> String {
        if let Some(c) = d.certs.iter().find(|c| c.2 == user) {
            format!("{}read-check", c.3)
        } else if user == auditor {
            format!("{}-audit-read-check", d.app_id)
        } else if user == me {
            format!("{}-restore", d.app_id)
        } else {
            "acl-read-check".to_string()
        }
    };
    for user in &readers {
        for topic in &topics {
            tries.push(Try::Read { user: user.to_string(), group: reading_group(user), topic: topic.clone() });
            expected.push(vec![if may_read(user, topic) {
                Access::Allowed
            } else {
                Access::Denied(RDKafkaErrorCode::TopicAuthorizationFailed)
            }]);
        }
    }
    // Everyone but iocflow (whose writes the running pipeline proves; a test record on its
    // internal topics would be a corrupt record there).
    let writers: Vec<&str> = readers.iter().copied().filter(|u| *u != me).collect();
    for user in &writers {
        tries.push(Try::Write { user: user.to_string(), topics: topics.clone() });
        expected.push(
            topics
                .iter()
                .map(|t| {
                    if may_write(user, t) {
                        Access::Allowed
                    } else {
                        Access::Denied(RDKafkaErrorCode::TopicAuthorizationFailed)
                    }
                })
                .collect(),
        );
        for group in &groups {
            tries.push(Try::Group { user: user.to_string(), topic: own_topic(user), group: group.clone() });
            expected.push(vec![if may_join(user, group) {
                Access::Allowed
            } else {
                Access::Denied(RDKafkaErrorCode::GroupAuthorizationFailed)
            }]);
        }
        for stage in ["ingest", "columnar"] {
            tries.push(Try::Transaction { user: user.to_string(), id: format!("{}-{stage}-0", d.app_id) });
            expected.push(vec![Access::Denied(RDKafkaErrorCode::TransactionalIdAuthorizationFailed)]);
        }
    }
    let matrix_started = Instant::now();
    let found = run_all(b, &tries, 8);
    let cells: usize = expected.iter().map(Vec::len).sum();
    let wrong: Vec<String> = tries
        .iter()
        .zip(found.iter().zip(&expected))
        .filter(|(_, (f, e))| f != e)
        .map(|(t, (f, e))| format!("{t:?}: found {f:?}, expected {e:?}"))
        .collect();
    assert!(wrong.is_empty(), "{} of {cells} cells differ:\n{}", wrong.len(), wrong.join("\n"));
    let allowed = found.iter().flatten().filter(|a| **a == Access::Allowed).count();
    eprintln!(
        "isolation matrix: {cells} cells ({allowed} allowed, {} denied; {} users, {} topics, {} groups) in {:.1} s",
        cells - allowed,
        readers.len(),
        topics.len(),
        groups.len(),
        matrix_started.elapsed().as_secs_f64()
    );

    // ---- iocflow runs as User:iocflow with only its plan, exactly-once.
    let running = harness::Running::start(&d.config, &[]);
    let feed = |name: &str| d.feeds.iter().find(|f| f.0 == name).unwrap();
    let (_, industry, industry_user) = feed("industry-clear");
    produce_as(
        b,
        industry_user,
        industry,
        &[
            r#"{"type": "domain", "value": "secure-test.example.sg", "tlp": "GREEN"}"#,
            r#"{"type": "domain", "value": "secure-test.example.my", "tlp": "GREEN"}"#,
        ],
    );
    let (_, member_sg, member_sg_user) = feed("member-sg");
    produce_as(b, member_sg_user, member_sg, &[r#"{"type": "domain", "value": "amber-test.example.th"}"#]);
    let expected_values: BTreeMap<&str, &str> =
        [("SG", "secure-test.example.sg"), ("MY", "secure-test.example.my"), ("TH", "amber-test.example.th")].into();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (cc, value) in &expected_values {
        let (_, topic, user, prefix) = d.certs.iter().find(|c| c.0 == *cc).unwrap();
        while !values(&read_as(b, user, topic, prefix)).contains(*value) {
            assert!(Instant::now() < deadline, "{cc} did not receive {value}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // Each CERT, as its own user in its own group, reads exactly what was meant for it.
    for (cc, topic, user, prefix) in &d.certs {
        let got = values(&read_as(b, user, topic, prefix));
        let want: BTreeSet<String> = expected_values.get(cc.as_str()).map(|v| v.to_string()).into_iter().collect();
        assert_eq!(got, want, "{cc}");
    }
    // SingCERT, as its own user, writes a sighting to its own sightings topic: its view shows it.
    let (sg_user, sg_sightings) = d.sightings.iter().find(|s| s.0 == "User:cert-sg").unwrap();
    let sighting = r#"{"kind": "sighting", "type": "domain", "value": "secure-test.example.sg", "tlp": "GREEN"}"#;
    produce_as(b, sg_user, sg_sightings, &[sighting]);
    let (_, sg_topic, _, sg_prefix) = d.certs.iter().find(|c| c.0 == "SG").unwrap();
    let shows_it = || read_as(b, sg_user, sg_topic, sg_prefix).iter().any(|r| r.json()["sighted_by"] == json!(["SG"]));
    while !shows_it() {
        assert!(Instant::now() < deadline, "SG's sighting did not reach its view");
        std::thread::sleep(Duration::from_millis(500));
    }
    // The auditors read the dead letters (the matrix's test records) in their own group.
    let dead = read_as(b, auditor, &d.internal("dlq"), &format!("{}-audit-", d.app_id));
    assert!(!dead.is_empty(), "the write checks' records are dead letters the auditors can read");
    // And `iocflow explain` answers as an auditor: the deployment's config with the auditor's
    // identity in [kafka.client], nothing but the plan's read access.
    let mut as_auditor: toml::Table = std::fs::read_to_string(&d.config).unwrap().parse().unwrap();
    let client: toml::Table = b
        .kafka_client_entries(auditor.strip_prefix("User:").unwrap())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    as_auditor["kafka"].as_table_mut().unwrap().insert("client".into(), client.into());
    let auditor_config = d.dir.path().join("auditor.toml");
    std::fs::write(&auditor_config, toml::to_string(&as_auditor).unwrap()).unwrap();
    let args = ["explain", "--config", auditor_config.to_str().unwrap(), "--type", "domain"];
    let (out, _) =
        run(&outputs, &[&args[..], &["--value", "secure-test[.]example[.]sg", "--cert", "SG", "--json"]].concat());
    assert!(out.status.success(), "explain as the auditor: {}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["certs"][0]["verdict"], "received", "{answer:#}");
    let metrics = running.http_get("/metrics");
    assert!(metrics.contains("iocflow_transactions_total"), "{metrics}");
    outputs.lock().unwrap().push(metrics);

    // ---- Verification against the broker: clean, then two over-broad bindings.
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--verify", "--admin", admin]);
    assert!(out.status.success(), "{}", stdout(&out));
    let topic_of = |cc: &str| d.certs.iter().find(|c| c.0 == cc).unwrap().1.clone();
    let broad = [
        AclBinding {
            principal: "User:cert-my".into(),
            permission: Permission::Allow,
            operation: Operation::Read,
            resource: Resource::Topic,
            name: topic_of("SG"),
            pattern: Pattern::Literal,
            host: "*".into(),
        },
        AclBinding {
            principal: "User:*".into(),
            permission: Permission::Allow,
            operation: Operation::Read,
            resource: Resource::Topic,
            name: topic_of("TH"),
            pattern: Pattern::Literal,
            host: "*".into(),
        },
    ];
    let client = admin_client(b);
    iocflow::kafka::acl_admin::create(client.client(), &broad, Duration::from_secs(30)).unwrap();
    // They are real: MyCERT reads SingCERT's topic, anyone ThaiCERT's.
    assert_eq!(read_access(b, "cert-my", "cert-my-read-check", &topic_of("SG")), Access::Allowed);
    assert_eq!(read_access(b, "cert-vn", "cert-vn-read-check", &topic_of("TH")), Access::Allowed);
    for args in [
        vec!["acls", "--config", d.path(), "--verify", "--admin", admin],
        vec!["check", "--config", d.path(), "--admin", admin],
    ] {
        let (out, _) = run(&outputs, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?} must fail: {}", stdout(&out));
        for b in &broad {
            assert!(stdout(&out).contains(&format!("  {b}\n")), "{args:?} does not name {b}: {}", stdout(&out));
        }
        assert!(stderr(&out).contains("0 missing, 2 beyond it"), "{}", stderr(&out));
    }
    assert_eq!(iocflow::kafka::acl_admin::delete(client.client(), &broad, Duration::from_secs(30)).unwrap(), 2);
    let (out, _) = run(&outputs, &["acls", "--config", d.path(), "--verify", "--admin", admin]);
    assert!(out.status.success(), "{}", stdout(&out));

    let log = running.log.clone();
    assert!(running.terminate().success(), "iocflow run did not exit cleanly");
    outputs.lock().unwrap().extend(log.lock().unwrap().iter().cloned());
    assert_no_secret(b, &outputs.lock().unwrap(), &[]);
    clean_up(b, &d);
    eprintln!("secured-broker test: {:.1} s", started.elapsed().as_secs_f64());
}

/// Writes `text` to a file in `dir` and returns its path.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_refused_connection_names_its_cause_within_30_s() {
    let b = secure_broker();
    let outputs = Mutex::new(Vec::new());
    let work = tempfile::tempdir().unwrap();
    let wrong_password = "not-the-password-7f3a9c";
    let wrong = file(work.path(), "wrong.password", wrong_password);
    // A CA that signed nothing the broker has.
    let other_ca = work.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=another CA", "-keyout"])
        .arg(work.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let controller = format!("127.0.0.1:{}", b.bootstrap.rsplit(':').next().unwrap().parse::<u16>().unwrap() + 1);
    let client = |t: &mut toml::Table, key: &str, value: &str| {
        t["kafka"]["client"].as_table_mut().unwrap().insert(key.into(), value.into());
    };
    let cases: Vec<(&str, Deployment, String)> = vec![
        (
            "a wrong password",
            Deployment::new(b, &harness::unique_app_id("wrong-password"), |t| {
                client(t, "sasl.password", &format!("${{file:{wrong}}}"))
            }),
            "SASL authentication failed for user \"iocflow\" (SCRAM-SHA-512)".into(),
        ),
        (
            "an unknown user",
            Deployment::new(b, &harness::unique_app_id("unknown-user"), |t| {
                client(t, "sasl.username", "nobody-at-all")
            }),
            "SASL authentication failed for user \"nobody-at-all\"".into(),
        ),
        (
            "an unknown CA",
            Deployment::new(b, &harness::unique_app_id("unknown-ca"), |t| {
                client(t, "ssl.ca.location", other_ca.to_str().unwrap())
            }),
            "TLS certificate verification failed".into(),
        ),
        (
            "no broker",
            Deployment::new(b, &harness::unique_app_id("no-broker"), |t| {
                t["kafka"]
                    .as_table_mut()
                    .unwrap()
                    .insert("bootstrap_servers".into(), format!("127.0.0.1:{closed}").into());
            }),
            format!("no Kafka broker answered at 127.0.0.1:{closed}"),
        ),
        (
            "the controller listener without a client certificate",
            Deployment::new(b, &harness::unique_app_id("controller"), |t| {
                t["kafka"].as_table_mut().unwrap().insert("bootstrap_servers".into(), controller.clone().into());
                let c = t["kafka"]["client"].as_table_mut().unwrap();
                c.retain(|k, _| k == "ssl.ca.location");
                c.insert("security.protocol".into(), "SSL".into());
            }),
            "refused this client's TLS certificate".into(),
        ),
    ];
    for (what, d, message) in &cases {
        for command in ["check", "run"] {
            if command == "run" && *what == "no broker" {
                // `run` waits for a broker (README, "Starting without a broker"): no exit, but
                // a log line naming the address and the cause.
                let mut running = harness::Running::start(std::path::Path::new(d.path()), &[]);
                let started = Instant::now();
                while !running.log.lock().unwrap().iter().any(|l| l.contains(message.as_str())) {
                    assert!(started.elapsed() < Duration::from_secs(30), "run with {what} logged no cause");
                    std::thread::sleep(Duration::from_millis(100));
                }
                assert!(running.is_running(), "run with {what} exited instead of waiting");
                outputs.lock().unwrap().push(running.log.lock().unwrap().join("\n"));
                running.kill();
                continue;
            }
            let (out, took) = run(&outputs, &[command, "--config", d.path()]);
            assert!(!out.status.success(), "{command} with {what} succeeded");
            assert!(took < Duration::from_secs(30), "{command} with {what} took {took:?}");
            assert!(stderr(&out).contains(message.as_str()), "{command} with {what}: {}", stderr(&out));
        }
    }
    // The admin identity's errors name their cause too.
    let props = std::fs::read_to_string(b.admin_properties()).unwrap();
    let wrong_admin = file(
        work.path(),
        "wrong-admin.properties",
        &props
            .lines()
            .map(|l| {
                if l.starts_with("sasl.password=") { format!("sasl.password=${{file:{wrong}}}") } else { l.to_string() }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let (_, d, _) = &cases[0];
    let (out, took) = run(&outputs, &["acls", "--config", d.path(), "--verify", "--admin", &wrong_admin]);
    assert!(!out.status.success() && took < Duration::from_secs(30));
    assert!(stderr(&out).contains("SASL authentication failed for user \"admin\""), "{}", stderr(&out));
    assert_no_secret(b, &outputs.lock().unwrap(), &[wrong_password]);
}
