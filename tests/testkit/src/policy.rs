//! The routing policy of DESIGN.md ("Route", "Revocation"), written as plainly as possible and
//! independently of iocflow's code: a model to check iocflow against, report by report.
//!
//! It keeps, per indicator, the latest report of each feed (with the sighting count and first
//! sighting), the CERTs' sightings (per CERT and kind: the count, the latest label), and per
//! CERT and indicator what was last sent. For each arriving report or sighting it says which
//! CERTs must get a record and what that record must show.
//!
//! Sightings (DESIGN.md, issue 21): a CERT sees another's sighting only if it sees some report of
//! the indicator, and then CLEAR and GREEN ones always, AMBER ones only its own, stricter ones
//! never. A CERT's own false positive (any label) stops everything but a revocation it is owed;
//! `fp_revoke_after` distinct CERTs' GREEN or CLEAR false positives revoke the indicator.
//!
//! Decay (issue 21, `decay`): a CERT's view scores `base × (1 − (t/τ)^(1/δ))`, base its highest
//! confidence (50 without), t the time since its latest report or visible sighting, on the
//! clock of the latest time that arrived. A view at or past the time its score falls to the
//! threshold is revoked and `expired`. A CERT last sent a live view gets its one expiry (timed
//! when the view expired) as soon as anything of the indicator arrives after that time, or at a
//! [`Policy::sweep`]; a later report or visible sighting revives it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Labels from least to most strict.
pub const LABELS: [&str; 6] = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED", "UNKNOWN"];

/// A CERT filter, as SQL for iocflow and as a predicate for the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    MinConfidence(u8),
    Tag(&'static str),
    DomainSeenTwice,
    GreenOrClear,
    MultiSource,
    NotInfraIn(&'static str),
    NotImplicating(&'static str),
    /// Some CERT's sighting is in the view.
    Sighted,
}

impl Filter {
    pub const MENU: [Filter; 8] = [
        Filter::MinConfidence(60),
        Filter::Tag("hot"),
        Filter::DomainSeenTwice,
        Filter::GreenOrClear,
        Filter::MultiSource,
        Filter::NotInfraIn("SG"),
        Filter::NotImplicating("US"),
        Filter::Sighted,
    ];

    pub fn sql(&self) -> String {
        match self {
            Filter::MinConfidence(c) => format!("confidence >= {c}"),
            Filter::Tag(t) => format!("array_has(tags, '{t}')"),
            Filter::DomainSeenTwice => "type = 'domain' AND sightings >= 2".into(),
            Filter::GreenOrClear => "tlp = 'GREEN' OR tlp = 'CLEAR'".into(),
            Filter::MultiSource => "array_length(sources) >= 2 OR revoked".into(),
            Filter::NotInfraIn(cc) => format!("country IS NULL OR country <> '{cc}'"),
            Filter::NotImplicating(cc) => format!("NOT array_has(countries, '{cc}')"),
            Filter::Sighted => "cardinality(sighted_by) >= 1".into(),
        }
    }

    /// SQL's WHERE semantics: NULL rejects.
    pub fn accepts(&self, v: &View) -> bool {
        match self {
            Filter::MinConfidence(c) => v.confidence.is_some_and(|x| x >= *c),
            Filter::Tag(t) => v.tags.contains(*t),
            Filter::DomainSeenTwice => v.kind == "domain" && v.sightings >= 2,
            Filter::GreenOrClear => v.tlp == "GREEN" || v.tlp == "CLEAR",
            Filter::MultiSource => v.sources.len() >= 2 || v.revoked,
            Filter::NotInfraIn(cc) => v.country.as_deref() != Some(*cc),
            Filter::NotImplicating(cc) => !v.countries.contains(*cc),
            Filter::Sighted => !v.sighted_by.is_empty(),
        }
    }
}

/// A CERT as the policy sees it.
#[derive(Clone, Debug)]
pub struct Cert {
    pub country: &'static str,
    pub regional: bool,
    /// Sharing groups its organisation is a member of.
    pub groups: BTreeSet<String>,
    pub filter: Option<Filter>,
}

/// One report, after decoding: its effective label (MISP distributions already folded in).
#[derive(Clone, Debug)]
pub struct Report {
    pub kind: &'static str,
    pub value: String,
    /// Infrastructure country (known to the test from how it built the value).
    pub infra: Option<&'static str>,
    pub feed: String,
    pub provider: String,
    pub label: &'static str,
    pub sharing_group: Option<String>,
    pub targets: Vec<&'static str>,
    pub confidence: Option<u8>,
    pub tags: Vec<String>,
    pub threat: Option<String>,
    pub revoked: bool,
    /// Report time (ms); strictly increasing over a test's reports.
    pub at: i64,
}

impl Report {
    /// A report of `feed` (by "<feed> provider") with `label` and nothing else.
    pub fn of(kind: &'static str, value: &str, infra: Option<&'static str>, feed: &str, label: &'static str) -> Report {
        Report {
            kind,
            value: value.to_string(),
            infra,
            feed: feed.to_string(),
            provider: format!("{feed} provider"),
            label,
            sharing_group: None,
            targets: Vec::new(),
            confidence: None,
            tags: Vec::new(),
            threat: None,
            revoked: false,
            at: 0,
        }
    }
}

/// A CERT's sighting of an indicator.
#[derive(Clone, Debug)]
pub struct Sighting {
    /// `sighting`, `false_positive` or `expiration`.
    pub kind: &'static str,
    /// The sighting CERT's country.
    pub by: &'static str,
    pub label: &'static str,
    pub count: u64,
    pub indicator_kind: &'static str,
    pub value: String,
    /// Arrival time (ms), on the same clock as the reports'.
    pub at: i64,
}

/// What a CERT's record must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub kind: String,
    pub value: String,
    pub country: Option<String>,
    pub countries: BTreeSet<String>,
    /// (feed, provider)
    pub sources: BTreeSet<(String, String)>,
    pub tlp: String,
    pub confidence: Option<u8>,
    pub threat: Option<String>,
    pub tags: BTreeSet<String>,
    pub sightings: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub revoked: bool,
    /// Countries whose `sighting`s the CERT may see.
    pub sighted_by: BTreeSet<String>,
    /// `false_positive` when the CERTs' false positives revoked it and no report did.
    pub revocation_reason: Option<String>,
    /// With decay: the score in hundredths, when the view expires, and whether it has.
    pub score: Option<i64>,
    pub valid_until: Option<i64>,
    pub expired: bool,
}

/// `[decay]` as the model has it.
#[derive(Clone, Debug)]
pub struct Decay {
    pub threshold: f64,
    /// Per type: lifetime in days and speed; a type not listed does not decay.
    pub curves: BTreeMap<&'static str, (f64, f64)>,
}

impl Decay {
    /// (score, valid_until) of a view of `base` last reported or sighted at `last`, at
    /// time `now`; `None` for a type that does not decay.
    fn of(&self, kind: &str, base: f64, last: i64, now: i64) -> (f64, Option<i64>) {
        let Some(&(days, speed)) = self.curves.get(kind) else {
            return (base, None);
        };
        let lifetime = days * 86_400_000.0;
        let t = (now - last).max(0) as f64;
        let score = if t >= lifetime { 0.0 } else { base * (1.0 - (t / lifetime).powf(1.0 / speed)) };
        let until = if base <= self.threshold {
            last
        } else {
            last + (lifetime * (1.0 - self.threshold / base).powf(speed)) as i64
        };
        (score, Some(until))
    }
}

#[derive(Clone, Debug)]
struct Held {
    report: Report,
    sightings: u64,
    first_seen: i64,
}

#[derive(Clone, Debug)]
struct Sent {
    feeds: BTreeSet<String>,
    confidence: Option<u8>,
    revoked: bool,
    expired: bool,
    at: i64,
}

/// The verdict on one report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `emitted`, `suppressed`, `withheld` or `unrouted`.
    pub outcome: &'static str,
    /// The withheld reason, if withheld or unrouted.
    pub reason: Option<&'static str>,
    /// (CERT index, record).
    pub records: Vec<(usize, View)>,
}

/// An indicator's sightings, by (CERT, kind): (the latest label, the summed count, the latest
/// time).
type SightingsOf = BTreeMap<(&'static str, &'static str), (&'static str, u64, i64)>;

pub struct Policy {
    pub certs: Vec<Cert>,
    pub ttl_ms: i64,
    /// `[feedback] false_positive_revoke_after`.
    pub fp_revoke_after: Option<usize>,
    held: HashMap<(&'static str, String), Vec<Held>>,
    /// Per indicator, per (CERT, kind): (latest label, summed count).
    sightings: HashMap<(&'static str, String), SightingsOf>,
    sent: HashMap<(usize, &'static str, String), Sent>,
    pub decay: Option<Decay>,
    /// The latest time that arrived.
    clock: i64,
    /// Per CERT: expiries sent, and records that revived an expired view.
    pub expiries: BTreeMap<usize, u64>,
    pub revivals: BTreeMap<usize, u64>,
}

fn rank(label: &str) -> usize {
    LABELS.iter().position(|l| *l == label).unwrap_or(LABELS.len() - 1)
}

impl Policy {
    pub fn new(certs: Vec<Cert>, ttl_ms: i64) -> Policy {
        Policy {
            certs,
            ttl_ms,
            fp_revoke_after: None,
            held: HashMap::new(),
            sightings: HashMap::new(),
            sent: HashMap::new(),
            decay: None,
            clock: i64::MIN,
            expiries: BTreeMap::new(),
            revivals: BTreeMap::new(),
        }
    }

    /// DESIGN.md's table: may `cert` see `r`?
    pub fn may_see(cert: &Cert, r: &Report) -> bool {
        if let Some(g) = &r.sharing_group
            && !cert.groups.contains(g)
        {
            return false;
        }
        let implicated = r.infra == Some(cert.country) || r.targets.contains(&cert.country);
        match r.label {
            "CLEAR" | "GREEN" => implicated || cert.regional,
            "AMBER" => implicated,
            _ => false,
        }
    }

    pub fn report(&mut self, r: Report) -> Verdict {
        let key = (r.kind, r.value.clone());
        self.clock = self.clock.max(r.at);
        let expiries = self.expire(&key);
        let mut verdict = self.report_now(r, key);
        verdict.records.splice(0..0, expiries);
        verdict
    }

    fn report_now(&mut self, r: Report, key: (&'static str, String)) -> Verdict {
        let held = self.held.entry(key.clone()).or_default();
        match held.iter_mut().find(|h| h.report.feed == r.feed) {
            Some(h) => {
                h.sightings += 1;
                h.first_seen = h.first_seen.min(r.at);
                h.report = r.clone();
            }
            None => held.push(Held { report: r.clone(), sightings: 1, first_seen: r.at }),
        }
        if let Some(reason) = label_withheld(r.label) {
            return withheld(reason);
        }
        if let Some(g) = &r.sharing_group
            && !self.certs.iter().any(|c| c.groups.contains(g))
        {
            return withheld("sharing_group");
        }
        let considered: Vec<usize> = (0..self.certs.len()).filter(|k| Self::may_see(&self.certs[*k], &r)).collect();
        self.decide(key, &considered, r.at)
    }

    /// A CERT's sighting of an indicator.
    pub fn sighting(&mut self, s: Sighting) -> Verdict {
        let key = (s.indicator_kind, s.value.clone());
        self.clock = self.clock.max(s.at);
        let expiries = self.expire(&key);
        let mut verdict = self.sighting_now(s, key);
        verdict.records.splice(0..0, expiries);
        verdict
    }

    /// The expiries due by the clock of every indicator (where the pipeline ends a batch).
    pub fn sweep(&mut self) -> Vec<(usize, View)> {
        let mut keys: Vec<(&'static str, String)> =
            self.sent.iter().filter(|(_, s)| !s.revoked).map(|((_, kind, value), _)| (*kind, value.clone())).collect();
        keys.sort();
        keys.dedup();
        keys.iter().flat_map(|key| self.expire(key)).collect()
    }

    /// The expiries owed by the clock to the CERTs last sent a live view of `key`.
    fn expire(&mut self, key: &(&'static str, String)) -> Vec<(usize, View)> {
        if self.decay.is_none() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for k in 0..self.certs.len() {
            let sent_key = (k, key.0, key.1.clone());
            let Some(last) = self.sent.get(&sent_key).filter(|s| !s.revoked).cloned() else {
                continue;
            };
            let Some(view) = self.view(k, key, self.clock) else {
                continue;
            };
            if !view.expired {
                continue;
            }
            let until = view.valid_until.expect("an expired view decays");
            let view = self.view(k, key, until).expect("the same view");
            let feeds = feeds_of(&view);
            let at = until.max(last.at + 1);
            self.sent.insert(sent_key, Sent { feeds, confidence: view.confidence, revoked: true, expired: true, at });
            *self.expiries.entry(k).or_default() += 1;
            out.push((k, view));
        }
        out
    }

    /// CERT `k`'s view of `key` at time `now`, if it sees some report of it.
    fn view(&self, k: usize, key: &(&'static str, String), now: i64) -> Option<View> {
        let cert = &self.certs[k];
        let held = self.held.get(key)?;
        let visible: Vec<&Held> = held.iter().filter(|h| Self::may_see(cert, &h.report)).collect();
        if visible.is_empty() {
            return None;
        }
        let sightings = self.sightings.get(key).cloned().unwrap_or_default();
        let seen: Vec<(&str, &str, u64, i64)> = sightings
            .iter()
            .filter(|((by, kind), (label, _, _))| *kind == "sighting" && may_see_sighting(cert, by, label))
            .map(|((by, _), (label, count, at))| (*by, *label, *count, *at))
            .collect();
        Some(view_of(key, &visible, &seen, self.fp_revoked(&sightings), self.decay.as_ref(), now))
    }

    fn fp_revoked(&self, sightings: &SightingsOf) -> bool {
        self.fp_revoke_after.is_some_and(|n| {
            sightings
                .iter()
                .filter(|((_, kind), (label, _, _))| *kind == "false_positive" && matches!(*label, "CLEAR" | "GREEN"))
                .count()
                >= n
        })
    }

    fn sighting_now(&mut self, s: Sighting, key: (&'static str, String)) -> Verdict {
        let mine = self.sightings.entry(key.clone()).or_default().entry((s.by, s.kind)).or_insert((s.label, 0, s.at));
        *mine = (s.label, mine.1 + s.count, s.at);
        if let Some(reason) = label_withheld(s.label) {
            return withheld(reason);
        }
        let considered: Vec<usize> = (0..self.certs.len())
            .filter(|k| {
                let cert = &self.certs[*k];
                self.sees_indicator(cert, &key) && may_see_sighting(cert, s.by, s.label)
            })
            .collect();
        self.decide(key, &considered, s.at)
    }

    /// Whether `cert` may see some report of the indicator.
    fn sees_indicator(&self, cert: &Cert, key: &(&'static str, String)) -> bool {
        self.held.get(key).is_some_and(|held| held.iter().any(|h| Self::may_see(cert, &h.report)))
    }

    /// The emission rule for the `considered` CERTs after something arrived at `at`.
    fn decide(&mut self, key: (&'static str, String), considered: &[usize], at: i64) -> Verdict {
        let sightings = self.sightings.get(&key).cloned().unwrap_or_default();
        let (mut records, mut accepted_by_any) = (Vec::new(), false);
        for &k in considered {
            let cert = &self.certs[k];
            let view = self.view(k, &key, self.clock).expect("a considered CERT sees a report");
            let own_fp = sightings.contains_key(&(cert.country, "false_positive"));
            let accepted = !own_fp && cert.filter.is_none_or(|f| f.accepts(&view));
            accepted_by_any |= accepted;
            let sent_key = (k, key.0, key.1.clone());
            let last = self.sent.get(&sent_key);
            let feeds = feeds_of(&view);
            let news = match last {
                None => !view.revoked,
                // An expired view is sent once.
                Some(l) if view.expired && l.revoked => false,
                Some(l) => {
                    !feeds.is_subset(&l.feeds)
                        || view.confidence > l.confidence
                        || view.revoked != l.revoked
                        || at - l.at >= self.ttl_ms
                }
            };
            let owed_revocation = view.revoked && last.is_some_and(|l| !l.revoked);
            if owed_revocation || accepted && news {
                if last.is_some_and(|l| l.expired) && !view.revoked {
                    *self.revivals.entry(k).or_default() += 1;
                }
                if view.expired {
                    *self.expiries.entry(k).or_default() += 1;
                }
                let at = last.map_or(at, |l| at.max(l.at + 1));
                let (confidence, revoked, expired) = (view.confidence, view.revoked, view.expired);
                self.sent.insert(sent_key, Sent { feeds, confidence, revoked, expired, at });
                records.push((k, view));
            }
        }
        let (outcome, reason) = if !records.is_empty() {
            ("emitted", None)
        } else if accepted_by_any {
            ("suppressed", None)
        } else {
            ("unrouted", Some("no_recipient"))
        };
        Verdict { outcome, reason, records }
    }
}

fn withheld(reason: &'static str) -> Verdict {
    Verdict { outcome: "withheld", reason: Some(reason), records: vec![] }
}

/// The withheld reason of a label no CERT may see.
fn label_withheld(label: &str) -> Option<&'static str> {
    match label {
        "RED" => Some("tlp_red"),
        "AMBER+STRICT" => Some("tlp_amber_strict"),
        "CLEAR" | "GREEN" | "AMBER" => None,
        _ => Some("unknown_label"),
    }
}

/// May `cert`, which sees some report of the indicator, see a sighting of it by `by`?
fn may_see_sighting(cert: &Cert, by: &str, label: &str) -> bool {
    match label {
        "CLEAR" | "GREEN" => true,
        "AMBER" => cert.country == by,
        _ => false,
    }
}

/// What the emission rule compares of a view: its feeds and the CERTs whose sightings it shows.
fn feeds_of(view: &View) -> BTreeSet<String> {
    let mut feeds: BTreeSet<String> = view.sources.iter().map(|(f, _)| f.clone()).collect();
    feeds.extend(view.sighted_by.iter().map(|by| format!("sighted by {by}")));
    feeds
}

/// The view at time `now` of a CERT that may see the `visible` reports and the `seen` sightings
/// (by, label, count, latest time).
fn view_of(
    key: &(&'static str, String),
    visible: &[&Held],
    seen: &[(&str, &str, u64, i64)],
    fp_revoked: bool,
    decay: Option<&Decay>,
    now: i64,
) -> View {
    let infra = visible[0].report.infra;
    let mut countries: BTreeSet<String> = infra.iter().map(|c| c.to_string()).collect();
    for h in visible {
        countries.extend(h.report.targets.iter().map(|c| c.to_string()));
    }
    let latest_threat = visible.iter().filter(|h| h.report.threat.is_some()).max_by_key(|h| h.report.at);
    let labels = visible.iter().map(|h| h.report.label).chain(seen.iter().map(|(_, label, _, _)| *label));
    let revoked_by_reports = visible.iter().all(|h| h.report.revoked);
    let confidence = visible.iter().filter_map(|h| h.report.confidence).max();
    let last = visible.iter().map(|h| h.report.at).chain(seen.iter().map(|s| s.3)).max().unwrap();
    let fresh = decay.map(|d| d.of(key.0, f64::from(confidence.unwrap_or(50)), last, now));
    let expired = fresh.is_some_and(|(_, until)| until.is_some_and(|u| now >= u));
    View {
        kind: key.0.to_string(),
        value: key.1.clone(),
        country: infra.map(str::to_string),
        countries,
        sources: visible.iter().map(|h| (h.report.feed.clone(), h.report.provider.clone())).collect(),
        tlp: labels.max_by_key(|l| rank(l)).unwrap().to_string(),
        confidence,
        threat: latest_threat.and_then(|h| h.report.threat.clone()),
        tags: visible.iter().flat_map(|h| h.report.tags.iter().cloned()).collect(),
        sightings: visible.iter().map(|h| h.sightings).sum::<u64>() + seen.iter().map(|s| s.2).sum::<u64>(),
        first_seen: visible.iter().map(|h| h.first_seen).min().unwrap(),
        last_seen: visible.iter().map(|h| h.report.at).max().unwrap(),
        revoked: revoked_by_reports || fp_revoked || expired,
        sighted_by: seen.iter().map(|s| s.0.to_string()).collect(),
        revocation_reason: (fp_revoked && !revoked_by_reports).then(|| "false_positive".to_string()),
        score: fresh.map(|(score, _)| (score * 100.0).round() as i64),
        valid_until: fresh.and_then(|(_, until)| until),
        expired,
    }
}

/// Reads a delivered record (canonical JSON or STIX 2.1 with `x_iocflow_*`) into a [`View`].
pub fn view_from_record(v: &serde_json::Value) -> View {
    let stix = v["type"] == "indicator";
    let field = |name: &str| if stix { &v[format!("x_iocflow_{name}")] } else { &v[name] };
    let strings = |x: &serde_json::Value| -> BTreeSet<String> {
        x.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
    };
    let time =
        |x: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(x.as_str().unwrap()).unwrap().timestamp_millis();
    let opt_str = |x: &serde_json::Value| x.as_str().map(str::to_string);
    View {
        kind: field("type").as_str().unwrap().to_string(),
        value: field("value").as_str().unwrap().to_string(),
        country: opt_str(field("country")),
        countries: strings(field("countries")),
        sources: field("sources")
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["feed"].as_str().unwrap().to_string(), s["provider"].as_str().unwrap().to_string()))
            .collect(),
        tlp: field("tlp").as_str().unwrap().to_string(),
        confidence: v["confidence"].as_u64().map(|c| c as u8),
        threat: opt_str(field("threat")),
        tags: strings(if stix { &v["labels"] } else { &v["tags"] }),
        sightings: field("sightings").as_u64().unwrap(),
        first_seen: time(if stix { &v["valid_from"] } else { &v["first_seen"] }),
        last_seen: time(field("last_seen")),
        revoked: v["revoked"].as_bool().unwrap(),
        sighted_by: strings(field("sighted_by")),
        revocation_reason: opt_str(field("revocation_reason")),
        score: field("score").as_f64().map(|s| (s * 100.0).round() as i64),
        valid_until: v["valid_until"].as_str().map(|_| time(&v["valid_until"])),
        expired: field("expired").as_bool().unwrap_or(false),
    }
}

/// Groups records by (CERT index, indicator value) in order.
pub fn by_cert_and_value(records: impl IntoIterator<Item = (usize, View)>) -> BTreeMap<(usize, String), Vec<View>> {
    let mut m: BTreeMap<(usize, String), Vec<View>> = BTreeMap::new();
    for (k, v) in records {
        m.entry((k, format!("{}:{}", v.kind, v.value))).or_default().push(v);
    }
    m
}

/// Masks what the model cannot know on a broker: report times are Kafka timestamps.
pub fn untimed(mut v: View) -> View {
    v.first_seen = 0;
    v.last_seen = 0;
    v.valid_until = None;
    v.score = None;
    v
}

/// Asserts that the records delivered equal the model's, per (CERT, indicator) in order, naming
/// the first sequences that differ.
pub fn assert_views_match(got: &[(usize, View)], want: Vec<(usize, View)>, certs: &[&str], seed: u64) {
    let got = by_cert_and_value(got.iter().cloned());
    let want = by_cert_and_value(want);
    let keys: BTreeSet<_> = got.keys().chain(want.keys()).collect();
    let wrong: Vec<_> = keys.into_iter().filter(|k| got.get(k) != want.get(k)).collect();
    for key in wrong.iter().take(3) {
        eprintln!("CERT {} {}:\n  got  {:?}\n  want {:?}", certs[key.0], key.1, got.get(key), want.get(key));
    }
    assert!(wrong.is_empty(), "{} (CERT, indicator) sequences differ (IOCFLOW_SEED={seed})", wrong.len());
}
