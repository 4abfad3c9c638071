//! What an indicator points at, for the lookups: the address it names (an IP, a CIDR's network,
//! a URL's IP host) or the host name (a domain, an e-mail's domain, a URL's host). Hashes and AS
//! numbers name neither.
//!
//! A [`Target`] is worked out once per row (a URL is parsed once) and shared by every lookup of
//! that row: country, AS, organisation, sectors and warninglists.

use iocflow_model::IndicatorType;
use iocflow_model::indicator::{UrlHost, url_host};
use std::net::IpAddr;

/// One canonical indicator and what it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub kind: IndicatorType,
    pub value: &'a str,
    /// The address it names: an IP, a CIDR's network, a URL's IP host.
    pub ip: Option<IpAddr>,
    /// The host name it names: a domain, an e-mail's domain, a URL's host.
    pub host: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn of(kind: IndicatorType, value: &'a str) -> Target<'a> {
        let (ip, host) = match kind {
            IndicatorType::Ipv4 | IndicatorType::Ipv6 => (value.parse().ok(), None),
            IndicatorType::Cidr => (value.split('/').next().and_then(|a| a.parse().ok()), None),
            IndicatorType::Domain => (None, Some(value)),
            IndicatorType::Email => (None, value.rsplit_once('@').map(|(_, d)| d)),
            IndicatorType::Url => match url_host(value) {
                Some(UrlHost::Ip(ip)) => (Some(ip), None),
                Some(UrlHost::Domain(d)) => (None, Some(d)),
                None => (None, None),
            },
            _ => (None, None),
        };
        Target { kind, value, ip, host }
    }

    /// An indicator whose address is known already (the decoder parsed it): the value is not
    /// read again. Only the types that name an address have one.
    pub fn at(kind: IndicatorType, value: &'a str, address: IpAddr) -> Target<'a> {
        Target { kind, value, ip: Some(address), host: None }
    }

    /// The host name, if it names one.
    pub fn host(&self) -> Option<&'a str> {
        self.host
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType as T;

    #[test]
    fn addresses_and_hosts_by_type() {
        let ip = |k, v| Target::of(k, v).ip.map(|a| a.to_string());
        let host = |k, v| Target::of(k, v).host;
        assert_eq!(ip(T::Ipv4, "192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(ip(T::Ipv6, "2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip(T::Cidr, "198.51.100.0/24").as_deref(), Some("198.51.100.0"));
        assert_eq!(ip(T::Url, "http://[2001:db8::2]:8080/x").as_deref(), Some("2001:db8::2"));
        assert_eq!(host(T::Url, "http://192.0.2.1/x"), None);
        assert_eq!(host(T::Url, "https://login.example.sg/a?b=c"), Some("login.example.sg"));
        assert_eq!(host(T::Email, "ceo@bank.example.my"), Some("bank.example.my"));
        assert_eq!(host(T::Domain, "xn--o3cw4h"), Some("xn--o3cw4h"));
        let known = Target::at(T::Url, "http://192.0.2.1/x", "192.0.2.1".parse().unwrap());
        assert_eq!(known, Target::of(T::Url, "http://192.0.2.1/x"), "the address known is the one read");
        let hash = Target::of(T::Md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!((hash.ip, hash.host), (None, None));
    }
}
