//! librdkafka client settings: what every consumer and producer of iocflow is built from.
//!
//! The user's `[kafka.client]` properties (security, SASL, TLS …) come first; then iocflow sets
//! what its delivery guarantees rest on, which the configuration check refuses to override.

use crate::config::Config;
use rdkafka::config::ClientConfig;

fn base(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.bootstrap_servers);
    c.set("client.id", &config.app_id);
    for (k, v) in &config.kafka.client {
        c.set(k, v);
    }
    c
}

/// A consumer in `group` that starts at the earliest offset when the group has none (no feed
/// record is ever skipped), reads committed data only, and commits only offsets iocflow stored
/// after delivering everything derived from them.
pub fn consumer(config: &Config, group: &str) -> ClientConfig {
    let mut c = base(config);
    let session = config.kafka.session_timeout_ms;
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 4).max(250).to_string())
        .set("enable.partition.eof", "false");
    c
}

/// An idempotent producer that waits for every in-sync replica.
pub fn producer(config: &Config) -> ClientConfig {
    let mut c = base(config);
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "zstd")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("message.timeout.ms", "60000");
    c
}

/// An admin client (topic creation and metadata).
pub fn admin(config: &Config) -> ClientConfig {
    base(config)
}
