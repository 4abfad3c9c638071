//! Country-code top-level domains → ISO 3166-1 alpha-2.
//!
//! Two-letter ASCII TLDs are country codes with a few exceptions (`uk` is GB, `tp` the former
//! code of Timor-Leste; `eu`, `su` and `ac` name no ISO country). Internationalised ccTLDs are
//! looked up by their punycode form, since canonical domains are punycode.

use iocflow_model::Country;

/// Internationalised ccTLDs (punycode) and their countries: the four of ASEAN members first.
const IDN_CCTLDS: &[(&str, &str)] = &[
    ("xn--o3cw4h", "TH"),             // .ไทย
    ("xn--yfro4i67o", "SG"),          // .新加坡
    ("xn--clchc0ea0b2g2a9gcd", "SG"), // .சிங்கப்பூர்
    ("xn--mgbx4cd0ab", "MY"),         // .مليسيا
    ("xn--fiqs8s", "CN"),             // .中国
    ("xn--fiqz9s", "CN"),             // .中國
    ("xn--j6w193g", "HK"),            // .香港
    ("xn--kprw13d", "TW"),            // .台湾
    ("xn--kpry57d", "TW"),            // .台灣
    ("xn--3e0b707e", "KR"),           // .한국
    ("xn--h2brj9c", "IN"),            // .भारत
    ("xn--p1ai", "RU"),               // .рф
    ("xn--mgbaam7a8h", "AE"),         // .امارات
    ("xn--mgberp4a5d4ar", "SA"),      // .السعودية
    ("xn--wgbh1c", "EG"),             // .مصر
    ("xn--90ais", "BY"),              // .бел
    ("xn--j1amh", "UA"),              // .укр
];

/// The country of a top-level label (lower-case ASCII, punycode for IDNs).
pub fn country_of_tld(tld: &str) -> Option<Country> {
    if tld.len() == 2 && tld.bytes().all(|b| b.is_ascii_lowercase()) {
        return match tld {
            "uk" => Country::parse("GB"),
            "tp" => Country::parse("TL"),
            "eu" | "su" | "ac" => None,
            _ => Country::parse(tld),
        };
    }
    IDN_CCTLDS.iter().find(|(t, _)| *t == tld).and_then(|(_, cc)| Country::parse(cc))
}

/// The country of a canonical domain name from its ccTLD.
pub fn country_of_domain(domain: &str) -> Option<Country> {
    country_of_tld(domain.rsplit('.').next()?)
}

/// The sector vocabulary of DESIGN.md ("Indicator model").
pub const SECTORS: [&str; 13] = [
    "government",
    "security-emergency",
    "energy",
    "water",
    "finance",
    "healthcare",
    "aviation",
    "maritime",
    "land-transport",
    "infocomm",
    "media",
    "education",
    "other",
];

/// Second-level labels under a ccTLD that name a sector, as the ASEAN registries use them
/// (`gov.sg`, `go.th`, `go.id`, `mil.ph`, `edu.my`, `ac.th`, `sch.id` …).
const SECOND_LEVEL_SECTORS: &[(&str, &str)] = &[
    ("gov", "government"),
    ("go", "government"),
    ("govt", "government"),
    ("gouv", "government"),
    ("gob", "government"),
    ("mil", "government"),
    ("edu", "education"),
    ("ac", "education"),
    ("sch", "education"),
];

/// The sector a domain's second-level label under its ccTLD suggests (`agency.gov.sg` →
/// government), when the Public Suffix List knows that label as a public suffix under the ccTLD:
/// so a registrable name like `go.example` or a private suffix does not count. A hint only: the
/// constituency registry, when it knows the domain, decides.
pub fn sector_hint(domain: &str) -> Option<&'static str> {
    let mut labels = domain.rsplit('.');
    let tld = labels.next()?;
    country_of_tld(tld)?;
    let second = labels.next()?;
    let sector = SECOND_LEVEL_SECTORS.iter().find(|(l, _)| *l == second).map(|(_, s)| *s)?;
    let suffix = psl::suffix(domain.as_bytes())?;
    let listed = suffix.is_known() && suffix.typ() == Some(psl::Type::Icann);
    // The PSL's suffix for `a.gov.sg` is `gov.sg`: the second level is a public suffix.
    (listed && suffix.as_bytes().len() == second.len() + 1 + tld.len()).then_some(sector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(domain: &str) -> Option<&'static str> {
        country_of_domain(domain).map(|c| c.as_str())
    }

    #[test]
    fn ascii_and_idn_cctlds() {
        assert_eq!(code("bank.example.sg"), Some("SG"));
        assert_eq!(code("gov.uk"), Some("GB"));
        assert_eq!(code("old.tp"), Some("TL"));
        assert_eq!(code("example.com"), None);
        assert_eq!(code("agency.europa.eu"), None);
        assert_eq!(code("xn--72c1a1bt4awk9o.xn--o3cw4h"), Some("TH"));
        assert_eq!(code("x.xn--mgbx4cd0ab"), Some("MY"));
        assert_eq!(code("x.xn--clchc0ea0b2g2a9gcd"), Some("SG"));
    }

    #[test]
    fn sector_hints_from_public_second_level_labels() {
        assert_eq!(sector_hint("agency.gov.sg"), Some("government"));
        assert_eq!(sector_hint("portal.go.th"), Some("government"));
        assert_eq!(sector_hint("mail.go.id"), Some("government"));
        assert_eq!(sector_hint("army.mil.ph"), Some("government"));
        assert_eq!(sector_hint("uni.edu.my"), Some("education"));
        assert_eq!(sector_hint("uni.ac.th"), Some("education"));
        // Not a hint: generic TLDs, registrable names that happen to be "gov", a bare suffix.
        assert_eq!(sector_hint("x.gov.example.com"), None);
        assert_eq!(sector_hint("gov.example.sg"), None);
        assert_eq!(sector_hint("bank.com.sg"), None);
        assert_eq!(sector_hint("x.gov"), None);
    }
}
