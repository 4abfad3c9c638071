//! The indicator model of iocflow and the decoders that turn feed records into it.
//!
//! Everything a feed record becomes before it touches Arrow or Kafka lives here: the indicator
//! types and their canonical forms ([`indicator`]), the Traffic Light Protocol labels
//! ([`tlp`]), one feed's statement about an indicator ([`report`]), and the feed decoders
//! ([`decode`]); and [`name`], the shared strings (feed, provider, threat, tag) that the state
//! and the CERT records hold many copies of. The crate deliberately has no arrow, datafusion or
//! rdkafka dependency: it is the code that parses untrusted bytes, so it must be cheap to
//! property-test and fuzz.
//!
//! Reading order: `indicator` → `tlp` → `report` → `decode`; then [`sighting`], what the CERTs
//! send back.

pub mod country;
pub mod decode;
mod error;
pub mod indicator;
pub mod name;
pub mod report;
pub mod sighting;
pub mod time;
pub mod tlp;

pub use country::Country;
pub use error::{Error, Result};
pub use indicator::{Indicator, IndicatorId, IndicatorType};
pub use name::{Name, NameSet, Names};
pub use report::Report;
pub use tlp::Tlp;
