//! Routing under the Traffic Light Protocol: which CERT sees which report, and when a CERT gets
//! a record (DESIGN.md, "Route").
//!
//! Every decision is made on a CERT's **view** of an indicator: the contributions that CERT may
//! see. A contribution may be seen by a CERT when its label allows it and the CERT is a
//! recipient for it:
//!
//! | label                         | may be seen by                                              |
//! |-------------------------------|-------------------------------------------------------------|
//! | CLEAR (WHITE), GREEN          | a CERT of an implicated country, or a regional subscriber   |
//! | AMBER                         | a CERT of an implicated country only                        |
//! | AMBER+STRICT, RED, unknown    | no CERT                                                     |
//!
//! MISP sharing-group reports (distribution 4) are seen only by CERTs whose organisation is a
//! member of the group (`[[sharing_groups]]`), and never beyond what the label allows.
//!
//! A contribution implicates the indicator's infrastructure country and its own feed-given
//! target countries — never another contribution's, so a hidden report cannot route anything.
//! A CERT is considered only when the arriving report is in its view: a hidden report can neither
//! re-send nor change what a CERT sees. Within that, a CERT gets a record when its filter accepts
//! its view and the view is new, gains a source, gains confidence, or was last sent longer ago
//! than the TTL; a revocation goes to every CERT that received the indicator, whatever its
//! filter.
//!
//! A CERT filter is evaluated per batch (`cert_view.rs`), so for a CERT with a filter
//! [`Router::apply`] only proposes a [`Candidate`], and [`Router::settle`] decides once the
//! batch's filter results are in, in arrival order.

use crate::policy::decay::{Decay, Freshness};
use crate::state::{Contribution, Emission, Emitted, Entry, Sources};
use iocflow_enrichers::tables::Enrichment;
use iocflow_model::sighting::SightingKind;
use iocflow_model::time::Millis;
use iocflow_model::{Country, IndicatorId, IndicatorType, Name, Tlp};
use iocflow_sinks::cert_record::{CertRecord, SCHEMA_VERSION, Source};
use iocflow_sinks::withheld::WithheldReason;
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};

/// A CERT as routing sees it.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub country: Country,
    pub regional: bool,
    /// The MISP sharing groups (lower-case uuids) the CERT's organisation is a member of.
    pub sharing_groups: HashSet<String>,
    /// The CERT has a filter: its records wait for the batch's filter evaluation.
    pub filtered: bool,
}

/// CERTs as a set of their positions in the configuration: bit `k` is CERT `k` (the
/// configuration allows at most [`MAX_CERTS`]).
pub type CertSet = u64;

/// The most CERTs one deployment routes to (a [`CertSet`] holds them in one word).
pub const MAX_CERTS: usize = CertSet::BITS as usize;

/// Who may see what, worked out once per deployment so that a contribution's audience is a few
/// table lookups rather than a comparison with every CERT: this runs for every contribution of
/// every arriving report.
#[derive(Debug, Clone)]
struct Audiences {
    /// By country ([`Country::index`]), the CERT of that country.
    by_country: Vec<CertSet>,
    regional: CertSet,
    /// By MISP sharing group (lower-case uuid), the CERTs whose organisation is a member.
    by_group: HashMap<String, CertSet>,
}

impl Audiences {
    fn of(recipients: &[Recipient]) -> Audiences {
        assert!(recipients.len() <= MAX_CERTS, "the configuration allows at most {MAX_CERTS} CERTs");
        let mut by_country = vec![0; 26 * 26];
        let mut regional = 0;
        let mut by_group: HashMap<String, CertSet> = HashMap::new();
        for (k, r) in recipients.iter().enumerate() {
            by_country[r.country.index()] |= 1 << k;
            if r.regional {
                regional |= 1 << k;
            }
            for group in &r.sharing_groups {
                *by_group.entry(group.clone()).or_default() |= 1 << k;
            }
        }
        Audiences { by_country, regional, by_group }
    }

    fn implicating(&self, country: Country) -> CertSet {
        self.by_country[country.index()]
    }
}

/// The indicator a report is about, with its enrichment.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub id: IndicatorId,
    pub kind: IndicatorType,
    pub value: &'a str,
    /// What the tables say about it; its organisation's country is implicated like its
    /// infrastructure's, and a warninglist hit makes it benign.
    pub enrichment: Enrichment<'a>,
}

impl<'a> Subject<'a> {
    /// An indicator with no enrichment.
    pub fn bare(id: IndicatorId, kind: IndicatorType, value: &'a str) -> Subject<'a> {
        Subject { id, kind, value, enrichment: Enrichment::default() }
    }

    /// The countries the indicator itself implicates.
    pub fn places(&self) -> [Option<Country>; 2] {
        [self.enrichment.country, self.enrichment.org_country]
    }
}

/// A record for one CERT: the record, and the STIX `created` (first emission to this CERT) and
/// `modified` (this emission) times.
#[derive(Debug, Clone)]
pub struct Emit {
    pub cert: usize,
    pub record: CertRecord,
    pub created: Millis,
    pub modified: Millis,
    /// The CERT's last record of the indicator was its expiry, and this one is not revoked.
    pub revived: bool,
}

/// A record a filtered CERT would get, waiting for its filter's verdict.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The row of the batch that proposed it.
    pub row: usize,
    pub id: IndicatorId,
    pub summary: Emission,
    pub record: CertRecord,
    /// The CERT called the indicator a false positive: whatever its filter says, it gets only a
    /// revocation it is owed.
    pub own_false_positive: bool,
    /// The CERT's view expired before the row arrived: an expiry, sent if the CERT's last record
    /// (settled in arrival order) was live, whatever its filter says; not the row's doing.
    pub expiry: bool,
}

/// What became of one arriving report, so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fate {
    /// No CERT may see it, for this reason.
    pub hidden: Option<WithheldReason>,
    /// Some CERT may see it and its filter (if any) accepts the view.
    pub accepted: bool,
    /// Some CERT got a record.
    pub emitted: bool,
}

impl Fate {
    /// The report's one outcome once every CERT has decided.
    pub fn outcome(&self) -> Outcome {
        match self.hidden {
            Some(reason) => Outcome::Withheld(reason),
            None if self.emitted => Outcome::Emitted,
            None if self.accepted => Outcome::Suppressed,
            None => Outcome::Withheld(WithheldReason::NoRecipient),
        }
    }
}

/// The one outcome of an arriving report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Some CERT got a record.
    Emitted,
    /// Some CERT may see and accepts it, but no CERT's view changed enough to send it again.
    Suppressed,
    /// No CERT may see it (or every CERT that may see it filters it out: `no_recipient`).
    Withheld(WithheldReason),
}

/// The routing policy of one deployment.
#[derive(Debug, Clone)]
pub struct Router {
    recipients: Vec<Recipient>,
    audiences: Audiences,
    ttl_ms: Millis,
    /// Benign indicators (warninglists) go to no CERT; otherwise they are tagged.
    drop_benign: bool,
    /// `[feedback] false_positive_revoke_after`.
    false_positive_revoke_after: Option<u32>,
    /// `[decay]`.
    decay: Option<Decay>,
}

impl Router {
    /// The policy for `recipients` (at most [`MAX_CERTS`]), in configuration order.
    pub fn new(recipients: Vec<Recipient>, ttl_ms: Millis, drop_benign: bool) -> Router {
        Router {
            audiences: Audiences::of(&recipients),
            recipients,
            ttl_ms,
            drop_benign,
            false_positive_revoke_after: None,
            decay: None,
        }
    }

    /// This policy, with views that decay and expire.
    pub fn decaying(self, decay: Option<Decay>) -> Router {
        Router { decay, ..self }
    }

    /// Whether views decay at all (`[decay]`).
    pub fn decays_any(&self) -> bool {
        self.decay.is_some()
    }

    /// The earliest any view of `entry` (of type `kind`) can expire, if it decays.
    pub fn earliest_expiry(&self, kind: IndicatorType, entry: &Entry) -> Option<Millis> {
        self.decay.as_ref()?.earliest_expiry(kind, &entry.contributions)
    }

    /// Whether indicators of type `kind` decay.
    pub fn decays(&self, kind: IndicatorType) -> bool {
        self.decay.as_ref().is_some_and(|d| d.curve(kind).is_some())
    }

    /// The freshness of the view at `sources` at record time `now`, if views decay.
    fn freshness(&self, kind: IndicatorType, of: &[Contribution], sources: Sources, now: Millis) -> Option<Freshness> {
        self.decay.as_ref().map(|d| d.freshness(kind, of, sources, now))
    }

    /// This policy, revoking an indicator for every CERT once `after` distinct CERTs reported it
    /// a false positive under GREEN or CLEAR.
    pub fn revoking_false_positives(self, after: Option<u32>) -> Router {
        Router { false_positive_revoke_after: after, ..self }
    }

    /// How many CERTs it routes to.
    pub fn certs(&self) -> usize {
        self.recipients.len()
    }

    /// The CERTs that may see contribution `c` of an indicator implicating the countries
    /// `places` (its infrastructure's, its constituent organisation's).
    fn audience(&self, c: &Contribution, places: [Option<Country>; 2]) -> CertSet {
        let label = match c.tlp {
            Tlp::Clear | Tlp::Green => self.audiences.regional,
            Tlp::Amber => 0,
            Tlp::AmberStrict | Tlp::Red | Tlp::Unknown => return 0,
        };
        let implicated = self.implicated(c, places);
        let members = match &c.sharing_group {
            Some(group) => self.members_of(group),
            None => CertSet::MAX,
        };
        (implicated | label) & members
    }

    /// Who may see each of an entry's contributions, and what its sightings decide, in one pass
    /// per arriving report (not per CERT): a feed's report is seen by [`Router::audience`]; a
    /// CERT's sighting by its own rule — CLEAR and GREEN reach every CERT that may see some
    /// report of the indicator, AMBER only the sighting CERT (if it may), anything stricter none.
    fn reach(&self, contributions: &[Contribution], places: [Option<Country>; 2]) -> Reach {
        let mut reach = Reach {
            audiences: contributions
                .iter()
                .map(|c| if c.sighting.is_some() { 0 } else { self.audience(c, places) })
                .collect(),
            shown: Sources::default(),
            refused: 0,
            false_positive: false,
        };
        let seeing = reach.audiences.iter().fold(0, |all, a| all | a);
        let mut false_positives = 0;
        for (i, c) in contributions.iter().enumerate() {
            let Some((kind, by)) = c.sighting else {
                reach.shown = reach.shown.with(i);
                continue;
            };
            reach.audiences[i] = seeing
                & match c.tlp {
                    Tlp::Clear | Tlp::Green => CertSet::MAX,
                    Tlp::Amber => self.audiences.implicating(by),
                    Tlp::AmberStrict | Tlp::Red | Tlp::Unknown => 0,
                };
            match kind {
                SightingKind::Seen => reach.shown = reach.shown.with(i),
                SightingKind::FalsePositive => {
                    reach.refused |= self.audiences.implicating(by);
                    false_positives += usize::from(matches!(c.tlp, Tlp::Clear | Tlp::Green));
                }
                SightingKind::Expiration => {}
            }
        }
        reach.false_positive = self.false_positive_revoke_after.is_some_and(|after| false_positives >= after as usize);
        reach
    }

    /// The CERTs of the countries contribution `c` implicates: the indicator's `places` and the
    /// feed's targets.
    fn implicated(&self, c: &Contribution, places: [Option<Country>; 2]) -> CertSet {
        places
            .into_iter()
            .flatten()
            .chain(c.target_countries.iter().copied())
            .fold(0, |set, country| set | self.audiences.implicating(country))
    }

    /// The CERTs whose organisation is a member of a MISP sharing group.
    fn members_of(&self, group: &str) -> CertSet {
        self.audiences.by_group.get(group).copied().unwrap_or(0)
    }

    /// Why no CERT may see contribution `c`, if none may by its label or sharing group.
    pub fn withholds(&self, c: &Contribution) -> Option<WithheldReason> {
        match c.tlp {
            Tlp::AmberStrict => Some(WithheldReason::TlpAmberStrict),
            Tlp::Red => Some(WithheldReason::TlpRed),
            Tlp::Unknown => Some(WithheldReason::UnknownLabel),
            Tlp::Clear | Tlp::Green | Tlp::Amber => match &c.sharing_group {
                Some(g) if self.members_of(g) == 0 => Some(WithheldReason::SharingGroup),
                _ => None,
            },
        }
    }

    /// Merges the report `new` (row `row` of its batch, reported at `reported_at` when its
    /// partition's clock was `clock`) into `entry` and decides for every CERT without a filter;
    /// CERTs with one get a [`Candidate`] in `candidates[cert]`.
    pub fn apply(
        &self,
        entry: &mut Entry,
        subject: Subject<'_>,
        new: Contribution,
        (row, reported_at, clock): (usize, Millis, Millis),
        emits: &mut Vec<Emit>,
        candidates: &mut [Vec<Candidate>],
    ) -> Fate {
        let benign = (self.drop_benign && subject.enrichment.benign.is_some()).then_some(WithheldReason::Benign);
        let hidden = self.withholds(&new).or(benign);
        let arriving = entry.merge(new, reported_at);
        let mut fate = Fate { hidden, ..Fate::default() };
        if hidden.is_some() {
            return fate;
        }
        let places = subject.places();
        // Only the CERTs that may see the arriving report are considered; each contribution's
        // audience is worked out once, and a CERT's view is the contributions it is in.
        let reach = self.reach(&entry.contributions, places);
        let (considered, false_positive) = (reach.audiences[arriving], reach.false_positive);
        for k in (0..self.recipients.len()).filter(|k| considered & 1 << k != 0) {
            let cert = &self.recipients[k];
            let sources = reach.view(k);
            let view: SmallVec<[&Contribution; 4]> = sources.places().map(|i| &entry.contributions[i]).collect();
            let fresh = self.freshness(subject.kind, &entry.contributions, sources, clock);
            let summary = Summary::of(&entry.contributions, sources, reported_at, false_positive, fresh);
            // A CERT that called the indicator a false positive gets nothing more of it but a
            // revocation it is owed (a filtered CERT's still waits its turn among its candidates).
            let own_false_positive = reach.refused & 1 << k != 0;
            if cert.filtered {
                let record = record(&subject, &view, false_positive, fresh);
                candidates[k].push(Candidate {
                    row,
                    id: subject.id,
                    summary: summary.to_emission(cert.country),
                    record,
                    own_false_positive,
                    expiry: false,
                });
                continue;
            }
            fate.accepted |= !own_false_positive;
            if let Some(times) = self.decide(entry.emitted.get(cert.country), &summary, !own_false_positive) {
                self.send(
                    &mut entry.emitted,
                    k,
                    times,
                    summary.to_emission(cert.country),
                    record(&subject, &view, false_positive, fresh),
                    emits,
                );
                fate.emitted = true;
            }
        }
        fate
    }

    /// Sends every CERT that was last sent a live view of `entry` and whose view has expired by
    /// record time `clock` its one expiry: a revocation with `expired: true`, timed when the
    /// view expired, so it says the same whenever it is found. Returns when the next of the
    /// live views expires, if one will.
    ///
    /// Before row `row` of a batch merges (`Some(row)`), a filtered CERT's expiry joins its
    /// candidates, settled in arrival order after the records the batch's earlier rows proposed.
    pub fn expire(
        &self,
        entry: &mut Entry,
        subject: &Subject<'_>,
        clock: Millis,
        row: Option<usize>,
        emits: &mut Vec<Emit>,
        candidates: &mut [Vec<Candidate>],
    ) -> Option<Millis> {
        let decay = self.decay.as_ref().filter(|d| d.curve(subject.kind).is_some())?;
        // Most entries a batch touches hold no live view and wait for no filter: nothing to work out.
        let waiting = row.is_some() && self.recipients.iter().any(|r| r.filtered);
        if !waiting && entry.emitted.iter().all(|(_, e)| e.revoked) {
            return None;
        }
        let reach = self.reach(&entry.contributions, subject.places());
        let mut next: Option<Millis> = None;
        for (k, cert) in self.recipients.iter().enumerate() {
            let live = entry.emitted.get(cert.country).is_some_and(|e| !e.revoked);
            // A filtered CERT's record may still be waiting among the batch's candidates.
            let waiting = row.is_some() && cert.filtered;
            let sources = reach.view(k);
            if !(live || waiting) || sources == Sources::default() {
                continue;
            }
            let fresh = decay.freshness(subject.kind, &entry.contributions, sources, clock);
            let at = fresh.valid_until.expect("the type decays");
            if !fresh.expired {
                next = Some(next.map_or(at, |n| n.min(at)));
                continue;
            }
            // The view as it expired: what the expiry says, whenever it is found.
            let expired = decay.freshness(subject.kind, &entry.contributions, sources, at);
            let summary = Summary::of(&entry.contributions, sources, at, reach.false_positive, Some(expired));
            let view: SmallVec<[&Contribution; 4]> = sources.places().map(|i| &entry.contributions[i]).collect();
            let record = record(subject, &view, reach.false_positive, Some(expired));
            match row {
                Some(row) if cert.filtered => candidates[k].push(Candidate {
                    row,
                    id: subject.id,
                    summary: summary.to_emission(cert.country),
                    record,
                    own_false_positive: false,
                    expiry: true,
                }),
                _ => {
                    if let Some(times) = self.decide(entry.emitted.get(cert.country), &summary, false) {
                        self.send(&mut entry.emitted, k, times, summary.to_emission(cert.country), record, emits);
                    }
                }
            }
        }
        next
    }

    /// CERT `k`'s view of `entry` at record time `now`, with the reason for every contribution
    /// it does or does not see, for `iocflow explain`.
    pub fn explain<'e>(&self, entry: &'e Entry, subject: &Subject<'_>, k: usize, now: Millis) -> ViewExplained<'e> {
        let places = subject.places();
        let cert = &self.recipients[k];
        let reach = self.reach(&entry.contributions, places);
        let visibility: Vec<Visibility> = entry
            .contributions
            .iter()
            .zip(&reach.audiences)
            .map(|(c, audience)| {
                let label = match self.withholds(c) {
                    Some(
                        label
                        @ (WithheldReason::TlpRed | WithheldReason::TlpAmberStrict | WithheldReason::UnknownLabel),
                    ) => Some(label),
                    _ => None,
                };
                if let Some((kind, by)) = c.sighting {
                    return match (kind, audience & 1 << k != 0, label) {
                        (SightingKind::Seen, true, _) => Visibility::Seen { implicated: false },
                        (_, true, _) => {
                            Visibility::Sighting("a false positive or an expiration counts, and is not shown")
                        }
                        (_, false, Some(label)) => Visibility::Label(label),
                        (_, false, None) if c.tlp == Tlp::Amber && by != cert.country => {
                            Visibility::Sighting("another CERT's AMBER sighting counts in its own view only")
                        }
                        (_, false, None) => Visibility::Sighting("this CERT sees no report of the indicator"),
                    };
                }
                if audience & 1 << k != 0 {
                    return Visibility::Seen { implicated: self.implicated(c, places) & 1 << k != 0 };
                }
                match (label, &c.sharing_group) {
                    (Some(label), _) => Visibility::Label(label),
                    (_, Some(group)) if self.members_of(group) & 1 << k == 0 => {
                        Visibility::SharingGroup(group.to_string())
                    }
                    _ => {
                        let mut places: Vec<Country> =
                            places.into_iter().flatten().chain(c.target_countries.iter().copied()).collect();
                        places.sort();
                        places.dedup();
                        Visibility::NotImplicated { places }
                    }
                }
            })
            .collect();
        let sources = reach.view(k);
        let view: Vec<&Contribution> = sources.places().map(|i| &entry.contributions[i]).collect();
        let false_positive = reach.false_positive;
        let fresh = self.freshness(subject.kind, &entry.contributions, sources, now);
        let summary = Summary::of(&entry.contributions, sources, now, false_positive, fresh);
        let last = entry.emitted.get(cert.country);
        let news = if view.is_empty() { None } else { self.news(last, &summary) };
        ViewExplained {
            visibility,
            benign_dropped: self.drop_benign && subject.enrichment.benign.is_some(),
            record: (!view.is_empty()).then(|| record(subject, &view, false_positive, fresh)),
            last,
            owed_revocation: !view.is_empty() && owed_revocation(last, &summary),
            revoked: !view.is_empty() && summary.revoked,
            news,
        }
    }

    /// Decides a filtered CERT's candidate once its filter has `accepted` it or not, updating the
    /// row's `fate`. Candidates of one CERT must be settled in arrival order.
    pub fn settle(
        &self,
        entry: &mut Entry,
        cert: usize,
        c: Candidate,
        accepted: bool,
        fate: &mut Fate,
        emits: &mut Vec<Emit>,
    ) {
        let accepted = accepted && !c.own_false_positive && !c.expiry;
        let last = entry.emitted.get(self.recipients[cert].country);
        let times = self.decide(last, &Summary::of_emission(&c.summary, &entry.contributions), accepted);
        if let Some(times) = times {
            self.send(&mut entry.emitted, cert, times, c.summary, c.record, emits);
            // An expiry is the time's doing, not the row's.
            fate.emitted |= !c.expiry;
        }
        fate.accepted |= accepted;
    }

    /// Sends CERT `k` a record of `summary`'s view at the STIX times the emission rule gave, and
    /// remembers it as what the CERT was last sent.
    fn send(
        &self,
        emitted: &mut Emitted,
        k: usize,
        (created, modified): (Millis, Millis),
        summary: Emission,
        record: CertRecord,
        emits: &mut Vec<Emit>,
    ) {
        let revived = emitted.get(summary.country).is_some_and(|last| last.expired) && !summary.revoked;
        emitted.set(Emission { first_at: created, at: modified, ..summary });
        emits.push(Emit { cert: k, record, created, modified, revived });
    }

    /// Why a CERT last sent `last` would find its view `now` news, if it would.
    fn news<'s>(&self, last: Option<&Emission>, now: &Summary<'s>) -> Option<News<'s>> {
        let Some(last) = last else {
            return (!now.revoked).then_some(News::First);
        };
        // An expiry is sent once: nothing of an expired view is news to a CERT whose last record
        // was revoked already (the expiry itself, or a revocation).
        if now.expired && last.revoked {
            return None;
        }
        if let Some(place) = now.sources.first_new(last.sources) {
            Some(News::NewSource(&now.of[place].feed))
        } else if now.confidence > last.confidence {
            Some(News::MoreConfidence)
        } else if now.revoked != last.revoked {
            Some(if now.revoked { News::Revoked } else { News::Reinstated })
        } else if now.at.saturating_sub(last.at) >= self.ttl_ms {
            Some(News::TtlPassed)
        } else {
            None
        }
    }

    /// The emission rule: does a CERT, last sent `last`, get a record of its view `now`? If so,
    /// the STIX `created` and `modified` times of that record.
    fn decide(&self, last: Option<&Emission>, now: &Summary<'_>, accepted: bool) -> Option<(Millis, Millis)> {
        if !(owed_revocation(last, now) || accepted && self.news(last, now).is_some()) {
            return None;
        }
        // `at` never goes back, so STIX `modified` increases with every emission.
        Some(match last {
            None => (now.at, now.at),
            Some(last) => (last.first_at, now.at.max(last.at + 1)),
        })
    }
}

/// A revocation is news only to a CERT that received the indicator, and owed to it whatever its
/// filter says now.
fn owed_revocation(last: Option<&Emission>, now: &Summary<'_>) -> bool {
    now.revoked && last.is_some_and(|l| !l.revoked)
}

/// Why a view is news to a CERT (the emission rule's reasons to send it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News<'a> {
    /// The CERT was never sent the indicator.
    First,
    /// A feed the CERT was not sent before.
    NewSource(&'a Name),
    MoreConfidence,
    Revoked,
    /// Revoked when last sent, reported again since.
    Reinstated,
    /// Last sent longer ago than the TTL.
    TtlPassed,
}

impl News<'_> {
    /// In words, for `iocflow explain`.
    pub fn describe(&self) -> String {
        match self {
            News::First => "never sent before".into(),
            News::NewSource(feed) => format!("a new source: {feed}"),
            News::MoreConfidence => "higher confidence than last sent".into(),
            News::Revoked => "revoked since last sent".into(),
            News::Reinstated => "reported again since its revocation".into(),
            News::TtlPassed => "last sent longer ago than the dedupe TTL".into(),
        }
    }
}

/// Why a contribution is or is not in a CERT's view (`iocflow explain`): the decision is
/// [`Router::audience`]'s, this only names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// In the view: the CERT's country is among those the contribution implicates, or the label
    /// (CLEAR, GREEN) reaches the CERT as a regional subscriber.
    Seen { implicated: bool },
    /// AMBER+STRICT, RED or an unknown label: no CERT (the withheld reason that names it).
    Label(WithheldReason),
    /// MISP distribution 4 to a group the CERT's organisation is not a member of.
    SharingGroup(String),
    /// The CERT's country is not among those the contribution implicates, and the label does not
    /// reach regional subscribers (AMBER) or the CERT is not one.
    NotImplicated { places: Vec<Country> },
    /// A CERT's sighting that is not in the view, and why.
    Sighting(&'static str),
}

/// One CERT's view of an indicator as the policy sees it now, and the reasons (`iocflow
/// explain`): built by the same functions that route.
#[derive(Debug, Clone)]
pub struct ViewExplained<'e> {
    /// Per contribution of the entry, in order.
    pub visibility: Vec<Visibility>,
    /// The deployment drops benign indicators and a warninglist calls this one benign: no
    /// report of it is routed.
    pub benign_dropped: bool,
    /// The record of the CERT's view now (what a filter is evaluated on), if the view is not empty.
    pub record: Option<CertRecord>,
    /// What the CERT was last sent.
    pub last: Option<&'e Emission>,
    /// Whether the view is news at record time `now` (the emission rule without the filter), why,
    /// and whether it is a revocation owed whatever the filter says.
    pub news: Option<News<'e>>,
    pub owed_revocation: bool,
    /// The view is revoked in every contribution.
    pub revoked: bool,
}

/// Who may see each contribution of an entry, and what the CERTs' sightings of it decide
/// ([`Router::reach`]).
struct Reach {
    /// Per contribution, the CERTs that may see it.
    audiences: SmallVec<[CertSet; 4]>,
    /// The contributions a record shows: reports and sightings; false positives and expirations
    /// count, and are not shown.
    shown: Sources,
    /// The CERTs that called the indicator a false positive, under any label.
    refused: CertSet,
    /// Enough CERTs called it a false positive under GREEN or CLEAR to revoke it for everyone
    /// (`[feedback]`).
    false_positive: bool,
}

impl Reach {
    /// CERT `k`'s view: the shown contributions it may see.
    fn view(&self, k: usize) -> Sources {
        self.audiences
            .iter()
            .enumerate()
            .filter(|(i, a)| **a & 1 << k != 0 && self.shown.contains(*i))
            .fold(Sources::default(), |s, (i, _)| s.with(i))
    }
}

/// A CERT's view as the emission rule compares it with the last emission: which of the entry's
/// contributions are in it, and what they say together.
struct Summary<'a> {
    sources: Sources,
    /// The entry's contributions (to name a source).
    of: &'a [Contribution],
    confidence: Option<u8>,
    /// Revoked by its reports, by the CERTs' false positives, or by its expiry.
    revoked: bool,
    expired: bool,
    at: Millis,
}

impl<'a> Summary<'a> {
    /// The view of the contributions at the places in `sources`; revoked in every report,
    /// revoked as a `false_positive` by the CERTs, or expired (`fresh`, with `[decay]`).
    fn of(
        contributions: &'a [Contribution],
        sources: Sources,
        at: Millis,
        false_positive: bool,
        fresh: Option<Freshness>,
    ) -> Summary<'a> {
        let reports = || sources.places().map(|i| &contributions[i]).filter(|c| c.sighting.is_none());
        let expired = fresh.is_some_and(|f| f.expired);
        Summary {
            sources,
            of: contributions,
            confidence: reports().filter_map(|c| c.confidence).max(),
            revoked: false_positive || reports().all(|c| c.revoked) || expired,
            expired,
            at,
        }
    }

    fn of_emission(e: &Emission, contributions: &'a [Contribution]) -> Summary<'a> {
        let (sources, confidence, revoked, expired, at) = (e.sources, e.confidence, e.revoked, e.expired, e.at);
        Summary { sources, of: contributions, confidence, revoked, expired, at }
    }

    /// The emission of this view to `country`'s CERT.
    fn to_emission(&self, country: Country) -> Emission {
        Emission {
            country,
            sources: self.sources,
            confidence: self.confidence,
            revoked: self.revoked,
            expired: self.expired,
            at: self.at,
            first_at: self.at,
        }
    }
}

/// The record a CERT receives: built from its view only (reports, and the sightings it may
/// see); revoked as a false positive when the CERTs' reports say so (`false_positive`), and
/// expired when its freshness (`[decay]`) says so.
fn record(subject: &Subject<'_>, view: &[&Contribution], false_positive: bool, fresh: Option<Freshness>) -> CertRecord {
    let mut countries: Vec<Country> = subject.places().into_iter().flatten().collect();
    // Most views are one report, and then its tags are the record's, shared.
    let tags = match (subject.enrichment.benign, view) {
        (None, [only]) => only.tags.clone(),
        (benign, view) => benign
            .map(|list| Name::from(format!("warninglist:{list}")))
            .into_iter()
            .chain(view.iter().flat_map(|c| c.tags.iter().cloned()))
            .collect(),
    };
    let mut sources: Vec<Source> = Vec::with_capacity(view.len());
    let mut sighted_by = Vec::new();
    for c in view {
        countries.extend(&c.target_countries);
        match c.sighting {
            None => sources.push(Source { feed: c.feed.clone(), provider: c.provider.clone() }),
            Some((_, by)) => sighted_by.push(by),
        }
    }
    countries.sort();
    countries.dedup();
    sources.sort();
    sighted_by.sort();
    let reports = || view.iter().filter(|c| c.sighting.is_none());
    let latest = reports().max_by_key(|c| c.last_seen);
    let revoked_by_reports = reports().all(|c| c.revoked);
    CertRecord {
        schema_version: SCHEMA_VERSION,
        id: subject.id,
        kind: subject.kind.as_str(),
        value: subject.value.to_string(),
        country: subject.enrichment.country,
        countries,
        asn: subject.enrichment.asn,
        as_org: subject.enrichment.as_org.map(str::to_string),
        org: subject.enrichment.org.map(str::to_string),
        sectors: subject.enrichment.sectors.iter().map(|s| s.to_string()).collect(),
        tlp: view.iter().map(|c| c.tlp).max().unwrap_or(Tlp::Unknown).as_str(),
        confidence: reports().filter_map(|c| c.confidence).max(),
        threat: reports().filter(|c| c.threat.is_some()).max_by_key(|c| c.last_seen).and_then(|c| c.threat.clone()),
        tags,
        sources,
        sightings: view.iter().map(|c| c.sightings).sum(),
        first_seen: reports().map(|c| c.first_seen).min().unwrap_or_default(),
        last_seen: latest.map_or(0, |c| c.last_seen),
        revoked: revoked_by_reports || false_positive || fresh.is_some_and(|f| f.expired),
        sighted_by,
        revocation_reason: (false_positive && !revoked_by_reports).then_some("false_positive"),
        score: fresh.map(|f| f.score),
        valid_until: fresh.and_then(|f| f.valid_until),
        expired: fresh.is_some_and(|f| f.expired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Claim;
    use std::sync::Arc;

    fn cc(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    /// The CERT of `code`, not regional, in no sharing group, without a filter.
    fn recipient(code: &str) -> Recipient {
        Recipient { country: cc(code), regional: false, sharing_groups: HashSet::new(), filtered: false }
    }

    const SG: usize = 0;
    const MY: usize = 1;
    const REGIONAL_TH: usize = 2;
    const GROUP: &str = "5a1e0000-0000-4000-8000-0000000000aa";

    fn recipients() -> Vec<Recipient> {
        vec![
            recipient("SG"),
            Recipient { sharing_groups: [GROUP.to_string()].into_iter().collect(), ..recipient("MY") },
            Recipient { regional: true, ..recipient("TH") },
        ]
    }

    fn router() -> Router {
        Router::new(recipients(), 1_000, false)
    }

    fn report(feed: &str, tlp: Tlp, targets: &[&str], at: Millis) -> Contribution {
        let claim = Claim {
            confidence: Some(50),
            target_countries: targets.iter().map(|s| Country::parse(s).unwrap()).collect(),
            ..Claim::plain(feed, &format!("{feed} Inc."), tlp)
        };
        Contribution::new(Arc::new(claim), at, at)
    }

    fn subject(infra: Option<&'static str>) -> Subject<'static> {
        let mut s = Subject::bare(IndicatorId(7), IndicatorType::Domain, "x.example.sg");
        s.enrichment.country = infra.map(cc);
        s
    }

    /// Routes one report (no CERT has a filter here): its outcome and the records, by CERT.
    fn run(entry: &mut Entry, infra: Option<&'static str>, c: Contribution) -> (Outcome, Vec<(usize, CertRecord)>) {
        let (mut emits, mut candidates) = (Vec::new(), vec![Vec::new(); 3]);
        let at = c.last_seen;
        let fate = router().apply(entry, subject(infra), c, (0, at, at), &mut emits, &mut candidates);
        assert!(candidates.iter().all(Vec::is_empty));
        (fate.outcome(), emits.into_iter().map(|e| (e.cert, e.record)).collect())
    }

    fn certs(out: &[(usize, CertRecord)]) -> Vec<usize> {
        out.iter().map(|(k, _)| *k).collect()
    }

    /// A record's tags are its view's, each once and sorted, with the warninglist that calls the
    /// indicator benign; a view of one contribution hands its own set on.
    #[test]
    fn record_tags_are_the_views_and_the_warninglists() {
        let tagged = |feed, tags: &[&str]| {
            let mut c = report(feed, Tlp::Green, &["MY"], 0);
            Arc::make_mut(&mut c.claim).tags = tags.iter().map(|t| Name::from(*t)).collect();
            c
        };
        let (a, b) = (tagged("a", &["phish", "bank"]), tagged("b", &["bank", "c2"]));
        let one = record(&subject(Some("SG")), &[&a], false, None);
        assert_eq!(one.tags, ["bank", "phish"]);
        assert_eq!(one.tags.as_ptr(), a.tags.as_ptr(), "shared, not copied");
        assert_eq!(one.countries, ["MY", "SG"]);
        let both = record(&subject(None), &[&a, &b], false, None);
        assert_eq!(both.tags, ["bank", "c2", "phish"]);
        let mut benign = subject(None);
        benign.enrichment.benign = Some("Documentation");
        assert_eq!(record(&benign, &[&a], false, None).tags, ["bank", "phish", "warninglist:Documentation"]);
        assert_eq!(record(&benign, &[], false, None).tags, ["warninglist:Documentation"]);
    }

    #[test]
    fn green_goes_to_the_implicated_cert_and_regional_subscribers() {
        let mut e = Entry::default();
        let (o, out) = run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, REGIONAL_TH]));
        assert_eq!(out[0].1.tlp, "GREEN");
        assert_eq!(out[0].1.countries, ["SG"]);
    }

    #[test]
    fn amber_goes_to_implicated_certs_only() {
        let mut e = Entry::default();
        let (o, out) = run(&mut e, Some("SG"), report("a", Tlp::Amber, &["MY"], 0));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, MY]));
        let mut e = Entry::default();
        let (o, _) = run(&mut e, None, report("a", Tlp::Amber, &[], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::NoRecipient));
    }

    #[test]
    fn strict_labels_are_withheld_and_never_leak() {
        let mut e = Entry::default();
        let (o, _) = run(&mut e, Some("SG"), report("red", Tlp::Red, &["MY"], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::TlpRed));
        let (o, _) = run(&mut e, Some("SG"), report("as", Tlp::AmberStrict, &[], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::TlpAmberStrict));
        let (o, _) = run(&mut e, Some("SG"), report("u", Tlp::Unknown, &[], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::UnknownLabel));
        // A GREEN report of the same indicator: SG sees only the GREEN source; the RED report's
        // target MY does not make MY a recipient.
        let (o, out) = run(&mut e, Some("SG"), report("green", Tlp::Green, &[], 1));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, REGIONAL_TH]));
        let rec = &out[0].1;
        assert_eq!(rec.sources.len(), 1);
        assert_eq!(rec.sources[0].feed, "green");
        assert_eq!(rec.countries, ["SG"]);
        assert_eq!(rec.sightings, 1);
    }

    #[test]
    fn duplicates_are_suppressed_until_the_view_changes() {
        let mut e = Entry::default();
        run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        let (o, _) = run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 10));
        assert_eq!(o, Outcome::Suppressed);
        // A new source.
        let (o, out) = run(&mut e, Some("SG"), report("b", Tlp::Green, &[], 20));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, REGIONAL_TH]));
        assert_eq!(out[0].1.sources.len(), 2);
        assert_eq!(out[0].1.sightings, 3);
        // More confidence.
        let mut c = report("a", Tlp::Green, &[], 30);
        Arc::make_mut(&mut c.claim).confidence = Some(90);
        let (o, out) = run(&mut e, Some("SG"), c);
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, REGIONAL_TH]));
        // Less confidence is no news.
        let (o, _) = run(&mut e, Some("SG"), report("b", Tlp::Green, &[], 40));
        assert_eq!(o, Outcome::Suppressed);
        // The TTL has passed.
        let (o, out) = run(&mut e, Some("SG"), report("b", Tlp::Green, &[], 2_000));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, REGIONAL_TH]));
    }

    #[test]
    fn a_hidden_report_does_not_resend_after_the_ttl() {
        let mut e = Entry::default();
        run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        let (o, out) = run(&mut e, Some("SG"), report("r", Tlp::Red, &[], 5_000));
        assert_eq!(o, Outcome::Withheld(WithheldReason::TlpRed));
        assert!(out.is_empty());
    }

    #[test]
    fn sharing_groups_reach_members_only_and_never_beyond_the_label() {
        let group = |tlp, targets: &[&str], g: &str| {
            let mut c = report("misp", tlp, targets, 0);
            Arc::make_mut(&mut c.claim).sharing_group = Some(g.into());
            c
        };
        // MY is a member; SG (implicated) and TH (regional) are not.
        let (o, out) = run(&mut Entry::default(), Some("SG"), group(Tlp::Green, &["MY"], GROUP));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![MY]));
        // A member that is not implicated gets AMBER nothing; GREEN only as a regional subscriber.
        let (o, out) = run(&mut Entry::default(), Some("SG"), group(Tlp::Amber, &[], GROUP));
        assert_eq!((o, certs(&out)), (Outcome::Withheld(WithheldReason::NoRecipient), vec![]));
        // A group no configured CERT belongs to.
        let (o, out) = run(&mut Entry::default(), Some("MY"), group(Tlp::Green, &[], "other"));
        assert_eq!((o, certs(&out)), (Outcome::Withheld(WithheldReason::SharingGroup), vec![]));
        // The label still rules: RED in a group is RED.
        let (o, _) = run(&mut Entry::default(), Some("MY"), group(Tlp::Red, &[], GROUP));
        assert_eq!(o, Outcome::Withheld(WithheldReason::TlpRed));
    }

    /// Routes reports through a router whose SG CERT has a filter; `verdict` plays the filter.
    fn filtered(
        entry: &mut Entry,
        reports: Vec<Contribution>,
        verdict: impl Fn(&CertRecord) -> bool,
    ) -> Vec<(Outcome, Vec<usize>)> {
        let mut certs = recipients();
        certs[SG].filtered = true;
        let r = Router::new(certs, 1_000, false);
        let (mut emits, mut candidates) = (Vec::new(), vec![Vec::new(); 3]);
        let mut fates: Vec<Fate> = reports
            .into_iter()
            .enumerate()
            .map(|(row, c)| {
                let at = c.last_seen;
                r.apply(entry, subject(Some("SG")), c, (row, at, at), &mut emits, &mut candidates)
            })
            .collect();
        for c in std::mem::take(&mut candidates[SG]) {
            let ok = verdict(&c.record);
            let row = c.row;
            r.settle(entry, SG, c, ok, &mut fates[row], &mut emits);
        }
        fates
            .iter()
            .enumerate()
            .map(|(row, f)| {
                let rows_emits =
                    emits.iter().filter(|e| e.record.sightings == row as u64 + 1).map(|e| e.cert).collect();
                (f.outcome(), rows_emits)
            })
            .collect()
    }

    #[test]
    fn a_filter_decides_on_the_view_and_revocations_bypass_it() {
        let mut e = Entry::default();
        let mut low = report("a", Tlp::Green, &[], 0);
        Arc::make_mut(&mut low.claim).confidence = Some(10);
        let mut high = report("a", Tlp::Green, &[], 10);
        Arc::make_mut(&mut high.claim).confidence = Some(90);
        let mut revoked = report("a", Tlp::Green, &[], 20);
        Arc::make_mut(&mut revoked.claim).revoked = true;
        Arc::make_mut(&mut revoked.claim).confidence = Some(10);
        // SG accepts views with confidence >= 50; TH (regional, no filter) takes everything.
        let got = filtered(&mut e, vec![low, high, revoked], |r| r.confidence >= Some(50));
        assert_eq!(got[0], (Outcome::Emitted, vec![REGIONAL_TH]));
        // The second report raises the view's confidence: now SG accepts it.
        assert_eq!(got[1], (Outcome::Emitted, vec![REGIONAL_TH, SG]));
        // The revocation lowers nothing (confidence is the view's maximum), but even a filter that
        // rejected it could not keep the revocation from a CERT that got the indicator.
        assert_eq!(got[2].0, Outcome::Emitted);
        let mut e2 = e.clone();
        let mut again = report("a", Tlp::Green, &[], 30);
        Arc::make_mut(&mut again.claim).revoked = false;
        filtered(&mut e2, vec![again], |_| true);
        let mut revoke = report("a", Tlp::Green, &[], 40);
        Arc::make_mut(&mut revoke.claim).revoked = true;
        let got = filtered(&mut e2, vec![revoke], |_| false);
        assert_eq!(got[0].0, Outcome::Emitted);
        assert!(e2.emitted.get(cc("SG")).unwrap().revoked, "SG was sent the revocation its filter rejects");
    }

    #[test]
    fn a_report_every_recipient_filters_out_has_no_recipient() {
        let mut certs = recipients();
        certs[SG].filtered = true;
        certs[REGIONAL_TH].regional = false;
        let r = Router::new(certs, 1_000, false);
        let mut e = Entry::default();
        let (mut emits, mut candidates) = (Vec::new(), vec![Vec::new(); 3]);
        let mut fate = r.apply(
            &mut e,
            subject(Some("SG")),
            report("a", Tlp::Green, &[], 0),
            (0, 0, 0),
            &mut emits,
            &mut candidates,
        );
        let c = candidates[SG].pop().unwrap();
        r.settle(&mut e, SG, c, false, &mut fate, &mut emits);
        assert_eq!(fate.outcome(), Outcome::Withheld(WithheldReason::NoRecipient));
        assert!(emits.is_empty() && e.emitted.is_empty());
    }

    #[test]
    fn stix_times_are_fixed_at_first_emission_and_increase() {
        let mut e = Entry::default();
        let (mut emits, mut candidates) = (Vec::new(), vec![Vec::new(); 3]);
        let r = router();
        for (feed, at) in [("a", 100), ("b", 50), ("c", 50)] {
            r.apply(
                &mut e,
                subject(Some("SG")),
                report(feed, Tlp::Green, &[], at),
                (0, at, at),
                &mut emits,
                &mut candidates,
            );
        }
        let sg: Vec<(Millis, Millis)> =
            emits.iter().filter(|e| e.cert == SG).map(|e| (e.created, e.modified)).collect();
        assert_eq!(sg, [(100, 100), (100, 101), (100, 102)]);
    }

    #[test]
    fn a_revocation_of_something_never_sent_is_not_sent() {
        let mut e = Entry::default();
        let mut c = report("a", Tlp::Green, &[], 0);
        Arc::make_mut(&mut c.claim).revoked = true;
        let (o, out) = run(&mut e, Some("SG"), c);
        assert_eq!(o, Outcome::Suppressed);
        assert!(out.is_empty());
    }

    /// `explain` names, per contribution, what `audience` decided, and the emission rule's news.
    #[test]
    fn explain_names_why_each_cert_sees_a_contribution_or_not() {
        let mut e = Entry::default();
        run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        run(&mut e, Some("SG"), report("r", Tlp::Red, &["MY"], 1));
        let mut grouped = report("g", Tlp::Amber, &["MY"], 2);
        Arc::make_mut(&mut grouped.claim).sharing_group = Some("other".into());
        run(&mut e, Some("SG"), grouped);
        let r = router();
        let sg = r.explain(&e, &subject(Some("SG")), SG, 3);
        assert_eq!(
            sg.visibility,
            [
                Visibility::Seen { implicated: true },
                Visibility::Label(WithheldReason::TlpRed),
                Visibility::SharingGroup("other".into())
            ]
        );
        assert!(sg.last.is_some() && sg.news.is_none() && !sg.owed_revocation);
        let my = r.explain(&e, &subject(Some("SG")), MY, 3);
        assert_eq!(my.visibility[0], Visibility::NotImplicated { places: vec![cc("SG")] });
        assert!(my.last.is_none() && my.record.is_none());
        let th = r.explain(&e, &subject(Some("SG")), REGIONAL_TH, 5_000);
        assert_eq!(th.visibility[0], Visibility::Seen { implicated: false });
        assert_eq!(th.news, Some(News::TtlPassed));
        assert_eq!(th.record.map(|rec| rec.sources.len()), Some(1));
    }

    #[test]
    fn revocation_is_news() {
        let mut e = Entry::default();
        run(&mut e, Some("MY"), report("a", Tlp::Green, &[], 0));
        let mut c = report("a", Tlp::Green, &[], 10);
        Arc::make_mut(&mut c.claim).revoked = true;
        let (o, out) = run(&mut e, Some("MY"), c);
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![MY, REGIONAL_TH]));
        assert!(out[0].1.revoked);
    }

    /// CERT `by`'s sighting of `kind` under `tlp`, seen `count` times at `at`.
    fn sighting(kind: SightingKind, by: &str, tlp: Tlp, count: u64, at: Millis) -> Contribution {
        let name = iocflow_model::sighting::contribution_name(kind, cc(by));
        Contribution { sightings: count, ..Contribution::new(Arc::new(Claim::plain(&name, by, tlp)), at, at) }
    }

    /// Routes with `router` (no CERT has a filter): the outcome and the records by CERT.
    fn run_with(r: &Router, entry: &mut Entry, c: Contribution) -> (Outcome, Vec<(usize, CertRecord)>) {
        let (mut emits, mut candidates) = (Vec::new(), vec![Vec::new(); 3]);
        let at = c.last_seen;
        let fate = r.apply(entry, subject(Some("SG")), c, (0, at, at), &mut emits, &mut candidates);
        (fate.outcome(), emits.into_iter().map(|e| (e.cert, e.record)).collect())
    }

    /// GREEN and CLEAR sightings count in every view that sees the indicator, AMBER ones in the
    /// sighting CERT's own view only, stricter ones in none; and a CERT that sees no report of
    /// the indicator learns nothing of a sighting of it.
    #[test]
    fn sightings_count_in_the_views_their_labels_allow() {
        let mut e = Entry::default();
        let (_, out) = run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        assert_eq!(certs(&out), [SG, REGIONAL_TH]);
        let (o, out) = run(&mut e, Some("SG"), sighting(SightingKind::Seen, "TH", Tlp::Green, 4, 10));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, REGIONAL_TH]), "a new CERT sighted it");
        for (_, r) in &out {
            assert_eq!((r.sightings, r.sighted_by.as_slice(), r.sources.len()), (5, &[cc("TH")][..], 1));
            assert_eq!((r.tlp, r.first_seen, r.last_seen), ("GREEN", 0, 0), "a sighting's times are not the reports'");
        }
        let (o, out) = run(&mut e, Some("SG"), sighting(SightingKind::Seen, "SG", Tlp::Amber, 1, 20));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG]), "AMBER: the sighting CERT's own view only");
        assert_eq!(
            (out[0].1.sighted_by.clone(), out[0].1.tlp, out[0].1.sightings),
            (vec![cc("SG"), cc("TH")], "AMBER", 6)
        );
        // TH's view did not change, and TH was not even considered: a later GREEN report of a new
        // feed shows TH no trace of SG's AMBER sighting.
        let (_, out) = run(&mut e, Some("SG"), report("b", Tlp::Green, &[], 30));
        let th = &out.iter().find(|(k, _)| *k == REGIONAL_TH).unwrap().1;
        assert_eq!((th.sighted_by.clone(), th.sightings, th.tlp), (vec![cc("TH")], 6, "GREEN"));
        let (o, out) = run(&mut e, Some("SG"), sighting(SightingKind::Seen, "MY", Tlp::Red, 1, 40));
        assert_eq!((o, out.len()), (Outcome::Withheld(WithheldReason::TlpRed), 0));
        // MY sees no report of it: its own AMBER sighting reaches no view, not even its own.
        let (o, out) = run(&mut e, Some("SG"), sighting(SightingKind::Seen, "MY", Tlp::Amber, 1, 50));
        assert_eq!((o, out.len()), (Outcome::Withheld(WithheldReason::NoRecipient), 0));
        // Repeated sightings of one CERT are one contribution: counted, not a new source.
        let (o, out) = run(&mut e, Some("SG"), sighting(SightingKind::Seen, "TH", Tlp::Green, 2, 60));
        assert_eq!((o, out.len()), (Outcome::Suppressed, 0));
        let explained = router().explain(&e, &subject(Some("SG")), REGIONAL_TH, 60);
        assert_eq!(explained.record.unwrap().sightings, 8);
        assert!(
            explained
                .visibility
                .contains(&Visibility::Sighting("another CERT's AMBER sighting counts in its own view only"))
        );
    }

    /// A CERT's own false positive stops its sends, whatever its label; enough GREEN or CLEAR
    /// ones from distinct CERTs revoke the indicator for every CERT that received it.
    #[test]
    fn false_positives_stop_a_certs_sends_and_enough_revoke() {
        let r = router().revoking_false_positives(Some(2));
        let mut e = Entry::default();
        run_with(&r, &mut e, report("a", Tlp::Green, &[], 0));
        let (o, out) = run_with(&r, &mut e, sighting(SightingKind::FalsePositive, "SG", Tlp::Amber, 1, 10));
        assert_eq!((o, out.len()), (Outcome::Withheld(WithheldReason::NoRecipient), 0), "SG accepts nothing more");
        let (_, out) = run_with(&r, &mut e, report("b", Tlp::Green, &[], 20));
        assert_eq!(certs(&out), [REGIONAL_TH], "a new source goes to TH, not to SG");
        let (o, out) = run_with(&r, &mut e, sighting(SightingKind::FalsePositive, "TH", Tlp::Green, 1, 30));
        assert_eq!((o, out.len()), (Outcome::Withheld(WithheldReason::NoRecipient), 0), "one GREEN false positive");
        let (o, out) = run_with(&r, &mut e, sighting(SightingKind::FalsePositive, "MY", Tlp::Clear, 1, 40));
        assert_eq!((o, certs(&out)), (Outcome::Emitted, vec![SG, REGIONAL_TH]), "two: revoked for both recipients");
        for (_, rec) in &out {
            assert!(rec.revoked);
            assert_eq!(rec.revocation_reason, Some("false_positive"));
            assert!(rec.sighted_by.is_empty(), "false positives are counted, not shown");
        }
        let (_, out) = run_with(&r, &mut e, report("c", Tlp::Green, &[], 50));
        assert!(out.is_empty(), "revoked stays revoked: {out:?}");
        // Without [feedback], false positives revoke nothing.
        let mut e = Entry::default();
        run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        for by in ["TH", "MY", "SG"] {
            let (_, out) = run(&mut e, Some("SG"), sighting(SightingKind::FalsePositive, by, Tlp::Green, 1, 10));
            assert!(out.iter().all(|(_, rec)| !rec.revoked), "{out:?}");
        }
    }

    /// `[decay]`, linear over a day with threshold 40: a view of confidence 80 expires half a day
    /// after its report; the expiry is sent once, whenever it is looked for after that, timed when
    /// the view expired; a later report revives it.
    #[test]
    fn a_lapsed_view_gets_one_expiry_and_a_later_report_revives_it() {
        use crate::config::{DecayConfig, DecayCurveConfig};
        const DAY: Millis = 86_400_000;
        let curve = DecayCurveConfig { lifetime_days: Some(1.0), speed: Some(1.0) };
        let config = DecayConfig { threshold: 40.0, types: [("domain".to_string(), curve)].into_iter().collect() };
        let r = router().decaying(Some(Decay::of(&config)));
        let mut e = Entry::default();
        let (mut emits, mut candidates) = (Vec::new(), vec![Vec::new(); 3]);
        let c = Contribution {
            claim: Arc::new(Claim { confidence: Some(80), ..(*report("a", Tlp::Amber, &[], 0).claim).clone() }),
            ..report("a", Tlp::Amber, &[], 0)
        };
        r.apply(&mut e, subject(Some("SG")), c, (0, 0, 0), &mut emits, &mut candidates);
        let first = &emits[0].record;
        assert_eq!((first.score, first.valid_until, first.expired), (Some(80.0), Some(DAY / 2), false));
        let expire = |e: &mut Entry, clock, emits: &mut Vec<Emit>| {
            r.expire(e, &subject(Some("SG")), clock, None, emits, &mut [])
        };
        assert_eq!(expire(&mut e, DAY / 4, &mut emits), Some(DAY / 2));
        assert_eq!(emits.len(), 1);
        assert_eq!(expire(&mut e, DAY, &mut emits), None, "nothing live left to expire");
        let expiry = &emits[1];
        assert_eq!((expiry.record.revoked, expiry.record.expired, expiry.record.score), (true, true, Some(40.0)));
        assert_eq!(expiry.modified, DAY / 2, "timed when the view expired, not when it was found");
        expire(&mut e, 2 * DAY, &mut emits);
        assert_eq!(emits.len(), 2, "one expiry");
        r.apply(
            &mut e,
            subject(Some("SG")),
            report("a", Tlp::Amber, &[], 3 * DAY),
            (0, 3 * DAY, 3 * DAY),
            &mut emits,
            &mut candidates,
        );
        let revival = &emits[2];
        assert!(revival.revived && !revival.record.revoked && !revival.record.expired, "{revival:?}");
        // The feed's later report says confidence 50: a fifth of the day above the threshold.
        let until = revival.record.valid_until.unwrap();
        assert!((until - (3 * DAY + DAY / 5)).abs() <= 1, "{until}");
    }
}
