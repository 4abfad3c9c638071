//! The Kafka plumbing both stages share, and the boundary a deployment's trust rests on.
//!
//! - [`client_config`]: librdkafka settings every consumer and producer is built from, and
//!   [`client_properties`], the operator's own properties (whose secrets never print);
//! - [`connection`]: the first contact with a broker, and the error that names why it failed;
//! - [`micro_batch`]: the one micro-batch loop of both stages (collect, deliver, commit or roll
//!   back), input offsets and rewinding; [`outbox`]: what a batch sends and its delivery,
//!   at-least-once or in one transaction; [`rebalance`]: which partitions moved;
//! - [`topics`]: the topics of a deployment; [`acls`]: its least-privilege ACL plan, applied and
//!   verified through [`acl_admin`].

pub mod acl_admin;
pub mod acls;
pub mod client_config;
pub mod client_properties;
pub mod connection;
pub(crate) mod micro_batch;
pub(crate) mod outbox;
pub(crate) mod rebalance;
pub mod topics;
