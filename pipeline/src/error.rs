use std::fmt;

/// The error type of the iocflow application crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the key or CERT at fault.
    #[error("config: {0}")]
    Config(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Sink(#[from] iocflow_sinks::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// An enrichment table that does not load (the message names the file and line).
    #[error("enrich: {0}")]
    Enrich(#[from] iocflow_enrichers::Error),
    /// Something iocflow's own code should have ruled out: a bug to report.
    #[error("unexpected: {0}")]
    Unexpected(String),
    /// A file, folder or socket that could not be used: `what` names it.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// The broker refused the client: the message names the cause (SASL authentication, TLS
    /// verification). Retrying cannot fix it.
    #[error("kafka: {0}")]
    Connect(String),
    /// No broker answered at the configured address (down, not yet up, or a wrong address): the
    /// message names the address and librdkafka's words. `iocflow run` waits it out.
    #[error("kafka: {0}")]
    NoBroker(String),
    /// Creating, reading or checking ACL bindings failed, or the broker's differ from the plan.
    #[error("acls: {0}")]
    Acls(String),
    /// The topics on the broker do not match what the configuration needs.
    #[error("topics: {0}")]
    Topics(String),
    /// Topics the configuration needs are not on the broker (yet): `iocflow run` waits for them.
    #[error("topics: {0}")]
    MissingTopics(String),
    /// A record on an internal topic is not what iocflow writes there.
    #[error("corrupt internal record: {0}")]
    Corrupt(Corrupt),
}

/// Where a corrupt internal record was found.
#[derive(Debug)]
pub struct Corrupt {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub why: String,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]@{}: {}", self.topic, self.partition, self.offset, self.why)
    }
}

impl Error {
    /// An I/O error about `what` (a path, an address).
    pub fn io(what: impl fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { what: what.to_string(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
