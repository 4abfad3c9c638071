//! iocflow: the regional threat-feed pipeline.
//!
//! The folders are the boxes of the README's diagram; follow one indicator from a feed topic to
//! a CERT topic by reading them in this order:
//!
//! 1. [`config`] — the TOML configuration, checked at start.
//! 2. [`ingest`] — stage 1: feed records → decoded reports (`iocflow_model::decode`) → one
//!    [`indicator_batch`] per internal partition on `<app>.indicators`; bad records → DLQ.
//! 3. [`columnar`] — stage 2: indicator batches → [`state`] (dedupe, and its changelog) →
//!    enrichment (DataFusion UDFs) → [`policy`] (each CERT's view under TLP, the emission rule,
//!    the CERT filters) → CERT topics and `<app>.withheld`.
//! 4. [`run`] — both stages in one process, with [`telemetry`] and a clean shutdown.
//!
//! [`process`] runs the same path over a file without Kafka (`iocflow process`); [`explain`]
//! asks the policy why each CERT did or did not receive an indicator (`iocflow explain`). [`kafka`] is
//! the plumbing both stages share: client settings and the first connection, the micro-batch
//! loop and its delivery, rebalances, and the topics and ACLs of a deployment.

pub mod columnar;
pub mod config;
mod error;
pub mod explain;
pub mod indicator_batch;
pub(crate) mod ingest;
pub mod kafka;
pub(crate) mod policy;
pub mod process;
pub mod run;
pub mod shutdown;
pub mod state;
pub(crate) mod telemetry;

pub use error::{Error, Result};
