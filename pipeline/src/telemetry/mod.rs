//! What operators watch: the Prometheus registry and the HTTP endpoint ([`metrics`]:
//! `/metrics`, `/healthz`, `/readyz`), and librdkafka's statistics turned into lag, queue and
//! round-trip gauges ([`client_stats`]). Updated per batch, never per event.

pub mod client_stats;
pub mod metrics;
