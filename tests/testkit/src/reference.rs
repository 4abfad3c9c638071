//! The reference model: what every CERT topic and the withheld topic must hold, computed from
//! DESIGN.md's rules in the simplest way, independently of iocflow's routing code.

use super::{ASEAN, Deployment, indicator_id, read_to_end};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub struct Ind {
    pub kind: &'static str,
    /// As the feed writes it (sometimes defanged or in upper case).
    pub raw: String,
    pub canonical: String,
    pub country: Option<&'static str>,
}

/// One report as produced, with what the reference needs to know about it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub ind: Ind,
    pub feed: &'static str,
    /// The report's effective label: the stricter of its own and the feed default.
    pub label: &'static str,
    pub targets: Vec<&'static str>,
    /// A revocation (the reference models revocations of indicators no CERT received only).
    pub revoked: bool,
    /// A MISP sharing-group report (held back).
    pub sharing_group: bool,
    pub json: String,
}

pub const RANK: [&str; 6] = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED", "UNKNOWN"];

pub fn stricter(a: &'static str, b: &'static str) -> &'static str {
    let r = |l| RANK.iter().position(|x| *x == l).unwrap();
    if r(a) >= r(b) { a } else { b }
}

/// A CERT's sighting as produced (kind `sighting`, canonical JSON), with what the reference
/// needs to know about it.
#[derive(Clone, Debug)]
pub struct SentSighting {
    pub ind: Ind,
    /// The sighting CERT's country.
    pub by: &'static str,
    /// Its label (fixed per CERT and indicator, as a CERT restates what it said).
    pub label: &'static str,
    pub json: String,
}

/// One report of an indicator as the reference saw it: (feed, effective label, targets).
pub type ReportTrace = (&'static str, &'static str, Vec<&'static str>);

/// What the CERT topics and the withheld topic must hold, by DESIGN.md's rules.
#[derive(Debug, Default)]
pub struct Expected {
    /// (cert, id) → the feeds visible to that CERT, in arrival order of their first report.
    pub cert: BTreeMap<(String, String), Vec<&'static str>>,
    /// (cert, id) → the CERTs whose sightings that CERT sees, in arrival order (sightings come
    /// after every report: [`add_sightings`]).
    pub sighted: BTreeMap<(String, String), Vec<&'static str>>,
    /// (cert, id) → the strictest visible label.
    pub cert_tlp: BTreeMap<(String, String), &'static str>,
    /// (cert, id) → infrastructure country and the visible reports' target countries.
    pub cert_countries: BTreeMap<(String, String), BTreeSet<&'static str>>,
    /// (id, reason, feed) → count.
    pub withheld: BTreeMap<(String, &'static str, &'static str), usize>,
    pub values: BTreeMap<String, (&'static str, String, Option<&'static str>)>,
    /// Each report's outcome: emitted, suppressed, withheld or unrouted → count.
    pub outcomes: BTreeMap<&'static str, usize>,
    /// id → the reports of it, in order (feed, label, targets), to explain a failure.
    pub history: BTreeMap<String, Vec<ReportTrace>>,
}

pub fn reference(sent: &[Sent]) -> Expected {
    let mut e = Expected::default();
    for s in sent {
        let id = indicator_id(s.ind.kind, &s.ind.canonical);
        e.values.insert(id.clone(), (s.ind.kind, s.ind.canonical.clone(), s.ind.country));
        e.history.entry(id.clone()).or_default().push((s.feed, s.label, s.targets.clone()));
        let reason = match s.label {
            "RED" => Some("tlp_red"),
            "AMBER+STRICT" => Some("tlp_amber_strict"),
            "UNKNOWN" => Some("unknown_label"),
            _ if s.sharing_group => Some("sharing_group"),
            _ => None,
        };
        if let Some(reason) = reason {
            *e.withheld.entry((id, reason, s.feed)).or_default() += 1;
            *e.outcomes.entry("withheld").or_default() += 1;
            continue;
        }
        // No CERT is regional here: CLEAR, GREEN and AMBER all go to implicated CERTs only.
        let mut implicated: BTreeSet<&str> = s.targets.iter().copied().collect();
        implicated.extend(s.ind.country);
        let recipients: Vec<&str> = implicated.into_iter().filter(|c| ASEAN.contains(c)).collect();
        if recipients.is_empty() {
            *e.withheld.entry((id, "no_recipient", s.feed)).or_default() += 1;
            *e.outcomes.entry("unrouted").or_default() += 1;
            continue;
        }
        let mut emitted = false;
        for cc in recipients {
            let key = (cc.to_string(), id.clone());
            if s.revoked {
                assert!(!e.cert.contains_key(&key), "the reference does not model revoking what was sent");
                continue;
            }
            let feeds = e.cert.entry(key.clone()).or_default();
            if !feeds.contains(&s.feed) {
                feeds.push(s.feed);
                emitted = true;
            }
            let countries = e.cert_countries.entry(key.clone()).or_default();
            countries.extend(s.ind.country);
            countries.extend(s.targets.iter().copied());
            let tlp = e.cert_tlp.entry(key).or_insert(s.label);
            *tlp = stricter(tlp, s.label);
        }
        *e.outcomes.entry(if emitted { "emitted" } else { "suppressed" }).or_default() += 1;
    }
    e
}

/// Adds sightings sent after every report of `expected` was routed: a CERT that sees the
/// indicator gets one more record per CERT whose sighting it sees — CLEAR and GREEN ones, and its
/// own AMBER ones (DESIGN.md, issue 21); a RED one is withheld, one no CERT sees is unrouted.
pub fn add_sightings(e: &mut Expected, sightings: &[SentSighting]) {
    for s in sightings {
        let id = indicator_id(s.ind.kind, &s.ind.canonical);
        let feed: &'static str = Box::leak(format!("sighting:{}", s.by.to_lowercase()).into_boxed_str());
        if s.label == "RED" {
            *e.withheld.entry((id, "tlp_red", feed)).or_default() += 1;
            *e.outcomes.entry("withheld").or_default() += 1;
            continue;
        }
        let seeing: Vec<String> = e.cert.keys().filter(|(_, i)| *i == id).map(|(cc, _)| cc.clone()).collect();
        let considered: Vec<String> =
            seeing.into_iter().filter(|cc| s.label != "AMBER" || cc.as_str() == s.by).collect();
        if considered.is_empty() {
            *e.withheld.entry((id, "no_recipient", feed)).or_default() += 1;
            *e.outcomes.entry("unrouted").or_default() += 1;
            continue;
        }
        let mut emitted = false;
        for cc in considered {
            let key = (cc, id.clone());
            let sighted = e.sighted.entry(key.clone()).or_default();
            if !sighted.contains(&s.by) {
                sighted.push(s.by);
                emitted = true;
            }
            let tlp = e.cert_tlp.get_mut(&key).expect("a CERT that sees the indicator has a label");
            *tlp = stricter(tlp, s.label);
        }
        *e.outcomes.entry(if emitted { "emitted" } else { "suppressed" }).or_default() += 1;
    }
}

/// Asserts that every CERT topic holds exactly what `expected` says: the indicators, one record
/// per new source (each showing the sources so far), and the last record's content.
pub fn assert_cert_topics(d: &Deployment, expected: &Expected) {
    for (cc, topic) in &d.certs {
        let got = read_to_end(topic);
        let mut per_key: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for r in &got {
            let v = r.json();
            assert_eq!(r.key.as_deref(), v["id"].as_str(), "key is the indicator id");
            per_key.entry(r.key.clone().unwrap()).or_default().push(v);
        }
        let want: BTreeMap<&String, &Vec<&str>> =
            expected.cert.iter().filter(|((c, _), _)| c == cc).map(|((_, id), feeds)| (id, feeds)).collect();
        assert_eq!(
            per_key.keys().collect::<BTreeSet<_>>(),
            want.keys().copied().collect::<BTreeSet<_>>(),
            "indicators on {topic}"
        );
        let no_sightings = Vec::new();
        for (id, records) in &per_key {
            let feeds = want[id];
            let sighted = expected.sighted.get(&(cc.clone(), id.clone())).unwrap_or(&no_sightings);
            // One record when the view first appears, one more per new source, each showing the
            // sources seen so far (the order of two feeds' first reports is not fixed); then one
            // more per CERT whose sighting it sees, each showing those so far.
            assert_eq!(records.len(), feeds.len() + sighted.len(), "{cc} {id}: {records:?}");
            let names = |r: &serde_json::Value, field: &str, inner: Option<&str>| -> BTreeSet<String> {
                let items = r[field].as_array().map(Vec::as_slice).unwrap_or_default();
                items.iter().map(|s| inner.map_or(s, |k| &s[k]).as_str().unwrap().to_string()).collect()
            };
            let source_sets: Vec<BTreeSet<String>> =
                records.iter().map(|r| names(r, "sources", Some("feed"))).collect();
            let sighted_sets: Vec<BTreeSet<String>> = records.iter().map(|r| names(r, "sighted_by", None)).collect();
            for (n, (set, by)) in source_sets.iter().zip(&sighted_sets).enumerate() {
                assert_eq!(set.len(), (n + 1).min(feeds.len()), "{cc} {id}: {source_sets:?}");
                assert!(n == 0 || source_sets[n - 1].is_subset(set), "{cc} {id}: {source_sets:?}");
                assert_eq!(by.len(), (n + 1).saturating_sub(feeds.len()), "{cc} {id}: {sighted_sets:?}");
                assert!(n == 0 || sighted_sets[n - 1].is_subset(by), "{cc} {id}: {sighted_sets:?}");
            }
            let last_sighted: BTreeSet<String> = sighted.iter().map(|c| c.to_string()).collect();
            assert_eq!(sighted_sets.last(), Some(&last_sighted), "{cc} {id}");
            let last = records.last().unwrap();
            let countries: BTreeSet<&str> =
                last["countries"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            assert_eq!(
                countries,
                expected.cert_countries[&(cc.clone(), id.clone())],
                "{cc} {id}: records {records:?}, reports {:?}",
                expected.history[id]
            );
            let (kind, value, country) = &expected.values[id];
            assert_eq!(last["type"], *kind);
            assert_eq!(last["value"], value.as_str());
            assert_eq!(last["country"].as_str(), *country);
            assert_eq!(last["schema_version"], 1);
            assert_eq!(last["tlp"], expected.cert_tlp[&(cc.clone(), id.clone())]);
            let sources: BTreeSet<&str> =
                last["sources"].as_array().unwrap().iter().map(|s| s["feed"].as_str().unwrap()).collect();
            assert_eq!(sources, feeds.iter().copied().collect(), "{cc} {id}");
            assert_eq!(last["revoked"], false);
        }
    }
}

/// Asserts that the withheld topic holds exactly the expected (id, reason, feed) records.
pub fn assert_withheld(d: &Deployment, expected: &Expected) {
    let mut withheld: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in read_to_end(&d.withheld_topic()) {
        let v = r.json();
        let key = (
            v["id"].as_str().unwrap().to_string(),
            v["reason"].as_str().unwrap().to_string(),
            v["feed"].as_str().unwrap().to_string(),
        );
        *withheld.entry(key).or_default() += 1;
    }
    let want: BTreeMap<(String, String, String), usize> = expected
        .withheld
        .iter()
        .map(|((id, reason, feed), n)| ((id.clone(), reason.to_string(), feed.to_string()), *n))
        .collect();
    assert_eq!(withheld, want);
}

/// Per CERT topic and key: how many records there are (at-least-once may send a view twice).
pub fn record_counts(d: &Deployment) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (cc, topic) in &d.certs {
        for r in read_to_end(topic) {
            *out.entry((cc.clone(), r.key.unwrap())).or_default() += 1;
        }
    }
    out
}

/// At-least-once: every record the reference model expects is there at least as often as it
/// has sources (none lost), and no other; returns how many are extra (sent twice).
pub fn assert_none_lost(d: &Deployment, expected: &Expected) -> usize {
    let got = record_counts(d);
    let mut duplicates = 0;
    for ((cc, id), feeds) in &expected.cert {
        let n = got.get(&(cc.clone(), id.clone())).copied().unwrap_or(0);
        assert!(n >= feeds.len(), "{cc} {id}: {n} records, {} sources: lost", feeds.len());
        duplicates += n - feeds.len();
    }
    assert_eq!(got.len(), expected.cert.len(), "records no CERT should have");
    duplicates
}
