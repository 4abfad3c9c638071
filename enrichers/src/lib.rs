//! Enrichment of indicator batches: in-memory indexes and the DataFusion scalar UDFs over them.
//!
//! The columnar stage evaluates these UDFs once per Arrow batch, never per row from the outside,
//! so each index lookup runs in a tight loop over a column. Indexes are plain data built off the
//! hot path; a UDF only reads them.
//!
//! - [`country`]: the infrastructure country of an indicator (IP geolocation from built-in
//!   RIR-derived data; ccTLD of a domain, e-mail or URL host).
//! - [`cctld`]: ccTLD → ISO 3166-1 country, IDN ccTLDs included.
//! - [`udf`]: the UDFs, registered under the names the SQL of CERT filters can use.

pub mod cctld;
pub mod country;
pub mod udf;

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
