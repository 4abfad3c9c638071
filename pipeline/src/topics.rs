//! Every topic a deployment needs, with its partitions, retention and cleanup policy, and the
//! ACL bindings of each principal (`iocflow topics`).
//!
//! The plan is derived from the configuration alone, so `iocflow topics` prints exactly what
//! `iocflow topics --create` makes and what `iocflow run` expects to find.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kafka_client;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// What a topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Feed,
    Indicators,
    State,
    DeadLetters,
    Withheld,
    Cert,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub role: Role,
    pub partitions: u32,
    pub cleanup_policy: &'static str,
    pub retention_ms: u64,
}

/// The topics of a deployment, in data-flow order.
pub fn plan(config: &Config) -> Vec<TopicSpec> {
    let spec = |name: String, role, partitions, cleanup_policy, days| TopicSpec {
        name,
        role,
        partitions,
        cleanup_policy,
        retention_ms: days * DAY_MS,
    };
    let k = &config.kafka;
    let mut topics: Vec<TopicSpec> =
        config.feeds.iter().map(|f| spec(f.topic.clone(), Role::Feed, k.topic_partitions, "delete", 7)).collect();
    topics.push(spec(config.indicators_topic(), Role::Indicators, k.partitions, "delete", 3));
    // Compacted without time retention: it holds the live state, one record per indicator.
    topics.push(TopicSpec { retention_ms: 0, ..spec(config.state_topic(), Role::State, k.partitions, "compact", 0) });
    topics.push(spec(config.dlq_topic(), Role::DeadLetters, 1, "delete", 30));
    topics.push(spec(config.withheld_topic(), Role::Withheld, 1, "delete", 30));
    topics.extend(config.certs.iter().map(|c| spec(c.topic(), Role::Cert, k.topic_partitions, "compact,delete", 30)));
    topics
}

/// The ACL bindings each principal needs, one line each, in `kafka-acls` terms: least privilege.
///
/// - each feed's producer principal: WRITE on its own feed topic only;
/// - each CERT principal: READ on its own topic and on its consumer groups (by prefix);
/// - iocflow's principal: READ on the feeds, everything on its internal topics, WRITE on the
///   CERT topics, its consumer groups and transactional ids (by the `app_id` prefix);
/// - the auditors (`[access] auditors`): READ on the dead letters and the withheld audit topic,
///   which no CERT or producer can read.
pub fn acl_bindings(config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    let mut allow = |principal: &str, op: &str, kind: &str, name: &str, pattern: &str| {
        lines.push(format!("ALLOW {principal} {op} {kind} {name} ({pattern})"));
    };
    for f in &config.feeds {
        let principal = f.principal.clone().unwrap_or_else(|| format!("User:feed-{}", f.name));
        allow(&principal, "WRITE", "TOPIC", &f.topic, "literal");
    }
    for c in &config.certs {
        allow(&c.principal(), "READ", "TOPIC", &c.topic(), "literal");
        allow(&c.principal(), "READ", "GROUP", &c.group_prefix(), "prefixed");
    }
    let me = config.access.principal.as_str();
    for f in &config.feeds {
        allow(me, "READ", "TOPIC", &f.topic, "literal");
    }
    for topic in [config.indicators_topic(), config.state_topic()] {
        allow(me, "READ", "TOPIC", &topic, "literal");
        allow(me, "WRITE", "TOPIC", &topic, "literal");
    }
    for topic in [config.dlq_topic(), config.withheld_topic()] {
        allow(me, "WRITE", "TOPIC", &topic, "literal");
    }
    for c in &config.certs {
        allow(me, "WRITE", "TOPIC", &c.topic(), "literal");
    }
    allow(me, "READ", "GROUP", &config.app_id, "prefixed");
    allow(me, "WRITE", "TRANSACTIONAL_ID", &config.app_id, "prefixed");
    allow(me, "DESCRIBE", "TRANSACTIONAL_ID", &config.app_id, "prefixed");
    allow(me, "IDEMPOTENT_WRITE", "CLUSTER", "kafka-cluster", "literal");
    for auditor in &config.access.auditors {
        for topic in [config.dlq_topic(), config.withheld_topic()] {
            allow(auditor, "READ", "TOPIC", &topic, "literal");
        }
        allow(auditor, "READ", "GROUP", &format!("{}-audit", config.app_id), "prefixed");
    }
    lines
}

/// Creates every planned topic that does not exist yet; returns the names it created.
pub async fn create(config: &Config) -> Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = kafka_client::admin(config).create()?;
    let planned = plan(config);
    let retention: Vec<String> = planned.iter().map(|t| t.retention_ms.to_string()).collect();
    let new: Vec<NewTopic> = planned
        .iter()
        .zip(&retention)
        .map(|(t, ms)| {
            NewTopic::new(
                &t.name,
                t.partitions as i32,
                TopicReplication::Fixed(i32::from(config.kafka.replication_factor)),
            )
            .set("cleanup.policy", t.cleanup_policy)
            .set("retention.ms", if t.retention_ms == 0 { "-1" } else { ms })
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut created = Vec::new();
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(Error::Topics(format!("creating {name}: {code}"))),
        }
    }
    // The controller has accepted them; wait until the brokers' metadata shows them, so that a
    // `run` started right after finds them.
    let names: Vec<String> = planned.iter().map(|t| t.name.clone()).collect();
    let c = config.clone();
    tokio::task::spawn_blocking(move || missing_after(&c, &names, Duration::from_secs(30)))
        .await
        .expect("metadata check does not panic")?;
    Ok(created)
}

/// The topics of `names` still missing after waiting up to `patience` for them to appear
/// (a topic just created takes a moment to reach every broker's metadata).
fn missing_after(config: &Config, names: &[String], patience: Duration) -> Result<Vec<Option<u32>>> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let counts = partition_counts(config, names)?;
        if counts.iter().all(Option::is_some) || std::time::Instant::now() >= deadline {
            return Ok(counts);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The partition count of each named topic on the broker (`None`: the topic does not exist).
pub fn partition_counts(config: &Config, names: &[String]) -> Result<Vec<Option<u32>>> {
    let client: BaseConsumer = kafka_client::admin(config).create()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let md = client.fetch_metadata(Some(name), Duration::from_secs(10))?;
        let count = md.topics().first().filter(|t| t.error().is_none()).map(|t| t.partitions().len() as u32);
        out.push(count);
    }
    Ok(out)
}

/// Checks that every planned topic exists and that `<app>.indicators` and the changelog
/// `<app>.state` have the configured partition count: ingest partitions by `hash(id) mod N`, so
/// a different N would split one indicator's reports over two partitions and break dedupe, and
/// changelog partition p must hold exactly indicator partition p's state.
pub fn verify(config: &Config) -> Result<()> {
    let planned = plan(config);
    let names: Vec<String> = planned.iter().map(|t| t.name.clone()).collect();
    let counts = missing_after(config, &names, Duration::from_secs(5))?;
    let missing: Vec<&str> =
        planned.iter().zip(&counts).filter(|(_, c)| c.is_none()).map(|(t, _)| t.name.as_str()).collect();
    if !missing.is_empty() {
        return Err(Error::Topics(format!(
            "missing topics {}: run `iocflow topics --config FILE --create`",
            missing.join(", ")
        )));
    }
    for (t, c) in planned.iter().zip(&counts) {
        if matches!(t.role, Role::Indicators | Role::State) && *c != Some(t.partitions) {
            return Err(Error::Topics(format!(
                "{} has {} partitions but kafka.partitions = {}",
                t.name,
                c.unwrap_or(0),
                t.partitions
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_and_acls_follow_the_config() {
        let config = Config::parse(
            r#"
            app_id = "t1"
            [kafka]
            bootstrap_servers = "x:1"
            partitions = 4
            [[feeds]]
            name = "industry"
            topic = "feeds.industry"
            format = "json"
            provider = "V"
            tlp = "green"
            principal = "User:vendor"
            [[certs]]
            country = "MY"
            name = "MyCERT"
            [access]
            principal = "User:pipeline"
            auditors = ["User:soc-audit"]
            "#,
        )
        .unwrap();
        let p = plan(&config);
        let names: Vec<&str> = p.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["feeds.industry", "t1.indicators", "t1.state", "t1.dlq", "t1.withheld", "cert.my.indicators"]
        );
        assert_eq!(p[1].partitions, 4);
        assert_eq!((p[2].partitions, p[2].cleanup_policy), (4, "compact"));
        assert_eq!(p[5].cleanup_policy, "compact,delete");
        let acls = acl_bindings(&config);
        assert!(acls.contains(&"ALLOW User:vendor WRITE TOPIC feeds.industry (literal)".to_string()));
        assert!(acls.contains(&"ALLOW User:cert-my READ GROUP cert-my (prefixed)".to_string()));
        assert!(acls.contains(&"ALLOW User:pipeline WRITE TRANSACTIONAL_ID t1 (prefixed)".to_string()));
        // Dead letters and withheld reports: written by iocflow, read by the auditors only.
        for topic in ["t1.dlq", "t1.withheld"] {
            let readers: Vec<&str> = acls
                .iter()
                .filter(|l| l.contains(&format!("READ TOPIC {topic} ")))
                .map(|l| l.split(' ').nth(1).unwrap())
                .collect();
            assert_eq!(readers, ["User:soc-audit"], "{topic}");
        }
        // A CERT reads its own topic and nothing else.
        let cert: Vec<&String> = acls.iter().filter(|l| l.contains("User:cert-my ")).collect();
        assert_eq!(cert.len(), 2, "{cert:?}");
        // A producer writes its own feed topic and nothing else.
        assert_eq!(acls.iter().filter(|l| l.contains("User:vendor ")).count(), 1);
    }
}
