//! Enrichment of indicator batches: in-memory indexes and the DataFusion scalar UDFs over them.
//!
//! The columnar stage evaluates these UDFs once per Arrow batch, never per row from the outside,
//! so each index lookup runs in a tight loop over a column. Indexes are plain data built off the
//! hot path; a UDF only reads them.
//!
//! - [`country`]: the infrastructure country of an indicator (IP geolocation from built-in
//!   RIR-derived data; ccTLD of a domain, e-mail or URL host).
//! - [`cctld`]: ccTLD → ISO 3166-1 country, IDN ccTLDs included; the sector hint of a
//!   second-level label (`gov`, `go`, `mil`, `edu`, `ac` …) under a ccTLD, Public Suffix List aware.
//! - [`address`]: the address or host name an indicator points at.
//! - [`asn`]: IP → AS number and organisation, from range tables (CSV).
//! - [`constituency`]: the CERTs' constituency registry → organisation, sectors, country, by
//!   longest CIDR prefix, ASN or domain suffix.
//! - [`ip_prefix`]: longest-prefix match over IPv4 and IPv6 prefixes (registry, warninglists).
//! - [`warninglist`]: MISP-format warninglists → the name of the list that says "benign".
//! - [`tables`]: all of them loaded together, swapped whole on reload, and the per-indicator
//!   lookups.
//! - [`udf`]: the UDFs over them, one call per batch column.
//! - [`columns`]: Arrow row shapes declared once (`arrow_columns!`), for the enrichment struct
//!   here and the pipeline's batches.

pub mod address;
pub mod asn;
pub mod cctld;
pub mod columns;
pub mod constituency;
pub mod country;
pub mod ip_prefix;
pub mod mmdb;
pub mod tables;
pub mod udf;
pub mod warninglist;

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A data file that cannot be loaded; `line` is 0 when the problem is not on one line.
    #[error("{table} line {line}: {why}")]
    Table { table: String, line: usize, why: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
