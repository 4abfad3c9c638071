//! What an indicator points at, for the lookups: the address it names (an IP, a CIDR's network,
//! a URL's IP host) or the host name (a domain, an e-mail's domain, a URL's host). Hashes and AS
//! numbers name neither.

use iocflow_model::IndicatorType;
use iocflow_model::indicator::{UrlHost, url_host};
use std::borrow::Cow;
use std::net::IpAddr;

/// The address an indicator names: an IP, a CIDR's network, a URL's IP host.
pub fn ip_of(kind: IndicatorType, value: &str) -> Option<IpAddr> {
    match kind {
        IndicatorType::Ipv4 | IndicatorType::Ipv6 => value.parse().ok(),
        IndicatorType::Cidr => value.split('/').next()?.parse().ok(),
        IndicatorType::Url => match url_host(value)? {
            UrlHost::Ip(ip) => Some(ip),
            UrlHost::Domain(_) => None,
        },
        _ => None,
    }
}

/// The host name an indicator names: a domain, an e-mail's domain, a URL's host.
pub fn host_of(kind: IndicatorType, value: &str) -> Option<Cow<'_, str>> {
    match kind {
        IndicatorType::Domain => Some(Cow::Borrowed(value)),
        IndicatorType::Email => value.rsplit_once('@').map(|(_, d)| Cow::Borrowed(d)),
        IndicatorType::Url => match url_host(value)? {
            UrlHost::Domain(d) => Some(Cow::Owned(d)),
            UrlHost::Ip(_) => None,
        },
        _ => None,
    }
}
