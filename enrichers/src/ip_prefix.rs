//! IP prefixes → values with longest-prefix match, IPv4 and IPv6 in one map: what the
//! constituency registry and the CIDR warninglists both look addresses up in.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use std::net::IpAddr;

/// A CIDR or a single address (as a /32 or /128), host bits cleared.
pub fn parse_prefix(text: &str) -> Option<IpNet> {
    let text = text.trim();
    let net = text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))?;
    Some(net.trunc())
}

/// Prefixes of both families and their values.
#[derive(Clone)]
pub struct IpPrefixMap<T> {
    v4: PrefixMap<Ipv4Net, T>,
    v6: PrefixMap<Ipv6Net, T>,
}

impl<T> Default for IpPrefixMap<T> {
    fn default() -> Self {
        IpPrefixMap { v4: PrefixMap::new(), v6: PrefixMap::new() }
    }
}

impl<T: Copy> IpPrefixMap<T> {
    /// Adds a prefix; returns the value it had, if it was there already.
    pub fn insert(&mut self, net: IpNet, value: T) -> Option<T> {
        match net.trunc() {
            IpNet::V4(n) => self.v4.insert(n, value),
            IpNet::V6(n) => self.v6.insert(n, value),
        }
    }

    /// The value of the longest prefix holding `ip` (IPv4-mapped IPv6 addresses as IPv4).
    pub fn longest_match(&self, ip: IpAddr) -> Option<T> {
        match ip {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a)).map(|(_, v)| *v),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.v4.get_lpm(&Ipv4Net::from(v4)).map(|(_, v)| *v),
                None => self.v6.get_lpm(&Ipv6Net::from(a)).map(|(_, v)| *v),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_match_over_both_families() {
        let mut m = IpPrefixMap::default();
        for (p, v) in [("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("2001:db8::/32", 3), ("192.0.2.7", 4)] {
            assert_eq!(m.insert(parse_prefix(p).unwrap(), v), None);
        }
        assert_eq!(m.insert(parse_prefix("10.0.0.1/8").unwrap(), 5), Some(1), "host bits are cleared");
        let at = |s: &str| m.longest_match(s.parse().unwrap());
        assert_eq!((at("10.2.0.1"), at("10.1.0.1"), at("::ffff:10.1.0.1")), (Some(5), Some(2), Some(2)));
        assert_eq!((at("2001:db8::1"), at("192.0.2.7"), at("192.0.2.8")), (Some(3), Some(4), None));
        assert!(parse_prefix("10.0.0.0/33").is_none() && parse_prefix("x").is_none());
    }
}
