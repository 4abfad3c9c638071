//! MISP warninglists: lists of things that look like indicators but are benign (private address
//! space, documentation ranges, public resolvers, the hash of an empty file …), read in the
//! format MISP publishes them:
//!
//! ```json
//! {"name": "RFC 1918 private addresses", "version": 1, "description": "…", "type": "cidr",
//!  "list": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}
//! ```
//!
//! Types: `cidr` (addresses and networks, by longest prefix), `hostname` (a name and its
//! subdomains), `string` (exact, case-insensitive), `substring` (anywhere in the value,
//! case-insensitive) and `regex`. A hit marks the indicator benign with the list's name; the
//! configuration decides whether benign indicators are dropped or only tagged.

use crate::address::Target;
use crate::ip_prefix::{IpPrefixMap, parse_prefix};
use crate::{Error, Result};
use aho_corasick::AhoCorasick;
use foldhash::{HashMap, HashSet};
use regex::RegexSet;
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize)]
struct ListFile {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    list: Vec<String>,
}

/// Every loaded warninglist, indexed by type.
#[derive(Default)]
pub struct Warninglists {
    names: Vec<String>,
    cidrs: IpPrefixMap<u32>,
    hostnames: HashMap<String, u32>,
    /// The last label of every hostname entry: a name whose last label is not among them has no
    /// suffix in `hostnames`, and is passed over with one lookup instead of one per label.
    hostname_tlds: HashSet<String>,
    strings: HashMap<String, u32>,
    /// The lengths of the `strings` entries (a hash is 32, 40 or 64 characters): a value of
    /// another length is not hashed at all.
    string_lengths: HashSet<usize>,
    substrings: Option<(AhoCorasick, Vec<u32>)>,
    regexes: Vec<(RegexSet, u32)>,
    entries: usize,
}

impl std::fmt::Debug for Warninglists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warninglists").field("lists", &self.names).field("entries", &self.entries).finish()
    }
}

impl Warninglists {
    /// Loads lists given as (source name, JSON text).
    pub fn from_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Warninglists> {
        let mut w = Warninglists::default();
        let mut substrings: Vec<(String, u32)> = Vec::new();
        for (source, text) in sources {
            let bad = |why: String| Error::Table { table: source.to_string(), line: 0, why };
            let file: ListFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
            let id = w.names.len() as u32;
            w.entries += file.list.len();
            match file.kind.as_str() {
                "cidr" => {
                    for entry in &file.list {
                        let net =
                            parse_prefix(entry).ok_or_else(|| bad(format!("{entry:?} is not an address or CIDR")))?;
                        w.cidrs.insert(net, id);
                    }
                }
                "hostname" => {
                    for entry in &file.list {
                        let host = entry.trim().trim_start_matches("*.").trim_matches('.').to_ascii_lowercase();
                        w.hostname_tlds.insert(last_label(&host).to_string());
                        w.hostnames.entry(host).or_insert(id);
                    }
                }
                "string" => {
                    for entry in &file.list {
                        let entry = entry.to_lowercase();
                        w.string_lengths.insert(entry.len());
                        w.strings.entry(entry).or_insert(id);
                    }
                }
                "substring" => substrings.extend(file.list.iter().map(|s| (s.to_lowercase(), id))),
                "regex" => {
                    let set = RegexSet::new(&file.list).map_err(|e| bad(e.to_string()))?;
                    w.regexes.push((set, id));
                }
                other => return Err(bad(format!("type {other:?} is not cidr, hostname, string, substring or regex"))),
            }
            w.names.push(file.name);
        }
        if !substrings.is_empty() {
            let automaton = AhoCorasick::new(substrings.iter().map(|(s, _)| s)).map_err(|e| Error::Table {
                table: "substring lists".into(),
                line: 0,
                why: e.to_string(),
            })?;
            w.substrings = Some((automaton, substrings.into_iter().map(|(_, id)| id).collect()));
        }
        Ok(w)
    }

    /// Lists held.
    pub fn lists(&self) -> usize {
        self.names.len()
    }

    /// Entries over all lists.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The name of a list that says this canonical indicator is benign.
    pub fn benign(&self, target: &Target<'_>) -> Option<&str> {
        self.hit(target).map(|id| self.names[id as usize].as_str())
    }

    fn hit(&self, target: &Target<'_>) -> Option<u32> {
        let by_ip = target.ip.and_then(|ip| self.by_ip(ip));
        by_ip.or_else(|| self.by_hostname(target.host()?)).or_else(|| self.by_text(target.value))
    }

    fn by_ip(&self, ip: IpAddr) -> Option<u32> {
        self.cidrs.longest_match(ip)
    }

    /// A hostname list entry matches the name and every name under it.
    fn by_hostname(&self, host: &str) -> Option<u32> {
        if !self.hostname_tlds.contains(last_label(host)) {
            return None;
        }
        let mut rest = host;
        loop {
            if let Some(id) = self.hostnames.get(rest) {
                return Some(*id);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    fn by_text(&self, value: &str) -> Option<u32> {
        // Lower-casing keeps an ASCII value's length; another value is looked up whatever its length.
        let by_string = !self.strings.is_empty() && (!value.is_ascii() || self.string_lengths.contains(&value.len()));
        if by_string || self.substrings.is_some() {
            // Canonical values are mostly lower-case already: copy only when they are not.
            let lower = match value.bytes().any(|b| b.is_ascii_uppercase()) || !value.is_ascii() {
                true => std::borrow::Cow::Owned(value.to_lowercase()),
                false => std::borrow::Cow::Borrowed(value),
            };
            if let Some(id) = self.strings.get(lower.as_ref()) {
                return Some(*id);
            }
            if let Some((automaton, ids)) = &self.substrings
                && let Some(m) = automaton.find(lower.as_ref())
            {
                return Some(ids[m.pattern().as_usize()]);
            }
        }
        self.regexes.iter().find(|(set, _)| set.is_match(value)).map(|(_, id)| *id)
    }
}

/// The last label of a host name (all of it if it has one label).
fn last_label(host: &str) -> &str {
    host.rsplit_once('.').map_or(host, |(_, last)| last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iocflow_model::IndicatorType as T;

    fn benign<'w>(w: &'w Warninglists, kind: T, value: &str) -> Option<&'w str> {
        w.benign(&Target::of(kind, value))
    }

    fn lists() -> Warninglists {
        let sources = [
            (
                "private.json",
                r#"{"name":"Private","type":"cidr","list":["10.0.0.0/8","192.168.0.0/16","fd00::/8","198.51.100.7"]}"#,
            ),
            ("private-24.json", r#"{"name":"Lab /24","type":"cidr","list":["10.1.2.0/24"]}"#),
            ("hosts.json", r#"{"name":"Special names","type":"hostname","list":["example.com","*.test","localhost"]}"#),
            ("strings.json", r#"{"name":"Empty hashes","type":"string","list":["D41D8CD98F00B204E9800998ECF8427E"]}"#),
            ("sub.json", r#"{"name":"Sinkholes","type":"substring","list":["sinkhole"]}"#),
            ("re.json", r#"{"name":"Update URLs","type":"regex","list":["^https?://[a-z0-9.]*windowsupdate\\.com/"]}"#),
        ];
        Warninglists::from_sources(sources).unwrap()
    }

    #[test]
    fn every_list_type() {
        let w = lists();
        assert_eq!((w.lists(), w.entries()), (6, 11));
        assert_eq!(benign(&w, T::Ipv4, "10.9.9.9"), Some("Private"));
        assert_eq!(benign(&w, T::Ipv4, "10.1.2.3"), Some("Lab /24"), "longest prefix");
        assert_eq!(benign(&w, T::Ipv4, "198.51.100.7"), Some("Private"));
        assert_eq!(benign(&w, T::Ipv4, "198.51.100.8"), None);
        assert_eq!(benign(&w, T::Ipv6, "fd12::1"), Some("Private"));
        assert_eq!(benign(&w, T::Cidr, "192.168.4.0/24"), Some("Private"));
        assert_eq!(benign(&w, T::Url, "http://192.168.1.1/admin"), Some("Private"));
        assert_eq!(benign(&w, T::Domain, "www.example.com"), Some("Special names"), "subdomains too");
        assert_eq!(benign(&w, T::Domain, "example.com"), Some("Special names"));
        assert_eq!(benign(&w, T::Domain, "notexample.com"), None);
        assert_eq!(benign(&w, T::Domain, "shop.test"), Some("Special names"));
        assert_eq!(benign(&w, T::Email, "root@localhost"), Some("Special names"));
        assert_eq!(benign(&w, T::Md5, "d41d8cd98f00b204e9800998ecf8427e"), Some("Empty hashes"));
        assert_eq!(benign(&w, T::Md5, "D41D8CD98F00B204E9800998ECF8427E"), Some("Empty hashes"), "any case");
        assert_eq!(benign(&w, T::Md5, "d41d8cd98f00b204e9800998ecf8427"), None);
        assert_eq!(benign(&w, T::Domain, "example.org"), None, "no entry ends in .org");
        assert_eq!(benign(&w, T::Domain, "sinkhole.abuse.example.org"), Some("Sinkholes"));
        assert_eq!(benign(&w, T::Url, "http://download.windowsupdate.com/x.cab"), Some("Update URLs"));
        assert_eq!(benign(&w, T::Url, "http://windowsupdate.com.evil.example/x"), None);
        assert_eq!(benign(&w, T::Ipv4, "8.8.8.8"), None);
    }

    #[test]
    fn bad_lists_are_named() {
        let e = Warninglists::from_sources([("x.json", r#"{"name":"X","type":"asn","list":[]}"#)]).unwrap_err();
        assert!(e.to_string().contains("x.json") && e.to_string().contains("asn"), "{e}");
        let e = Warninglists::from_sources([("y.json", r#"{"name":"Y","type":"cidr","list":["10.0.0.0/40"]}"#)])
            .unwrap_err();
        assert!(e.to_string().contains("y.json"), "{e}");
        let e = Warninglists::from_sources([("z.json", r#"{"name":"Z","type":"regex","list":["("]}"#)]).unwrap_err();
        assert!(e.to_string().contains("z.json"), "{e}");
    }
}
