//! IP → autonomous system (number and organisation), from range tables.
//!
//! The source is the CSV layout of the openly licensed ip-location-db ASN data (and of most ASN
//! exports): `first_ip,last_ip,asn,organisation` per line, IPv4 and IPv6 in one or several
//! files. Ranges are kept sorted by their first address, so a lookup is one binary search; the
//! organisation names are interned (a few tens of thousands of ASes own millions of ranges).

use crate::{Error, Result};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy)]
struct Range {
    first: u128,
    last: u128,
    asn: u32,
    org: u32,
}

/// Address ranges and the AS that announces them.
#[derive(Debug, Default, Clone)]
pub struct AsnTable {
    v4: Vec<Range>,
    v6: Vec<Range>,
    orgs: Vec<String>,
}

fn key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (true, u128::from(u32::from(a))),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (true, u128::from(u32::from(v4))),
            None => (false, u128::from(a)),
        },
    }
}

impl AsnTable {
    /// Reads `first_ip,last_ip,asn,organisation` lines (no header; `#` comments and blank lines
    /// skipped). `name` names the source in errors.
    pub fn from_csv(name: &str, text: &str) -> Result<AsnTable> {
        let mut table = AsnTable::default();
        table.add_csv(name, text)?;
        table.finish(name)?;
        Ok(table)
    }

    /// Reads several sources (e.g. the IPv4 and the IPv6 file) into one table.
    pub fn from_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<AsnTable> {
        let mut table = AsnTable::default();
        for (name, text) in sources {
            table.add_csv(name, text)?;
        }
        table.finish("ASN table")?;
        Ok(table)
    }

    fn add_csv(&mut self, name: &str, text: &str) -> Result<()> {
        let mut interned: HashMap<String, u32> =
            self.orgs.iter().enumerate().map(|(i, o)| (o.clone(), i as u32)).collect();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        for (n, row) in reader.records().enumerate() {
            let bad = |why: String| Error::Table { table: name.to_string(), line: n + 1, why };
            let row = row.map_err(|e| bad(e.to_string()))?;
            if row.len() < 3 {
                return Err(bad(format!("{} fields, expected first_ip,last_ip,asn[,organisation]", row.len())));
            }
            let ip = |i: usize| row[i].trim().parse::<IpAddr>().map_err(|e| bad(format!("{:?}: {e}", &row[i])));
            let (first, last) = (ip(0)?, ip(1)?);
            let ((v4, first), (v4_last, last)) = (key(first), key(last));
            if v4 != v4_last || first > last {
                return Err(bad(format!("{}..{} is not a range", &row[0], &row[1])));
            }
            let asn_text = row[2].trim();
            let asn_text = asn_text.strip_prefix("AS").unwrap_or(asn_text);
            let asn: u32 = asn_text.parse().map_err(|_| bad(format!("{:?} is not an AS number", &row[2])))?;
            let org_name = row.get(3).unwrap_or("").trim().to_string();
            let next = interned.len() as u32;
            let org = *interned.entry(org_name.clone()).or_insert_with(|| {
                self.orgs.push(org_name);
                next
            });
            let range = Range { first, last, asn, org };
            if v4 { self.v4.push(range) } else { self.v6.push(range) }
        }
        Ok(())
    }

    /// Sorts the ranges and refuses overlaps (a lookup must have one answer).
    fn finish(&mut self, name: &str) -> Result<()> {
        for ranges in [&mut self.v4, &mut self.v6] {
            ranges.sort_by_key(|r| r.first);
            if let Some(w) = ranges.windows(2).find(|w| w[1].first <= w[0].last) {
                return Err(Error::Table {
                    table: name.to_string(),
                    line: 0,
                    why: format!("ranges of AS{} and AS{} overlap", w[0].asn, w[1].asn),
                });
            }
        }
        Ok(())
    }

    /// The AS announcing `ip`, with its organisation ("" when the source names none).
    pub fn lookup(&self, ip: IpAddr) -> Option<(u32, &str)> {
        let (v4, k) = key(ip);
        let ranges = if v4 { &self.v4 } else { &self.v6 };
        let i = ranges.partition_point(|r| r.first <= k).checked_sub(1)?;
        let r = ranges[i];
        (k <= r.last).then(|| (r.asn, self.orgs[r.org as usize].as_str()))
    }

    /// Ranges held.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
# documentation ranges and private ASNs
192.0.2.0,192.0.2.127,64496,Example Transit A
192.0.2.128,192.0.2.255,64497,\"Example, Second Net\"
198.51.100.0,198.51.100.255,AS64512,Private Use Co
2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,4200000000,Documentation v6
203.0.113.0,203.0.113.255,64513,
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_ipv6_mapped_addresses_and_gaps() {
        let t = AsnTable::from_csv("fixture", FIXTURE).unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(t.lookup(ip("192.0.2.0")), Some((64496, "Example Transit A")));
        assert_eq!(t.lookup(ip("192.0.2.127")), Some((64496, "Example Transit A")));
        assert_eq!(t.lookup(ip("192.0.2.128")), Some((64497, "Example, Second Net")));
        assert_eq!(t.lookup(ip("198.51.100.7")), Some((64512, "Private Use Co")));
        assert_eq!(t.lookup(ip("::ffff:198.51.100.7")), Some((64512, "Private Use Co")));
        assert_eq!(t.lookup(ip("2001:db8:1::1")), Some((4_200_000_000, "Documentation v6")));
        assert_eq!(t.lookup(ip("203.0.113.9")), Some((64513, "")));
        assert_eq!(t.lookup(ip("192.0.1.255")), None);
        assert_eq!(t.lookup(ip("199.0.0.1")), None);
        assert_eq!(t.lookup(ip("2001:db9::1")), None);
    }

    #[test]
    fn bad_lines_and_overlaps_are_named() {
        let e = AsnTable::from_csv("asn.csv", "192.0.2.0,192.0.2.9,64496,A\n192.0.2.x,192.0.2.9,1,B\n").unwrap_err();
        assert!(e.to_string().contains("asn.csv line 2"), "{e}");
        let e = AsnTable::from_csv("asn.csv", "192.0.2.9,192.0.2.0,64496,A\n").unwrap_err();
        assert!(e.to_string().contains("not a range"), "{e}");
        let e =
            AsnTable::from_csv("asn.csv", "192.0.2.0,192.0.2.9,64496,A\n192.0.2.5,192.0.2.20,64497,B\n").unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
        let e = AsnTable::from_csv("asn.csv", "192.0.2.0,2001:db8::,64496,A\n").unwrap_err();
        assert!(e.to_string().contains("not a range"), "{e}");
    }
}
