//! Free text (format `text`): advisories and mail bodies, indicators extracted by regex.
//!
//! Defanged forms are read (`hxxp`, `[.]`, `(.)`, `{.}`, `[dot]`, `[:]`, `[@]`). URLs and e-mail
//! addresses are taken first and masked, so the host inside a URL is not reported again as a
//! bare domain (that would turn one phishing page into a whole site on a blocklist). Version
//! numbers (`v1.2.3.4`, `version 10.0.0.1`, five-part numbers) are not addresses, and a name
//! whose last label is a common file extension (`invoice.zip`, `setup.exe`, `notes.md`) is a
//! file, not a domain, unless it is defanged (`evil[.]zip`): defanging is the author's statement
//! that it is an indicator. A record may name each indicator once.

use super::{Decoded, FeedDefaults, Limits, report_of};
use crate::IndicatorType;
use crate::indicator::refang;
use regex::Regex;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextOptions {
    /// Last labels that make a name a file rather than a domain (unless defanged).
    #[serde(default = "default_file_extensions")]
    pub file_extensions: Vec<String>,
    /// Threat of every indicator found.
    pub threat: Option<String>,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions { file_extensions: default_file_extensions(), threat: None }
    }
}

pub fn default_file_extensions() -> Vec<String> {
    [
        "zip", "mov", "md", "py", "sh", "exe", "dll", "bat", "cmd", "ps1", "js", "vbs", "doc", "docx", "docm", "xls",
        "xlsx", "xlsm", "ppt", "pptx", "pdf", "txt", "rtf", "png", "jpg", "jpeg", "gif", "rar", "7z", "tar", "gz",
        "iso", "img", "lnk", "hta", "jar", "apk", "msi", "bin", "dat", "log", "csv", "json", "xml", "html", "htm",
        "php", "asp", "aspx", "jsp", "cfg", "conf", "ini", "tmp", "sys", "elf", "so", "scr", "one",
    ]
    .map(str::to_string)
    .to_vec()
}

const DOT: &str = r"(?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\])";

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:hxxps?|https?|ftps?)(?:://|\[://\]|\[:\]//)[^\s<>"'{}|\\^`]+"#).expect("valid regex")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)\b[a-z0-9._%+-]+(?:@|\[@\]|\[at\])[a-z0-9-]+(?:{DOT}[a-z0-9-]+)+")).expect("valid regex")
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"\b(?:\d{{1,3}}{DOT}){{3}}\d{{1,3}}(?:/\d{{1,2}})?")).expect("valid regex"));
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:/\d{1,3})?").expect("valid regex"));
static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b(?:[a-z0-9_](?:[a-z0-9_-]{{0,61}}[a-z0-9])?{DOT})+(?:xn--[a-z0-9-]{{1,59}}|[a-z]{{2,63}})\b"
    ))
    .expect("valid regex")
});
static HASH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[a-fA-F0-9]{32,64}\b").expect("valid regex"));
static ASN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bASN?\d{1,10}\b").expect("valid regex"));
static VERSION_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:\bv|\bversion\s*|\bver\.?\s*|\brelease\s*)$").expect("valid regex"));

fn defanged(s: &str) -> bool {
    ["[.]", "(.)", "{.}", "[dot]", "hxxp", "[:]", "[@]", "[at]"].iter().any(|d| s.to_ascii_lowercase().contains(d))
}

/// Blanks a span so later patterns do not see it again (ASCII spaces keep offsets and UTF-8).
fn mask(work: &mut [u8], start: usize, end: usize) {
    work[start..end].fill(b' ');
}

pub(super) fn decode(o: &TextOptions, text: &str, limits: &Limits, defaults: &FeedDefaults) -> Decoded {
    let mut out = Decoded::default();
    let mut found: Vec<(IndicatorType, String)> = Vec::new();
    let mut work = text.as_bytes().to_vec();
    let view = |w: &[u8]| String::from_utf8(w.to_vec()).expect("masking keeps UTF-8");

    for m in URL.find_iter(text) {
        let s = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'', '"']);
        found.push((IndicatorType::Url, refang(&s.replace("[://]", "://"))));
        mask(&mut work, m.start(), m.end());
    }
    let current = view(&work);
    for m in EMAIL.find_iter(&current) {
        found.push((IndicatorType::Email, refang(m.as_str())));
        mask(&mut work, m.start(), m.end());
    }
    let current = view(&work);
    for m in IPV4.find_iter(&current) {
        // Only the few characters before the match can make it a version number.
        let mut from = m.start().saturating_sub(16);
        while !current.is_char_boundary(from) {
            from -= 1;
        }
        let before = &current[from..m.start()];
        let after = &current[m.end()..];
        let longer = after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit());
        if VERSION_BEFORE.is_match(before) || longer || before.ends_with('.') {
            mask(&mut work, m.start(), m.end());
            continue;
        }
        let v = refang(m.as_str());
        let kind = if v.contains('/') { IndicatorType::Cidr } else { IndicatorType::Ipv4 };
        found.push((kind, v));
        mask(&mut work, m.start(), m.end());
    }
    let current = view(&work);
    for m in IPV6.find_iter(&current) {
        let v = m.as_str();
        let addr = v.split('/').next().unwrap_or_default();
        if addr.matches(':').count() >= 2 && addr.parse::<std::net::Ipv6Addr>().is_ok() {
            let kind = if v.contains('/') { IndicatorType::Cidr } else { IndicatorType::Ipv6 };
            found.push((kind, v.to_string()));
            mask(&mut work, m.start(), m.end());
        }
    }
    let current = view(&work);
    for m in DOMAIN.find_iter(&current) {
        let raw = m.as_str();
        let tld = refang(raw).rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
        let is_file = o.file_extensions.iter().any(|e| e.eq_ignore_ascii_case(&tld));
        if (is_file && !defanged(raw)) || raw.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            continue;
        }
        found.push((IndicatorType::Domain, refang(raw)));
        mask(&mut work, m.start(), m.end());
    }
    let current = view(&work);
    for m in HASH.find_iter(&current) {
        let kind = match m.as_str().len() {
            32 => IndicatorType::Md5,
            40 => IndicatorType::Sha1,
            64 => IndicatorType::Sha256,
            _ => continue,
        };
        found.push((kind, m.as_str().to_string()));
    }
    for m in ASN.find_iter(&current) {
        found.push((IndicatorType::Asn, m.as_str().to_string()));
    }

    let mut seen = HashSet::new();
    for (kind, value) in found {
        // Candidates that do not canonicalise were never indicators (a time, a serial number):
        // free text is not a feed format that promises every match is one.
        let Ok(mut r) = report_of(kind, &value, defaults) else { continue };
        if !seen.insert(r.indicator.id) {
            continue;
        }
        r.threat = o.threat.clone();
        out.reports.push(r);
        if out.reports.len() > limits.max_indicators {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, Reason, decode};
    use super::*;
    use crate::Tlp;

    fn values(text: &str) -> Vec<(String, String)> {
        let defaults = FeedDefaults { tlp: Tlp::Amber, confidence: None };
        let d = decode(&Decoder::Text(TextOptions::default()), text.as_bytes(), &Limits::default(), &defaults);
        d.reports.iter().map(|r| (r.indicator.kind.as_str().to_string(), r.indicator.value.clone())).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn an_advisory() {
        let text = "ADVISORY 2024-05: A phishing campaign against banks in the region uses \
            hxxps://secure-login[.]example-bank[.]sg/verify?id=7 and mails from alerts[@]example-bank[.]sg. \
            The payload invoice.zip (MD5 d41d8cd98f00b204e9800998ecf8427e) calls back to 198.51.100[.]23 and \
            2001:db8::beef, and to c2.example(.)net. Block 203.0.113.0/24 and AS64500. \
            Affected: Exchange version 15.2.1118.7, agent v1.2.3.4; see readme.md and evil[.]zip. \
            The meeting is at 10:00:00 in room 4.";
        assert_eq!(
            values(text),
            pairs(&[
                ("url", "https://secure-login.example-bank.sg/verify?id=7"),
                ("email", "alerts@example-bank.sg"),
                ("ipv4", "198.51.100.23"),
                ("cidr", "203.0.113.0/24"),
                ("ipv6", "2001:db8::beef"),
                ("domain", "c2.example.net"),
                ("domain", "evil.zip"),
                ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
                ("asn", "AS64500"),
            ])
        );
    }

    #[test]
    fn each_indicator_once_and_urls_keep_their_host() {
        assert_eq!(
            values("see http://a.example.com/x, http://a.example.com/x and a.example.com."),
            pairs(&[("url", "http://a.example.com/x"), ("domain", "a.example.com")])
        );
    }

    #[test]
    fn text_without_indicators_is_a_dead_letter() {
        let defaults = FeedDefaults { tlp: Tlp::Amber, confidence: None };
        let d = decode(
            &Decoder::Text(TextOptions::default()),
            b"Nothing to see here, version 1.2.3.",
            &Limits::default(),
            &defaults,
        );
        assert_eq!(d.rejection.unwrap().reason, Reason::Empty);
    }
}
