//! Indicator types, their canonical forms and their ids.
//!
//! Two feeds that name the same thing must produce the same indicator, or dedupe and routing
//! fail: `hxxp://Example[.]COM:80` and `http://example.com/` are one URL. Every value is
//! therefore refanged and canonicalised here, once, at decode time, and the id is a hash of the
//! canonical form (`xxh3-128(type ‖ 0x00 ‖ value)`, 32 hex digits). Nothing downstream
//! re-parses a value.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The kinds of indicator iocflow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorType {
    Ipv4,
    Ipv6,
    Cidr,
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Asn,
}

impl IndicatorType {
    pub const ALL: [IndicatorType; 10] = [
        IndicatorType::Ipv4,
        IndicatorType::Ipv6,
        IndicatorType::Cidr,
        IndicatorType::Domain,
        IndicatorType::Url,
        IndicatorType::Email,
        IndicatorType::Md5,
        IndicatorType::Sha1,
        IndicatorType::Sha256,
        IndicatorType::Asn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorType::Ipv4 => "ipv4",
            IndicatorType::Ipv6 => "ipv6",
            IndicatorType::Cidr => "cidr",
            IndicatorType::Domain => "domain",
            IndicatorType::Url => "url",
            IndicatorType::Email => "email",
            IndicatorType::Md5 => "md5",
            IndicatorType::Sha1 => "sha1",
            IndicatorType::Sha256 => "sha256",
            IndicatorType::Asn => "asn",
        }
    }

    /// Reads a type name; a few common aliases (`ip`, `ip-src`, `hostname`, `fqdn`, `uri`, `as`)
    /// are accepted. `ip` means "an IP address of either family": see [`Indicator::new`].
    pub fn parse(name: &str) -> Result<IndicatorType> {
        // Fast path: the canonical names, as every internal batch writes them.
        if let Some(t) = IndicatorType::ALL.iter().find(|t| t.as_str() == name) {
            return Ok(*t);
        }
        let n = name.trim().to_ascii_lowercase();
        Ok(match n.as_str() {
            "ipv4" | "ipv4-addr" | "ip" | "ip-src" | "ip-dst" | "ip:port" | "ip-src|port" | "ip-dst|port" => {
                IndicatorType::Ipv4
            }
            "ipv6" | "ipv6-addr" => IndicatorType::Ipv6,
            "cidr" | "netblock" | "prefix" | "ip-range" => IndicatorType::Cidr,
            "domain" | "domain-name" | "hostname" | "fqdn" => IndicatorType::Domain,
            "url" | "uri" | "link" => IndicatorType::Url,
            "email" | "email-addr" | "email-src" | "email-dst" => IndicatorType::Email,
            "md5" | "md5_hash" => IndicatorType::Md5,
            "sha1" | "sha-1" | "sha1_hash" => IndicatorType::Sha1,
            "sha256" | "sha-256" | "sha256_hash" => IndicatorType::Sha256,
            "asn" | "as" | "autonomous-system" => IndicatorType::Asn,
            _ => return Err(Error::UnsupportedType(name.to_string())),
        })
    }

    /// True for the types whose infrastructure country comes from an IP address.
    pub fn is_ip(self) -> bool {
        matches!(self, IndicatorType::Ipv4 | IndicatorType::Ipv6 | IndicatorType::Cidr)
    }
}

impl fmt::Display for IndicatorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 128-bit id of an indicator: xxh3-128 of its type, a zero byte and its canonical value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndicatorId(pub u128);

impl IndicatorId {
    pub fn of(kind: IndicatorType, canonical: &str) -> IndicatorId {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(kind.as_str().as_bytes());
        h.update(&[0]);
        h.update(canonical.as_bytes());
        IndicatorId(h.digest128())
    }

    /// The id as 32 lower-case hex digits: the Kafka key of every output record.
    pub fn to_hex(self) -> String {
        self.with_hex(str::to_string)
    }

    /// Calls `f` with the id as 32 lower-case hex digits, written on the stack.
    fn with_hex<T>(self, f: impl FnOnce(&str) -> T) -> T {
        let mut digits = [0; 32];
        hex::encode_to_slice(self.0.to_be_bytes(), &mut digits).expect("32 digits for 16 bytes");
        f(std::str::from_utf8(&digits).expect("hex digits are ASCII"))
    }

    /// The id of 32 hex digits.
    pub fn from_hex(s: &str) -> Option<IndicatorId> {
        // A table lookup per digit: `hex::decode_to_slice` and `u128::from_str_radix` (which
        // would also take a sign) measured slower on this path, once per row of every batch.
        const NOT_HEX: u8 = 0xff;
        const VALUES: [u8; 256] = {
            let mut t = [NOT_HEX; 256];
            let mut d = 0;
            while d < 16 {
                t[b"0123456789abcdef"[d] as usize] = d as u8;
                t[b"0123456789ABCDEF"[d] as usize] = d as u8;
                d += 1;
            }
            t
        };
        let digits: &[u8; 32] = s.as_bytes().try_into().ok()?;
        let mut value = 0u128;
        for &d in digits {
            let v = VALUES[usize::from(d)];
            if v == NOT_HEX {
                return None;
            }
            value = value << 4 | u128::from(v);
        }
        Some(IndicatorId(value))
    }

    /// The internal partition that owns this indicator: dedupe is correct only because every
    /// report of one indicator lands in the same partition, whichever feed it came from.
    pub fn partition(self, partitions: u32) -> u32 {
        ((self.0 >> 64) as u64 % u64::from(partitions.max(1))) as u32
    }
}

/// Written as its 32 hex digits, as [`to_hex`](IndicatorId::to_hex) gives them: records carry
/// the id itself and spell it only when they are encoded.
impl Serialize for IndicatorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.with_hex(|digits| s.serialize_str(digits))
    }
}

impl fmt::Display for IndicatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for IndicatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndicatorId({self})")
    }
}

/// A canonical indicator: its type, canonical value and id, and the address it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Indicator {
    pub kind: IndicatorType,
    pub value: String,
    pub id: IndicatorId,
    /// The address it names: an IP, a CIDR's network, a URL's IP host; `None` for the other
    /// types. Kept from canonicalisation, which parsed it, so enrichment need not parse the
    /// value again.
    pub address: Option<IpAddr>,
}

impl Indicator {
    /// Refangs and canonicalises `raw` as an indicator of type `kind`. The resulting type can
    /// differ from `kind` where two spellings are one indicator: an IPv4-mapped IPv6 address is
    /// IPv4, a /32 or /128 CIDR is the address itself, and `ipv4` given an IPv6 address is IPv6.
    pub fn new(kind: IndicatorType, raw: &str) -> Result<Indicator> {
        let refanged = refang(raw.trim());
        let (kind, value, address) = canonicalise(kind, &refanged)?;
        Ok(Indicator { id: IndicatorId::of(kind, &value), kind, value, address })
    }

    /// Detects the type of a bare value (lists, free text) and canonicalises it.
    pub fn detect(raw: &str) -> Result<Indicator> {
        let refanged = refang(raw.trim());
        let kind = detect_type(&refanged).ok_or_else(|| Error::InvalidValue {
            kind: IndicatorType::Domain,
            value: raw.to_string(),
            why: "not a recognisable indicator",
        })?;
        Indicator::new(kind, &refanged)
    }
}

/// Undoes the usual defanging: `hxxp`, `[.]`, `(.)`, `{.}`, `[dot]`, `[:]`, `[@]`, `[at]`.
pub fn refang(s: &str) -> String {
    if !s.contains(['[', '(', '{']) && !s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("hxxp")) {
        return s.to_string();
    }
    let mut out = s
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("{.}", ".")
        .replace("[dot]", ".")
        .replace("[DOT]", ".")
        .replace("[:]", ":")
        .replace("[://]", "://")
        .replace("[@]", "@")
        .replace("[at]", "@");
    if out.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("hxxp")) {
        out.replace_range(..4, "http");
    }
    out
}

fn invalid(kind: IndicatorType, value: &str, why: &'static str) -> Error {
    Error::InvalidValue { kind, value: value.chars().take(200).collect(), why }
}

/// The canonical type and value, and the address the indicator names.
fn canonicalise(kind: IndicatorType, v: &str) -> Result<(IndicatorType, String, Option<IpAddr>)> {
    use IndicatorType as T;
    match kind {
        T::Ipv4 | T::Ipv6 => {
            // An address with a port (`192.0.2.1:443`, `[2001:db8::1]:443`, MISP's `ip|port`)
            // names the address.
            let ip = IpAddr::from_str(v)
                .or_else(|_| std::net::SocketAddr::from_str(v).map(|s| s.ip()))
                .or_else(|_| IpAddr::from_str(v.split('|').next().unwrap_or_default()))
                .map_err(|_| invalid(kind, v, "not an IP address"))?;
            Ok(ip_indicator(ip))
        }
        T::Cidr => {
            if !v.contains('/') {
                let ip = IpAddr::from_str(v).map_err(|_| invalid(kind, v, "not a CIDR"))?;
                return Ok(ip_indicator(ip));
            }
            let net = ipnet::IpNet::from_str(v).map_err(|_| invalid(kind, v, "not a CIDR"))?;
            let net = match net {
                ipnet::IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
                    Some(v4) if n.prefix_len() >= 96 => {
                        ipnet::IpNet::V4(ipnet::Ipv4Net::new(v4, n.prefix_len() - 96).expect("prefix within 32"))
                    }
                    _ => net,
                },
                ipnet::IpNet::V4(_) => net,
            };
            if net.prefix_len() == net.max_prefix_len() {
                return Ok(ip_indicator(net.addr()));
            }
            let net = net.trunc();
            Ok((T::Cidr, net.to_string(), Some(net.network())))
        }
        T::Domain => domain(v).map(|d| (T::Domain, d, None)),
        T::Url => url(v).map(|(u, host)| (T::Url, u, host)),
        T::Email => {
            let (local, host) = v.rsplit_once('@').ok_or_else(|| invalid(kind, v, "no @ in the address"))?;
            let local = local.trim_start_matches("mailto:");
            if local.is_empty()
                || local.len() > 64
                || local.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@')
            {
                return Err(invalid(kind, v, "bad local part"));
            }
            let host = domain(host).map_err(|_| invalid(kind, v, "bad domain"))?;
            Ok((T::Email, format!("{}@{host}", local.to_lowercase()), None))
        }
        T::Md5 => hash(kind, v, 32),
        T::Sha1 => hash(kind, v, 40),
        T::Sha256 => hash(kind, v, 64),
        T::Asn => {
            let digits = v.get(..2).filter(|p| p.eq_ignore_ascii_case("as")).map_or(v, |_| &v[2..]);
            let digits = digits.strip_prefix(['n', 'N']).unwrap_or(digits).trim();
            match digits.parse::<u32>() {
                Ok(n) if n > 0 => Ok((T::Asn, format!("AS{n}"), None)),
                _ => Err(invalid(kind, v, "not an AS number")),
            }
        }
    }
}

fn ip_indicator(ip: IpAddr) -> (IndicatorType, String, Option<IpAddr>) {
    let ip = canonical_ip(ip);
    let kind = if ip.is_ipv4() { IndicatorType::Ipv4 } else { IndicatorType::Ipv6 };
    (kind, ip.to_string(), Some(ip))
}

/// An indicator's address as 16 bytes, as the internal batches carry it: IPv6 as it is, IPv4
/// IPv4-mapped. A canonical indicator's address is never an IPv4-mapped IPv6 address, so the two
/// cannot be confused.
pub fn address_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The address [`address_octets`] gave.
pub fn address_from_octets(octets: [u8; 16]) -> IpAddr {
    canonical_ip(IpAddr::V6(Ipv6Addr::from(octets)))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn hash(kind: IndicatorType, v: &str, len: usize) -> Result<(IndicatorType, String, Option<IpAddr>)> {
    if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(kind, v, "not a hex digest of the right length"));
    }
    Ok((kind, v.to_ascii_lowercase(), None))
}

/// Canonical domain: lower-case IDNA (punycode) without a trailing dot, at least two labels,
/// each label 1–63 characters of letters, digits, `-` or `_`.
pub fn domain(v: &str) -> Result<String> {
    let kind = IndicatorType::Domain;
    let v = v.trim().trim_end_matches('.');
    if v.is_empty() || v.len() > 253 * 4 {
        return Err(invalid(kind, v, "empty or too long"));
    }
    if v.parse::<IpAddr>().is_ok() {
        return Err(invalid(kind, v, "an IP address, not a domain"));
    }
    let ascii = idna::domain_to_ascii(v).map_err(|_| invalid(kind, v, "not a valid IDNA name"))?;
    if ascii.len() > 253 || !ascii.contains('.') {
        return Err(invalid(kind, v, "needs at least two labels and at most 253 characters"));
    }
    for label in ascii.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(invalid(kind, v, "bad label"));
        }
    }
    let tld = ascii.rsplit('.').next().unwrap_or_default();
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(kind, v, "numeric top-level label"));
    }
    Ok(ascii)
}

/// Canonical URL: scheme and host lower-case (IDNA host), default port dropped, empty path `/`,
/// an IPv4-mapped IPv6 host folded to IPv4. A URL without a scheme is read as `http://`. With it,
/// the host's address when the host is one.
pub fn url(v: &str) -> Result<(String, Option<IpAddr>)> {
    let kind = IndicatorType::Url;
    if v.len() > 8192 || v.chars().any(char::is_whitespace) {
        return Err(invalid(kind, v, "too long or contains whitespace"));
    }
    let with_scheme;
    let v = if v.contains("://") {
        v
    } else {
        // `host:port/path` gets `http://`; `mailto:…`, `javascript:…` and the like are not URLs
        // of infrastructure.
        let authority = v.split('/').next().unwrap_or_default();
        if authority.split_once(':').is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid(kind, v, "unsupported scheme"));
        }
        with_scheme = format!("http://{v}");
        &with_scheme
    };
    let mut u = url::Url::parse(v).map_err(|_| invalid(kind, v, "not a URL"))?;
    let address = match u.host() {
        None => return Err(invalid(kind, v, "no host")),
        Some(url::Host::Domain(d)) => {
            if !u.scheme().starts_with("http") && !["ftp", "ftps", "ws", "wss", "tcp", "udp"].contains(&u.scheme()) {
                return Err(invalid(kind, v, "unsupported scheme"));
            }
            let d = domain(d).map_err(|_| invalid(kind, v, "bad host"))?;
            u.set_host(Some(&d)).map_err(|_| invalid(kind, v, "bad host"))?;
            None
        }
        Some(url::Host::Ipv6(a)) => {
            let ip = canonical_ip(IpAddr::V6(a));
            if let IpAddr::V4(v4) = ip {
                u.set_host(Some(&v4.to_string())).map_err(|_| invalid(kind, v, "bad host"))?;
            }
            Some(ip)
        }
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
    };
    Ok((u.to_string(), address))
}

/// The host of a canonical URL, as an IP or a domain.
///
/// Read from the text rather than parsed again (enrichment asks it for every URL row): a
/// canonical URL is `scheme://[userinfo@]host[:port][/path][?query][#fragment]` as the `url`
/// crate writes it, with `@`, `/`, `?` and `#` percent-encoded in the user info, an IPv6 host in
/// brackets, and a numeric host always written as a dotted IPv4 address.
pub fn url_host(canonical_url: &str) -> Option<UrlHost<'_>> {
    let (_, rest) = canonical_url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(bracketed) = host_port.strip_prefix('[') {
        return bracketed.split_once(']')?.0.parse().ok().map(UrlHost::Ip);
    }
    let host = host_port.split_once(':').map_or(host_port, |(h, _)| h);
    if host.is_empty() {
        return None;
    }
    Some(match host.parse::<Ipv4Addr>() {
        Ok(ip) => UrlHost::Ip(IpAddr::V4(ip)),
        Err(_) => UrlHost::Domain(host),
    })
}

/// The host part of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlHost<'a> {
    Ip(IpAddr),
    Domain(&'a str),
}

/// Guesses the type of a bare, refanged value; `None` when it looks like nothing iocflow knows.
pub fn detect_type(v: &str) -> Option<IndicatorType> {
    use IndicatorType as T;
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if v.parse::<Ipv4Addr>().is_ok() {
        return Some(T::Ipv4);
    }
    if v.parse::<Ipv6Addr>().is_ok() {
        return Some(T::Ipv6);
    }
    if v.contains('/') && v.parse::<ipnet::IpNet>().is_ok() {
        return Some(T::Cidr);
    }
    if v.contains("://") {
        return Some(T::Url);
    }
    if v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match v.len() {
            32 => Some(T::Md5),
            40 => Some(T::Sha1),
            64 => Some(T::Sha256),
            _ => None,
        };
    }
    if v.len() > 2
        && v.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("as"))
        && v[2..].trim_start_matches(['n', 'N']).bytes().all(|b| b.is_ascii_digit())
    {
        return Some(T::Asn);
    }
    if v.contains('@') {
        return Some(T::Email);
    }
    if v.contains('/') {
        return Some(T::Url);
    }
    if v.contains('.') {
        return Some(T::Domain);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType as T;

    fn canon(kind: T, v: &str) -> (T, String) {
        let i = Indicator::new(kind, v).unwrap_or_else(|e| panic!("{v}: {e}"));
        (i.kind, i.value)
    }

    #[test]
    fn ips_fold_and_normalise() {
        assert_eq!(canon(T::Ipv4, "192.0.2.1"), (T::Ipv4, "192.0.2.1".into()));
        assert_eq!(canon(T::Ipv6, "::ffff:192.0.2.1"), (T::Ipv4, "192.0.2.1".into()));
        assert_eq!(canon(T::Ipv6, "2001:DB8:0:0::1"), (T::Ipv6, "2001:db8::1".into()));
        assert_eq!(canon(T::Ipv4, "192[.]0[.]2[.]1"), (T::Ipv4, "192.0.2.1".into()));
        assert!(Indicator::new(T::Ipv4, "192.0.2.256").is_err());
        assert!(Indicator::new(T::Ipv4, "010.0.2.1").is_err());
        assert_eq!(canon(T::Ipv4, "192.0.2.1:443"), (T::Ipv4, "192.0.2.1".into()));
        assert_eq!(canon(T::Ipv4, "192.0.2.1|8080"), (T::Ipv4, "192.0.2.1".into()));
        assert_eq!(canon(T::Ipv4, "[2001:db8::1]:443"), (T::Ipv6, "2001:db8::1".into()));
    }

    #[test]
    fn cidrs_are_masked() {
        assert_eq!(canon(T::Cidr, "198.51.100.77/24"), (T::Cidr, "198.51.100.0/24".into()));
        assert_eq!(canon(T::Cidr, "198.51.100.7/32"), (T::Ipv4, "198.51.100.7".into()));
        assert_eq!(canon(T::Cidr, "2001:db8::1/32"), (T::Cidr, "2001:db8::/32".into()));
        assert_eq!(canon(T::Cidr, "::ffff:198.51.100.0/120"), (T::Cidr, "198.51.100.0/24".into()));
        assert!(Indicator::new(T::Cidr, "198.51.100.0/33").is_err());
    }

    #[test]
    fn domains_are_lowercase_punycode() {
        assert_eq!(canon(T::Domain, "Example.COM."), (T::Domain, "example.com".into()));
        assert_eq!(canon(T::Domain, "bank(.)example[.]sg"), (T::Domain, "bank.example.sg".into()));
        assert_eq!(canon(T::Domain, "ตัวอย่าง.ไทย"), (T::Domain, "xn--72c1a1bt4awk9o.xn--o3cw4h".into()));
        assert!(Indicator::new(T::Domain, "localhost").is_err());
        assert!(Indicator::new(T::Domain, "192.0.2.1").is_err());
        assert!(Indicator::new(T::Domain, "bad label.com").is_err());
        assert!(Indicator::new(T::Domain, "a..b").is_err());
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(canon(T::Url, "hxxp://Login.Example[.]COM:80"), (T::Url, "http://login.example.com/".into()));
        assert_eq!(
            canon(T::Url, "HTTPS://Bank.Example.MY:443/Path?q=1"),
            (T::Url, "https://bank.example.my/Path?q=1".into())
        );
        assert_eq!(canon(T::Url, "http://[::ffff:192.0.2.9]:8080/x"), (T::Url, "http://192.0.2.9:8080/x".into()));
        assert_eq!(canon(T::Url, "http://пример.рф/"), (T::Url, "http://xn--e1afmkfd.xn--p1ai/".into()));
        assert!(Indicator::new(T::Url, "http://").is_err());
        assert!(Indicator::new(T::Url, "mailto:x@example.com").is_err());
    }

    /// The host read from the canonical text is the one the `url` crate parses from it, for
    /// user info, ports, IPv6, IDN, numeric hosts and `@`, `:` or `[` after the authority.
    #[test]
    fn url_hosts_read_from_the_text_match_the_parser() {
        let parsed = |u: &str| match url::Url::parse(u).unwrap().host().unwrap() {
            url::Host::Domain(d) => format!("domain {d}"),
            url::Host::Ipv4(a) => format!("ip {a}"),
            url::Host::Ipv6(a) => format!("ip {a}"),
        };
        let read = |u: &str| match url_host(u).unwrap() {
            UrlHost::Domain(d) => format!("domain {d}"),
            UrlHost::Ip(a) => format!("ip {a}"),
        };
        for raw in [
            "http://login.example.com",
            "https://user:p%40ss@bank.example.my:8443/a@b?c=d@e#f@g",
            "http://us@er:pa@ss@evil.example/x",
            "http://a.example?x=http://b.example/",
            "http://a.example#@b.example",
            "http://0x7f.1/",
            "http://3232235777/",
            "http://[2001:DB8::1]:8080/[x]",
            "http://[::ffff:192.0.2.9]/",
            "ftp://files.example.vn:21/a:b",
            "tcp://C2.Example.ph:4444",
            "http://пример.рф/путь",
            "hxxps://evil[.]example[.]th/login",
            "http://xn--72c1a1bt4awk9o.xn--o3cw4h/",
        ] {
            let (_, u) = canon(T::Url, raw);
            assert_eq!(read(&u), parsed(&u), "{raw} → {u}");
        }
    }

    #[test]
    fn hashes_emails_and_asns() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        assert_eq!(canon(T::Md5, md5), (T::Md5, md5.to_lowercase()));
        assert!(Indicator::new(T::Sha1, md5).is_err());
        assert!(Indicator::new(T::Sha256, "zz").is_err());
        assert_eq!(canon(T::Email, "Phish@Example[.]COM"), (T::Email, "phish@example.com".into()));
        assert!(Indicator::new(T::Email, "nobody").is_err());
        assert_eq!(canon(T::Asn, "as64500"), (T::Asn, "AS64500".into()));
        assert_eq!(canon(T::Asn, "ASN64501"), (T::Asn, "AS64501".into()));
        assert_eq!(canon(T::Asn, "64502"), (T::Asn, "AS64502".into()));
        assert!(Indicator::new(T::Asn, "AS0").is_err());
    }

    /// The address an indicator names is the one its canonical value spells, as enrichment
    /// would read it from the value.
    #[test]
    fn the_address_it_names_is_kept() {
        let address = |k, v| Indicator::new(k, v).unwrap().address.map(|a| a.to_string());
        use IndicatorType as T;
        assert_eq!(address(T::Ipv4, "192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(address(T::Ipv6, "::ffff:192.0.2.1").as_deref(), Some("192.0.2.1"), "mapped is IPv4");
        assert_eq!(address(T::Ipv6, "2001:DB8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(address(T::Ipv4, "192.0.2.1:443").as_deref(), Some("192.0.2.1"));
        assert_eq!(address(T::Cidr, "198.51.100.7/24").as_deref(), Some("198.51.100.0"), "the network");
        assert_eq!(address(T::Cidr, "2001:db8::1/128").as_deref(), Some("2001:db8::1"));
        assert_eq!(address(T::Url, "hxxp://192.0.2.9:8080/x").as_deref(), Some("192.0.2.9"));
        assert_eq!(address(T::Url, "http://[::ffff:c000:209]/").as_deref(), Some("192.0.2.9"));
        assert_eq!(address(T::Url, "http://[2001:db8::2]/").as_deref(), Some("2001:db8::2"));
        for (k, v) in [(T::Url, "http://login.example.sg/"), (T::Domain, "example.sg"), (T::Email, "a@b.example")] {
            assert_eq!(address(k, v), None, "{v}");
        }
        assert_eq!(address(T::Md5, "d41d8cd98f00b204e9800998ecf8427e"), None);
        assert_eq!(address(T::Asn, "AS64500"), None);
        for ip in ["192.0.2.1", "2001:db8::1", "::1", "0.0.0.0"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(address_from_octets(address_octets(ip)), ip, "{ip} in 16 bytes and back");
        }
        // The same address the value spells.
        for (k, v) in [(T::Ipv6, "2001:db8:0:0::7"), (T::Cidr, "10.1.2.3/8"), (T::Url, "http://[2001:db8::9]:81/")] {
            let i = Indicator::new(k, v).unwrap();
            let spelt: IpAddr = match i.kind {
                T::Url => match url_host(&i.value) {
                    Some(UrlHost::Ip(ip)) => ip,
                    other => panic!("{other:?}"),
                },
                _ => i.value.split('/').next().unwrap().parse().unwrap(),
            };
            assert_eq!(i.address, Some(spelt), "{v}");
        }
    }

    #[test]
    fn ids_follow_the_design_recipe() {
        let i = Indicator::new(T::Domain, "example.com").unwrap();
        let mut bytes = b"domain".to_vec();
        bytes.push(0);
        bytes.extend_from_slice(b"example.com");
        assert_eq!(i.id.0, xxhash_rust::xxh3::xxh3_128(&bytes));
        assert_eq!(i.id.to_hex().len(), 32);
        assert_eq!(IndicatorId::from_hex(&i.id.to_hex()), Some(i.id));
        assert_eq!(IndicatorId(0xab).to_hex(), format!("{:032x}", 0xab), "zero-padded, lower case");
        assert_eq!(serde_json::to_string(&i.id).unwrap(), format!("\"{}\"", i.id.to_hex()), "serialised as its hex");
        assert_eq!(IndicatorId::from_hex(&format!("{:032X}", i.id.0)), Some(i.id));
        for bad in ["", "ab", &"0".repeat(31), &"0".repeat(33), &format!("+{}", "0".repeat(31)), &"g".repeat(32)] {
            assert_eq!(IndicatorId::from_hex(bad), None, "{bad:?}");
        }
        // Different spellings of one indicator share the id.
        assert_eq!(Indicator::new(T::Domain, "EXAMPLE[.]com.").unwrap().id, i.id);
        // Same text, other type: another id.
        assert_ne!(IndicatorId::of(T::Url, "example.com"), i.id);
    }

    #[test]
    fn detects_types() {
        assert_eq!(detect_type("192.0.2.1"), Some(T::Ipv4));
        assert_eq!(detect_type("2001:db8::1"), Some(T::Ipv6));
        assert_eq!(detect_type("192.0.2.0/24"), Some(T::Cidr));
        assert_eq!(detect_type("http://x.example/"), Some(T::Url));
        assert_eq!(detect_type("example.com"), Some(T::Domain));
        assert_eq!(detect_type("a@example.com"), Some(T::Email));
        assert_eq!(detect_type(&"a".repeat(64)), Some(T::Sha256));
        assert_eq!(detect_type("AS64500"), Some(T::Asn));
        assert_eq!(detect_type("hello"), None);
    }
}
