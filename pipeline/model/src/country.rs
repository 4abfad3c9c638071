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

/// Every pair of upper-case letters, by [`Country::index`].
static LETTERS: [[u8; 2]; 676] = {
    let mut t = [[0; 2]; 676];
    let mut i = 0;
    while i < 676 {
        t[i] = [b'A' + (i / 26) as u8, b'A' + (i % 26) as u8];
        i += 1;
    }
    t
};

/// [`LETTERS`] as strings: a country reads as a `&'static str` with no allocation and no check.
static CODES: [&str; 676] = {
    let mut t = [""; 676];
    let mut i = 0;
    while i < 676 {
        t[i] = match std::str::from_utf8(&LETTERS[i]) {
            Ok(s) => s,
            Err(_) => panic!("ASCII letters"),
        };
        i += 1;
    }
    t
};

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

    /// Reads exactly two upper-case letters (configuration and registry files, where another
    /// spelling is a mistake to name rather than fix).
    pub fn parse_exact(s: &str) -> Option<Country> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Some(Country([*a, *b])),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        CODES[self.index()]
    }

    /// A dense index, 0 to 675 (`AA` to `ZZ`), for tables by country.
    pub fn index(self) -> usize {
        usize::from(self.0[0] - b'A') * 26 + usize::from(self.0[1] - b'A')
    }

    /// The code in lower case (`sg`), as topic and principal names use it.
    pub fn lower(self) -> String {
        self.as_str().to_ascii_lowercase()
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
        assert_eq!(Country::parse_exact("SG").unwrap().as_str(), "SG");
        for bad in ["sg", "Sg", " SG", "SGP", "S"] {
            assert_eq!(Country::parse_exact(bad), None, "{bad:?}");
        }
        assert_eq!((Country::parse("AA").unwrap().index(), Country::parse("ZZ").unwrap().index()), (0, 675));
    }
}
