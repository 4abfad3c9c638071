//! librdkafka client settings: what every consumer and producer of iocflow is built from.
//!
//! The user's `[kafka.client]` properties (security, SASL, TLS …) come first; then iocflow sets
//! what its delivery guarantees rest on, which the configuration check refuses to override.

use crate::config::{Config, Delivery};
use crate::kafka::client_properties::ClientProperties;
use rdkafka::config::ClientConfig;

fn base(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.bootstrap_servers);
    c.set("client.id", &config.app_id);
    // Statistics feed the lag, queue and round-trip gauges (`telemetry/client_stats.rs`).
    c.set("statistics.interval.ms", "5000");
    for (k, v) in config.kafka.client.iter() {
        c.set(k, v);
    }
    c
}

/// A consumer in `group` that starts at the earliest offset when the group has none (no feed
/// record is ever skipped), reads committed data only, and commits only offsets iocflow stored
/// after delivering everything derived from them.
///
/// In exactly-once mode the consumer commits nothing itself: offsets go into the producer's
/// transactions.
///
/// The consumer is a dynamic group member, not a static one (`group.instance.id`): a static
/// member whose session expires while the broker stalls is fenced by its own rejoin or, at times,
/// left hanging with no assignment and no error (librdkafka issue #3437; seen here in
/// `tests/broker_faults.rs`). A dynamic member rejoins under a new member id. What static
/// membership bought, a restarted replica taking its partitions back without a rebalance, costs
/// one rebalance per restart; two processes with one ordinal still fence each other's
/// transactions.
pub fn consumer(config: &Config, stage: &str) -> ClientConfig {
    let mut c = base(config);
    let group = config.group(stage);
    let session = config.kafka.session_timeout.as_millis() as u64;
    let auto_commit = config.kafka.delivery == Delivery::AtLeastOnce;
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", auto_commit.to_string())
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 4).max(250).to_string())
        .set("enable.partition.eof", "false");
    fetch_sizes(&mut c, config);
    c
}

/// Fetches that hold the largest message iocflow's topics admit (librdkafka's defaults, 50 MB
/// a fetch and 100 MB a response, unless `[limits]` needs more).
fn fetch_sizes(c: &mut ClientConfig, config: &Config) {
    let fetch = config.limits.max_message_bytes().max(52_428_800);
    c.set("fetch.max.bytes", fetch.to_string())
        .set("receive.message.max.bytes", (fetch + 512).max(100_000_000).to_string());
}

/// Producer settings that only tune speed: `[kafka.client]` may override them.
const PRODUCER_TUNING: [(&str, &str); 3] =
    [("compression.type", "zstd"), ("linger.ms", "5"), ("batch.size", "1000000")];

/// An idempotent producer that waits for every in-sync replica.
pub fn producer(config: &Config) -> ClientConfig {
    let mut c = base(config);
    c.set("acks", "all").set("enable.idempotence", "true").set("message.timeout.ms", "60000");
    // The largest message its topics admit (`topics.rs` sets their `max.message.bytes` alike).
    c.set("message.max.bytes", config.limits.max_message_bytes().to_string());
    for (key, value) in PRODUCER_TUNING {
        if !config.kafka.client.contains_key(key) {
            c.set(key, value);
        }
    }
    c
}

/// A transactional producer for `stage` of this replica (exactly-once): its id is stable across
/// restarts, and its message timeout stays below the transaction timeout.
pub fn transactional_producer(config: &Config, stage: &str) -> ClientConfig {
    let mut c = producer(config);
    let txn = config.kafka.transaction_timeout.as_millis() as u64;
    c.set("transactional.id", config.transactional_id(stage))
        .set("transaction.timeout.ms", txn.to_string())
        .set("message.timeout.ms", (txn - txn / 10).to_string());
    c
}

/// A reader of committed records that reports the end of a partition (state restore).
pub fn reader(config: &Config) -> ClientConfig {
    read_committed(config, config.restore_group())
}

/// A reader like [`reader`] in a group under the auditors' prefix (`<app>-audit-<tool>`): what
/// `iocflow explain` reads the changelog with, as an auditor may (the ACL plan).
pub fn audit_reader(config: &Config, tool: &str) -> ClientConfig {
    read_committed(config, format!("{}{tool}", config.audit_group_prefix()))
}

fn read_committed(config: &Config, group: String) -> ClientConfig {
    let mut c = base(config);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10");
    fetch_sizes(&mut c, config);
    c
}

/// An admin client (topic creation and metadata) as iocflow's own principal.
pub fn admin(config: &Config) -> ClientConfig {
    base(config)
}

/// A client as another identity (`--admin FILE`: one that may create and describe ACLs): only
/// its own properties, and the config's bootstrap servers unless it names its own.
pub(crate) fn admin_identity(config: &Config, props: &ClientProperties) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.bootstrap_servers);
    c.set("client.id", format!("{}-admin", config.app_id));
    for (k, v) in props.iter() {
        c.set(k, v);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(client: &str) -> String {
        format!(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n{client}\n[[feeds]]\nname = \"f\"\ntopic = \"feeds.f\"\n\
             format = \"json\"\nprovider = \"P\"\ntlp = \"GREEN\"\n[[certs]]\ncountry = \"SG\"\nname = \"SingCERT\"\n"
        )
    }

    #[test]
    fn producer_tuning_may_be_overridden_and_the_guarantees_may_not() {
        let default = producer(&Config::parse(&text("")).unwrap());
        assert_eq!(default.get("compression.type"), Some("zstd"));
        let tuned = Config::parse(&text("[kafka.client]\n\"compression.type\" = \"lz4\"\n\"linger.ms\" = \"20\"\n"));
        let tuned = producer(&tuned.unwrap());
        assert_eq!((tuned.get("compression.type"), tuned.get("linger.ms")), (Some("lz4"), Some("20")));
        assert_eq!((tuned.get("acks"), tuned.get("enable.idempotence")), (Some("all"), Some("true")));
        let e = Config::parse(&text("[kafka.client]\nacks = \"1\"\n")).unwrap_err().to_string();
        assert!(e.contains("acks"), "{e}");
    }
}
