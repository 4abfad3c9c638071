//! Every topic a deployment needs, with its partitions, retention and cleanup policy
//! (`iocflow topics`); the ACLs on them are `acls.rs`.
//!
//! The plan is derived from the configuration alone, so `iocflow topics` prints exactly what
//! `iocflow topics --create` makes and what `iocflow run` expects to find.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kafka::client_config;
use crate::kafka::connection;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeSet;
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
    /// A CERT's sightings: written by that CERT, read by the ingest stage.
    Sightings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub role: Role,
    pub partitions: u32,
    pub cleanup_policy: &'static str,
    pub retention_ms: u64,
    /// The largest message the topic must admit (`max.message.bytes`): the same for every topic,
    /// from `[limits]` ([`LimitsConfig::max_message_bytes`](crate::config::LimitsConfig::max_message_bytes)).
    pub max_message_bytes: usize,
}

/// The topics of a deployment, in data-flow order.
pub fn plan(config: &Config) -> Vec<TopicSpec> {
    let max_message_bytes = config.limits.max_message_bytes();
    let spec = |name: String, role, partitions, cleanup_policy, days| TopicSpec {
        name,
        role,
        partitions,
        cleanup_policy,
        retention_ms: days * DAY_MS,
        max_message_bytes,
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
    topics.extend(
        config.certs.iter().map(|c| spec(c.sightings_topic(), Role::Sightings, k.topic_partitions, "delete", 30)),
    );
    topics
}

/// How long `check`, `topics --create` and `run` wait for a broker to answer at start.
pub(crate) const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// Creates every planned topic that does not exist yet and returns the names it created; a topic
/// that exists already passes if its settings are right, and fails naming the wrong ones.
///
/// It runs as iocflow's own principal: the ACL plan grants it CREATE on exactly these topics.
pub async fn create(config: &Config) -> Result<Vec<String>> {
    connect(config).await?;
    let admin: AdminClient<DefaultClientContext> = client_config::admin(config).create()?;
    let planned = plan(config);
    let retention: Vec<String> = planned.iter().map(|t| t.retention_ms.to_string()).collect();
    let max_message = planned.first().map(|t| t.max_message_bytes.to_string()).unwrap_or_default();
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
            .set("max.message.bytes", &max_message)
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
    inspect(config, Duration::from_secs(30)).await?.judge(Strictness::SizesWarn)?;
    Ok(created)
}

/// Waits (off the executor) until a broker answers as the config's client; the error names why not.
async fn connect(config: &Config) -> Result<()> {
    let settings = client_config::admin(config);
    tokio::task::spawn_blocking(move || connection::connect(&settings, CONNECT_PATIENCE).map(drop))
        .await
        .expect("connecting does not panic")
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
pub(crate) fn partition_counts(config: &Config, names: &[String]) -> Result<Vec<Option<u32>>> {
    let client: BaseConsumer = client_config::admin(config).create()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let md = client.fetch_metadata(Some(name), Duration::from_secs(10))?;
        let count = md.topics().first().filter(|t| t.error().is_none()).map(|t| t.partitions().len() as u32);
        out.push(count);
    }
    Ok(out)
}

/// How a topic that admits smaller messages than `[limits]` allows is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// `iocflow check`: an error, like every other wrong setting.
    SizesFail,
    /// `iocflow run` and `topics --create`: a warning, so that a deployment whose topics predate
    /// the setting still starts (and upgrades); the records too large for a topic are refused to
    /// their producer by the broker, not lost inside iocflow.
    SizesWarn,
}

/// What [`inspect`] found.
#[derive(Debug, Default)]
struct Findings {
    /// Settings that break iocflow.
    problems: Vec<String>,
    /// Topics that admit smaller messages than `[limits]` allows.
    too_small: Vec<String>,
}

impl Findings {
    fn judge(self, strictness: Strictness) -> Result<()> {
        let mut problems = self.problems;
        match strictness {
            Strictness::SizesFail => problems.extend(self.too_small),
            Strictness::SizesWarn => {
                for t in &self.too_small {
                    tracing::warn!("{t}");
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Topics(problems.join("; "))) }
    }
}

/// Connects, then checks that every planned topic exists with the settings iocflow relies on
/// (`iocflow check`, and `iocflow run` before it starts).
pub async fn verify(config: &Config, strictness: Strictness) -> Result<()> {
    connect(config).await?;
    inspect(config, Duration::from_secs(5)).await?.judge(strictness)
}

/// What is wrong with the planned topics on the broker, one message each: missing topics, and
/// existing ones whose settings break iocflow:
/// - `<app>.indicators` and the changelog `<app>.state` must have the configured partition
///   count: ingest partitions by `hash(id) mod N`, so a different N would split one indicator's
///   reports over two partitions and break dedupe, and changelog partition p must hold exactly
///   indicator partition p's state;
/// - the cleanup policy: the changelog must be compacted (it is the state), CERT topics compacted
///   (a revocation replaces the record of its key);
/// - the changelog must keep its records forever (`retention.ms = -1`);
/// - every topic should admit the largest message `[limits]` allows (`max.message.bytes`): a
///   feed record of `max_record_bytes` refused by its topic never reaches the dead-letter topic
///   (its producer gets the error). Reported apart ([`Findings::too_small`]): see [`Strictness`].
///
/// Retention of the other topics and the partitions of feed and CERT topics are the operator's
/// to tune. Settings iocflow may not read (no DESCRIBE_CONFIGS: an ACL set from before the plan
/// granted it) are logged as unchecked, not failed.
async fn inspect(config: &Config, patience: Duration) -> Result<Findings> {
    let planned = plan(config);
    let names: Vec<String> = planned.iter().map(|t| t.name.clone()).collect();
    let c = config.clone();
    let counts = tokio::task::spawn_blocking(move || missing_after(&c, &names, patience))
        .await
        .expect("metadata check does not panic")?;
    let missing: Vec<&str> =
        planned.iter().zip(&counts).filter(|(_, c)| c.is_none()).map(|(t, _)| t.name.as_str()).collect();
    if !missing.is_empty() {
        let names = missing.join(", ");
        return Err(Error::MissingTopics(format!(
            "missing topics {names}: run `iocflow topics --config FILE --create`"
        )));
    }
    let mut found = Findings::default();
    for (t, c) in planned.iter().zip(&counts) {
        if matches!(t.role, Role::Indicators | Role::State) && *c != Some(t.partitions) {
            found.problems.push(format!(
                "{} has {} partitions but kafka.partitions = {}",
                t.name,
                c.unwrap_or(0),
                t.partitions
            ));
        }
    }
    let admin: AdminClient<DefaultClientContext> = client_config::admin(config).create()?;
    let specifiers: Vec<ResourceSpecifier> = planned.iter().map(|t| ResourceSpecifier::Topic(&t.name)).collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    for (t, described) in planned.iter().zip(admin.describe_configs(&specifiers, &opts).await?) {
        match described {
            Ok(resource) => {
                let value = |name: &str| resource.get(name).and_then(|e| e.value.clone()).unwrap_or_default();
                found.problems.extend(wrong_settings(t, &value("cleanup.policy"), &value("retention.ms")));
                found.too_small.extend(too_small(t, &value("max.message.bytes")));
            }
            Err(code) => tracing::warn!(
                "the settings of {} were not checked ({code}): iocflow's principal needs DESCRIBE_CONFIGS on it \
                 (`iocflow acls --apply`)",
                t.name
            ),
        }
    }
    Ok(found)
}

/// The settings of an existing topic that break iocflow (see [`inspect`]).
fn wrong_settings(t: &TopicSpec, cleanup_policy: &str, retention_ms: &str) -> Vec<String> {
    let policies = |p: &str| -> BTreeSet<String> { p.split(',').map(|s| s.trim().to_string()).collect() };
    let mut wrong = Vec::new();
    if policies(cleanup_policy) != policies(t.cleanup_policy) {
        wrong.push(format!("{} has cleanup.policy={cleanup_policy} but needs {}", t.name, t.cleanup_policy));
    }
    if t.role == Role::State && retention_ms != "-1" {
        wrong.push(format!("{} has retention.ms={retention_ms} but needs -1 (it holds the state)", t.name));
    }
    wrong
}

/// Whether an existing topic admits the largest message `[limits]` allows (see [`inspect`]).
fn too_small(t: &TopicSpec, max_message_bytes: &str) -> Option<String> {
    max_message_bytes.parse::<usize>().ok().filter(|m| *m < t.max_message_bytes).map(|_| {
        format!(
            "{} has max.message.bytes={max_message_bytes} but [limits] needs at least {} \
             (kafka-configs.sh --alter --entity-type topics --entity-name {} --add-config max.message.bytes={})",
            t.name, t.max_message_bytes, t.name, t.max_message_bytes
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_the_config_and_wrong_settings_are_named() {
        let config = Config::parse(crate::config::SAMPLE).unwrap();
        let p = plan(&config);
        let names: Vec<&str> = p.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "feeds.industry",
                "feeds.member",
                "t1.indicators",
                "t1.state",
                "t1.dlq",
                "t1.withheld",
                "cert.my.indicators",
                "cert.sg.indicators",
                "cert.my.sightings",
                "cert.sg.sightings"
            ]
        );
        assert_eq!(p[2].partitions, 4);
        assert_eq!((p[3].partitions, p[3].cleanup_policy), (4, "compact"));
        assert_eq!(p[6].cleanup_policy, "compact,delete");
        let state = &p[3];
        assert!(wrong_settings(state, "compact", "-1").is_empty());
        assert_eq!(
            wrong_settings(state, "delete", "604800000"),
            [
                "t1.state has cleanup.policy=delete but needs compact",
                "t1.state has retention.ms=604800000 but needs -1 (it holds the state)"
            ]
        );
        // The order of a policy list does not matter; retention is the operator's to tune.
        assert!(wrong_settings(&p[6], "delete,compact", "86400000").is_empty());
        assert_eq!(wrong_settings(&p[6], "delete", "86400000").len(), 1);
        // Every topic admits the largest record [limits] allows, with room for Kafka's framing.
        let needed = config.limits.max_record_bytes + crate::config::MESSAGE_OVERHEAD;
        assert!(p.iter().all(|t| t.max_message_bytes == needed));
        let small = too_small(&p[0], "1048588").unwrap();
        assert!(small.starts_with(&format!(
            "feeds.industry has max.message.bytes=1048588 but [limits] needs at least {needed}"
        )));
        assert_eq!(too_small(&p[0], &needed.to_string()), None);
    }
}
