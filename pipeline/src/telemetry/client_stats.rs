//! librdkafka's statistics → Prometheus: consumer lag per partition, client queue depth, broker
//! round-trip time, and whether any broker is reachable (for `/readyz`).
//!
//! librdkafka emits a statistics document every `statistics.interval.ms` (set in
//! `kafka/client_config.rs`) on the client's context, from its own thread. It is read here once per
//! interval, off the stages' hot path; labels stay bounded (stage, topic and partition from the
//! config, broker ids of the cluster).

use crate::telemetry::metrics::{Health, Metrics};
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Exports one client's statistics.
#[derive(Clone)]
pub struct ClientStats {
    stage: &'static str,
    /// `<stage>-consumer` or `<stage>-producer`.
    client: String,
    metrics: Metrics,
    /// Set for consumers: their view of the brokers decides readiness.
    health: Option<Arc<Health>>,
    /// The (topic, partition) lag series this client reported last time, to drop those it no
    /// longer owns.
    lag_series: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl ClientStats {
    pub fn consumer(stage: &'static str, metrics: Metrics, health: Arc<Health>) -> ClientStats {
        ClientStats::new(stage, "consumer", metrics, Some(health))
    }

    pub fn producer(stage: &'static str, metrics: Metrics) -> ClientStats {
        ClientStats::new(stage, "producer", metrics, None)
    }

    fn new(stage: &'static str, role: &str, metrics: Metrics, health: Option<Arc<Health>>) -> ClientStats {
        ClientStats { stage, client: format!("{stage}-{role}"), metrics, health, lag_series: Arc::default() }
    }

    /// Updates the gauges from one statistics document.
    pub fn record(&self, s: &Statistics) {
        let m = &self.metrics;
        m.kafka_queue_messages.with_label_values(&[self.client.as_str()]).set(s.msg_cnt as i64);
        let mut any_up = false;
        for b in s.brokers.values().filter(|b| b.nodeid >= 0) {
            any_up |= b.state == "UP";
            if let Some(rtt) = &b.rtt {
                let broker = b.nodeid.to_string();
                let gauge = m.kafka_broker_rtt.with_label_values(&[self.client.as_str(), broker.as_str()]);
                gauge.set(rtt.avg as f64 / 1e6);
            }
        }
        let Some(health) = &self.health else { return };
        health.set_broker_reachable(any_up);
        let mut now = BTreeSet::new();
        for (topic, t) in &s.topics {
            for (p, part) in &t.partitions {
                // -1 is librdkafka's internal unassigned partition; a negative lag is unknown.
                if *p < 0 || part.fetch_state != "active" || part.consumer_lag < 0 {
                    continue;
                }
                let partition = p.to_string();
                m.consumer_lag
                    .with_label_values(&[self.stage, topic.as_str(), partition.as_str()])
                    .set(part.consumer_lag);
                now.insert((topic.clone(), partition));
            }
        }
        let mut last = self.lag_series.lock().expect("not poisoned");
        for (topic, partition) in last.difference(&now) {
            let _ = m.consumer_lag.remove_label_values(&[self.stage, topic.as_str(), partition.as_str()]);
        }
        *last = now;
    }
}

impl ClientStats {
    /// Counts (and logs, as librdkafka's default context would) an error librdkafka reported to
    /// this client. The error code is the label: a bounded set.
    pub fn error(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().map_or_else(|| "Other".to_string(), |c| format!("{c:?}"));
        self.metrics.kafka_errors.with_label_values(&[self.client.as_str(), code.as_str()]).inc();
        tracing::error!(target: "librdkafka", client = %self.client, "{error}: {reason}");
    }
}

/// A producer context that exports the producer's statistics.
#[derive(Clone, Default)]
pub struct ProducerStats(pub Option<Arc<ClientStats>>);

impl ClientContext for ProducerStats {
    fn stats(&self, statistics: Statistics) {
        if let Some(s) = &self.0 {
            s.record(&statistics);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match &self.0 {
            Some(s) => s.error(&error, reason),
            None => tracing::error!(target: "librdkafka", "{error}: {reason}"),
        }
    }
}

/// The producers of the stages.
pub type StageProducer = FutureProducer<ProducerStats>;

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(json: &str) -> Statistics {
        serde_json::from_str(json).unwrap()
    }

    const DOC: &str = r#"{"name":"c#consumer-1","client_id":"iocflow","type":"consumer","ts":1,"time":1,"age":1,
        "replyq":0,"msg_cnt":7,"msg_size":0,"msg_max":0,"msg_size_max":0,"simple_cnt":0,"metadata_cache_cnt":1,
        "tx":0,"tx_bytes":0,"rx":0,"rx_bytes":0,"txmsgs":0,"txmsg_bytes":0,"rxmsgs":0,"rxmsg_bytes":0,
        "brokers":{"127.0.0.1:39092/1":{"name":"127.0.0.1:39092/1","nodeid":1,"nodename":"127.0.0.1:39092","source":"learned",
          "state":"UP","stateage":1,"outbuf_cnt":0,"outbuf_msg_cnt":0,"waitresp_cnt":0,"waitresp_msg_cnt":0,"tx":1,
          "txbytes":1,"txerrs":0,"txretries":0,"txidle":0,"rxidle":0,"toppars":{},"req_timeouts":0,"rx":1,"rxbytes":1,"rxerrs":0,"rxcorriderrs":0,
          "rxpartial":0,"zbuf_grow":0,"buf_grow":0,"wakeups":0,"req":{},
          "rtt":{"min":100,"max":3000,"avg":2000,"sum":1,"cnt":1,"stddev":0,"hdrsize":0,"p50":1,"p75":1,"p90":1,"p95":1,"p99":1,"p99_99":1,"outofrange":0}}},
        "topics":{"feeds.x":{"topic":"feeds.x","age":1,"metadata_age":1,"batchsize":{"min":1,"max":1,"avg":1,"sum":1,"cnt":1,"stddev":0,"hdrsize":0,"p50":1,"p75":1,"p90":1,"p95":1,"p99":1,"p99_99":1,"outofrange":0},"batchcnt":{"min":1,"max":1,"avg":1,"sum":1,"cnt":1,"stddev":0,"hdrsize":0,"p50":1,"p75":1,"p90":1,"p95":1,"p99":1,"p99_99":1,"outofrange":0},"partitions":{
          "0":{"partition":0,"broker":1,"leader":1,"desired":true,"unknown":false,"msgq_cnt":0,"msgq_bytes":0,
            "xmit_msgq_cnt":0,"xmit_msgq_bytes":0,"fetchq_cnt":0,"fetchq_size":0,"fetch_state":"active",
            "query_offset":0,"next_offset":0,"app_offset":0,"stored_offset":0,"committed_offset":0,"eof_offset":0,
            "lo_offset":0,"hi_offset":42,"ls_offset":42,"consumer_lag":40,"consumer_lag_stored":40,"msgs_inflight":0,"next_ack_seq":0,"next_err_seq":0,"acked_msgid":0,"txmsgs":0,"txbytes":0,"rxmsgs":0,"rxbytes":0,"msgs":0,
            "rx_ver_drops":0},
          "-1":{"partition":-1,"broker":-1,"leader":-1,"desired":false,"unknown":false,"msgq_cnt":0,"msgq_bytes":0,
            "xmit_msgq_cnt":0,"xmit_msgq_bytes":0,"fetchq_cnt":0,"fetchq_size":0,"fetch_state":"none",
            "query_offset":0,"next_offset":0,"app_offset":0,"stored_offset":0,"committed_offset":0,"eof_offset":0,
            "lo_offset":0,"hi_offset":0,"ls_offset":0,"consumer_lag":-1,"consumer_lag_stored":-1,"msgs_inflight":0,"next_ack_seq":0,"next_err_seq":0,"acked_msgid":0,"txmsgs":0,"txbytes":0,"rxmsgs":0,"rxbytes":0,"msgs":0,
            "rx_ver_drops":0}}}}}"#;

    #[test]
    fn lag_queue_rtt_and_reachability_from_one_document() {
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let c = ClientStats::consumer("ingest", metrics.clone(), health.clone());
        c.record(&stats(DOC));
        let text = metrics.render();
        assert!(
            text.contains(r#"iocflow_consumer_lag_records{partition="0",stage="ingest",topic="feeds.x"} 40"#),
            "{text}"
        );
        assert!(!text.contains(r#"partition="-1""#));
        assert!(text.contains(r#"iocflow_kafka_queue_messages{client="ingest-consumer"} 7"#), "{text}");
        assert!(
            text.contains(r#"iocflow_kafka_broker_rtt_seconds{broker="1",client="ingest-consumer"} 0.002"#),
            "{text}"
        );
        assert!(health.broker_reachable());
        // The partition moved away and the broker went down: its series goes, readiness drops.
        let gone = DOC
            .replace(r#""fetch_state":"active""#, r#""fetch_state":"stopped""#)
            .replace(r#""state":"UP""#, r#""state":"DOWN""#);
        c.record(&stats(&gone));
        assert!(!metrics.render().contains("iocflow_consumer_lag_records{"));
        assert!(!health.broker_reachable());
    }
}
