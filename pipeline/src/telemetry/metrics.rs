//! Prometheus metrics and the HTTP endpoint that serves them with the health probes.
//!
//! One registry owned by the application (no global default registry), handed to the stages.
//! Stages update counters once per batch with the batch's totals, never per event, and every
//! label has a bounded set of values (feed and CERT names from the config, reasons from fixed
//! vocabularies).

use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Every metric iocflow exports.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub records_received: IntCounterVec,
    pub records_dead_lettered: IntCounterVec,
    /// Records on the internal topic that were not indicator batches (dead-lettered).
    pub internal_records_corrupt: IntCounter,
    pub reports_decoded: IntCounterVec,
    /// The CERTs' sightings decoded, per CERT and kind.
    pub sightings_received: IntCounterVec,
    pub indicators_emitted: IntCounterVec,
    /// Revocations sent because enough CERTs reported a false positive, per CERT.
    pub false_positive_revocations: IntCounterVec,
    /// Expiries sent (`[decay]`), and records that revived an expired view, per CERT.
    pub expiries: IntCounterVec,
    pub revivals: IntCounterVec,
    pub indicators_suppressed: IntCounter,
    pub reports_withheld: IntCounterVec,
    pub report_outcomes: IntCounterVec,
    pub transactions: IntCounterVec,
    pub enrichment_lookups: IntCounterVec,
    pub enrichment_reloads: IntCounterVec,
    pub enrichment_table_entries: IntGaugeVec,
    pub enrichment_table_load_seconds: GaugeVec,
    pub state_entries: IntGauge,
    pub state_bytes: IntGauge,
    pub state_forgotten: IntCounterVec,
    pub state_growth: Histogram,
    pub batch_duration: HistogramVec,
    pub end_to_end_latency: Histogram,
    /// librdkafka statistics (`client_stats.rs`), every `statistics.interval.ms`.
    pub consumer_lag: IntGaugeVec,
    pub kafka_queue_messages: IntGaugeVec,
    pub kafka_broker_rtt: GaugeVec,
    /// Errors librdkafka reported to a client (a broker gone, a request timed out …).
    pub kafka_errors: IntCounterVec,
}

/// Registers a new metric with the registry and hands it back (a clone shares its values).
fn register<C: Collector + Clone + 'static>(registry: &Registry, metric: prometheus::Result<C>) -> C {
    let metric = metric.expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        let counters =
            |name: &str, help: &str, labels: &[&str]| register(r, IntCounterVec::new(Opts::new(name, help), labels));
        let gauges =
            |name: &str, help: &str, labels: &[&str]| register(r, IntGaugeVec::new(Opts::new(name, help), labels));
        let buckets = |start| prometheus::exponential_buckets(start, 2.0, 14).expect("buckets");
        // The build, as a constant series (the registry keeps it).
        let build_info = register(
            r,
            IntGauge::with_opts(
                Opts::new("iocflow_build_info", "Build of the running iocflow.")
                    .const_label("version", env!("CARGO_PKG_VERSION")),
            ),
        );
        build_info.set(1);
        Metrics {
            records_received: counters("iocflow_records_received_total", "Feed records consumed.", &["feed"]),
            records_dead_lettered: counters(
                "iocflow_records_dead_lettered_total",
                "Feed records written to the dead-letter topic.",
                &["feed", "reason"],
            ),
            internal_records_corrupt: register(
                r,
                IntCounter::new(
                    "iocflow_internal_records_corrupt_total",
                    "Records on the internal indicators topic that are not indicator batches (a stray producer, \
                     a bug), written to the dead-letter topic with their origin instead of stopping the stage.",
                ),
            ),
            state_forgotten: counters(
                "iocflow_state_forgotten_total",
                "Indicators the state forgot: `expired` (not seen for dedupe.ttl) or `evicted` (least recently \
                 seen, to stay within dedupe.max_entries and dedupe.max_bytes). A report of a forgotten indicator \
                 is sent again as new.",
                &["reason"],
            ),
            reports_decoded: counters("iocflow_reports_decoded_total", "Reports decoded from feed records.", &["feed"]),
            sightings_received: counters(
                "iocflow_sightings_received_total",
                "Sightings decoded from a CERT's sightings topic, per CERT and kind (sighting, false_positive, \
                 expiration); refused ones are dead-lettered under the feed sightings.<cc>.",
                &["cert", "kind"],
            ),
            indicators_emitted: counters(
                "iocflow_indicators_emitted_total",
                "Records sent to a CERT topic.",
                &["cert"],
            ),
            false_positive_revocations: counters(
                "iocflow_false_positive_revocations_total",
                "Revocations sent to a CERT because [feedback] false_positive_revoke_after CERTs reported the \
                 indicator a false positive (reason false_positive).",
                &["cert"],
            ),
            expiries: counters(
                "iocflow_expiries_total",
                "Expiries sent to a CERT: its view's score fell to the [decay] threshold (revoked, expired).",
                &["cert"],
            ),
            revivals: counters(
                "iocflow_revivals_total",
                "Records sent to a CERT that revive a view it was last sent the expiry of (a later report or \
                 sighting).",
                &["cert"],
            ),
            indicators_suppressed: register(
                r,
                IntCounter::new(
                    "iocflow_indicators_suppressed_total",
                    "Reports some CERT may see that changed no CERT's view (duplicates).",
                ),
            ),
            reports_withheld: counters(
                "iocflow_reports_withheld_total",
                "Reports no CERT may see, written to the withheld topic.",
                &["reason"],
            ),
            report_outcomes: counters(
                "iocflow_report_outcomes_total",
                "Each decoded report's one outcome: emitted, suppressed, withheld or unrouted.",
                &["outcome"],
            ),
            kafka_errors: counters(
                "iocflow_kafka_errors_total",
                "Errors librdkafka reported, per client (stage and role) and error code: a broker down or \
                 unreachable, requests timing out. Retried by librdkafka and iocflow; a rise says the cluster \
                 is in trouble.",
                &["client", "error"],
            ),
            transactions: counters(
                "iocflow_transactions_total",
                "Transactions per stage and result (committed, aborted), exactly-once mode.",
                &["stage", "result"],
            ),
            enrichment_lookups: counters(
                "iocflow_enrichment_lookups_total",
                "Rows an enricher resolved (hit) or could not (miss), per batch.",
                &["enricher", "result"],
            ),
            enrichment_reloads: counters(
                "iocflow_enrichment_reloads_total",
                "Reloads of the enrichment tables (SIGHUP or a changed file), ok or failed (the old tables stay).",
                &["result"],
            ),
            enrichment_table_entries: gauges(
                "iocflow_enrichment_table_entries",
                "Entries of each enrichment table in use.",
                &["table"],
            ),
            enrichment_table_load_seconds: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "iocflow_enrichment_table_load_seconds",
                        "Time the last load of each enrichment table took.",
                    ),
                    &["table"],
                ),
            ),
            state_entries: register(r, IntGauge::new("iocflow_state_entries", "Indicators held in dedupe state.")),
            state_bytes: register(r, IntGauge::new("iocflow_state_bytes", "Estimated memory held by dedupe state.")),
            batch_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "iocflow_batch_duration_seconds",
                        "Time to process one micro-batch, delivery included.",
                    )
                    .buckets(buckets(0.001)),
                    &["stage"],
                ),
            ),
            end_to_end_latency: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "iocflow_end_to_end_latency_seconds",
                        "From a feed record's timestamp to the delivery of what it caused, per batch.",
                    )
                    .buckets(buckets(0.005)),
                ),
            ),
            state_growth: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "iocflow_state_growth_seconds",
                        "Per columnar batch that grew a state table for new indicators, the time the growth took \
                         (the state's tables double one at a time, so no batch pays for the whole).",
                    )
                    .buckets(buckets(0.0001)),
                ),
            ),
            consumer_lag: gauges(
                "iocflow_consumer_lag_records",
                "Records between a stage's position and the end of each assigned input partition.",
                &["stage", "topic", "partition"],
            ),
            kafka_queue_messages: gauges(
                "iocflow_kafka_queue_messages",
                "Messages waiting in a Kafka client's queues (producer: not yet delivered).",
                &["client"],
            ),
            kafka_broker_rtt: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "iocflow_kafka_broker_rtt_seconds",
                        "Average broker round-trip time seen by a Kafka client.",
                    ),
                    &["client", "broker"],
                ),
            ),
            registry,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Liveness and readiness, as the probes see them: ready once the stages run, while some broker
/// is reachable (as the consumers' statistics last said, and said lately) and no partition's state
/// is being restored. A replica with no partitions is ready.
///
/// The consumers' statistics arrive through their polls: a stage blocked on Kafka (a transaction
/// waiting out a broker that went away, a producer being recreated) polls nothing, and its last
/// word would say "reachable" for as long as it waits. So statistics older than
/// [`Health::STALE`] (three of librdkafka's `statistics.interval.ms`, which iocflow sets to 5 s)
/// count as "not reachable".
#[derive(Debug, Default)]
pub struct Health {
    running: AtomicBool,
    restoring: AtomicUsize,
    brokers_unreachable: AtomicBool,
    /// When the consumers' statistics last came: milliseconds since [`Health::epoch`], plus one
    /// (0: none yet).
    stats_at: AtomicU64,
}

impl Health {
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }
    /// Marks a restore as started; the returned guard marks it finished when dropped.
    pub fn restoring(&self) -> RestoreGuard<'_> {
        self.restoring.fetch_add(1, Ordering::Relaxed);
        RestoreGuard(self)
    }
    /// How old the consumers' statistics may be before they no longer say a broker is reachable.
    pub const STALE: std::time::Duration = std::time::Duration::from_secs(15);

    /// The process's clock for [`Health::stats_at`].
    fn epoch() -> std::time::Instant {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *EPOCH.get_or_init(std::time::Instant::now)
    }

    /// What a consumer's statistics said just now.
    pub fn set_broker_reachable(&self, reachable: bool) {
        self.brokers_unreachable.store(!reachable, Ordering::Relaxed);
        let now = Self::epoch().elapsed().as_millis() as u64;
        self.stats_at.store(now + 1, Ordering::Relaxed);
    }
    pub fn broker_reachable(&self) -> bool {
        let now = Self::epoch().elapsed().as_millis() as u64;
        said_lately(self.stats_at.load(Ordering::Relaxed), now) && !self.brokers_unreachable.load(Ordering::Relaxed)
    }
    pub fn is_ready(&self) -> bool {
        self.running.load(Ordering::Relaxed) && self.restoring.load(Ordering::Relaxed) == 0 && self.broker_reachable()
    }
}

/// Whether statistics stamped `stats_at` ([`Health::stats_at`]) are recent at `now` (both in
/// milliseconds since [`Health::epoch`]); none yet counts as recent (a consumer's first come
/// after one interval).
fn said_lately(stats_at: u64, now: u64) -> bool {
    stats_at == 0 || now <= stats_at - 1 + Health::STALE.as_millis() as u64
}

/// A restore in progress (see [`Health::restoring`]).
#[derive(Debug)]
pub struct RestoreGuard<'a>(&'a Health);

impl Drop for RestoreGuard<'_> {
    fn drop(&mut self) {
        self.0.restoring.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds the metrics address and serves `/metrics`, `/healthz` and `/readyz` until `shutdown`.
/// Returns the bound address (useful with port 0).
pub async fn serve(listen: &str, metrics: Metrics, health: Arc<Health>, mut shutdown: Shutdown) -> Result<SocketAddr> {
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(Error::io(format!("metrics.listen {listen}")))?;
    let addr = listener.local_addr().map_err(Error::io(listen))?;
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = health.is_ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
                    }
                }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await {
            tracing::error!("metrics endpoint failed: {e}");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every metric name iocflow registers (histograms with their series suffixes): the fields',
    /// and those of the exposition (which holds every metric without labels, `iocflow_build_info`
    /// among them).
    fn names(m: &Metrics) -> BTreeSet<String> {
        let collectors: Vec<&dyn Collector> = vec![
            &m.records_received,
            &m.records_dead_lettered,
            &m.internal_records_corrupt,
            &m.state_forgotten,
            &m.reports_decoded,
            &m.sightings_received,
            &m.indicators_emitted,
            &m.false_positive_revocations,
            &m.expiries,
            &m.revivals,
            &m.indicators_suppressed,
            &m.reports_withheld,
            &m.report_outcomes,
            &m.transactions,
            &m.enrichment_lookups,
            &m.enrichment_reloads,
            &m.enrichment_table_entries,
            &m.enrichment_table_load_seconds,
            &m.state_entries,
            &m.state_bytes,
            &m.batch_duration,
            &m.end_to_end_latency,
            &m.state_growth,
            &m.consumer_lag,
            &m.kafka_queue_messages,
            &m.kafka_broker_rtt,
        ];
        let mut names = BTreeSet::new();
        for c in collectors {
            for d in c.desc() {
                if d.fq_name.ends_with("_seconds") {
                    for suffix in ["_bucket", "_count", "_sum"] {
                        names.insert(format!("{}{suffix}", d.fq_name));
                    }
                }
                names.insert(d.fq_name.clone());
            }
        }
        let text = m.render();
        names.extend(text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).map(str::to_string));
        names
    }

    #[test]
    fn every_registered_metric_is_listed_and_follows_the_naming_rules() {
        let m = Metrics::new();
        let registered: BTreeSet<String> = names(&m).into_iter().filter(|n| !n.ends_with("_bucket")).collect();
        assert!(registered.len() >= 16);
        assert!(registered.contains("iocflow_build_info"), "{registered:?}");
        for n in &registered {
            assert!(n.starts_with("iocflow_"), "{n}");
        }
        // A counter's name ends in _total.
        for c in [&m.records_received, &m.reports_withheld, &m.transactions] {
            assert!(c.desc()[0].fq_name.ends_with("_total"));
        }
    }

    #[test]
    fn statistics_older_than_three_intervals_say_nothing() {
        assert!(said_lately(0, 1_000_000), "before the first statistics");
        assert!(said_lately(1, 0) && said_lately(1, 15_000));
        assert!(!said_lately(1, 15_001));
        assert!(said_lately(20_001, 30_000));
    }

    #[test]
    fn readiness_follows_running_restores_and_brokers_not_partitions() {
        let h = Health::default();
        assert!(!h.is_ready(), "not before the stages run");
        h.set_running(true);
        assert!(h.is_ready(), "a replica with no partitions is ready");
        let restoring = h.restoring();
        assert!(!h.is_ready());
        drop(restoring);
        assert!(h.is_ready());
        h.set_broker_reachable(false);
        assert!(!h.is_ready());
        h.set_broker_reachable(true);
        assert!(h.is_ready());
    }

    /// The Grafana dashboard and the alert rules of the Helm chart only name metrics that exist.
    #[test]
    fn the_dashboard_and_the_alerts_name_real_metrics() {
        let known = names(&Metrics::new());
        // Cargo's manifest folder at run time: the build may have been compiled in another clone.
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let chart = std::path::Path::new(&manifest).join("../helm/iocflow");
        let name = regex::Regex::new(r"iocflow_[a-z_]+").unwrap();
        for file in ["dashboards/iocflow.json", "templates/prometheusrule.yaml"] {
            let text = std::fs::read_to_string(chart.join(file)).unwrap();
            let used: BTreeSet<&str> = name.find_iter(&text).map(|m| m.as_str()).collect();
            assert!(used.len() >= 5, "{file} names iocflow metrics");
            for n in used {
                assert!(known.contains(n), "{file} names {n}, which iocflow does not export");
            }
        }
    }
}
