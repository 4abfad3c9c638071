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

/// Non-overlapping ranges from possibly overlapping ones (see [`AsnTable::finish`]).
fn flatten(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort_by(|a, b| a.first.cmp(&b.first).then(b.last.cmp(&a.last)));
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    let mut open: Vec<Range> = Vec::new();
    // Everything before `cursor` is emitted.
    let mut cursor: u128 = 0;
    let emit = |r: &Range, first: u128, last: u128, out: &mut Vec<Range>| {
        if first <= last {
            out.push(Range { first, last, ..*r });
        }
    };
    for r in ranges {
        while let Some(top) = open.last().copied() {
            if top.last >= r.first {
                break;
            }
            if cursor <= top.last {
                emit(&top, cursor, top.last, &mut out);
                cursor = top.last.saturating_add(1);
            }
            open.pop();
        }
        if let Some(top) = open.last()
            && cursor < r.first
        {
            emit(top, cursor, r.first - 1, &mut out);
        }
        cursor = cursor.max(r.first);
        open.push(r);
    }
    while let Some(top) = open.pop() {
        if cursor <= top.last {
            emit(&top, cursor, top.last, &mut out);
            cursor = top.last.saturating_add(1);
        }
    }
    out
}

impl AsnTable {
    /// Reads `first_ip,last_ip,asn,organisation` lines (no header; `#` comments and blank lines
    /// skipped). `name` names the source in errors.
    pub fn from_csv(name: &str, text: &str) -> Result<AsnTable> {
        let mut table = AsnTable::default();
        table.add_csv(name, text)?;
        table.finish();
        Ok(table)
    }

    /// Reads several sources (e.g. the IPv4 and the IPv6 file) into one table; overlapping
    /// ranges resolve as in [`AsnTable::finish`].
    pub fn from_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<AsnTable> {
        let mut table = AsnTable::default();
        for (name, text) in sources {
            table.add_csv(name, text)?;
        }
        table.finish();
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

    /// Sorts the ranges and resolves overlaps, so a lookup has one answer: where ranges
    /// overlap, the one that starts later wins (for nested ranges, the more specific one;
    /// published ASN data nests announcements inside their covering prefixes).
    fn finish(&mut self) {
        for ranges in [&mut self.v4, &mut self.v6] {
            *ranges = flatten(std::mem::take(ranges));
        }
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
    fn overlaps_resolve_to_the_more_specific_or_later_range() {
        let t = AsnTable::from_csv(
            "asn.csv",
            "10.0.0.0,10.255.255.255,1,Covering\n10.1.0.0,10.1.255.255,2,Nested\n10.1.2.0,10.1.2.255,3,Deeper\n\
             10.9.0.0,10.10.255.255,4,Partial\n10.10.0.0,10.11.255.255,5,Later\n",
        )
        .unwrap();
        let asn = |s: &str| t.lookup(ip(s)).map(|(a, _)| a);
        assert_eq!(asn("10.0.0.1"), Some(1));
        assert_eq!(asn("10.1.0.1"), Some(2));
        assert_eq!(asn("10.1.2.3"), Some(3));
        assert_eq!(asn("10.1.3.0"), Some(2), "back in the nested range after the deeper one");
        assert_eq!(asn("10.2.0.0"), Some(1), "back in the covering range");
        assert_eq!(asn("10.9.0.1"), Some(4));
        assert_eq!(asn("10.10.0.1"), Some(5), "a partial overlap: the later start wins");
        assert_eq!(asn("10.11.0.1"), Some(5));
        assert_eq!(asn("10.12.0.1"), Some(1));
        assert_eq!(asn("11.0.0.0"), None);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = AsnTable::from_csv("asn.csv", "192.0.2.0,192.0.2.9,64496,A\n192.0.2.x,192.0.2.9,1,B\n").unwrap_err();
        assert!(e.to_string().contains("asn.csv line 2"), "{e}");
        let e = AsnTable::from_csv("asn.csv", "192.0.2.9,192.0.2.0,64496,A\n").unwrap_err();
        assert!(e.to_string().contains("not a range"), "{e}");
        let e = AsnTable::from_csv("asn.csv", "192.0.2.0,2001:db8::,64496,A\n").unwrap_err();
        assert!(e.to_string().contains("not a range"), "{e}");
    }
}
