//! iocflow: the regional threat-feed pipeline.
//!
//! Follow one indicator from a feed topic to a CERT topic by reading the modules in order:
//!
//! 1. [`config`] — the TOML configuration, checked at start.
//! 2. [`ingest`] — stage 1: feed records → decoded reports (`iocflow_model::decode`) → one
//!    [`indicator_batch`] per internal partition on `<app>.indicators`; bad records → DLQ.
//! 3. [`columnar`] — stage 2: indicator batches → [`state`] (dedupe) → [`enrich`] (DataFusion
//!    UDFs) → [`route`] (TLP views, emission rule; CERT filters over a [`cert_view`]) → CERT
//!    topics and `<app>.withheld`.
//! 4. [`run`] — both stages in one process, [`metrics`], clean shutdown.
//!
//! [`process`] runs the same path over a file without Kafka (`iocflow process`).
//!
//! [`micro_batch`] holds what both stages share (closing batches, offsets, rewinding);
//! [`outbox`] delivers a batch at-least-once or exactly-once; [`changelog`] writes and restores
//! the state; [`rebalance`] tells a stage which partitions moved; [`kafka_client`] the librdkafka
//! settings; [`connection`] the first contact with the broker and the error that names why it
//! failed; [`topics`] the topic plan; [`acls`] the ACL plan, applied and verified through
//! [`acl_admin`]; [`client_properties`] librdkafka properties whose secrets never print;
//! [`table_reload`] reloads the enrichment tables.

pub mod acl_admin;
pub mod acls;
pub mod cert_view;
pub mod changelog;
pub mod client_properties;
pub mod client_stats;
pub mod columnar;
pub mod config;
pub mod connection;
pub mod enrich;
mod error;
pub mod indicator_batch;
pub mod ingest;
pub mod kafka_client;
pub mod metrics;
pub mod micro_batch;
pub mod outbox;
pub mod process;
pub mod rebalance;
pub mod route;
pub mod run;
pub mod state;
pub mod table_reload;
pub mod topics;

pub use error::{Error, Result};
