//! The infrastructure country of an indicator, with no DNS lookups (DESIGN.md, "Indicator model").
//!
//! IP and CIDR → IP geolocation (built-in RIR delegation data from the `iptocc` crate); domain,
//! e-mail and URL host → ccTLD; URL with an IP host → that IP; ASN and hashes → none for now.

use crate::address::Target;
use crate::cctld::country_of_domain;
use iocflow_model::Country;
use std::net::IpAddr;

/// The country of an IP address from the built-in RIR-derived table.
pub fn country_of_ip(ip: IpAddr) -> Option<Country> {
    iptocc::country_code(ip).and_then(Country::parse)
}

/// The infrastructure country of an indicator.
pub fn infra_country(target: &Target<'_>) -> Option<Country> {
    match target.ip {
        Some(ip) => country_of_ip(ip),
        None => country_of_domain(target.host()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iocflow_model::IndicatorType as T;

    fn infra_country(kind: T, value: &str) -> Option<&'static str> {
        super::infra_country(&Target::of(kind, value)).map(|c| c.as_str())
    }

    #[test]
    fn by_type() {
        // Well-known public resolvers, whose RIR delegation is stable.
        assert_eq!(infra_country(T::Ipv4, "8.8.8.8"), Some("US"));
        assert_eq!(infra_country(T::Ipv4, "192.168.1.1"), None);
        assert_eq!(infra_country(T::Domain, "bank.example.my"), Some("MY"));
        assert_eq!(infra_country(T::Email, "ceo@agency.gov.sg"), Some("SG"));
        assert_eq!(infra_country(T::Url, "http://login.example.vn/x"), Some("VN"));
        assert_eq!(infra_country(T::Url, "http://8.8.8.8/x"), Some("US"));
        assert_eq!(infra_country(T::Cidr, "8.8.8.0/24"), Some("US"));
        assert_eq!(infra_country(T::Md5, "d41d8cd98f00b204e9800998ecf8427e"), None);
    }
}
