use std::fmt;

/// Why a value could not become a canonical indicator, or a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The indicator type is not one iocflow knows.
    #[error("unsupported indicator type {0:?}")]
    UnsupportedType(String),
    /// The value is not a valid indicator of its type.
    #[error("invalid {kind} value {value:?}: {why}")]
    InvalidValue { kind: crate::IndicatorType, value: String, why: &'static str },
    /// A field of a record is missing or has the wrong shape.
    #[error("field {field}: {why}")]
    Field { field: String, why: Why },
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Missing,
    Invalid(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Missing => f.write_str("missing"),
            Why::Invalid(s) => f.write_str(s),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
