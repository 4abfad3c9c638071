//! MaxMind DB files (the `.mmdb` format of GeoIP2/GeoLite2, DB-IP and ip-location-db): IP →
//! country, and IP → AS number and organisation, when the configuration names such a file
//! instead of (country) or besides (ASN) the built-in and CSV tables.
//!
//! The fields read are the GeoIP2 ones: `country.iso_code` (falling back to
//! `registered_country.iso_code`, then to ip-location-db's flat `country_code`), and
//! `autonomous_system_number` / `autonomous_system_organization`.

use crate::{Error, Result};
use iocflow_model::Country;
use maxminddb::{PathElement, Reader};
use std::net::IpAddr;
use std::path::Path;

/// One opened `.mmdb` file, read into memory.
pub struct Mmdb {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for Mmdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mmdb").field("database_type", &self.reader.metadata().database_type).finish()
    }
}

impl Mmdb {
    pub fn open(path: &Path) -> Result<Mmdb> {
        let bad = |why: String| Error::Table { table: path.display().to_string(), line: 0, why };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        Ok(Mmdb { reader: Reader::from_source(bytes).map_err(|e| bad(e.to_string()))? })
    }

    /// Networks in the file's search tree (its size, for the table metrics).
    pub fn len(&self) -> usize {
        self.reader.metadata().node_count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn text(&self, ip: IpAddr, paths: &[&[&str]]) -> Option<&str> {
        let found = self.reader.lookup(ip).ok()?;
        paths.iter().find_map(|path| {
            let path: Vec<PathElement> = path.iter().map(|k| PathElement::Key(k)).collect();
            found.decode_path::<&str>(&path).ok().flatten()
        })
    }

    /// The ISO 3166-1 country of an address (a value that is not two letters reads as none).
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        self.text(ip, &[&["country", "iso_code"], &["registered_country", "iso_code"], &["country_code"]])
            .and_then(Country::parse)
    }

    /// The AS number announcing an address.
    pub fn asn(&self, ip: IpAddr) -> Option<u32> {
        let found = self.reader.lookup(ip).ok()?;
        found.decode_path::<u32>(&[PathElement::Key("autonomous_system_number")]).ok().flatten()
    }

    /// The organisation of that AS.
    pub fn as_org(&self, ip: IpAddr) -> Option<&str> {
        self.text(ip, &[&["autonomous_system_organization"]])
    }
}

/// A minimal MaxMind DB writer for test fixtures: an IPv4 search tree (24-bit records) over a few
/// prefixes, each with a map of strings and unsigned integers.
#[cfg(test)]
pub(crate) mod fixture {
    use std::collections::BTreeMap;

    pub enum Value<'a> {
        Str(&'a str),
        U32(u32),
        Map(Vec<(&'a str, Value<'a>)>),
    }

    /// A field's control byte(s): type (extended types in a second byte) and size (29 and more
    /// in one extra byte).
    fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
        assert!(size < 29 + 256);
        let short = size.min(29) as u8;
        if kind <= 7 {
            out.push((kind << 5) | short);
        } else {
            out.push(short);
            out.push(kind - 7);
        }
        if size >= 29 {
            out.push((size - 29) as u8);
        }
    }

    fn uint(kind: u8, v: u64, out: &mut Vec<u8>) {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        control(kind, 8 - skip, out);
        out.extend_from_slice(&bytes[skip..]);
    }

    fn encode(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Str(s) => {
                control(2, s.len(), out);
                out.extend_from_slice(s.as_bytes());
            }
            Value::U32(n) => uint(6, u64::from(*n), out),
            Value::Map(pairs) => {
                control(7, pairs.len(), out);
                for (k, v) in pairs {
                    encode(&Value::Str(k), out);
                    encode(v, out);
                }
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Record {
        Empty,
        Node(usize),
        Data(usize),
    }

    /// The bytes of a database mapping IPv4 prefixes ("a.b.c.d/len") to values.
    pub fn ipv4_database(entries: &[(&str, Value)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
        let mut sorted: BTreeMap<u8, Vec<(u32, usize)>> = BTreeMap::new();
        for (prefix, value) in entries {
            let (addr, len) = prefix.split_once('/').unwrap();
            let addr: std::net::Ipv4Addr = addr.parse().unwrap();
            let offset = data.len();
            encode(value, &mut data);
            sorted.entry(len.parse().unwrap()).or_default().push((u32::from(addr), offset));
        }
        // Shorter prefixes first, so a longer one splits the records it lands in.
        for (len, prefixes) in sorted {
            for (addr, offset) in prefixes {
                let mut node = 0;
                for depth in 0..len {
                    let bit = ((addr >> (31 - depth)) & 1) as usize;
                    if depth + 1 == len {
                        nodes[node][bit] = Record::Data(offset);
                        break;
                    }
                    node = match nodes[node][bit] {
                        Record::Node(next) => next,
                        inherited => {
                            let fill = match inherited {
                                Record::Data(_) => inherited,
                                _ => Record::Empty,
                            };
                            nodes.push([fill, fill]);
                            nodes[node][bit] = Record::Node(nodes.len() - 1);
                            nodes.len() - 1
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for pair in &nodes {
            for r in pair {
                let v = match r {
                    Record::Empty => count,
                    Record::Node(i) => *i,
                    Record::Data(off) => count + 16 + off,
                } as u32;
                out.extend_from_slice(&v.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let mut meta = Vec::new();
        control(7, 9, &mut meta);
        let mut pair = |k: &str, v: &dyn Fn(&mut Vec<u8>)| {
            encode(&Value::Str(k), &mut meta);
            v(&mut meta);
        };
        pair("binary_format_major_version", &|o| uint(5, 2, o));
        pair("binary_format_minor_version", &|o| uint(5, 0, o));
        pair("build_epoch", &|o| uint(9, 1_700_000_000, o));
        pair("database_type", &|o| encode(&Value::Str("iocflow-test"), o));
        pair("description", &|o| encode(&Value::Map(vec![("en", Value::Str("test fixture"))]), o));
        pair("ip_version", &|o| uint(5, 4, o));
        pair("languages", &|o| control(11, 0, o));
        pair("node_count", &|o| uint(6, count as u64, o));
        pair("record_size", &|o| uint(5, 24, o));
        out.extend_from_slice(&meta);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{Value, ipv4_database};
    use super::*;

    #[test]
    fn country_and_asn_from_mmdb_files() {
        let dir = std::env::temp_dir().join(format!("iocflow-mmdb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let country = ipv4_database(&[
            ("192.0.2.0/24", Value::Map(vec![("country", Value::Map(vec![("iso_code", Value::Str("SG"))]))])),
            ("192.0.2.128/25", Value::Map(vec![("country", Value::Map(vec![("iso_code", Value::Str("MY"))]))])),
            ("198.51.100.0/24", Value::Map(vec![("country_code", Value::Str("TH"))])),
        ]);
        std::fs::write(dir.join("country.mmdb"), country).unwrap();
        let asn = ipv4_database(&[(
            "203.0.113.0/24",
            Value::Map(vec![
                ("autonomous_system_number", Value::U32(64500)),
                ("autonomous_system_organization", Value::Str("Example Net")),
            ]),
        )]);
        std::fs::write(dir.join("asn.mmdb"), asn).unwrap();

        let c = Mmdb::open(&dir.join("country.mmdb")).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(c.country(ip("192.0.2.1")).map(|c| c.as_str()), Some("SG"));
        assert_eq!(c.country(ip("192.0.2.200")).map(|c| c.as_str()), Some("MY"), "the longer prefix");
        assert_eq!(c.country(ip("198.51.100.9")).map(|c| c.as_str()), Some("TH"), "ip-location-db's flat field");
        assert_eq!(c.country(ip("10.0.0.1")), None);
        assert_eq!(c.country(ip("2001:db8::1")), None, "IPv6 in an IPv4 database");
        let a = Mmdb::open(&dir.join("asn.mmdb")).unwrap();
        assert_eq!((a.asn(ip("203.0.113.7")), a.as_org(ip("203.0.113.7"))), (Some(64500), Some("Example Net")));
        assert_eq!(a.asn(ip("192.0.2.1")), None);
        std::fs::write(dir.join("broken.mmdb"), b"not a database").unwrap();
        let e = Mmdb::open(&dir.join("broken.mmdb")).unwrap_err().to_string();
        assert!(e.contains("broken.mmdb"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
