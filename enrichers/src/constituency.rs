//! The constituency registry: which organisation an indicator belongs to, in which country and
//! sectors — what makes a CERT's constituent "implicated" even when the infrastructure is hosted
//! abroad (a Singapore bank's domain on a US cloud).
//!
//! A TOML file kept by the regional CERT:
//!
//! ```toml
//! [[organisation]]
//! name = "Example Bank Berhad"
//! country = "MY"
//! sectors = ["finance"]
//! cidrs = ["203.0.113.0/25", "2001:db8:100::/48"]
//! asns = [64500]
//! domains = ["examplebank.my", "ธนาคาร.ไทย"]
//! ```
//!
//! Lookups: an IP (or a CIDR's network address, or a URL's IP host) by the longest matching
//! prefix, then by the AS announcing it; a domain (or e-mail or URL host) by its longest
//! registered suffix; an ASN indicator by number.

use crate::cctld::SECTORS;
use crate::ip_prefix::{IpPrefixMap, parse_prefix};
use crate::{Error, Result};
use foldhash::HashMap;
use iocflow_model::{Country, Indicator, IndicatorType};
use serde::Deserialize;
use std::net::IpAddr;

/// One organisation of a constituency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub name: String,
    pub country: Country,
    pub sectors: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    organisation: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    country: String,
    #[serde(default)]
    sectors: Vec<String>,
    #[serde(default)]
    cidrs: Vec<String>,
    #[serde(default)]
    asns: Vec<u32>,
    #[serde(default)]
    domains: Vec<String>,
}

/// The registry, indexed.
#[derive(Clone, Default)]
pub struct Registry {
    organisations: Vec<Organisation>,
    cidrs: IpPrefixMap<u32>,
    asns: HashMap<u32, u32>,
    domains: HashMap<String, u32>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("organisations", &self.organisations.len()).finish()
    }
}

impl Registry {
    /// Parses and indexes a registry; `name` names it in errors. Every organisation, CIDR,
    /// domain and sector is checked; a CIDR, ASN or domain claimed twice is an error (the
    /// answer must not depend on file order), except that a longer prefix inside another
    /// organisation's shorter one is how a subsidiary is carved out: longest prefix wins.
    pub fn from_toml(name: &str, text: &str) -> Result<Registry> {
        let bad = |why: String| Error::Table { table: name.to_string(), line: 0, why };
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut r = Registry::default();
        for (i, e) in file.organisation.into_iter().enumerate() {
            let at = |why: String| bad(format!("organisation[{i}] ({}): {why}", e.name));
            let index = r.organisations.len() as u32;
            let Some(country) = Country::parse_exact(&e.country) else {
                return Err(at(format!("country {:?} is not an upper-case ISO 3166-1 code", e.country)));
            };
            if let Some(s) = e.sectors.iter().find(|s| !SECTORS.contains(&s.as_str())) {
                return Err(at(format!("sector {s:?} is not one of {}", SECTORS.join(", "))));
            }
            for cidr in &e.cidrs {
                let net = parse_prefix(cidr).ok_or_else(|| at(format!("{cidr:?} is not a CIDR")))?;
                if r.cidrs.insert(net, index).is_some() {
                    return Err(at(format!("{cidr} is claimed by another organisation too")));
                }
            }
            for asn in &e.asns {
                if r.asns.insert(*asn, index).is_some() {
                    return Err(at(format!("AS{asn} is claimed by another organisation too")));
                }
            }
            for d in &e.domains {
                let canonical =
                    Indicator::new(IndicatorType::Domain, d).map_err(|err| at(format!("domain {d:?}: {err}")))?.value;
                if r.domains.insert(canonical, index).is_some() {
                    return Err(at(format!("domain {d} is claimed by another organisation too")));
                }
            }
            r.organisations.push(Organisation { name: e.name, country, sectors: e.sectors });
        }
        Ok(r)
    }

    /// Organisations held.
    pub fn len(&self) -> usize {
        self.organisations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
    }

    /// The organisation whose most specific prefix holds `ip`, else the one owning `asn`.
    pub fn by_ip(&self, ip: IpAddr, asn: Option<u32>) -> Option<&Organisation> {
        let hit = self.cidrs.longest_match(ip);
        hit.or_else(|| asn.and_then(|a| self.asns.get(&a).copied())).map(|i| &self.organisations[i as usize])
    }

    /// The organisation owning AS `asn`.
    pub fn by_asn(&self, asn: u32) -> Option<&Organisation> {
        self.asns.get(&asn).map(|i| &self.organisations[*i as usize])
    }

    /// The organisation owning the longest registered suffix of a canonical domain.
    pub fn by_domain(&self, domain: &str) -> Option<&Organisation> {
        let mut rest = domain;
        loop {
            if let Some(i) = self.domains.get(rest) {
                return Some(&self.organisations[*i as usize]);
            }
            rest = rest.split_once('.')?.1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"
        [[organisation]]
        name = "Example Telco"
        country = "SG"
        sectors = ["infocomm"]
        cidrs = ["192.0.2.0/24", "2001:db8::/32"]
        asns = [64500]
        domains = ["telco.example.sg"]

        [[organisation]]
        name = "Example Bank (carved out of the telco's block)"
        country = "MY"
        sectors = ["finance"]
        cidrs = ["192.0.2.128/25", "2001:db8:100::/48", "198.51.100.7"]
        domains = ["bank.example.my", "ธนาคาร.ไทย", "pay.telco.example.sg"]

        [[organisation]]
        name = "Example Port Authority"
        country = "TH"
        sectors = ["maritime", "government"]
        asns = [4200000001]
    "#;

    fn org(o: Option<&Organisation>) -> Option<&str> {
        o.map(|o| o.name.split(' ').nth(1).unwrap())
    }

    #[test]
    fn longest_prefix_asn_and_suffix_lookups() {
        let r = Registry::from_toml("fixture", FIXTURE).unwrap();
        assert_eq!(r.len(), 3);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(org(r.by_ip(ip("192.0.2.1"), None)), Some("Telco"));
        assert_eq!(org(r.by_ip(ip("192.0.2.200"), None)), Some("Bank"), "longest prefix wins");
        assert_eq!(org(r.by_ip(ip("::ffff:192.0.2.200"), None)), Some("Bank"));
        assert_eq!(org(r.by_ip(ip("2001:db8:1::1"), None)), Some("Telco"));
        assert_eq!(org(r.by_ip(ip("2001:db8:100::1"), None)), Some("Bank"));
        assert_eq!(org(r.by_ip(ip("198.51.100.7"), None)), Some("Bank"), "a single address");
        assert_eq!(org(r.by_ip(ip("198.51.100.8"), None)), None);
        assert_eq!(org(r.by_ip(ip("203.0.113.1"), Some(4_200_000_001))), Some("Port"), "by the announcing AS");
        assert_eq!(org(r.by_asn(64500)), Some("Telco"));
        assert_eq!(org(r.by_domain("www.bank.example.my")), Some("Bank"));
        assert_eq!(org(r.by_domain("telco.example.sg")), Some("Telco"));
        assert_eq!(org(r.by_domain("a.pay.telco.example.sg")), Some("Bank"), "longest suffix wins");
        assert_eq!(org(r.by_domain("example.sg")), None);
        // IDN: registered in Unicode, looked up in canonical punycode.
        let idn = Indicator::new(IndicatorType::Domain, "www.ธนาคาร.ไทย").unwrap().value;
        assert!(idn.starts_with("www.xn--"), "{idn}");
        assert_eq!(org(r.by_domain(&idn)), Some("Bank"));
        let port = r.by_asn(4_200_000_001).unwrap();
        assert_eq!((port.country.as_str(), port.sectors.clone()), ("TH", vec!["maritime".into(), "government".into()]));
    }

    #[test]
    fn bad_entries_name_the_organisation() {
        let one = |body: &str| format!("[[organisation]]\nname = \"X\"\ncountry = \"SG\"\n{body}");
        let e = |body: &str| Registry::from_toml("reg.toml", &one(body)).unwrap_err().to_string();
        assert!(e("sectors = [\"banking\"]").contains("organisation[0] (X): sector \"banking\""));
        assert!(e("cidrs = [\"192.0.2.0/33\"]").contains("is not a CIDR"));
        assert!(e("domains = [\"not a domain\"]").contains("domain"));
        assert!(e("colour = \"red\"").contains("colour"));
        let twice = format!("{}\n{}", one("asns = [1]"), one("asns = [1]"));
        assert!(Registry::from_toml("reg.toml", &twice).unwrap_err().to_string().contains("organisation[1] (X): AS1"));
        let bad_country = "[[organisation]]\nname = \"X\"\ncountry = \"Singapore\"\n";
        assert!(Registry::from_toml("reg.toml", bad_country).unwrap_err().to_string().contains("country"));
    }
}
