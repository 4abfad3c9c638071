//! A country as its ISO 3166-1 alpha-2 code, held as two bytes.
//!
//! Countries travel with every contribution the state holds and every record a CERT is sent
//! (the countries a view implicates): as two bytes they cost no allocation to copy, where a
//! `String` each cost one per country per record. They read and write as the plain upper-case
//! string, so the changelog and the records are unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An upper-case ISO 3166-1 alpha-2 code such as `SG`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country([u8; 2]);

impl Country {
    /// Reads a code in any case; `None` for anything but two ASCII letters.
    pub fn parse(s: &str) -> Option<Country> {
        // Trimmed only when it is not two bytes already: the columnar stage reads every
        // country it routes with this.
        let code = match s.as_bytes() {
            two @ [_, _] => two,
            _ => s.trim().as_bytes(),
        };
        match code {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("two ASCII letters")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<&str> for Country {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = std::borrow::Cow::<str>::deserialize(d)?;
        Country::parse(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("{code:?} is not a two-letter country code")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_letters_in_any_case_written_upper_case() {
        assert_eq!(Country::parse("sg"), Country::parse(" SG "));
        assert_eq!(Country::parse("sG").unwrap().as_str(), "SG");
        for bad in ["", "S", "SGP", "S1", "ไท", "  "] {
            assert_eq!(Country::parse(bad), None, "{bad:?}");
        }
        let read: Vec<Country> = serde_json::from_str(r#"["my","TH"]"#).unwrap();
        assert_eq!(read, ["MY", "TH"]);
        assert_eq!(serde_json::to_string(&read).unwrap(), r#"["MY","TH"]"#);
        let err = serde_json::from_str::<Country>(r#""SGP""#).unwrap_err().to_string();
        assert!(err.contains("\"SGP\" is not a two-letter country code"), "{err}");
        assert!(Country::parse("TH") > Country::parse("SG"), "ordered as the strings are");
    }
}
